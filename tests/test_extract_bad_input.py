"""Bad input an exploratory tester found: each gives one clear message (exit 2), never an internal error, and
input that is only unusual is read."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casefind.errors import ExitCode, ExtractError
from casefind.extract import read_extract
from tests.conftest import extract_problems as _problems
from tests.conftest import write_files as _write

PATIENTS = "patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\nP2,Jones,2016-03-04\n"
EVENTS = "patient_id,code,date\nP1,342191000000101,2026-01-01\n"
CP_PLAN = "342191000000101"
SWAPPED = "swapped, or a year mistyped?"


def _lines(problems: list[str]) -> list[str]:
    return [p.split("\n")[0] for p in problems]


# ------------------------------------------------------------------------------------------ 1. Parquet files


def _events_parquet(path: Path, rows: int = 200) -> None:
    """Events with a text column of its own (term), uncompressed, so that its bytes can be damaged alone."""
    frame = pd.DataFrame(
        {"patient_id": ["P1"] * rows, "code": [CP_PLAN] * rows, "date": ["2026-01-01"] * rows,
         "term": [f"term {i}" for i in range(rows)]}
    )  # fmt: skip
    frame.to_parquet(path, index=False, compression=None)


def _unreadable(path: Path) -> str:
    return (
        f"{path}: not a readable Parquet file (truncated, or not Parquet at all)\n"
        f"  HINT: export it again, or save the table as CSV ({path.stem}.csv)"
    )


def test_a_file_named_parquet_that_is_not_one_is_named(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    (folder / "concerns.parquet").write_text("not parquet\n")
    assert _problems(folder) == [_unreadable(folder / "concerns.parquet")]


def test_a_truncated_parquet_file_is_named(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _events_parquet(folder / "events.parquet", rows=2000)
    data = (folder / "events.parquet").read_bytes()
    (folder / "events.parquet").write_bytes(data[: len(data) // 2])
    assert _problems(folder, event_codes={CP_PLAN}) == [_unreadable(folder / "events.parquet")]


def test_a_parquet_file_damaged_inside_is_named_when_its_rows_are_read(tmp_path):
    """The footer is whole, so the file opens and its columns are listed; one column's pages are not."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    path = folder / "events.parquet"
    _events_parquet(path)
    term = pq.ParquetFile(path).metadata.row_group(0).column(3)
    start = term.dictionary_page_offset or term.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + term.total_compressed_size] = b"\xff" * term.total_compressed_size
    path.write_bytes(bytes(data))
    assert _problems(folder, event_codes={CP_PLAN}) == [_unreadable(path)]


