"""esr.validation: problems, errors and the JSON reader shared by profiles, mapping and mileage."""

from __future__ import annotations

import pytest

from esr.validation import JsonReader, Problem, ValidationError, canonical_json, parse_json, raise_if


def test_error_lists_every_problem() -> None:
    error = ValidationError("thing", [Problem("a", "bad"), Problem("", "worse")])
    assert str(error) == "invalid thing: a: bad; worse"
    assert len(error.problems) == 2
    assert isinstance(error, ValueError)


def test_an_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        ValidationError("thing", [])
    raise_if("thing", [])
    with pytest.raises(ValidationError):
        raise_if("thing", [Problem("a", "b")])


def test_json_reader() -> None:
    problems: list[Problem] = []
    reader = JsonReader({"n": True, "s": "x", "extra": 1}, "obj", problems)
    assert reader.take("n", (int,), 0) == 0  # a bool is not a number
    assert reader.take("s", (str,)) == "x"
    assert reader.take("missing", (str,)) is None
    assert reader.take("optional", (str,), "d") == "d"
    reader.finish()
    assert [str(p) for p in problems] == [
        "obj.n: expected a whole number, got True",
        "obj.missing: is missing",
        "obj.extra: unknown key",
    ]
    lenient: list[Problem] = []
    JsonReader({"extra": 1}, "", lenient, strict=False).finish()
    assert lenient == []


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    assert parse_json(b'{"a": 1}', "x") == {"a": 1}
    with pytest.raises(ValidationError, match="not JSON"):
        parse_json(b"\xff", "x")
