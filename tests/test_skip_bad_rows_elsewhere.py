"""--skip-bad-rows outside build-list: explain and coding-report say what was left out, and coding-report
checks every option before it reads the extract (which takes minutes at ICB scale)."""

from __future__ import annotations

import csv
import io
import stat

import pytest
from typer.testing import CliRunner

import casefind.api
from casefind import api
from casefind.cli import app
from casefind.protocol import parse_protocol

runner = CliRunner()
AS_OF = "2026-11-24"
CP_CODE = "342191000000101"  # Subject to child protection plan: a report_category in the bundled protocol
PROTOCOL = """
name: skip
version: "1"
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
  da: {codes: [{code: "879911000000102", term: "Victim of domestic abuse"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
  - {id: da, label: Domestic abuse, kind: coded_in_window, codes: da, window: 12 months,
     record: [parent], weight: 6, tier: significant}
"""
# PATID-KID's date of birth is no date, so --skip-bad-rows leaves out their row, and with it their link to
# PATID-MUM and their event; PATID-ODD is another patient with a bad row.
PATIENTS = """
patient_id | date_of_birth | household_id
PATID-KID  | 31/02/2019    | H1
PATID-MUM  | 1990-01-01    | H1
PATID-ODD  | 2015-13-01    | H2
"""
RELATIONSHIPS = """
patient_id | related_patient_id | relationship
PATID-KID  | PATID-MUM          | mother
"""
EVENTS = f"""
patient_id | code            | date
PATID-KID  | {CP_CODE}       | 2025-01-01
PATID-MUM  | 879911000000102 | 2026-04-01
"""

HIDDEN = " (digits hidden: it identifies a patient)"  # how a date of birth is shown in a message


@pytest.fixture
def extract(make_extract):
    return make_extract(patients=PATIENTS, relationships=RELATIONSHIPS, events=EVENTS)


def explain(extract, tmp_path, patient_id: str, *options: str):
    rules = tmp_path / "rules.yaml"
    rules.write_text(PROTOCOL)
    return runner.invoke(app, ["explain", str(extract), patient_id, "--rules", str(rules), "--as-of", AS_OF, *options])


def test_explain_a_patient_whose_row_was_left_out_names_the_row_and_its_problem(extract, tmp_path):
    result = explain(extract, tmp_path, "PATID-KID", "--skip-bad-rows")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: PATIENT_ID: this patient's row in the patients file has a problem, so --skip-bad-rows left it out: "
        "patients.csv, row 2, column 'date_of_birth': invalid date nn/nn/nnnn (digits hidden: it identifies a patient)",
        "  HINT: fix the row in the extract, then run explain again",
    ]
    assert "PATID" not in result.output


