"""What the generated files say: every kind of change, referential integrity, costing splits, vocabulary."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from esr.format.layouts import ASSIGNMENT, COSTING, LAYOUTS, PERSON
from esr.format.lines import Delete, Record
from esr.format.reader import decode_line
from esr.format.values import Value
from esr.generate import generate_files, vocab
from esr.generate.trust import Trust
from tests.unit.generate.parsed import ParsedFile, read_clean

# Person-scoped fields that point at another entity, by the layout code they point at.
REFERENCES: dict[str, dict[str, str]] = {
    "ORA": {"parent_organisation_id": "ORA", "location_id": "LCA"},
    "POA": {"organisation_id": "ORA"},
    "ASA": {"person_id": "PRA", "location_id": "LCA", "organisation_id": "ORA", "position_id": "POA",
            "supervisor_person_id": "PRA", "supervisor_assignment_id": "ASA"},
    "PHA": {"person_id": "PRA"},
    "ADA": {"person_id": "PRA"},
    "VHA": {"person_id": "PRA", "assignment_id": "ASA"},
    "COA": {"person_id": "PRA", "assignment_id": "ASA"},
}
SECTION = {"LCA": 0, "LCD": 0, "ORA": 1, "ORD": 1, "POA": 2, "POD": 2}  # anything else: person blocks (3)


def generate(tmp_path: Path, employees: int, days: int, seed: int) -> list[ParsedFile]:
    return [read_clean(path) for path in generate_files("999", employees, days, seed, tmp_path)]


@pytest.fixture(scope="module")
def small_trust(tmp_path_factory: pytest.TempPathFactory) -> list[ParsedFile]:
    """Ten employees for ten days: the rates bottom out at one change of each kind a day."""
    return generate(tmp_path_factory.mktemp("small"), 10, 10, 3)


@pytest.fixture(scope="module")
def larger_trust(tmp_path_factory: pytest.TempPathFactory) -> list[ParsedFile]:
    return generate(tmp_path_factory.mktemp("larger"), 2000, 3, 11)


def _text(values: dict[str, Value], name: str) -> str:
    value = values[name]
    assert isinstance(value, str)
    return value


def _change_kinds(files: list[ParsedFile]) -> list[Counter[str]]:
    """The kinds of change in each change file, recognised from the rows alone."""
    seen: dict[str, dict[str, dict[str, Value]]] = defaultdict(dict)  # code -> id -> latest values
    kinds_per_file: list[Counter[str]] = []
    for number, parsed in enumerate(files):
        kinds: Counter[str] = Counter()
        change_date = parsed.header.run_date.date() - dt.timedelta(days=1)
        for line in parsed.lines:
            if isinstance(line, Delete):
                kinds[line.layout.delete_code] += 1
                continue
            values, code = line.values, line.layout.code
            key = _text(values, line.layout.key_field)
            before = seen[code].get(key)
            if number > 0:
                kinds.update(_kinds_of(code, values, before, change_date))
            seen[code][key] = values
        if number > 0:
            kinds_per_file.append(kinds)
    return kinds_per_file


def _kinds_of(code: str, values: dict[str, Value], before: dict[str, Value] | None,
              change_date: dt.date) -> list[str]:
    start, end = values.get("effective_start"), values.get("effective_end")
    day_before = change_date - dt.timedelta(days=1)
    checks = {
        "new starter": code == "PRA" and before is None and values["hire_date"] == change_date,
        "leaver": code == "PRA" and values.get("termination_date") == change_date,
        "assignment ended": code == "ASA" and values["system_assignment_status"] == "TERM_ASSIGN"
        and values["assignment_end_date"] == change_date,
        "surname change": code == "PRA" and start == change_date and values.get("previous_last_name") is not None,
        "old surname end-dated": code == "PRA" and end == day_before,
        "address change": code == "ADA" and before is not None and end == day_before,
        "new address": code == "ADA" and before is None and start == change_date,
        "secondary assignment": code == "ASA" and before is None and values["primary_assignment"] == "No"
        and start == change_date,
        "vehicle added": code == "VHA" and before is None and start == change_date,
        "vehicle ended": code == "VHA" and end == change_date,
        "phone change": code == "PHA" and before is not None and before["phone_number"] != values["phone_number"],
        "costing change": code == "COA" and before is not None and end == day_before,
        "location change": code == "LCA" and before is not None,
        "new organisation": code == "ORA" and before is None,
    }
    return [kind for kind, matched in checks.items() if matched]


ALL_KINDS = {
    "new starter", "leaver", "assignment ended", "surname change", "old surname end-dated", "address change",
    "new address", "secondary assignment", "vehicle added", "vehicle ended", "phone change", "costing change",
    "location change", "new organisation", "ASD", "PHD", "ADD", "VHD", "COD", "PRD",
}


@pytest.mark.parametrize("trust", ["small_trust", "larger_trust"])
def test_every_change_file_holds_every_kind_of_change(trust: str, request: pytest.FixtureRequest) -> None:
    files: list[ParsedFile] = request.getfixturevalue(trust)
    for parsed, kinds in zip(files[1:], _change_kinds(files), strict=True):
        assert kinds.keys() >= ALL_KINDS, f"{parsed.path.name} lacks {ALL_KINDS - kinds.keys()}"


def test_larger_trusts_change_in_proportion(larger_trust: list[ParsedFile]) -> None:
    for kinds in _change_kinds(larger_trust):
        assert kinds["new starter"] == 6  # 0.3% of 2000
        assert kinds["leaver"] == 5


@pytest.mark.parametrize("trust", ["small_trust", "larger_trust"])
def test_references_point_at_entities_sent_in_the_same_or_an_earlier_file(
        trust: str, request: pytest.FixtureRequest) -> None:
    files: list[ParsedFile] = request.getfixturevalue(trust)
    known: dict[str, set[str]] = defaultdict(set)  # code -> ids ever sent
    live: dict[str, set[str]] = defaultdict(set)  # code -> ids not deleted
    deleted: dict[str, set[str]] = defaultdict(set)
    for parsed in files:
        for line in parsed.lines:
            if isinstance(line, Record):
                known[line.layout.code].add(line.entity_id)
        current_person: str | None = None
        section = 0
        for line in parsed.lines:
            code = line.layout.code
            line_section = SECTION.get(code, 3)
            assert line_section >= section, f"{parsed.path.name}: {code} after section {section} (§1.8)"
            section = line_section
            if isinstance(line, Delete):
                assert line.entity_id in live[code], f"{line.layout.delete_code} of unknown {line.entity_id}"
                live[code].discard(line.entity_id)
                deleted[code].add(line.entity_id)
                continue
            assert line.entity_id not in deleted[code], f"{code} {line.entity_id} reused after its delete"
            live[code].add(line.entity_id)
            if line.layout is PERSON:
                current_person = line.entity_id
            elif line.layout.person_scoped:
                assert line.person_id == current_person, f"{code} {line.entity_id} outside its person's block"
            for field, target in REFERENCES.get(code, {}).items():
                value = line.values.get(field)
                if value is not None:
                    assert value in known[target], f"{code} {line.entity_id}: {field} {value} unknown"


def test_every_live_assignment_is_costed_100_percent(small_trust: list[ParsedFile],
                                                     larger_trust: list[ParsedFile]) -> None:
    for files in (small_trust, larger_trust):
        assignments: dict[str, str] = {}  # assignment id -> person id
        costings: dict[str, dict[str, Value]] = {}
        for parsed in files:
            for line in parsed.lines:
                if isinstance(line, Delete):
                    if line.layout is PERSON:
                        assignments = {a: p for a, p in assignments.items() if p != line.entity_id}
                        costings = {c: v for c, v in costings.items() if v["person_id"] != line.entity_id}
                    elif line.layout is ASSIGNMENT:
                        del assignments[line.entity_id]
                    elif line.layout is COSTING:
                        del costings[line.entity_id]
                elif line.layout is ASSIGNMENT:
                    assignments[line.entity_id] = _text(line.values, "person_id")
                elif line.layout is COSTING:
                    costings[line.entity_id] = line.values
            totals: dict[str, Decimal] = defaultdict(Decimal)
            for values in costings.values():
                if values.get("effective_end") is None:
                    percentage = values["percentage"]
                    assert isinstance(percentage, Decimal)
                    totals[_text(values, "assignment_id")] += percentage
            assert set(totals) == set(assignments), parsed.path.name
            assert set(totals.values()) == {Decimal(100)}, parsed.path.name


def test_full_file_people_look_like_an_nhs_trust(larger_trust: list[ParsedFile]) -> None:
    records = [line for line in larger_trust[0].lines if isinstance(line, Record)]
    by_code: dict[str, list[dict[str, Value]]] = defaultdict(list)
    for record in records:
        by_code[record.layout.code].append(record.values)
    assert Counter({code: len(rows) for code, rows in by_code.items()}) >= Counter(
        {"LCA": 50, "ORA": 100, "POA": 200, "PRA": 2000, "ASA": 2100, "ADA": 2300, "PHA": 2000, "VHA": 350,
         "COA": 2300})
    employee_numbers = {_text(row, "person_id"): _text(row, "employee_number") for row in by_code["PRA"]}
    assert len(set(employee_numbers.values())) == 2000
    assert all(len(number) == 8 and number.isdigit() for number in employee_numbers.values())
    primaries = Counter(_text(row, "person_id") for row in by_code["ASA"] if row["primary_assignment"] == "Yes")
    assert set(primaries.values()) == {1}
    assert len(primaries) == 2000
    for row in by_code["ASA"]:
        number, employee_number = _text(row, "assignment_number"), employee_numbers[_text(row, "person_id")]
        if row["primary_assignment"] == "Yes":
            assert number == employee_number
        else:
            assert number.startswith(f"{employee_number}-")
            assert int(number.split("-")[1]) >= 2
        assert _text(row, "job_name").count("|") == 1
        assert _text(row, "grade").count("|") == 2
        assert _text(row, "position_name").count("|") == 4
    secondary_share = sum(row["primary_assignment"] == "No" for row in by_code["ASA"]) / 2000
    assert 0.07 < secondary_share < 0.16
    assert {row["fuel_type"] for row in by_code["VHA"]} == {"P", "D", "DE", "H", "E"}
    assert {row["user_rates_table"] for row in by_code["VHA"]} == set(vocab.USER_RATES_TABLES)
    assert {row["ownership"] for row in by_code["VHA"]} == {"P", "L"}
    litres = [row["engine_cc"] for row in by_code["VHA"] if isinstance(row["engine_cc"], Decimal)
              and row["engine_cc"] < 10]
    assert litres
    assert len(litres) < 0.1 * len(by_code["VHA"])
    assert {row["phone_type"] for row in by_code["PHA"]} == {"H1", "W1", "M"}
    assert {(row["address_style"], row["primary_flag"]) for row in by_code["ADA"]} == {("GB", "Yes")}
    open_addresses = Counter(_text(row, "person_id") for row in by_code["ADA"] if row.get("effective_end") is None)
    assert set(open_addresses.values()) == {1}
    assert all(_text(row, "location_code").startswith("999 z ") for row in by_code["LCA"])
    assert {row["system_person_type"] for row in by_code["PRA"]} == {"EMP"}


def test_ids_are_unique_digit_strings_per_entity_type(larger_trust: list[ParsedFile]) -> None:
    ids: dict[str, list[str]] = defaultdict(list)
    for record in larger_trust[0].lines:
        assert isinstance(record, Record)
        ids[record.layout.code].append(record.entity_id)
    for code, values in ids.items():
        assert len(values) == len(set(values)), code
        assert all(value.isdigit() and len(value) <= 15 for value in values)


def test_reference_data_scales_with_the_trust() -> None:
    large = Trust("999", 1_000_000, 1, dt.date(2026, 1, 5))
    assert (large.location_count, large.organisation_count, large.position_count) == (25_000, 50_000, 100_000)
    small = Trust("999", 10, 1, dt.date(2026, 1, 5))
    assert (small.location_count, small.organisation_count, small.position_count) == (3, 4, 6)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return [text for item in value for text in _strings(item)]
    return []


def test_vocabulary_is_windows_1252_and_reads_back_unchanged() -> None:
    texts = [text for name in dir(vocab) if name.isupper() for text in _strings(getattr(vocab, name))]
    assert len(texts) > 300
    for text in texts:
        assert not {"~", "\r", "\n"} & set(text), text
        assert decode_line(text.encode("cp1252"), utf8_only=False) == (text, None), text
    assert not any("ř" in text or "Ł" in text for text in texts)


def test_every_mandatory_field_is_filled(larger_trust: list[ParsedFile]) -> None:
    filled: dict[str, set[str]] = defaultdict(set)
    for parsed in larger_trust:
        for line in parsed.lines:
            if isinstance(line, Record):
                filled[line.layout.code].update(name for name, value in line.values.items() if value is not None)
    for layout in LAYOUTS:
        mandatory = {field.name for field in layout.data_fields if field.mandatory}
        assert mandatory <= filled[layout.code], f"{layout.code} misses {mandatory - filled[layout.code]}"
