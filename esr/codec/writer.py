"""A schema-specialised Avro binary writer: the hot path of ingest.

fastavro's C writer is fast for plain strings but slow for what ESR records are made of: nullable unions
of logical types (dates, local timestamps, decimals) cost it 3-4 µs a field, which caps a 49-field
Assignment at ~16k events/s. `compile_writer` turns a schema into Python source once (one function per
record type, every field's branch decided at compile time) and writes the same bytes as fastavro
(tested byte for byte), about 4x faster on these records.

Rules: a union with more than one non-null branch takes fastavro's tuple notation `(name, value)`; a
missing field takes its schema default; a value that does not fit raises `ValueError`.
Supported: every Avro type, and the logical types date, timestamp-millis, local-timestamp-millis and
decimal on bytes (others raise `NotImplementedError` at compile time).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact
from typing import Any

from fastavro import parse_schema

Schema = dict[str, Any]
WriteFn = Callable[[Mapping[str, Any]], bytes]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_SMALL = 1 << 14  # |n| below this: varint bytes from a table
_CACHE_LIMIT = 1 << 16  # dates and timestamps repeat a lot within a file: cache their encodings


def _varint_unsigned(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ZIGZAG_POS = [_varint_unsigned(n << 1) for n in range(_SMALL)]
_ZIGZAG_NEG = [_varint_unsigned(max(2 * n - 1, 0)) for n in range(_SMALL)]  # index n encodes -n


def encode_long(n: int) -> bytes:
    """Avro long: zigzag varint."""
    if 0 <= n < _SMALL:
        return _ZIGZAG_POS[n]
    if -_SMALL < n < 0:
        return _ZIGZAG_NEG[-n]
    if not -(1 << 63) <= n < (1 << 63):
        raise ValueError(f"{n} does not fit an Avro long")
    return _varint_unsigned((n << 1) ^ (n >> 63))


def _memoised(encode: Callable[[Any], bytes], *, naive_only: bool = False) -> Callable[[Any], bytes]:
    """`encode`, memoised: dates, timestamps and amounts repeat a lot within a file.

    `naive_only`: aware datetimes of the same instant are equal keys but differ in local time, so they
    are never stored (and, none being stored, never found).
    """
    cache: dict[Any, bytes] = {}

    def cached(value: Any) -> bytes:
        found = cache.get(value)
        if found is None:
            found = encode(value)
            if not (naive_only and getattr(value, "tzinfo", None) is not None):
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[value] = found
        return found

    return cached


def _long_of(convert: Callable[[Any], int]) -> Callable[[Any], bytes]:
    def encode(value: Any) -> bytes:
        return encode_long(value if type(value) is int else convert(value))

    return encode


def _days(value: dt.date) -> int:
    if isinstance(value, dt.datetime):
        raise ValueError(f"a date field was given a datetime: {value!r}")
    return value.toordinal() - _EPOCH_ORDINAL


def _millis(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _utc_millis(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError(f"timestamp-millis needs a timezone-aware datetime: {value!r}")
    return _millis(value - _EPOCH_UTC)


def _local_millis(value: dt.datetime) -> int:
    return _millis(value.replace(tzinfo=None) - _EPOCH_NAIVE)


_EXACT = Context(prec=1_000, traps=[Inexact])


def _decimal_writer(precision: int, scale: int) -> Callable[[Any], bytes]:
    """Decimal on bytes: length + big-endian two's complement of the unscaled value (sized as fastavro)."""
    bound = 10**precision

    def encode(value: Any) -> bytes:
        if isinstance(value, Decimal):
            scaled = value.scaleb(scale, _EXACT)
            unscaled = int(scaled)
            if unscaled != scaled:
                raise ValueError(f"{value} has more than {scale} decimal places")
            if not -bound < unscaled < bound:
                raise ValueError(f"{value} has more than {precision} digits")
            size = (abs(unscaled).bit_length() + 8) // 8
            data = unscaled.to_bytes(size, "big", signed=True)
        elif isinstance(value, bytes):
            data = bytes(value)
        else:
            raise ValueError(f"{value!r} is not a Decimal")
        return encode_long(len(data)) + data

    return _memoised(encode)


