"""Identifier checks against published test vectors (shared/reference/safeguarding-codes.md section 2)."""

from __future__ import annotations

import pytest
from hypothesis import given
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


@given(st.lists(st.text(alphabet="0123456789 x", min_size=0, max_size=12), max_size=40))
def test_vectorised_nhs_check_agrees_with_the_scalar_one(numbers):
    import pandas as pd

    from casefind.extract import invalid_nhs_numbers

    series = pd.Series([n.replace(" ", "") for n in numbers], dtype=object)
    expected = [not nhs_number_valid(n) for n in series]
    assert invalid_nhs_numbers(series).tolist() == expected
