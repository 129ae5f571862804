"""Reading real-world extracts: exact error messages, encodings, header mapping, Parquet, codes as text."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from casefind import api
from casefind.errors import ExtractError
from casefind.extract import read_extract
from tests.conftest import extract_problems as _problems
from tests.conftest import write_files as _write

PATIENTS = "patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\nP2,Jones,2016-03-04\n"
AS_OF = date(2026, 11, 24)

HIDDEN = " (digits hidden: it identifies a patient)"  # how a date of birth is shown in a message
NOT_A_CODE = "contains a quote, comma, apostrophe, tab, space or invisible character"
ONE_ID = (  # the hint of a duplicate patient_id
    "each patient_id must appear once: give each patient their own (--skip-bad-rows leaves out every row with it, "
    "in every file)"
)


def test_bad_rows_are_all_listed_with_file_row_and_column(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,date_of_death\nP1,2015-02-01,\nP2,31/02/2019,\nP1,2019-01-01,\n"
        "P4,,\nP5,2020-01-01,2019-12-31\n",
        events_csv="patient_id,code,date,code_system\nP1,342191000000101,2026-01-01,snomed\n"
        "P1,135891007,01/13/2026,snomed\nSECRET-ID,135891007,2026-01-01,\nP1,135891007,2026-01-01,icd10\n",
    )
    assert _problems(folder) == [
        f"patients.csv, row 2, column 'patient_id': duplicate patient_id (also on row 4)\n  HINT: {ONE_ID}",
        f"patients.csv, row 3, column 'date_of_birth': invalid date nn/nn/nnnn{HIDDEN}\n"
        "  HINT: write dates as yyyy-mm-dd or dd/mm/yyyy",
        f"patients.csv, row 4, column 'patient_id': duplicate patient_id (first seen on row 2)\n  HINT: {ONE_ID}",
        "patients.csv, row 5, column 'date_of_birth': missing required value\n"
        "  HINT: every row needs a value in date_of_birth: fill it in, or leave the row out of the export",
        "patients.csv, row 6, column 'date_of_death': date of death is before date of birth\n"
        "  HINT: check both dates in the practice system: one of them is mistyped",
        "events.csv, row 3, column 'date': invalid date '01/13/2026'\n  HINT: write dates as yyyy-mm-dd or dd/mm/yyyy",
        "events.csv, row 4, column 'patient_id': unknown patient_id (not in the patients file)\n"
        "  HINT: export events for the same patients as the patients file",
        "events.csv, row 5, column 'code_system': unknown value 'icd10' (expected one of: snomed, read2, ctv3, emis)\n"
        "  HINT: another spelling of one of these can be mapped (--mapping): events: {values: {code_system: "
        "{'SNOMED Clinical Terms': snomed}}}; codes of other schemes (ICD-10) are not read",
        "events.csv: 3 rows are of patients whose row in the patients file has a problem\n"
        "  HINT: fix those rows, and these are read with them",  # P1's: which of the two P1s they are is unknown
    ]


def test_bad_rows_stop_every_command_with_words_that_fit_each(tmp_path):
    """build-list, explain and coding-report share the reader: its last line names no one command's output."""
    folder = _write(tmp_path / "x", patients_csv="patient_id,date_of_birth\nP1,2015-02-31\n", events_csv=EVENTS)
    with pytest.raises(ExtractError) as caught:
        read_extract(folder)
    assert str(caught.value).splitlines()[-1] == (
        "Stopped before any output. Fix these rows, or run again with --skip-bad-rows to leave them out "
        "(build-list and coding-report then write them, with their reasons, to a rejects file)."
    )


def test_no_patient_identifier_appears_in_messages(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,nhs_number,family_name,date_of_birth\nSECRET-1,9434765919,Secretname,1/1/20\n",
        events_csv="patient_id,code,date\nSECRET-2,135891007,2026-01-01\n",
    )
    with pytest.raises(ExtractError) as caught:
        read_extract(folder)
    text = caught.value.render()
    for identifier in ("SECRET", "9434765919", "Secretname", "1/1/20"):  # a date of birth identifies too
        assert identifier not in text
    assert (
        "date n/n/nn (digits hidden: it identifies a patient) has a two-digit year" in text
    )  # a two-digit year is not guessed


def test_problem_list_is_capped_with_a_count_of_the_rest(tmp_path):
    rows = "".join(f"P1,135891007,bad{i}\n" for i in range(60))
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\n" + rows)
    with pytest.raises(ExtractError) as caught:
        read_extract(folder)
    text = caught.value.render()
    assert text.startswith("The extract has problems (60 problems):")
    assert "... and 10 more problems not shown" in text
    assert "--skip-bad-rows" in text


def test_skip_bad_rows_keeps_every_rejected_row_with_its_reason(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv="patient_id,code,date\nP1,342191000000101,2026-01-01\nP2,342191000000101,yesterday\n",
    )
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rejected_rows == 1
    assert extract.rejects[["file", "row", "column", "problem"]].values.tolist() == [
        ["events.csv", 3, "date", "invalid date (not shown: it may be a name or an identifier in the wrong column)"]
    ]
    assert json.loads(extract.rejects.loc[0, "record"])["date"] == "yesterday"
    assert extract.con.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_missing_required_file_and_column(tmp_path):
    folder = _write(tmp_path / "x", patients_csv="patient_id,Born on\nP1,2015-01-01\n")
    assert _problems(folder) == [
        f"{folder}: no events.csv or events.parquet (found: patients.csv)\n"
        "  HINT: name the file events.csv, or set 'events: {file: ...}' in a mapping file"
    ]
    (folder / "events.csv").write_text("patient_id,code,date\n")
    [problem] = _problems(folder)
    assert problem.startswith(f"{folder / 'patients.csv'}: missing required column 'date_of_birth'")


def test_bom_windows_1252_and_quoted_fields(tmp_path):
    patients = 'patient_id,family_name,given_name,date_of_birth\r\nP1,O\u2019Brien,"Zo\u00eb, Ann",01/02/2015\r\n'
    folder = _write(
        tmp_path / "x",
        patients_csv=patients.encode("cp1252"),
        events_csv=b"\xef\xbb\xbfpatient_id,code,date\r\nP1,342191000000101,05/06/2026\r\n",
    )
    extract = read_extract(folder)
    row = extract.con.execute("SELECT family_name, given_name, date_of_birth FROM patients").fetchone()
    assert row == ("O\u2019Brien", "Zo\u00eb, Ann", date(2015, 2, 1))
    assert extract.files["patients"].encoding == "cp1252"
    assert extract.con.execute("SELECT date FROM events").fetchone()[0] == date(2026, 6, 5)


