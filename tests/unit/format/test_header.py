"""esr.format.header: file name (§1.2), HDR (§1.4), TRL (§1.5) and the record count (Q2)."""

from __future__ import annotations

import datetime as dt

import pytest

from esr.format.header import (
    ExtractType,
    FileName,
    FileRejected,
    Header,
    RejectionCode,
    check_record_count,
    parse_file_name,
    parse_header,
    parse_trailer,
)

NAME = "GO_999_EXP_GOC_20240301_00000042.DAT"
FILE_NAME = FileName(NAME, "999", ExtractType.CHANGES, dt.date(2024, 3, 1), 42)
HEADER_FIELDS = ["HDR", NAME, "20240301 071503", "999", "20240229 000000", "20240301 000000", "01"]


def header_line(**changes: str) -> str:
    names = ["code", "file_name", "created", "vpd", "previous", "run", "version"]
    fields = list(HEADER_FIELDS)
    for key, text in changes.items():
        fields[names.index(key)] = text
    return "~".join(fields)


def rejected(code: RejectionCode, excinfo: pytest.ExceptionInfo[FileRejected]) -> str:
    assert excinfo.value.code is code, excinfo.value
    assert str(excinfo.value) == f"{code.name}: {excinfo.value.message}"
    return excinfo.value.message


def test_rejection_codes_are_the_consumers() -> None:
    # Format reference §4.6: Success 0, NoHeader 1 ... FileNotAvailable 8.
    assert {code.name: code.value for code in RejectionCode} == {
        "NO_HEADER": 1,
        "NO_TRAILER": 2,
        "RECORD_COUNT": 3,
        "WRONG_FORMAT": 4,
        "BYTE_COUNT": 5,
        "VPD_NOT_FOUND": 6,
        "WRONG_SEQUENCE": 7,
        "FILE_NOT_AVAILABLE": 8,
    }