def test_an_unreadable_parquet_file_exits_2_not_as_an_internal_error(tmp_path):
    from typer.testing import CliRunner

    from casefind.cli import app

    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    (folder / "concerns.parquet").write_text("not parquet\n")
    result = CliRunner().invoke(app, ["build-list", str(folder), "--as-of", "2026-11-24", "--quiet"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "not a readable Parquet file" in result.output


def test_a_duckdb_error_that_is_not_the_files_is_not_blamed_on_it(tmp_path):
    """Only an error from reading the file is the user's: casefind's own stays an internal error."""
    from casefind.extract import SourceFile, _reading, connect

    path = tmp_path / "events.parquet"
    _events_parquet(path)
    con = connect()
    with pytest.raises(duckdb.BinderException), _reading(con, SourceFile("events", path, "parquet")):
        con.execute("SELECT no_such_column FROM read_parquet(?)", [str(path)])


# ------------------------------------------------------------------------------------------ 8. Parquet types


def _parquet(path: Path, **columns: pa.Array) -> None:
    pq.write_table(pa.table(columns), path)


def test_a_measurement_stored_as_a_number_is_read_as_text_without_a_trailing_point_zero(tmp_path):
    """A weight or a gestation in weeks (13.0 is shown as '13 weeks', as a CSV file writes it)."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(
        folder / "events.parquet",
        patient_id=pa.array(["P1", "P1", "P2"]),
        code=pa.array([CP_PLAN] * 3),
        date=pa.array([date(2026, 1, 1)] * 3),
        value=pa.array([13.0, 13.5, None], pa.float64()),
    )
    events = read_extract(folder).con.execute("SELECT value FROM events ORDER BY _row").fetchall()
    assert events == [("13",), ("13.5",), (None,)]


def test_a_whole_decimal_code_is_exact_and_one_with_places_is_refused(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    codes = pa.array([342191000000101, 999002381000000108], pa.decimal128(18, 0))
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1", "P2"]), code=codes,
             date=pa.array([date(2026, 1, 1)] * 2))  # fmt: skip
    events = read_extract(folder).con.execute("SELECT code FROM events ORDER BY _row").fetchall()
    assert events == [(CP_PLAN,), ("999002381000000108",)]

    _parquet(folder / "events.parquet", patient_id=pa.array(["P1"]), code=pa.array([1], pa.decimal128(18, 2)),
             date=pa.array([date(2026, 1, 1)]))  # fmt: skip
    assert _problems(folder) == [
        f"{folder / 'events.parquet'}, column 'code': stored as DECIMAL(18,2), a number with 2 decimal places: a "
        "code or an identifier has none, and would read with '.00' after it\n"
        "  HINT: re-export this column as text (string)"
    ]


def test_integer_ids_against_text_ids_with_leading_zeros_are_refused(tmp_path):
    """A relative's id that matches no patient is a relative registered elsewhere, not a bad row: without
    this check the child would lose the link to her mother without a word."""
    patients = "patient_id,family_name,date_of_birth\n00123,Smith,2015-02-01\n00456,Smith,1990-03-04\n"
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    _parquet(folder / "relationships.parquet", patient_id=pa.array(["00123"]), related_patient_id=pa.array([456]),
             relationship=pa.array(["mother"]))  # fmt: skip
    assert _problems(folder) == [
        f"{folder / 'relationships.parquet'}, column 'related_patient_id': stored as integers, while patients.csv "
        "writes its patient_id as text with leading zeros (row 2): a number drops the zeros, so these ids would "
        "not match\n  HINT: export every patient id column as text (string), in every file"
    ]
    # the same integers against ids without leading zeros are exact, and read as their digits
    patients = patients.replace("00123", "123").replace("00456", "456")
    _write(folder, patients_csv=patients)
    _parquet(folder / "relationships.parquet", patient_id=pa.array(["123"]), related_patient_id=pa.array([456]),
             relationship=pa.array(["mother"]))  # fmt: skip
    links = read_extract(folder).con.execute("SELECT patient_id, related_patient_id FROM relationships").fetchall()
    assert links == [("123", "456")]


def test_an_identifier_stored_as_floating_point_is_refused_with_each_such_column(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(folder / "events.parquet", patient_id=pa.array([1.0]), code=pa.array([342191000000101.0]),
             date=pa.array([date(2026, 1, 1)]), clinician_id=pa.array([7.0], pa.float32()))  # fmt: skip
    where = folder / "events.parquet"
    hint = "\n  HINT: re-export this column as text (string)"
    assert _problems(folder) == [
        f"{where}, column 'patient_id': stored as DOUBLE; long codes and identifiers do not survive floating point"
        + hint,
        f"{where}, column 'code': stored as DOUBLE; long codes and identifiers do not survive floating point" + hint,
        f"{where}, column 'clinician_id': stored as FLOAT; long codes and identifiers do not survive floating point"
        + hint,
    ]


# ------------------------------------------------------------------------------------------ 2, 9. the mapping


def test_two_headers_mapped_to_one_column_are_named(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  columns: {Surname: date_of_birth, DOB: date_of_birth, Born: date_of_birth}\n")
    assert _problems(folder, mapping=mapping) == [
        f"{mapping}, patients.columns: 'Surname', 'DOB' and 'Born' are all mapped to date_of_birth\n"
        "  HINT: map one header to date_of_birth: keep the line of the header that holds it"
    ]
    mapping.write_text("patients:\n  columns: {Surname: date_of_birth, DOB: date_of_birth}\n")
    assert _lines(_problems(folder, mapping=mapping)) == [
        f"{mapping}, patients.columns: 'Surname' and 'DOB' are both mapped to date_of_birth"
    ]


def test_mapped_headers_and_files_are_found_in_any_case(tmp_path):
    """As the automatic matching reads them, and as the README says table files are found."""
    folder = _write(tmp_path / "x", **{"Patient Details.csv": "Patient ID,Born\nP1,2015-02-01\n", "events_csv": EVENTS})
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "patients:\n  file: patient details.csv\n  columns: {patient id: patient_id, BORN: date_of_birth}\n"
    )
    extract = read_extract(folder, mapping=mapping)
    assert extract.files["patients"].path.name == "Patient Details.csv"
    assert extract.con.execute("SELECT patient_id, date_of_birth FROM patients").fetchall() == [
        ("P1", date(2015, 2, 1))
    ]


def test_a_mapped_name_that_differs_only_in_case_from_two_is_ambiguous(tmp_path):
    folder = _write(
        tmp_path / "x",
        **{"Patient Details.csv": PATIENTS, "PATIENT DETAILS.csv": PATIENTS, "events_csv": EVENTS},
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  file: patient details.csv\n")
    assert _problems(folder, mapping=mapping) == [
        f"{folder}: both PATIENT DETAILS.csv and Patient Details.csv could be the file the mapping file names for "
        "'patients' (patient details.csv)\n  HINT: name the file exactly, or keep one of them"
    ]
    mapping.write_text("patients:\n  file: Patient Details.csv\n")  # the exact name first
    assert read_extract(folder, mapping=mapping).files["patients"].path.name == "Patient Details.csv"

    _write(folder, patients_csv="patient_id,ID,id,date_of_birth\nP1,1,2,2015-02-01\n")  # no header can be ambiguous
    assert _problems(folder) == [
        f"{folder / 'patients.csv'}: the header repeats column(s) ID, id\n"
        "  HINT: give every column its own name (names that differ only in case are one name)"
    ]


def test_a_mapped_header_the_file_lacks_names_the_nearest_in_any_case_not_every_header(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,ADDRESS ID,Practice\nP1,2015-02-01,H1,Z1\n",
        events_csv=EVENTS,
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  columns: {adress id: household_id, Surgery code: practice_id}\n")
    assert _problems(folder, mapping=mapping) == [
        f"{folder / 'patients.csv'}: the mapping file maps 'adress id' to household_id, but the file has no column "
        "'adress id'\n  HINT: did you mean 'ADDRESS ID'?",
        f"{folder / 'patients.csv'}: the mapping file maps 'Surgery code' to practice_id, but the file has no column "
        "'Surgery code'\n  HINT: copy the header from the file's first row",
    ]


# ------------------------------------------------------------------------------------------ 12. every file's headers


def test_the_header_problems_of_every_file_are_listed_in_one_run(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,DOB,Date of Birth\nP1,2015-02-01,2015-02-01\n",
        events_csv="patient_id,code,dte\nP1,1,2026-01-01\n",
        concerns_csv="patient_id,raised_on\nP1,2026-01-01,x\n",
    )
    assert _lines(_problems(folder)) == [
        f"{folder / 'patients.csv'}: columns 'DOB' and 'Date of Birth' could each be 'date_of_birth'; casefind does "
        "not guess",
        f"{folder / 'events.csv'}: missing required column 'date' (found: patient_id, code, dte)",
        f"{folder / 'concerns.csv'}, row 2: malformed row: Expected Number of Columns: 2 Found: 3",
    ]


# ------------------------------------------------------------------------------------------ 3. appointment statuses


def test_a_status_made_of_status_words_is_shown_and_anything_else_is_not(tmp_path):
    """'Walked Out' must be shown for the user to map it; a name in the column must not be."""
    statuses = ["Walked Out", "Cancelled", "Rescheduled", "Late - seen", "Smith", "Mary Cancelled", "Out 1234567"]
    appointments = "patient_id,date,status\n" + "".join(f"P1,2026-01-05,{s}\n" for s in statuses)
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS, appointments_csv=appointments)
    hidden = "(not shown: it may be a name or an identifier in the wrong column)"
    expected = (
        "(expected one of: attended, did_not_attend, was_not_brought, cancelled_by_patient, cancelled_by_practice, "
        "booked)"
    )
    assert _lines(_problems(folder)) == [
        f"appointments.csv, row {row}, column 'status': unknown value {shown} {expected}"
        for row, shown in enumerate(
            ["'Walked Out'", "'Cancelled'", "'Rescheduled'", "'Late - seen'", hidden, hidden, hidden], start=2
        )
    ]


def test_statuses_with_hyphens_spaces_or_underscores_are_the_schemas_words(tmp_path):
    statuses = ["did-not-attend", "Did Not Attend", "was-not-brought", "WAS_NOT BROUGHT", "Cancelled-By-Patient", "DNA"]
    appointments = "patient_id,date,status\n" + "".join(f"P1,2026-01-{i + 1:02d},{s}\n" for i, s in enumerate(statuses))
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS, appointments_csv=appointments)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("appointments:\n  values:\n    status: {walked-out: Did Not Attend}\n")
    read = read_extract(folder, mapping=mapping).con.execute("SELECT status FROM appointments ORDER BY date")
    assert [s for (s,) in read.fetchall()] == [
        "did_not_attend", "did_not_attend", "was_not_brought", "was_not_brought", "cancelled_by_patient",
        "did_not_attend",
    ]  # fmt: skip
    (folder / "appointments.csv").write_text("patient_id,date,status\nP1,2026-01-01,Walked_Out\n")
    assert read_extract(folder, mapping=mapping).con.execute("SELECT status FROM appointments").fetchall() == [
        ("did_not_attend",)
    ]


# ------------------------------------------------------------------------------------------ 4, 10. row checks


def test_an_end_before_a_start_is_a_bad_row_in_concerns_and_relationships(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv=EVENTS,
        relationships_csv="patient_id,related_patient_id,relationship,start_date,end_date\n"
        "P1,P2,mother,2020-01-01,2019-12-31\nP1,P2,mother,2020-01-01,2020-01-01\nP1,P2,mother,,2019-01-01\n",
        concerns_csv="patient_id,raised_on,resolved_on\nP1,2026-03-01,2026-02-28\nP1,2026-03-01,9999-12-31\n",
    )
    assert _problems(folder) == [
        "relationships.csv, row 2, column 'end_date': relationship ends before it starts\n"
        f"  HINT: check start_date and end_date ({SWAPPED})",
        "concerns.csv, row 2, column 'resolved_on': concern resolved before it was raised\n"
        f"  HINT: check raised_on and resolved_on ({SWAPPED})",
    ]


def test_every_row_problem_has_a_hint_and_unknown_patients_name_their_table(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,registered_from,registered_to\nP1,2015-02-01,2020-01-01,2019-01-01\n"
        "P2,2016-03-04,,\n",
        events_csv="patient_id,code,date\nP2,,2026-01-01\n",
        relationships_csv="patient_id,related_patient_id,relationship\nP9,P8,mother\n",
        appointments_csv="patient_id,date,status\nP9,2026-01-01,attended\n",
        concerns_csv="patient_id,raised_on\nP9,2026-01-01\n",
    )
    assert _problems(folder) == [
        "patients.csv, row 2, column 'registered_to': registration ends before it starts\n"
        f"  HINT: check registered_from and registered_to ({SWAPPED})",
        "events.csv, row 2, column 'code': missing required value\n"
        "  HINT: every row needs a value in code: fill it in, or leave the row out of the export",
        "relationships.csv, row 2, column 'patient_id': unknown patient_id and related_patient_id (neither is in "
        "the patients file)\n  HINT: a row links a patient of the patients file to a relative: export relationships "
        "for the same patients as the patients file",
        *(
            f"{table}.csv, row 2, column 'patient_id': unknown patient_id (not in the patients file)\n"
            f"  HINT: export {table} for the same patients as the patients file"
            for table in ("appointments", "concerns")
        ),
    ]


# ------------------------------------------------------------------------------------------ 5. codes


def test_codes_a_spreadsheet_wrote_in_any_exponent_form_are_bad_rows_but_read_codes_with_e_are_not(tmp_path):
    codes = ["3.42191E14", "3.42191e14", "3.42191e+14", "1E+14", "E2...", "7E123", "1E1..", "XE0Uc"]
    events = "patient_id,code,date\n" + "".join(f"P1,{c},2026-01-01\n" for c in codes)
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    lost = "is a number as a spreadsheet writes it: the code's digits are lost"
    assert _lines(_problems(folder)) == [
        f"events.csv, row {row}, column 'code': code '{code}' {lost}" for row, code in enumerate(codes[:4], start=2)
    ]


@pytest.mark.parametrize(
    ("char", "name"),
    [("\u200b", "200B"), ("\u200c", "200C"), ("\u200d", "200D"), ("\u2060", "2060"), ("\ufeff", "FEFF")],
)
def test_an_invisible_character_in_or_around_a_code_is_a_bad_row_and_shown(tmp_path, char, name):
    """Left in, it would stop the code matching the protocol's: the child would drop off the list."""
    codes = [f"{CP_PLAN}{char}", f"{char}{CP_PLAN}", f"3421{char}91"]
    events = "patient_id,code,date\n" + "".join(f"P1,{code},2026-01-01\n" for code in codes)
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    problem = "contains a quote, comma, apostrophe, tab, space or invisible character"
    assert _lines(_problems(folder, event_codes={CP_PLAN})) == [
        f"events.csv, row 2, column 'code': code '{CP_PLAN}<U+{name}>' {problem}",
        f"events.csv, row 3, column 'code': code '<U+{name}>{CP_PLAN}' {problem}",
        f"events.csv, row 4, column 'code': code '3421<U+{name}>91' {problem}",
    ]


# ------------------------------------------------------------------------------------------ 6, 7. CSV lines


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_line_of_only_spaces_is_a_blank_line_and_row_numbers_count_it(tmp_path, ending):
    events = f"patient_id,code,date\nP1,1,2026-01-01\n   {ending}\t\nP1,2,2026-13-01\n  \t{ending}"
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert _lines(_problems(folder)) == ["events.csv, row 5, column 'date': invalid date '2026-13-01'"]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rows_read["events"] == 2
    assert extract.rejects["row"].tolist() == [5]
    assert not [w for w in extract.warnings if "blank" in w.message]


def test_a_row_longer_than_casefind_reads_is_named_with_its_size(tmp_path):
    note = "N" * 2_100_000
    events = f'patient_id,code,date,term\nP1,1,2026-01-01,x\nP1,2,2026-01-01,"{note}"\nP1,3,2026-01-01,x\n'
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert _problems(folder) == [
        f"{folder / 'events.csv'}, row 3: the row is 2.1 MB, longer than casefind reads (2 MB): most likely a quote "
        "left open, which runs the lines after it into one field\n"
        "  HINT: fix the quoting of this row; a note this long cannot be read, so shorten it or export the table "
        "without its free text"
    ]


# ------------------------------------------------------------------------------------------ 11. NHS numbers


SPLIT_HISTORY = (  # what patients sharing an NHS number risk, and what to do
    "records sharing a number are most often one person registered twice, whose history is then split between "
    "them, so a child protection plan or a risk factor coded on one record is not seen when the family is linked "
    "through another (or the number was typed into the wrong record); each record is still considered on its own\n"
    "  HINT: merge the records in the clinical system (or correct the number); until then, check {which} before "
    "the meeting"
)


def test_nhs_number_warnings_say_what_is_wrong_and_never_show_a_number(tmp_path):
    patients = "patient_id,nhs_number,date_of_birth\n" + "".join(
        f"P{i},{n},2015-01-01\n"
        for i, n in enumerate(
            ["9434765919", "12345", "Patricia", "9.99336E+09", "9434765918", "943 476 5919", "9990000050", "4000000020",
             "4000000020", "4000000020"]
        )
    )  # fmt: skip
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    warnings = [str(w) for w in read_extract(folder).warnings if "nhs_number" in w.location]
    after = "(the patients are still considered; check the numbers before sharing the list)"
    assert warnings == [
        f"patients.csv, row 6, column 'nhs_number': 1 NHS number fails the modulus 11 check {after}",
        f"patients.csv, rows 3, 4, column 'nhs_number': 2 NHS numbers are not 10 digits {after}",
        "patients.csv, row 5, column 'nhs_number': 1 NHS number is a number as a spreadsheet writes it (its last "
        f"digits are lost) {after}",
        "patients.csv, rows 2, 7, 9, 10, 11, column 'nhs_number': 5 patients share 2 NHS numbers: "
        + SPLIT_HISTORY.format(which="every record sharing a number"),
    ]
    assert not any(n in w for w in warnings for n in ("12345", "Patricia", "9.99336", "9434765918", "4000000020"))


def test_two_patients_with_one_nhs_number_are_one_warning(tmp_path):
    patients = "patient_id,nhs_number,date_of_birth\nP1,9434765919,2015-01-01\nP2,943-476-5919,2016-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    with_number = [str(w) for w in read_extract(folder).warnings if "nhs_number" in w.location]
    assert with_number == [
        "patients.csv, rows 2, 3, column 'nhs_number': 2 patients share one NHS number: "
        + SPLIT_HISTORY.format(which="both records")
    ]


# ------------------------------------------------------------------------------ 9. Parquet as warehouses write it


def test_two_parquet_columns_whose_names_differ_only_in_case_are_refused(tmp_path):
    """DuckDB reads the second as ``date_1``: casefind read the first, a wrong date for every event, without a
    word. As in a CSV header, the names are refused."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    day = pa.array(["2026-01-01"])
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1"]), code=pa.array([CP_PLAN]),
             Date=pa.array(["2010-01-01"]), date=day)  # fmt: skip
    assert _problems(folder) == [
        f"{folder / 'events.parquet'}: the file repeats column(s) Date, date\n"
        "  HINT: give every column its own name (names that differ only in case are one name)"
    ]
    same = pa.table([pa.array(["P1"]), pa.array([CP_PLAN]), pa.array(["2010-01-01"]), day],
                    names=["patient_id", "code", "date", "date"])  # fmt: skip
    pq.write_table(same, folder / "events.parquet")
    assert _lines(_problems(folder)) == [f"{folder / 'events.parquet'}: the file repeats column(s) date"]


def test_binary_text_columns_are_read_as_text_and_checked_as_text(tmp_path):
    """Older Hive and Impala writers store text as BINARY: read as escaped bytes, a zero-width space in a code
    escaped every check and the code silently matched nothing, and a name read 'Chlo\\xC3\\xAB'."""
    folder = _write(tmp_path / "x")
    _parquet(folder / "patients.parquet", patient_id=pa.array([b"P1"], pa.binary()),
             given_name=pa.array(["Chloë".encode()], pa.binary()),
             date_of_birth=pa.array([date(2015, 2, 1)]))  # fmt: skip
    _parquet(folder / "events.parquet", patient_id=pa.array([b"P1", b"P1"], pa.binary()),
             code=pa.array([CP_PLAN.encode(), (CP_PLAN + "\u200b").encode()], pa.binary()),
             date=pa.array([date(2026, 1, 1)] * 2))  # fmt: skip
    assert _lines(_problems(folder)) == [
        f"events.parquet, row 2, column 'code': code '{CP_PLAN}<U+200B>' contains a quote, comma, apostrophe, tab, "
        "space or invisible character"
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.con.execute("SELECT given_name FROM patients").fetchall() == [("Chloë",)]
    assert extract.con.execute("SELECT code FROM events").fetchall() == [(CP_PLAN,)]


def test_parquet_text_that_is_not_utf8_names_its_column_not_the_value(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1"]), code=pa.array([CP_PLAN]),
             date=pa.array([date(2026, 1, 1)]), term=pa.array([b"Caf\xe9 Smith"], pa.binary()))  # fmt: skip
    [problem] = _problems(folder, event_codes=[CP_PLAN])  # as every command reads the events: not row by row
    assert problem == (
        f"{folder / 'events.parquet'}, column 'term': text that is not UTF-8 (written in another encoding, such as "
        "Windows-1252)\n  HINT: export it again with text as UTF-8, or save the table as CSV (events.csv), which "
        "casefind reads in Windows-1252 too"
    )


def test_a_list_struct_or_map_column_is_refused_up_front(tmp_path):
    """A value stored as a list read as '[13]' (no late booking, no warning); a code as a list matched nothing."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1"]), code=pa.array([[CP_PLAN]]),
             date=pa.array([date(2026, 1, 1)]), value=pa.array([{"weeks": 13}]))  # fmt: skip
    assert _lines(_problems(folder)) == [
        f"{folder / 'events.parquet'}, column 'code': stored as VARCHAR[], many values in a cell; casefind reads one "
        "value per cell",
        f"{folder / 'events.parquet'}, column 'value': stored as STRUCT(\"weeks\" BIGINT), many values in a cell; "
        "casefind reads one value per cell",
    ]