def test_a_utf8_file_with_one_windows_1252_name_keeps_its_other_names(tmp_path):
    """One name pasted in from a Windows program makes the file not UTF-8; read wholly as Windows-1252, every
    other accented name would turn to mojibake ('Ali\u0301' -> 'AlÃ\xad'). Each part is read as what it is."""
    patients = (
        b"patient_id,family_name,given_name,date_of_birth\n"
        + "P1,Garc\u00eda,Al\u00ed,2015-02-01\n".encode("utf-8")
        + "P2,Zo\u00eb,Ren\u00e9e,2016-03-04\n".encode("cp1252")
    )
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    extract = read_extract(folder)
    assert extract.files["patients"].encoding == "cp1252"
    names = extract.con.execute("SELECT family_name, given_name FROM patients ORDER BY patient_id").fetchall()
    assert names == [("Garc\u00eda", "Al\u00ed"), ("Zo\u00eb", "Ren\u00e9e")]


def test_windows_1252_found_deep_in_a_file_is_read_as_windows_1252(tmp_path):
    """The header and the first thousands of lines are plain ASCII; one term far down is Windows-1252."""
    lines = ["patient_id,code,date,term"] + [f"P1,135891007,2026-01-{1 + i % 28:02d},Seen" for i in range(5000)]
    lines.append("P2,342191000000101,2026-06-05,Caf\u00e9 \u2018plan\u2019 \u20ac5")
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=("\r\n".join(lines) + "\r\n").encode("cp1252"))
    extract = read_extract(folder)
    assert extract.files["events"].encoding == "cp1252"
    assert extract.files["patients"].encoding == "utf-8"
    assert extract.rows_read["events"] == 5001
    [(term, row)] = extract.con.execute("SELECT term, _row FROM events WHERE patient_id = 'P2'").fetchall()
    assert (term, row) == ("Caf\u00e9 \u2018plan\u2019 \u20ac5", 5002)


def test_header_mapping_file(tmp_path):
    folder = _write(
        tmp_path / "x",
        **{
            "Patient Details.csv": "Patient ID,Surname,Date of Birth\nP1,Smith,2015-02-01\n",
            "events_csv": "Patient ID,SNOMED Code,Event Date\nP1,342191000000101,2026-01-01\n",
        },
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "patients:\n  file: Patient Details.csv\n  columns:\n    Patient ID: patient_id\n    Surname: family_name\n"
        "events:\n  columns:\n    Patient ID: patient_id\n    SNOMED Code: code\n    Event Date: date\n"
    )
    result = api.build_list(folder, mapping=mapping, as_of=AS_OF)
    assert result.entries["family_name"].tolist() == ["Smith"]
    assert result.entries["criteria"].tolist() == ["cp_plan"]


def test_headers_in_other_spellings_are_matched_and_unused_ones_are_named(tmp_path):
    """``DateOfDeath`` and ``DOB`` are the columns they look like; a ``Deregistered`` column casefind cannot
    place is named in a warning, since leaving it unread would list a child who has moved away."""
    folder = _write(
        tmp_path / "x",
        patients_csv="PatientID,Surname,DOB,DateOfDeath,RegisteredFrom,Deregistered,HouseholdID,PracticeID,"
        "NHSNumber,Forename,Gender\nP1,Smith,2015-02-01,2026-01-02,2015-02-01,2026-03-01,H1,Z1,,Ann,F\n",
        events_csv="Patient_ID,SNOMED code,Event Date\nP1,342191000000101,2025-06-05\n",
    )
    extract = read_extract(folder)
    row = extract.con.execute(
        "SELECT patient_id, family_name, given_name, date_of_birth, date_of_death, sex, household_id FROM patients"
    ).fetchone()
    assert row == ("P1", "Smith", "Ann", date(2015, 2, 1), date(2026, 1, 2), "F", "H1")
    assert extract.con.execute("SELECT code, date FROM events").fetchone() == ("342191000000101", date(2025, 6, 5))
    assert [str(w) for w in extract.warnings if w.location.startswith("patients.csv")] == [
        "patients.csv: column 'Deregistered' not used, and no column was found for registered_to\n"
        "  HINT: map it with --mapping, e.g. patients: {columns: {'Deregistered': registered_to}}"
    ]


def test_an_absent_column_that_changes_the_list_is_named_with_what_it_means(tmp_path):
    """Without registered_to every patient counts as still registered, so children who have left are listed;
    without date_of_death, children who have died; without household_id, no household links are made."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\n")
    hint = (
        "\n  HINT: if the file has it under another header, map it with --mapping ('casefind rules DIR' writes an "
        "example, mapping.example.yaml)"
    )
    assert [str(w) for w in read_extract(folder).warnings if w.location == "patients.csv"] == [
        f"patients.csv: no date_of_death column: every patient is taken to be alive{hint}",
        f"patients.csv: no registered_to column: every patient is taken to be still registered{hint}",
        "patients.csv: no household_id column: no one is linked by household (household adults, children in the "
        f"same household){hint}",
    ]
    full = "patient_id,date_of_birth,date_of_death,registered_to,household_id\nP1,2015-02-01,,,H1\n"
    assert _write(tmp_path / "y", patients_csv=full, events_csv="patient_id,code,date\n") and not [
        w for w in read_extract(tmp_path / "y").warnings if w.location == "patients.csv"
    ]


def test_rows_with_every_field_blank_are_skipped_and_counted(tmp_path):
    """Excel leaves ',,,' rows below the data it once held: they hold nothing, so they are skipped like blank
    lines (and counted), not reported as missing values that stop the run."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\n,,\nP2,Jones,2016-03-04\n",
        events_csv="patient_id,code,date,term\nP1,342191000000101,2026-01-01,CP plan\n,,,\n , ,,\n",
    )
    result = api.build_list(folder, as_of=AS_OF)
    assert result.entries["patient_id"].tolist() == ["P1"]
    assert result.info.rows_rejected == 0
    assert result.info.rows_read == {"patients": 2, "events": 1}  # the blank rows are not counted as read
    assert [w for w in result.info.warnings if "blank" in w] == [
        "patients.csv: 1 row with every field blank (as a spreadsheet can leave below the data) was skipped",
        "events.csv: 2 rows with every field blank (as a spreadsheet can leave below the data) were skipped",
    ]
    (folder / "events.csv").write_text("patient_id,code,date,term\n,,,CP plan\n")  # a value: not blank
    assert _problems(folder)[0].startswith("events.csv, row 2, column 'code': missing required value")


