"""Message framing (anchors §4.1, §4.2): how the writer schema travels in front of the Avro body.

- Avro single-object encoding (default, no registry): `C3 01` + 8-byte little-endian CRC-64-AVRO
  fingerprint of the schema's Parsing Canonical Form + body.
- Confluent Schema Registry wire format: `00` + 4-byte big-endian schema id + body.

The first byte tells them apart, so one decoder reads both and a fleet can move between them.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
SINGLE_OBJECT_HEADER_SIZE = 10
CONFLUENT_HEADER_SIZE = 5
CONTENT_TYPE_HEADER = "content-type"

_SCHEMA_ID = struct.Struct(">I")


class UndecodableMessage(Exception):  # an outcome for the dead-letter queue, named as such
    """A message this process cannot decode: unknown framing, unknown writer schema or a corrupt body.

    Never a bug in the caller: dead-letter the message with `str(exc)` as the reason.
    """


class Framing(enum.Enum):
    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


def fingerprint(schema: dict[str, Any]) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, as the 8 bytes of the single-object header."""
    return bytes.fromhex(_fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def single_object_header(schema: dict[str, Any]) -> bytes:
    return SINGLE_OBJECT_MAGIC + fingerprint(schema)


def confluent_header(schema_id: int) -> bytes:
    return CONFLUENT_MAGIC + _SCHEMA_ID.pack(schema_id)


def content_type(schema: dict[str, Any]) -> str:
    """`content-type` header value for humans and tools; the hex is the header's bytes, in that order."""
    return f"application/avro; fp={fingerprint(schema).hex()}"


@dataclass(frozen=True, slots=True)
class Frame:
    framing: Framing
    schema_ref: bytes | int  # fingerprint (single-object) or schema id (Confluent)
    body_offset: int


def read_frame(data: bytes) -> Frame:
    """Identify the framing of `data` and its writer schema reference; UndecodableMessage if neither."""
    if data[:2] == SINGLE_OBJECT_MAGIC:
        if len(data) < SINGLE_OBJECT_HEADER_SIZE:
            raise UndecodableMessage(f"single-object message of {len(data)} bytes is shorter than its header")
        return Frame(Framing.SINGLE_OBJECT, data[2:SINGLE_OBJECT_HEADER_SIZE], SINGLE_OBJECT_HEADER_SIZE)
    if data[:1] == CONFLUENT_MAGIC:
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise UndecodableMessage(f"Confluent-framed message of {len(data)} bytes is shorter than its header")
        return Frame(Framing.CONFLUENT, _SCHEMA_ID.unpack_from(data, 1)[0], CONFLUENT_HEADER_SIZE)
    if not data:
        raise UndecodableMessage("empty message")
    raise UndecodableMessage(
        f"unknown framing: starts with {data[:4].hex(' ')}, expected c3 01 (Avro single-object) "
        "or 00 (Confluent Schema Registry)"
    )
