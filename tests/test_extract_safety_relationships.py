"""A relationships row whose patient_id is not registered here (safety review, finding C).

A row recorded from the parent's side names the parent as patient_id, and a parent may well be registered
elsewhere: such a row no longer stops the run. It is used when the registered patient is the child (or a
sibling); otherwise it is left out, and a warning counts it. A row naming no registered patient is still a
problem.
"""

from __future__ import annotations

from datetime import date

import pytest

from casefind import api
from casefind.errors import ExtractError
from casefind.extract import read_extract
from tests.conftest import extract_problems

AS_OF = date(2026, 11, 24)
CP = "342191000000101"  # Subject to child protection plan
PATIENTS = (
    "patient_id | date_of_birth\n"
    "ann        | 2016-05-01\n"  # on a CP plan
    "bob        | 2018-07-01\n"  # ann's brother: the same mother, who is registered elsewhere
    "cat        | 2019-01-01\n"
    "dan        | 1990-01-01"
)
NOT_USED_HINT = (
    "  HINT: a row about a child registered here names the child as patient_id, or as related_patient_id with a word "
    "from the parent's side (son, daughter, child); the README's Families section lists the words"
)


def _left_out(warnings) -> list[str]:
    """The warnings about relationships rows left out (they name rows; the file's other warnings do not)."""
    return [str(w) for w in warnings if str(w).startswith("relationships.csv, row")]


def test_a_row_from_the_parents_side_whose_parent_is_registered_elsewhere_is_used(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events=f"patient_id | code | date\nann | {CP} | 2026-06-01",
        relationships=(
            "patient_id | related_patient_id | relationship\n"
            "mum-away   | ann                | Daughter\n"  # the mother is not in the patients file
            "mum-away   | bob                | son"
        ),
    )
    result = api.build_list(folder, as_of=AS_OF)
    assert sorted(result.entries["patient_id"]) == ["ann", "bob"]
    bob = result.evidence[result.evidence["patient_id"] == "bob"]
    assert list(bob["criterion_id"]) == ["sibling_cp_plan"], "bob is linked to ann through their mother"
    assert list(bob["via_patient_id"]) == ["ann"]
    assert _left_out(result.info.warnings) == [], "nothing was left out"


def test_a_sibling_row_from_a_sibling_registered_elsewhere_is_kept(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        relationships="patient_id | related_patient_id | relationship\nbrother-away | cat | half-brother",
    )
    extract = read_extract(folder)
    assert extract.con.execute("SELECT patient_id, related_patient_id FROM relationships").fetchall() == [
        ("brother-away", "cat")
    ]
    assert _left_out(extract.warnings) == []


def test_rows_that_link_no_child_registered_here_are_left_out_and_counted(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        relationships=(
            "patient_id | related_patient_id | relationship\n"
            "ann        | dan                | father\n"  # an ordinary row: kept
            "kid-away   | dan                | father\n"  # dan's child, not registered here
            "kid-away-2 | dan                | household member\n"
            "kid-away-3 | dan                | uncle\n"  # no word casefind links by
            "0          | cat                | daughter"  # a placeholder for an unknown parent
        ),
    )
    extract = read_extract(folder)
    assert extract.con.execute("SELECT _row FROM relationships").fetchall() == [(2,)]
    assert _left_out(extract.warnings) == [
        "relationships.csv, rows 3, 4, 5, 6, column 'patient_id': 4 rows were not used: their patient_id is not in "
        "the patients file, and no child registered here is linked by them: by the relationship, the "
        "related_patient_id (who is in the file) is not the child or a sibling, or (in 1 of them) patient_id is a "
        "placeholder for an unknown person (such as 0 or UNKNOWN)\n" + NOT_USED_HINT
    ]
    assert not any("kid-away" in str(w) for w in extract.warnings), "no identifier is shown"


def test_one_row_left_out_is_said_in_the_singular(make_extract):
    folder = make_extract(
        patients=PATIENTS, relationships="patient_id | related_patient_id | relationship\nkid-away | dan | mother"
    )
    result = api.build_list(folder, as_of=AS_OF)
    assert _left_out(result.info.warnings) == [
        "relationships.csv, row 2, column 'patient_id': 1 row was not used: its patient_id is not in the patients "
        "file, and no child registered here is linked by it: by the relationship, the related_patient_id (who is in "
        "the file) is not the child or a sibling\n" + NOT_USED_HINT
    ]


def test_a_row_naming_no_registered_patient_is_still_a_problem(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        relationships="patient_id | related_patient_id | relationship\nmum-away | kid-away | son\nann | dan | father",
    )
    assert extract_problems(folder) == [
        "relationships.csv, row 2, column 'patient_id': unknown patient_id and related_patient_id (neither is in "
        "the patients file)\n  HINT: a row links a patient of the patients file to a relative: export relationships "
        "for the same patients as the patients file"
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert list(extract.rejects["row"]) == [2]
    assert extract.con.execute("SELECT _row FROM relationships").fetchall() == [(3,)]


def test_a_row_whose_only_registered_patient_has_a_bad_row_is_a_knock_on_problem(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nann | 2016-05-01\nbob | 31/02/2018",
        relationships="patient_id | related_patient_id | relationship\nmum-away | bob | son",
    )
    with pytest.raises(ExtractError) as caught:
        read_extract(folder)
    assert [str(p) for p in caught.value.problems][-1] == (
        "relationships.csv: 1 row is of patients whose row in the patients file has a problem\n"
        "  HINT: fix those rows, and these are read with them"
    )
    extract = read_extract(folder, skip_bad_rows=True)
    relationship_rejects = extract.rejects[extract.rejects["file"] == "relationships.csv"]
    assert list(relationship_rejects["problem"]) == [
        "patient_id is not in the patients file, and related_patient_id's row there has a problem (row 3)"
    ]