def test_a_file_given_for_the_folder_is_named_as_a_file(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\n")
    assert _problems(folder / "patients.csv") == [
        f"{folder / 'patients.csv'}: this is a file; casefind reads a folder of files\n"
        "  HINT: pass the folder holding it"
    ]


def test_mapping_file_typo_is_caught(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  columns:\n    DOB: date_of_brith\n")
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\n")
    assert _problems(folder, mapping=mapping) == [
        f"{mapping}, patients.columns['DOB']: 'date_of_brith' is not a column of patients\n"
        "  HINT: did you mean 'date_of_birth'?"
    ]


APPOINTMENTS = (
    "patient_id,date,status\nP1,2026-01-05,Finished\nP1,2026-02-05,Cancelled by Unit\nP1,2026-03-05,Walked Out\n"
)


def test_practice_system_appointment_statuses_are_read_and_others_can_be_mapped(tmp_path):
    """EMIS Web and SystmOne write 'Finished', 'Cancelled by Unit'; 'Walked Out' is neither attended nor
    missed, so casefind does not decide it: the practice says what it means in the mapping file."""
    events = "patient_id,code,date\nP1,342191000000101,2026-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events, appointments_csv=APPOINTMENTS)
    assert _problems(folder) == [
        "appointments.csv, row 4, column 'status': unknown value 'Walked Out' (expected one of: attended, "
        "did_not_attend, was_not_brought, cancelled_by_patient, cancelled_by_practice, booked)\n"
        "  HINT: if it is the export's word for one of these, say which in a mapping file (--mapping): "
        "appointments: {values: {status: {'Walked Out': attended}}}"
    ]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("appointments:\n  values:\n    status:\n      walked out: Did_Not_Attend\n")
    extract = read_extract(folder, mapping=mapping)
    assert extract.con.execute("SELECT status FROM appointments ORDER BY date").fetchall() == [
        ("attended",),
        ("cancelled_by_practice",),
        ("did_not_attend",),
    ]


def test_a_value_mapping_names_a_column_with_fixed_values_and_one_of_them(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\n")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "appointments:\n  values:\n    status: {Walked Out: missed}\n    date: {today: '2026-01-01'}\n"
        "events:\n  values: [snomed]\n"
    )
    assert _problems(folder, mapping=mapping) == [
        f"{mapping}, appointments.values.status['Walked Out']: 'missed' is not one of attended, did_not_attend, "
        "was_not_brought, cancelled_by_patient, cancelled_by_practice, booked",
        f"{mapping}, appointments.values.date: not a column with a fixed set of values here (status)",
        f"{mapping}, events.values: expected columns, each with its values: {{code_system: {{Their Word: snomed}}}}",
    ]


def test_two_headers_that_could_each_be_a_column_are_not_guessed_between(tmp_path):
    """An entry date and an effective date, or a DOB beside a Date of Birth: whichever casefind picked, the list
    could be wrong without a word. It stops, naming every file's (one run, not one per file), and a mapping
    that names one settles it."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,DOB,Date of Birth\nP1,2015-02-01,2015-02-01\n",
        events_csv="patient_id,code,Date,Effective Date\nP1,342191000000101,2026-11-20,2026-01-01\n",
    )
    events_date = (
        f"{folder / 'events.csv'}: columns 'Date' and 'Effective Date' could each be 'date'; casefind does not "
        "guess\n  HINT: say which in a mapping file (--mapping): events: {columns: {'Effective Date': date}}"
    )
    assert _problems(folder) == [
        f"{folder / 'patients.csv'}: columns 'DOB' and 'Date of Birth' could each be 'date_of_birth'; casefind "
        "does not guess\n  HINT: say which in a mapping file (--mapping): patients: {columns: {'Date of Birth': "
        "date_of_birth}}",
        events_date,
    ]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  columns:\n    DOB: date_of_birth\n")
    assert _problems(folder, mapping=mapping) == [events_date]
    mapping.write_text("patients:\n  columns:\n    DOB: date_of_birth\nevents:\n  columns:\n    Effective Date: date\n")
    extract = read_extract(folder, mapping=mapping)
    assert extract.con.execute("SELECT date FROM events").fetchall() == [(date(2026, 1, 1),)]


def test_a_mapped_header_the_file_lacks_is_reported(tmp_path):
    """A typo in the mapping's source header would leave the column unread (no household links, say)."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,Address ID\nP1,2015-02-01,H1\n",
        events_csv="patient_id,code,date\n",
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("patients:\n  columns:\n    Adress ID: household_id\n")
    assert _problems(folder, mapping=mapping) == [
        f"{folder / 'patients.csv'}: the mapping file maps 'Adress ID' to household_id, but the file has no column "
        "'Adress ID'\n  HINT: did you mean 'Address ID'?"
    ]


def test_shipped_example_mapping_is_valid():
    from casefind.extract import load_mapping
    from tests.conftest import REPO

    mapping = load_mapping(REPO / "rules" / "mapping.example.yaml")
    assert mapping["patients"].columns


def test_parquet_input_keeps_18_digit_codes_exact(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"patient_id": ["P1"], "date_of_birth": [date(2015, 1, 1)]}).to_parquet(folder / "patients.parquet")
    # The code as an int64 (a common mistake) still converts exactly; 999002381000000108 has 18 digits.
    pd.DataFrame(
        {"patient_id": ["P1", "P1"], "code": [342191000000101, 999002381000000108], "date": [date(2026, 1, 1)] * 2}
    ).to_parquet(folder / "events.parquet")
    extract = read_extract(folder)
    codes = sorted(r[0] for r in extract.con.execute("SELECT code FROM events").fetchall())
    assert codes == ["342191000000101", "999002381000000108"]
    result = api.build_list(folder, as_of=AS_OF)
    assert result.entries["criteria"].tolist() == ["cp_plan"]


def test_parquet_timestamps_with_a_time_zone_give_the_date_in_uk_time(tmp_path):
    """Midnight on a British summer day is 23:00 the day before in UTC: read in the computer's zone, the date
    (and so a window's edge) would depend on where casefind runs."""
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"patient_id": ["P1"], "date_of_birth": [date(2015, 1, 1)]}).to_parquet(folder / "patients.parquet")
    dates = pd.to_datetime(["2026-04-24", "2026-01-10"]).tz_localize("Europe/London")
    pd.DataFrame({"patient_id": ["P1", "P1"], "code": ["342191000000101"] * 2, "date": dates}).to_parquet(
        folder / "events.parquet"
    )
    events = read_extract(folder).con.execute("SELECT date FROM events ORDER BY date").fetchall()
    assert events == [(date(2026, 1, 10),), (date(2026, 4, 24),)]


def test_float_code_column_in_parquet_is_refused(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"patient_id": ["P1"], "date_of_birth": [date(2015, 1, 1)]}).to_parquet(folder / "patients.parquet")
    pd.DataFrame({"patient_id": ["P1"], "code": [342191000000101.0], "date": [date(2026, 1, 1)]}).to_parquet(
        folder / "events.parquet"
    )
    [problem] = _problems(folder)
    assert "stored as DOUBLE; long codes and identifiers do not survive floating point" in problem
    assert "HINT: re-export this column as text" in problem


