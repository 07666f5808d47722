"""Mapping templates and template versions <-> JSON (jsonb column, compacted topic, CLI files).

Template JSON::

    {"format_version": 1, "name": "default",
     "udfs": [{"name": "band", "kind": "text", "description": "AfC band"}],
     "rules": [{"target": "surname", "sources": ["person.last_name"], "transforms": [{"op": "trim"}]},
               {"target": "udf.band", "sources": ["primary_assignment.grade"],
                "transforms": [{"op": "split_part", "index": 2, "separator": "|"}]}]}

A rule may say ``"source": "person.last_name"`` for a single source. Transform settings are those of the
dataclasses in `esr.mapping.transforms`; a ``default`` carries ``"kind"`` and its value as JSON (dates ISO,
decimals as text). Loading checks shapes and then the whole template (`template_problems`), raising one
`ValidationError` with every problem; the loaded template is canonical (sources as ``<scope>.<field>``).
Output is canonical JSON, so equal templates give equal bytes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from esr.mapping.catalogue import Kind
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, template_problems
from esr.mapping.transforms import (
    TRANSFORM_TYPES,
    Concat,
    DateFormat,
    Default,
    Lookup,
    ParseDate,
    SplitPart,
    Transform,
)
from esr.mapping.versions import TemplateVersion, version_problems
from esr.validation import JsonReader, Problem, canonical_json, parse_json, raise_if

FORMAT_VERSION = 1


def transform_to_dict(transform: Transform) -> dict[str, Any]:
    return transform.to_dict()


def rule_to_dict(rule: MappingRule) -> dict[str, Any]:
    return {
        "target": rule.target,
        "sources": list(rule.sources),
        "transforms": [transform_to_dict(t) for t in rule.transforms],
    }


def template_to_dict(template: MappingTemplate) -> dict[str, Any]:
    canonical = template.canonical()
    return {
        "format_version": FORMAT_VERSION,
        "name": canonical.name,
        "udfs": [{"name": u.name, "kind": u.kind.value, "description": u.description} for u in canonical.udfs],
        "rules": [rule_to_dict(r) for r in canonical.rules],
    }


def template_to_json(template: MappingTemplate) -> bytes:
    return canonical_json(template_to_dict(template))


def _kind(value: object, path: str, problems: list[Problem]) -> Kind | None:
    try:
        return Kind(value)
    except ValueError:
        problems.append(Problem(path, f"{value!r} is not one of {', '.join(k.value for k in Kind)}"))
        return None


def _default_value(reader: JsonReader) -> Default | None:
    raw = reader.take("value", (str, int))
    kind_name = reader.take("kind", (str, type(None)), None)
    if raw is None:
        return None
    kind = (Kind.INT if isinstance(raw, int) else Kind.TEXT) if kind_name is None else _kind(
        kind_name, reader.where("kind"), reader.problems
    )
    if kind is None:
        return None
    where = reader.where("value")
    try:
        if kind is Kind.INT:
            if not isinstance(raw, int):
                raise ValueError(f"{raw!r} is not a whole number")
            return Default(raw)
        if not isinstance(raw, str):
            raise ValueError(f"{raw!r} must be given as text for a {kind.value} default")
        if kind is Kind.TEXT:
            return Default(raw)
        if kind is Kind.DATE:
            return Default(dt.date.fromisoformat(raw))
        if kind is Kind.DATETIME:
            return Default(dt.datetime.fromisoformat(raw))
        value = Decimal(raw)
        if not value.is_finite():
            raise ValueError(f"{raw!r} is not a finite decimal")
        return Default(value)
    except (ValueError, InvalidOperation) as error:
        message = str(error) if str(error).startswith(repr(raw)) else f"{raw!r} is not a {kind.value} value"
        reader.problems.append(Problem(where, message))
        return None


def transform_from_dict(data: object, path: str, problems: list[Problem], *, strict: bool = True) -> Transform | None:
    reader = JsonReader(data, path, problems, strict=strict)
    op = reader.take("op", (str,))
    if op is None:
        return None
    kind = TRANSFORM_TYPES.get(str(op))
    if kind is None:
        problems.append(Problem(reader.where("op"), f"unknown transform {op!r}; one of {', '.join(TRANSFORM_TYPES)}"))
        return None
    transform: Transform | None
    if kind is SplitPart:
        index = reader.take("index", (int,), 0)
        separator = reader.take("separator", (str,), "|")
        transform = SplitPart(index if isinstance(index, int) else 0, separator if isinstance(separator, str) else "|")
    elif kind in (DateFormat, ParseDate):
        pattern = reader.take("pattern", (str,))
        transform = None if not isinstance(pattern, str) else kind(pattern)
    elif kind is Lookup:
        table = reader.take("table", (dict,))
        default = reader.take("default", (str, type(None)), None)
        case_sensitive = reader.take("case_sensitive", (bool,), False)
        transform = None
        if isinstance(table, dict):
            bad = [k for k, v in table.items() if not isinstance(v, str)]
            for key in bad:
                problems.append(Problem(f"{reader.where('table')}.{key}", f"{table[key]!r} is not text"))
            if not bad:
                transform = Lookup.of(
                    table,
                    default if isinstance(default, str) else None,
                    case_sensitive=case_sensitive is True,
                )
    elif kind is Default:
        transform = _default_value(reader)
    elif kind is Concat:
        separator = reader.take("separator", (str,), " ")
        transform = Concat(separator if isinstance(separator, str) else " ")
    else:
        transform = kind()
    reader.finish()
    return transform


def _rule(data: object, path: str, problems: list[Problem], strict: bool) -> MappingRule | None:
    reader = JsonReader(data, path, problems, strict=strict)
    target = reader.take("target", (str,))
    sources: list[str] = []
    if reader.has("source") and reader.has("sources"):
        problems.append(Problem(path, "give either source or sources, not both"))
    if reader.has("source"):
        single = reader.take("source", (str,))
        sources = [single] if isinstance(single, str) else []
    else:
        many = reader.take("sources", (list,), [])
        if isinstance(many, list):
            for index, item in enumerate(many):
                if isinstance(item, str):
                    sources.append(item)
                else:
                    problems.append(Problem(f"{reader.where('sources')}[{index}]", f"expected text, got {item!r}"))
    transforms: list[Transform] = []
    raw = reader.take("transforms", (list,), [])
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        transform = transform_from_dict(item, f"{reader.where('transforms')}[{index}]", problems, strict=strict)
        if transform is not None:
            transforms.append(transform)
    reader.finish()
    if not isinstance(target, str):
        return None
    return MappingRule(target, tuple(sources), tuple(transforms))


def _udf(data: object, path: str, problems: list[Problem], strict: bool) -> UdfDefinition | None:
    reader = JsonReader(data, path, problems, strict=strict)
    name = reader.take("name", (str,))
    kind_name = reader.take("kind", (str,), Kind.TEXT.value)
    description = reader.take("description", (str,), "")
    reader.finish()
    kind = _kind(kind_name, reader.where("kind"), problems)
    if not isinstance(name, str) or kind is None:
        return None
    return UdfDefinition(name, kind, description if isinstance(description, str) else "")


def _template(data: object, path: str, problems: list[Problem], strict: bool) -> MappingTemplate:
    reader = JsonReader(data, path, problems, strict=strict)
    version = reader.take("format_version", (int,), FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION and strict:
        problems.append(Problem(reader.where("format_version"), f"{version} is newer than this program reads"))
    name = reader.take("name", (str,), "default")
    udfs_raw = reader.take("udfs", (list,), [])
    rules_raw = reader.take("rules", (list,))
    reader.finish()
    udfs = [
        u
        for i, item in enumerate(udfs_raw if isinstance(udfs_raw, list) else [])
        if (u := _udf(item, reader.where(f"udfs[{i}]"), problems, strict)) is not None
    ]
    rules = [
        r
        for i, item in enumerate(rules_raw if isinstance(rules_raw, list) else [])
        if (r := _rule(item, reader.where(f"rules[{i}]"), problems, strict)) is not None
    ]
    return MappingTemplate(tuple(rules), tuple(udfs), name if isinstance(name, str) else "default")


def template_from_dict(data: object, *, strict: bool = True) -> MappingTemplate:
    problems: list[Problem] = []
    template = _template(data, "", problems, strict)
    if not problems:
        problems.extend(template_problems(template))
    raise_if("mapping template", problems)
    return template.canonical()


def template_from_json(data: bytes | str, *, strict: bool = True) -> MappingTemplate:
    return template_from_dict(parse_json(data, "mapping template"), strict=strict)


# --- versions --------------------------------------------------------------------------------------------


def version_to_dict(version: TemplateVersion) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "vpd": version.vpd,
        "version": version.version,
        "author": version.author,
        "created_at": version.created_at.isoformat(),
        "note": version.note,
        "template": template_to_dict(version.template),
    }


def version_to_json(version: TemplateVersion) -> bytes:
    return canonical_json(version_to_dict(version))


def version_from_dict(data: object, *, strict: bool = True) -> TemplateVersion:
    problems: list[Problem] = []
    reader = JsonReader(data, "", problems, strict=strict)
    reader.take("format_version", (int,), FORMAT_VERSION)
    vpd = reader.take("vpd", (str,))
    number = reader.take("version", (int,))
    author = reader.take("author", (str,))
    created_text = reader.take("created_at", (str,))
    note = reader.take("note", (str,), "")
    template = _template(reader.take("template", (dict,), {}), "template", problems, strict)
    reader.finish()
    created: dt.datetime | None = None
    if isinstance(created_text, str):
        try:
            created = dt.datetime.fromisoformat(created_text)
        except ValueError:
            problems.append(Problem("created_at", f"{created_text!r} is not an ISO 8601 date and time"))
    version = TemplateVersion(
        vpd if isinstance(vpd, str) else "",
        number if isinstance(number, int) else 0,
        template,
        author if isinstance(author, str) else "",
        created if created is not None else dt.datetime.min,
        note if isinstance(note, str) else "",
    )
    if not problems:
        problems.extend(version_problems(version))
    raise_if("template version", problems)
    return TemplateVersion(
        version.vpd, version.version, template.canonical(), version.author, version.created_at, version.note
    )


def version_from_json(data: bytes | str, *, strict: bool = True) -> TemplateVersion:
    return version_from_dict(parse_json(data, "template version"), strict=strict)
