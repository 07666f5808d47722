"""Streaming reader for ESR files: constant memory whatever the file size.

Two passes over one open file. The first (`scan`) hashes the bytes, counts the lines and reads the header
and trailer, so a file is accepted or rejected before anything is published. The second
(`EsrFile.records`) decodes and parses the data lines one at a time.

Decoding (Q4): a UTF-8 byte-order mark means UTF-8; otherwise each line is read as UTF-8 when it is
valid UTF-8 and as Windows-1252 when it is not (bytes that Windows-1252 leaves undefined map as in
ISO-8859-1). LF and CRLF both end a line. Blank lines are ignored but keep their line numbers.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar, overload

from esr.format.header import (
    FileName,
    FileRejected,
    Header,
    RejectionCode,
    check_record_count,
    parse_file_name,
    parse_header,
    parse_trailer,
)
from esr.format.layouts import DELIMITER, HEADER_CODE, TRAILER_CODE
from esr.format.lines import ParsedLine, Quarantined, parse_fields

T = TypeVar("T")

UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_LINE_BYTES = 64 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class RawLine:
    number: int  # physical, 1-based, blank lines included
    text: str | None  # None when the line could not be read as text
    raw: bytes  # the bytes as read (cut at the length limit)
    problem: str | None = None


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# The characters of `_CONTROL` that ASCII has: an ASCII line without them decodes to itself, no problem.
_ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])


def _bad_character(text: str) -> str | None:
    match = _CONTROL.search(text)
    if match is None:
        return None
    return f"control character U+{ord(match.group()):04X} at column {match.start() + 1} (binary data?)"


def decode_line(raw: bytes, utf8_only: bool) -> tuple[str | None, str | None]:
    """Bytes of one line (no line ending) -> (text, problem)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if utf8_only:
            return None, f"invalid UTF-8 at byte {exc.start + 1} in a file marked UTF-8 by its byte-order mark"
        text = raw.decode("cp1252", errors="surrogateescape")
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            text = "".join(chr(ord(ch) - 0xDC00) if "\udc80" <= ch <= "\udcff" else ch for ch in text)
    problem = _bad_character(text)
    if problem is not None:
        return None, problem
    return text, None