def test_csv_codes_keep_leading_zeros_and_read_code_dots(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv="patient_id,code,date,code_system\nP1,0123,2026-01-01,read2\nP1,13Iv.,2026-01-01,READ\n",
    )
    extract = read_extract(folder)
    assert extract.con.execute("SELECT code, code_system FROM events ORDER BY code").fetchall() == [
        ("0123", "read2"),
        ("13Iv.", "read2"),
    ]


def test_malformed_csv_row_is_reported_by_line(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\nP1,1,2026-01-01,extra\n")
    [problem] = _problems(folder)
    assert problem.startswith(f"{folder / 'events.csv'}, row 2: malformed row")


def test_invalid_nhs_numbers_are_warned_not_dropped(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,nhs_number,date_of_birth\nP1,9434765919,2015-01-01\nP2,9434765918,2015-01-01\n",
        events_csv="patient_id,code,date\nP2,342191000000101,2026-01-01\n",
    )
    result = api.build_list(folder, as_of=AS_OF)
    assert result.entries["patient_id"].tolist() == ["P2"]
    assert [w for w in result.info.warnings if "'nhs_number'" in w] == [
        "patients.csv, row 3, column 'nhs_number': 1 NHS number fails the modulus 11 check (the patients are "
        "still considered; check the numbers before sharing the list)",
    ]


def test_nhs_numbers_written_with_spaces_or_dashes_are_the_digits(tmp_path):
    patients = "patient_id,nhs_number,date_of_birth\nP1,943 476 5919,2015-01-01\nP2,999-000-0050,2015-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    extract = read_extract(folder)
    assert extract.con.execute("SELECT nhs_number FROM patients ORDER BY _row").fetchall() == [
        ("9434765919",),
        ("9990000050",),
    ]
    assert not [w for w in extract.warnings if "nhs_number" in w.location]


def test_unterminated_quote_is_reported_by_line_not_guessed_around(tmp_path):
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv='patient_id,code,date\nP1,"342191000000101,2026-01-01\nP1,135891007,2026-01-01\n',
    )
    [problem] = _problems(folder)
    assert problem.startswith(f"{folder / 'events.csv'}, row 2: malformed row: Value with unterminated quote found.")


def test_a_row_with_surplus_fields_is_reported_once(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="patient_id,code,date\nP1,1,2026-01-01,x,y\n")
    assert _problems(folder) == [
        f"{folder / 'events.csv'}, row 2: malformed row: Expected Number of Columns: 3 Found: 5\n"
        "  HINT: fix the quoting or the number of fields; --skip-bad-rows cannot skip a row whose fields cannot be "
        "told apart"
    ]


def test_empty_file_and_repeated_header(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="")
    assert _problems(folder) == [
        f"{folder / 'events.csv'}: the file is empty: expected a header row with patient_id, code, date\n"
        "  HINT: export it again from the practice system, with its header row"
    ]
    (folder / "events.csv").write_text("patient_id,code,code,date\n")
    assert _problems(folder) == [
        f"{folder / 'events.csv'}: the header repeats column(s) code\n"
        "  HINT: give every column its own name (names that differ only in case are one name)"
    ]


def test_code_with_a_space_or_quote_is_a_bad_row(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv='patient_id,code,date\nP1,"3421 91",2026-01-01\n')
    assert _problems(folder) == [
        "events.csv, row 2, column 'code': code '3421 91' contains a quote, comma, apostrophe, tab, space or "
        "invisible character\n"
        "  HINT: a code is one word, such as 342191000000101 or 13Iv.; check the quoting, and remove anything "
        "typed or exported around it"
    ]


def test_a_code_with_a_tab_or_an_apostrophe_is_a_bad_row_and_a_non_breaking_space_is_trimmed(tmp_path):
    """Left in, a tab or Excel's ' text prefix would stop the code matching the protocol's, and the child
    would drop off the list without a word. Non-breaking spaces around a code are trimmed, like spaces."""
    events = "patient_id,code,date\nP1,342191000000101\t,2026-01-01\nP1,342191000000101\u00a0,2026-02-01\n"
    events += "P1,'342191000000101,2026-01-01\nP1,342191000000101 ,2026-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        f"events.csv, row 2, column 'code': code '342191000000101\t' {NOT_A_CODE}",
        "events.csv, row 4, column 'code': code '342191000000101' is written with Excel's text prefix, an apostrophe "
        "in front of it",
    ]
    _write(
        tmp_path / "y", patients_csv=PATIENTS, events_csv="patient_id,code,date\nP1,342191000000101\u00a0,2026-02-01\n"
    )
    events = read_extract(tmp_path / "y", event_codes=["342191000000101"]).con.execute("SELECT code, date FROM events")
    assert events.fetchall() == [("342191000000101", date(2026, 2, 1))]


EVENTS = "patient_id,code,date\nP1,342191000000101,2026-01-01\nP2,342191000000101,05/06/2026\n"


def _events_read(folder: Path) -> list[tuple]:
    extract = read_extract(folder)
    return extract.con.execute("SELECT _row, patient_id, code, date FROM events ORDER BY _row").fetchall()


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda text: text.replace(",", ";").encode(), id="semicolons"),
        pytest.param(lambda text: text.replace(",", "\t").encode(), id="tabs"),
        pytest.param(lambda text: text.replace(",", "\t").encode("utf-16"), id="excel-unicode-text-utf16"),
        pytest.param(lambda text: ("sep=;\r\n" + text.replace(",", ";")).encode(), id="excel-sep-line"),
        pytest.param(lambda text: text.replace("\n", "\r\n", 2).encode(), id="mixed-line-endings"),
    ],
)
def test_csv_layouts_real_exports_use_are_read(tmp_path, layout):
    """Semicolons (Excel with a decimal comma), tabs and UTF-16 (Excel's "Unicode Text"), Excel's 'sep=' first
    line and CRLF mixed with LF all read as the plain CSV does, rows numbered as a spreadsheet shows them."""
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=layout(EVENTS))
    assert _events_read(folder) == [
        (2, "P1", "342191000000101", date(2026, 1, 1)),
        (3, "P2", "342191000000101", date(2026, 6, 5)),
    ]


def test_utf16_without_its_byte_order_mark_is_refused_not_read_as_garbage(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS.encode("utf-16-le"))
    assert _problems(folder) == [
        f"{folder / 'events.csv'}: not a text file in a known encoding (it holds NUL bytes: UTF-16 without a "
        "byte-order mark?)\n  HINT: save it as 'CSV UTF-8 (Comma delimited)'"
    ]


