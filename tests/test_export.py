"""Exports: every format, owner-only permissions, atomic, formula-safe, byte-identical re-runs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import stat
from datetime import date, datetime

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from casefind import api, export
from casefind.errors import OutputError
from casefind.files import atomic_write

AS_OF = date(2026, 11, 24)


@pytest.fixture
def case_list(make_extract):
    folder = make_extract(
        patients="""
        patient_id | family_name        | given_name | nhs_number | date_of_birth
        P1         | =HYPERLINK("x")    | Ann        | 9434765919 | 2015-02-01
        P2         | @Jones             | -Bob       |            | 2026-11-01
        """,
        events="""
        patient_id | code            | date       | term
        P1         | 342191000000101 | 2026-01-01 | +Subject to child protection plan
        P2         | 135891007       | 2026-11-02 | Child in need
        """,
    )
    return api.build_list(folder, as_of=AS_OF)


@pytest.mark.parametrize("suffix", export.FORMATS)
def test_each_format_is_private_and_has_provenance(case_list, tmp_path, suffix):
    path = export.write_list(case_list, tmp_path / f"list{suffix}")
    sidecar = export.provenance_path(path)
    for p in (path, sidecar):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    provenance = json.loads(sidecar.read_text())
    assert provenance["as_of"] == "2026-11-24"
    assert provenance["protocol"]["name"] == "Vulnerable families (casefind default)"
    assert len(provenance["protocol"]["sha256"]) == 64
    assert set(provenance["input_files"]) == {"patients", "events"}


@pytest.mark.parametrize("suffix", export.FORMATS)
def test_same_inputs_give_byte_identical_files(case_list, make_extract, tmp_path, suffix):
    first = export.write_list(case_list, tmp_path / f"a{suffix}").read_bytes()
    again = api.build_list(tmp_path / "extract", as_of=AS_OF)
    second = export.write_list(again, tmp_path / f"b{suffix}").read_bytes()
    assert first == second


def test_xlsx_creation_time_is_the_as_of_date(case_list, tmp_path):
    """Both files of the byte-identical test are written within a second, so a clock time would pass it."""
    book = openpyxl.load_workbook(export.write_list(case_list, tmp_path / "list.xlsx"))
    assert book.properties.created == datetime(2026, 11, 24)


def test_csv_columns_and_formula_injection(case_list, tmp_path):
    path = export.write_list(case_list, tmp_path / "list.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns[:12]) == [
        "family_rank",
        "family_id",
        "rank",
        "patient_id",
        "nhs_number",
        "family_name",
        "given_name",
        "date_of_birth",
        "age",
        "score",
        "tier",
        "criteria",
    ]
    assert "evidence" in frame.columns
    assert frame["family_name"].tolist() == ['\'=HYPERLINK("x")', "'@Jones"]
    assert frame["given_name"].tolist() == ["Ann", "'-Bob"]
    assert frame.loc[0, "criteria"] == "cp_plan"
    assert "342191000000101" in frame.loc[0, "evidence"] and "2026-01-01" in frame.loc[0, "evidence"]
    # the new birth needs professional concern, and being a child in need is that (the protocol's concern.criteria)
    assert frame.loc[1, "criteria"] == "child_in_need;new_birth"


# Every start the README's privacy section (and OWASP's CSV-injection advice) treats as a formula: "=" and "@"
# are in the fixture; "+", "-", a tab and a carriage return are put at the start of cells here.
_RISKY_STARTS = {"family_name": ["+SUM(1,2)", "\tTab"], "given_name": ["\rReturn", "-Bob"]}


def _with_risky_starts(case_list):
    entries = case_list.entries.assign(**_RISKY_STARTS)
    return dataclasses.replace(case_list, entries=entries)


def test_csv_neutralises_plus_tab_and_carriage_return(case_list, tmp_path):
    risky = _with_risky_starts(case_list)
    risky.entries.loc[risky.entries.index[0], "notes"] = "see note\r=HYPERLINK(1)"  # a CR inside a cell
    path = export.write_list(risky, tmp_path / "list.csv")
    # Read as a spreadsheet does, where a bare CR ends a row: every row keeps its cells, none starts with "=".
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    header, body = rows[0], rows[1:]
    assert len(body) == len(case_list.entries) and all(len(r) == len(header) for r in body)
    cells = {name: [r[header.index(name)] for r in body] for name in ("family_name", "given_name", "notes")}
    assert cells["family_name"] == ["'+SUM(1,2)", "'\tTab"]
    assert cells["given_name"] == ["'\nReturn", "'-Bob"]  # the CR is written as a line feed, quoted
    assert cells["notes"][0] == "see note\n=HYPERLINK(1)"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in body for cell in row)


def test_csv_writes_a_nul_byte_as_the_replacement_character(case_list, tmp_path):
    entries = case_list.entries.copy()
    entries.loc[entries.index[0], "family_name"] = "Smi\x00th"  # a corrupt export: a reader stops at the NUL
    path = export.write_list(dataclasses.replace(case_list, entries=entries), tmp_path / "list.csv")
    data = path.read_bytes()
    assert b"\x00" not in data
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert rows[0]["family_name"] == "Smi\ufffdth" and len(rows) == len(entries)


def test_xlsx_quote_prefixes_plus_tab_and_carriage_return(case_list, tmp_path):
    from openpyxl.utils.escape import unescape  # the file stores "\r" as "_x000D_", which openpyxl leaves as is

    book = openpyxl.load_workbook(export.write_list(_with_risky_starts(case_list), tmp_path / "list.xlsx"))
    cols = _xlsx_columns(book["List"])
    for name, texts in _RISKY_STARTS.items():
        for cell, text in zip(cols[name], texts, strict=True):
            assert (unescape(cell.value), cell.data_type, cell.quotePrefix) == (text, "s", True), repr(text)


def _xlsx_columns(sheet) -> dict[str, list]:
    """Header -> the cells below it."""
    headers = [c.value for c in sheet[1]]
    return {name: [row[i] for row in sheet.iter_rows(min_row=2)] for i, name in enumerate(headers)}


def test_xlsx_numbers_and_dates_are_typed_and_identifiers_stay_text(case_list, tmp_path):
    book = openpyxl.load_workbook(export.write_list(case_list, tmp_path / "list.xlsx"))
    cols = _xlsx_columns(book["List"])
    for name in ("family_rank", "rank", "age"):
        assert all(type(c.value) is int and c.data_type == "n" for c in cols[name]), name
    assert [c.value for c in cols["age"]] == [11, 0]
    assert all(isinstance(c.value, int | float) and c.data_type == "n" for c in cols["score"])
    dob = cols["date_of_birth"]
    assert [c.value for c in dob] == [datetime(2015, 2, 1), datetime(2026, 11, 1)]
    assert all(c.is_date and c.number_format == "yyyy-mm-dd" for c in dob + cols["latest_evidence"])
    assert [c.value for c in cols["nhs_number"]] == ["9434765919", None]  # text, and blank when missing
    assert [c.value for c in cols["patient_id"]] == ["P1", "P2"]
    # Decided by name, not dtype: even a numeric NHS number column must not become 9.43E+09.
    numeric_ids = dataclasses.replace(case_list, entries=case_list.entries.assign(nhs_number=[9434765919, 1]))
    book_ids = openpyxl.load_workbook(export.write_list(numeric_ids, tmp_path / "ids.xlsx"))
    assert [c.value for c in _xlsx_columns(book_ids["List"])["nhs_number"]] == ["9434765919", "1"]
    about = {row[0].value: row[1] for row in book["Provenance"].iter_rows()}
    assert about["as_of"].value == "2026-11-24"
    assert about["rows_read.patients"].value == 2 and about["rows_read.patients"].data_type == "n"
    assert about["options.full"].value is False and about["options.full"].data_type == "b"  # not "False"


def test_xlsx_ranks_and_ages_sort_as_numbers(make_extract, tmp_path):
    born = [f"{2014 + i}-06-01" for i in range(11)]  # ages 12 down to 2
    patients = "patient_id | date_of_birth\n" + "\n".join(f"P{i} | {b}" for i, b in enumerate(born))
    events = "patient_id | code | date\n" + "\n".join(f"P{i} | 342191000000101 | 2026-01-01" for i in range(11))
    case_list = api.build_list(make_extract(patients=patients, events=events), as_of=AS_OF)
    cols = _xlsx_columns(openpyxl.load_workbook(export.write_list(case_list, tmp_path / "list.xlsx"))["List"])
    assert max(c.value for c in cols["rank"]) == 11  # as text, "9" would be the largest
    assert sorted(c.value for c in cols["age"]) == list(range(2, 13))  # as text, "10" would sort before "2"


def test_xlsx_formula_text_keeps_its_value_with_a_quote_prefix(case_list, tmp_path):
    entries = case_list.entries.copy()
    entries.loc[0, "family_name"] = '=HYPERLINK("http://x","y")'
    info = dataclasses.replace(case_list.info, warnings=("=1+1 is a formula",))
    risky = dataclasses.replace(case_list, entries=entries, info=info)
    book = openpyxl.load_workbook(export.write_list(risky, tmp_path / "list.xlsx"))
    assert all(c.data_type != "f" for sheet in book for row in sheet.iter_rows() for c in row)
    cols = _xlsx_columns(book["List"])
    for cell, text in [
        (cols["family_name"][0], '=HYPERLINK("http://x","y")'),
        (cols["family_name"][1], "@Jones"),
        (cols["given_name"][1], "-Bob"),
    ]:
        assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True)
    assert not cols["given_name"][0].quotePrefix
    about = {row[0].value: row[1] for row in book["Provenance"].iter_rows()}
    assert (about["warnings"].value, about["warnings"].quotePrefix) == ("=1+1 is a formula", True)


def test_parquet_and_json_keep_codes_as_text(case_list, tmp_path):
    table = pq.read_table(export.write_list(case_list, tmp_path / "list.parquet"))
    assert str(table.schema.field("patient_id").type) in ("string", "large_string")
    assert b"casefind.provenance" in table.schema.metadata
    doc = json.loads(export.write_list(case_list, tmp_path / "list.json").read_text())
    first = doc["families"][0]["children"][0]
    assert first["evidence"][0]["code"] == "342191000000101"
    assert [f["family_rank"] for f in doc["families"]] == [1, 2]
    assert doc["provenance"]["as_of"] == "2026-11-24"


def test_unknown_format_and_missing_folder(case_list, tmp_path):
    with pytest.raises(OutputError, match="unknown output format '.txt'"):
        export.write_list(case_list, tmp_path / "list.txt")
    with pytest.raises(OutputError, match="folder does not exist"):
        export.write_list(case_list, tmp_path / "nope" / "list.csv")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous\n")

    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_never_overwrite_mode(tmp_path):
    target = tmp_path / "archive.json"
    atomic_write(target, lambda f: f.write(b"1"), overwrite=False)
    with pytest.raises(OutputError, match="already exists and is never overwritten"):
        atomic_write(target, lambda f: f.write(b"2"), overwrite=False)
    assert target.read_bytes() == b"1"


def test_every_writer_names_a_missing_folder_with_a_hint(tmp_path):
    """The rejects file is written before the list: it must say the same as the list would."""
    with pytest.raises(OutputError, match="folder does not exist") as caught:
        export.write_rejects(pd.DataFrame({"file": ["events.csv"], "row": [2]}), tmp_path / "nope" / "x.rejects.csv")
    assert "create it first" in caught.value.render()


def test_a_list_its_provenance_and_rejects_are_written_all_or_none(tmp_path, monkeypatch):
    """If one of the files cannot be replaced, the earlier run's files are left as they were: a list never
    stands beside another run's provenance."""
    from casefind import files

    old = {tmp_path / "list.csv": b"old list", tmp_path / "list.csv.provenance.json": b"old provenance"}
    for path, data in old.items():
        path.write_bytes(data)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".provenance.json") and str(src).endswith(".tmp"):  # the new provenance only
            raise PermissionError(1, "Operation not permitted")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    new = {tmp_path / "list.csv": b"new list", tmp_path / "list.csv.provenance.json": b"new provenance",
           tmp_path / "list.csv.rejects.csv": b"rejects"}  # fmt: skip
    with pytest.raises(OutputError, match="list.csv.provenance.json: cannot write: Operation not permitted"):
        files.atomic_write_all(new, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {p.name: d for p, d in old.items()}


def test_an_old_file_that_cannot_be_moved_aside_is_left_and_reported(tmp_path, monkeypatch):
    """Last month's list open in Excel (Windows) or owned by someone else in a shared folder: moving it aside
    fails, and the error says so; the rollback must not try to put back a file that never moved."""
    from casefind import files

    old = tmp_path / "list.csv"
    old.write_bytes(b"old list")
    real_replace = os.replace

    def replace(src, dst):
        if str(src) == str(old):  # moving the old list out of the way
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    new = {old: b"new list", tmp_path / "list.csv.provenance.json": b"new provenance"}
    with pytest.raises(OutputError, match="list.csv: cannot write: Permission denied"):
        files.atomic_write_all(new, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"list.csv": b"old list"}


@pytest.mark.parametrize("errno_name", ["EPERM", "EOPNOTSUPP"])
def test_a_filesystem_without_hard_links_still_takes_new_files(tmp_path, monkeypatch, errno_name):
    """FAT and exFAT USB sticks and some network shares refuse hard links; a new file is still written, and
    an existing one still never replaced."""
    import errno

    from casefind import files

    def no_links(src, dst):
        raise OSError(getattr(errno, errno_name), "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    files.atomic_write_all(
        {tmp_path / "list.csv": b"new", tmp_path / "list.csv.provenance.json": b"p"}, overwrite=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv", "list.csv.provenance.json"]
    with pytest.raises(OutputError, match="already exists and is never overwritten"):
        files.atomic_write_all({tmp_path / "list.csv": b"newer"}, overwrite=False)
    assert (tmp_path / "list.csv").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "list.csv").stat().st_mode) == 0o600


