"""Writing a ``CaseList`` to a file. Exporters format; they never recompute.

Every file is written atomically (a private temporary file in the same folder, then renamed) and is
readable by its owner only (0600). Text cells that a spreadsheet would run as a formula (starting with
``= + - @``, tab or carriage return) are prefixed with ``'`` in CSV. Excel files have typed cells: numbers
(rank, age, score ...) as numbers, dates as dates (``yyyy-mm-dd``), missing values as blank cells, and
everything else, identifiers and codes included, as text that is never a formula; risky text keeps its
value and carries Excel's quote-prefix flag instead of an apostrophe. A ``<file>.provenance.json``
sidecar records the as-of date, the protocol name, version and hash, codelist and input file hashes, the
``--mapping`` file's name and hash (null without one), the options that change the list and the casefind
version. In JSON, rank, age, score and an adult's count of children are numbers (null when missing), dates
are ISO text, and everything else, identifiers and codes included, is text.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from casefind.errors import OutputError, Problem
from casefind.files import (
    FORMULA_STARTS,
    atomic_write,
    atomic_write_all,
    check_writable,
    neutralise_formula,
    refuse_existing,
)
from casefind.ranking import number_text
from casefind.results import CaseList

FORMATS = (".csv", ".parquet", ".json", ".xlsx")

# Identifiers and codes are text in Excel whatever their dtype: an NHS number must never become 9.99E+09.
_TEXT_COLUMN_ENDINGS = ("_id", "_number", "code", "codes")
_NUMBER_KINDS = {"integer", "floating", "mixed-integer-float", "decimal"}
_DATE_KINDS = {"date", "datetime", "datetime64"}
_JSON_NUMBER_COLUMNS = ("rank", "family_rank", "age", "score", "children")


def _as_text(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO text, scores as JSON has them but whole ones without '.0', empty for missing."""
    out = frame.copy()
    for col in out.columns:
        if col == "score":
            out[col] = [number_text(v) for v in out[col]]
        else:
            out[col] = [("" if pd.isna(v) else _as_text(v)) for v in out[col]]
    return out


def _csv_bytes(frame: pd.DataFrame, *, for_excel: bool = False) -> bytes:
    """CSV, every text cell neutralised (``files.neutralise_formula``), then made safe to split (``_csv_cell``).

    ``for_excel`` (build-list's list and rejects file, which practice staff open in Excel) starts the file with
    a UTF-8 byte-order mark: without one Excel reads a CSV in the PC's code page, so Zoë shows as ZoÃ«. pandas,
    R's readr and Python's ``utf-8-sig`` skip the mark; the coding report's CSVs, for SPC tools, have none."""
    text = _text_frame(frame).map(neutralise_formula).map(_csv_cell)
    return text.to_csv(index=False, lineterminator="\n").encode("utf-8-sig" if for_excel else "utf-8")


def _csv_cell(value):
    """A carriage return inside a cell is written as a line feed: Python's csv module quotes a cell holding
    the line terminator (LF) but not a bare CR, which a spreadsheet reads as a new row, so ``x\r=1+1`` would
    put ``=1+1`` at the start of a cell. A NUL byte (a corrupt export's) is written as U+FFFD, as the terminal
    shows it: spreadsheets and many CSV readers stop a cell or the file at a NUL, losing what follows. The
    Parquet and JSON lists keep it as it is; Excel's own escape keeps it in ``.xlsx``."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON values: the _JSON_NUMBER_COLUMNS as numbers (null when missing), the rest as in CSV."""
    text = _text_frame(frame)
    for col in _JSON_NUMBER_COLUMNS:
        if col in frame.columns:
            numbers = [None if pd.isna(v) else _json_number(v) for v in frame[col]]
            text[col] = pd.Series(numbers, index=text.index, dtype=object)  # object: None must not become NaN
    return text.to_dict(orient="records")


