"""Keyset pagination: a page is the rows after an opaque cursor (the sort key of the last row shown),
so page 4,000 costs the same as page 1 and rows inserted meanwhile neither repeat nor vanish."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_CURSOR_LENGTH = 1000


class BadCursor(ValueError):
    pass


def _default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, default=_default, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The key in `cursor`, each part checked against (and converted to) the expected type."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise BadCursor("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("malformed cursor") from exc
    if not isinstance(key, list) or len(key) != len(types):
        raise BadCursor("malformed cursor")
    out: list[Any] = []
    for part, expected in zip(key, types, strict=True):
        try:
            if expected is dt.datetime:
                out.append(dt.datetime.fromisoformat(part))
            elif (expected is int and isinstance(part, int) and not isinstance(part, bool)) or (
                expected is str and isinstance(part, str)
            ):
                out.append(part)
            else:
                raise BadCursor("malformed cursor")
        except (TypeError, ValueError) as exc:
            raise BadCursor("malformed cursor") from exc
    return out


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: list[T], limit: int, key: Any) -> Page[T]:
    """`rows` was fetched with LIMIT limit + 1: the extra row only tells whether there is a next page."""
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])) if more and items else None)
