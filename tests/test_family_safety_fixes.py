"""Family linking safety fixes (casefind/engine/duckdb_families.py): households are per practice, placeholder ids
link no one, a child who died recently keeps their household, a young parent is not their baby's sibling, an
implausible parent row makes no link, and protocol codes dated after the as-of date are reported."""

from __future__ import annotations

from datetime import date

import pytest

from casefind import api
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = parse_protocol("""
name: family safety
version: "1"
population: {min_age: 0, max_age: 17, include_deaths_within: 3 months}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
  - {id: par_cp, label: Parent on CP plan, kind: coded_active, start: cp_start,
     record: parent, weight: 4, tier: significant}
  - {id: sib_cp, label: Sibling on CP plan, kind: coded_active, start: cp_start,
     record: sibling, weight: 4, tier: significant}
""")
CP = "342191000000101"


def _build(folder):
    return api.build_list(folder, rules=PROTOCOL, as_of=AS_OF)


def _listed(folder) -> dict[str, str]:
    entries = _build(folder).entries
    return dict(zip(entries["patient_id"], entries["criteria"], strict=True))


def _warnings(folder, start: str) -> list[str]:
    return [w for w in _build(folder).info.warnings if w.startswith(start)]


def test_the_same_household_id_at_two_practices_links_no_one(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id | practice_id
        kid_a      | 2016-01-01    | 1            | A81001
        kid_b      | 2017-01-01    | 1            | B82002
        sib_b      | 2019-01-01    | 1            | B82002
        kid_c      | 2016-01-01    | 7            |
        sib_c      | 2018-01-01    | 7            |
        """,
        events=f"patient_id | code | date\nkid_b | {CP} | 2026-01-01\nkid_c | {CP} | 2026-01-01",
    )
    # kid_a lives at another practice's household 1: not kid_b's sibling; a blank practice_id is a practice too
    assert _listed(folder) == {"kid_b": "cp", "sib_b": "sib_cp", "kid_c": "cp", "sib_c": "sib_cp"}


@pytest.mark.parametrize("household", ["NULL", "null", "N/A", "Not Known", "0", "000", "-", "?", "nan"])
def test_a_placeholder_household_id_links_no_one(make_extract, household):
    folder = make_extract(
        patients=f"""
        patient_id | date_of_birth | household_id
        kid1       | 2016-01-01    | {household}
        kid2       | 2018-01-01    | {household}
        adult      | 1980-01-01    | {household}
        """,
        events=f"patient_id | code | date\nkid1 | {CP} | 2026-01-01\nadult | {CP} | 2026-01-01",
    )
    assert _listed(folder) == {"kid1": "cp"}
    assert _warnings(folder, "patients:") == [
        "patients: 3 patients have a household_id that is a placeholder for an unknown household (such as NULL, "
        "0 or UNKNOWN): they were not linked by household (household adult, child in household); explicit "
        "relationships rows still count\n"
        "  HINT: have the export leave an unknown household_id blank"
    ]


def test_a_placeholder_related_patient_id_links_no_one(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        kid1       | 2016-01-01    | H1
        kid2       | 2018-01-01    | H2
        kid3       | 2018-01-01    | H3
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid1       | UNKNOWN            | mother
        kid2       | UNKNOWN            | mother
        kid3       | unknown            | mother
        kid3       | 0                  | sibling
        """,
        events=f"patient_id | code | date\nkid1 | {CP} | 2026-01-01",
    )
    assert _listed(folder) == {"kid1": "cp"}
    [warning] = _warnings(folder, "relationships:")
    assert warning == (
        "relationships: 4 rows valid on the as-of date have a related_patient_id (or, in a row from the parent's "
        "side or a sibling row, a patient_id) that is a placeholder for an unknown person (such as 0, NULL or "
        "UNKNOWN): they were not used for linking\n"
        "  HINT: have the export leave out the rows of a relative it does not know"
    )
    assert "kid" not in warning


# dead: died in October, within the protocol's 3 months; registration closed the day after the death
DIED_RECENTLY = """
    patient_id | date_of_birth | date_of_death | registered_to | household_id
    dead       | 2024-01-01    | 2026-10-01    | 2026-10-02    | H1
    sib        | 2020-01-01    |               |               | H1
    mum        | 1990-01-01    |               |               | H1
    old_dead   | 2023-01-01    | 2026-01-01    | 2026-01-01    | H2
    old_sib    | 2020-01-01    |               |               | H2
"""


def test_a_child_who_died_recently_is_still_linked_by_household(make_extract):
    folder = make_extract(
        patients=DIED_RECENTLY,
        events=f"patient_id | code | date\ndead | {CP} | 2026-01-01\nold_dead | {CP} | 2025-06-01",
    )
    result = _build(folder)
    entries = result.entries.set_index("patient_id")
    # a death before the protocol's window is not a household member any more
    assert dict(entries["criteria"]) == {"dead": "cp", "sib": "sib_cp"}
    assert entries.loc["sib", "evidence"].startswith("Sibling on CP plan: child in household (patient dead)")
    assert "no linked adult" not in (entries.loc["dead", "notes"] or "")
    assert entries.loc["dead", "linked_adults"] == "household adult (patient mum)"


def test_a_parent_under_18_is_not_also_her_babys_sibling(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        tm         | 2010-06-01    | H1
        bb         | 2026-06-01    | H1
        """,
        relationships="patient_id | related_patient_id | relationship\nbb | tm | mother",
        events=f"patient_id | code | date\ntm | {CP} | 2026-01-01",
    )
    assert _listed(folder) == {"tm": "cp", "bb": "par_cp"}


def test_a_parent_written_the_other_way_round_is_not_linked(make_extract):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        kid        | 2016-01-01    | H1
        teen       | 2012-01-01    | H2
        m1         | 1990-01-01    | H3
        k1         | 2015-01-01    | H4
        stepdad    | 2006-01-01    | H5
        stepkid    | 2014-01-01    | H6
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid        | teen               | mother
        m1         | k1                 | mother
        stepkid    | stepdad            | stepfather
        """,
        events="patient_id | code | date\n" + "\n".join(f"{p} | {CP} | 2026-01-01" for p in ("teen", "k1", "stepdad")),
    )
    # teen is 4 years older than kid, k1 younger than m1: not parents; a stepfather 8 years older can be
    assert _listed(folder) == {"teen": "cp", "k1": "cp", "stepkid": "par_cp"}
    assert _warnings(folder, "relationships:") == [
        "relationships: 2 rows valid on the as-of date name as a child's parent someone fewer than 12 years "
        "older than the child (a step-parent, partner or carer: younger than the child) and were not used for "
        "linking\n"
        "  HINT: the file may be written the other way round: patient_id is the child and related_patient_id "
        "is the child's <relationship> (words such as 'son' or 'daughter' are read as the reverse link)"
    ]


def test_protocol_codes_dated_after_the_as_of_date_are_reported(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nkid | 2016-01-01",
        events=f"patient_id | code | date\nkid | {CP} | 2027-01-01\nkid | {CP} | 2026-12-01\nkid | 1234 | 2027-01-01",
    )
    assert _listed(folder) == {}
    assert _warnings(folder, "events:") == [
        "events: 2 events have a code from the protocol's codelists dated after the as-of date (2026-11-24); "
        "they were not read: usually a typing error in the date, or a planned item\n"
        "  HINT: check those dates in the record"
    ]
