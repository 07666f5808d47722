"""What the generator yields: typed rows ready for `esr.format.lines`, before they become text."""

from __future__ import annotations

from dataclasses import dataclass

from esr.format.layouts import Layout
from esr.format.lines import format_delete, format_record
from esr.format.values import Value

Row = dict[str, Value]  # typed values by field name (record_code excluded); absent means null


@dataclass(frozen=True, slots=True)
class RecordRow:
    """An add/update ("A") row."""

    layout: Layout
    values: Row


@dataclass(frozen=True, slots=True)
class DeleteRow:
    """A delete ("D") row: the entity id only."""

    layout: Layout
    entity_id: str


GeneratedLine = RecordRow | DeleteRow


def format_line(line: GeneratedLine) -> str:
    if isinstance(line, RecordRow):
        return format_record(line.layout, line.values)
    return format_delete(line.layout, line.entity_id)
