"""A small template language for the NHS options "username format" and "home address format". Pure.

Syntax
------
Literal text with placeholders in braces: ``{first_name}.{last_name}``, ``{line_1}, {town} {postcode}``.

- ``{field}``: the value of an ESR layout field (PRA fields for the username, ADA fields for the home
  address: only text and id fields are allowed);
- ``{field:N}``: its first N characters (N >= 1), e.g. ``{first_name:1}`` for an initial;
- ``{field|lower}``, ``{field|upper}``, ``{field|title}``: a case filter; filters chain
  (``{first_name:1|upper}``); truncation applies first;
- ``{{`` and ``}}`` are literal braces.

Rendering
---------
Values are stripped; a missing or blank value is *empty*. The literal text between two placeholders is a
separator: it is written only between two non-empty values, and the separator used is the one right
before the later value. The leading and trailing literals are written only when some value is non-empty.
So ``{line_1}, {line_2}, {town}`` with no line 2 renders ``1 Road, Town``, never ``1 Road, , Town``; and a
template whose every value is empty renders ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from esr.format.layouts import FieldType, Layout
from esr.format.values import Value, format_value
from esr.validation import Problem, ValidationError

FILTERS = ("lower", "upper", "title")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_TITLE_BOUNDARY = re.compile(r"(^|[\s\-'’.])(\w)")


def title_case(text: str) -> str:
    """Title case that suits names: ``o'neill-SMITH`` -> ``O'Neill-Smith``, ``mary ann`` -> ``Mary Ann``."""
    return _TITLE_BOUNDARY.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    length: int | None = None
    filters: tuple[str, ...] = ()

    def render(self, values: Mapping[str, Value]) -> str:
        value = values.get(self.name)
        text = "" if value is None else (value if isinstance(value, str) else format_value(value)).strip()
        if self.length is not None:
            text = text[: self.length]
        for name in self.filters:
            text = text.lower() if name == "lower" else text.upper() if name == "upper" else title_case(text)
        return text


@dataclass(frozen=True, slots=True)
class TextTemplate:
    """A parsed template: literals[i] comes before placeholders[i]; literals[-1] is the tail."""

    source: str
    literals: tuple[str, ...]
    placeholders: tuple[Placeholder, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.placeholders)

    def render(self, values: Mapping[str, Value]) -> str:
        parts: list[str] = []
        for index, placeholder in enumerate(self.placeholders):
            text = placeholder.render(values)
            if not text:
                continue
            if parts:
                parts.append(self.literals[index])
            parts.append(text)
        if not parts:
            return ""
        return self.literals[0] + "".join(parts) + self.literals[-1]


def _parse_placeholder(body: str, allowed: Collection[str], at: int) -> tuple[Placeholder | None, list[str]]:
    errors: list[str] = []
    head, *filters = body.split("|")
    name, _, length_text = head.partition(":")
    name = name.strip()
    length: int | None = None
    if not _NAME.fullmatch(name):
        errors.append(f"placeholder at position {at} has no valid field name: {{{body}}}")
    elif name not in allowed:
        errors.append(f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(allowed))}")
    if ":" in head:
        if not (length_text.isascii() and length_text.isdigit()) or int(length_text) < 1:
            errors.append(f"{{{body}}}: the length after ':' must be a whole number of at least 1")
        else:
            length = int(length_text)
    for name_filter in filters:
        if name_filter.strip() not in FILTERS:
            errors.append(f"{{{body}}}: unknown filter {name_filter!r}; allowed: {', '.join(FILTERS)}")
    if errors:
        return None, errors
    return Placeholder(name, length, tuple(f.strip() for f in filters)), []


def parse_text_template(source: str, allowed: Collection[str], *, what: str = "template") -> TextTemplate:
    """Parse and validate; raises `ValidationError` listing every problem (path = `what`)."""
    errors: list[str] = []
    literals: list[str] = []
    placeholders: list[Placeholder] = []
    current: list[str] = []
    i = 0
    if not source.strip():
        errors.append("must not be empty")
    while i < len(source):
        char = source[i]
        if char == "{" and source.startswith("{{", i):
            current.append("{")
            i += 2
        elif char == "}" and source.startswith("}}", i):
            current.append("}")
            i += 2
        elif char == "{":
            end = source.find("}", i + 1)
            nested = source.find("{", i + 1)
            if end < 0 or (0 <= nested < end):
                errors.append(f"unclosed '{{' at position {i}")
                break
            placeholder, problems = _parse_placeholder(source[i + 1 : end], allowed, i)
            errors.extend(problems)
            if placeholder is not None:
                literals.append("".join(current))
                current = []
                placeholders.append(placeholder)
            i = end + 1
        elif char == "}":
            errors.append(f"unmatched '}}' at position {i} (write '}}}}' for a literal brace)")
            i += 1
        else:
            current.append(char)
            i += 1
    literals.append("".join(current))
    if not errors and not placeholders:
        errors.append("must contain at least one {field} placeholder")
    if errors:
        raise ValidationError(what, [Problem(what, e) for e in errors])
    return TextTemplate(source, tuple(literals), tuple(placeholders))


def text_fields(layout: Layout) -> frozenset[str]:
    """The fields of a layout a text template may name: text and id fields, spares excluded."""
    return frozenset(
        f.name
        for f in layout.data_fields
        if f.type in (FieldType.TEXT, FieldType.ID) and not f.name.startswith("spare")
    )