def _json_number(value) -> int | float:
    """A whole number without '.0' (an age of 5 whatever its dtype, a score of 13 as CSV writes it)."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _json_bytes(case_list: CaseList) -> bytes:
    entries = _json_records(case_list.entries)
    evidence = case_list.evidence
    by_patient = (
        {
            pid: [
                {
                    "criterion": r.criterion_id,
                    "label": r.label,
                    "tier": r.tier,
                    "weight": r.weight,
                    "date": r.date.strftime("%Y-%m-%d"),
                    "code": r.code if isinstance(r.code, str) else None,
                    "term": r.term if isinstance(r.term, str) else None,
                    "detail": r.detail if isinstance(r.detail, str) else None,
                    "via_relation": r.via_relation if isinstance(r.via_relation, str) else None,
                    "via_patient_id": r.via_patient_id if isinstance(r.via_patient_id, str) else None,
                }
                for r in group.itertuples()
            ]
            for pid, group in evidence.groupby("patient_id", sort=True)
        }
        if len(evidence)
        else {}
    )
    for entry in entries:
        entry["evidence"] = by_patient.get(entry["patient_id"], [])
    adults = _json_records(case_list.adults) if len(case_list.adults) else []
    families: dict[str, dict] = {}
    for entry in entries:  # entries arrive in family order
        family = families.setdefault(
            entry["family_id"],
            {"family_rank": entry["family_rank"], "family_id": entry["family_id"], "children": [], "adults": []},
        )
        family["children"].append(entry)
    for adult in adults:
        if adult["family_id"] in families:
            families[adult["family_id"]]["adults"].append(adult)
    doc = {"provenance": case_list.info.as_dict(), "families": list(families.values())}
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


# The Parquet types of the list's columns that are not text (the others are large_string), given, not
# inferred: a month with nobody listed, or a column with no value (no concern), would be typed null, and would
# not combine with the other months' lists.
_PARQUET_TYPES = {"family_rank": pa.int64(), "rank": pa.int64(), "age": pa.int64(), "score": pa.float64(),
                  "date_of_birth": pa.date32(), "latest_evidence": pa.date32()}  # fmt: skip


def _parquet_bytes(case_list: CaseList) -> bytes:
    frame = case_list.entries.copy()
    frame["latest_evidence"] = pd.to_datetime(frame["latest_evidence"]).dt.date
    schema = pa.schema([(c, _PARQUET_TYPES.get(c, pa.large_string())) for c in frame.columns])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    meta = {b"casefind.provenance": json.dumps(case_list.info.as_dict(), sort_keys=True).encode()}
    table = table.replace_schema_metadata({**meta})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _xlsx_bytes(case_list: CaseList) -> bytes:
    import xlsxwriter

    sink = io.BytesIO()
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = xlsxwriter.Workbook(sink, options)
    as_of = case_list.info.as_of
    workbook.set_properties(
        {"title": "casefind discussion list", "created": datetime(as_of.year, as_of.month, as_of.day)}
    )
    cells = _XlsxCells(workbook)
    _write_sheet(workbook, "List", case_list.entries, cells)
    _write_sheet(workbook, "Adults", case_list.adults, cells)
    about = workbook.add_worksheet("Provenance")
    for row, (key, value) in enumerate(_flatten(case_list.info.as_dict())):
        about.write_string(row, 0, key, cells.bold)
        cells.write(about, row, 1, value, _column_kind(key, [value]))
    workbook.close()
    return sink.getvalue()


def _column_kind(name: str, values) -> str:
    """How a column goes into Excel: 'number', 'date', 'boolean' or 'text', by its name and dtype, never by
    whether a string looks like a number."""
    if str(name).endswith(_TEXT_COLUMN_ENDINGS):
        return "text"
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "boolean":  # Excel's TRUE / FALSE, which filter and count as such, not the text "False"
        return "boolean"
    if kind in _NUMBER_KINDS:
        return "number"
    if kind in _DATE_KINDS:
        return "date"
    return "text"


class _XlsxCells:
    """Writes typed cells with one workbook's shared formats."""

    def __init__(self, workbook) -> None:
        self.bold = workbook.add_format({"bold": True})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        # Excel's own "this is text" flag: not shown, and the cell stays text if a user edits it. No apostrophe
        # is needed in the value, as write_string never makes a formula.
        self.quoted = workbook.add_format({"quote_prefix": True})

    def write(self, sheet, row: int, col: int, value, kind: str) -> None:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return  # a cell never written is blank
        if kind == "number":
            sheet.write_number(row, col, value)
        elif kind == "boolean":
            sheet.write_boolean(row, col, bool(value))
        elif kind == "date":
            sheet.write_datetime(row, col, pd.Timestamp(value).to_pydatetime(), self.date)
        else:
            text = _cut_for_excel(_as_text(value))
            sheet.write_string(row, col, text, self.quoted if text.startswith(FORMULA_STARTS) else None)