def test_a_file_created_meanwhile_is_not_replaced_without_hard_links(tmp_path, monkeypatch):
    """Without hard links the file is looked for just before the rename: one made meanwhile is kept."""
    import errno

    from casefind import files

    target = tmp_path / "list.csv"

    def no_links(src, dst):
        target.write_bytes(b"another run's")  # created between the first check and the link
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    with pytest.raises(OutputError, match="list.csv: cannot write: File exists"):
        files.atomic_write_all({target: b"mine"}, overwrite=False)
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("list.csv", b"another run's")]


def test_an_output_folder_that_cannot_be_looked_in_is_an_output_error(tmp_path, monkeypatch):
    """A --out folder the user may not open is exit code 4 with the folder named, not an internal error."""
    from pathlib import Path

    real_stat = Path.stat

    def stat_(path, *args, **kwargs):  # as os.stat fails inside a folder without search permission
        if "locked" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat_)
    with pytest.raises(OutputError, match="locked/list.csv: cannot be looked up: Permission denied") as caught:
        export.check_outputs(tmp_path / "locked" / "list.csv", None, overwrite=False)
    assert caught.value.exit_code == 4


def test_outputs_are_checked_for_a_folder_to_go_in_before_any_work(tmp_path):
    with pytest.raises(OutputError, match="nope: folder does not exist"):
        export.check_outputs(tmp_path / "nope" / "list.csv", None, overwrite=True)
    (tmp_path / "list.csv").mkdir()
    with pytest.raises(OutputError, match="list.csv: is a folder"):
        export.check_outputs(tmp_path / "list.csv", None, overwrite=True)
    with pytest.raises(OutputError, match="nope: folder does not exist"):  # a rejects file beside no --out
        export.check_outputs(None, tmp_path / "nope" / "casefind-rejects-2026-11-24.csv", overwrite=False)


