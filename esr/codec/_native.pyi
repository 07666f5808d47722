"""Type stub of the native codec (esr/codec/_native.pyx): see `esr.codec.native`."""

from collections.abc import Callable, Mapping
from typing import Any

OPCODES: dict[str, int]

class Refused(ValueError):
    """Not the common case (or not valid): the reference code decides."""

class Slots:
    """A native reader's cache in front of a memo."""

class Reader:
    reference: Callable[[bytes, int], dict[str, Any]]
    def __init__(
        self, program: tuple[Any, ...], reference: Callable[[bytes, int], dict[str, Any]], header: bytes = b""
    ) -> None: ...
    def __call__(self, data: bytes, offset: int) -> dict[str, Any]: ...
    def read(self, data: bytes, offset: int) -> dict[str, Any]: ...
    def decode(self, data: bytes) -> dict[str, Any]: ...

class Writer:
    reference: Callable[[Mapping[str, Any]], bytes]
    def __init__(
        self, program: tuple[Any, ...], prefix: bytes, reference: Callable[[Mapping[str, Any]], bytes]
    ) -> None: ...
    def __call__(self, datum: Mapping[str, Any]) -> bytes: ...
    def write(self, datum: Mapping[str, Any]) -> bytes: ...

def read_change(
    event_types: tuple[str, ...],
    ops: tuple[str, ...],
    entity_types: tuple[str, ...],
    extract_types: tuple[str, ...],
    dates: dict[int, Any],
    date_of: Callable[[int], Any],
    run_dates: dict[int, Any],
    run_date_of: Callable[[int], Any],
    json_text: Callable[[str], Any],
    data: bytes,
    offset: int,
) -> dict[str, Any]: ...