def test_mixed_line_endings_in_a_windows_1252_file_keep_its_characters(tmp_path):
    patients = "patient_id,family_name,date_of_birth\r\nP1,Zo\u00eb,2015-02-01\nP2,O\u2019Brien,2016-03-04\n"
    folder = _write(tmp_path / "x", patients_csv=patients.encode("cp1252"), events_csv=EVENTS)
    extract = read_extract(folder)
    names = extract.con.execute("SELECT family_name FROM patients ORDER BY _row").fetchall()
    assert names == [("Zo\u00eb",), ("O\u2019Brien",)]
    assert extract.files["patients"].encoding == "cp1252"


@pytest.mark.parametrize(
    ("above", "encoding"),
    [
        pytest.param("Safeguarding search,,\nRun on 24/11/2026 by the practice,,\n\n", "utf-8", id="title-lines"),
        pytest.param("\r\n\r\n\r\n", "cp1252", id="blank-lines-windows-1252"),
        pytest.param("Title,,\n\n" * 19, "utf-8", id="header-is-the-20th-non-blank-line"),
    ],
)
def test_lines_above_the_header_are_skipped_and_counted_in_row_numbers(tmp_path, above, encoding):
    events = (
        above + "patient_id,code,date,term\nP1,342191000000101,2026-01-01,Caf\u00e9\nP2,342191000000101,2026-31-01,x\n"
    )
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events.encode(encoding))
    header = above.count("\n") + 1  # the header's row in a spreadsheet, which shows the lines above it
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        f"events.csv, row {header + 2}, column 'date': invalid date '2026-31-01'"
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.con.execute("SELECT patient_id, term FROM events").fetchall() == [("P1", "Caf\u00e9")]
    assert extract.rejects["row"].tolist() == [header + 2]
    assert [str(w) for w in extract.warnings if "the header is on this row" in str(w)] == [
        f"events.csv, row {header}: the header is on this row; the {header - 1} lines above it (blank, or a title "
        "such as the search's name) were not read"
    ]
    (folder / "events.csv").write_bytes((above + 'patient_id,code,date\nP1,"1,2026-01-01\n').encode(encoding))
    assert _problems(folder)[0].startswith(f"{folder / 'events.csv'}, row {header + 1}: malformed row")


def test_a_title_above_a_misspelt_header_reports_the_header(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="Safeguarding search\npatient_id,code,dte\n")
    assert _problems(folder) == [
        f"{folder / 'events.csv'}: missing required column 'date' (found: patient_id, code, dte)\n"
        "  HINT: is it 'dte'? Map it with --mapping: events: {columns: {'dte': date}}"
    ]


def test_a_file_without_a_header_row_is_named_without_echoing_its_first_row(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv="P1,342191000000101,2026-01-01\n")
    [problem] = _problems(folder)
    assert problem == (
        f"{folder / 'events.csv'}: the first row names none of casefind's columns and holds digits: is the header "
        "row missing?\n  HINT: export with column headers; the first row should name patient_id, code, date"
    )
    assert "P1" not in problem


def test_problems_in_other_layouts_name_the_spreadsheet_row_and_the_file_line(tmp_path):
    events = 'sep=;\npatient_id;code;date\nP1;1;2026-01-01\n\nP1;2;2026-13-01\nP2;"3;2026-01-01\n'
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert _problems(folder) == [  # the file's own line 6: the 'sep=' line counts in a text editor
        f"{folder / 'events.csv'}, row 6: malformed row: Value with unterminated quote found.\n"
        "  HINT: fix the quoting or the number of fields; --skip-bad-rows cannot skip a row whose fields cannot be "
        "told apart"
    ]
    (folder / "events.csv").write_text(events.replace('"3', "3"))
    assert [p.split("\n")[0] for p in _problems(folder)] == [  # Excel hides the 'sep=' line: header row 1
        "events.csv, row 4, column 'date': invalid date '2026-13-01'"
    ]


def test_rows_of_a_rejected_patient_are_counted_not_listed_when_the_run_stops(tmp_path):
    """One bad date of birth must not bury the other problems under every event of that patient."""
    patients = "patient_id,date_of_birth\nP1,2015-02-01\n\nP2,31/02/2019\nP2,2019-01-01\n"
    events = "patient_id,code,date\nP2,1,2026-01-01\nP2,2,2026-01-02\nP1,3,bad\nP9,4,2026-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv=events)
    assert _problems(folder) == [
        f"patients.csv, row 4, column 'date_of_birth': invalid date nn/nn/nnnn{HIDDEN}\n"
        "  HINT: write dates as yyyy-mm-dd or dd/mm/yyyy",
        f"patients.csv, row 4, column 'patient_id': duplicate patient_id (also on row 5)\n  HINT: {ONE_ID}",
        f"patients.csv, row 5, column 'patient_id': duplicate patient_id (first seen on row 4)\n  HINT: {ONE_ID}",
        "events.csv, row 4, column 'date': invalid date (not shown: it may be a name or an identifier in the wrong "
        "column)\n  HINT: write dates as yyyy-mm-dd or dd/mm/yyyy",
        "events.csv, row 5, column 'patient_id': unknown patient_id (not in the patients file)\n"
        "  HINT: export events for the same patients as the patients file",
        "events.csv: 2 rows are of patients whose row in the patients file has a problem\n"
        "  HINT: fix those rows, and these are read with them",
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rejects[["file", "row", "problem"]].values.tolist() == [
        ["patients.csv", 4, "invalid date nn/nn/nnnn (digits hidden: it identifies a patient)"],
        ["patients.csv", 4, "duplicate patient_id (also on row 5)"],
        ["patients.csv", 5, "duplicate patient_id (first seen on row 4)"],
        ["events.csv", 2, "its patient's row in the patients file has a problem (row 4)"],
        ["events.csv", 3, "its patient's row in the patients file has a problem (row 4)"],
        ["events.csv", 4, "invalid date (not shown: it may be a name or an identifier in the wrong column)"],
        ["events.csv", 5, "unknown patient_id (not in the patients file)"],
    ]
    assert extract.rejected_rows == 6
    assert extract.con.execute("SELECT count(*) FROM events").fetchone()[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_event_codes_keep_only_those_events_but_every_row_is_still_checked(tmp_path, fmt):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS)
    events = pd.DataFrame(
        {
            "patient_id": ["P1", " P1", "P2", "P2"],
            "code": [" 342191000000101 ", "135891007", "135891007", "342191000000101"],
            "date": ["2026-01-01", "2026-01-02", "01/02/2026", "03/01/2026"],
            "term": [" Child protection plan ", "Asthma", None, ""],
        }
    )
    path = folder / f"events.{fmt}"
    events.to_csv(path, index=False) if fmt == "csv" else events.to_parquet(path, index=False)

    extract = read_extract(folder, event_codes={"342191000000101"})
    kept = extract.con.execute("SELECT patient_id, code, date, term FROM events ORDER BY _row").fetchall()
    assert kept == [
        ("P1", "342191000000101", date(2026, 1, 1), "Child protection plan"),
        ("P2", "342191000000101", date(2026, 1, 3), None),
    ]
    assert extract.rows_read["events"] == 4

    events.loc[1, "date"] = "yesterday"  # a bad row whose code the protocol does not use still stops the run
    events.loc[2, "patient_id"] = "P9"
    path.unlink()
    events.to_csv(path, index=False) if fmt == "csv" else events.to_parquet(path, index=False)
    assert _problems(folder, event_codes={"342191000000101"}) == _problems(folder)
    assert len(_problems(folder)) == 2


def test_duckdb_spills_to_a_private_folder_removed_with_the_connection():
    import gc
    import stat

    from casefind.extract import connect

    con = connect()
    [(spill,)] = con.execute("SELECT current_setting('temp_directory')").fetchall()
    assert Path(spill).is_dir() and Path(spill).name.startswith("casefind-spill-")
    assert stat.S_IMODE(Path(spill).stat().st_mode) == 0o700
    del con
    gc.collect()
    assert not Path(spill).exists()


def test_duckdb_draws_no_progress_bar_of_its_own():
    """DuckDB draws a bar on the terminal for any query over two seconds, in the middle of casefind's output."""
    from casefind.extract import connect

    assert connect().execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)


