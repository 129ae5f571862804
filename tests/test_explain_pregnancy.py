"""casefind explain for pregnancy criteria (``lists_adults``): met on the woman's record, carried to her
linked children, and late bookings read from the gestation as written."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from casefind import api
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = """
name: explain pregnancy
version: "1"
ranking: {minor_criteria_needed: 2}
codelists:
  booking: {codes: [{code: "169711001", term: "Antenatal booking examination"}]}
  delivered: {codes: [{code: "169826009", term: "Single live birth"}]}
  late_booker: {codes: [{code: "169594005", term: "Antenatal care: late booker"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
criteria:
  - {id: anc, label: Pregnant, kind: antenatal_booking, booking: booking, end: delivered, window: 9 months,
     weight: 2, tier: significant, lists_adults: true}
  - {id: late, label: Late booking, kind: antenatal_booking, booking: booking, end: delivered, window: 9 months,
     late: late_booker, late_at_weeks: 13, late_only: true, weight: 3, tier: minor, lists_adults: true}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 12 months,
     record: [parent, household_adult], weight: 6, tier: significant}
"""


def _family(patient_id: str) -> str:
    return "F" + hashlib.md5(patient_id.encode()).hexdigest()[:8]


def _explain(folder, patient_id):
    return api.explain(folder, patient_id, rules=parse_protocol(PROTOCOL), as_of=AS_OF)


@pytest.fixture
def mother_and_child(make_extract):
    return make_extract(
        patients="""
        patient_id | date_of_birth | sex | household_id
        mum        | 1996-05-18    | F   | H1
        kid        | 2020-10-07    | M   | H1
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid        | mum                | mother
        """,
        events="""
        patient_id | code      | date       | value
        mum        | 169711001 | 2026-10-10 | 14 weeks
        """,
    )


def test_the_mother_sees_her_pregnancy_criteria_met_and_carried_to_her_child(mother_and_child):
    result = _explain(mother_and_child, "mum")
    assert result.summary[:2] == (
        f"Patient mum, age 30 on 2026-11-24; family {_family('kid')}.",
        "Not listed herself: her pregnancy criteria (anc, late) are carried to the children linked to her "
        "(patient kid), who are the case for her unborn baby.",
    )
    by_id = {c.criterion_id: c for c in result.criteria}
    carried = "met on this patient's record; carried to linked children"
    assert (by_id["anc"].status, by_id["late"].status) == (carried, carried)
    assert by_id["anc"].reasons == (
        "own record: Antenatal booking examination (169711001) on 2026-10-10",
        "carried to patient kid (as their mother (expectant); listed, rank 1)",
    )
    assert by_id["late"].reasons == (
        "own record: Antenatal booking examination (169711001) on 2026-10-10 [late booking: 14 weeks at booking]",
        "carried to patient kid (as their mother (expectant); listed, rank 1)",
    )
    assert result.family == ("mother of patient kid",)


def test_the_child_sees_the_carried_criteria(mother_and_child):
    result = _explain(mother_and_child, "kid")
    by_id = {c.criterion_id: c for c in result.criteria}
    assert result.summary[1:3] == ("Listed: rank 1 (family 1), tier significant.", "Score: anc 2 + late 3 = 5.")
    assert by_id["late"].status == "counted"
    assert by_id["late"].reasons == (
        "Late booking: mother (expectant) (patient mum): Antenatal booking examination (169711001), 2026-10-10 "
        "[late booking: 14 weeks at booking]",
    )
    assert result.family == ("mother: patient mum",)


def test_a_woman_with_no_child_linked_is_the_case_herself(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nalone | 1995-01-01",
        events="patient_id | code | date\nalone | 169711001 | 2026-10-01\nalone | 879911000000102 | 2026-06-01",
    )
    result = _explain(folder, "alone")
    by_id = {c.criterion_id: c for c in result.criteria}
    assert result.summary[1:4] == (
        "Listed: rank 1 (family 1), tier significant.",
        "Score: anc 2 + da 6 = 8.",
        "Notes: case for her unborn baby.",
    )
    assert by_id["anc"].reasons == (
        "Pregnant: Antenatal booking examination (169711001), 2026-10-01",
        "no child is linked to this patient on the as-of date, so she is the case for her unborn baby",
    )
    assert by_id["da"].reasons == (
        "Domestic abuse: expectant mother (own record): Victim of domestic abuse (879911000000102), 2026-06-01",
    )
    assert by_id["late"].reasons == (
        "own record: booking Antenatal booking examination (169711001) on 2026-10-01 is not a late booking "
        "(no gestation recorded; no late code)",
    )
    assert result.family == ("no linked relatives",)


def test_a_pregnant_sister_is_the_case_herself_and_her_brother_is_told_why_not(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        mum        | 1975-01-01    | H1
        sis        | 2007-03-01    | H1
        bro        | 2011-05-01    | H1
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        sis        | mum                | mother
        bro        | mum                | mother
        """,
        events="patient_id | code | date\nsis | 169711001 | 2026-10-01",
    )
    sister = {c.criterion_id: c for c in _explain(folder, "sis").criteria}
    assert sister["anc"].reasons == (
        "Pregnant: Antenatal booking examination (169711001), 2026-10-01",
        "no child of hers is linked to this patient (patient bro: she is a sibling of the child, not a parent), "
        "so she is the case for her unborn baby",
    )
    brother = _explain(folder, "bro")
    assert brother.summary[1].startswith("Not listed")
    assert {c.criterion_id: c for c in brother.criteria}["anc"].reasons == (
        "own record: no code from the criterion's codelists on or before the as-of date",
        "mother (patient mum): no code from the criterion's codelists on or before the as-of date",
        "adult sibling in household (patient sis): not read, since a pregnancy reaches the woman's own children "
        "and she is a sibling of the child, not a parent",
    )


def test_a_pregnancy_of_a_woman_who_died_is_read_by_no_one(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | date_of_death | household_id
        mum        | 1990-01-01    | 2026-10-01    | H1
        kid        | 2020-01-01    |               | H1
        """,
        relationships="patient_id | related_patient_id | relationship\nkid | mum | mother",
        events="patient_id | code | date\nmum | 169711001 | 2026-09-01",
    )
    child = {c.criterion_id: c for c in _explain(folder, "kid").criteria}
    assert child["anc"].reasons == (
        "own record: no code from the criterion's codelists on or before the as-of date",
        "mother (died 2026-10-01) (patient mum): not read, since death ends a pregnancy",
    )
    mother = {c.criterion_id: c for c in _explain(folder, "mum").criteria}
    assert (mother["anc"].status, mother["anc"].reasons) == (
        "not met",
        ("own record: not read, since death ends a pregnancy (died 2026-10-01)",),
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("12+6", "gestation 12+6 weeks at booking, below 13 weeks"),
        ("12/40", "gestation 12/40 at booking, below 13 weeks"),
        ("unknown", "gestation 'unknown' could not be read as a number of weeks"),
    ],
)
def test_a_booking_that_is_not_late_says_what_was_read(make_extract, value, why):
    folder = make_extract(
        patients="patient_id | date_of_birth\nmum | 1995-01-01",
        events=f"patient_id | code | date | value\nmum | 169711001 | 2026-10-01 | {value}",
    )
    late = {c.criterion_id: c for c in _explain(folder, "mum").criteria}["late"]
    assert late.status == "not met"
    assert late.reasons == (
        "own record: booking Antenatal booking examination (169711001) on 2026-10-01 is not a late booking "
        f"({why}; no late code)",
    )


def test_a_not_late_booking_read_through_the_childs_mother(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nmum | 1995-01-01\nkid | 2020-01-01",
        relationships="patient_id | related_patient_id | relationship\nkid | mum | mother",
        events="patient_id | code | date | value\nmum | 169711001 | 2026-10-01 | 11",
    )
    late = {c.criterion_id: c for c in _explain(folder, "kid").criteria}["late"]
    assert late.reasons == (
        "own record: no code from the criterion's codelists on or before the as-of date",
        "mother (patient mum): booking Antenatal booking examination (169711001) on 2026-10-01 is not a late "
        "booking (gestation 11 weeks at booking, below 13 weeks; no late code)",
    )


def test_a_late_code_from_an_earlier_pregnancy_is_named(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nmum | 1995-01-01",
        events="patient_id | code | date | value\nmum | 169711001 | 2026-10-01 | 11\nmum | 169594005 | 2025-01-01 |",
    )
    late = {c.criterion_id: c for c in _explain(folder, "mum").criteria}["late"]
    assert late.reasons == (
        "own record: booking Antenatal booking examination (169711001) on 2026-10-01 is not a late booking "
        "(gestation 11 weeks at booking, below 13 weeks; the late code Antenatal care: late booker (169594005) "
        "on 2025-01-01 belongs to an earlier pregnancy)",
    )


def test_a_late_gestation_from_an_earlier_pregnancy_is_named_and_one_from_this_pregnancy_counts(make_extract):
    """The engine reads every booking row of a pregnancy for its gestation, not only the latest: explain names
    a late one that belongs to a pregnancy that ended, and words one of this pregnancy with its day."""
    folder = make_extract(
        patients="patient_id | date_of_birth\nmum | 1995-01-01\nnew | 1995-01-01",
        events="""
        patient_id | code      | date       | value
        mum        | 169711001 | 2026-03-01 | 30
        mum        | 169826009 | 2026-05-01 |
        mum        | 169711001 | 2026-09-01 | 9
        mum        | 169711001 | 2026-09-02 |
        new        | 169711001 | 2026-08-01 | 22
        new        | 169711001 | 2026-08-08 |
        """,
    )
    late = {c.criterion_id: c for c in _explain(folder, "mum").criteria}["late"]
    assert late.status == "not met"
    assert late.reasons == (
        "own record: booking Antenatal booking examination (169711001) on 2026-09-02 is not a late booking "
        "(gestation 30 weeks at the booking Antenatal booking examination (169711001) on 2026-03-01, which "
        "belongs to an earlier pregnancy; no late code)",
    )
    late = {c.criterion_id: c for c in _explain(folder, "new").criteria}["late"]
    assert late.status != "not met"
    assert "late booking: 22 weeks at booking (2026-08-01)" in " ".join(late.reasons)