def test_a_folder_where_a_file_would_go_stops_before_anything_is_written(tmp_path):
    from casefind import files

    (tmp_path / "list.csv.provenance.json").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        files.atomic_write_all({tmp_path / "list.csv": b"x", tmp_path / "list.csv.provenance.json": b"y"})
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv.provenance.json"]


def test_an_empty_list_in_parquet_has_the_types_of_a_full_one(case_list, tmp_path):
    """A month with nobody listed still writes typed columns, so that the months' lists combine."""
    full = pq.read_schema(export.write_list(case_list, tmp_path / "full.parquet"))
    empty_list = dataclasses.replace(case_list, entries=case_list.entries.iloc[0:0])
    empty = pq.read_schema(export.write_list(empty_list, tmp_path / "empty.parquet"))
    assert len(empty_list.entries.columns) == len(empty.names) and len(empty.names) > 10
    assert empty == full.remove_metadata().with_metadata(empty.metadata)
    assert full.field("concern").type == "large_string", "a column without a value is typed too"
    assert "null" not in {str(f.type) for f in full}


def test_a_cell_longer_than_excel_holds_is_cut_with_a_note_saying_so(case_list, tmp_path):
    long = case_list.entries.copy()
    long.loc[long.index[0], "evidence"] = "E" * 40_000 + "THE END"
    book = openpyxl.load_workbook(export.write_list(dataclasses.replace(case_list, entries=long), tmp_path / "l.xlsx"))
    cell = _xlsx_columns(book["List"])["evidence"][0].value
    assert len(cell) == 32_767
    assert cell.startswith("E" * 30_000) and cell.endswith(
        "[cut: an Excel cell holds 32,767 characters; the CSV or JSON list has all of it]"
    )
    assert _xlsx_columns(book["List"])["evidence"][1].value == case_list.entries["evidence"].iloc[1]


