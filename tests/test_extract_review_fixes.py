"""Defects a reviewer found in reading the extract: each input gives the list it should, or one clear message
(exit 2), never another patient's evidence, an empty list or an internal error."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from casefind import api
from casefind.cli import app
from casefind.errors import ExitCode, ExtractError
from casefind.extract import read_extract
from tests.conftest import extract_problems as _problems
from tests.conftest import write_files as _write

CP_PLAN = "342191000000101"
PATIENTS = "patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\nP2,Jones,2016-03-04\n"
EVENTS = f"patient_id,code,date\nP1,{CP_PLAN},2026-01-01\n"
AS_OF = date(2026, 11, 24)
DATE_HINT = "  HINT: write dates as yyyy-mm-dd or dd/mm/yyyy"


def _cli(*args: str):
    return CliRunner().invoke(app, [*args, "--as-of", "2026-11-24", "--quiet"])


# ------------------------------------------------------------------------------------------ 1. a duplicate patient_id


ONE_ID = (
    "  HINT: each patient_id must appear once: give each patient their own (--skip-bad-rows leaves out every row "
    "with it, in every file)"
)


def test_every_row_of_a_duplicate_patient_id_is_left_out_with_the_other_files_rows(tmp_path):
    """Two children given one id: the events, relationships and appointments with it could be either child's.
    Kept with the first row, the second child's plan would be listed under the first child's name."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\nP2,Jones,2016-03-04\n"
        "P1,Khan,2017-05-06\n",
        events_csv=f"patient_id,code,date\nP1,{CP_PLAN},2026-01-01\nP2,{CP_PLAN},2026-02-01\n",
        relationships_csv="patient_id,related_patient_id,relationship\nP1,P2,sibling\n",
    )
    assert _problems(folder) == [
        f"patients.csv, row 2, column 'patient_id': duplicate patient_id (also on row 4)\n{ONE_ID}",
        f"patients.csv, row 4, column 'patient_id': duplicate patient_id (first seen on row 2)\n{ONE_ID}",
        "events.csv: 1 row is of patients whose row in the patients file has a problem\n"
        "  HINT: fix those rows, and these are read with them",
        "relationships.csv: 1 row is of patients whose row in the patients file has a problem\n"
        "  HINT: fix those rows, and these are read with them",
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rejects[["file", "row", "problem"]].values.tolist() == [
        ["patients.csv", 2, "duplicate patient_id (also on row 4)"],
        ["patients.csv", 4, "duplicate patient_id (first seen on row 2)"],
        ["events.csv", 2, "its patient's row in the patients file has a problem (row 2)"],
        ["relationships.csv", 2, "its patient's row in the patients file has a problem (row 2)"],
    ]
    assert [json.loads(r)["family_name"] for r in extract.rejects["record"][:2]] == ["Smith", "Khan"]
    assert extract.con.execute("SELECT patient_id FROM patients").fetchall() == [("P2",)]
    assert extract.con.execute("SELECT patient_id FROM events").fetchall() == [("P2",)]
    listed = api.build_list(folder, as_of=AS_OF, skip_bad_rows=True).entries
    assert listed[["patient_id", "family_name"]].values.tolist() == [["P2", "Jones"]]


# ------------------------------------------------------------------------------------------ 2. Parquet's null type


def test_a_parquet_column_blank_in_every_row_reads_as_blank(tmp_path):
    """pyarrow writes such a column as the null type: no one has died, no relationship has dates."""
    folder = _write(tmp_path / "x", events_csv=EVENTS)
    pq.write_table(
        pa.table({"patient_id": ["P1", "P2"], "date_of_birth": ["2015-02-01", "2016-03-04"],
                  "date_of_death": pa.nulls(2), "household_id": pa.nulls(2)}),
        folder / "patients.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"patient_id": ["P1"], "related_patient_id": ["P2"], "relationship": ["sibling"],
                  "start_date": pa.nulls(1), "end_date": pa.nulls(1)}),
        folder / "relationships.parquet",
    )  # fmt: skip
    assert pq.read_schema(folder / "patients.parquet").field("date_of_death").type == pa.null()
    extract = read_extract(folder)
    assert extract.con.execute(
        "SELECT patient_id, date_of_death, household_id FROM patients ORDER BY _row"
    ).fetchall() == [
        ("P1", None, None),
        ("P2", None, None),
    ]
    assert extract.con.execute("SELECT relationship, start_date, end_date FROM relationships").fetchall() == [
        ("sibling", None, None)
    ]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(columns=["patient_id", "related_patient_id", "relationship", "start_date", "end_date"]),
        pd.DataFrame({c: [] for c in ("patient_id", "related_patient_id", "relationship", "start_date", "end_date")}),
    ],
    ids=["null", "double"],
)
def test_a_parquet_file_of_an_empty_dataframe_has_a_header_but_no_rows(tmp_path, frame):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    frame.to_parquet(folder / "relationships.parquet", index=False)
    warnings = [str(w) for w in read_extract(folder).warnings if w.location == "relationships.parquet"]
    assert warnings == [
        "relationships.parquet: the file has a header but no rows: children are linked only by a shared "
        "household_id: no parents living elsewhere, no siblings in other households"
    ]