# --- file names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (NAME, FILE_NAME),
        (
            "GO_431_EXP_GOF_20121113_00000001.DAT",  # S1's test file
            FileName("GO_431_EXP_GOF_20121113_00000001.DAT", "431", ExtractType.FULL, dt.date(2012, 11, 13), 1),
        ),
        (
            "GO_A1z_EXP_GOF_47121231_99999999.DAT",  # the VPD is any 3 letters or digits
            FileName("GO_A1z_EXP_GOF_47121231_99999999.DAT", "A1z", ExtractType.FULL, dt.date(4712, 12, 31), 99999999),
        ),
        (
            "GO_007_EXP_GOC_20240229_00000000.DAT",  # sequence 0, leap day
            FileName("GO_007_EXP_GOC_20240229_00000000.DAT", "007", ExtractType.CHANGES, dt.date(2024, 2, 29), 0),
        ),
    ],
)
def test_valid_file_names(name: str, expected: FileName) -> None:
    assert parse_file_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "GO_999_EXP_GOC_20240301_00000042.dat",  # lower-case extension
        "go_999_exp_goc_20240301_00000042.DAT",
        "GO_277_GDW_GOC_20210409_00001945.DAT",  # the GDW sub-type, not EXP
        "GO_999_EXP_GDR_20240301_00000042.DAT",  # a GDW request file
        "GO_999_EXP_GOX_20240301_00000042.DAT",  # extract type neither F nor C
        "GO_999_EXP_GOC_20240301_0000042.DAT",  # 7-digit sequence
        "GO_999_EXP_GOC_20240301_000000042.DAT",  # 9-digit sequence
        "GO_99_EXP_GOC_20240301_00000042.DAT",  # 2-character VPD
        "GO_9999_EXP_GOC_20240301_00000042.DAT",
        "GO_999_EXP_GOC_2024031_00000042.DAT",
        "GO_999_EXP_GOC_20240301_00000042",  # no extension
        "GO_999_EXP_GOC_20240301_00000042.DAT.gz",
        "GO_999_EXP_GOC_20240301_00000042.DAT\n",  # regression: "$" matched before a final newline
        "x/GO_999_EXP_GOC_20240301_00000042.DAT",  # a name, not a path
        " GO_999_EXP_GOC_20240301_00000042.DAT",
        "GO_999_EXP_GOC_２０２４0301_00000042.DAT",  # regression: \d matched fullwidth digits
        "GO_999_EXP_GOC_20240301_0000004².DAT",
        "",
    ],
)
def test_malformed_file_names_are_wrong_format(name: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_file_name(name)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == (f"file name {name!r} is not GO_<VPD>_EXP_GO<F|C>_<YYYYMMDD>_<8-digit sequence>.DAT")


@pytest.mark.parametrize("date", ["20240230", "20241301", "20230229", "00000101"])
def test_file_name_with_an_impossible_date_is_wrong_format(date: str) -> None:
    name = f"GO_999_EXP_GOC_{date}_00000042.DAT"
    with pytest.raises(FileRejected) as excinfo:
        parse_file_name(name)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == f"file name {name!r}: extract date {date!r} is not a calendar date"


def test_file_name_with_a_zero_date_is_wrong_format() -> None:
    name = "GO_999_EXP_GOC_00000000_00000042.DAT"
    with pytest.raises(FileRejected) as excinfo:
        parse_file_name(name)
    assert rejected(RejectionCode.WRONG_FORMAT, excinfo) == f"file name {name!r} has no extract date"


# --- header ----------------------------------------------------------------------------------------------


def test_valid_header() -> None:
    assert parse_header(header_line(), FILE_NAME) == Header(
        file_name=NAME,
        created_at=dt.datetime(2024, 3, 1, 7, 15, 3),
        vpd="999",
        previous_run_date=dt.datetime(2024, 2, 29),
        run_date=dt.datetime(2024, 3, 1),
        interface_version="01",
    )


def test_s1_sample_header() -> None:
    line = "HDR~GO_431_EXP_GOF_20121113_00000001.DAT~20121113 101356~431~20121013 161023~20121113 000000~01"
    header = parse_header(line, parse_file_name("GO_431_EXP_GOF_20121113_00000001.DAT"))
    assert header.vpd == "431"
    assert header.previous_run_date == dt.datetime(2012, 10, 13, 16, 10, 23)


@pytest.mark.parametrize("previous", ["00000000 000000", ""])
def test_full_file_may_have_no_previous_run(previous: str) -> None:
    assert parse_header(header_line(previous=previous), FILE_NAME).previous_run_date is None


@pytest.mark.parametrize("version", ["02", "99", "00"])
def test_any_two_digit_interface_version_is_accepted_and_kept(version: str) -> None:
    # Q3: emit 01, accept any 2-digit value.
    assert parse_header(header_line(version=version), FILE_NAME).interface_version == version


def test_header_file_name_is_compared_case_insensitively() -> None:
    header = parse_header(header_line(file_name=NAME.lower()), FILE_NAME)
    assert header.file_name == NAME.lower()  # as written in the header


def test_extra_header_fields_are_ignored() -> None:
    assert parse_header(header_line() + "~spare~more", FILE_NAME) == parse_header(header_line(), FILE_NAME)


@pytest.mark.parametrize(
    "line",
    [
        "LCA~300001~x",
        "",
        "hdr~" + NAME,
        " HDR~" + NAME,
        "\ufeffHDR~" + NAME,  # a BOM the reader did not remove (the reader removes a leading one)
        "TRL~12",
        "HD",
    ],
)
def test_a_first_line_that_is_not_hdr_is_no_header(line: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(line, FILE_NAME)
    message = rejected(RejectionCode.NO_HEADER, excinfo)
    assert message == f"line 1 is not a HDR record: {line[:40]!r}"


@pytest.mark.parametrize("delimiter", ["|", ",", "\t", ";", " "])
def test_wrong_delimiter_is_wrong_format(delimiter: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(delimiter.join(HEADER_FIELDS), FILE_NAME)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == "line 1: the field delimiter is not '~' (wrong delimiter)"


@pytest.mark.parametrize("line", ["HDR", "HDRX~" + NAME])
def test_hdr_not_followed_by_the_delimiter_is_wrong_format(line: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(line, FILE_NAME)
    assert "delimiter" in rejected(RejectionCode.WRONG_FORMAT, excinfo)


@pytest.mark.parametrize("count", [2, 5, 6])
def test_header_with_too_few_fields_is_no_header(count: int) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header("~".join(HEADER_FIELDS[:count]), FILE_NAME)
    message = rejected(RejectionCode.NO_HEADER, excinfo)
    assert message == f"line 1: HDR needs 7 fields, it has {count}"


@pytest.mark.parametrize(
    "name", ["GO_999_EXP_GOC_20240301_00000043.DAT", "GO_999_EXP_GOF_20240301_00000042.DAT", "", NAME + " "]
)
def test_header_naming_another_file_is_wrong_format(name: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(header_line(file_name=name), FILE_NAME)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == f"line 1 field file_name: header names {name!r}, the file is {NAME!r}"


@pytest.mark.parametrize("vpd", ["998", "99", "9999", "", " 999"])
def test_header_vpd_differing_from_the_file_name_is_wrong_format(vpd: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(header_line(vpd=vpd), FILE_NAME)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == f"line 1 field vpd: header VPD {vpd!r} differs from file name VPD '999'"


@pytest.mark.parametrize(
    ("field", "what", "text", "problem"),
    [
        ("created", "file creation timestamp", "20240301", "'20240301' is not a timestamp (YYYYMMDD HHMMSS)"),
        (
            "created",
            "file creation timestamp",
            "20240301071503",
            "'20240301071503' is not a timestamp (YYYYMMDD HHMMSS)",
        ),
        ("created", "file creation timestamp", "20240301 250000", "'20240301 250000' is not a calendar date and time"),
        ("run", "run date", "20240230 000000", "'20240230 000000' is not a calendar date and time"),
        ("run", "run date", "2024-03-01 00:00:00", "'2024-03-01 00:00:00' is not a timestamp (YYYYMMDD HHMMSS)"),
        ("previous", "previous run date", "yesterday", "'yesterday' is not a timestamp (YYYYMMDD HHMMSS)"),
    ],
)
def test_bad_header_timestamps_are_wrong_format_naming_the_field(
    field: str, what: str, text: str, problem: str
) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(header_line(**{field: text}), FILE_NAME)
    assert rejected(RejectionCode.WRONG_FORMAT, excinfo) == f"line 1: field {what}: {problem}"


@pytest.mark.parametrize(
    ("field", "what", "text"),
    [
        ("created", "file creation timestamp", ""),
        ("created", "file creation timestamp", "00000000 000000"),
        ("run", "run date", ""),
        ("run", "run date", "00000000 000000"),
    ],
)
def test_required_header_timestamps_cannot_be_empty(field: str, what: str, text: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(header_line(**{field: text}), FILE_NAME)
    assert rejected(RejectionCode.WRONG_FORMAT, excinfo) == f"line 1: field {what} is empty"


@pytest.mark.parametrize("version", ["1", "001", "AB", "", " 1", "０１", "²1"])
def test_bad_interface_version_is_wrong_format(version: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_header(header_line(version=version), FILE_NAME)
    message = rejected(RejectionCode.WRONG_FORMAT, excinfo)
    assert message == f"line 1 field interface_version: {version!r} is not a 2-digit version"


def test_header_checks_run_in_order() -> None:
    # Name before VPD before timestamps before version: the first problem is the one reported.
    line = header_line(file_name="other.DAT", vpd="000", created="x", version="x")
    with pytest.raises(FileRejected, match="field file_name"):
        parse_header(line, FILE_NAME)


# --- trailer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "count"), [("TRL~12", 12), ("TRL~0", 0), ("TRL~000012", 12), ("TRL~ 12 ", 12)])
def test_valid_trailers(line: str, count: int) -> None:
    assert parse_trailer(line, 12) == count


@pytest.mark.parametrize("line", ["LCA~300001", "TRL|12", "TRL,12", "trl~12", " TRL~12", "TRAILER~12", ""])
def test_last_line_that_is_not_trl_is_no_trailer(line: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_trailer(line, 17)
    message = rejected(RejectionCode.NO_TRAILER, excinfo)
    assert message == f"last line (line 17) is not a TRL record: {line[:40]!r}"


@pytest.mark.parametrize(
    "line",
    [
        "TRL~abc",
        "TRL~1~2",
        "TRL~12~",
        "TRL",
        "TRL~",
        "TRL~-1",
        "TRL~+12",
        "TRL~1.0",
        "TRL~1 2",
        "TRL~²",  # regression: isdigit() said yes, int() raised a bare ValueError
        "TRL~１２",
    ],
)
def test_invalid_trailer_is_no_trailer_naming_the_line(line: str) -> None:
    with pytest.raises(FileRejected) as excinfo:
        parse_trailer(line, 17)
    message = rejected(RejectionCode.NO_TRAILER, excinfo)
    assert message == f"line 17: invalid trailer {line[:40]!r} (expected TRL~<count>)"


# --- record count ----------------------------------------------------------------------------------------


def test_count_of_all_lines_is_accepted_silently() -> None:
    assert check_record_count(12, 12) is None
    assert check_record_count(2, 2) is None


def test_count_of_data_lines_is_accepted_with_a_warning() -> None:
    warning = check_record_count(10, 12)
    assert warning == "trailer count 10 counts data lines only (the file has 12 lines in all)"
    assert check_record_count(0, 2) is not None


@pytest.mark.parametrize(("declared", "total"), [(11, 12), (13, 12), (0, 12), (1, 2), (3, 2)])
def test_any_other_count_is_record_count(declared: int, total: int) -> None:
    expected = f"trailer count {declared} matches neither the {total} lines of the file nor its {total - 2} data lines"
    with pytest.raises(FileRejected) as excinfo:
        check_record_count(declared, total)
    assert rejected(RejectionCode.RECORD_COUNT, excinfo) == expected
    assert check_record_count(declared, total, strict=False) == expected
