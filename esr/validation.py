"""Validation errors shared by trust profiles, mapping templates and mileage tables. Pure, no I/O.

A validator collects every problem it finds instead of stopping at the first, so an administrator fixes a
profile, a template or a CSV file in one go. Each problem names where it is (`path`: a dotted/indexed
location such as ``rules[3].target`` or ``line 7, field engine_to``) and what is wrong with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(ValueError):
    """One or more problems in something an administrator supplied. `problems` lists them all."""

    def __init__(self, what: str, problems: Iterable[Problem]) -> None:
        self.what = what
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("a ValidationError needs at least one problem")
        super().__init__(f"invalid {what}: " + "; ".join(str(p) for p in self.problems))


def raise_if(what: str, problems: Iterable[Problem]) -> None:
    collected = tuple(problems)
    if collected:
        raise ValidationError(what, collected)


_MISSING = object()


class JsonReader:
    """Reads fields of one JSON object, collecting problems instead of raising on the first.

    `take(name, kinds, default)` returns the value when it has one of the Python types `kinds` (bool is
    never accepted as a number), else records a problem and returns `default`; a missing key without a
    default is a problem too. `finish()` reports keys nobody took when `strict`.
    """

    def __init__(self, data: object, path: str, problems: list[Problem], *, strict: bool = True) -> None:
        self.path = path
        self.problems = problems
        self.strict = strict
        self.taken: set[str] = set()
        if isinstance(data, dict):
            self.data: dict[str, object] = data
        else:
            self.data = {}
            problems.append(Problem(path, f"expected a JSON object, got {type(data).__name__}"))

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.data

    def take(self, name: str, kinds: tuple[type, ...], default: object = _MISSING) -> object:
        self.taken.add(name)
        if name not in self.data:
            if default is _MISSING:
                self.problems.append(Problem(self.where(name), "is missing"))
                return None
            return default
        value = self.data[name]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
            self.problems.append(Problem(self.where(name), f"expected {names}, got {value!r}"))
            return None if default is _MISSING else default
        return value

    def finish(self) -> None:
        if self.strict:
            for name in sorted(set(self.data) - self.taken):
                self.problems.append(Problem(self.where(name), "unknown key"))


_JSON_NAMES: dict[type, str] = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def canonical_json(data: object) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8): equal values give equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_json(data: bytes | str, what: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError(what, [Problem("", f"not JSON: {error}")]) from None