EXCEL_CELL_CHARS = 32_767  # the most an Excel cell holds; xlsxwriter cuts a longer string without a word
CUT_NOTE = " ... [cut: an Excel cell holds 32,767 characters; the CSV or JSON list has all of it]"


def _cut_for_excel(text: str) -> str:
    """``text``, or as much of it as a cell holds with a note saying it was cut, so that no evidence is lost
    without a word (a term of 33,000 characters would otherwise take the other criteria's evidence with it)."""
    if len(text) <= EXCEL_CELL_CHARS:
        return text
    return text[: EXCEL_CELL_CHARS - len(CUT_NOTE)] + CUT_NOTE


def _write_sheet(workbook, name: str, frame: pd.DataFrame, cells: _XlsxCells) -> None:
    sheet = workbook.add_worksheet(name)
    for col, header in enumerate(frame.columns):
        sheet.write_string(0, col, header, cells.bold)
        kind = _column_kind(header, frame[header])
        for row, value in enumerate(frame[header], start=1):
            cells.write(sheet, row, col, value, kind)
        widest = max((len(_as_text(v)) for v in frame[header] if not pd.isna(v)), default=0)
        sheet.set_column(col, col, min(max(widest, len(header)) + 2, 50))
    sheet.freeze_panes(1, 0)


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, "; ".join(value) if isinstance(value, list) else value))
    return rows


def provenance_path(path: Path) -> Path:
    return path.with_name(path.name + ".provenance.json")


def rejects_path(out: Path | None, as_of) -> Path:
    """Where rejected rows go: beside the output, or ``casefind-rejects-<as-of>.csv`` in the current folder."""
    if out is not None:
        return out.with_name(out.name + ".rejects.csv")  # list.csv and list.xlsx each have their own
    return Path(f"casefind-rejects-{as_of:%Y-%m-%d}.csv")


def check_outputs(out: Path | None, rejects: Path | None, *, overwrite: bool) -> None:
    """Stop before any work if ``out``, its provenance sidecar or ``rejects`` exists and ``overwrite`` was not
    given. A list is the record of what a meeting was shown: last month's ``list.csv`` must not be replaced
    because this month's run was given the same name. Each must be writable where it is to go
    (``files.check_writable``), so a missing folder does not stop the run after the extract was read."""
    for path in (p for p in (out, rejects) if p is not None):
        check_writable(path)
    if not overwrite:
        paths = [out, provenance_path(out)] if out is not None else []
        refuse_existing(
            [*paths, rejects] if rejects is not None else paths,
            "already exists (from an earlier run?)",
            "Nothing was read or written. "
            + ("Choose another --out" if out is not None else "Run from another folder, or give --out")
            + ", or add --overwrite to replace these files.",
        )


def rejects_csv(rejects: pd.DataFrame) -> bytes:
    """The rejected rows as a coding report's rejects.csv holds them (formula-safe CSV, as its other CSVs)."""
    return _csv_bytes(rejects)


def write_rejects(rejects: pd.DataFrame, path: Path, *, overwrite: bool = False) -> None:
    atomic_write(path, lambda f: f.write(_csv_bytes(rejects, for_excel=True)), overwrite=overwrite)


def write_list(case_list: CaseList, path: str | Path, *, overwrite: bool = False, rejects: Path | None = None) -> Path:
    """Write the list to ``path`` in the format its extension names, plus the provenance sidecar, and the
    rejected rows to ``rejects`` when there are any: all of them or none (``files.atomic_write_all``).

    An existing file is replaced only with ``overwrite`` (see :func:`check_outputs`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    writers = {
        ".csv": lambda: _csv_bytes(case_list.entries, for_excel=True),
        ".json": lambda: _json_bytes(case_list),
        ".parquet": lambda: _parquet_bytes(case_list),
        ".xlsx": lambda: _xlsx_bytes(case_list),
    }
    if suffix not in writers:
        raise OutputError(
            Problem(str(path), f"unknown output format '{suffix or '(none)'}'", f"use one of: {', '.join(FORMATS)}")
        )
    sidecar = json.dumps(case_list.info.as_dict(), indent=2, sort_keys=True) + "\n"
    contents = {path: writers[suffix](), provenance_path(path): sidecar.encode()}
    if rejects is not None and len(case_list.rejects):
        contents[rejects] = _csv_bytes(case_list.rejects, for_excel=True)
    atomic_write_all(contents, overwrite=overwrite)
    return path