def test_csv_scores_are_the_numbers_json_has(case_list, tmp_path):
    """A heavy weight with a recency factor, or a score of a million: the CSV must not round to six digits
    (110.885) or write 1e+06 where the JSON list says 110.8845 and 1000000."""
    entries = case_list.entries.copy()
    entries["score"] = [110.8845, 1_000_000.0]
    scored = dataclasses.replace(case_list, entries=entries)
    csv_scores = [r["score"] for r in csv.DictReader((export.write_list(scored, tmp_path / "l.csv")).open())]
    doc = json.loads(export.write_list(scored, tmp_path / "l.json").read_text())
    json_scores = [child["score"] for family in doc["families"] for child in family["children"]]
    assert csv_scores == ["110.8845", "1000000"]
    assert [float(s) for s in csv_scores] == json_scores


def test_a_whole_score_of_a_million_is_shown_in_full():
    from casefind.ranking import score_text

    assert [score_text(s) for s in (1_000_000.0, 13.0, 8.333)] == ["1000000", "13", "8.33"]


def test_the_csv_list_and_its_rejects_open_in_excel_with_accents_as_written(make_extract, tmp_path):
    """Excel reads a CSV without a byte-order mark in the PC's code page (Zoë as ZoÃ«)."""
    folder = make_extract(
        patients="patient_id | given_name | date_of_birth\nP1 | Zoë | 2015-02-01",
        events="patient_id | code | date\nP1 | 342191000000101 | 2026-01-01\nP1 | 135891007 | 31/02/2026",
    )
    case_list = api.build_list(folder, as_of=AS_OF, skip_bad_rows=True)
    rejects = tmp_path / "list.csv.rejects.csv"
    path = export.write_list(case_list, tmp_path / "list.csv", rejects=rejects)
    for written in (path, rejects):
        assert written.read_bytes().startswith("\ufeff".encode())
    assert pd.read_csv(path, dtype=str)["given_name"].tolist() == ["Zoë"]
    assert next(csv.DictReader(path.open(encoding="utf-8-sig")))["given_name"] == "Zoë"