def iter_raw_lines(
    stream: BinaryIO, *, limit: int | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without line ending, too long) for every line, blank ones included.

    A line longer than `max_line_bytes` is cut there and the rest of it skipped, never held in memory.
    `limit` stops after that many bytes (the size seen by the first pass).

    Read in blocks of `_CHUNK` bytes and split, with exactly the outcome of reading line by line with
    `readline(max_line_bytes + 2)`: a line is its bytes up to LF with every trailing CR removed; one whose
    first `max_line_bytes + 2` bytes hold no LF is too long (so is one left longer than `max_line_bytes`
    once its CRs are removed), and is cut to `max_line_bytes`.
    """
    remaining = -1 if limit is None else limit
    number = 0
    cut = max_line_bytes
    window = max_line_bytes + 2  # what one readline call would have returned at most
    carry = b""  # the start of a line that runs past the block (at most `window` bytes of it)
    overflow = False  # that line is longer than `carry`: the rest of it is being skipped
    while remaining != 0:
        block = stream.read(_CHUNK if remaining < 0 else min(_CHUNK, remaining))
        if not block:
            break
        if remaining > 0:
            remaining -= len(block)
        lines = block.split(b"\n")
        tail = lines.pop()  # after the last LF: the start of the next line (or nothing)
        if lines and (carry or overflow):  # the line carried over ends in this block
            if overflow:
                number += 1
                yield number, carry[:cut], True
                del lines[0]
            else:
                lines[0] = carry + lines[0]
            carry, overflow = b"", False
        for line in lines:
            number += 1
            size = len(line)
            if size <= cut:
                yield number, line.rstrip(b"\r"), False
            elif size < window:  # up to limit + 1 bytes: its CRs may bring it back within the limit
                kept = line.rstrip(b"\r")
                if len(kept) > cut:
                    yield number, kept[:cut], True
                else:
                    yield number, kept, False
            else:
                yield number, line[:cut], True
        if tail and not overflow:
            carry += tail
            if len(carry) > window:
                carry, overflow = carry[:window], True
    if carry or overflow:  # a last line without LF (readline: too long if bytes were left after `window`)
        number += 1
        if overflow or (len(carry) == window and remaining != 0):
            yield number, carry[:cut], True
        else:
            line = carry.rstrip(b"\r")
            if len(line) > cut:
                yield number, line[:cut], True
            else:
                yield number, line, False


@dataclass(slots=True)
class FileScan:
    """What the first pass learned about a file."""

    path: Path
    size: int
    sha256: str
    line_count: int  # non-blank lines, HDR and TRL included
    last_line_no: int
    utf8_bom: bool
    first_line: str | None
    last_line: str | None
    file_name: FileName | None = None
    header: Header | None = None
    trailer_count: int | None = None
    warnings: list[str] = field(default_factory=list)


def scan(stream: BinaryIO, path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> FileScan:
    """First pass: SHA-256 of the bytes, non-blank line count, first and last non-blank line."""
    digest = hashlib.sha256()
    stream.seek(0)
    while block := stream.read(_CHUNK):
        digest.update(block)
    size = stream.tell()
    stream.seek(0)
    head = stream.read(3)
    utf8_bom = head == UTF8_BOM
    stream.seek(3 if utf8_bom else 0)
    count = 0
    last_no = 0
    first: bytes | None = None
    last: bytes | None = None
    for number, line, _too_long in iter_raw_lines(stream, max_line_bytes=max_line_bytes):
        if not line.strip():
            continue
        count += 1
        if first is None:
            first = line
        last = line
        last_no = number
    return FileScan(
        path=path,
        size=size,
        sha256=digest.hexdigest(),
        line_count=count,
        last_line_no=last_no,
        utf8_bom=utf8_bom,
        first_line=None if first is None else decode_line(first, utf8_bom)[0],
        last_line=None if last is None else decode_line(last, utf8_bom)[0],
    )


class EsrFile:
    """An ESR Outbound v2 file opened for validation and streaming.

    `open()` runs the file-level checks that need only the file itself (name, header, trailer, count) and
    raises `FileRejected` with the reference's rejection code. Trust and sequence checks need the ledger
    and belong to the ingest job.
    """

    def __init__(
        self, path: Path, *, strict_count: bool = True, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        self.path = path
        self.strict_count = strict_count
        self.max_line_bytes = max_line_bytes
        self._stream: BinaryIO | None = None
        self._scan: FileScan | None = None

    def __enter__(self) -> EsrFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    @property
    def scanned(self) -> FileScan | None:
        """The scan, if `open()` got as far as scanning (it did when it rejected the content)."""
        return self._scan

    @property
    def scan(self) -> FileScan:
        if self._scan is None:
            raise RuntimeError("EsrFile.open() has not run")
        return self._scan

    @property
    def header(self) -> Header:
        assert self.scan.header is not None
        return self.scan.header

    @property
    def file_name(self) -> FileName:
        assert self.scan.file_name is not None
        return self.scan.file_name

    def open(self) -> FileScan:
        """Scan and check the file; on rejection the scan (hash, counts) is still available as `.scan`."""
        try:
            # Checked before opening as well as after: opening a FIFO blocks until something writes to it.
            if not stat.S_ISREG(self.path.stat().st_mode):
                raise FileRejected(RejectionCode.FILE_NOT_AVAILABLE, f"{self.path} is not a regular file")
            self._stream = open(self.path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        except OSError as exc:
            raise FileRejected(
                RejectionCode.FILE_NOT_AVAILABLE, f"{self.path}: cannot be read ({exc.strerror})"
            ) from None
        if not stat.S_ISREG(os.fstat(self._stream.fileno()).st_mode):
            raise FileRejected(RejectionCode.FILE_NOT_AVAILABLE, f"{self.path} is not a regular file")
        result = self._scan = scan(self._stream, self.path, max_line_bytes=self.max_line_bytes)
        result.file_name = parse_file_name(self.path.name)
        if result.line_count == 0:
            raise FileRejected(
                RejectionCode.NO_HEADER,
                "the file is empty"
                if result.size == (len(UTF8_BOM) if result.utf8_bom else 0)
                else "the file holds only blank lines",
            )
        if result.first_line is None:
            raise FileRejected(RejectionCode.NO_HEADER, "line 1 is not readable text (binary data?)")
        result.header = parse_header(result.first_line, result.file_name)
        if result.line_count < 2:
            raise FileRejected(RejectionCode.NO_TRAILER, "the file ends after its header (no TRL record)")
        if result.last_line is None:
            raise FileRejected(
                RejectionCode.NO_TRAILER,
                f"last line (line {result.last_line_no}) is not readable text (binary data?), not a TRL record",
            )
        result.trailer_count = parse_trailer(result.last_line, result.last_line_no)
        warning = check_record_count(result.trailer_count, result.line_count, self.strict_count)
        if warning:
            result.warnings.append(warning)
        if result.line_count == 2:
            result.warnings.append("the file holds no records (header and trailer only)")
        return result

    def records(self) -> Iterator[tuple[int, ParsedLine]]:
        """Second pass: (line number, parsed line) for every data line between HDR and TRL."""
        for number, _raw, parsed in self.lines():
            yield number, parsed

    @overload
    def lines(self) -> Iterator[tuple[int, bytes, ParsedLine]]: ...

    @overload
    def lines(self, shortcut: Callable[[list[str]], T | None]) -> Iterator[tuple[int, bytes, ParsedLine | T]]: ...

    def lines(
        self, shortcut: Callable[[list[str]], T | None] | None = None
    ) -> Iterator[tuple[int, bytes, ParsedLine | T]]:
        """Like `records`, with each line's bytes (cut at the length limit) for the import log.

        `shortcut(fields)`, if given, goes first for every data line that reads as text (split on `~`, not HDR
        or TRL): what it returns instead of the parsed line, unless None.
        """
        scan_result = self.scan
        stream = self._stream
        assert stream is not None
        stream.seek(3 if scan_result.utf8_bom else 0)
        limit = scan_result.size - (3 if scan_result.utf8_bom else 0)
        seen_header = False
        for number, raw, too_long in iter_raw_lines(stream, limit=limit, max_line_bytes=self.max_line_bytes):
            if number >= scan_result.last_line_no:
                break
            if not raw.strip():  # the same test as scan(): an over-long line is judged by its kept part
                continue
            if not seen_header:
                # The first non-blank line, as in scan(), even when over-long: were it quarantined here, the
                # next line would be taken for the header and dropped unseen.
                seen_header = True
                continue
            if too_long:
                yield number, raw, Quarantined(
                    raw[:3].decode("latin-1"), f"line is longer than {self.max_line_bytes} bytes"
                )
                continue
            text: str | None
            if raw.isascii() and len(raw.translate(None, _ASCII_CONTROLS)) == len(raw):
                text = raw.decode("ascii")  # what decode_line makes of it, at a third of the cost
            else:
                text, problem = decode_line(raw, scan_result.utf8_bom)
                if text is None:
                    yield number, raw, Quarantined(raw[:3].decode("latin-1"), problem or "unreadable line")
                    continue
            fields = text.split(DELIMITER)
            if fields[0] in (HEADER_CODE, TRAILER_CODE):
                yield number, raw, Quarantined(fields[0], f"{fields[0]} record inside the file body")
                continue
            if shortcut is not None:
                taken = shortcut(fields)
                if taken is not None:
                    yield number, raw, taken
                    continue
            yield number, raw, parse_fields(fields)
        if os.fstat(stream.fileno()).st_size != scan_result.size:
            raise FileRejected(
                RejectionCode.BYTE_COUNT,
                f"{self.path} changed size while it was read ({scan_result.size} bytes when scanned)",
            )


def display_text(raw: bytes) -> str:
    """A line's bytes as text for people: decoded like the reader does, odd bytes shown as escapes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="backslashreplace")
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)
