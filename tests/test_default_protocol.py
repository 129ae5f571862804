"""The bundled default protocol: valid, every SNOMED code has a correct Verhoeff check digit, provenance."""

from __future__ import annotations

import csv
import re
from datetime import date

import pytest

from casefind import api
from casefind.codes import sctid_problem, verhoeff_valid
from casefind.errors import ProtocolError
from casefind.protocol import default_protocol_path, load_protocol
from tests.conftest import REPO

CODELIST_DIR = REPO / "rules" / "codelists"


def test_default_protocol_loads_and_covers_the_issue_criteria():
    protocol = load_protocol(default_protocol_path())
    ids = {c.id for c in protocol.criteria}
    assert {
        "cp_plan",
        "child_in_need",
        "looked_after",
        "cause_for_concern",
        "exploitation",
        "unborn_concern",
        "new_birth",
        "antenatal_booking",
        "late_booking",
    } <= ids


def test_every_shipped_snomed_code_passes_the_verhoeff_check():
    checked = 0
    for path in sorted(CODELIST_DIR.glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                assert verhoeff_valid(row["code"]), f"{path.name}: {row['code']}"
                assert sctid_problem(row["code"]) is None, f"{path.name}: {row['code']}"
                checked += 1
    assert checked > 600  # includes the delivery codelist


def test_every_codelist_row_and_entry_carries_its_provenance():
    protocol = load_protocol(default_protocol_path())
    for name, codelist in protocol.codelists.items():
        assert codelist.source, name
        assert codelist.file_sha256, name
    for path in sorted(CODELIST_DIR.glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows and all(r["source"].strip() for r in rows), path.name


def test_every_source_cites_a_section_of_the_shipped_code_report():
    """The report the codes came from ships beside the protocol (and ``casefind rules`` copies it), so an
    auditor can follow every ``source`` to a section that exists, and from there to the public list it cites."""
    report = (CODELIST_DIR.parent / "safeguarding-codes.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? ", report, flags=re.M))
    protocol = load_protocol(default_protocol_path())
    sources = [c.source for c in protocol.codelists.values()]
    for path in sorted(CODELIST_DIR.glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            sources += [r["source"] for r in csv.DictReader(f)]
    for source in set(sources):
        if source.startswith("OpenCodelists "):  # a public list cited directly, at a commit
            assert re.search(r"@ [0-9a-f]{7,}", source), source
            continue
        assert source.startswith("safeguarding-codes.md "), source
        cited = re.findall(r"sections? ([0-9.]+[0-9])(?: and (?:section )?([0-9.]+[0-9]))?", source)
        assert cited and all(n in sections for pair in cited for n in pair if n), source


def test_key_codes_are_where_the_reference_puts_them():
    protocol = load_protocol(default_protocol_path())
    cl = protocol.codelists
    assert "342191000000101" in cl["cp_plan_start"].code_values  # Subject to child protection plan
    assert "342891000000105" in cl["cp_plan_end"].code_values  # No longer subject to CP plan
    assert "135890008" in cl["child_in_need_end"].code_values  # Child no longer in need
    assert "818901000000100" in cl["unborn_concern_start"].code_values


def test_protocol_hash_ignores_layout_but_not_content(tmp_path):
    text = default_protocol_path().read_text()
    base = default_protocol_path().parent
    from casefind.protocol import parse_protocol

    original = parse_protocol(text, base=base)
    reformatted = parse_protocol("# a comment\n" + text.replace("weight: 10", "weight:    10"), base=base)
    changed = parse_protocol(text.replace("weight: 10", "weight: 11"), base=base)
    assert original.fingerprint() == reformatted.fingerprint()
    assert original.fingerprint() != changed.fingerprint()


def test_a_late_booker_code_alone_is_a_late_booking_and_a_birth_ends_an_unborn_baby_concern(make_extract):
    """A practice that codes only "late booker" still has a booking; the unborn-baby codes on the mother's
    record end when the baby is born (its own record takes over)."""
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | sex | household_id
        late_only  | 1998-01-01    | F   | H1
        born_now   | 1996-01-01    | F   | H2
        still_due  | 1996-01-01    | F   | H3
        """,
        events="""
        patient_id | code            | date
        late_only  | 169594005       | 2026-06-01
        born_now   | 878111000000109 | 2026-02-01
        born_now   | 169826009       | 2026-06-01
        still_due  | 878111000000109 | 2026-09-01
        """,
    )
    result = api.build_list(folder, as_of=date(2026, 11, 24))
    assert dict(zip(result.entries["patient_id"], result.entries["criteria"], strict=True)) == {
        "late_only": "antenatal_booking;late_booking",
        "still_due": "unborn_concern",
    }


def test_parental_criteria_read_child_side_codes_in_the_childs_record_only_for_mental_illness(make_extract):
    """Domestic abuse, drugs and alcohol read the child's own record and list their child-side codes in
    ``codes`` too; parental mental illness reads the parents' diagnoses only (a child's own illness is not a
    parent's), and its child-side proxy only in the child's own record (on a parent's record it says the parent
    cares for someone)."""
    protocol = load_protocol(default_protocol_path())
    for cid in ("parental_domestic_abuse", "parental_drug_misuse", "parental_alcohol_misuse"):
        c = protocol.criterion(cid)
        assert "own" in c.record and set(c.reciprocal) <= set(c.codes), cid
    mi = protocol.criterion("parental_mental_illness")
    assert (mi.codes, mi.reciprocal, mi.record) == (
        ("severe_mental_illness",),
        ("mental_illness_child_side",),
        ("parent", "household_adult"),
    )
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        proxy_kid  | 2016-01-01    | H1
        carer_kid  | 2016-01-01    | H2
        carer_mum  | 1990-01-01    | H2
        own_kid    | 2009-01-01    | H3
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        carer_kid  | carer_mum          | mother
        """,
        events="""
        patient_id | code            | date
        proxy_kid  | 413762006       | 2026-10-01
        carer_mum  | 413762006       | 2026-10-01
        own_kid    | 391193001       | 2026-10-01
        proxy_kid  | 836881000000105 | 2026-09-01
        carer_kid  | 836881000000105 | 2026-09-01
        own_kid    | 836881000000105 | 2026-09-01
        """,
    )
    result = api.build_list(folder, as_of=date(2026, 11, 24))
    criteria = dict(zip(result.entries["patient_id"], result.entries["criteria"], strict=True))
    assert criteria == {
        "proxy_kid": "cause_for_concern;parental_mental_illness",
        "carer_kid": "cause_for_concern",
        "own_kid": "cause_for_concern",
    }
    [evidence] = result.entries.loc[result.entries["patient_id"] == "proxy_kid", "evidence"]
    assert (
        "Parental severe mental illness or postnatal depression (last 5 years): child's record: Caregiver of a "
        "person with mental health problem (413762006), 2026-10-01"
    ) in evidence


def test_a_child_side_list_is_only_for_a_coded_in_window_criterion(tmp_path):
    """A coded_active criterion's end codes close the relative's code, not a child-side one: a copy of the
    protocol that gives one child-side codes is told where they belong."""
    text = default_protocol_path().read_text(encoding="utf-8")
    learning = "    start: learning_disability\n    record: parent\n"
    assert learning in text
    rules = tmp_path / "vf.yaml"
    rules.write_text(text.replace(learning, learning + "    reciprocal: mental_illness_child_side\n"))
    (tmp_path / "codelists").symlink_to(CODELIST_DIR)
    with pytest.raises(ProtocolError) as error:
        load_protocol(rules)
    [problem] = error.value.problems
    assert str(problem).endswith(
        "(id 'parental_learning_disability').reciprocal: 'reciprocal' is not a field of kind 'coded_active' "
        "(only of: coded_in_window)"
    )