def test_codes_a_spreadsheet_turned_into_numbers_are_bad_rows(tmp_path):
    """Saved from Excel, 342191000000101 becomes 3.42191E+14 (or 342191000000101.0): an active CP plan would
    silently vanish. Read codes with dots and CTV3 codes with letters stay codes."""
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv="patient_id,code,date\nP1,3.42191E+14,2026-01-01\nP1,342191000000101.0,2026-01-01\n"
        "P1,13Iv.,2026-01-01\nP1,XE0Uc,2026-01-01\nP1,8HE0.,2026-01-01\n",
    )
    lost = "is a number as a spreadsheet writes it: the code's digits are lost\n"
    hint = "  HINT: export again without opening the file in a spreadsheet, or format the code column as text"
    assert _problems(folder) == [
        f"events.csv, row 2, column 'code': code '3.42191E+14' {lost}{hint}",
        f"events.csv, row 3, column 'code': code '342191000000101.0' {lost}{hint}",
    ]


def test_a_protocol_code_a_spreadsheet_cut_to_15_digits_is_a_bad_row(tmp_path):
    """Excel keeps 15 significant digits: the exploitation code 1188261000000103 saved from a Number column
    comes back as 1188261000000100, which no codelist holds, so the child would silently drop off the list.
    A 16-digit code outside the protocol that ends in 0 is left alone."""
    from casefind.protocol import default_protocol_path, load_protocol

    full = "1188261000000103"
    cut = full[:15] + "0"
    assert full in load_protocol(default_protocol_path()).all_codes() and cut not in {full}
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv=f"patient_id,code,date\nP1,{cut},2026-01-01\nP2,1234567890123450,2026-01-01\n",
    )
    hint = "  HINT: export again without opening the file in a spreadsheet, or format the code column as text"
    with pytest.raises(ExtractError) as caught:
        api.build_list(folder, as_of=AS_OF)
    assert [str(p) for p in caught.value.problems] == [
        f"events.csv, row 2, column 'code': code '{cut}' is the protocol's code {full} with its last digits lost: "
        f"a spreadsheet keeps 15 digits of a number\n{hint}"
    ]
    kept = api.build_list(folder, as_of=AS_OF, skip_bad_rows=True)
    assert kept.rejects[["row", "column"]].values.tolist() == [[2, "code"]]


@pytest.mark.parametrize("skip_bad_rows", [False, True])
def test_a_column_written_month_first_is_refused_whole(tmp_path, skip_bad_rows):
    """US dates: 11/17/2018 fails as dd/mm/yyyy, but 03/04/2018 would be read as 3 April when it means 4 March.
    Leaving out the rows that fail would keep the swapped ones, so --skip-bad-rows does not apply."""
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv="patient_id,code,date\nP1,342191000000101,03/04/2018\nP1,135891007,11/17/2018\n"
        "P2,135891007,12/25/2019\nP2,135891007,01/02/2020\n",
    )
    problems = _problems(folder, skip_bad_rows=skip_bad_rows)
    assert problems == [
        "events.csv, column 'date': dates are written month first (US style), such as '11/17/2018' in row 3; "
        "casefind reads dd/mm/yyyy, so the day and month of the others would be swapped\n"
        "  HINT: export the dates as yyyy-mm-dd, or as dd/mm/yyyy (--skip-bad-rows cannot mend this)"
    ]


def test_a_date_of_birth_is_never_quoted_only_its_layout(tmp_path):
    """With the row number, a date of birth identifies a patient: messages show where the digits are, not
    what they are, and name a two-digit year as such."""
    patients = "patient_id,date_of_birth\nP1,11/17/2018\nP2,12/25/2019\nP3,2015-01-01\n"
    folder = _write(tmp_path / "x", patients_csv=patients, events_csv="patient_id,code,date\n")
    assert _problems(folder)[0].split("\n")[0] == (
        "patients.csv, column 'date_of_birth': dates are written month first (US style), such as row 2; "
        "casefind reads dd/mm/yyyy, so the day and month of the others would be swapped"
    )
    patients = "patient_id,date_of_birth,date_of_death\nP1,01/03/94,\nP2,2015-01-01,31/02/2026\n"
    folder = _write(tmp_path / "y", patients_csv=patients, events_csv="patient_id,code,date\n")
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        f"patients.csv, row 2, column 'date_of_birth': date nn/nn/nn{HIDDEN} has a two-digit year",
        f"patients.csv, row 3, column 'date_of_death': invalid date nn/nn/nnnn{HIDDEN}",
    ]


