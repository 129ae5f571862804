"""CSV files that are not what they should be: one clear message each, never an internal error."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from casefind.extract import read_extract
from tests.conftest import extract_problems as _problems
from tests.conftest import write_files as _write

PATIENTS = "patient_id,family_name,date_of_birth\nP1,Smith,2015-02-01\nP2,Jones,2016-03-04\n"
EVENTS = "patient_id,code,date,term\n" + "P1,342191000000101,2026-01-01,Seen\n" * 30


def test_a_web_page_saved_as_csv_names_its_far_too_long_line(tmp_path):
    page = (
        "<!DOCTYPE html>\n<html><head><title>Search results</title></head>\n"
        '<body><img alt="logo" src="data:image/png;base64,' + "A" * 200_000 + '">\n</body></html>\n'
    )
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=page)
    assert _problems(folder) == [
        f"{folder / 'events.csv'}, line 3: the line is longer than 131,072 characters, far too long to be a row of "
        "an export: is the file a web page or a binary file saved as .csv?\n"
        "  HINT: export the table again as CSV"
    ]


def test_a_long_note_in_a_record_is_read_and_rows_after_a_blank_line_keep_their_numbers(tmp_path):
    """A record below the header is DuckDB's to read, however long its note (up to DuckDB's line limit)."""
    note = "N" * 200_000
    events = f"patient_id,code,date,term\nP1,1,2026-01-01,{note}\n\nP2,2,2026-13-01,x\n"
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        "events.csv, row 4, column 'date': invalid date '2026-13-01'"
    ]
    extract = read_extract(folder, skip_bad_rows=True)
    assert extract.con.execute("SELECT code, date, length(term) FROM events").fetchall() == [
        ("1", date(2026, 1, 1), 200_000)
    ]
    assert extract.rejects["row"].tolist() == [4]
    assert csv.field_size_limit() == 131_072  # raised for counting the rows only


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("Safeguarding search {i}\n", id="one-field"),
        pytest.param("Safeguarding search {i},,\n", id="padded-to-the-table-width"),
        pytest.param("Run {i},24/11/2026\n", id="name-and-value"),
    ],
)
def test_a_header_below_more_than_20_title_lines_is_one_problem_not_one_per_row(tmp_path, title):
    titles = "".join(title.format(i=i) for i in range(21))
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=titles + EVENTS)
    assert _problems(folder) == [
        f"{folder / 'events.csv'}: no header row naming patient_id, code, date in the first 20 non-blank lines\n"
        "  HINT: delete the lines above the header, or export the table without a title"
    ]


def test_a_misspelt_header_with_a_malformed_row_still_lists_the_row(tmp_path):
    """Most rows fit the misspelt header: it is the header, and the malformed row is reported by line."""
    events = EVENTS.replace("date", "dte", 1) + "P1,1,2026-01-01,x,surplus\n"
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert _problems(folder) == [
        f"{folder / 'events.csv'}, row 32: malformed row: Expected Number of Columns: 4 Found: 5\n"
        "  HINT: fix the quoting or the number of fields; --skip-bad-rows cannot skip a row whose fields cannot be "
        "told apart"
    ]


def test_a_malformed_row_is_numbered_as_a_spreadsheet_shows_it(tmp_path):
    """A note over two lines is one row in a spreadsheet; a title and a blank line above the header are rows
    too. So the surplus field below is on row 5 (the editor's line 6)."""
    events = 'Title\n\npatient_id,code,date,term\nP1,1,2026-01-01,"a note\nover two lines"\nP1,2,2026-01-01,x,surplus\n'
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    assert [p.split("\n")[0] for p in _problems(folder)] == [
        f"{folder / 'events.csv'}, row 5: malformed row: Expected Number of Columns: 4 Found: 5"
    ]


def test_an_empty_optional_file_says_it_can_be_deleted(tmp_path):
    folder = _write(tmp_path / "x", patients_csv=PATIENTS, events_csv=EVENTS, relationships_csv="")
    problems = _problems(folder)
    assert len(problems) == 1
    assert problems[0].startswith(f"{folder / 'relationships.csv'}: the file is empty: expected a header row with ")
    assert problems[0].endswith("\n  HINT: delete it (the table is optional) or export it again with its header row")


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        (b"a,b\n1,2\n", False),
        (b"a,b\n 1, 2\n\t3,4\n", False),  # fields padded with spaces: no blank line, no second read of the file
        (b"a,b\n1,2\n\n3,4\n", True),
        (b"a,b\r\n1,2\r\n\r\n", True),
        (b"a,b\n1,2\n  \t\n", True),
        (b"a,b\r\n1,2\r\n \r\n", True),
    ],
)
def test_a_blank_line_or_one_of_spaces_is_found_and_a_padded_line_is_not(tmp_path, text, blank):
    from casefind.csv_files import _has_blank_line

    path = tmp_path / "t.csv"
    path.write_bytes(text)
    with path.open("rb") as handle:
        assert _has_blank_line(handle) is blank
