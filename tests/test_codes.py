"""Identifier checks against published test vectors (rules/safeguarding-codes.md section 2)."""

from __future__ import annotations

import datetime
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casefind.codes import nhs_number_valid, sctid_problem, verhoeff_check_digit, verhoeff_valid
from casefind.dates import Duration, age_on


@pytest.mark.parametrize(
    "sctid,valid",
    [
        ("82313006", True),
        ("160887007", True),
        ("35489007", True),
        ("342191000000101", True),
        ("836881000000105", True),
        ("999002381000000108", True),
        ("342191000000102", False),
        ("82313007", False),
    ],
)
def test_verhoeff_reference_vectors(sctid, valid):
    assert verhoeff_valid(sctid) is valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_computed_check_digit_always_validates(body):
    assert verhoeff_valid(body + verhoeff_check_digit(body))


def test_sctid_structure():
    assert sctid_problem("342191000000101") is None
    description_id = "123456711" + verhoeff_check_digit("123456711")  # partition 11 = description
    assert "description identifier" in sctid_problem(description_id)
    assert "leading zero" in sctid_problem("0123456")
    assert "6 to 18 digits" in sctid_problem("12345")


@pytest.mark.parametrize(
    "number,valid",
    [
        ("9434765919", True),  # NHS Digital's published example
        ("943 476 5919", True),
        ("9434765918", False),
        ("943476591", False),
        ("943476591X", False),
        # Weights 10..2 on the first nine digits; check digit = 11 - (sum mod 11), 11 becoming 0, 10 invalid.
        # 999000005: 9*10 + 9*9 + 9*8 + 5*2 = 90 + 81 + 72 + 10 = 253 = 23*11, remainder 0 -> 11 -> check 0.
        ("9990000050", True),
        ("9990000051", False),
        # 400000002: 4*10 + 2*2 = 44 = 4*11, remainder 0 -> 11 -> check 0.
        ("4000000020", True),
        # 999000000: 90 + 81 + 72 = 243 = 22*11 + 1, remainder 1 -> 10 -> no valid check digit.
        ("9990000000", False),
        ("9990000001", False),
    ],
)
def test_nhs_number_modulus_11(number, valid):
    assert nhs_number_valid(number) is valid


@pytest.mark.parametrize(
    "text,day,expected",
    [
        ("12 months", "2026-11-24", "2025-11-24"),
        ("1 month", "2026-03-31", "2026-02-28"),
        ("1 month", "2024-03-31", "2024-02-29"),
        ("8 weeks", "2026-11-24", "2026-09-29"),
        ("2 years", "2028-02-29", "2026-02-28"),
        ("30 days", "2026-03-01", "2026-01-30"),
    ],
)
def test_durations_follow_the_calendar(text, day, expected):
    from datetime import date

    assert Duration.parse(text).before(date.fromisoformat(day)) == date.fromisoformat(expected)


def test_bad_duration_message():
    with pytest.raises(ValueError, match="expected a duration like '12 months', got '12 mnths'"):
        Duration.parse("12 mnths")


def test_age_on_birthdays():
    from datetime import date

    assert age_on(date(2008, 11, 24), date(2026, 11, 24)) == 18
    assert age_on(date(2008, 11, 25), date(2026, 11, 24)) == 17
    assert age_on(date(2016, 2, 29), date(2017, 2, 28)) == 0
    assert age_on(date(2016, 2, 29), date(2017, 3, 1)) == 1


@functools.cache
def _casefind_duckdb():
    """One connection with casefind's SQL macros, shared by the property tests below."""
    from casefind.extract import connect

    return connect()