def test_a_date_column_stored_as_a_number_is_one_problem_not_one_per_row(tmp_path):
    """20260101 as BIGINT: one column problem, which --skip-bad-rows cannot skip (it rejected every event and
    listed no one)."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1", "P2"]), code=pa.array([CP_PLAN] * 2),
             date=pa.array([20260101, 20260102], pa.int64()))  # fmt: skip
    expected = [
        f"{folder / 'events.parquet'}, column 'date': stored as BIGINT; a date is stored as DATE, TIMESTAMP or text\n"
        "  HINT: re-export this column as a date, or as yyyy-mm-dd text"
    ]
    assert _problems(folder) == expected
    with pytest.raises(ExtractError) as raised:
        read_extract(folder, skip_bad_rows=True)
    assert [str(p) for p in raised.value.problems] == expected


def test_spark_int96_timestamps_are_utc_instants_read_in_uk_time(tmp_path):
    """Spark writes INT96 timestamps as UTC instants: a birth at midnight in British Summer Time is 23:00 UTC the
    day before, and was read as that day."""
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    born = [datetime(2021, 8, 21, tzinfo=london), datetime(2021, 1, 5, tzinfo=london)]  # BST, then GMT
    folder = _write(tmp_path / "x", events_csv=EVENTS)
    table = pa.table({"patient_id": ["P1", "P2"], "date_of_birth": pa.array(born, pa.timestamp("us", tz="UTC"))})
    pq.write_table(table, folder / "patients.parquet", use_deprecated_int96_timestamps=True)
    assert pq.ParquetFile(folder / "patients.parquet").schema.column(1).physical_type == "INT96"
    read = read_extract(folder).con.execute("SELECT date_of_birth FROM patients ORDER BY _row").fetchall()
    assert read == [(date(2021, 8, 21),), (date(2021, 1, 5),)]


def test_a_measurement_stored_as_a_decimal_with_places_reads_as_a_csv_writes_it(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    _parquet(folder / "events.parquet", patient_id=pa.array(["P1", "P1"]), code=pa.array([CP_PLAN] * 2),
             date=pa.array([date(2026, 1, 1)] * 2),
             value=pa.array([Decimal("22.0"), Decimal("13.5")], pa.decimal128(10, 1)))  # fmt: skip
    events = read_extract(folder).con.execute("SELECT value FROM events ORDER BY _row").fetchall()
    assert events == [("22",), ("13.5",)]


def test_a_spark_folder_of_part_files_is_named_with_how_to_make_one_file(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    (folder / "events.parquet").mkdir()
    _events_parquet(folder / "events.parquet" / "part-00000.parquet")
    [problem] = _problems(folder)
    assert "no events.csv or events.parquet" in problem
    assert problem.endswith(
        "HINT: events.parquet is a folder of part files, as Spark writes a table; casefind reads one file per "
        "table: write it as one (in Spark, .coalesce(1); or with DuckDB, COPY (FROM 'events.parquet/*.parquet') "
        "TO 'events_all.parquet') and map it: events: {file: events_all.parquet}"
    )


def test_an_nhs_number_a_spreadsheet_wrote_into_the_code_column_is_not_quoted(tmp_path):
    """A shifted column can put an NHS number where the code belongs, and a spreadsheet then writes it as
    9991241264.0 or 9.99124E+09: the message (and the coding report's shareable rejects.csv, which repeats it)
    must not carry it, nor its first digits. A code's own number is still quoted."""
    codes = ["9991241264.0", "9.99124E+09", "9.99124E9", "3.42191E+14"]
    events = "patient_id,code,date\n" + "".join(f"P1,{c},2026-01-01\n" for c in codes)
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    lost = "is a number as a spreadsheet writes it: the code's digits are lost"
    hidden = "(not shown: it may be a name or an identifier in the wrong column)"
    assert _lines(_problems(folder)) == [
        f"events.csv, row 2, column 'code': code {hidden} {lost}",
        f"events.csv, row 3, column 'code': code {hidden} {lost}",
        f"events.csv, row 4, column 'code': code {hidden} {lost}",
        f"events.csv, row 5, column 'code': code '3.42191E+14' {lost}",
    ]
