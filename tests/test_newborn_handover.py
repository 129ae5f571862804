"""A baby born to a mother whose unborn baby was on a child protection plan or a cause for concern is listed
as a new birth with professional concern.

The default protocol's ``unborn_concern`` ends at the birth (the pregnancy-ended codes): the mother is no
longer listed for an unborn baby once it is born. The baby's own CP code often comes weeks later, after the
review conference; until then the baby had nothing of its own, and ``new_birth``, which needs professional
concern, held the 3-week-old back. The concern now lasts from the unborn code until a formal "no longer" code,
for 12 months (a pregnancy and the new-birth weeks after it); the birth alone does not end it.
"""

from __future__ import annotations

from datetime import date

from casefind import api

UNBORN_CP = "818901000000100"  # Unborn child subject to child protection plan
UNBORN_CFC = "878111000000109"  # Unborn child is cause for safeguarding concern
UNBORN_CP_ENDED = "1025431000000104"  # Unborn child no longer subject to child protection plan
LIVE_BIRTH = "169826009"  # Single live birth (pregnancy ended)
AS_OF = date(2026, 11, 24)


FAMILY = """
    patient_id | date_of_birth | sex | household_id
    mum        | 1996-01-01    | F   | H1
    baby       | 2026-11-03    | M   | H1
"""


def _family(make_extract, events: str, more_patients: str = ""):
    """A mother and her 3-week-old baby (and ``more_patients`` rows), with ``events``."""
    return make_extract(
        patients=FAMILY + more_patients,
        relationships="patient_id | related_patient_id | relationship\nbaby | mum | mother",
        events=events,
    )


def _listed(make_extract, events: str) -> dict[str, str]:
    result = api.build_list(_family(make_extract, events), as_of=AS_OF)
    return dict(zip(result.entries["patient_id"], result.entries["concern"], strict=True))


def test_a_baby_born_under_an_unborn_cp_plan_is_listed_before_its_own_plan_is_coded(make_extract):
    listed = _listed(
        make_extract,
        f"""
        patient_id | code          | date
        mum        | {UNBORN_CP}   | 2026-05-12
        mum        | {LIVE_BIRTH}  | 2026-11-03
        """,
    )
    assert list(listed) == ["baby"]
    # the concern names the mother's record and her unborn-baby code, so the meeting sees why a new birth is there
    assert listed["baby"] == "in the family: patient mum: Unborn child subject to child protection plan 2026-05-12"


def test_an_unborn_cause_for_concern_reaches_the_baby_and_its_mother_is_no_longer_listed(make_extract):
    listed = _listed(
        make_extract,
        f"""
        patient_id | code          | date
        mum        | {UNBORN_CFC}  | 2026-04-01
        mum        | {LIVE_BIRTH}  | 2026-11-03
        """,
    )
    assert list(listed) == ["baby"]


def test_a_formal_end_before_the_birth_ends_the_concern(make_extract):
    listed = _listed(
        make_extract,
        f"""
        patient_id | code              | date
        mum        | {UNBORN_CP}       | 2026-05-12
        mum        | {UNBORN_CP_ENDED} | 2026-09-01
        mum        | {LIVE_BIRTH}      | 2026-11-03
        """,
    )
    assert listed == {}


def test_an_unborn_code_of_an_earlier_pregnancy_is_not_concern_for_this_baby(make_extract):
    listed = _listed(
        make_extract,
        f"""
        patient_id | code          | date
        mum        | {UNBORN_CP}   | 2025-09-01
        mum        | {LIVE_BIRTH}  | 2025-12-20
        mum        | {LIVE_BIRTH}  | 2026-11-03
        """,
    )
    assert listed == {}


FAMILY_NO_LONGER_CFC = "817891000000102"  # Family no longer cause for concern
CHILD_IN_FAMILY_CFC = "1064961000000107"  # Child in family is safeguarding concern


def test_each_group_of_concern_codes_is_its_own_latest_code_wins(make_extract):
    """A "family no longer cause for concern" code does not end an unborn baby's CP plan, and the end of the
    unborn plan does not end an open cause for concern: each closes only its own group's codes."""
    closed_cfc_after_plan = _listed(
        make_extract,
        f"""
        patient_id | code                   | date
        mum        | {UNBORN_CP}            | 2026-05-12
        mum        | {FAMILY_NO_LONGER_CFC} | 2026-09-01
        mum        | {LIVE_BIRTH}           | 2026-11-03
        """,
    )
    assert list(closed_cfc_after_plan) == ["baby"]
    ended_plan_after_cfc = _listed(
        make_extract,
        f"""
        patient_id | code                  | date
        mum        | {CHILD_IN_FAMILY_CFC} | 2026-02-01
        mum        | {UNBORN_CP}           | 2026-04-01
        mum        | {UNBORN_CP_ENDED}     | 2026-08-01
        mum        | {LIVE_BIRTH}          | 2026-11-03
        """,
    )
    assert list(ended_plan_after_cfc) == ["baby"]


def test_the_notes_show_the_concern_a_counted_criterion_needed_and_only_then(make_extract):
    """The meeting sees beside the new birth why it counted; a child listed for a plan of its own needs no
    concern, and gets no such note."""
    folder = _family(
        make_extract,
        f"""
        patient_id | code            | date
        mum        | {UNBORN_CP}     | 2026-05-12
        mum        | {LIVE_BIRTH}    | 2026-11-03
        on_plan    | 342191000000101 | 2026-06-01
        """,
        more_patients="    on_plan    | 2015-01-01    | F   | H2\n",
    )
    result = api.build_list(folder, as_of=AS_OF)
    notes = dict(zip(result.entries["patient_id"], result.entries["notes"], strict=True))
    assert notes == {
        "on_plan": "",
        "baby": "counted with professional concern (in the family: patient mum: Unborn child subject to child "
        "protection plan 2026-05-12)",
    }


def test_explain_says_why_a_concern_code_on_a_relatives_record_is_no_concern(make_extract):
    """A lead tuning the concern groups sees, for each concern code that reaches the child, why it no longer
    counts: before its group's window, or closed by a later end code of its group."""
    folder = _family(
        make_extract,
        f"""
        patient_id | code              | date
        mum        | {UNBORN_CP}       | 2026-05-12
        mum        | {UNBORN_CP_ENDED} | 2026-08-12
        mum        | {CHILD_IN_FAMILY_CFC} | 2024-01-12
        """,
    )
    summary = api.explain(folder, "baby", as_of=AS_OF).summary
    assert summary[-1] == (
        "Professional concern: none (mother (patient mum): latest code Child in family is safeguarding concern "
        f"({CHILD_IN_FAMILY_CFC}) on 2024-01-12 is before the 2 years window (from 2024-11-24); mother (patient "
        f"mum): latest start Unborn child subject to child protection plan ({UNBORN_CP}) on 2026-05-12 was closed "
        f"by the later end code Unborn child no longer subject to child protection plan ({UNBORN_CP_ENDED}) on "
        "2026-08-12)"
    )
