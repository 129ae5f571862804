"""Identifier checks against published test vectors (shared/reference/safeguarding-codes.md section 2)."""

from __future__ import annotations

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
            f"SELECT {nhs_number_invalid_sql('n')} FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS t(n, i) ORDER BY i",
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
