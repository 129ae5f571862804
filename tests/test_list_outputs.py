"""build-list outputs as a new user meets them: --full on the terminal, provenance that can reproduce the
run, and JSON that keeps numbers as numbers."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import openpyxl
import pytest
from typer.testing import CliRunner

from casefind import api, export
from casefind.cli import app

runner = CliRunner()
AS_OF = date(2026, 11, 24)
# cp: 10 points while a plan is open. da: 6 points through a parent, halving every 365 days.
PROTOCOL = """
name: list outputs
version: "1"
population: {min_age: 0, max_age: 17}
ranking: {minor_criteria_needed: 1}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
  cp_end: {codes: [{code: "342891000000105", term: "No longer subject to child protection plan"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, end: cp_end, weight: 10, tier: significant}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 3 years, half_life: 365 days,
     record: [parent], weight: 6, tier: significant}
"""


@pytest.fixture
def family(make_extract, tmp_path):
    """Amy Khan (11) on a CP plan, her mother Sara Webb a domestic abuse victim exactly two half-lives ago
    (6 x 0.25 = 1.5, score 11.5); Ben Ortiz (6), in another family, on a CP plan only (score 10)."""
    folder = make_extract(
        patients="""
        patient_id | nhs_number | given_name | family_name | date_of_birth
        kid        | 9434765919 | Amy        | Khan        | 2015-02-01
        mum        |            | Sara       | Webb        | 1990-01-01
        other      |            | Ben        | Ortiz       | 2020-06-01
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid        | mum                | mother
        """,
        events="""
        patient_id | code            | date
        kid        | 342191000000101 | 2026-01-01
        mum        | 879911000000102 | 2024-11-24
        other      | 342191000000101 | 2026-03-01
        """,
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(PROTOCOL)
    return folder, rules


def _build(folder, rules, *options: str):
    args = ["build-list", str(folder), "--rules", str(rules), "--as-of", AS_OF.isoformat(), *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_full_names_the_adults_on_the_terminal_as_in_linked_adults(family, tmp_path, monkeypatch):
    from casefind import cli

    folder, rules = family
    monkeypatch.setattr(cli.out, "width", 300)  # a table, and no wrapping inside its cells
    named = "mother (patient mum, Sara Webb): Domestic abuse"
    full = _build(folder, rules, "--full", "--out", str(tmp_path / "list.json"))
    assert f"Adults: {named}" in full
    listed = json.loads((tmp_path / "list.json").read_text())["families"][0]
    assert listed["children"][0]["linked_adults"] == named
    assert listed["adults"][0]["name"] == "Sara Webb"
    # The evidence says whose record a fact is from, and never names anyone (see ranking.rank).
    assert "Domestic abuse: mother (patient mum): Victim of domestic abuse" in full
    assert full.count("Sara Webb") == 1

    plain = _build(folder, rules)
    assert "Adults: mother (patient mum): Domestic abuse" in plain
    assert "Sara" not in plain and "Webb" not in plain


def test_linked_adults_shows_only_the_risks_that_reached_that_child(make_extract, tmp_path):
    """The mother's domestic abuse reaches her own child (the criterion reads parents); the other child of
    the household sees her as a household adult, with nothing of hers reaching him."""
    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        kid        | 2015-02-01    | H1
        lodgers_kid| 2016-02-01    | H1
        mum        | 1990-01-01    | H1
        """,
        relationships="patient_id | related_patient_id | relationship\nkid | mum | mother",
        events="""
        patient_id  | code            | date
        kid         | 342191000000101 | 2026-01-01
        lodgers_kid | 342191000000101 | 2026-02-01
        mum         | 879911000000102 | 2026-03-01
        """,
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(PROTOCOL)
    _build(folder, rules, "--out", str(tmp_path / "list.json"))
    [family] = json.loads((tmp_path / "list.json").read_text())["families"]
    adults = {child["patient_id"]: child["linked_adults"] for child in family["children"]}
    assert adults == {"kid": "mother (patient mum): Domestic abuse", "lodgers_kid": "household adult (patient mum)"}
    assert [a["risk_factors"] for a in family["adults"]] == ["Domestic abuse"]  # the family's whole


def test_provenance_records_the_mapping_file_and_the_options(family, tmp_path):
    folder, rules = family
    patients = folder / "patients.csv"
    patients.write_text(patients.read_text().replace("date_of_birth", "Born On", 1))
    mapping = tmp_path / "headers.yaml"
    mapping.write_bytes(b"patients:\n  columns:\n    Born On: date_of_birth\n")
    digest = hashlib.sha256(mapping.read_bytes()).hexdigest()
    out = tmp_path / "list.json"
    _build(folder, rules, "--mapping", str(mapping), "--all", "--full", "--skip-bad-rows", "--out", str(out))

    sidecar = json.loads(export.provenance_path(out).read_text())
    assert sidecar["mapping"] == {"file": "headers.yaml", "sha256": digest}
    assert sidecar["options"] == {"full": True, "show_all": True, "skip_bad_rows": True}
    assert json.loads(out.read_text())["provenance"] == sidecar


def test_provenance_without_mapping_or_options_says_so(family, tmp_path):
    folder, rules = family
    out = tmp_path / "list.xlsx"
    _build(folder, rules, "--out", str(out))

    sidecar = json.loads(export.provenance_path(out).read_text())
    assert sidecar["mapping"] is None
    assert sidecar["options"] == {"full": False, "show_all": False, "skip_bad_rows": False}
    about = {row[0].value: row[1].value for row in openpyxl.load_workbook(out)["Provenance"].iter_rows()}
    assert about["mapping"] is None
    options = (about["options.full"], about["options.show_all"], about["options.skip_bad_rows"])
    assert options == (False, False, False)  # Excel booleans, not the text "False"


def test_json_numbers_are_numbers_and_identifiers_codes_and_dates_text(family, tmp_path):
    folder, rules = family
    case_list = api.build_list(folder, rules=rules, as_of=AS_OF)
    doc = json.loads(export.write_list(case_list, tmp_path / "list.json").read_text())
    children = [child for family in doc["families"] for child in family["children"]]
    assert [(c["patient_id"], c["rank"], c["age"], c["score"]) for c in children] == [
        ("kid", 1, 11, 11.5),
        ("other", 2, 6, 10),
    ]
    for child in children:
        assert all(type(child[key]) in (int, float) for key in ("rank", "age", "score"))
    assert children[0]["nhs_number"] == "9434765919" and children[1]["nhs_number"] == ""
    assert [c["date_of_birth"] for c in children] == ["2015-02-01", "2020-06-01"]
    assert [c["latest_evidence"] for c in children] == ["2026-01-01", "2026-03-01"]
    assert {(e["code"], e["date"]) for e in children[0]["evidence"]} == {
        ("342191000000101", "2026-01-01"),
        ("879911000000102", "2024-11-24"),
    }
    assert doc["families"][0]["adults"][0]["children"] == 1


def test_the_adults_line_and_linked_adults_list_the_parents_in_one_order(make_extract, tmp_path, monkeypatch):
    """A child's linked_adults and the family's Adults line (and the adults in JSON and Excel) list the adults
    in one order: parents before household adults, then by relationship ('father' before 'mother'), then
    patient_id; never by patient_id alone, which put the mother first here in the Adults line only."""
    from casefind import cli

    folder = make_extract(
        patients="""
        patient_id | date_of_birth | household_id
        kid        | 2015-02-01    | H1
        a_mum      | 1990-01-01    | H1
        b_dad      | 1988-01-01    | H2
        0_lodger   | 1980-01-01    | H1
        """,
        relationships="""
        patient_id | related_patient_id | relationship
        kid        | a_mum              | mother
        kid        | b_dad              | father
        """,
        events="""
        patient_id | code            | date
        kid        | 342191000000101 | 2026-01-01
        a_mum      | 879911000000102 | 2026-06-01
        """,
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(PROTOCOL)
    expected = "father (patient b_dad); mother (patient a_mum): Domestic abuse; household adult (patient 0_lodger)"

    case_list = api.build_list(folder, rules=rules, as_of=AS_OF)
    assert case_list.entries["linked_adults"].tolist() == [expected]
    assert case_list.adults["patient_id"].tolist() == ["b_dad", "a_mum", "0_lodger"]
    monkeypatch.setattr(cli.out, "width", 300)  # a table, and no wrapping inside its cells
    assert f"Adults: {expected}" in _build(folder, rules)
