"""casefind explain: every criterion met or not, and why, in words a safeguarding lead can check."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from typer.testing import CliRunner

from casefind import api
from casefind.cli import app
from casefind.errors import OptionError
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = """
name: explain
version: "1"
ranking: {minor_criteria_needed: 2}
concern: {codes: cfc}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
  cp_end: {codes: [{code: "342891000000105", term: "No longer subject to child protection plan"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
  cfc: {codes: [{code: "836881000000105", term: "Child is cause for safeguarding concern"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, end: cp_end, weight: 10, tier: significant}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 12 months,
     record: [parent, household_adult], requires_concern: true, weight: 6, tier: significant}
  - {id: nb, label: New birth, kind: new_birth, window: 8 weeks, weight: 1, tier: minor}
"""


@pytest.fixture
def extract(make_extract):
    return make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        kid        | 2019-05-01    | H1
        mum        | 1990-01-01    | H1
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid        | mum                | mother
        """,
        events="""
        patient_id | code            | date
        kid        | 342191000000101 | 2025-01-01
        kid        | 342891000000105 | 2025-06-01
        mum        | 879911000000102 | 2026-04-01
        """,
    )


def _explain(extract):
    return api.explain(extract, "kid", rules=parse_protocol(PROTOCOL), as_of=AS_OF)


def test_each_criterion_says_why(extract):
    result = _explain(extract)
    by_id = {c.criterion_id: c for c in result.criteria}
    assert by_id["cp"].status == "not met"
    assert by_id["cp"].reasons == (
        "own record: latest start Subject to child protection plan (342191000000101) on 2025-01-01 was closed by "
        "the later end code No longer subject to child protection plan (342891000000105) on 2025-06-01",
    )
    assert by_id["da"].status == "held back: needs a professional-concern flag on the child or family"
    assert by_id["da"].reasons == ("mother (patient mum): Victim of domestic abuse (879911000000102) on 2026-04-01",)
    assert by_id["nb"].reasons == ("own record: born 2019-05-01; the 8 weeks window starts 2026-09-29",)
    assert (
        "Not listed: da met but held back, with no professional-concern flag on the child or family (needs one "
        "significant criterion or 2 minor ones that count)."
    ) in result.summary
    assert result.family == ("mother: patient mum",)


def test_a_patient_id_pasted_with_spaces_around_it_is_found(extract):
    """The extract's ids are read trimmed, so the id typed or pasted for explain is too."""
    result = api.explain(extract, " kid\t".strip("\t") + " ", rules=parse_protocol(PROTOCOL), as_of=AS_OF)
    assert result.patient_id == "kid"


def test_with_concern_the_score_arithmetic_is_shown(extract):
    (extract / "concerns.csv").write_text("patient_id,raised_on\nmum,2026-10-01\n")
    result = _explain(extract)
    by_id = {c.criterion_id: c for c in result.criteria}
    assert by_id["da"].status == "counted"
    assert by_id["da"].reasons == (
        "Domestic abuse: mother (patient mum): Victim of domestic abuse (879911000000102), 2026-04-01",
    )
    assert "Score: da 6 = 6." in result.summary
    assert "Professional concern: in the family: patient mum: concern flag raised 2026-10-01" in result.summary


def test_unknown_patient_is_a_clear_error_without_echoing_the_id(extract):
    with pytest.raises(OptionError) as caught:
        api.explain(extract, "NOBODY-123", rules=parse_protocol(PROTOCOL), as_of=AS_OF)
    assert "NOBODY-123" not in caught.value.render()


def test_cli_explain(extract, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(PROTOCOL)
    result = CliRunner().invoke(app, ["explain", str(extract), "kid", "--rules", str(rules), "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    assert "Patient kid, age 7 on 2026-11-24" in result.output
    assert "Family links on the as-of date: mother: patient mum" in result.output


def test_a_child_below_the_tier_threshold_is_said_not_to_be_listed(make_extract):
    folder = make_extract(patients="patient_id | date_of_birth\nbaby | 2026-11-01")
    result = api.explain(folder, "baby", rules=parse_protocol(PROTOCOL), as_of=AS_OF)
    assert result.summary[1] == (
        "Not listed: below the tier threshold (needs one significant criterion or 2 minor ones that count); "
        "--all shows them."
    )
    assert result.summary[2] == "Score: nb 1 = 1."


EXCLUSIONS = PROTOCOL.replace('version: "1"', 'version: "1"\npopulation: {include_deaths_within: 3 months}')


@pytest.mark.parametrize(
    ("patient", "why"),
    [
        ("left", "Not listed: not registered on the as-of date."),
        ("died", "Not listed: died on 2026-05-01, more than the protocol's 3 months limit before the as-of date."),
    ],
)
def test_an_excluded_child_on_a_cp_plan_is_told_the_real_reason(make_extract, patient, why):
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | registered_to | date_of_death
        left       | 2018-01-01    | 2026-10-01    |
        died       | 2018-01-01    |               | 2026-05-01
        """,
        events=f"patient_id | code | date\n{patient} | 342191000000101 | 2026-01-01",
    )
    result = api.explain(folder, patient, rules=parse_protocol(EXCLUSIONS), as_of=AS_OF)
    assert result.summary[1:] == (why, "Professional concern: none")
    cp = {c.criterion_id: c for c in result.criteria}["cp"]
    assert cp.status == f"met, but this patient cannot be listed for it: {why.removeprefix('Not listed: ')[:-1]}"


def test_a_death_with_no_limit_in_the_protocol(make_extract):
    folder = make_extract(patients="patient_id | date_of_birth | date_of_death\ndied | 2018-01-01 | 2026-11-01")
    result = api.explain(folder, "died", rules=parse_protocol(PROTOCOL), as_of=AS_OF)
    assert result.summary[1] == "Not listed: died on 2026-11-01, and the protocol lists no one who has died."


def test_a_child_not_yet_born_has_no_age(make_extract):
    folder = make_extract(patients="patient_id | date_of_birth\nunborn | 2026-12-10")
    result = api.explain(folder, "unborn", rules=parse_protocol(PROTOCOL), as_of=AS_OF)
    family = "F" + hashlib.md5(b"unborn").hexdigest()[:8]
    assert result.summary[:2] == (
        f"Patient unborn, not born by 2026-11-24 (date of birth 2026-12-10); family {family}.",
        "Not listed: not born by the as-of date.",
    )


def test_the_rank_is_the_one_build_list_shows(make_extract):
    # 'minor' (one minor criterion, below the threshold) outranks 'cp' in the --all list only.
    folder = make_extract(
        patients="patient_id | date_of_birth\ncp | 2018-01-01\nminor | 2026-11-01",
        events="patient_id | code | date\ncp | 342191000000101 | 2026-01-01",
    )
    rules = parse_protocol(PROTOCOL.replace("weight: 1, tier: minor", "weight: 20, tier: minor"))
    assert list(api.build_list(folder, rules=rules, as_of=AS_OF).entries["rank"]) == [1]
    result = api.explain(folder, "cp", rules=rules, as_of=AS_OF)
    assert result.summary[1] == "Listed: rank 1 (family 1), tier significant."


def test_missed_appointments_are_counted_as_the_criterion_counts_them(make_extract):
    """Distinct days, with a not-brought code counting as a missed appointment: two records on one day are one."""
    rules = parse_protocol("""
name: wnb
version: "1"
codelists:
  wnb: {codes: [{code: "901441000000108", term: "Child not brought to appointment"}]}
criteria:
  - {id: wnb, label: Not brought, kind: missed_appointments, window: 12 months, min_count: 3, codes: wnb,
     weight: 3, tier: minor}
""")
    folder = make_extract(
        patients="patient_id | date_of_birth\nkid | 2018-01-01",
        appointments="""
        patient_id | date       | status
        kid        | 2026-10-01 | was_not_brought
        kid        | 2026-10-01 | did_not_attend
        kid        | 2025-11-23 | was_not_brought
        """,
        events="patient_id | code | date\nkid | 901441000000108 | 2026-10-02\nkid | 901441000000108 | 2025-01-01",
    )
    result = api.explain(folder, "kid", rules=rules, as_of=AS_OF)
    [wnb] = [c for c in result.criteria if c.criterion_id == "wnb"]
    assert wnb.status == "not met"
    assert wnb.reasons[-1] == (
        "2 day(s) with a missed appointment or a not-brought code since 2025-11-24; 3 needed (1 if never)"
    )


def test_a_sibling_whose_record_is_not_read_is_said_to_be_not_read(make_extract):
    """A sibling's record counts only while the sibling is a child registered here: explain says so rather than
    showing the sibling's code as if it should count."""
    rules = parse_protocol("""
name: sib
version: "1"
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
criteria:
  - {id: sib_cp, label: Sibling on a CP plan, kind: coded_active, start: cp_start, record: [sibling],
     weight: 3, tier: minor}
""")
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id | registered_to
        kid        | 2018-01-01    | H1            |
        left       | 2016-01-01    | H1            | 2026-01-01
        """,
        relationships="patient_id | related_patient_id | relationship\nkid | left | brother",
        events="patient_id | code | date\nleft | 342191000000101 | 2025-06-01",
    )
    [sib] = [c for c in api.explain(folder, "kid", rules=rules, as_of=AS_OF).criteria if c.criterion_id == "sib_cp"]
    assert sib.status == "not met"
    assert sib.reasons == (
        "sibling (patient left): not read, since a sibling's record counts only while the sibling is a child "
        "registered here (not registered on the as-of date)",
    )


# The domestic abuse criterion read from the adult's own record too, as the default protocol's parental risk
# factors are.
OWN_RECORD = PROTOCOL.replace("record: [parent, household_adult]", "record: [own, parent, household_adult]")


def test_an_adult_meeting_a_concern_gated_criterion_cannot_be_listed_rather_than_held_back(extract):
    """A parent outside the age range can never be listed, however many concern flags there are, so their own
    record's criterion is not "held back" for want of one; the child it reaches still is."""
    rules = parse_protocol(OWN_RECORD)
    mum = api.explain(extract, "mum", rules=rules, as_of=AS_OF)
    da = {c.criterion_id: c for c in mum.criteria}["da"]
    assert da.status == "met, but this patient cannot be listed for it: outside the population's age range (0-17)"
    assert da.reasons == (
        "own record: Victim of domestic abuse (879911000000102) on 2026-04-01",
        "carried to patient kid (as their mother; not listed)",
    )
    assert mum.summary[1] == (
        "Not listed: outside the population's age range (0-17); only pregnancy criteria can list them."
    )
    assert not any("held back" in line for line in mum.summary)

    kid = {c.criterion_id: c for c in api.explain(extract, "kid", rules=rules, as_of=AS_OF).criteria}
    assert kid["da"].status == "held back: needs a professional-concern flag on the child or family"


EXPECTANT = """
name: explain expectant
version: "1"
codelists:
  booking: {codes: [{code: "169711001", term: "Antenatal booking examination"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
criteria:
  - {id: anc, label: Pregnant, kind: antenatal_booking, booking: booking, window: 9 months, weight: 2,
     tier: significant, lists_adults: true, requires_concern: true}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 12 months, record: [own],
     requires_concern: true, weight: 6, tier: significant}
"""


def test_an_expectant_adult_is_held_back_only_for_what_could_list_her(make_extract):
    """Above the age range, a woman with no child linked is the case for her unborn baby: her pregnancy
    criterion waits for a concern flag, but her own-record criterion could never list her, flag or not."""
    folder = make_extract(
        patients="patient_id | date_of_birth\nalone | 1995-01-01",
        events="patient_id | code | date\nalone | 169711001 | 2026-10-01\nalone | 879911000000102 | 2026-06-01",
    )
    result = api.explain(folder, "alone", rules=parse_protocol(EXPECTANT), as_of=AS_OF)
    by_id = {c.criterion_id: c for c in result.criteria}
    assert by_id["anc"].status == "held back: needs a professional-concern flag on the child or family"
    assert by_id["da"].status == (
        "met, but this patient cannot be listed for it: outside the population's age range (0-17); as the case "
        "for her unborn baby, only pregnancy criteria and parental criteria read from her own record count"
    )
    assert result.summary[1] == (
        "Not listed: anc met but held back, with no professional-concern flag on the child or family (needs one "
        "significant criterion or 4 minor ones that count)."
    )


# Parental mental illness as the default protocol has it: the parent's diagnosis, not the child's own; the
# child-side proxy in the child's own record.
CHILD_SIDE = """
name: explain child-side
version: "1"
ranking: {minor_criteria_needed: 1}
concern: {codes: cfc}
codelists:
  smi: {codes: [{code: "391193001", term: "On severe mental illness register"}]}
  smi_child: {codes: [{code: "413762006", term: "Caregiver of a person with mental health problem"}]}
  cfc: {codes: [{code: "836881000000105", term: "Child is cause for safeguarding concern"}]}
criteria:
  - {id: mi, label: Parental mental illness, kind: coded_in_window, codes: smi, window: 5 years,
     record: [parent, household_adult], reciprocal: smi_child, requires_concern: true, weight: 3, tier: minor}
"""


def _child_side_extract(make_extract, events: str):
    return make_extract(
        patients="patient_id | date_of_birth | household_id\nkid | 2016-01-01 | H1\nmum | 1990-01-01 | H1",
        relationships="patient_id | related_patient_id | relationship\nkid | mum | mother",
        events="patient_id | code | date\n" + events,
    )


def test_a_child_side_code_meets_the_criterion_in_the_childs_own_record(make_extract):
    """The criterion does not read the child's own record for its codes, but a child-side code there meets
    it: explain says whose record, when the hit is held back for want of a concern flag and when counted."""
    folder = _child_side_extract(make_extract, "kid | 413762006 | 2026-10-01")
    rules = parse_protocol(CHILD_SIDE)
    [held] = [c for c in api.explain(folder, "kid", rules=rules, as_of=AS_OF).criteria if c.criterion_id == "mi"]
    assert held.status == "held back: needs a professional-concern flag on the child or family"
    assert held.reasons == (
        "child's record: Caregiver of a person with mental health problem (413762006) on 2026-10-01",
    )

    folder = _child_side_extract(make_extract, "kid | 413762006 | 2026-10-01\nkid | 836881000000105 | 2026-09-01")
    result = api.explain(folder, "kid", rules=rules, as_of=AS_OF)
    [counted] = [c for c in result.criteria if c.criterion_id == "mi"]
    assert counted.status == "counted"
    assert counted.reasons == (
        "Parental mental illness: child's record: Caregiver of a person with mental health problem (413762006), "
        "2026-10-01",
    )
    assert not any("data gap" in line for line in result.summary)


def test_with_a_parents_code_both_routes_are_shown_and_counted_once(make_extract):
    folder = _child_side_extract(
        make_extract,
        "mum | 391193001 | 2025-01-01\nkid | 413762006 | 2026-06-01\nkid | 836881000000105 | 2026-09-01",
    )
    result = api.explain(folder, "kid", rules=parse_protocol(CHILD_SIDE), as_of=AS_OF)
    [mi] = [c for c in result.criteria if c.criterion_id == "mi"]
    assert mi.reasons == (
        "Parental mental illness: child's record: Caregiver of a person with mental health problem (413762006), "
        "2026-06-01",
        "Parental mental illness: mother (patient mum): On severe mental illness register (391193001), 2025-01-01",
    )
    assert result.summary[1] == "Listed: rank 1 (family 1), tier minor."
    assert "Score: mi 3 = 3." in result.summary  # once
    [notes] = [line for line in result.summary if line.startswith("Notes:")]
    assert "data gap" not in notes  # the child-side code is there
    assert notes == "Notes: counted with professional concern (Child is cause for safeguarding concern 2026-09-01)."


@pytest.mark.parametrize(
    ("events", "own_record"),
    [
        (
            "kid | 413762006 | 2021-11-23",
            "own record (child-side codes): latest code Caregiver of a person with mental health problem (413762006) "
            "on 2021-11-23 is before the 5 years window (from 2021-11-24)",
        ),
        (  # the child's own diagnosis is not a parent's: the criterion does not read it
            "kid | 391193001 | 2026-10-01",
            "own record (child-side codes): no code from the criterion's codelists on or before the as-of date",
        ),
    ],
)
def test_an_unmet_criterion_says_what_the_child_side_codes_in_the_own_record_are(make_extract, events, own_record):
    folder = _child_side_extract(make_extract, events)
    [mi] = [c for c in api.explain(folder, "kid", rules=parse_protocol(CHILD_SIDE), as_of=AS_OF).criteria
            if c.criterion_id == "mi"]  # fmt: skip
    assert mi.status == "not met"
    assert mi.reasons == (
        own_record,
        "mother (patient mum): no code from the criterion's codelists on or before the as-of date",
    )


def test_a_siblings_record_is_read_whatever_the_population_ages(make_extract):
    """Narrowing the population (ages 1-15) decides who is listed, not whose record counts: a baby sister and a
    brother of 16 on a plan still reach a 10-year-old; a brother of 18 does not (he is an adult)."""
    rules = parse_protocol("""
name: sib
version: "1"
population: {min_age: 1, max_age: 15}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
criteria:
  - {id: sib_cp, label: Sibling on a CP plan, kind: coded_active, start: cp_start, record: [sibling],
     weight: 3, tier: significant}
""")
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        ten_a      | 2016-03-01    | H1
        baby       | 2026-03-01    | H1
        ten_b      | 2016-03-01    | H2
        sixteen    | 2010-03-01    | H2
        ten_c      | 2016-03-01    | H3
        eighteen   | 2008-03-01    | H3
        """,
        relationships="patient_id | related_patient_id | relationship\nten_c | eighteen | brother",
        events="""
        patient_id | code            | date
        baby       | 342191000000101 | 2026-05-01
        sixteen    | 342191000000101 | 2026-05-01
        eighteen   | 342191000000101 | 2026-05-01
        """,
    )
    result = api.build_list(folder, rules=rules, as_of=AS_OF)
    assert sorted(result.entries["patient_id"]) == ["ten_a", "ten_b"]
    [sib] = [c for c in api.explain(folder, "ten_c", rules=rules, as_of=AS_OF).criteria if c.criterion_id == "sib_cp"]
    assert sib.reasons == (
        "sibling (patient eighteen): not read, since a sibling's record counts only while the sibling is a child "
        "registered here (age 18: an adult)",
    )