def test_a_required_parquet_column_of_the_null_type_is_missing_in_every_row(tmp_path):
    """Not a crash: each row misses its patient_id, and with --skip-bad-rows no one is left to list."""
    folder = _write(tmp_path / "x", events_csv="patient_id,code,date\n")
    pq.write_table(
        pa.table({"patient_id": pa.nulls(2), "date_of_birth": ["2015-02-01", "2016-03-04"]}),
        folder / "patients.parquet",
    )
    missing = (
        "column 'patient_id': missing required value\n"
        "  HINT: every row needs a value in patient_id: fill it in, or leave the row out of the export"
    )
    assert _problems(folder) == [f"patients.parquet, row 1, {missing}", f"patients.parquet, row 2, {missing}"]
    assert _problems(folder, skip_bad_rows=True) == [
        f"patients.parquet: every row has a problem (2 rows), so no patient is left to list\n{EVERY_ROW_HINT}",
        f"patients.parquet, row 1, {missing}",
        f"patients.parquet, row 2, {missing}",
    ]


# ------------------------------------------------------------------------------------------ 3. the mapping file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "patients: Patient Details.csv\n",
            "line 1, patients: expected file, columns or values under patients, not text\n"
            "  HINT: name the file after file: and the headers under columns:, as in patients: {file: NAME.csv} "
            "('casefind rules DIR' writes an example, mapping.example.yaml)",
        ),
        (
            "patients:\n  file: patients.csv\n  columns:\n    - DOB\n    - Surname\n",
            "line 3, patients.columns: expected each header with the column it holds, not a list\n"
            "  HINT: write each header, a colon and casefind's column, one to a line: patients: {columns: "
            "{'Their Header': patient_id}}",
        ),
        (
            "events:\n  columns: {}\n  file: 123\n",
            "line 3, events.file: expected one file name, not a number\n"
            "  HINT: write the file's name with its extension (events.csv); a name that is only digits goes in "
            "quotes: file: '123'",
        ),
        (
            "events:\n  file: [a.csv, b.csv]\n",
            "line 2, events.file: expected one file name, not a list\n"
            "  HINT: casefind reads one file per table: join the files into one, and name that",
        ),
    ],
    ids=["text", "list-of-columns", "number", "list-of-files"],
)
def test_a_mapping_value_of_the_wrong_kind_is_named_with_its_line(tmp_path, text, expected):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text)
    assert _problems(folder, mapping=mapping) == [f"{mapping}, {expected}"]
    result = _cli("build-list", str(folder), "--mapping", str(mapping))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "internal error" not in result.output


YAML_HINT = (
    "  HINT: indent with spaces, not tabs, and put a header holding ': ' or ' #' in quotes ('casefind rules DIR' "
    "writes an example, mapping.example.yaml)"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patients:\n  columns:\n    Date: of birth: date_of_birth\n",
         "line 3: not valid YAML: mapping values are not allowed here"),
        ("patients:\n  columns:\n\tDOB: date_of_birth\n",
         "line 3: not valid YAML: found character '\\t' that cannot start any token"),
    ],
    ids=["colon", "tab"],
)  # fmt: skip
def test_a_mapping_file_that_is_not_yaml_says_why(tmp_path, text, expected):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text)
    assert _problems(folder, mapping=mapping) == [f"{mapping}, {expected}\n{YAML_HINT}"]