def test_dates_with_the_months_name_as_emis_and_systmone_reports_write_them(tmp_path):
    dates = ["1-Mar-2024", "01-MAR-2024", "01 Mar 2024", "1 March 2024", "01-Mar-2024 10:30", "31-Feb-2024", "1-Mar-24"]
    dates += ["01 Sept 2024", "1-SEPT-2024 09:15", "31 Sept 2024", "1-Sept-24"]  # Sept: how the UK shortens it
    events = "patient_id,code,date\n" + "".join(f"P1,135891007,{d}\n" for d in dates)
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    extract = read_extract(folder, skip_bad_rows=True)
    read = sorted(extract.con.execute("SELECT date FROM events").fetchall())
    assert read == [(date(2024, 3, 1),)] * 5 + [(date(2024, 9, 1),)] * 2
    assert extract.rejects[["row", "problem"]].values.tolist() == [
        [7, "invalid date '31-Feb-2024'"],
        [8, "date '1-Mar-24' has a two-digit year"],
        [11, "invalid date '31 Sept 2024'"],
        [12, "date '1-Sept-24' has a two-digit year"],
    ]
    patients = "patient_id,date_of_birth\nP1,31-Feb-2015\nP2,1 Smith 2015\n"
    folder = _write(tmp_path / "y", patients_csv=patients, events_csv="patient_id,code,date\n")
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        f"patients.csv, row 2, column 'date_of_birth': invalid date nn-Feb-nnnn{HIDDEN}",
        "patients.csv, row 3, column 'date_of_birth': invalid date (not shown: it may be a name or an identifier in "
        "the wrong column)",
    ]


def test_day_first_dates_with_month_first_slips_are_bad_rows(tmp_path):
    """A day above 12 in front shows the column is day first: dates valid only month first are slips."""
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENTS,
        events_csv="patient_id,code,date\nP1,135891007,25/12/2019\nP1,135891007,11/17/2018\nP2,135891007,12/25/2019\n",
    )
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rejects[["row", "problem"]].values.tolist() == [
        [3, "invalid date '11/17/2018'"],
        [4, "invalid date '12/25/2019'"],
    ]
    assert extract.con.execute("SELECT date FROM events").fetchall() == [(date(2019, 12, 25),)]


def test_a_value_in_the_wrong_column_is_not_echoed(tmp_path):
    """A shifted row or a header mapped to the wrong column puts names and NHS numbers where dates, codes and
    choices belong; messages quote a value only when it has the shape of what the column holds."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,family_name,date_of_birth\nP1,Smith,Ellison\nP2,Jones,9434765919\n"
        "P3,Khan,2015-02-30\nP4,Ali,2016-01-01\nP5,Roe,943 476 5919\n",
        events_csv='patient_id,code,date,code_system\nP4,"Mary Smith",2026-01-01,snomed\n'
        "P4,135891007,2026-01-01,Smithson\nP4,135891007,2026-01-01,icd10\nP4,135891007,2026-01-01,9434765919\n"
        'P4,135891007,2026-01-01,P00012\nP4,"9434765919,1358",2026-01-01,snomed\n',
        appointments_csv="patient_id,date,status\nP4,2026-01-01,9434765919\n",
    )
    hidden = "(not shown: it may be a name or an identifier in the wrong column)"
    problems = _problems(folder)
    systems = "(expected one of: snomed, read2, ctv3, emis)"
    assert [p.split("\n")[0] for p in problems] == [
        f"patients.csv, row 2, column 'date_of_birth': invalid date {hidden}",
        f"patients.csv, row 3, column 'date_of_birth': invalid date {hidden}",
        "patients.csv, row 4, column 'date_of_birth': invalid date nnnn-nn-nn (digits hidden: it identifies a patient)",
        f"patients.csv, row 6, column 'date_of_birth': invalid date {hidden}",
        f"events.csv, row 2, column 'code': code {hidden} {NOT_A_CODE}",
        f"events.csv, row 3, column 'code_system': unknown value {hidden} {systems}",
        f"events.csv, row 4, column 'code_system': unknown value 'icd10' {systems}",
        f"events.csv, row 5, column 'code_system': unknown value {hidden} {systems}",
        f"events.csv, row 6, column 'code_system': unknown value {hidden} {systems}",
        f"events.csv, row 7, column 'code': code {hidden} {NOT_A_CODE}",
        f"appointments.csv, row 2, column 'status': unknown value {hidden} (expected one of: attended, "
        "did_not_attend, was_not_brought, cancelled_by_patient, cancelled_by_practice, booked)",
    ]
    secrets = ("Ellison", "Smith", "9434765919", "943 476 5919", "P00012")
    assert not any(secret in p for p in problems for secret in secrets)


def test_a_mapping_file_saved_as_windows_1252_is_read(tmp_path):
    """Notepad's old default: 'Prénom' in both the mapping file and the extract's header, as Windows-1252."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,Pr\u00e9nom,date_of_birth\nP1,Zo\u00eb,2015-02-01\n".encode("cp1252"),
        events_csv="patient_id,code,date\n",
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_bytes("patients:\n  columns:\n    Pr\u00e9nom: given_name\n".encode("cp1252"))
    extract = read_extract(folder, mapping=mapping)
    assert extract.con.execute("SELECT given_name FROM patients").fetchone() == ("Zo\u00eb",)