@settings(deadline=None)
@given(st.lists(st.text(alphabet="0123456789 x", min_size=0, max_size=12), max_size=40))
def test_sql_nhs_check_agrees_with_the_scalar_one(numbers):
    from casefind.extract import nhs_number_invalid_sql

    values = [n.replace(" ", "") for n in numbers]
    got = (
        _casefind_duckdb()
        .execute(
            f"SELECT {nhs_number_invalid_sql('n', 'TRY_CAST(n AS UBIGINT)')} "
            "FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS t(n, i) ORDER BY i",
            [values],
        )
        .fetchall()
    )
    assert [bool(r[0]) for r in got] == [not nhs_number_valid(n) for n in values]


@settings(deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789-/: T", min_size=8, max_size=12)
        | st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
        max_size=40,
    )
)
def test_the_cheap_iso_date_test_only_passes_dates_the_full_parse_accepts(texts):
    from casefind.extract import _plain_iso_date

    sql = (
        f"SELECT s, {_plain_iso_date('s')}, coalesce(cf_date(s) = TRY_CAST(s AS DATE), false), "
        "year(TRY_CAST(s AS DATE)) FROM unnest(?::VARCHAR[]) AS t(s)"
    )
    for text, plain, same_as_full_parse, iso_year in _casefind_duckdb().execute(sql, [texts]).fetchall():
        if plain:
            assert same_as_full_parse, text
        elif iso_year is not None and 1850 <= iso_year <= 2200 and len(text) == 10 and text[:4].isdigit():
            raise AssertionError(f"{text!r}: a plain ISO date should take the cheap path")


@settings(deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789/- ", min_size=8, max_size=12)
        | st.dates(datetime.date(1800, 1, 1), datetime.date(2250, 12, 31)).map(
            lambda d: f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
        )
        | st.from_regex(r"[0-3][0-9]/[01][0-9]/(1[89]|2[012])[0-9]{2}", fullmatch=True),
        max_size=40,
    )
)
def test_the_fast_dd_mm_yyyy_path_reads_what_the_list_of_formats_reads(texts):
    """cf_date parses ``dd/mm/yyyy`` with that one format, before anything else; the list of every format
    (after TRY_CAST, for ISO) must read the same date from the same text, or none."""
    from casefind.extract import DATE_FORMATS

    formats = "[" + ", ".join(f"'{f}'" for f in DATE_FORMATS) + "]"
    full = f"coalesce(TRY_CAST(s AS DATE), CAST(try_strptime(s, {formats}) AS DATE))"
    sql = (
        f"SELECT s, cf_date(s), CASE WHEN year({full}) BETWEEN 1850 AND 2200 THEN {full} END "
        "FROM unnest(?::VARCHAR[]) AS t(s)"
    )
    for text, fast, listed in _casefind_duckdb().execute(sql, [texts]).fetchall():
        assert fast == listed, text


_POOLS = {  # values as real exports hold them, before trimming; None is an empty cell
    "date": [
        "2024-01-01",
        "01/02/2024",
        "31/02/2024",
        "2024-02-30",
        "1800-01-01",
        "2024-01-01 10:00:00",
        "x",
        "",
        "9999-12-31",
        "31/12/9999",
        "2999-01-01",
    ],
    "code": [
        "123",
        "13Iv.",
        "1 2",
        "1,2",
        'a"b',
        "1188261000000100",
        "",
        "3.42191E14",
        "3.42191e+14",
        "1E+14",
        "342191000000101.0",
        "7E123",
        "E2...",
        "12\u200b3",
        "\ufeff123",
        "123\u2060",
    ],
    "string": ["P1", "P2", "x", ""],
    "choice": ["snomed", "SCT", "Read", "weird", "did_not_attend", "DNA", "", "did-not-attend", "Walked Out"],
}


def _padded(kind: str, valid: str):
    """Mostly valid, unpadded values, so that a row breaks one rule at a time."""
    base = st.sampled_from([valid] * 8 + [*_POOLS[kind], None])
    pad = st.sampled_from([""] * 6 + [" ", "  ", "\t"])
    return st.tuples(pad, base, pad).map(lambda t: None if t[1] is None else t[0] + t[1] + t[2])


