"""Relationship words as real GP exports write them: which link each makes, and the warning for the rest."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from casefind import api
from casefind.engine.duckdb_families import (
    CHILD_WORDS,
    HOUSEHOLD_WORDS,
    PARENT_WORDS,
    SIBLING_WORDS,
    normalised_word_sql,
)
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = parse_protocol("""
name: relationship words
version: "1"
population: {min_age: 0, max_age: 17}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 2 years,
     record: parent, weight: 6, tier: significant}
  - {id: sib_cp, label: Sibling on CP plan, kind: coded_active, start: cp_start,
     record: sibling, weight: 4, tier: significant}
""")
ADULT_WITH_DOMESTIC_ABUSE = """
    patient_id | date_of_birth | household_id
    kid        | 2018-01-01    | H1
    adult      | 1990-01-01    | H9
"""


def _listed(folder) -> list[dict[str, str]]:
    entries = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF).entries
    return entries[["patient_id", "criteria", "evidence"]].to_dict("records")


@pytest.mark.parametrize(
    "word",
    [
        "Mum", "Dad", "Mam", "Natural mother", "Birth father", "Biological mother", "Foster mother", "Foster father",
        "Foster parent", "Legal guardian", "Mother's partner", "mothers partner", "Mother\u2019s Partner",
        "Father's partner", "Stepmum", "Step-dad", "Adoptive father", "Kinship carer", "Grandparent carer",
    ],
)  # fmt: skip
def test_a_parent_in_everyday_words_reaches_the_child(make_extract, word):
    folder = make_extract(
        patients=ADULT_WITH_DOMESTIC_ABUSE,
        relationships=f"patient_id | related_patient_id | relationship\nkid | adult | {word}",
        events="patient_id | code | date\nadult | 879911000000102 | 2026-03-02",
    )
    [entry] = _listed(folder)
    assert entry["patient_id"] == "kid" and entry["criteria"] == "da"
    assert "(patient adult): Victim of domestic abuse (879911000000102), 2026-03-02" in entry["evidence"]


@pytest.mark.parametrize("word", ["Stepson", "Foster child", "Adopted daughter", "Foster-son"])
def test_a_row_written_from_the_parents_side_links_the_child_to_the_parent(make_extract, word):
    folder = make_extract(
        patients=ADULT_WITH_DOMESTIC_ABUSE,
        relationships=f"patient_id | related_patient_id | relationship\nadult | kid | {word}",
        events="patient_id | code | date\nadult | 879911000000102 | 2026-03-02",
    )
    assert _listed(folder) == [
        {
            "patient_id": "kid",
            "criteria": "da",
            "evidence": "Domestic abuse: parent (patient adult): Victim of domestic abuse (879911000000102), "
            "2026-03-02",
        }
    ]


@pytest.mark.parametrize("word", ["Twin", "Twin sister", "Stepbrother", "Stepsister"])
def test_a_sibling_in_everyday_words_links_both_ways(make_extract, word):
    folder = make_extract(
        patients="patient_id | date_of_birth | household_id\namy | 2014-01-01 | H1\nben | 2016-01-01 | H2",
        relationships=f"patient_id | related_patient_id | relationship\nben | amy | {word}",
        events="patient_id | code | date\namy | 342191000000101 | 2026-01-01\nben | 342191000000101 | 2026-02-01",
    )
    criteria = {e["patient_id"]: e["criteria"] for e in _listed(folder)}
    assert criteria == {"amy": "cp;sib_cp", "ben": "cp;sib_cp"}


def test_the_warning_names_unrecognised_words_with_counts_and_hides_other_values(make_extract):
    values = (
        ["Grandmother"] * 4 + ["Aunt"] * 3 + ["uncle"] * 2 + ["Childminder", "Cousin", "Godparent", "Social_worker"]
        + ["PID 12345", "a relationship far too long to be one word", "Mary Smith"]
        + ["Aunt Ruby Ali", "uncle bob", "Grandma Jones", "Step-dad Darren", "Zoe Hughes childminder"]
    )  # fmt: skip
    rows = "\n".join(f"kid | r{i} | {value}" for i, value in enumerate(values))
    folder = make_extract(
        patients="patient_id | date_of_birth | household_id\nkid | 2018-01-01 | H1\nr0 | 1960-01-01 | H9",
        relationships=f"patient_id | related_patient_id | relationship\n{rows}",
        events="patient_id | code | date\nr0 | 879911000000102 | 2026-03-02",
    )
    result = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF)
    assert len(result.entries) == 0, "a grandmother is not a parent unless recorded as a carer"
    [warning] = [w for w in result.info.warnings if w.startswith("relationships:")]
    assert warning == (
        "relationships: 21 rows valid on the as-of date have a relationship casefind does not recognise and were "
        "not used for linking: 'grandmother' (4 rows), 'aunt' (3 rows), 'uncle' (2 rows), 'childminder' (1 row), "
        "'cousin' (1 row), 2 more words (2 rows) and 8 rows with a value that does not look like a relationship "
        "word (not shown); the README's Families section lists the words casefind recognises"
    )
    assert "12345" not in warning and "mary" not in warning, "a name in the wrong column is not echoed"
    for name in ("ruby", "bob", "jones", "darren", "hughes"):
        assert name not in warning, "a name typed beside the relationship is not echoed"


def test_the_word_lists_are_written_as_the_normalisation_leaves_them():
    words = PARENT_WORDS + CHILD_WORDS + SIBLING_WORDS + HOUSEHOLD_WORDS
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest($words) AS w", {"words": list(words)})
    changed = con.execute(f"SELECT w FROM t WHERE {normalised_word_sql('w')} <> w").fetchall()
    assert changed == []
    assert len(set(words)) == len(words), "a word in two lists would link two ways"