def test_a_misspelt_mapped_header_names_the_header_already_matched_without_it(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,Date of Birth\nP1,2015-02-01\n",
        events_csv=EVENTS,
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text("patients:\n  columns:\n    Date of Brith: date_of_birth\n")
    assert _problems(folder, mapping=mapping) == [
        f"{folder / 'patients.csv'}: the mapping file maps 'Date of Brith' to date_of_birth, but the file has no "
        "column 'Date of Brith'\n  HINT: did you mean 'Date of Birth'?"
    ]


# ------------------------------------------------------------------------------------------ 4. no patient left


EVERY_ROW_HINT = (
    "  HINT: --skip-bad-rows leaves out bad rows, and here that is every patient: fix the problems below (the same "
    "problem in every row is most often one column exported wrongly)"
)


def test_skipping_bad_rows_stops_when_every_patient_row_has_a_problem(tmp_path):
    """NULL written in every empty date of death: an empty list, exit 0, would say no child needs discussing."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,date_of_death\nP1,2015-02-01,NULL\nP2,2016-03-04,NULL\n",
        events_csv=EVENTS,
    )
    placeholder = (
        "column 'date_of_death': invalid date: a placeholder for an unknown date\n"
        "  HINT: the export should leave an unknown date blank: a word such as NULL or NaN is not read as a blank"
    )
    with pytest.raises(ExtractError) as caught:
        read_extract(folder, skip_bad_rows=True)
    assert [str(p) for p in caught.value.problems] == [
        f"patients.csv: every row has a problem (2 rows), so no patient is left to list\n{EVERY_ROW_HINT}",
        f"patients.csv, row 2, {placeholder}",
        f"patients.csv, row 3, {placeholder}",
    ]
    assert str(caught.value).splitlines()[-1] == "Stopped before any output."
    result = _cli("build-list", str(folder), "--skip-bad-rows", "--out", str(tmp_path / "list.csv"))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert not (tmp_path / "list.csv").exists()


# ------------------------------------------------------------------------------------------ 5. what is wrong, said


def test_a_date_that_is_a_placeholder_yyyymmdd_or_a_spreadsheet_number_says_so(tmp_path):
    """Such values cannot be names, so "not shown" left the user nothing to go on. Digits are still never
    shown (an identifier in the wrong column has them); a placeholder word is, except where a value would
    identify a patient (a date of birth or death)."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,date_of_death\nP1,2015-02-01,\nP2,null,\nP3,20160304,NaN\n"
        "P4,42430,\nP5,42430.5,None\n",
        events_csv="patient_id,code,date\nP1,1,NULL\nP1,1,NaN\nP1,1,20260101\nP1,1,46023\nP1,1,46023.25\n"
        "P1,1,12345678\nP1,1,Smith\nP1,1,2026-01-01\n",
    )
    placeholder = (
        "a placeholder for an unknown date\n"
        "  HINT: the export should leave an unknown date blank: a word such as NULL or NaN is not read as a blank"
    )
    yyyymmdd = "8 digits without separators (yyyymmdd)\n  HINT: export dates as yyyy-mm-dd"
    serial = (
        "a spreadsheet's serial number for a date (days since 1900), not the date\n"
        "  HINT: format the column as a date (yyyy-mm-dd) before saving it from the spreadsheet"
    )
    hidden = "(not shown: it may be a name or an identifier in the wrong column)"
    problems = _problems(folder)
    assert problems == [
        f"patients.csv, row 3, column 'date_of_birth': invalid date: {placeholder}",
        f"patients.csv, row 4, column 'date_of_birth': invalid date: {yyyymmdd}",
        f"patients.csv, row 4, column 'date_of_death': invalid date: {placeholder}",
        f"patients.csv, row 5, column 'date_of_birth': invalid date: {serial}",
        f"patients.csv, row 6, column 'date_of_birth': invalid date: {serial}",
        f"patients.csv, row 6, column 'date_of_death': invalid date: {placeholder}",
        f"events.csv, row 2, column 'date': invalid date 'NULL': {placeholder}",
        f"events.csv, row 3, column 'date': invalid date 'NaN': {placeholder}",
        f"events.csv, row 4, column 'date': invalid date: {yyyymmdd}",
        f"events.csv, row 5, column 'date': invalid date: {serial}",
        f"events.csv, row 6, column 'date': invalid date: {serial}",
        f"events.csv, row 7, column 'date': invalid date {hidden}\n{DATE_HINT}",  # not a date in yyyymmdd
        f"events.csv, row 8, column 'date': invalid date {hidden}\n{DATE_HINT}",
    ]
    assert not any(secret in p for p in problems for secret in ("20160304", "42430", "Smith", "12345678", "null"))