def _row_strategy(table):
    columns = []
    for c in table.columns:
        kind = "choice" if c.choices else c.type if c.type in _POOLS else "string"
        valid = c.choices[0] if c.choices else _POOLS[kind][0]
        columns.append(_padded(kind, valid))
    return st.tuples(*columns)


@pytest.mark.parametrize("table_name", ["patients", "events", "appointments", "relationships", "concerns"])
@settings(deadline=None, max_examples=100)
@given(data=st.data())
def test_the_screens_on_file_values_catch_every_row_that_breaks_a_rule_once_cleaned(table_name, data):
    """The pass over millions of rows reads each rule's screen on the values as they are in the file (most of
    them once per distinct value of their column); a row it lets through is never checked again (even when
    it is kept for its protocol code), so every row with a problem once trimmed must be screened."""
    from casefind.extract import TableMapping, _checks, _screens, cleaned_columns, patient_rows_sql
    from casefind.schema import TABLES

    table = TABLES[table_name]
    rows = data.draw(st.lists(_row_strategy(table), min_size=1, max_size=30))
    con = _casefind_duckdb()
    con.execute("CREATE OR REPLACE TEMP TABLE patients AS SELECT 'P1' AS patient_id")
    con.execute("CREATE OR REPLACE TEMP TABLE rejected_patients AS SELECT 'P2' AS patient_id, 7 AS patient_row")
    columns = ", ".join(f"{c} VARCHAR" for c in table.column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE src (i INTEGER, {columns})")
    con.executemany(f"INSERT INTO src VALUES ({', '.join('?' for _ in range(len(table.columns) + 1))})",
                    [(i, *row) for i, row in enumerate(rows)])  # fmt: skip
    patient_rows = patient_rows_sql(table) if table_name != "patients" else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE cleaned AS SELECT i, {cleaned_columns(table)} FROM src")
    con.execute(f"CREATE OR REPLACE TEMP VIEW cleaned_rows AS SELECT * FROM cleaned {patient_rows}")
    # a protocol code a spreadsheet cut to 15 digits (the pool's 1188261000000100) -> the protocol's code
    checks = _checks(table, TableMapping(), cut_codes={"1188261000000100": "1188261000000103"})

    def any_of(conditions, source):
        return f"SELECT i, {' OR '.join(f'coalesce({c}, false)' for c in conditions)} AS hit FROM {source}"

    con.execute(f"CREATE OR REPLACE TEMP VIEW src_{table_name} AS SELECT * FROM src")
    screened = any_of(_screens(con, table, checks) or ["false"], "src")  # [] when no value fails
    broken = any_of([c.condition for c in checks], "cleaned_rows")
    result = con.execute(f"SELECT s.hit, b.hit FROM ({screened}) s JOIN ({broken}) b USING (i) ORDER BY i").fetchall()
    for row, (screen, needed) in zip(rows, result, strict=True):
        assert screen or not needed, row


@pytest.mark.parametrize(
    ("text", "spreadsheet"),
    [
        ("3.42191E+14", True), ("3.42191e14", True), ("3.42191E14", True), ("3E+14", True), ("9.99336E+09", True),
        ("342191000000101.0", True), ("342191000000101", False), ("7E123", False), ("1E1..", False),
        ("E2...", False), ("13Iv.", False), ("12.0", False),
    ],
)  # fmt: skip
def test_a_spreadsheet_number_has_a_point_or_an_exponent_sign_so_read_codes_with_e_are_not_one(text, spreadsheet):
    import re

    from casefind.codes import SPREADSHEET_NUMBER

    assert bool(re.fullmatch(SPREADSHEET_NUMBER, text)) is spreadsheet
    assert (
        _casefind_duckdb().execute("SELECT regexp_full_match(?, ?)", [text, SPREADSHEET_NUMBER]).fetchone()[0]
        is spreadsheet
    )
