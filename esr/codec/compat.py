"""Schema compatibility, checked the way a consumer meets it: data written with one schema is read with
another through fastavro's schema resolution.

The sample data takes every branch of every union and every symbol of every enum, so a reader that
lacks a branch, a symbol or a default for a new field fails on it. Confluent's modes (anchors §4.3):
BACKWARD = the new schema reads data of the old ones, FORWARD = the old ones read data of the new one,
FULL = both; *_TRANSITIVE = against every earlier version, not only the latest.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

Schema = dict[str, Any]

_EPOCH_DATE = dt.date(2000, 1, 1)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MAX_DEPTH = 32
_MAX_SAMPLES = 10_000


class Compatibility(enum.Enum):
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.name.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return not self.name.startswith("FORWARD")

    @property
    def forward(self) -> bool:
        return not self.name.startswith("BACKWARD")


def sample_data(schema: Schema) -> list[Any]:
    """Values of `schema` that, together, take every union branch and every enum symbol.

    A union with several non-null branches gets fastavro's tuple notation `(branch name, value)`, so the
    branch is never guessed.
    """
    named: dict[str, Any] = {}
    parsed = parse_schema(schema, named_schemas=named)
    sampler = _Sampler(named)
    data: list[Any] = []
    while not data or not sampler.covered():
        if len(data) >= _MAX_SAMPLES:
            raise RuntimeError("sample data does not converge (schema too wide?)")
        data.append(sampler.value(parsed, "", len(data), 0))
    return data


class _Sampler:
    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.cycles: dict[str, list[int]] = {}  # path -> [times seen, choices]

    def covered(self) -> bool:
        return all(seen >= choices for seen, choices in self.cycles.values())

    def _next(self, path: str, choices: int) -> int:
        cycle = self.cycles.setdefault(path, [0, choices])
        cycle[0] += 1
        return (cycle[0] - 1) % choices

    def value(self, schema: Any, path: str, i: int, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError(f"{path}: schema nests deeper than {_MAX_DEPTH} levels (recursive?)")
        if isinstance(schema, list):
            branch = self._next(path, len(schema))
            chosen = schema[branch]
            value = self.value(chosen, f"{path}|{branch}", i, depth + 1)
            if chosen == "null" or sum(b != "null" for b in schema) == 1:
                return value
            return (chosen if isinstance(chosen, str) else chosen.get("name", chosen["type"]), value)
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], path, i, depth + 1)
            return _primitive(schema, i)
        logical = _logical(schema, i)
        if logical is not None:
            return logical
        kind = schema["type"]
        if kind == "record":
            return {
                f["name"]: self.value(f["type"], f"{path}.{f['name']}", i, depth + 1) for f in schema["fields"]
            }
        if kind == "enum":
            return schema["symbols"][self._next(path, len(schema["symbols"]))]
        if kind == "array":
            return [self.value(schema["items"], f"{path}[]", i, depth + 1)]
        if kind == "map":
            return {"k": self.value(schema["values"], f"{path}{{}}", i, depth + 1)}
        if kind == "fixed":
            return bytes(schema["size"])
        return self.value(kind, path, i, depth + 1)


def _primitive(kind: str, i: int) -> Any:
    match kind:
        case "null":
            return None
        case "boolean":
            return i % 2 == 0
        case "int" | "long":
            return i
        case "float" | "double":
            return i / 2
        case "bytes":
            return b"b%d" % i
        case "string":
            return f"s{i}"
    raise ValueError(f"unknown Avro type {kind!r}")


def _logical(schema: Schema, i: int) -> Any:
    match schema.get("logicalType"):
        case "date":
            return _EPOCH_DATE + dt.timedelta(days=i)
        case "timestamp-millis" | "timestamp-micros":
            return _EPOCH + dt.timedelta(seconds=i)
        case "local-timestamp-millis" | "local-timestamp-micros":
            return _EPOCH.replace(tzinfo=None) + dt.timedelta(seconds=i)
        case "time-millis" | "time-micros":
            return dt.time(12, 0, i % 60)
        case "uuid":
            return str(uuid.UUID(int=i))
        case "decimal" if schema["type"] == "bytes":
            scale = schema.get("scale", 0)
            unit = Decimal(1).scaleb(-scale)
            return unit if schema["precision"] <= scale else Decimal(i % 10) + unit
    return None


def resolution_problem(writer: Schema, reader: Schema) -> str | None:
    """None when `reader` reads every sample of `writer`, else the first failure."""
    try:
        parsed_writer = parse_schema(writer)
        parsed_reader = parse_schema(reader)
    except Exception as exc:  # any parse failure is the answer
        return f"schema does not parse: {exc}"
    for datum in sample_data(writer):
        buf = io.BytesIO()
        schemaless_writer(buf, parsed_writer, datum)
        buf.seek(0)
        try:
            schemaless_reader(buf, parsed_writer, parsed_reader)
        except Exception as exc:  # resolution errors come in many classes
            return f"{type(exc).__name__}: {exc}"
    return None


def incompatibilities(candidate: Schema, earlier: Sequence[Schema], mode: Compatibility) -> list[str]:
    """Why `candidate` cannot follow `earlier` (versions 1..N, oldest first) under `mode`; [] if it can."""
    first = 1 if mode.transitive else max(len(earlier), 1)
    problems: list[str] = []
    for number in range(first, len(earlier) + 1):
        old = earlier[number - 1]
        if mode.backward and (problem := resolution_problem(old, candidate)):
            problems.append(f"data written with v{number} cannot be read with the new schema: {problem}")
        if mode.forward and (problem := resolution_problem(candidate, old)):
            problems.append(f"data written with the new schema cannot be read with v{number}: {problem}")
    return problems
