"""The native fast path of the codec: `_native`, a C extension (esr/codec/_native.pyx, built by setup.py at
install) that interprets small programs compiled from a schema, plus the sink's change-event reader.

`reader` and `writer` compile each schema into a program of nested tuples (a `ReadOp` or `WriteOp`, then
its operands: see `reader._Programs` and `writer._Programs`) and hand it to `_native.Reader` /
`_native.Writer`, with the pure-Python code as the reference: the native code reads or writes the common
case and raises on anything else, whereupon the reference reads or writes it (or raises what it raises).
A schema the programs cannot express is read and written in Python only.

`ESR_CODEC_NATIVE=0` in the environment (read whenever a schema is compiled) forces the pure-Python code;
so does a missing extension (one warning in the log).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from enum import IntEnum
from types import ModuleType

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "ESR_CODEC_NATIVE"


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("esr.codec._native")
    except ImportError as exc:
        log.warning("the native Avro codec is not built (%s): using the pure-Python codec", exc)
        return None


module: ModuleType | None = _load()


def enabled() -> bool:
    """Whether schemas compiled now get the native code: the extension is there and not switched off."""
    return module is not None and os.environ.get(ENVIRONMENT_VARIABLE, "1") != "0"


#: floats are copied as they are in the message: the native reader takes them on little-endian machines only
LITTLE_ENDIAN = sys.byteorder == "little"


class ReadOp(IntEnum):
    """The opcodes of reader programs (`_native.OPCODES`, which a test compares with these)."""

    R_NULL = 0
    R_BOOL = 1
    R_LONG = 2
    R_FLOAT = 3
    R_DOUBLE = 4
    R_STRING = 5
    R_BYTES = 6
    R_FIXED = 7  # size
    R_ENUM = 8  # symbols
    R_RECORD = 9  # field names, field programs
    R_TEXT_RECORD = 10  # TextRecord, field names, field programs (R_NULLABLE or a text value)
    R_NULLABLE = 11  # the null branch's index (0 or 1), the other branch's program
    R_UNION = 12  # the branches' programs
    R_ARRAY = 13  # the items' program
    R_MAP = 14  # the values' program
    R_MEMO_INT = 15  # memo cache, memo miss, the memo's `_native.Slots`: keyed by the int
    R_MEMO_LONG = 16  # the same, keyed by the varint's bytes
    R_MEMO_BYTES = 17  # the same, keyed by the bytes
    R_CALL_BYTES = 18  # a function of the bytes
    R_TEXT_BOOL = 19  # "true" / "false"
    R_TEXT_STR = 20  # str() of the value the program reads


class WriteOp(IntEnum):
    """The opcodes of writer programs (`_native.OPCODES`, which a test compares with these)."""

    W_NULL = 0
    W_BOOL = 1
    W_LONG = 2
    W_CALL = 3  # a function of the value returning its bytes
    W_STRING = 5
    W_BYTES = 6
    W_FIXED = 7  # size
    W_ENUM = 8  # {symbol: its bytes}
    W_RECORD = 9  # field names, field programs
    W_NULLABLE = 11  # null's index bytes, the other branch's index bytes (b"" if its program writes it), program
    W_UNION = 12  # null's index bytes or None, {branch name: (index bytes, program)}
    W_ARRAY = 13  # the items' program
    W_MAP = 14  # the values' program
    W_MEMO = 15  # memo cache, memo miss: the value's bytes
