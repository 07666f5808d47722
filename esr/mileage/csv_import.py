"""A trust's mileage table from CSV and back. Pure (text in, categories out).

The first line is a header naming the columns, in any order and case: ``code``, ``engine_from``,
``engine_to``, ``rate_per_mile`` and, optionally, ``description``. Then one category per line:

    code,engine_from,engine_to,rate_per_mile,description
    NHS_MILEAGE_CASUAL,0,1500,0.56,Up to 1500cc
    NHS_MILEAGE_CASUAL,1501,2000,0.56,1501 to 2000cc
    NHS_MILEAGE_CASUAL,2001,,0.56,Over 2000cc

``engine_from`` and ``engine_to`` are whole cc (``engine_to`` blank = no upper limit); ``rate_per_mile`` is
a decimal amount (a leading ``£`` is allowed). Blank lines are skipped. Every problem is reported at once,
as "line N, field F: ..." (line numbers as in the file, header = line 1), including duplicate and
overlapping bands of one code (`esr.mileage.model.table_problems`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from esr.mileage.model import MileageCategory, table_problems
from esr.validation import Problem, raise_if

REQUIRED_COLUMNS = ("code", "engine_from", "engine_to", "rate_per_mile")
COLUMNS = (*REQUIRED_COLUMNS, "description")
_WHOLE = re.compile(r"[0-9]+")
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _whole(text: str, where: str, problems: list[Problem], *, optional: bool) -> int | None:
    text = text.strip()
    if not text:
        if not optional:
            problems.append(Problem(where, "must not be empty"))
        return None
    if not (text.isascii() and _WHOLE.fullmatch(text)):
        problems.append(Problem(where, f"{text!r} is not a whole number of cc"))
        return None
    return int(text)


def _amount(text: str, where: str, problems: list[Problem]) -> Decimal | None:
    text = text.strip().removeprefix("£").strip()
    if not text:
        problems.append(Problem(where, "must not be empty"))
        return None
    if not (text.isascii() and _AMOUNT.fullmatch(text)):
        problems.append(Problem(where, f"{text!r} is not an amount such as 0.56"))
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid amounts
        problems.append(Problem(where, f"{text!r} is not an amount"))
        return None


def _line_of(problem: Problem) -> int:
    found = re.match(r"line (\d+)", problem.path)
    return int(found.group(1)) if found else 0


def parse_categories_csv(data: str | bytes) -> tuple[MileageCategory, ...]:
    """The categories of a CSV file, or `ValidationError` listing every problem by line and field."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    problems: list[Problem] = []
    header: list[str] | None = None
    categories: list[MileageCategory] = []
    labels: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                unknown = [c for c in header if c not in COLUMNS]
                missing = [c for c in REQUIRED_COLUMNS if c not in header]
                repeated = sorted({c for c in header if header.count(c) > 1})
                if unknown:
                    problems.append(Problem(f"line {line}", f"unknown column(s) {', '.join(map(repr, unknown))}"))
                if missing:
                    problems.append(Problem(f"line {line}", f"missing column(s) {', '.join(missing)}"))
                if repeated:
                    problems.append(Problem(f"line {line}", f"column(s) named twice: {', '.join(repeated)}"))
                if unknown or missing or repeated:
                    break
                continue
            if len(row) != len(header):
                problems.append(Problem(f"line {line}", f"has {len(row)} fields, the header has {len(header)}"))
                continue
            cells = dict(zip(header, row, strict=True))
            before = len(problems)

            def where(name: str, line: int = line) -> str:
                return f"line {line}, field {name}"

            code = cells["code"].strip()
            if not code:
                problems.append(Problem(where("code"), "must not be empty"))
            engine_from = _whole(cells["engine_from"], where("engine_from"), problems, optional=False)
            engine_to = _whole(cells["engine_to"], where("engine_to"), problems, optional=True)
            rate = _amount(cells["rate_per_mile"], where("rate_per_mile"), problems)
            if len(problems) > before or engine_from is None or rate is None:
                continue
            categories.append(MileageCategory(code, engine_from, engine_to, rate, cells.get("description", "").strip()))
            labels.append(f"line {line}")
    except csv.Error as error:
        problems.append(Problem(f"line {reader.line_num}", f"not valid CSV: {error}"))
    if header is None and not problems:
        problems.append(Problem("line 1", f"the file is empty: expected a header {','.join(COLUMNS)}"))
    problems.extend(table_problems(categories, labels))
    problems.sort(key=_line_of)  # stable: a line's problems keep their field order
    raise_if("mileage categories CSV", problems)
    return tuple(categories)


def categories_to_csv(categories: Iterable[MileageCategory]) -> str:
    """The CSV `parse_categories_csv` reads (header included, lines ending in CRLF as csv writes them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for c in categories:
        engine_to = "" if c.engine_to is None else c.engine_to
        writer.writerow([c.code, c.engine_from, engine_to, format(c.rate_per_mile, "f"), c.description])
    return out.getvalue()
