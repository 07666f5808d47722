"""A change-event reader for the sink: what `Decoder("change-event")` returns, minus the work the sink
does not need.

Decoding is the sink's largest cost (a full-file event carries ~25 fields in `after` and the same again in
`changes`). For a message written with the latest committed schema, this reader:

* renders `changes` straight into the JSON text the `change_event.changes` column takes (a `JsonText`),
  instead of a list of dicts that would be serialised afterwards;
* skips `before` (the read model keeps `after`; `changes` carries the old values): the value is None.

The native codec (`esr.codec.native`) reads such a message first, the same way (`_native.read_change`);
whatever it refuses, this module's Python code reads, or reports as it does without the native code.

Any other message (an older schema version, Confluent framing with a registry) goes through the generic
decoder, and the mapping renders its `changes` list itself. The reader relies on the schema's exact shape;
`FastChangeReader.enabled` is False (everything generic, just slower) if the latest schema is not that
shape, and the unit tests compare both readers on generated events.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

from connectors.sink.mapping import JsonText
from esr.codec import Decoder, UndecodableMessage, native
from esr.codec.framing import SINGLE_OBJECT_HEADER_SIZE, SINGLE_OBJECT_MAGIC, fingerprint
from esr.codec.reader import read_long, read_size
from esr.codec.schemas import latest

SUBJECT = "change-event"
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_EPOCH = dt.datetime(1970, 1, 1)
_escape: Callable[[str], str] = json.encoder.encode_basestring


_NULLABLE_STRING = ["null", "string"]
_NULLABLE_LONG = ["null", "long"]
# The shape this reader assumes: field names and types of ChangeEvent (enum symbols and docs may vary).
_SHAPE: list[tuple[str, Any]] = [
    ("event_id", "string"), ("event_type", "enum"), ("op", "enum"), ("entity_type", "enum"),
    ("entity_id", "string"), ("vpd", "string"), ("person_id", _NULLABLE_STRING),
    ("employee_number", _NULLABLE_STRING),
    ("changes", ("array", [("field", "string"), ("old", _NULLABLE_STRING), ("new", _NULLABLE_STRING)])),
    ("before", ["null", ("map", _NULLABLE_STRING)]), ("after", ["null", ("map", _NULLABLE_STRING)]),
    ("effective_date", ["null", "int:date"]),
    ("source", [("file_name", "string"), ("file_sha256", "string"), ("sequence", _NULLABLE_LONG),
                ("extract_type", ["null", "enum"]), ("run_date", ["null", "long:local-timestamp-millis"]),
                ("record_code", _NULLABLE_STRING), ("line_no", _NULLABLE_LONG), ("topic", _NULLABLE_STRING),
                ("partition", ["null", "int"]), ("offset", _NULLABLE_LONG)]),
    ("ts_ms", "long"),
]


def _shape(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_shape(branch) for branch in schema]
    if isinstance(schema, str):
        return schema
    kind = schema["type"]
    if "logicalType" in schema:
        return f"{kind}:{schema['logicalType']}"
    if kind == "record":
        return [(f["name"], _shape(f["type"])) for f in schema["fields"]]
    if kind == "array":
        return ("array", _shape(schema["items"]))
    if kind == "map":
        return ("map", _shape(schema["values"]))
    if kind == "enum":
        return "enum"
    return _shape(kind)


def _field_type(schema: dict[str, Any], *path: str) -> Any:
    found: Any = schema
    for name in path:
        found = next(f["type"] for f in found["fields"] if f["name"] == name)
        if isinstance(found, list):
            found = next(b for b in found if b != "null")
    return found


# Readers of one value at b[p]: (value, the position after it). Module functions, not closures: a closure
# over `b` would be made again for every message and would turn `b` into a cell in the loops below.

def _string(b: bytes, p: int) -> tuple[str, int]:
    n = b[p]
    if n & 0x81 == 0:
        p += 1
        n >>= 1
    else:
        n, p = read_size(b, p)
    end = p + n
    if end > len(b):
        raise ValueError("string runs past the end")
    return b[p:end].decode(), end


def _optional_string(b: bytes, p: int) -> tuple[str | None, int]:
    index = b[p]
    if index == 0:
        return None, p + 1
    if index != 2:
        raise ValueError(f"union branch {index}")
    return _string(b, p + 1)


def _long(b: bytes, p: int) -> tuple[int, int]:
    c = b[p]
    if c < 0x80:
        return (c >> 1) ^ -(c & 1), p + 1
    return read_long(b, p)


def _optional_long(b: bytes, p: int) -> tuple[int | None, int]:
    index = b[p]
    if index == 0:
        return None, p + 1
    if index != 2:
        raise ValueError(f"union branch {index}")
    return _long(b, p + 1)


def _count(b: bytes, p: int) -> tuple[int, int]:
    """An array or map block's item count (a negative count is followed by the block's byte size)."""
    n, p = _long(b, p)
    if n < 0:
        n = -n
        _, p = _long(b, p)
    if n > len(b) - p:
        raise ValueError(f"block count {n} exceeds the bytes left")
    return n, p


class FastChangeReader:
    """`decode(bytes) -> dict`, like `Decoder("change-event").decode` (see the module doc for the two
    differences); UndecodableMessage for anything it cannot read."""

    def __init__(self) -> None:
        schema = latest(SUBJECT)
        self.generic = Decoder(SUBJECT)
        self.enabled = _shape(schema) == _SHAPE
        self._header = SINGLE_OBJECT_MAGIC + fingerprint(schema)
        self._event_types = tuple(_field_type(schema, "event_type")["symbols"])
        self._ops = tuple(_field_type(schema, "op")["symbols"])
        self._entity_types = tuple(_field_type(schema, "entity_type")["symbols"])
        self._extract_types = tuple(_field_type(schema, "source", "extract_type")["symbols"])
        self._run_dates: dict[int, dt.datetime] = {}
        self._dates: dict[int, dt.date] = {}
        # field names as read (bytes) -> what they become: few, and every event repeats them
        self._heads: dict[bytes, tuple[str, str]] = {}  # -> ('{"field":<name>,"old":', the same + 'null,"new":')
        self._keys: dict[bytes, str] = {}  # -> the name, as a key of `after`
        self._native: Callable[[bytes, int], dict[str, Any]] | None = None
        if native.module is not None and native.enabled():
            self._native = functools.partial(
                native.module.read_change, self._event_types, self._ops, self._entity_types, self._extract_types,
                self._dates, self._date, self._run_dates, self._run_date, JsonText,
            )

    def _date(self, days: int) -> dt.date:
        found = self._dates.get(days)
        if found is None:
            found = self._dates[days] = dt.date.fromordinal(days + _EPOCH_ORDINAL)
        return found

    def _run_date(self, millis: int) -> dt.datetime:
        found = self._run_dates.get(millis)
        if found is None:
            if len(self._run_dates) > 4096:
                self._run_dates.clear()
            found = self._run_dates[millis] = _EPOCH + dt.timedelta(milliseconds=millis)
        return found

    def decode(self, data: bytes) -> dict[str, Any]:
        if self.enabled and data[:SINGLE_OBJECT_HEADER_SIZE] == self._header:
            if self._native is not None:
                try:
                    return self._native(data, SINGLE_OBJECT_HEADER_SIZE)
                except Exception:
                    pass  # refused (or corrupt): the Python reader reads it, or reports it
            try:
                return self._read(data, SINGLE_OBJECT_HEADER_SIZE)
            except Exception as exc:  # a corrupt body surfaces as many exception classes
                raise UndecodableMessage(
                    f"corrupt or unreadable {SUBJECT} message: {type(exc).__name__}: {exc}") from exc
        return self.generic.decode(data)

    def _read(self, b: bytes, p: int) -> dict[str, Any]:
        string, optional_string, long, optional_long, count = _string, _optional_string, _long, _optional_long, _count
        event_id, p = string(b, p)
        index, p = long(b, p)
        event_type = self._event_types[index]
        index, p = long(b, p)
        op = self._ops[index]
        index, p = long(b, p)
        entity_type = self._entity_types[index]
        entity_id, p = string(b, p)
        vpd, p = string(b, p)
        person_id, p = optional_string(b, p)
        employee_number, p = optional_string(b, p)

        # changes -> JSON text (strings read inline: a call per string would double the cost)
        escape = _escape
        heads = self._heads
        parts: list[str] = []
        end = len(b)
        n, p = count(b, p)
        while n:
            for _ in range(n):
                size = b[p]
                if size & 0x81 == 0:
                    size >>= 1
                    p += 1
                else:
                    size, p = read_size(b, p)
                name = b[p:p + size]
                found = heads.get(name)
                if found is None:
                    if len(heads) > 4096:
                        heads.clear()
                    head = '{"field":' + escape(name.decode()) + ',"old":'
                    found = heads[name] = (head, head + 'null,"new":')
                p += size
                index = b[p]
                p += 1
                if index == 0:
                    head = found[1]
                elif index == 2:
                    size = b[p]
                    if size & 0x81 == 0:
                        size >>= 1
                        p += 1
                    else:
                        size, p = read_size(b, p)
                    head = found[0] + escape(b[p:p + size].decode()) + ',"new":'
                    p += size
                else:
                    raise ValueError(f"union branch {index}")
                index = b[p]
                p += 1
                if index == 0:
                    new = "null"
                elif index == 2:
                    size = b[p]
                    if size & 0x81 == 0:
                        size >>= 1
                        p += 1
                    else:
                        size, p = read_size(b, p)
                    new = escape(b[p:p + size].decode())
                    p += size
                else:
                    raise ValueError(f"union branch {index}")
                parts.append(head + new + "}")
            if p > end:
                raise ValueError("changes run past the end")
            n, p = count(b, p)
        changes = JsonText("[" + ",".join(parts) + "]")

        # before: skipped
        index = b[p]
        p += 1
        if index == 2:
            n, p = count(b, p)
            while n:
                for _ in range(n):
                    size, p = read_size(b, p)
                    p += size
                    if b[p] == 2:
                        size, p = read_size(b, p + 1)
                        p += size
                    elif b[p] == 0:
                        p += 1
                    else:
                        raise ValueError(f"union branch {b[p]}")
                n, p = count(b, p)
        elif index != 0:
            raise ValueError(f"union branch {index}")

        # after
        after: dict[str, str | None] | None = None
        index = b[p]
        p += 1
        if index == 2:
            after = {}
            keys = self._keys
            n, p = count(b, p)
            while n:
                for _ in range(n):
                    size = b[p]
                    if size & 0x81 == 0:
                        size >>= 1
                        p += 1
                    else:
                        size, p = read_size(b, p)
                    name = b[p:p + size]
                    key = keys.get(name)
                    if key is None:
                        if len(keys) > 4096:
                            keys.clear()
                        key = keys[name] = name.decode()
                    p += size
                    index = b[p]
                    p += 1
                    if index == 0:
                        after[key] = None
                        continue
                    if index != 2:
                        raise ValueError(f"union branch {index}")
                    size = b[p]
                    if size & 0x81 == 0:
                        size >>= 1
                        p += 1
                    else:
                        size, p = read_size(b, p)
                    after[key] = b[p:p + size].decode()
                    p += size
                if p > end:
                    raise ValueError("after runs past the end")
                n, p = count(b, p)
        elif index != 0:
            raise ValueError(f"union branch {index}")

        days, p = optional_long(b, p)
        effective_date = None if days is None else self._date(days)

        file_name, p = string(b, p)
        file_sha256, p = string(b, p)
        sequence, p = optional_long(b, p)
        extract_index, p = optional_long(b, p)
        extract_type = None if extract_index is None else self._extract_types[extract_index]
        millis, p = optional_long(b, p)
        run_date = None if millis is None else self._run_date(millis)
        record_code, p = optional_string(b, p)
        line_no, p = optional_long(b, p)
        topic, p = optional_string(b, p)
        partition, p = optional_long(b, p)
        offset, p = optional_long(b, p)
        ts_ms, p = long(b, p)
        if p != len(b):
            raise ValueError(f"{len(b) - p} byte(s) after the record")
        return {
            "event_id": event_id, "event_type": event_type, "op": op, "entity_type": entity_type,
            "entity_id": entity_id, "vpd": vpd, "person_id": person_id, "employee_number": employee_number,
            "changes": changes, "before": None, "after": after, "effective_date": effective_date,
            "source": {
                "file_name": file_name, "file_sha256": file_sha256, "sequence": sequence,
                "extract_type": extract_type, "run_date": run_date, "record_code": record_code,
                "line_no": line_no, "topic": topic, "partition": partition, "offset": offset,
            },
            "ts_ms": ts_ms,
        }