_LOGICAL: dict[tuple[str, str], Callable[[Any], bytes]] = {
    ("int", "date"): _memoised(_long_of(_days)),
    ("long", "timestamp-millis"): _memoised(_long_of(_utc_millis)),
    ("long", "local-timestamp-millis"): _memoised(_long_of(_local_millis), naive_only=True),
}


class _Compiler:
    """Generates `def w_<n>(d, a)` per record type; `a` appends bytes to the output."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.env: dict[str, Any] = {
            "encode_long": encode_long,
            "_LEN": _ZIGZAG_POS,
            "_SMALL": _SMALL,
            "_pack_float": struct.Struct("<f").pack,
            "_pack_double": struct.Struct("<d").pack,
            "_bad": _bad,
        }
        self.sources: list[str] = []
        self.functions: dict[str, str] = {}  # record fullname -> function name
        self.counter = 0

    def constant(self, value: Any) -> str:
        self.counter += 1
        name = f"_c{self.counter}"
        self.env[name] = value
        return name

    def temp(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def record_function(self, schema: Schema) -> str:
        name = schema["name"]
        if name in self.functions:
            return self.functions[name]
        function = self.functions[name] = f"w{len(self.functions)}_{name.replace('.', '_')}"
        lines = [f"def {function}(d, a):"]
        for field in schema["fields"]:
            var = self.temp()
            key = repr(field["name"])
            if "default" in field:
                default = field["default"]
                lines.append(f"    {var} = d.get({key})" if default is None else
                             f"    {var} = d.get({key}, {self.constant(default)})")
            else:
                lines.append(f"    {var} = d[{key}]")
            self.emit(field["type"], var, lines, "    ", f"{name}.{field['name']}")
        if not schema["fields"]:
            lines.append("    pass")
        self.sources.append("\n".join(lines))
        return function

    def branch_function(self, schema: Any, index: int, where: str) -> str:
        """`f(v, a)` writing the union index and then the value."""
        self.counter += 1
        function = f"b{self.counter}"
        lines = [f"def {function}(v, a):", f"    a({encode_long(index)!r})"]
        self.emit(schema, "v", lines, "    ", where)
        self.sources.append("\n".join(lines))
        return function

    def emit(
        self, schema: Any, var: str, lines: list[str], ind: str, where: str, union_index: int | None = None
    ) -> None:
        """Lines writing `var`; `union_index`: the value is that branch of a union (index not yet written)."""
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            self.emit_union(schema, var, lines, ind, where)
            return
        if isinstance(schema, dict) and schema["type"] in _PRIMITIVES and "logicalType" not in schema:
            schema = schema["type"]
        if union_index is not None and schema != "string":
            lines.append(f"{ind}a({encode_long(union_index)!r})")
        kind = schema if isinstance(schema, str) else schema["type"]
        logical = None if isinstance(schema, str) else schema.get("logicalType")
        if logical is not None:
            if kind == "bytes" and logical == "decimal":
                writer = _decimal_writer(schema["precision"], schema.get("scale", 0))
                lines.append(f"{ind}a({self.constant(writer)}({var}))")
                return
            if (kind, logical) not in _LOGICAL:
                raise NotImplementedError(f"{where}: logical type {logical!r} on {kind!r}")
            lines.append(f"{ind}a({self.constant(_LOGICAL[kind, logical])}({var}))")
            return
        match kind:
            case "null":
                lines.append(f"{ind}if {var} is not None: _bad({where!r}, {var})")
            case "boolean":
                lines.append(f"{ind}a(b'\\x01' if {var} else b'\\x00')")
            case "int" | "long":
                lines.append(f"{ind}a(encode_long({var}))")
            case "float" | "double":
                lines.append(f"{ind}a(_pack_{kind}({var}))")
            case "string":
                data, size = self.temp(), self.temp()
                lines.append(f"{ind}{data} = {var}.encode()")
                lines.append(f"{ind}{size} = len({data})")
                if union_index is None:
                    lines.append(f"{ind}a(_LEN[{size}] if {size} < _SMALL else encode_long({size}))")
                else:  # the union index and the length in one piece
                    index = encode_long(union_index)
                    table = self.constant([index + length for length in _ZIGZAG_POS])
                    lines.append(f"{ind}a({table}[{size}] if {size} < _SMALL else {index!r} + encode_long({size}))")
                lines.append(f"{ind}a({data})")
                return
            case "bytes":
                lines.append(f"{ind}a(encode_long(len({var})))")
                lines.append(f"{ind}a(bytes({var}))")
            case "fixed":
                size = schema["size"]
                lines.append(f"{ind}if len({var}) != {size}: _bad({where!r}, {var})")
                lines.append(f"{ind}a(bytes({var}))")
            case "enum":
                table = self.constant({s: encode_long(i) for i, s in enumerate(schema["symbols"])})
                code = self.temp()
                lines.append(f"{ind}{code} = {table}.get({var})")
                lines.append(f"{ind}if {code} is None: _bad({where!r}, {var})")
                lines.append(f"{ind}a({code})")
            case "record" | "error":
                lines.append(f"{ind}{self.record_function(schema)}({var}, a)")
            case "array":
                item = self.temp()
                lines.append(f"{ind}if {var}:")
                lines.append(f"{ind}    a(encode_long(len({var})))")
                lines.append(f"{ind}    for {item} in {var}:")
                self.emit(schema["items"], item, lines, ind + "        ", f"{where}[]")
                lines.append(f"{ind}a(b'\\x00')")
            case "map":
                key, item = self.temp(), self.temp()
                lines.append(f"{ind}if {var}:")
                lines.append(f"{ind}    a(encode_long(len({var})))")
                lines.append(f"{ind}    for {key}, {item} in {var}.items():")
                self.emit("string", key, lines, ind + "        ", f"{where}{{}}")
                self.emit(schema["values"], item, lines, ind + "        ", f"{where}{{}}")
                lines.append(f"{ind}a(b'\\x00')")
            case _:
                raise NotImplementedError(f"{where}: Avro type {kind!r}")

    def emit_union(self, branches: list[Any], var: str, lines: list[str], ind: str, where: str) -> None:
        null = next((i for i, b in enumerate(branches) if b == "null"), None)
        others = [(i, b) for i, b in enumerate(branches) if b != "null"]
        body = ind
        if null is not None:
            lines.append(f"{ind}if {var} is None:")
            lines.append(f"{ind}    a({encode_long(null)!r})")
            lines.append(f"{ind}else:")
            body = ind + "    "
        if len(others) == 1:
            index, branch = others[0]
            self.emit(branch, var, lines, body, where, union_index=index)
            return
        by_name = {_branch_name(b): self.branch_function(b, i, where) for i, b in others}
        self.counter += 1
        table = f"_t{self.counter}"
        self.sources.append(f"{table} = {{{', '.join(f'{n!r}: {f}' for n, f in by_name.items())}}}")
        name, value, writer = self.temp(), self.temp(), self.temp()
        lines.append(f"{body}if type({var}) is not tuple: _bad({where!r}, {var}, 'a (branch name, value) tuple')")
        lines.append(f"{body}{name}, {value} = {var}")
        lines.append(f"{body}{writer} = {table}.get({name})")
        lines.append(f"{body}if {writer} is None: _bad({where!r}, {name}, 'a branch name of the union')")
        lines.append(f"{body}{writer}({value}, a)")


def _branch_name(branch: Any) -> str:
    if isinstance(branch, str):
        return branch
    if branch["type"] in ("record", "error", "enum", "fixed"):
        name: str = branch["name"]
        return name
    kind: str = branch["type"]
    return kind


def _bad(where: str, value: Any, expected: str = "a valid value") -> None:
    raise ValueError(f"{where}: {value!r} is not {expected}")


def compile_writer(schema: Schema, prefix: bytes = b"") -> WriteFn:
    """A function writing `prefix` + the Avro binary encoding of a datum of `schema` (a record)."""
    named: dict[str, Any] = {}
    parsed = parse_schema(schema, named_schemas=named)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise NotImplementedError("compile_writer takes a record schema")
    compiler = _Compiler(named)
    top = compiler.record_function(parsed)
    env = dict(compiler.env, _prefix=prefix)
    source = "\n\n".join(compiler.sources)
    source += f"\n\ndef write(d):\n    out = [_prefix]\n    {top}(d, out.append)\n    return b''.join(out)\n"
    exec(compile(source, f"<avro writer {parsed['name']}>", "exec"), env)
    write: WriteFn = env["write"]
    return write