def test_a_code_excel_kept_as_text_says_how(tmp_path):
    """Excel's text prefix ('836881000000105) and its ="..." formula: neither code could ever match."""
    events = (
        'patient_id,code,date\nP1,\'836881000000105,2026-01-01\nP1,"=""836881000000105""",2026-01-01\n'
        "P1,'Smith,2026-01-01\nP1,'8368 81,2026-01-01\n"
    )
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    prefix = (
        "is written with Excel's text prefix, an apostrophe in front of it\n  HINT: remove the apostrophe in front "
        "of each code: export the codes as text, without opening them in a spreadsheet"
    )
    assert _problems(folder) == [
        f"events.csv, row 2, column 'code': code '836881000000105' {prefix}",
        "events.csv, row 3, column 'code': code '836881000000105' is written inside Excel's =\"...\" formula, which "
        'keeps it text\n  HINT: remove the =" and " around each code: export the codes as text, without opening '
        "them in a spreadsheet",
        f"events.csv, row 4, column 'code': code (not shown: it may be a name or an identifier in the wrong column) "
        f"{prefix}",
        "events.csv, row 5, column 'code': code (not shown: it may be a name or an identifier in the wrong column) "
        "contains a quote, comma, apostrophe, tab, space or invisible character\n  HINT: a code is one word, such as "
        "342191000000101 or 13Iv.; check the quoting, and remove anything typed or exported around it",
    ]


# ------------------------------------------------------------------------------------------ 6. words DuckDB reads


def test_words_duckdb_reads_as_dates_are_not_dates(tmp_path):
    """DuckDB reads 'epoch' as 1970-01-01 (or, with a format, 1900-01-01) and 'infinity' as 9999-12-31 (an open
    end, read as blank): no export means either."""
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv=f"patient_id,code,date\nP1,{CP_PLAN},epoch\nP1,{CP_PLAN},2026-01-01\n",
        relationships_csv="patient_id,related_patient_id,relationship,end_date\nP1,P2,sibling,infinity\n",
    )
    hidden = "(not shown: it may be a name or an identifier in the wrong column)"
    assert _problems(folder) == [
        f"events.csv, row 2, column 'date': invalid date {hidden}\n{DATE_HINT}",
        f"relationships.csv, row 2, column 'end_date': invalid date {hidden}\n{DATE_HINT}",
    ]


# ------------------------------------------------------------------------------------------ 7, 8. the files


def test_a_folder_named_as_the_tables_file_is_called_a_folder(tmp_path):
    folder = _write(tmp_path / "x", events_csv=EVENTS)
    (folder / "patients.csv").mkdir()
    assert _problems(folder) == [
        f"{folder}: no patients.csv or patients.parquet file: patients.csv is a folder (found: events.csv, "
        "patients.csv)\n  HINT: casefind reads one file per table, not a folder: put the table's file here as "
        "patients.csv, or name it in a mapping file: patients: {file: ...}"
    ]
    (folder / "patients.csv" / "part-00000.csv").write_text(PATIENTS)  # as Spark writes one part
    [problem] = _problems(folder)
    assert problem.endswith(
        "HINT: casefind reads a file, not a folder: map the file in it: patients: {file: patients.csv/part-00000.csv}"
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text("patients:\n  file: patients.csv/part-00000.csv\n")
    assert read_extract(folder, mapping=mapping).rows_read["patients"] == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_that_cannot_be_opened_is_named_with_why(tmp_path, monkeypatch, fmt):
    """On Windows a file open in Excel cannot be opened by another program; anywhere, one the user may not read.
    (The tests run as root, who may read anything: the refusal is simulated.)"""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    locked = folder / f"events.{fmt}"
    if fmt == "csv":
        locked.write_text(EVENTS)
    else:
        pd.DataFrame({"patient_id": ["P1"], "code": [CP_PLAN], "date": ["2026-01-01"]}).to_parquet(locked)
    real_open = Path.open

    def open_unless_locked(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_unless_locked)
    assert _problems(folder) == [
        f"{locked}: cannot be read: Permission denied\n  HINT: close it in any program that has it open (Excel locks "
        "the files it has open), and check that you may read it"
    ]
    result = _cli("build-list", str(folder))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "cannot be read: Permission denied" in result.output
