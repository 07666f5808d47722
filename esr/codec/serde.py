"""Encoder and Decoder of one subject's events, in either framing (see `framing`).

Schemas are parsed and compiled once, at construction (`writer`, `reader`: schema-specialised code, byte
for byte what fastavro writes and reads). The Decoder knows every committed version of its subject by
fingerprint and, with a registry, looks schema ids up once each; it always returns values in the shape of
the latest committed version (older writers go through fastavro's schema resolution), and raises
`UndecodableMessage` for anything it cannot read.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from fastavro import parse_schema, schemaless_reader

from esr.codec import native
from esr.codec.framing import (
    CONTENT_TYPE_HEADER,
    SINGLE_OBJECT_HEADER_SIZE,
    Framing,
    UndecodableMessage,
    confluent_header,
    content_type,
    fingerprint,
    read_frame,
    single_object_header,
)
from esr.codec.reader import ReadFn, compile_reader
from esr.codec.schemas import Schema, load_versions, subject
from esr.codec.writer import Template, TemplateMismatch, compile_template, compile_writer


def _schema_registry() -> Any:
    """`confluent_kafka.schema_registry`, imported on first use: it needs the [schemaregistry] extra."""
    try:
        import confluent_kafka.schema_registry as module
    except ImportError as exc:
        raise ImportError(f"a schema registry needs confluent-kafka[schemaregistry]: {exc}") from exc
    return module


class Registry:
    """Schema ids from a Confluent Schema Registry, cached in both directions.

    Production registers schemas from CI under the subject's compatibility mode and runs with
    `auto_register=False`, so a producer only looks its schema up (anchors §4.5).
    """

    def __init__(self, client: Any, *, auto_register: bool = True) -> None:
        self.client = client
        self.auto_register = auto_register
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, Schema | None] = {}

    @classmethod
    def from_url(cls, url: str, *, auto_register: bool = True, **conf: Any) -> Registry:
        """A client for `url`; `mock://<name>` gives an in-process mock (one store per client)."""
        client = _schema_registry().SchemaRegistryClient.new_client({"url": url, **conf})
        return cls(client, auto_register=auto_register)

    def id_for(self, registry_subject: str, schema: Schema) -> int:
        """The id of `schema` under `registry_subject`, registering it first if `auto_register`."""
        text = json.dumps(schema, separators=(",", ":"))
        key = (registry_subject, text)
        if key not in self._ids:
            candidate = _schema_registry().Schema(text, "AVRO")
            if self.auto_register:
                self._ids[key] = int(self.client.register_schema(registry_subject, candidate))
            else:
                self._ids[key] = int(self.client.lookup_schema(registry_subject, candidate).schema_id)
        return self._ids[key]

    def schema(self, schema_id: int) -> Schema | None:
        """The Avro schema registered as `schema_id`, or None if the registry has no such id.

        Other registry errors (unreachable, 5xx) propagate: they are transient, not a bad message.
        """
        if schema_id not in self._schemas:
            try:
                registered = self.client.get_schema(schema_id)
            except _schema_registry().SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
                self._schemas[schema_id] = None
            else:
                if (registered.schema_type or "AVRO") != "AVRO":
                    self._schemas[schema_id] = None
                else:
                    self._schemas[schema_id] = json.loads(registered.schema_str)
        return self._schemas[schema_id]


class Encoder:
    """Encodes events of one subject with its latest committed schema (or `version`).

    Single-object framing by default; Confluent wire format when given a `Registry`.
    """

    def __init__(self, subject_name: str, *, registry: Registry | None = None, version: int | None = None) -> None:
        versions = load_versions(subject_name)
        if not versions:
            raise LookupError(f"no committed schema for {subject_name!r}")
        self.schema: Schema = versions[-1] if version is None else versions[version - 1]
        self.version = len(versions) if version is None else version
        self.fingerprint = fingerprint(self.schema)
        self.content_type = content_type(self.schema)
        self.headers: list[tuple[str, bytes]] = [(CONTENT_TYPE_HEADER, self.content_type.encode())]
        if registry is None:
            self.framing = Framing.SINGLE_OBJECT
            self.schema_id: int | None = None
            header = single_object_header(self.schema)
        else:
            self.framing = Framing.CONFLUENT
            self.schema_id = registry.id_for(subject(subject_name).registry_subject, self.schema)
            header = confluent_header(self.schema_id)
        self.subject = subject_name
        self._frame_header = header
        self._write = compile_writer(self.schema, header)
        self._templates: dict[tuple[tuple[str, ...], ...], Template | TemplateMismatch] = {}

    def template(self, variables: Sequence[str], constants: Sequence[str], raw: Sequence[str] = ()) -> Template:
        """A `Template` writer of this subject's events in this framing (compiled once per field split);
        `TemplateMismatch` when the schema's fields are not exactly `variables` + `constants`."""
        key = (tuple(variables), tuple(constants), tuple(raw))
        found = self._templates.get(key)
        if found is None:
            try:
                found = compile_template(self.schema, self._frame_header, variables, constants, raw)
            except TemplateMismatch as exc:
                found = exc
            self._templates[key] = found
        if isinstance(found, TemplateMismatch):
            raise found
        return found

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Header + Avro body; ValueError when the event does not fit the schema.

        A union with several record branches (the payload) takes `(fullname, value)`, as `events` builds it.
        """
        try:
            return self._write(event)
        except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"{self.subject} event does not fit v{self.version}: {type(exc).__name__}: {exc}") from exc


class Decoder:
    """Decodes events of one subject written in either framing with any known version of its schema.

    A message written with the latest version goes through the compiled reader; older versions (and
    registry schemas that are none of ours) through fastavro's schema resolution to the latest.

    `text_records`: full names of record types the compiled reader returns as `reader.TextRecord`s (non-null
    fields as canonical text); a message written with an older version has them as typed values.
    """

    def __init__(self, subject_name: str, *, registry: Registry | None = None,
                 text_records: Collection[str] = ()) -> None:
        versions = load_versions(subject_name)
        if not versions:
            raise LookupError(f"no committed schema for {subject_name!r}")
        self.subject = subject_name
        self.registry = registry
        self._reader = parse_schema(versions[-1])
        self._by_fingerprint: dict[bytes, ReadFn] = {
            fingerprint(schema): _resolving_reader(schema, self._reader) for schema in versions[:-1]
        }
        # the common case, tested first: single-object framing, written with the latest version
        self._latest_header = single_object_header(versions[-1])
        self._read_latest = self._by_fingerprint[fingerprint(versions[-1])] = compile_reader(
            versions[-1], text_records=text_records, header=self._latest_header)
        self._latest_what = f"fingerprint {fingerprint(versions[-1]).hex()}"
        self._by_id: dict[int, ReadFn | str] = {}  # str: why the id cannot be used
        # the native reader checks the header itself (it refuses other messages, and whatever it cannot read)
        self._native_decode: Callable[[bytes], dict[str, Any]] | None = None
        if native.module is not None and isinstance(self._read_latest, native.module.Reader):
            self._native_decode = self._read_latest.decode

    def decode(self, data: bytes) -> dict[str, Any]:
        """The event as a dict in the latest schema's shape (payload: a plain dict, enums: symbols)."""
        if self._native_decode is not None:
            try:
                return self._native_decode(data)
            except Exception:
                pass  # another writer schema, or refused: read below (its values and errors are the reference)
        if data[:SINGLE_OBJECT_HEADER_SIZE] == self._latest_header:
            read, offset, what = self._read_latest, SINGLE_OBJECT_HEADER_SIZE, self._latest_what
        else:
            read, offset, what = self._reader_of(data)
        try:
            return read(data, offset)
        except Exception as exc:  # a corrupt body surfaces as many exception classes
            raise UndecodableMessage(
                f"corrupt or unreadable {self.subject} message ({what}): {type(exc).__name__}: {exc}"
            ) from exc

    def _reader_of(self, data: bytes) -> tuple[ReadFn, int, str]:
        """The reader of `data`'s writer schema, where its body starts, and how the schema was named."""
        frame = read_frame(data)
        if frame.framing is Framing.SINGLE_OBJECT:
            assert isinstance(frame.schema_ref, bytes)
            read = self._by_fingerprint.get(frame.schema_ref)
            if read is None:
                raise UndecodableMessage(
                    f"unknown writer schema: fingerprint {frame.schema_ref.hex()} is none of the "
                    f"{len(self._by_fingerprint)} committed {self.subject} version(s)"
                )
            what = f"fingerprint {frame.schema_ref.hex()}"
        else:
            assert isinstance(frame.schema_ref, int)
            read = self._for_id(frame.schema_ref)
            what = f"schema id {frame.schema_ref}"
        return read, frame.body_offset, what

    def _for_id(self, schema_id: int) -> ReadFn:
        found = self._by_id.get(schema_id)
        if found is None:
            found = self._by_id[schema_id] = self._lookup(schema_id)
        if isinstance(found, str):
            raise UndecodableMessage(found)
        return found

    def _lookup(self, schema_id: int) -> ReadFn | str:
        if self.registry is None:
            return f"Confluent-framed message (schema id {schema_id}) but no schema registry is configured"
        schema = self.registry.schema(schema_id)
        if schema is None:
            return f"unknown writer schema: the registry has no Avro schema with id {schema_id}"
        try:
            known = self._by_fingerprint.get(fingerprint(schema))
            return known if known is not None else _resolving_reader(schema, self._reader)
        except Exception as exc:  # a registry may hold schemas fastavro refuses
            return f"registry schema id {schema_id} does not parse: {type(exc).__name__}: {exc}"


def _resolving_reader(writer: Schema, reader: Any) -> ReadFn:
    """fastavro's reader with schema resolution from `writer` to the parsed `reader`."""
    parsed = parse_schema(writer)

    def read(data: bytes, offset: int) -> dict[str, Any]:
        buf = io.BytesIO(data)
        buf.seek(offset)
        value = schemaless_reader(buf, parsed, reader)
        left = len(data) - buf.tell()
        if left:
            raise ValueError(f"{left} byte(s) after the record")
        assert isinstance(value, dict)
        return value

    return read
