"""A schema-specialised Avro binary reader, the counterpart of `writer` for the common case where the
message was written with the reader's own schema (no resolution needed).

fastavro reads ~0.5 µs a field through nullable unions; a 49-field Assignment event caps it at ~22k
events/s, a large share of a stream worker's budget. `compile_reader` generates one function per record
type and returns the same values as fastavro's `schemaless_reader` (tested), about 1.7x as fast.
Messages written with another schema version still go through fastavro's schema resolution.
Values of logical types are memoised (they repeat a lot within a file): a date by its day number, a
timestamp by its varint's bytes, found with one regex match instead of a Python loop over 6 bytes.

Text records (`text_records`): record types read straight into what a consumer that compares values as
text wants (the stream worker's domain keeps every value as canonical text): a `TextRecord` of the
non-null fields only, each as its canonical text (`to_text`). It saves building a date, a timestamp or a
Decimal per field only to render it again, and a second pass to drop the nulls.

Native code (`native`: C, ~4x faster) reads the message first, from a program compiled here (`_Programs`)
with the same memos; whatever it refuses (corrupt bytes, 64-bit overflows...) the generated code reads, so
values and errors are the generated code's, which stays the reference.

A corrupt body raises some exception (IndexError, ValueError, AttributeError, UnicodeDecodeError...):
callers wrap it.
Every loop is bounded by the bytes left, so garbage can never make it spin or allocate without limit.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import struct
import sys
from collections.abc import Callable, Collection
from decimal import Context, Decimal
from typing import Any

from fastavro import parse_schema

from esr.codec import native
from esr.codec.native import ReadOp
from esr.codec.shapes import SchemaWalker, resolve, type_of

log = logging.getLogger(__name__)

Schema = dict[str, Any]
ReadFn = Callable[[bytes, int], dict[str, Any]]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_CACHE_LIMIT = 1 << 16


def read_long(b: bytes, p: int) -> tuple[int, int]:
    """Zigzag varint at `p` -> (value, position after it)."""
    n = shift = 0
    while True:
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return (n >> 1) ^ -(n & 1), p
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def read_size(b: bytes, p: int) -> tuple[int, int]:
    """A length or count: a long that cannot be negative nor exceed the bytes left."""
    n, p = read_long(b, p)
    if not 0 <= n <= len(b) - p:
        raise ValueError(f"length {n} at byte {p} is impossible with {len(b) - p} byte(s) left")
    return n, p


class _Memo:
    """`convert`, memoised (dates, timestamps and amounts repeat a lot). The compiled code inlines the
    lookup: `cache.get(key)`, then `miss(key)` when absent; calling the memo does the same."""

    __slots__ = ("cache", "convert", "native_slots")

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.cache: dict[Any, Any] = {}
        self.convert = convert
        self.native_slots: Any = None  # the native reader's cache in front of this one (`_Programs.memo`)

    def miss(self, key: Any) -> Any:
        cache = self.cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        found = cache[key] = self.convert(key)
        return found

    def __call__(self, key: Any) -> Any:
        found = self.cache.get(key)
        return self.miss(key) if found is None else found


def _memoised(convert: Callable[[Any], Any]) -> _Memo:
    return _Memo(convert)


#: a varint's bytes (1 to 10): the key of a long's memo (a timestamp takes 6 bytes, a loop of read_long)
_varint_at = re.compile(b"[\x80-\xff]{0,9}[\x00-\x7f]").match


def _of_varint(convert: Callable[[int], Any]) -> Callable[[bytes], Any]:
    """`convert` of the long whose varint bytes are given."""
    return lambda raw: convert(read_long(raw, 0)[0])


def _decimal_reader(precision: int, scale: int) -> Callable[[bytes], Any]:
    context = Context(prec=precision)

    def read(data: bytes) -> Any:
        return context.create_decimal(int.from_bytes(data, "big", signed=True)).scaleb(-scale, context)

    return read


def _decimal_text(precision: int, scale: int) -> Callable[[bytes], str]:
    read = _decimal_reader(precision, scale)
    return lambda data: format(read(data), "f")


_CONVERT: dict[tuple[str, str], Callable[[int], Any]] = {
    ("int", "date"): lambda n: dt.date.fromordinal(n + _EPOCH_ORDINAL),
    ("long", "timestamp-millis"): lambda n: _EPOCH_UTC + dt.timedelta(milliseconds=n),
    ("long", "local-timestamp-millis"): lambda n: _EPOCH_NAIVE + dt.timedelta(milliseconds=n),
}


class TextRecord(dict[str, str]):
    """A record read as text: its non-null fields, each value's canonical text (`to_text`).

    A plain dict in every respect; the type only tells a consumer that the values need no rendering.
    """

    __slots__ = ()


def to_text(value: Any) -> str | None:
    """The canonical text of a value as the reader returns it: ISO 8601 for dates and timestamps
    (`isoformat`), plain notation keeping the scale for decimals (`37.50000`), `true`/`false`, decimal
    integers, strings as they are; None stays None."""
    kind = type(value)
    if kind is str or value is None:
        return value  # type: ignore[no-any-return]
    if kind is dt.date or kind is dt.datetime:
        return value.isoformat()  # type: ignore[no-any-return]
    if kind is Decimal:
        return format(value, "f")
    if kind is bool:
        return "true" if value else "false"
    return str(value)


def _logical_memo(kind: str, logical: str, text: bool) -> _Memo:
    """The memo of a logical type's values (or their text): keyed by the int for an int, by the varint's
    bytes for a long."""
    convert = _CONVERT[kind, logical]
    if text:
        typed = convert
        convert = lambda n: to_text(typed(n))  # noqa: E731
    return _memoised(_of_varint(convert) if kind == "long" else convert)


_MEMOS: dict[tuple[str, str, bool], _Memo] = {
    (kind, logical, text): _logical_memo(kind, logical, text) for kind, logical in _CONVERT for text in (False, True)
}


def _bad_index(where: str, index: int) -> None:
    raise ValueError(f"{where}: union branch {index} does not exist")


class _Compiler:
    """Generates `def r<n>(b, p)` -> (value, p) per record type (`TextRecord` for the `text` ones)."""

    def __init__(self, named: dict[str, Any], text: Collection[str] = ()) -> None:
        self.named = named
        self.text = frozenset(text)
        self.env: dict[str, Any] = {
            "read_long": read_long,
            "read_size": read_size,
            "_bad_index": _bad_index,
            "_TextRecord": TextRecord,
            "_varint_at": _varint_at,
            "_unpack_float": struct.Struct("<f").unpack_from,
            "_unpack_double": struct.Struct("<d").unpack_from,
        }
        self.sources: list[str] = []
        self.functions: dict[str, str] = {}
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
        function = self.functions[name] = f"r{len(self.functions)}_{name.replace('.', '_')}"
        lines = [f"def {function}(b, p):", "    n = len(b)"]  # n: for the bounds checks below
        if name in self.text:
            lines.append("    d = _TextRecord()")
            for field in schema["fields"]:
                self.emit_text_field(field["type"], field["name"], lines, "    ", f"{name}.{field['name']}")
            lines.append("    return d, p")
            self.sources.append("\n".join(lines))
            return function
        names = []
        for field in schema["fields"]:
            var = self.temp()
            names.append(f"{field['name']!r}: {var}")
            self.emit(field["type"], var, lines, "    ", f"{name}.{field['name']}")
        lines.append(f"    return {{{', '.join(names)}}}, p")
        self.sources.append("\n".join(lines))
        return function

    def branch_function(self, schema: Any, where: str) -> str:
        self.counter += 1
        function = f"u{self.counter}"
        lines = [f"def {function}(b, p):", "    n = len(b)"]  # n: for the bounds checks below
        self.emit(schema, "v", lines, "    ", where)
        lines.append("    return v, p")
        self.sources.append("\n".join(lines))
        return function

    def emit(self, schema: Any, var: str, lines: list[str], ind: str, where: str) -> None:
        """Lines that read a value of `schema` at `p` into `var` and advance `p`."""
        schema = resolve(schema, self.named)
        if isinstance(schema, list):
            self.emit_union(schema, var, lines, ind, where)
            return
        kind, logical = type_of(schema)
        if logical is not None:
            if kind == "bytes" and logical == "decimal":
                self.emit("bytes", var, lines, ind, where)
                convert = self.constant(_decimal_reader(schema["precision"], schema.get("scale", 0)))
                lines.append(f"{ind}{var} = {convert}({var})")
                return
            if (kind, logical) not in _CONVERT:
                raise NotImplementedError(f"{where}: logical type {logical!r} on {kind!r}")
            self.emit_memoised(kind, _MEMOS[kind, logical, False], var, lines, ind, where)
            return
        match kind:
            case "null":
                lines.append(f"{ind}{var} = None")
            case "boolean":
                lines.append(f"{ind}{var} = b[p] != 0")
                lines.append(f"{ind}p += 1")
            case "int" | "long":  # up to 3 bytes inline (a date is 3), longer ones by read_long
                lines.append(f"{ind}{var} = b[p]")
                lines.append(f"{ind}if {var} < 0x80:")
                lines.append(f"{ind}    {var} = ({var} >> 1) ^ -({var} & 1)")
                lines.append(f"{ind}    p += 1")
                lines.append(f"{ind}elif b[p + 1] < 0x80:")
                lines.append(f"{ind}    {var} = {var} & 0x7F | b[p + 1] << 7")
                lines.append(f"{ind}    {var} = ({var} >> 1) ^ -({var} & 1)")
                lines.append(f"{ind}    p += 2")
                lines.append(f"{ind}elif b[p + 2] < 0x80:")
                lines.append(f"{ind}    {var} = {var} & 0x7F | (b[p + 1] & 0x7F) << 7 | b[p + 2] << 14")
                lines.append(f"{ind}    {var} = ({var} >> 1) ^ -({var} & 1)")
                lines.append(f"{ind}    p += 3")
                lines.append(f"{ind}else:")
                lines.append(f"{ind}    {var}, p = read_long(b, p)")
            case "float" | "double":
                lines.append(f"{ind}{var} = _unpack_{kind}(b, p)[0]")
                lines.append(f"{ind}p += {4 if kind == 'float' else 8}")
            case "string" | "bytes":
                size = self.temp()
                lines.append(f"{ind}{size} = b[p]")
                lines.append(f"{ind}if {size} & 0x81 == 0 and {size} < n - p:")  # 1 byte, >= 0, fits
                lines.append(f"{ind}    {size} >>= 1")
                lines.append(f"{ind}    p += 1")
                lines.append(f"{ind}else:")
                lines.append(f"{ind}    {size}, p = read_size(b, p)")
                decode = ".decode()" if kind == "string" else ""
                lines.append(f"{ind}{var} = b[p:p + {size}]{decode}")
                lines.append(f"{ind}p += {size}")
            case "fixed":
                lines.append(f"{ind}{var} = b[p:p + {schema['size']}]")
                lines.append(f"{ind}p += {schema['size']}")
            case "enum":
                index = self.temp()
                self.emit("int", index, lines, ind, where)
                symbols = self.constant(tuple(schema["symbols"]))
                lines.append(f"{ind}if not 0 <= {index} < {len(schema['symbols'])}: _bad_index({where!r}, {index})")
                lines.append(f"{ind}{var} = {symbols}[{index}]")
            case "record" | "error":
                lines.append(f"{ind}{var}, p = {self.record_function(schema)}(b, p)")
            case "array" | "map":
                self.emit_blocks(schema, var, lines, ind, where)
            case _:
                raise NotImplementedError(f"{where}: Avro type {kind!r}")

    def emit_memoised(self, kind: str, memo: _Memo, var: str, lines: list[str], ind: str, where: str) -> None:
        """Lines that read the `kind` ("int", "long" or "bytes") at `p` and put `memo`'s value for it in `var`;
        a long is looked up by its varint's bytes (no decoding on a hit)."""
        cache, miss = self.constant(memo.cache), self.constant(memo.miss)
        if kind == "long":
            end = self.temp()
            lines.append(f"{ind}{end} = _varint_at(b, p).end()")  # no match: truncated or too long (an error)
            lines.append(f"{ind}{var} = b[p:{end}]")
            lines.append(f"{ind}p = {end}")
        else:
            self.emit(kind, var, lines, ind, where)
        found = self.temp()
        lines.append(f"{ind}{found} = {cache}.get({var})")
        lines.append(f"{ind}{var} = {miss}({var}) if {found} is None else {found}")

    def emit_text_field(self, schema: Any, key: str, lines: list[str], ind: str, where: str) -> None:
        """Lines that read a field of a text record and store its text in `d[key]` unless it is null."""
        schema = resolve(schema, self.named)
        if isinstance(schema, list):
            if len(schema) != 2 or "null" not in schema:
                raise NotImplementedError(f"{where}: a text record takes [null, T] unions only")
            null = schema.index("null")
            index, var = self.temp(), self.temp()
            lines.append(f"{ind}{index} = b[p]")
            lines.append(f"{ind}p += 1")
            lines.append(f"{ind}if {index} == {2 * (1 - null)}:")
            self.emit_text_value(schema[1 - null], var, lines, ind + "    ", where)
            lines.append(f"{ind}    d[{key!r}] = {var}")
            lines.append(f"{ind}elif {index} != {2 * null}:")
            lines.append(f"{ind}    _bad_index({where!r}, {index})")
            return
        if schema == "null" or (isinstance(schema, dict) and schema.get("type") == "null"):
            return  # always null: no bytes, no field
        var = self.temp()
        self.emit_text_value(schema, var, lines, ind, where)
        lines.append(f"{ind}d[{key!r}] = {var}")

    def emit_text_value(self, schema: Any, var: str, lines: list[str], ind: str, where: str) -> None:
        """Lines that read a value of `schema` at `p` into `var` as its canonical text (`to_text`)."""
        schema = resolve(schema, self.named)
        kind, logical = type_of(schema)
        if logical is not None:
            if kind == "bytes" and logical == "decimal":
                memo = _memoised(_decimal_text(schema["precision"], schema.get("scale", 0)))
            elif (kind, logical) in _CONVERT:
                memo = _MEMOS[kind, logical, True]
            else:
                raise NotImplementedError(f"{where}: logical type {logical!r} on {kind!r}")
            self.emit_memoised(kind, memo, var, lines, ind, where)
            return
        if kind in ("string", "enum"):
            self.emit(schema, var, lines, ind, where)
        elif kind == "boolean":
            lines.append(f"{ind}{var} = 'true' if b[p] else 'false'")
            lines.append(f"{ind}p += 1")
        elif kind in ("int", "long", "float", "double", "bytes", "fixed"):
            self.emit(schema, var, lines, ind, where)
            lines.append(f"{ind}{var} = str({var})")
        else:
            raise NotImplementedError(f"{where}: a text record cannot hold {kind!r}")

    def emit_blocks(self, schema: Schema, var: str, lines: list[str], ind: str, where: str) -> None:
        """Arrays and maps: blocks of `count` items, a negative count being followed by the block size."""
        count, item, key = self.temp(), self.temp(), self.temp()
        is_map = schema["type"] == "map"
        lines.append(f"{ind}{var} = {{}}" if is_map else f"{ind}{var} = []")
        lines.append(f"{ind}while True:")
        lines.append(f"{ind}    {count}, p = read_long(b, p)")
        lines.append(f"{ind}    if {count} == 0:")
        lines.append(f"{ind}        break")
        lines.append(f"{ind}    if {count} < 0:")
        lines.append(f"{ind}        {count} = -{count}")
        lines.append(f"{ind}        _, p = read_size(b, p)")
        lines.append(f"{ind}    if {count} > len(b) - p:")  # every item of our schemas takes a byte or more
        lines.append(f"{ind}        raise ValueError('block count ' + str({count}) + ' exceeds the bytes left')")
        lines.append(f"{ind}    for _ in range({count}):")
        inner = ind + "        "
        if is_map:
            self.emit("string", key, lines, inner, f"{where}{{}}")
            self.emit(schema["values"], item, lines, inner, f"{where}{{}}")
            lines.append(f"{inner}{var}[{key}] = {item}")
        else:
            self.emit(schema["items"], item, lines, inner, f"{where}[]")
            lines.append(f"{inner}{var}.append({item})")

    def emit_union(self, branches: list[Any], var: str, lines: list[str], ind: str, where: str) -> None:
        index = self.temp()
        if len(branches) == 2 and "null" in branches:  # the common nullable field: one byte decides
            null = branches.index("null")
            lines.append(f"{ind}{index} = b[p]")
            lines.append(f"{ind}p += 1")
            lines.append(f"{ind}if {index} == {2 * null}:")
            lines.append(f"{ind}    {var} = None")
            lines.append(f"{ind}elif {index} == {2 * (1 - null)}:")
            self.emit(branches[1 - null], var, lines, ind + "    ", where)
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    _bad_index({where!r}, {index})")
            return
        functions = [self.branch_function(b, where) for b in branches]
        self.counter += 1
        readers = f"_t{self.counter}"
        self.sources.append(f"{readers} = ({', '.join(functions)},)")
        self.emit("int", index, lines, ind, where)
        lines.append(f"{ind}if not 0 <= {index} < {len(branches)}: _bad_index({where!r}, {index})")
        lines.append(f"{ind}{var}, p = {readers}[{index}](b, p)")