def test_explain_says_how_many_bad_rows_were_left_out_those_naming_the_patient_first(extract, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = explain(extract, tmp_path, "PATID-MUM", "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[lines.index("Family links on the as-of date: no linked relatives") + 1 :] == [
        "4 bad rows were left out of the extract (--skip-bad-rows); 1 of them names this patient. A link, code or "
        "appointment in a bad row is missing from this explanation, for this patient or a relative.",
        "- relationships.csv, row 2, column 'patient_id': its patient's row in the patients file has a problem (row 2)",
        f"- patients.csv, row 2, column 'date_of_birth': invalid date nn/nn/nnnn{HIDDEN}",
        f"- patients.csv, row 4, column 'date_of_birth': invalid date nnnn-nn-nn{HIDDEN}",
        "- events.csv, row 2, column 'patient_id': its patient's row in the patients file has a problem (row 2)",
        "Run casefind build-list with --skip-bad-rows to write every bad row, with its problems, to a file.",
    ]
    assert "PATID-KID" not in result.output and "PATID-ODD" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extract", "rules.yaml"]  # explain writes no file


def test_explain_shows_the_first_five_problems_and_counts_the_rest(make_extract):
    bad = "\n".join(f"PATID-{i} | 2015-13-0{i}" for i in range(1, 8))
    folder = make_extract(patients=f"patient_id | date_of_birth\nPATID-OK | 2015-01-01\n{bad}")
    result = api.explain(folder, "PATID-OK", rules=parse_protocol(PROTOCOL), as_of=None, skip_bad_rows=True)
    assert result.left_out[0].startswith("7 bad rows were left out of the extract (--skip-bad-rows); none names")
    assert result.left_out[1:7] == (
        *(f"- patients.csv, row {i + 2}, column 'date_of_birth': invalid date nnnn-nn-nn{HIDDEN}" for i in range(1, 6)),
        "- ... and 2 more problems",
    )


# --- coding-report ---------------------------------------------------------------------------------------


def coding_report(extract, out, *options: str):
    args = ["coding-report", str(extract), "--from", "2024-01-01", "--to", "2024-12-31", "--out", str(out), *options]
    return runner.invoke(app, args)


def test_coding_report_writes_the_bad_rows_to_rejects_csv_and_says_so(make_extract, tmp_path):
    folder = make_extract(
        patients=PATIENTS.replace("PATID-MUM  | 1990-01-01", "PATID-MUM  | 2014-01-01"),
        relationships=RELATIONSHIPS,
        events=f"""
        patient_id | code      | date
        PATID-KID  | {CP_CODE} | 2024-03-01
        PATID-MUM  | {CP_CODE} | 2024-04-01
        PATID-MUM  | {CP_CODE} | 2024-13-01
        """,
    )
    out = tmp_path / "out"
    result = coding_report(folder, out, "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"5 bad rows were left out (see {out / 'rejects.csv'})."
    rejects = out / "rejects.csv"
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert [(r["file"], r["row"], r["column"]) for r in rows] == [
        ("patients.csv", "2", "date_of_birth"),
        ("patients.csv", "4", "date_of_birth"),
        ("events.csv", "2", "patient_id"),
        ("events.csv", "4", "date"),
        ("relationships.csv", "2", "patient_id"),
    ]
    assert list(rows[0]) == ["file", "row", "column", "problem"]  # no values: the folder is for auditors
    for name in ("rejects.csv", "report.html"):
        assert "PATID" not in (out / name).read_text(encoding="utf-8"), name
    assert "5 bad rows of the extract were left out (--skip-bad-rows)" in (out / "report.html").read_text()


def test_coding_report_never_takes_an_earlier_rejects_csv_for_its_own(make_extract, tmp_path):
    folder = make_extract(patients="patient_id | date_of_birth\nPATID-1 | 2015-01-01")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rejects.csv").write_text("from an earlier run\n")
    result = coding_report(folder, tmp_path / "out")
    assert result.exit_code == 4, result.output
    assert "already holds rejects.csv from an earlier report" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["rejects.csv"]


@pytest.mark.parametrize(
    ("options", "exit_code", "message"),
    [
        (["--by", "week"], 2, "--by: expected one of month, quarter, year, got 'week'"),
        (["--breakdown", "ethnicity"], 2, "--breakdown: unknown breakdown 'ethnicity'"),
        (["--to", "2023-12-31"], 2, "--from/--to: the report ends (2023-12-31) before it starts (2024-01-01)"),
        (
            ["--compare", "2024-06-30..2024-01-01", "2024-07-01..2024-12-31"],
            2,
            "--compare: the range 2024-06-30..2024-01-01 ends before it starts",
        ),
        (
            ["--compare", "2024-01-01..2024-06-30", "2024-01-01..2024-06-30"],
            2,
            "--compare: the two date ranges are the same",
        ),
        (["--out", "{tmp}/a-file"], 4, "a-file: is a file, not a folder"),
    ],
    ids=["by-week", "breakdown-ethnicity", "to-before-from", "compare-reversed", "compare-same", "out-is-a-file"],
)
def test_coding_report_checks_every_option_before_reading_the_extract(
    make_extract, tmp_path, monkeypatch, options, exit_code, message
):
    folder = make_extract(patients="patient_id | date_of_birth\nPATID-1 | 2015-01-01")
    (tmp_path / "a-file").write_text("")
    read = []

    def read_extract(*args, **kwargs):
        read.append(args)
        raise RuntimeError("the extract was read before every option was checked")

    monkeypatch.setattr(casefind.api, "read_extract", read_extract)
    result = coding_report(folder, tmp_path / "out", *[o.format(tmp=tmp_path) for o in options])
    assert (result.exit_code, read) == (exit_code, []), result.output
    assert message in result.stderr