def test_row_numbers_count_blank_lines_as_a_spreadsheet_does(tmp_path):
    """DuckDB skips blank lines; a spreadsheet shows them as rows, so the rows after them are numbered on."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,nhs_number\nP1,2015-01-01,\n\nP2,2015-01-01,9434765918\n",
        events_csv='patient_id,code,date\nP1,1,2026-01-01\n\n\nP1,2,2026-13-01\nP2,3,"2026-01-01"\n\nP2,4,x1\n',
    )
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        "events.csv, row 5, column 'date': invalid date '2026-13-01'",
        "events.csv, row 8, column 'date': invalid date (not shown: it may be a name or an identifier in the wrong "
        "column)",
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.rejects[["file", "row"]].values.tolist() == [["events.csv", 5], ["events.csv", 8]]
    assert json.loads(extract.rejects.loc[0, "record"]) == {
        "patient_id": "P1", "code": "2", "date": "2026-13-01", "term": None, "code_system": None, "value": None,
        "clinician_id": None,
    }  # fmt: skip
    assert any(str(w).startswith("patients.csv, row 4, column 'nhs_number'") for w in extract.warnings)


def test_an_end_date_in_year_9999_means_no_end_but_an_event_in_9999_is_a_bad_row(tmp_path):
    """Some systems write 9999-12-31 for "still registered"; as an event date it is a slip."""
    folder = _write(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,registered_to,date_of_death\n"
        "P1,2015-02-01,9999-12-31,\nP2,2016-03-04,31/12/9999 00:00,31/12/9999\n",
        events_csv="patient_id,code,date\nP1,1,2026-01-01\nP1,2,9999-12-31\nP2,3,0202-01-01\n",
    )
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        "events.csv, row 3, column 'date': date '9999-12-31' has a year outside 1850-2200",
        "events.csv, row 4, column 'date': date '0202-01-01' has a year outside 1850-2200",
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    ends = extract.con.execute("SELECT registered_to, date_of_death FROM patients ORDER BY _row").fetchall()
    assert ends == [(None, None), (None, None)]


def test_a_missing_column_is_not_taken_for_one_already_read(tmp_path):
    """Without date_of_birth, the date_of_death column (already read as itself) is not offered in its place."""
    folder = _write(tmp_path / "x", patients_csv="patient_id,date_of_death\nP1,\n", events_csv=EVENTS)
    assert _problems(folder) == [
        f"{folder / 'patients.csv'}: missing required column 'date_of_birth' (found: patient_id, date_of_death)\n"
        "  HINT: map your header to it in a mapping file (--mapping; 'casefind rules DIR' writes an example, "
        "mapping.example.yaml)"
    ]
    (folder / "patients.csv").write_text("patient_id,date_of_death,Date of Brith\nP1,,2015-01-01\n")
    [problem] = _problems(folder)
    assert problem.endswith("HINT: is it 'Date of Brith'? Map it with --mapping: patients: {columns: "
                            "{'Date of Brith': date_of_birth}}")  # fmt: skip


PATIENT_ROW = "patient_id,date_of_birth,date_of_death,registered_to,household_id\nP1,2015-02-01,,,H1\n"
CP_EVENT = "patient_id,code,date,value\nP1,342191000000101,2026-01-01,\n"


def _table_warnings(folder: Path, **kwargs) -> list[str]:
    return [str(w) for w in read_extract(folder, **kwargs).warnings if w.location != "patients.csv"]


def test_each_absent_optional_table_is_named_with_what_it_means_for_the_list(tmp_path):
    """Without appointments.csv, children not brought to appointments are found from codes only, and so on:
    casefind says so rather than listing fewer children without a word."""
    folder = _write(tmp_path / "x", patients_csv=PATIENT_ROW, events_csv=CP_EVENT)
    hint = "\n  HINT: if your system exports it, save it here as {}.csv (`casefind schema` lists its columns)"
    assert _table_warnings(folder) == [
        "x: no relationships.csv or relationships.parquet: children are linked only by a shared household_id: no "
        "parents living elsewhere, no siblings in other households" + hint.format("relationships"),
        "x: no appointments.csv or appointments.parquet: missed appointments are counted from coded events only"
        + hint.format("appointments"),
        "x: no concerns.csv or concerns.parquet: professional concern comes from the protocol's concern codes "
        "only, so criteria that need it count only where such a code is recorded" + hint.format("concerns"),
    ]


def test_file_names_are_matched_in_any_case_and_near_misses_are_named(tmp_path):
    """A Windows export's Appointments.CSV is appointments.csv; relationships.txt and concerns.xlsx are not
    read, and the warnings say what to do with them."""
    folder = _write(
        tmp_path / "x",
        **{
            "Patients.CSV": PATIENT_ROW,
            "events.csv": CP_EVENT,
            "Appointments.CSV": "patient_id,date,status\nP1,2026-10-01,was not brought\n",
            "relationships.txt": "patient_id,related_patient_id,relationship\n",
            "concerns.xlsx": b"PK\x03\x04",
        },
    )
    extract = read_extract(folder)
    assert extract.files["patients"].path.name == "Patients.CSV"
    assert extract.con.execute("SELECT status FROM appointments").fetchall() == [("was_not_brought",)]
    assert [w.hint for w in extract.warnings if w.location == "x"] == [
        "found relationships.txt: name it relationships.csv if it is a CSV file, or map it: relationships: "
        "{file: relationships.txt}",
        "casefind reads CSV or Parquet, not concerns.xlsx: in Excel, File > Save As > CSV UTF-8 (concerns.csv)",
    ]
    _write(tmp_path / "y", **{"patients.xlsx": b"PK\x03\x04", "events.csv": CP_EVENT})
    assert _problems(tmp_path / "y") == [
        f"{tmp_path / 'y'}: no patients.csv or patients.parquet (found: events.csv, patients.xlsx)\n  HINT: casefind "
        "reads CSV or Parquet, not patients.xlsx: in Excel, File > Save As > CSV UTF-8 (patients.csv)"
    ]


def test_each_absent_optional_column_that_changes_the_list_is_named(tmp_path):
    """Without events.value no gestation is read, without an end date every relationship or concern is taken as
    current: each changes the list, so each is said, like a patients file without date_of_death."""
    folder = _write(
        tmp_path / "x",
        patients_csv=PATIENT_ROW,
        events_csv="patient_id,code,date\nP1,342191000000101,2026-01-01\n",
        relationships_csv="patient_id,related_patient_id,relationship\nP1,P2,mother\n",
        concerns_csv="patient_id,raised_on\nP1,2026-01-01\n",
    )
    warnings = [w.split("\n")[0] for w in _table_warnings(folder) if not w.startswith(("x:", "relationships.csv, row"))]
    assert warnings == [
        "events.csv: no value column: no gestation at booking is read, so late bookings come from late-booker "
        "codes only",
        "relationships.csv: no end_date column: every relationship is taken to be still valid (an ended one links "
        "as if current)",
        "concerns.csv: no resolved_on column: every concern is taken to be still open",
    ]


def test_a_file_with_a_header_but_no_rows_is_named(tmp_path):
    """No patients: an error, not a list of every event's unknown patient. An optional table or events with
    no rows: a warning saying what the list then lacks. Events none of which has a protocol code: a warning
    (a code column holding something else, such as codes with invisible characters around them)."""
    _write(tmp_path / "a", patients_csv="patient_id,date_of_birth\n", events_csv=CP_EVENT)
    assert _problems(tmp_path / "a") == [
        "patients.csv: the file has a header but no rows\n  HINT: export the patients table again"
    ]
    folder = _write(
        tmp_path / "b",
        patients_csv=PATIENT_ROW,
        events_csv="patient_id,code,date,value\n",
        appointments_csv="patient_id,date,status\n",
    )
    warnings = [w for w in _table_warnings(folder) if not w.startswith("b:")]
    assert warnings == [
        "events.csv: the file has a header but no rows: no criterion read from codes can be met",
        "appointments.csv: the file has a header but no rows: missed appointments are counted from coded events only",
    ]
    _write(tmp_path / "c", patients_csv=PATIENT_ROW, events_csv="patient_id,code,date,value\nP1,13Iv,2026-01-01,\n")
    warnings = [w for w in _table_warnings(tmp_path / "c", event_codes=["342191000000101"]) if w.startswith("events")]
    assert warnings == [
        "events.csv: none of its 1 events has a code from the protocol's codelists, so no criterion read from "
        "codes can be met\n  HINT: check that the code column holds the codes themselves (SNOMED CT concept ids "
        "such as 342191000000101, or the protocol's code systems), with nothing around them"
    ]
