from __future__ import annotations

import json
import logging

from esr.observability.logs import JsonFormatter


def test_a_json_line_carries_the_message_level_and_extra_fields() -> None:
    record = logging.LogRecord("esr.ingest", logging.WARNING, __file__, 1, "%s rejected", ("GO_999.DAT",), None)
    record.rejection_code = "RECORD_COUNT"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "GO_999.DAT rejected"
    assert entry["level"] == "warning"
    assert entry["logger"] == "esr.ingest"
    assert entry["rejection_code"] == "RECORD_COUNT"
    assert entry["ts"].endswith("+00:00")


def test_an_exception_is_one_json_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("esr", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