class _Programs(SchemaWalker):
    """The program of the native reader (`native`) that reads what `_Compiler`'s code reads, the same way
    (the same memos, the same text rules); NotImplementedError for what it cannot express."""

    def __init__(self, named: dict[str, Any], text: Collection[str] = ()) -> None:
        super().__init__(named)
        self.text = frozenset(text)

    def record(self, schema: Schema) -> tuple[Any, ...]:
        name = schema["name"]
        fields = schema["fields"]
        with self.compiling(name):
            if name in self.text:
                kept = [(sys.intern(f["name"]), self.text_field(f["type"], f"{name}.{f['name']}")) for f in fields]
                keys = tuple(key for key, program in kept if program is not None)
                programs = tuple(program for _, program in kept if program is not None)
                return (ReadOp.R_TEXT_RECORD, TextRecord, keys, programs)
            keys = tuple(sys.intern(f["name"]) for f in fields)
            return (ReadOp.R_RECORD, keys, tuple(self.value(f["type"], f"{name}.{f['name']}") for f in fields))

    def value(self, schema: Any, where: str) -> tuple[Any, ...]:
        schema = self.resolve(schema)
        if isinstance(schema, list):
            if len(schema) == 2 and "null" in schema:
                null = schema.index("null")
                return (ReadOp.R_NULLABLE, null, self.value(schema[1 - null], where))
            return (ReadOp.R_UNION, tuple(self.value(branch, where) for branch in schema))
        kind, logical = type_of(schema)
        if logical is not None:
            if kind == "bytes" and logical == "decimal":
                return (ReadOp.R_CALL_BYTES, _decimal_reader(schema["precision"], schema.get("scale", 0)))
            return self.memo(kind, logical, False, where)
        match kind:
            case "null" | "boolean" | "int" | "long" | "string" | "bytes":
                return (_SIMPLE[kind],)
            case "float" | "double" if native.LITTLE_ENDIAN:
                return (ReadOp.R_FLOAT if kind == "float" else ReadOp.R_DOUBLE,)
            case "fixed":
                return (ReadOp.R_FIXED, schema["size"])
            case "enum":
                return (ReadOp.R_ENUM, tuple(map(sys.intern, schema["symbols"])))
            case "record" | "error":
                return self.record(schema)
            case "array":
                return (ReadOp.R_ARRAY, self.value(schema["items"], f"{where}[]"))
            case "map":
                return (ReadOp.R_MAP, self.value(schema["values"], f"{where}{{}}"))
        raise NotImplementedError(f"{where}: Avro type {kind!r}")

    def memo(self, kind: str, logical: str, text: bool, where: str) -> tuple[Any, ...]:
        if (kind, logical) not in _CONVERT:
            raise NotImplementedError(f"{where}: logical type {logical!r} on {kind!r}")
        op = ReadOp.R_MEMO_LONG if kind == "long" else ReadOp.R_MEMO_INT
        return self.memo_program(op, _MEMOS[kind, logical, text])

    @staticmethod
    def memo_program(op: ReadOp, memo: _Memo) -> tuple[Any, ...]:
        """The memo and its native cache (made once, kept with the memo: they live and die together)."""
        assert native.module is not None
        if memo.native_slots is None:
            memo.native_slots = native.module.Slots()
        return (op, memo.cache, memo.miss, memo.native_slots)

    def text_field(self, schema: Any, where: str) -> tuple[Any, ...] | None:
        """A field of a text record (`_Compiler.emit_text_field`); None: always null, no bytes, no field."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            if len(schema) != 2 or "null" not in schema:
                raise NotImplementedError(f"{where}: a text record takes [null, T] unions only")
            null = schema.index("null")
            return (ReadOp.R_NULLABLE, null, self.text_value(schema[1 - null], where))
        if schema == "null" or (isinstance(schema, dict) and schema.get("type") == "null"):
            return None
        return self.text_value(schema, where)

    def text_value(self, schema: Any, where: str) -> tuple[Any, ...]:
        """A value as its canonical text (`_Compiler.emit_text_value`)."""
        schema = self.resolve(schema)
        kind, logical = type_of(schema)
        if logical is not None:
            if kind == "bytes" and logical == "decimal":
                memo = _memoised(_decimal_text(schema["precision"], schema.get("scale", 0)))
                return self.memo_program(ReadOp.R_MEMO_BYTES, memo)
            return self.memo(kind, logical, True, where)
        if kind in ("string", "enum"):
            return self.value(schema, where)
        if kind == "boolean":
            return (ReadOp.R_TEXT_BOOL,)
        if kind in ("int", "long", "float", "double", "bytes", "fixed"):
            return (ReadOp.R_TEXT_STR, self.value(schema, where))
        raise NotImplementedError(f"{where}: a text record cannot hold {kind!r}")


_SIMPLE = {
    "null": ReadOp.R_NULL, "boolean": ReadOp.R_BOOL, "int": ReadOp.R_LONG, "long": ReadOp.R_LONG,
    "string": ReadOp.R_STRING, "bytes": ReadOp.R_BYTES,
}


def compile_reader(schema: Schema, *, text_records: Collection[str] = (), header: bytes = b"") -> ReadFn:
    """A function `read(data, offset)` returning the record of `schema` encoded in `data[offset:]`.

    `text_records`: full names of record types to read as `TextRecord`s (module doc); a name the schema
    does not have is ignored. Raises ValueError when bytes are left after the record, and other exceptions
    on a corrupt body. Native code (`native`) reads what it can, the code generated here the rest; the
    native reader's `decode(data)` reads data framed with `header` (see `_native.Reader.decode`).
    """
    named: dict[str, Any] = {}
    parsed = parse_schema(schema, named_schemas=named)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise NotImplementedError("compile_reader takes a record schema")
    compiler = _Compiler(named, text_records)
    top = compiler.record_function(parsed)
    source = "\n\n".join(compiler.sources)
    source += (
        f"\n\ndef read(b, p):\n    d, p = {top}(b, p)\n"
        "    if p != len(b):\n"
        "        raise ValueError(f'{len(b) - p} byte(s) after the record' if p < len(b) else 'truncated')\n"
        "    return d\n"
    )
    env = dict(compiler.env)
    exec(compile(source, f"<avro reader {parsed['name']}>", "exec"), env)
    read: ReadFn = env["read"]
    if native.module is None or not native.enabled():
        return read
    try:
        program = _Programs(named, text_records).record(parsed)
    except NotImplementedError as exc:
        log.debug("%s: read in Python only (%s)", parsed["name"], exc)
        return read
    fast: ReadFn = native.module.Reader(program, read, header)
    return fast
