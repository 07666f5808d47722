"""What the schema compilers (`reader`, `writer`: their generated Python code and their native programs)
ask of a schema parsed by fastavro: one place for how a type is looked up and named."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def resolve(schema: Any, named: dict[str, Any]) -> Any:
    """`schema` with a named type replaced by its definition, and a primitive written `{"type": T}` by T."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, dict) and schema["type"] in PRIMITIVES and "logicalType" not in schema:
        schema = schema["type"]
    return schema


def type_of(schema: Any) -> tuple[str, str | None]:
    """(Avro type, logical type or None) of a resolved schema other than a union."""
    if isinstance(schema, str):
        return schema, None
    return schema["type"], schema.get("logicalType")


class SchemaWalker:
    """The base of the compilers of native programs: the named types, and the records being compiled (a
    recursive schema cannot be written as a program of nested tuples)."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self._open: set[str] = set()

    def resolve(self, schema: Any) -> Any:
        return resolve(schema, self.named)

    @contextlib.contextmanager
    def compiling(self, name: str) -> Iterator[None]:
        """Around the compilation of record `name`; NotImplementedError if it is already being compiled."""
        if name in self._open:
            raise NotImplementedError(f"{name}: a recursive schema")
        self._open.add(name)
        try:
            yield
        finally:
            self._open.discard(name)
