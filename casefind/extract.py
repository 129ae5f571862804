"""Reading an extract directory into typed DuckDB tables, validating every row.

An extract is a directory with one file per table (``patients.csv`` or ``patients.parquet`` ...). Each file
is read as text, columns are renamed through an optional mapping file, every value is checked against
``casefind.schema``, and typed tables named after the schema's tables are created on the connection:

* by default any bad row stops the run with a list of every problem (up to a cap, with a count of the rest);
* with ``skip_bad_rows`` the bad rows are left out, kept in ``Extract.rejects`` and counted.

With ``event_codes`` (what the engine and the coding report pass: the protocol's codes), ``events`` holds
only the events with those codes, picked out in the same pass that picks out the rows with a problem; with
``code_systems`` too (the code systems of the protocol's codelists), a warning counts the events under any
other code system, which are never read (``_unread_code_systems``).

A relationships row whose patient_id is not in the patients file is a problem only when its related_patient_id
is not either; otherwise it is used when the registered patient is the child (``_unlinked_relationships``).

Row numbers are as a spreadsheet shows them: in a CSV file the header is row 1, so the first record is
row 2; in a Parquet file the first record is row 1. Messages never include a patient identifier.

Dates may be ISO (``2024-03-01``, optionally with a time) or UK (``01/03/2024``); a zone offset after the
time (``+01:00``, ``Z``) does not change the date, which is read as written; US month-first dates are not
accepted; an end date after 2200 (``9999-12-31``, "no end" in some systems) reads as empty. How the
encodings, delimiters and line endings of real CSV exports are read is in ``casefind.csv_files``.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from casefind.codes import SPREADSHEET_NUMBER, spreadsheet_cut
from casefind.csv_files import REPEATED_HINT, CsvLayout, read_csv, repeated_names, spreadsheet_rows
from casefind.dates import FIRST_YEAR, LAST_YEAR, PRACTICE_TIME_ZONE
from casefind.errors import MAX_LISTED_PROBLEMS, ExtractError, Problem
from casefind.files import read_user_text
from casefind.schema import CHILD_WORDS, PATIENT_ID_COLUMNS, SIBLING_WORDS, TABLES, UNKNOWN_IDS, Column, Table

DATE_FORMATS = [
    *("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"),
    # with the month's name, as EMIS Web ('01-Mar-2024') and SystmOne ('01 Mar 2024') reports write them;
    # DuckDB reads the name in any case and a day without its leading zero
    *("%d-%b-%Y", "%d-%b-%Y %H:%M", "%d-%b-%Y %H:%M:%S", "%d %b %Y", "%d %B %Y", "%d %b %Y %H:%M"),
]
VALUE_ALIASES = {  # common spellings in real exports -> the schema's choice (matched by choice_key)
    "code_system": {"sct": "snomed", "snomedct": "snomed", "snomed ct": "snomed", "readv2": "read2", "read": "read2"},
    "status": {  # EMIS Web and SystmOne appointment statuses among them
        "dna": "did_not_attend",
        "wnb": "was_not_brought",
        # the patient came: seen, being seen, or on the way in (a past slot left like this was attended)
        **dict.fromkeys(("finished", "arrived", "seen", "in progress", "sent in", "visited"), "attended"),
        "patient cancelled": "cancelled_by_patient",
        "cancelled by unit": "cancelled_by_practice",
    },
}  # anything else (such as 'Walked Out', which is neither attended nor missed) is mapped in --mapping's values
# Words appointment statuses are written in, none of them a name. A value of the status column made of these
# words alone ('Walked Out', 'Cancelled', 'Rescheduled') is a status, not a name or an identifier in the wrong
# column, so a message quotes it (STATUS_SHAPED) and the user can map it; any other value is not shown.
STATUS_WORDS = (
    "appointment", "appt", "arrived", "attend", "attendance", "attended", "booked", "brought", "by", "called",
    "cancel", "canceled", "cancellation", "cancelled", "clinic", "clinician", "did", "dna", "failed", "finished",
    "gp", "in", "late", "left", "missed", "no", "not", "out", "patient", "practice", "progress", "rebooked",
    "reschedule", "rescheduled", "seen", "sent", "show", "slot", "the", "to", "unit", "visit", "visited", "wait",
    "waiting", "walked", "was", "wnb",
)  # fmt: skip
DATE_HINT = "write dates as yyyy-mm-dd or dd/mm/yyyy"
CHOICE_HINTS = {
    "status": "if it is the export's word for one of these, say which in a mapping file (--mapping): "
    "appointments: {values: {status: {'Walked Out': attended}}}",
    "code_system": "another spelling of one of these can be mapped (--mapping): "
    "events: {values: {code_system: {'SNOMED Clinical Terms': snomed}}}; codes of other schemes (ICD-10) are not "
    "read",
}
MAPPING_EXAMPLE = "'casefind rules DIR' writes an example, mapping.example.yaml"  # also in rules/ of a checkout
HEADER_SYNONYMS = {  # headers practice systems export (matched like any header, by _key) -> casefind column
    "dob": "date_of_birth", "birthdate": "date_of_birth", "dod": "date_of_death", "deathdate": "date_of_death",
    "surname": "family_name", "lastname": "family_name", "forename": "given_name", "forenames": "given_name",
    "firstname": "given_name", "gender": "sex", "nhsno": "nhs_number", "nhs": "nhs_number",
    "eventdate": "date", "effectivedate": "date", "snomedcode": "code", "conceptid": "code",
}  # fmt: skip


@dataclass(frozen=True)
class SourceFile:
    table: str
    path: Path
    format: str  # csv | parquet
    sha256: str = ""  # filled in once the file has been hashed (see _read)
    csv: CsvLayout | None = None  # how a CSV file was read, once it has been
    number_ids: tuple[str, ...] = ()  # patient id columns a Parquet file stores as integers (_leading_zero_ids)

    @property
    def encoding(self) -> str:
        return self.csv.encoding if self.csv else "utf-8"  # Parquet text is UTF-8 by definition


@dataclass
class Extract:
    """Typed tables on ``con`` plus what was read, rejected and noticed on the way."""

    con: duckdb.DuckDBPyConnection
    files: dict[str, SourceFile]
    rows_read: dict[str, int]
    rejects: pd.DataFrame  # file, row, column, problem (one row per problem)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return int(self.rejects[["file", "row"]].drop_duplicates().shape[0]) if len(self.rejects) else 0

    def input_files(self) -> dict[str, dict[str, str]]:
        """Table -> the file read for it (name, format, encoding, SHA-256), for provenance."""
        return {
            t: {"file": f.path.name, "format": f.format, "encoding": f.encoding, "sha256": f.sha256}
            for t, f in sorted(self.files.items())
        }


# ------------------------------------------------------------------------------------------ mapping


@dataclass(frozen=True)
class TableMapping:
    file: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # source header -> casefind column
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {choice_key(export's value): choice}

    def aliases(self, column: str) -> dict[str, str]:
        """The export's spellings of ``column``'s choices (as ``choice_key`` writes them): casefind's common ones,
        then this mapping's."""
        return {**{choice_key(k): v for k, v in VALUE_ALIASES.get(column, {}).items()}, **self.values.get(column, {})}


def choice_key(text: str) -> str:
    """A value of a column with a fixed set of values as it is matched: lower case, each run of spaces, tabs,
    hyphens and underscores one underscore ('Did Not Attend', 'did-not-attend' and did_not_attend are one).
    ``_choice_key_sql`` is the same in SQL."""
    return re.sub(r"[ \t_-]+", "_", text.lower()).strip("_")


def _choice_key_sql(expr: str) -> str:
    return rf"trim(regexp_replace(lower({expr}), '[ \t_-]+', '_', 'g'), '_')"


def load_mapping(path: str | Path | None) -> dict[str, TableMapping]:
    """Read a column-mapping YAML file (see ``rules/mapping.example.yaml``). Every problem with it is an
    ExtractError naming the file and the key (and its line, where a value has the wrong kind)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = read_user_text(path)
        data = yaml.safe_load(text) or {}
    except OSError as exc:
        raise ExtractError(Problem(str(path), f"cannot read the mapping file: {exc.strerror}")) from None
    except yaml.YAMLError as exc:
        # the parser's reason, never its excerpt of the file: a header may be quoted there, and so may a value
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        reason = getattr(exc, "problem", None)
        raise ExtractError(
            Problem(
                where,
                f"not valid YAML: {reason}" if reason else "not valid YAML",
                f"indent with spaces, not tabs, and put a header holding ': ' or ' #' in quotes ({MAPPING_EXAMPLE})",
            )
        ) from None
    problems, result = [], {}
    if not isinstance(data, dict):
        raise ExtractError(Problem(str(path), "expected a mapping of table names to {file, columns}"))
    for table_name, spec in data.items():
        if table_name not in TABLES:
            problems.append(Problem(f"{path}, {table_name}", f"unknown table (known: {', '.join(TABLES)})"))
            continue
        table = TABLES[table_name]
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            problems.append(
                Problem(
                    _mapping_where(path, text, table_name),
                    f"expected file, columns or values under {table_name}, not {_yaml_kind(spec)}",
                    f"name the file after file: and the headers under columns:, as in {table_name}: "
                    f"{{file: NAME.csv}} ({MAPPING_EXAMPLE})",
                )
            )
            continue
        unknown_keys = set(spec) - {"file", "columns", "values"}
        if unknown_keys:
            problems.append(
                Problem(
                    f"{path}, {table_name}",
                    f"unknown key(s) {sorted(map(str, unknown_keys))}; use file, columns, values",
                )
            )
        file = spec.get("file")
        if file is not None and not isinstance(file, str):
            problems.append(
                Problem(
                    _mapping_where(path, text, table_name, "file"),
                    f"expected one file name, not {_yaml_kind(file)}",
                    "casefind reads one file per table: join the files into one, and name that"
                    if isinstance(file, list)
                    else f"write the file's name with its extension ({table_name}.csv); a name that is only digits "
                    "goes in quotes: file: '123'",
                )
            )
        columns = spec.get("columns") or {}
        if not isinstance(columns, dict):
            example = next(c.name for c in table.columns if c.required)
            problems.append(
                Problem(
                    _mapping_where(path, text, table_name, "columns"),
                    f"expected each header with the column it holds, not {_yaml_kind(columns)}",
                    f"write each header, a colon and casefind's column, one to a line: "
                    f"{table_name}: {{columns: {{'Their Header': {example}}}}}",
                )
            )
            columns = {}
        columns = {str(k): str(v) for k, v in columns.items()}
        for source, target in columns.items():
            if target not in table.column_names:
                close = difflib.get_close_matches(target, table.column_names, n=1)
                problems.append(
                    Problem(
                        f"{path}, {table_name}.columns['{source}']",
                        f"'{target}' is not a column of {table_name}",
                        f"did you mean '{close[0]}'?" if close else "run `casefind schema` for the column names",
                    )
                )
        problems += _mapped_twice(f"{path}, {table_name}.columns", columns)
        values = _value_mapping(path, table, spec.get("values") or {}, problems)
        result[table_name] = TableMapping(file, columns, values)
    if problems:
        raise ExtractError(problems)
    return result


def _yaml_kind(value) -> str:
    """What a YAML value is, in words, for a message that says what was expected instead."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, datetime.date):  # a datetime is one too
        return "a date"
    kinds = {str: "text", list: "a list", dict: "keys and values"}
    return next((kind for typ, kind in kinds.items() if isinstance(value, typ)), "an empty value")


def _mapping_where(path: Path, text: str, *keys: str) -> str:
    """``path, line N, table.key``: the line of the last of ``keys`` in the mapping file (read again: only a
    file with a problem is)."""
    node, line = yaml.compose(text, Loader=yaml.SafeLoader), None
    for key in keys:
        pairs = [(k, v) for k, v in node.value if k.value == key] if isinstance(node, yaml.MappingNode) else []
        if not pairs:
            break
        key_node, node = pairs[-1]  # a key written twice: the later one is the value read
        line = key_node.start_mark.line + 1
    return f"{path}{f', line {line}' if line else ''}, {'.'.join(keys)}"


def _mapped_twice(where: str, columns: dict[str, str]) -> list[Problem]:
    """A problem for each column that several headers are mapped to: only one of them would be read, and
    which one would depend on their order in the file."""
    sources: dict[str, list[str]] = {}
    for source, target in columns.items():
        sources.setdefault(target, []).append(source)
    problems = []
    for target, found in sources.items():
        if len(found) > 1:
            headers = f"{', '.join(repr(h) for h in found[:-1])} and {found[-1]!r}"
            problems.append(
                Problem(
                    where,
                    f"{headers} are {'both' if len(found) == 2 else 'all'} mapped to {target}",
                    f"map one header to {target}: keep the line of the header that holds it",
                )
            )
    return problems


def _value_mapping(path: Path, table: Table, spec, problems: list[Problem]) -> dict[str, dict[str, str]]:
    """``values: {column: {export's value: casefind's}}`` for the columns with a fixed set of values."""
    choices = {c.name: c.choices for c in table.columns if c.choices}
    where = f"{path}, {table.name}.values"
    if not isinstance(spec, dict):
        example = next((f"{{{c}: {{Their Word: {v[0]}}}}}" for c, v in choices.items()), "{}")
        problems.append(Problem(where, f"expected columns, each with its values: {example}"))
        return {}
    result = {}
    for column, pairs in spec.items():
        if column not in choices:
            fixed = ", ".join(choices) or "none"
            problems.append(Problem(f"{where}.{column}", f"not a column with a fixed set of values here ({fixed})"))
            continue
        if not isinstance(pairs, dict):
            problems.append(Problem(f"{where}.{column}", "expected the export's values, each with casefind's"))
            continue
        for value, target in pairs.items():
            if choice_key(str(target)) not in choices[column]:
                problems.append(
                    Problem(
                        f"{where}.{column}['{value}']",
                        f"'{target}' is not one of {', '.join(choices[column])}",
                    )
                )
        result[column] = {choice_key(str(v)): choice_key(str(t)) for v, t in pairs.items()}
    return result


# ------------------------------------------------------------------------------------------ files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)  # hashlib lets other threads run while it hashes a block
    return digest.hexdigest()


def _find_file(data_dir: Path, table: Table, mapping: TableMapping | None) -> Path | None:
    """The file of ``table``: the one the mapping names, else ``<table>.csv`` or ``<table>.parquet``; either
    in any case, as a Windows folder would match it (Patients.CSV is patients.csv)."""
    if mapping and mapping.file:
        path = data_dir / mapping.file
        folder = path.parent
        names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        found = _same_name(path.name, names)
        if not found:
            raise ExtractError(
                Problem(str(path), f"the mapping file names this file for '{table.name}' but it does not exist")
            )
        if len(found) > 1:
            raise ExtractError(
                Problem(
                    str(folder),
                    f"both {found[0]} and {found[1]} could be the file the mapping file names for '{table.name}' "
                    f"({path.name})",
                    "name the file exactly, or keep one of them",
                )
            )
        return folder / found[0]
    found = [
        path
        for path in sorted(data_dir.iterdir())
        if path.name.lower() in (f"{table.name}.csv", f"{table.name}.parquet") and path.is_file()
    ]
    if len(found) > 1:
        raise ExtractError(
            Problem(str(data_dir), f"both {found[0].name} and {found[1].name} exist", "keep one file per table")
        )
    return found[0] if found else None


def _same_name(name: str, names: Iterable[str]) -> list[str]:
    """The names of ``names`` that ``name`` stands for: itself, when it is there; else those that differ from
    it only in case (several: ``name`` is ambiguous)."""
    names = list(names)
    return [name] if name in names else [n for n in names if n.casefold() == name.casefold()]


# ------------------------------------------------------------------------------------------ reading


def _normalise(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def _key(header: str) -> str:
    """A header as it is matched: letters and digits only, lower case (``DateOfBirth`` = ``date of birth``)."""
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _match_headers(
    headers: list[str], table: Table, mapping: TableMapping | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(casefind column -> source header, casefind column -> the several headers that could each be it).

    An explicit mapping first (its header as the file spells it, or else in another case), then names that
    differ only in case, spacing or punctuation (``DateOfDeath``, ``Date of death``) and the common export
    headers in HEADER_SYNONYMS. Two such headers for one column (``Date`` and ``Effective Date``, ``DOB`` and
    ``Date of Birth``) are not chosen between: picking the wrong one would change the list without a word.
    """
    chosen: dict[str, str] = {}
    by_strip = {h.strip(): h for h in headers}
    for source, target in (mapping.columns if mapping else {}).items():
        found = _same_name(source.strip(), by_strip)  # in any case, as the automatic matching reads it
        if len(found) == 1:
            chosen[target] = by_strip[found[0]]
    by_key = {_key(c): c for c in table.column_names}
    candidates: dict[str, list[str]] = {}
    for header in headers:
        name = by_key.get(_key(header)) or HEADER_SYNONYMS.get(_key(header))
        if name in table.column_names and name not in chosen and header not in chosen.values():
            candidates.setdefault(name, []).append(header)
    chosen |= {name: found[0] for name, found in candidates.items() if len(found) == 1}
    return chosen, {name: found for name, found in candidates.items() if len(found) > 1}


def _rename(
    headers: list[str], table: Table, mapping: TableMapping | None, where: str, *, csv: bool = False
) -> dict[str, str]:
    """casefind column -> source header (see ``_match_headers``), or every problem with the headers: a
    required column not found, a column two headers could each be, a mapped header the file does not have."""
    chosen, ambiguous = _match_headers(headers, table, mapping)
    missing = [c.name for c in table.columns if c.required and c.name not in chosen and c.name not in ambiguous]
    if csv and missing and not chosen and not ambiguous and any(ch.isdigit() for h in headers for ch in h):
        # Nothing matched and the "headers" hold digits: most likely a first row of data (dates, codes, ids),
        # which must not be echoed.
        raise ExtractError(
            Problem(
                where,
                "the first row names none of casefind's columns and holds digits: is the header row missing?",
                f"export with column headers; the first row should name {', '.join(missing)}",
            )
        )
    problems = []
    unused = [h for h in headers if h not in chosen.values()]  # a header already read is not the one
    stripped = [h.strip() for h in headers]  # never two that differ only in case: DuckDB reads those as one
    for source, target in (mapping.columns if mapping else {}).items():
        if not _same_name(source.strip(), stripped):
            # the header meant may have been matched to the same column without the mapping ('Date of Birth')
            near = [*unused, *([chosen[target]] if target in chosen else [])]
            problems.append(
                Problem(
                    where,
                    f"the mapping file maps '{source}' to {target}, but the file has no column '{source}'",
                    f"did you mean '{close}'?"
                    if (close := _nearest(source.strip(), near))
                    else "copy the header from the file's first row",
                )
            )
    for name, found in ambiguous.items():
        problems.append(
            Problem(
                where,
                f"columns {' and '.join(repr(h) for h in found)} could each be '{name}'; casefind does not guess",
                f"say which in a mapping file (--mapping): {table.name}: {{columns: {{'{found[-1]}': {name}}}}}",
            )
        )
    for name in missing:
        close = difflib.get_close_matches(name, [_normalise(h) for h in unused], n=1, cutoff=0.5)
        hint = f"map your header to it in a mapping file (--mapping; {MAPPING_EXAMPLE})"
        if close:
            original = next(h for h in unused if _normalise(h) == close[0])
            hint = f"is it '{original}'? Map it with --mapping: {table.name}: {{columns: {{'{original}': {name}}}}}"
        problems.append(Problem(where, f"missing required column '{name}' (found: {', '.join(headers)})", hint))
    if problems:
        raise ExtractError(problems)
    return chosen


def _nearest(name: str, headers: list[str]) -> str | None:
    """The header of ``headers`` nearest to ``name`` whatever the case, when one is near enough to be a typo."""
    by_folded = {h.strip().casefold(): h for h in headers}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def _has_required(headers: list[str], table: Table, mapping: TableMapping | None) -> bool:
    """Whether ``headers`` name every required column of ``table``: a header line, not a title above one."""
    chosen, ambiguous = _match_headers([h.strip() for h in headers], table, mapping)
    return all(c.name in chosen or c.name in ambiguous for c in table.columns if c.required)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _register_raw(
    con, source: SourceFile, table: Table, mapping: TableMapping | None, workdir: Path
) -> tuple[str, str, Problem | None, tuple[str, ...]]:
    """Create ``raw_<table>``: casefind columns as cleaned text plus ``_row`` (spreadsheet row number).

    It is a view over ``src_<table>``: the same columns as they are in the file (renamed, not cleaned).
    Returns its name, how a CSV file was read (None for Parquet; see ``casefind.csv_files``), a
    warning when columns of the file went unused while optional columns were not found, and the patient id
    columns a Parquet file stores as integers (``SourceFile.number_ids``).
    """
    raw = f"raw_{table.name}"
    path = str(source.path)
    if source.format == "parquet":
        top = _parquet_top_columns(con, path)
        if repeated := repeated_names([name for name, _ in top]):  # DuckDB reads the second as date_1
            raise ExtractError(Problem(path, f"the file repeats column(s) {', '.join(repeated)}", REPEATED_HINT))
        int96 = {name for name, physical in top if physical == "INT96"}
        scan = _parquet_scan(path, row_numbers=True)
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        types = {name: typ for name, typ, *_ in described if name != "file_row_number"}
        names = _rename(list(types), table, mapping, path)
        # A file with no rows has no value a type could have changed (written from an empty DataFrame, its
        # columns are NULL or DOUBLE whatever they hold): it is a file with a header but no rows (_no_rows).
        wrong = [p for col in table.columns if (p := _parquet_type_problem(col, names.get(col.name), types, path))]
        if wrong and con.execute(f"SELECT count(*) FROM {scan}").fetchone()[0]:
            raise ExtractError(wrong)
        row_expr = "file_row_number + 1"
        layout = None
        number_ids = tuple(
            c.name for c in table.columns if c.name in PATIENT_ID_COLUMNS and _is_integer(types.get(names.get(c.name)))
        )
    else:
        expected = ", ".join(c.name for c in table.columns if c.required)
        layout = read_csv(
            con,
            table.name,
            source.path,
            path,
            workdir,
            expected,
            lambda fields: _has_required(fields, table, mapping),
            optional=not table.required,
        )
        headers = [r[0] for r in con.execute(f"DESCRIBE file_{table.name}").fetchall()]
        names = _rename(headers, table, mapping, path, csv=True)
        types = {h: "VARCHAR" for h in headers}
        scan = f"file_{table.name}"
        row_expr = "rowid + 2"
        number_ids = ()
    selects = []
    for col in table.columns:
        header = names.get(col.name)
        if header is None:
            selects.append(f"CAST(NULL AS VARCHAR) AS {col.name}")
        elif types[header] == "VARCHAR":
            selects.append(f"{_quote(header)} AS {col.name}")
        else:
            selects.append(f"{_parquet_text(_quote(header), types[header], header in int96)} AS {col.name}")
    con.execute(f"CREATE TEMP VIEW src_{table.name} AS SELECT {row_expr} AS _row, {', '.join(selects)} FROM {scan}")
    con.execute(f"CREATE TEMP VIEW {raw} AS SELECT _row, {cleaned_columns(table)} FROM src_{table.name}")
    return raw, layout, _column_warnings(list(types), names, table, source), number_ids


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def _is_integer(typ: str | None) -> bool:
    return typ in _INTEGER_TYPES or (typ is not None and _decimal_places(typ) == 0)


_NESTED = re.compile(r".*(\[[0-9]*\]|^STRUCT\(|^MAP\(|^UNION\()")
_DATE_TYPES = ("DATE", "VARCHAR")  # and TIMESTAMP of any precision or zone
_NULL_TYPE = '"NULL"'  # as DuckDB names the type of a Parquet column with no values (see _parquet_type_problem)


def _parquet_scan(path: str | Path, *, row_numbers: bool = False) -> str:
    """SQL reading a Parquet file as casefind reads it. BINARY columns without the UTF8 annotation (older Hive
    and Impala writers) hold text: they are read as text, so that they take every check a text column takes
    (a zero-width space in a code), not as escaped bytes."""
    rows = ", file_row_number=true" if row_numbers else ""
    return f"read_parquet({_sql_str(str(path))}, binary_as_string=true{rows})"


def _parquet_top_columns(con, path: str) -> list[tuple[str, str]]:
    """The file's top-level column names, as written (DuckDB renames a repeated one), with their physical
    types (``INT96``: Spark's timestamps, which hold an instant in UTC; see ``_parquet_text``)."""
    rows = con.execute("SELECT name, type, num_children FROM parquet_schema(?)", [path]).fetchall()
    top, i = [], 1
    for _ in range(rows[0][2] or 0):  # rows[0] is the schema's root; nested fields follow their column
        top.append(rows[i][:2])
        skip = rows[i][2] or 0
        i += 1
        while skip:  # step over this column's nested fields, and theirs
            skip += (rows[i][2] or 0) - 1
            i += 1
    return top


def _decimal_places(typ: str) -> int | None:
    """The places of a ``DECIMAL(p,s)`` type, or None for any other type."""
    scale = re.fullmatch(r"DECIMAL\([0-9]+,([0-9]+)\)", typ)
    return int(scale.group(1)) if scale else None


def _parquet_type_problem(col: Column, header: str | None, types: dict[str, str], where: str) -> Problem | None:
    """Why a Parquet column of type ``types[header]`` cannot be ``col``, or None.

    * A list, struct or map holds many values in a cell; casefind reads one.
    * A date is DATE, TIMESTAMP (any precision or zone) or text: a number such as 20240101 is not a date.
    * A code or an identifier (``Column.exact``) stored as floating point, or as a decimal with places, has
      been changed; as an integer or a DECIMAL(p,0) it is exact, and read as its digits. Other columns take
      any single value (a gestation as DOUBLE).
    * A column of the NULL type holds no value at all: pyarrow writes a column that is empty in every row so
      (no one has died, no relationship has an end date). Any column may be it, and reads as empty; in a
      required column each row then misses its value, as in a CSV file.
    """
    typ = types.get(header, "VARCHAR")
    if typ == _NULL_TYPE:
        return None
    places = _decimal_places(typ)
    hint = "re-export this column as text (string)"
    if _NESTED.match(typ):
        problem = f"stored as {typ}, many values in a cell; casefind reads one value per cell"
    elif col.type == "date" and typ not in _DATE_TYPES and not typ.startswith("TIMESTAMP"):
        problem = f"stored as {typ}; a date is stored as DATE, TIMESTAMP or text"
        hint = "re-export this column as a date, or as yyyy-mm-dd text"
    elif not col.exact or not (typ in ("FLOAT", "DOUBLE") or places):
        return None
    elif places:
        problem = (
            f"stored as {typ}, a number with {places} decimal place{'s' if places > 1 else ''}: a code or an "
            f"identifier has none, and would read with '.{'0' * places}' after it"
        )
    else:
        problem = f"stored as {typ}; long codes and identifiers do not survive floating point"
    return Problem(f"{where}, column '{header}'", problem, hint)


def _parquet_text(expr: str, typ: str, int96: bool = False) -> str:
    """SQL for a Parquet column of type ``typ`` as text.

    A number with places reads as it is written in a CSV file ('13' and '13.5', not the cast's '13.0': a
    gestation in weeks is shown as written).

    A TIMESTAMP WITH TIME ZONE is an instant, not a day: it reads as the date and time it was in the
    practice's zone (``PRACTICE_TIME_ZONE``, Europe/London), the calendar date a UK practice's user would
    give it, so that a birth at 00:30 in British Summer Time (23:30 the day before in UTC) is on its day. The
    zone is named here, not taken from the connection's TimeZone, so the date is the same on any computer and
    connection. An INT96 timestamp (``int96``) is an instant in UTC, as Spark writes it, and reads the same
    way. (DuckDB's time zones come from its ICU extension, built into its Python package; ``connect`` needs it
    too.) A TIMESTAMP without a zone is a date and time as written, and reads as written."""
    if int96:  # a UTC instant without its zone: given it, it is a TIMESTAMP WITH TIME ZONE
        expr, typ = f"timezone('UTC', {expr})", "TIMESTAMP WITH TIME ZONE"
    if "WITH TIME ZONE" in typ or typ.startswith("TIMESTAMPTZ"):  # TIMESTAMPTZ_NS: nanoseconds, from pyarrow
        return f"CAST(timezone({_sql_str(PRACTICE_TIME_ZONE)}, {expr}) AS VARCHAR)"
    if typ in ("FLOAT", "DOUBLE") or _decimal_places(typ):
        return f"regexp_replace(CAST(CAST({expr} AS DOUBLE) AS VARCHAR), '[.]0$', '')"
    return f"CAST({expr} AS VARCHAR)"


@contextmanager
def _reading(con, source: SourceFile):
    """DuckDB's error from reading a Parquet file that is not one (truncated, damaged, or another kind of file
    named .parquet) as an ExtractError naming the file, whether it comes when the file is first opened or in a
    later scan of its rows. It is that only when the file itself cannot be read through: any other error (and
    running out of memory) is raised as it is."""
    try:
        yield
    except (duckdb.OutOfMemoryException, duckdb.InterruptException):
        raise
    except duckdb.Error as exc:
        if source.format != "parquet":
            raise
        if "not valid UTF8" in str(exc):  # the message quotes the value, which is never shown
            raise ExtractError(_not_utf8(con, source)) from None
        if _parquet_readable(con, source.path):
            raise
        raise ExtractError(
            Problem(
                str(source.path),
                "not a readable Parquet file (truncated, or not Parquet at all)",
                f"export it again, or save the table as CSV ({source.table}.csv)",
            )
        ) from None


def _not_utf8(con, source: SourceFile) -> Problem:
    """A Parquet text column holding bytes that are not UTF-8, by name (each column is read alone to find it)."""
    scan = _parquet_scan(source.path)
    where = str(source.path)
    for (name,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {scan})").fetchall():
        try:
            con.execute(f"SELECT bit_xor(hash({_quote(name)})) FROM {scan}").fetchall()
        except duckdb.Error:
            where = f"{source.path}, column '{name}'"
            break
    return Problem(
        where,
        "text that is not UTF-8 (written in another encoding, such as Windows-1252)",
        f"export it again with text as UTF-8, or save the table as CSV ({source.table}.csv), which casefind reads "
        "in Windows-1252 too",
    )


def _parquet_readable(con, path: Path) -> bool:
    """Whether every value of every column of the Parquet file can be read (only asked after an error)."""
    try:
        con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM {_parquet_scan(path)}").fetchall()
    except duckdb.Error:
        return False
    return True


def _column_warnings(headers: list[str], names: dict[str, str], table: Table, source: SourceFile) -> list[Problem]:
    """Warnings about the file's columns: each absent optional column that changes the list (its schema
    ``if_absent``), and columns casefind did not use when optional ones are absent (a ``DOD`` or
    ``Deregistered`` column left unread would silently list a child who has died or moved away)."""
    warnings = [
        Problem(
            source.path.name,
            f"no {c.name} column: {c.if_absent}",
            f"if the file has it under another header, map it with --mapping ({MAPPING_EXAMPLE})",
        )
        for c in table.columns
        if c.if_absent and c.name not in names
    ]
    unused = [h for h in headers if h not in names.values()]
    absent = [c.name for c in table.columns if c.name not in names]
    if not unused or not absent:
        return warnings
    return [  # (it names the absent columns that have a warning of their own too)
        Problem(
            source.path.name,
            f"column{'s' if len(unused) > 1 else ''} {', '.join(repr(h) for h in unused)} not used, and no column "
            f"was found for {', '.join(absent)}",
            f"map it with --mapping, e.g. {table.name}: {{columns: {{'{unused[0]}': {absent[0]}}}}}"
            if len(unused) == 1 and len(absent) == 1
            else f"if one of these columns holds one of those values, map it with --mapping ({MAPPING_EXAMPLE})",
        )
    ]


def _preamble_warning(source: SourceFile, layout: CsvLayout) -> Problem:
    """Lines above the header were skipped: say so, as a title may say what the export holds."""
    above = layout.preamble
    return Problem(
        f"{source.path.name}, row {above + 1}",
        f"the header is on this row; the {above} line{'s' if above > 1 else ''} above it (blank, or a title such "
        "as the search's name) were not read",
    )


def _clean(column: str) -> str:
    """A text value as casefind reads it: surrounding spaces removed, blank as missing."""
    return f"NULLIF(trim({column}), '')"


def cleaned_columns(table: Table) -> str:
    """SQL for every column of ``table`` as casefind reads it (``_clean``), named as the schema names it.
    An end date after casefind's last year (9999-12-31, as some systems write "no end") reads as empty."""
    columns = []
    for col in table.columns:
        value = _clean(col.name)
        if col.open_end:
            value = f"CASE WHEN year(cf_date_any({value})) > {LAST_YEAR} THEN NULL ELSE {value} END"
        columns.append(f"{value} AS {col.name}")
    return ", ".join(columns)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_words(words: Iterable[str]) -> str:
    """SQL: ``words`` as a comma-separated list of string literals, for ``IN (...)`` or ``[...]``."""
    return ", ".join(_sql_str(w) for w in words)


def normalised_word_sql(column: str) -> str:
    """SQL for the relationship word casefind compares: lower case, apostrophes (straight or curly) dropped so
    "Mother's partner" and "mothers partner" agree, and runs of spaces, ``_`` and ``-`` made one space. The
    words it is compared with are ``casefind.schema``'s (``CHILD_WORDS`` ...)."""
    return (
        f"trim(regexp_replace(regexp_replace(lower({column}), '[''\u2018\u2019`\u02bc]', '', 'g'), "
        "'[\\s_\\-]+', ' ', 'g'))"
    )


def unknown_id_sql(column: str) -> str:
    """SQL: ``column`` is a placeholder for an unknown id (``UNKNOWN_IDS``, all zeros, or blank)."""
    return f"(upper(trim({column})) IN ({sql_words(UNKNOWN_IDS)}) OR trim({column}, ' 0') = '')"


# ------------------------------------------------------------------------------------------ validation


def _date_sql(expr: str) -> str:
    return f"cf_date({expr})"


def typed_date_sql(expr: str) -> str:
    """SQL for a text date as casefind types it, on a connection from ``connect``; NULL when unreadable. On a
    row without problems this is the date ``cf_date`` reads (a year out of casefind's years is a problem),
    without its second look at the year."""
    return f"cf_date_any({expr})"


def _plain_iso_date(expr: str) -> str:
    """SQL true for an ISO ``yyyy-mm-dd`` date of FIRST_YEAR-LAST_YEAR: a cheap test that only passes dates
    ``cf_date`` accepts (a property test checks this), so that the full parse runs only on the other rows."""
    years = f"{expr} BETWEEN '{FIRST_YEAR}' AND '{LAST_YEAR + 1}'"
    return f"(length({expr}) = 10 AND {years} AND TRY_CAST({expr} AS DATE) IS NOT NULL)"


# A time's zone (UTC's Z or name, GMT, or an offset: +01, +0100, +01:00), with the time's fraction of a second,
# which no format reads; the time up to its seconds is group 1 (see _define_macros).
ZONE_AFTER_TIME = "([0-9]:[0-9]{2}(:[0-9]{2})?)([.][0-9]+)? ?(?i:z|utc|gmt|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _define_macros(con) -> None:
    """``cf_date``: a date in one of DATE_FORMATS (ISO, UK, day-month name-year), NULL when invalid or the
    year is implausible (two-digit years); ``cf_date_any`` the same whatever the year.

    The two commonest layouts take a fast path: ``dd/mm/yyyy`` one format (a TRY_CAST that fails costs six
    times as much as this parse), ISO dates TRY_CAST; only other text pays for the list of formats.

    Only text starting with a digit, as every format does, is parsed: DuckDB reads words too ('epoch' is
    1970-01-01 to its cast and 1900-01-01 to try_strptime, 'infinity' 9999-12-31 or 1900-01-01), which no
    export means as a date. The test is two string comparisons (':' follows '9'), not a regular expression,
    so the fast paths stay fast.

    A zone after a time (``2024-03-01T00:30:00+01:00``, ``...Z``, ``01/03/2024 00:30 +0100``, ``... GMT``)
    leaves the date as written, the local date of whoever wrote it, never converted to UTC (which would make
    that one 29 February). DuckDB's DATE cast reads an ISO date with a time and an offset so (in every version
    from 1.1 to 2.0; its TIMESTAMP cast converted to UTC up to 1.3, so a date is never read through a
    TIMESTAMP here). For other text the zone is cut off (``ZONE_AFTER_TIME``) only once no format has read it
    (a UK date with a time and a zone), so the dates that are read pay nothing for it.
    """
    fmts = f"[{sql_words(DATE_FORMATS)}]"
    uk = "CASE WHEN s LIKE '__/__/____' THEN CAST(try_strptime(s, '%d/%m/%Y') AS DATE) END"
    # 'Sept', as UK writers abbreviate September, is not a %b name; it is made 'Sep' only for text that no
    # format read (coalesce stops at the first value), so the dates that are read pay nothing for it
    sep = r"regexp_replace(s, '^([0-9]{1,2}[- ])(?i:sept)([- ])', '\1Sep\2')"
    zoned = rf"regexp_replace({sep}, {_sql_str(ZONE_AFTER_TIME)}, '\1')"
    con.execute(
        "CREATE OR REPLACE TEMP MACRO cf_date_any(s) AS CASE WHEN s >= '0' AND s < ':' THEN "
        f"coalesce({uk}, TRY_CAST(s AS DATE), CAST(try_strptime(s, {fmts}) AS DATE), "
        f"CAST(try_strptime({sep}, {fmts}) AS DATE), CAST(try_strptime({zoned}, {fmts}) AS DATE)) END"
    )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO cf_date(s) AS "
        f"CASE WHEN year(cf_date_any(s)) BETWEEN {FIRST_YEAR} AND {LAST_YEAR} THEN cf_date_any(s) END"
    )


def nhs_number_invalid_sql(text: str, number: str) -> str:
    """SQL true where ``text`` (spaces already removed) is not 10 digits with the right modulus 11 check digit.

    ``number`` is ``TRY_CAST(text AS UBIGINT)``, worked out once by the caller: the digits are taken from it
    arithmetically. Agrees with ``casefind.codes.nhs_number_valid`` (a property test checks it); runs inside
    DuckDB so a million patients cost no Python loop.
    """
    total = " + ".join(f"({number} // {10 ** (10 - i)} % 10) * {11 - i}" for i in range(1, 10))
    return f"(NOT regexp_full_match({text}, '[0-9]{{10}}') OR (11 - ({total}) % 11) % 11 <> {number} % 10)"


# A value in a message is quoted only when it has the shape of what the column should hold: in the wrong
# column (a shifted row, a header mapped to the wrong column) it could be a name or an NHS number, and no
# message carries those. Names have no digits; NHS numbers and most identifiers have no date separators.
# (a month of one or two digits in the middle: an NHS number written 943 476 5919 is not date-shaped)
_TIME = "([ T][0-9]{1,2}(:[0-9]{1,2}){1,2}([.][0-9]{1,9})?)?"
_MONTH_NAME = "(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}"  # 'Mar', 'March', 'Sept'
DATE_SHAPED = (
    f"([0-9]{{1,4}}[-/. ][0-9]{{1,2}}([-/. ][0-9]{{1,4}})?|[0-9]{{1,2}}[- ]{_MONTH_NAME}[- ][0-9]{{1,4}}){_TIME}"
)
# Characters that show as nothing, pasted in with a code or left around it by a tool: zero-width space,
# non-joiner and joiner, word joiner, and a byte-order mark inside a file. DuckDB's trim leaves them.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
CODE_NOT_IN = ('"', ",", " ", "'", "\t", "\u00a0", *INVISIBLE)  # characters no code holds (\u00a0: no-break space)
CODE_SHAPED = (  # digits split by one of them ('3421 91'), or with invisible characters around them
    f"[0-9.]*[0-9][0-9.]*[ ,\"'\t\u00a0{''.join(INVISIBLE)}]+[0-9.]*"
    f"|[{''.join(INVISIBLE)}]+[0-9.]*[0-9][0-9.]*[{''.join(INVISIBLE)}]*"
)
CHOICE_SHAPED = (
    "[A-Za-z_ ]{0,2}|[A-Za-z]{3}[A-Za-z_ -]*[0-9]{1,2}"  # one or two letters, or a word and a number: 'icd10'
)
_STATUS_WORD = "(?i:" + "|".join(STATUS_WORDS) + ")"
STATUS_SHAPED = f"{_STATUS_WORD}([ _/-]+{_STATUS_WORD})*"  # 'Walked Out', 'Cancelled', 'did-not-attend'
TWO_DIGIT_YEAR = f"[0-9]{{1,2}}([-/.][0-9]{{1,2}}[-/.]|[- ]{_MONTH_NAME}[- ])[0-9]{{2}}([ T].*)?"
NHS_NUMBER_RUN = "(^|[^0-9])[0-9]{10}([^0-9]|$)"
# ... or ten digits as a spreadsheet writes the number: 9.99124E+09 (its first digits are an NHS number's)
NHS_NUMBER_AS_NUMBER = "[0-9]([.][0-9]*)?[eE][+]?0*9$"
DIGITS_SHAPED = "[0-9.]*[0-9][0-9.]*"  # a SNOMED CT code (or a Read code of digits): digits and points


@dataclass(frozen=True)
class DateMistake:
    """A date written in a way casefind does not read, which says what went wrong (``condition``: SQL on the
    cleaned value ``{c}``): the message names the kind of mistake and its hint the fix. Digits are never shown:
    yyyymmdd and a spreadsheet's serial number have the shape of an identifier, which may be in the wrong
    column. A ``placeholder`` is one of a few words no one is called, so it is quoted, except in a column that
    identifies a patient (a date of birth or death), where no value is ever shown."""

    condition: str
    problem: str
    hint: str
    placeholder: bool = False

    def message(self, column: str, col: Column) -> str:
        """SQL text: the problem, with the placeholder word where it may be shown."""
        if self.placeholder and not col.identifies_patient:
            return f"'invalid date ''' || {column} || ''': {self.problem}'"
        return _sql_str(f"invalid date: {self.problem}")


DATE_PLACEHOLDER = "(?i:null|nan|nat|none|n/a|#n/a)"  # what exports and dataframes write for no value
DATE_MISTAKES = (
    DateMistake(
        f"regexp_full_match({{c}}, {_sql_str(DATE_PLACEHOLDER)})",
        "a placeholder for an unknown date",
        "the export should leave an unknown date blank: a word such as NULL or NaN is not read as a blank",
        placeholder=True,
    ),
    DateMistake(  # 20240301: only a valid date in casefind's years, so another 8-digit number is not called one
        f"regexp_full_match({{c}}, '[0-9]{{{{8}}}}') AND year(try_strptime({{c}}, '%Y%m%d')) "
        f"BETWEEN {FIRST_YEAR} AND {LAST_YEAR}",
        "8 digits without separators (yyyymmdd)",
        "export dates as yyyy-mm-dd",
    ),
    DateMistake(  # 45352 is 2024-03-01 to Excel (days since 1900); a time of day adds a fraction
        "regexp_full_match({c}, '[1-9][0-9]{{4}}([.][0-9]+)?')",
        "a spreadsheet's serial number for a date (days since 1900), not the date",
        "format the column as a date (yyyy-mm-dd) before saving it from the spreadsheet",
    ),
)
_CODE_CHAR = "[^" + "".join(CODE_NOT_IN) + "]"
SPREADSHEET_TEXT_CODES = (  # (shape, SQL for the code inside it, the problem, its hint): how Excel keeps a code text
    (
        f"'{_CODE_CHAR}+",
        "substr({c}, 2)",
        "is written with Excel's text prefix, an apostrophe in front of it",
        "remove the apostrophe in front of each code: export the codes as text, without opening them in a spreadsheet",
    ),
    (
        f'="{_CODE_CHAR}+"',
        "substr({c}, 3, length({c}) - 3)",
        'is written inside Excel\'s ="..." formula, which keeps it text',
        'remove the =" and " around each code: export the codes as text, without opening them in a spreadsheet',
    ),
)
NOT_SHOWN = "(not shown: it may be a name or an identifier in the wrong column)"


def _echo(expr: str, shape: str, visible: bool = False) -> str:
    """SQL text: ``expr`` in quotes if it matches the regular expression ``shape`` and holds no run of exactly
    ten digits (an NHS number's length), nor a number of ten digits as a spreadsheet writes it (9.99124E+09),
    else NOT_SHOWN. ``visible``: INVISIBLE characters are written ``<U+200B>``, so that the user sees what to
    remove."""
    text = expr
    for ch in INVISIBLE if visible else ():
        text = f"replace({text}, {_sql_str(ch)}, '<U+{ord(ch):04X}>')"
    quoted = f"'''' || {text} || ''''"
    nhs_number = f"{NHS_NUMBER_RUN}|{NHS_NUMBER_AS_NUMBER}"
    shown = f"regexp_full_match({expr}, {_sql_str(shape)}) AND NOT regexp_matches({expr}, {_sql_str(nhs_number)})"
    return f"CASE WHEN {shown} THEN {quoted} ELSE {_sql_str(NOT_SHOWN)} END"


def _shown_date(expr: str, col: Column) -> str:
    """SQL text for a date in a message (see ``_echo``); for a date that identifies a patient (a date of
    birth) only its layout, digits written n: ``nn/nn/nn (digits hidden: it identifies a patient)``."""
    if not col.identifies_patient:
        return _echo(expr, DATE_SHAPED)
    layout = f"regexp_replace({expr}, '[0-9]', 'n', 'g') || ' (digits hidden: it identifies a patient)'"
    return f"CASE WHEN regexp_full_match({expr}, {_sql_str(DATE_SHAPED)}) THEN {layout} ELSE {_sql_str(NOT_SHOWN)} END"


def _choice_shape(col: Column) -> str:
    """The shape (see ``_echo``) of a value of ``col``, a column with a fixed set of values, that a message may
    quote: one or two letters, or a word and a number ('icd10'); for the appointment status also any value made
    only of STATUS_WORDS, with spaces, hyphens, underscores or slashes between them ('Walked Out', 'Cancelled',
    'did-not-attend'). Those words are no one's name, and the user needs to see the export's word to map it;
    anything else (a name in the wrong column) is not shown."""
    return f"{CHOICE_SHAPED}|{STATUS_SHAPED}" if col.name == "status" else CHOICE_SHAPED


def _choice_sql(expr: str, col: Column, mapping: TableMapping) -> str:
    """SQL for a value of ``col`` as the schema spells its choices: ``choice_key``, then the export's spellings
    (``TableMapping.aliases``)."""
    key = _choice_key_sql(expr)
    aliases = mapping.aliases(col.name)
    if not aliases:
        return key
    cases = " ".join(f"WHEN {_sql_str(k)} THEN {_sql_str(v)}" for k, v in aliases.items())
    return f"(CASE {key} {cases} ELSE {key} END)"


@dataclass(frozen=True)
class Check:
    """One row-local rule: ``condition`` (SQL on cleaned values, true when a row breaks it) and the
    ``message`` it gives.

    ``screen`` is the same rule read on the values as they are in the file (not trimmed): true for every
    row that might break the rule once cleaned, so the pass over millions of rows needs no trimming.
    ``None`` when ``condition`` is already such a test (a value with spaces around it only ever fails more
    of these conditions, never fewer); a property test checks the screens against the conditions.

    ``whole_row``: the screen reads other columns than ``column`` (most read only their own column, so that
    ``_screens`` can test each distinct value of that column once instead of every row).

    A message may name another row (``REF_ROW`` in its text; ``ref_row`` is its ``_row``, SQL, and
    ``ref_table`` its table): that row number is turned into the one a spreadsheet shows with the others.
    ``knock_on`` marks a row that is only bad because another row is: when the run stops, such rows are
    counted, not listed one by one.
    """

    column: str
    condition: str
    message: str  # an SQL text expression, evaluated only where ``condition`` holds
    hint: str | None = None
    screen: str | None = None
    ref_row: str = "NULL"
    ref_table: str | None = None
    knock_on: bool = False
    whole_row: bool = False

    @property
    def on_file_values(self) -> str:
        return self.screen or self.condition


REF_ROW = "<row>"  # stands for the row number a message names, until it is as a spreadsheet shows it
_SWAPPED = "swapped, or a year mistyped?"
DATES_IN_ORDER = {  # table -> (the later date, the earlier one, the problem when it is before, its hint)
    "patients": (
        ("date_of_death", "date_of_birth", "date of death is before date of birth",
         "check both dates in the practice system: one of them is mistyped"),
        ("registered_to", "registered_from", "registration ends before it starts",
         f"check registered_from and registered_to ({_SWAPPED})"),
    ),
    "relationships": (
        ("end_date", "start_date", "relationship ends before it starts", f"check start_date and end_date ({_SWAPPED})"),
    ),
    "concerns": (
        ("resolved_on", "raised_on", "concern resolved before it was raised",
         f"check raised_on and resolved_on ({_SWAPPED})"),
    ),
}  # fmt: skip


def _checks(table: Table, mapping: TableMapping, cut_codes: dict[str, str] | None = None) -> list[Check]:
    """Every rule of ``table`` that one row can be checked against (the duplicate-key check is separate).
    ``mapping``: the export's spellings of a column's choices (``TableMapping.aliases``).

    ``cut_codes``: protocol codes as a spreadsheet would cut them -> the code (see ``_read_tables``).
    """
    checks = []
    for col in table.columns:
        c = col.name
        if col.required:  # blank once trimmed: empty, or starting with a space (or a control character)
            checks.append(
                Check(
                    c,
                    f"{c} IS NULL",
                    "'missing required value'",
                    f"every row needs a value in {c}: fill it in, or leave the row out of the export",
                    screen=f"{c} IS NULL OR {c} < '!'",
                )
            )
        if col.type == "code":
            # a tab, a zero-width space or Excel's ' text prefix would stop the code ever matching
            not_a_word = " OR ".join(f"contains({c}, {_sql_str(ch)})" for ch in CODE_NOT_IN)
            for shape, inner, problem, hint in SPREADSHEET_TEXT_CODES:
                checks.append(
                    Check(
                        c,
                        f"regexp_full_match({c}, {_sql_str(shape)})",
                        f"'code ' || {_echo(inner.format(c=c), DIGITS_SHAPED)} || {_sql_str(' ' + problem)}",
                        hint,
                        screen=not_a_word,
                    )
                )
            text_codes = " OR ".join(f"regexp_full_match({c}, {_sql_str(s)})" for s, *_ in SPREADSHEET_TEXT_CODES)
            checks.append(
                Check(
                    c,
                    f"({not_a_word}) AND NOT ({text_codes})",
                    f"'code ' || {_echo(c, CODE_SHAPED, visible=True)} || ' contains a quote, comma, apostrophe, "
                    "tab, space or invisible character'",
                    "a code is one word, such as 342191000000101 or 13Iv.; check the quoting, and remove "
                    "anything typed or exported around it",
                    screen=not_a_word,
                )
            )
            checks.append(
                Check(  # Excel shows 342191000000101 as 3.42191E+14 and saves it so: the digits are gone
                    c,
                    f"regexp_full_match({c}, {_sql_str(SPREADSHEET_NUMBER)})",
                    f"'code ' || {_echo(c, SPREADSHEET_NUMBER)} || ' is a number as a spreadsheet writes it: the "
                    "code''s digits are lost'",
                    "export again without opening the file in a spreadsheet, or format the code column as text",
                    # each such number holds a digit, a point and a digit, or a digit, an E and a sign
                    screen=f"regexp_matches({c}, '[0-9][.][0-9]|[0-9][eE][+-]')",
                )
            )
            if cut_codes:
                whole = " ".join(f"WHEN {_sql_str(k)} THEN {_sql_str(v)}" for k, v in sorted(cut_codes.items()))
                checks.append(
                    Check(
                        c,
                        f"{c} IN ({sql_words(sorted(cut_codes))})",
                        f"'code ''' || {c} || ''' is the protocol''s code ' || (CASE {c} {whole} END) || ' with "
                        "its last digits lost: a spreadsheet keeps 15 digits of a number'",
                        "export again without opening the file in a spreadsheet, or format the code column as text",
                    )
                )
        if col.type == "date":
            invalid = f"{c} IS NOT NULL AND NOT {_plain_iso_date(c)} AND {_date_sql(c)} IS NULL"
            mistakes = [(f"coalesce({m.condition.format(c=c)}, false)", m) for m in DATE_MISTAKES]
            for condition, mistake in mistakes:
                checks.append(Check(c, f"{invalid} AND {condition}", mistake.message(c, col), mistake.hint, invalid))
            shown = _shown_date(c, col)
            checks.append(
                Check(
                    c,
                    f"{invalid} AND NOT ({' OR '.join(condition for condition, _ in mistakes)})",
                    f"CASE WHEN regexp_full_match({c}, {_sql_str(TWO_DIGIT_YEAR)}) "
                    f"THEN 'date ' || {shown} || ' has a two-digit year' "
                    f"WHEN cf_date_any({c}) IS NULL THEN 'invalid date ' || {shown} "
                    f"ELSE 'date ' || {shown} || ' has a year outside {FIRST_YEAR}-{LAST_YEAR}' END",
                    DATE_HINT,
                    invalid,
                )
            )
        if col.choices:
            allowed = sql_words(col.choices)
            checks.append(
                Check(
                    c,  # values already spelt as the schema spells them pass the cheap test first
                    f"{c} IS NOT NULL AND {c} NOT IN ({allowed}) AND {_choice_sql(c, col, mapping)} NOT IN ({allowed})",
                    f"'unknown value ' || {_echo(c, _choice_shape(col))} || "
                    f"' (expected one of: {', '.join(col.choices)})'",
                    CHOICE_HINTS.get(c),
                )
            )
    for later, earlier, problem, hint in DATES_IN_ORDER.get(table.name, ()):
        # the IS NOT NULL tests first spare the date parsing on the many rows without an end date
        condition = f"{later} IS NOT NULL AND {earlier} IS NOT NULL AND {_date_sql(later)} < {_date_sql(earlier)}"
        checks.append(Check(later, condition, _sql_str(problem), hint, whole_row=True))
    if table.name != "patients" and "patient_id" in table.column_names:  # rejected_patients: see _read_tables
        unknown = "patient_id IS NOT NULL AND patient_id NOT IN (SELECT patient_id FROM patients)"
        if table.name == "relationships":
            checks += _relationship_patient_checks(unknown)
            return checks
        checks += [
            Check(
                "patient_id",
                f"{unknown} AND patient_row IS NULL",
                "'unknown patient_id (not in the patients file)'",
                f"export {table.name} for the same patients as the patients file",
                screen=unknown,
            ),
            _patient_row_check(unknown),
        ]
    return checks


def _patient_row_check(unknown: str) -> Check:
    """The knock-on check of a row whose patient's row in the patients file has a problem (``unknown``: SQL true
    when its patient_id is not in the patients file, the screen that picks the row)."""
    return Check(
        "patient_id",
        "patient_row IS NOT NULL",
        f"'its patient''s row in the patients file has a problem (row {REF_ROW})'",
        "fix that row, and this one is read with it",
        screen=unknown,
        ref_row="patient_row",
        ref_table="patients",
        knock_on=True,
    )


def _relationship_patient_checks(unknown: str) -> list[Check]:
    """The checks of a relationships row's patient_id against the patients file (``unknown``: SQL true when
    it is not there). One registered patient is enough: a relative who is not registered here is normal
    (registered elsewhere), and a row recorded from the parent's side (``mother_id,child_id,son``) names the
    parent as patient_id. Such a row is read, and used or not by ``_unlinked_relationships``. A row naming no
    registered patient links no one here: that is a problem, and so is a row whose only registered patient
    has a problem in the patients file (a knock-on problem: fixed with that row)."""
    # related_row: related_patient_id's row in the patients file, when it has a problem (``_collect_problems``)
    related_here = "coalesce(related_patient_id IN (SELECT patient_id FROM patients), false)"
    return [
        Check(
            "patient_id",
            f"{unknown} AND patient_row IS NULL AND related_row IS NULL AND NOT {related_here}",
            "'unknown patient_id and related_patient_id (neither is in the patients file)'",
            "a row links a patient of the patients file to a relative: export relationships for the same "
            "patients as the patients file",
            screen=unknown,
        ),
        _patient_row_check(unknown),
        Check(
            "patient_id",
            f"{unknown} AND patient_row IS NULL AND related_row IS NOT NULL",
            "'patient_id is not in the patients file, and related_patient_id''s row there has a problem "
            f"(row {REF_ROW})'",
            "fix that row, and this one is read with it",
            screen=unknown,
            ref_row="related_row",
            ref_table="patients",
            knock_on=True,
        ),
    ]


def patient_rows_sql(table: Table) -> str:
    """SQL joining a row of ``table`` to its patient's first row in the patients file when that has a problem
    (``patient_row``, from ``rejected_patients``) and, for relationships, the related patient's (``related_row``,
    for ``_relationship_patient_checks``): what the knock-on checks read."""
    sql = "LEFT JOIN rejected_patients USING (patient_id)"
    if "related_patient_id" in table.column_names:
        sql += (
            " LEFT JOIN (SELECT patient_id AS related_patient_id, patient_row AS related_row FROM rejected_patients)"
            " USING (related_patient_id)"
        )
    return sql


def _collect_problems(
    con,
    table: Table,
    mapping: TableMapping,
    rows: str,
    source: SourceFile,
    keep: str | None = None,
    cut_codes: dict[str, str] | None = None,
) -> str:
    """Insert every problem of ``src_<table>`` into the ``problems`` table (one row per problem).

    ``rows`` holds every row with its key cleaned (``raw_<table>``, or the typed table): the duplicate-key
    check reads it.

    One pass over the rows as they are in the file copies those that might break a rule (each rule's
    screen, see ``_screens``), or that ``keep`` (an SQL condition) asks for, into a small table
    ``checked_<table>``, cleaned; its name is returned. The problems are then worked out from that table
    alone, with the rules' conditions on the cleaned values, on the rows a screen picked (``_screened``): a
    row no screen picks breaks no rule. The millions of good rows are never trimmed.
    ``cut_codes``: see ``_checks``.
    """
    checks = _checks(table, mapping, cut_codes)
    checked = f"checked_{table.name}"
    screened = " OR ".join(_screens(con, table, checks)) or "false"
    # _screened: the row might break a rule; the others are here only because ``keep`` asked for them
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {checked} AS SELECT _row, {cleaned_columns(table)}, "
        f"{screened if keep else 'true'} AS _screened "
        f"FROM src_{table.name} WHERE {f'({keep}) OR {screened}' if keep else screened}"
    )
    structs = ", ".join(
        f"{{'col': {_sql_str(c.column)}, 'problem': CASE WHEN {c.condition} THEN {c.message} END, "
        f"'hint': {_sql_str(c.hint) if c.hint else 'NULL'}, 'ref_tbl': {_sql_str(c.ref_table or '')}, "
        f"'ref_row': {c.ref_row}, 'knock_on': {c.knock_on}}}"
        for c in checks
    )
    patient_rows = patient_rows_sql(table) if any(c.ref_table for c in checks) else ""
    src, tbl = _sql_str(source.path.name), _sql_str(table.name)
    # A row with every field blank (",,,,," as a spreadsheet can leave below the data) holds nothing to lose:
    # it is left out like a blank line, and counted in a warning, not reported as missing values.
    every_blank = " AND ".join(f"{c} IS NULL" for c in table.column_names)
    if screened != "false":  # else no value failed a screen (the usual case): no row breaks a rule
        con.execute(f"INSERT INTO empty_rows SELECT {tbl}, _row FROM {checked} WHERE {every_blank}")
        con.execute(
            f"""
            INSERT INTO problems
            SELECT {tbl}, {src}, _row, chk.col, chk.problem, chk.hint, chk.ref_tbl, chk.ref_row, chk.knock_on FROM (
                SELECT _row, unnest([{structs}]) AS chk FROM {checked} {patient_rows}
                WHERE _screened AND NOT ({every_blank})
            ) WHERE chk.problem IS NOT NULL
            """
        )
    if table.unique:
        _duplicate_keys(con, table, rows, src)
    return checked


def _duplicate_keys(con, table: Table, rows: str, src: str) -> None:
    """Insert a problem for every row of ``rows`` whose key another row has too: the later ones name the first
    row, the first names the second. The first row is left out too: an id on two rows is ambiguous, and the
    other tables' rows with that id (events, relationships) could belong to either patient; kept with the
    first, they would be put on the wrong child's record. Every row of that id out, they are knock-on rows
    like those of any rejected patient (``rejected_patients``)."""
    key, tbl = table.unique[0], _sql_str(table.name)
    con.execute(
        f"""
        INSERT INTO problems
        SELECT {tbl}, {src}, r._row, {_sql_str(key)},
               CASE WHEN r._row = d.first_row THEN 'duplicate {key} (also on row {REF_ROW})'
                    ELSE 'duplicate {key} (first seen on row {REF_ROW})' END,
               'each {key} must appear once: give each patient their own (--skip-bad-rows leaves out every row '
               || 'with it, in every file)',
               {tbl}, CASE WHEN r._row = d.first_row THEN d.second_row ELSE d.first_row END, false
        FROM {rows} r
        JOIN (SELECT {key}, min(_row) AS first_row, list_sort(list(_row))[2] AS second_row FROM {rows}
              WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1) d USING ({key})
        """
    )


def _screens(con, table: Table, checks: list[Check]) -> list[str]:
    """SQL conditions that together pick every row of ``src_<table>`` that a check's screen picks.

    A screen that reads only its own column is worked out once for each distinct value of that column (a few
    thousand codes or dates among millions of events), into ``screened_<table>_<column>``; the rows are then
    picked by value, and not at all when no value fails (the usual case). On 50 million events the screens
    take three quarters of the time of testing each row (1.0 s against 1.35 s); on 5 million dd/mm/yyyy
    dates the date screen takes a tenth (0.06 s against 0.60 s).
    Screens that read the whole row (``Check.whole_row``) are tested row by row, and so is a table with a
    unique key (patients): with a row per patient, its columns have almost as many values as rows, and one
    pass over a million rows costs half as much as a DISTINCT of each column.
    """
    by_value = not table.unique
    row_screens: list[str] = []
    by_column: dict[str, list[str]] = {}
    for check in checks:
        screens = by_column.setdefault(check.column, []) if by_value and not check.whole_row else row_screens
        screens.append(f"({check.on_file_values})")
    conditions = list(dict.fromkeys(row_screens))
    for column, screens in by_column.items():
        failing = f"screened_{table.name}_{column}"
        # two statements: in one, DuckDB would move the screens below the DISTINCT, onto every row again
        con.execute(f"CREATE OR REPLACE TEMP TABLE {failing} AS SELECT DISTINCT {column} FROM src_{table.name}")
        con.execute(f"DELETE FROM {failing} WHERE NOT coalesce({' OR '.join(dict.fromkeys(screens))}, false)")
        [(values, blank)] = con.execute(f"SELECT count({column}), count(*) - count({column}) FROM {failing}").fetchall()
        if blank:  # NULL IN (...) is never true: a missing value that fails is picked by its own condition
            conditions.append(f"({column} IS NULL)")
        if values:
            conditions.append(f"({column} IN (SELECT {column} FROM {failing}))")
    return conditions


def _typed_choice_sql(expr: str, col: Column, mapping: TableMapping) -> str:
    """SQL: a choice column's value as the schema spells it (``_choice_sql``), or its default when blank: as
    the typed table holds it."""
    sql = _choice_sql(expr, col, mapping)
    return f"coalesce({sql}, {_sql_str(col.default)})" if col.default else sql


def _typed_select(
    table: Table, mapping: TableMapping, raw: str, where: str | None = None, every_row: bool = False
) -> str:
    """SELECT the rows of ``raw`` typed: dates as dates, choices as the schema spells them.

    Rows with a problem are left out, unless ``every_row`` (the caller then deletes them). Dates are read
    by ``typed_date_sql``.
    """
    cols = ["_row"]
    for col in table.columns:
        if col.type == "date":
            cols.append(f"{typed_date_sql(col.name)} AS {col.name}")
        elif col.choices:
            cols.append(f"{_typed_choice_sql(col.name, col, mapping)} AS {col.name}")
        elif col.type == "nhs_number":  # written 943 476 5919 or 943-476-5919: the digits are the number
            cols.append(f"replace(replace({col.name}, ' ', ''), '-', '') AS {col.name}")
        else:
            cols.append(col.name)
    conditions = [] if every_row else [f"_row NOT IN {left_out_rows_sql(table)}"]
    conditions += [f"({where})"] if where else []
    return f"SELECT {', '.join(cols)} FROM {raw}" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")


def left_out_rows_sql(table: Table) -> str:
    """SQL: the rows (``_row``) of ``table`` left out, those with a problem and those with every field blank
    (the ``problems`` and ``empty_rows`` tables ``read_extract`` fills)."""
    tbl = _sql_str(table.name)
    return f"(SELECT row FROM problems WHERE tbl = {tbl} UNION ALL SELECT row FROM empty_rows WHERE tbl = {tbl})"


def _empty_table(con, table: Table) -> None:
    """An absent optional table reads as empty, so engines never need to ask whether it exists."""
    cols = ", ".join(f"{c.name} {'DATE' if c.type == 'date' else 'VARCHAR'}" for c in table.columns)
    con.execute(f"CREATE TEMP TABLE {table.name} (_row BIGINT, {cols})")


def connect(threads: int | None = None, memory_limit: str = "1500MB") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with limits suited to a 2-core practice PC.

    Whatever DuckDB spills to disk when memory runs short goes to a private folder (mode 0700) that is
    removed with the connection, not to DuckDB's default ``.tmp`` in the working folder.
    """
    spill = tempfile.mkdtemp(prefix="casefind-spill-")
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
    weakref.finalize(con, shutil.rmtree, spill, ignore_errors=True)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    # DuckDB draws its own bar on the terminal for a query over two seconds, in the middle of casefind's output
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")  # row numbers come from the files (see _register_raw)
    # Nothing here is ever persisted, so an automatic checkpoint (DuckDB checkpoints in-memory tables too, once
    # the write-ahead log passes checkpoint_threshold) is pure cost: after a large CSV was copied in, it took
    # a second and a third more memory on a 5M-event extract.
    con.execute("SET checkpoint_threshold = '1TB'")
    # Times shown and worked out in UK time, where the practice is, not in the computer's zone (a Parquet
    # instant's date is taken there explicitly: _parquet_text).
    con.execute(f"SET TimeZone = {_sql_str(PRACTICE_TIME_ZONE)}")
    _define_macros(con)
    return con


def read_extract(
    data_dir: str | Path,
    *,
    mapping: str | Path | None = None,
    skip_bad_rows: bool = False,
    event_codes: Iterable[str] | None = None,
    code_systems: Iterable[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Extract:
    """Read and validate every extract table in ``data_dir``; see the module docstring for the rules.

    ``event_codes``: when given, the typed ``events`` table keeps only the events with one of these codes
    (every row is still validated). A protocol needs only its own codes, and at ICB scale this turns
    50 million events into a table of thousands, in the same pass that picks out the bad rows.

    ``code_systems``: with ``event_codes``, the code systems of the codelists those codes come from
    (``snomed``, ``read2`` ...). An event coded under any other is never read, whatever its code: a warning
    counts them per code system (``_unread_code_systems``).
    """
    data_dir = Path(data_dir)
    if data_dir.is_file():
        raise ExtractError(
            Problem(str(data_dir), "this is a file; casefind reads a folder of files", "pass the folder holding it")
        )
    if not data_dir.is_dir():
        raise ExtractError(
            Problem(str(data_dir), "no such directory", "pass the folder holding patients.csv and events.csv")
        )
    try:
        next(data_dir.iterdir(), None)
    except OSError as exc:
        raise ExtractError(
            Problem(str(data_dir), f"cannot be read: {exc.strerror}", "check that you may open this folder")
        ) from None
    table_maps = load_mapping(mapping)
    con = con or connect()
    workdir = Path(tempfile.mkdtemp(prefix="casefind-"))
    try:
        return _read(con, data_dir, table_maps, skip_bad_rows, event_codes, code_systems, workdir)
    finally:
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


def _read(
    con,
    data_dir: Path,
    table_maps: dict,
    skip_bad_rows: bool,
    event_codes: Iterable[str] | None,
    code_systems: Iterable[str] | None,
    workdir: Path,
) -> Extract:
    files: dict[str, SourceFile] = {}
    missing, absent = [], []  # required files not found, or not found alone (an error); optional ones (a warning)
    for table in TABLES.values():
        try:
            path = _find_file(data_dir, table, table_maps.get(table.name))
        except ExtractError as exc:  # listed with the other files' problems
            missing += exc.problems
            continue
        if path is None:
            no_file = f"no {table.name}.csv or {table.name}.parquet"
            if folder := _folder_named_as_file(data_dir, table):  # not "no patients.csv (found: patients.csv)"
                no_file += f" file: {folder.name} is a folder"
            if table.required:
                present = ", ".join(sorted(p.name for p in data_dir.iterdir())) or "nothing"
                missing.append(
                    Problem(str(data_dir), f"{no_file} (found: {present})", _missing_file_hint(data_dir, table))
                )
            else:
                absent.append(
                    Problem(data_dir.name, f"{no_file}: {table.if_absent}",
                            _missing_file_hint(data_dir, table, optional=True))
                )  # fmt: skip
            continue
        if problem := _unreadable(path):
            missing.append(problem)
            continue
        files[table.name] = SourceFile(table.name, path, "parquet" if path.suffix.lower() == ".parquet" else "csv")
    if missing:
        raise ExtractError(missing)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="casefind-sha256") as hasher:
        # each file's SHA-256 (for provenance) is worked out while DuckDB reads, not in a pass before it
        hashes = {name: hasher.submit(_sha256, source.path) for name, source in files.items()}
        extract = _read_tables(con, files, table_maps, skip_bad_rows, event_codes, code_systems, workdir)
    extract.files = {name: replace(source, sha256=hashes[name].result()) for name, source in extract.files.items()}
    extract.warnings[:0] = absent
    return extract


def _unreadable(path: Path) -> Problem | None:
    """Why the file ``path`` cannot be read, or None: opened here, before any work, so that a file another
    program holds (on Windows, Excel locks a file it has open) or one the user may not read is named with its
    reason, not an internal error part way through the run."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return Problem(str(path), f"cannot be read: {exc.strerror or type(exc).__name__}", UNREADABLE_HINT)
    return None


UNREADABLE_HINT = (
    "close it in any program that has it open (Excel locks the files it has open), and check that you may read it"
)


def _folder_named_as_file(data_dir: Path, table: Table) -> Path | None:
    """A folder named as the table's file would be (``patients.csv``, as Spark names the folder of a table it
    writes), in any case."""
    names = (f"{table.name}.csv", f"{table.name}.parquet")
    return next((p for p in sorted(data_dir.iterdir()) if p.name.lower() in names and p.is_dir()), None)


def _missing_file_hint(data_dir: Path, table: Table, optional: bool = False) -> str:
    """How to give casefind the table's file: name a file that is there in another format, or say how."""
    folders = [p for p in data_dir.iterdir() if p.is_dir() and p.name.lower() in (table.name, f"{table.name}.parquet")]
    if parts := [f for f in folders if any(f.glob("*.parquet"))]:
        return (
            f"{parts[0].name} is a folder of part files, as Spark writes a table; casefind reads one file per "
            f"table: write it as one (in Spark, .coalesce(1); or with DuckDB, COPY (FROM '{parts[0].name}/*.parquet') "
            f"TO '{table.name}_all.parquet') and map it: {table.name}: {{file: {table.name}_all.parquet}}"
        )
    if folder := _folder_named_as_file(data_dir, table):
        inside = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".csv", ".parquet") and p.is_file())
        if len(inside) == 1:
            mapped = f"{folder.name}/{inside[0]}"
            return f"casefind reads a file, not a folder: map the file in it: {table.name}: {{file: {mapped}}}"
        return (
            f"casefind reads one file per table, not a folder: put the table's file here as {table.name}.csv, "
            f"or name it in a mapping file: {table.name}: {{file: ...}}"
        )
    near = sorted(p.name for p in data_dir.iterdir() if p.stem.lower() == table.name and p.is_file())
    if any(name.lower().endswith((".xlsx", ".xls")) for name in near):
        return f"casefind reads CSV or Parquet, not {near[0]}: in Excel, File > Save As > CSV UTF-8 ({table.name}.csv)"
    if near:
        return (
            f"found {near[0]}: name it {table.name}.csv if it is a CSV file, "
            f"or map it: {table.name}: {{file: {near[0]}}}"
        )
    if optional:
        return f"if your system exports it, save it here as {table.name}.csv (`casefind schema` lists its columns)"
    return f"name the file {table.name}.csv, or set '{table.name}: {{file: ...}}' in a mapping file"


def _read_tables(
    con,
    files: dict[str, SourceFile],
    table_maps: dict,
    skip_bad_rows: bool,
    event_codes: Iterable[str] | None,
    code_systems: Iterable[str] | None,
    workdir: Path,
) -> Extract:

    con.execute(
        "CREATE TEMP TABLE problems (tbl VARCHAR, file VARCHAR, row BIGINT, col VARCHAR, problem VARCHAR, "
        "hint VARCHAR, ref_tbl VARCHAR, ref_row BIGINT, knock_on BOOLEAN)"
    )
    con.execute("CREATE TEMP TABLE empty_rows (tbl VARCHAR, row BIGINT)")  # see _collect_problems
    keep, cut_codes = None, None
    if event_codes is not None:
        event_codes = set(event_codes)
        cut_codes = {k: code for code in event_codes if (k := spreadsheet_cut(code)) and k not in event_codes}
        con.execute(
            "CREATE TEMP TABLE event_codes AS SELECT DISTINCT unnest(?::VARCHAR[]) AS code", [sorted(event_codes)]
        )
        # read on the file's values too: a code with spaces around it is kept anyway, by the code check's screen
        keep = "code IN (SELECT code FROM event_codes)"
    rows_read, header_warnings, problems, total = {}, [], [], 0
    for table in TABLES.values():  # every file's header before any row, so that all their problems are listed
        if table.name not in files:
            _empty_table(con, table)
            continue
        source = files[table.name]
        try:
            with _reading(con, source):
                raw, layout, column_warnings, number_ids = _register_raw(
                    con, source, table, table_maps.get(table.name), workdir
                )
                rows_read[table.name] = con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
                if not rows_read[table.name]:
                    column_warnings.append(_no_rows(source, table))
        except ExtractError as exc:
            problems, total = problems + exc.problems, total + exc.total
            continue
        header_warnings += column_warnings
        if layout and layout.preamble:
            header_warnings.append(_preamble_warning(source, layout))
        files[table.name] = replace(source, csv=layout, number_ids=number_ids)
    problems += _leading_zero_ids(con, files)
    if problems:
        raise ExtractError(problems, total=total)
    for table in (t for t in TABLES.values() if t.name in files):  # patients first: the others are checked against it
        with _reading(con, files[table.name]):
            header_warnings += _read_rows(
                con, table, files[table.name], table_maps.get(table.name) or TableMapping(), keep, cut_codes
            )
        if table.name == "patients":
            _refuse_no_patients(con, files["patients"], skip_bad_rows)

    if keep and rows_read.get("events") and not con.execute("SELECT count(*) FROM events").fetchone()[0]:
        header_warnings.append(
            Problem(
                files["events"].path.name,
                f"none of its {rows_read['events']} events has a code from the protocol's codelists, so no "
                "criterion read from codes can be met",
                "check that the code column holds the codes themselves (SNOMED CT concept ids such as "
                "342191000000101, or the protocol's code systems), with nothing around them",
            )
        )
    order = "CASE tbl " + " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(TABLES)) + " END, row, col"
    columns = "tbl, file, row, col AS column, problem, hint, ref_tbl, ref_row, knock_on"
    rejects = con.execute(f"SELECT {columns} FROM problems ORDER BY {order}").df()
    if len(rejects) and not skip_bad_rows:
        raise _stop(rejects, files)
    if keep and code_systems is not None:
        with _reading(con, files["events"]):
            header_warnings += _unread_code_systems(
                con, files["events"], table_maps.get("events") or TableMapping(), set(code_systems)
            )
    rejects = _past_blank_lines(_with_records(con, rejects, files), files)
    blank = dict(con.execute("SELECT tbl, count(*) FROM empty_rows GROUP BY tbl").fetchall())
    return Extract(
        con,
        files,
        {table: n - blank.get(table, 0) for table, n in rows_read.items()},  # the rows that hold something
        rejects[["file", "row", "column", "problem", "record"]],
        header_warnings + _warnings(con, files),
    )


def _leading_zero_ids(con, files: dict[str, SourceFile]) -> list[Problem]:
    """Patient ids stored as integers in one Parquet file and as text with leading zeros in another: the
    number has lost the zeros (00123 is 123), so the ids cannot match, and nothing else would say so: an
    event of an unknown patient is a bad row, but a relative's id that matches no patient is only a relative
    registered elsewhere, and the child would silently lose the link to a parent.

    One problem for each file storing them as integers, naming the first text id written with a leading zero
    by its row (never the id). The text columns are searched only when some file stores ids as integers."""
    numeric = [(name, col) for name, source in files.items() for col in source.number_ids]
    if not numeric:
        return []
    zero_led = "regexp_matches(trim({col}), '^0[0-9]')"
    first = None
    for name, source in files.items():
        texts = [c for c in PATIENT_ID_COLUMNS if c in TABLES[name].column_names and c not in source.number_ids]
        for col in texts:
            [(row,)] = con.execute(f"SELECT min(_row) FROM src_{name} WHERE {zero_led.format(col=col)}").fetchall()
            if row is not None:
                [shown] = _spreadsheet_rows(source, [row])
                first = first or (source.path.name, col, shown)
    if first is None:
        return []
    file, col, row = first
    return [
        Problem(
            f"{files[name].path}, column '{number_col}'",
            f"stored as integers, while {file} writes its {col} as text with leading zeros (row {row}): a number "
            "drops the zeros, so these ids would not match",
            "export every patient id column as text (string), in every file",
        )
        for name, number_col in numeric
    ]


def _read_rows(
    con, table: Table, source: SourceFile, mapping: TableMapping, keep: str | None, cut_codes: dict[str, str] | None
) -> list[Problem]:
    """Check every row of ``raw_<table>`` and create the typed table ``<table>`` without the bad ones (see
    ``_read_tables``). Returns the warnings about rows that are not bad but not used either."""
    raw = f"raw_{table.name}"
    if table.name == "events" and keep:
        checked = _collect_problems(con, table, mapping, raw, source, keep, cut_codes)
        con.execute(f"CREATE TEMP TABLE events AS {_typed_select(table, mapping, checked, keep)}")
    elif table.name == "events" and source.format == "parquet":
        # without event_codes, events stays a view over the file: one pass per query at ICB scale
        _collect_problems(con, table, mapping, raw, source)
        con.execute(f"CREATE TEMP VIEW events AS {_typed_select(table, mapping, raw)}")
    else:  # typed in one read of the file; the duplicate check reads the typed table, then bad rows go
        con.execute(f"CREATE TEMP TABLE {table.name} AS {_typed_select(table, mapping, raw, every_row=True)}")
        _collect_problems(con, table, mapping, table.name, source)
        con.execute(f"DELETE FROM {table.name} WHERE _row IN {left_out_rows_sql(table)}")
    _refuse_month_first(con, table, source)
    if table.name == "patients":
        _rejected_patients(con)
    return _unlinked_relationships(con, source) if table.name == "relationships" else []


def _no_rows(source: SourceFile, table: Table) -> Problem:
    """A file with a header but no rows: an error for the patients file (nothing to list, and every other
    row would be of an unknown patient), else a warning saying what is missing from the list."""
    if table.name == "patients":
        raise ExtractError(
            Problem(source.path.name, "the file has a header but no rows", "export the patients table again")
        )
    missing = table.if_absent or "no criterion read from codes can be met"
    return Problem(source.path.name, f"the file has a header but no rows: {missing}")


def _refuse_no_patients(con, source: SourceFile, skip_bad_rows: bool) -> None:
    """Stop when no patient is left once the bad and blank rows are out: an empty list would say that no child
    needs discussing. Rows with every field blank are no rows (``_no_rows``). With ``skip_bad_rows``, every row
    with a problem (often one column written wrongly throughout, such as NULL in every empty date of death)
    stops the run here, with those problems (up to the cap); without it they stop it anyway, with every file's."""
    if con.execute("SELECT count(*) FROM patients").fetchone()[0]:
        return
    own = con.execute(
        "SELECT tbl, file, row, col AS column, problem, hint, ref_tbl, ref_row FROM problems WHERE tbl = 'patients' "
        "ORDER BY row, col"
    ).df()
    if own.empty:
        _no_rows(source, TABLES["patients"])  # raises
    if not skip_bad_rows:
        return
    rows = own["row"].nunique()
    listed = _past_blank_lines(own.head(MAX_LISTED_PROBLEMS - 1), {"patients": source})
    problems = [
        Problem(
            source.path.name,
            f"every row has a problem ({rows} row{'s' if rows != 1 else ''}), so no patient is left to list",
            "--skip-bad-rows leaves out bad rows, and here that is every patient: fix the problems below (the same "
            "problem in every row is most often one column exported wrongly)",
        )
    ]
    raise ExtractError(problems + _row_problems(listed), total=1 + len(own), footer="Stopped before any output.")


US_ONLY_DATE = "(0?[1-9]|1[0-2])/(1[3-9]|2[0-9]|3[01])/[0-9]{4}([ T].*)?"
UK_ONLY_DATE = "(1[3-9]|2[0-9]|3[01])/(0?[1-9]|1[0-2])/[0-9]{4}([ T].*)?"


def _refuse_month_first(con, table: Table, source: SourceFile) -> None:
    """Stop when a date column is written month first (US style), which --skip-bad-rows cannot mend.

    Such a column shows itself by dates that are valid only month first (``11/17/2018``; two or more), with
    none valid only day first (a day above 12 in front). Only its dates with a day above 12 fail as
    dd/mm/yyyy; the others would be read with day and month swapped, so leaving out the failing rows would
    not do. One such date, or dates of both kinds, are slips in a day-first column: bad rows like any other.
    """
    for col in (c.name for c in table.columns if c.type == "date"):
        us_only = f"regexp_full_match(trim({col}), {_sql_str(US_ONLY_DATE)})"
        [(count, first, value)] = con.execute(
            f"SELECT count(*), min(_row), arg_min(trim({col}), _row) FROM checked_{table.name} WHERE {us_only}"
        ).fetchall()  # only rows that fail as dd/mm/yyyy can be valid only month first: they were checked
        if count < 2:
            continue
        uk_only = f"regexp_full_match(trim({col}), {_sql_str(UK_ONLY_DATE)})"
        if con.execute(f"SELECT count(*) FROM src_{table.name} WHERE {uk_only}").fetchone()[0]:
            continue
        [row] = _spreadsheet_rows(source, [first])
        example = f"row {row}" if table.column(col).identifies_patient else f"'{value}' in row {row}"
        raise ExtractError(
            Problem(
                f"{source.path.name}, column '{col}'",
                f"dates are written month first (US style), such as {example}; casefind reads "
                "dd/mm/yyyy, so the day and month of the others would be swapped",
                "export the dates as yyyy-mm-dd, or as dd/mm/yyyy (--skip-bad-rows cannot mend this)",
            )
        )


def _rejected_patients(con) -> None:
    """``rejected_patients``: each patient_id whose every row in the patients file has a problem, with the
    first of those rows. Their events (and other rows) are left out with them: a knock-on problem."""
    [(bad,)] = con.execute(f"SELECT count(*) FROM {left_out_rows_sql(TABLES['patients'])}").fetchall()
    con.execute(
        f"""
        CREATE TEMP TABLE rejected_patients AS
        SELECT patient_id, min(_row) AS patient_row FROM raw_patients
        WHERE {bool(bad)} AND _row IN {left_out_rows_sql(TABLES["patients"])} AND patient_id IS NOT NULL
          AND patient_id NOT IN (SELECT patient_id FROM patients)
        GROUP BY patient_id
        """
    )


def _unlinked_relationships(con, source: SourceFile) -> list[Problem]:
    """Leave out of ``relationships`` the rows whose patient_id is not in the patients file and that link no
    child registered here, with a warning counting them (never silently).

    A relationships row is recorded for its patient_id: by its word, related_patient_id is that person's
    parent, sibling or household member, except in words from the parent's side (``CHILD_WORDS``: son,
    daughter, foster child), where related_patient_id is the child and patient_id the parent. A row whose
    patient_id is not registered here (the row's check lets it through when related_patient_id is registered,
    ``_relationship_patient_checks``) is used as any other when the registered patient is the child: a
    parent's-side row (the parent is registered elsewhere, as a related parent may be), or a sibling row (its
    links go both ways, as the same row written from the registered child's side would). Any other such row
    makes the registered patient the parent, carer or household member of someone not registered here, or
    uses a word casefind does not link by: no child here is linked by it. Nor is one whose patient_id is a
    placeholder (``unknown_id_sql``: 0, NULL, UNKNOWN), which would join unrelated children through one
    "parent" or "sibling"."""
    usable = (
        f"{normalised_word_sql('relationship')} IN ({sql_words(CHILD_WORDS + SIBLING_WORDS)}) "
        f"AND NOT {unknown_id_sql('patient_id')}"
    )
    unused = f"patient_id NOT IN (SELECT patient_id FROM patients) AND NOT ({usable})"
    left_out = con.execute(
        f"DELETE FROM relationships WHERE {unused} RETURNING _row, {unknown_id_sql('patient_id')}"
    ).fetchall()
    if not left_out:
        return []
    rows, placeholders = sorted(row for row, _ in left_out), sum(placeholder for _, placeholder in left_out)
    n, one = len(rows), len(rows) == 1
    not_child = "by the relationship, the related_patient_id (who is in the file) is not the child or a sibling"
    placeholder = "patient_id is a placeholder for an unknown person (such as 0 or UNKNOWN)"
    if placeholders == n:
        why = placeholder
    elif placeholders:
        why = f"{not_child}, or (in {placeholders} of them) {placeholder}"
    else:
        why = not_child
    return [
        Problem(
            f"{source.path.name}, {_rows_text(_spreadsheet_rows(source, rows))}, column 'patient_id'",
            f"{n} row{' was' if one else 's were'} not used: {'its' if one else 'their'} patient_id is not in the "
            f"patients file, and no child registered here is linked by {'it' if one else 'them'}: {why}",
            "a row about a child registered here names the child as patient_id, or as related_patient_id with a "
            "word from the parent's side (son, daughter, child); the README's Families section lists the words",
        )
    ]


def _stop(rejects: pd.DataFrame, files: dict[str, SourceFile]) -> ExtractError:
    """The error that stops a run: each problem row by row (up to the cap), except knock-on problems, which
    are counted, one line per file, after that file's other problems."""
    knock_on = rejects[rejects["knock_on"]]
    own = rejects[~rejects["knock_on"]]
    counts = knock_on.groupby("tbl", sort=False).size()
    listed = _past_blank_lines(own.head(MAX_LISTED_PROBLEMS - len(counts)), files)
    problems = []
    for table in TABLES:
        problems += _row_problems(listed[listed["tbl"] == table])
        if table in counts:
            n = int(counts[table])
            problems.append(
                Problem(
                    files[table].path.name,
                    f"{n} row{'s are' if n != 1 else ' is'} of patients whose row in the patients file has a problem",
                    "fix those rows, and these are read with them",
                )
            )
    footer = (  # read_extract serves build-list, explain and coding-report alike
        "Stopped before any output. Fix these rows, or run again with --skip-bad-rows to leave them out "
        "(build-list and coding-report then write them, with their reasons, to a rejects file)."
    )
    return ExtractError(problems, total=len(own) + len(counts), footer=footer)


def _row_problems(listed: pd.DataFrame) -> list[Problem]:
    """Each problem of ``listed`` (rows of the ``problems`` table, rows numbered by ``_past_blank_lines``) as
    ``file, row N, column 'c'``."""
    return [
        Problem(f"{r.file}, row {r.row}, column '{r.column}'", r.problem, r.hint if isinstance(r.hint, str) else None)
        for r in listed.itertuples()
    ]


def _past_blank_lines(rejects: pd.DataFrame, files: dict[str, SourceFile]) -> pd.DataFrame:
    """Row numbers as a spreadsheet shows them, counting the lines above a CSV file's header and its blank
    lines (DuckDB skips blank lines, so ``_row`` counts records only), both each problem's row and a row its
    message names (``REF_ROW``). Worked out only for files with a problem, and only read again in full when a
    quick search finds a blank line."""
    rejects = rejects.copy()
    rejects["ref_row"] = rejects["ref_row"].astype("Int64")
    for source in files.values():
        for table, row in (("tbl", "row"), ("ref_tbl", "ref_row")):
            rows = rejects[table] == source.table
            if rows.any():
                rejects.loc[rows, row] = _spreadsheet_rows(source, rejects.loc[rows, row].tolist())
    named = rejects["ref_row"].notna()
    rejects.loc[named, "problem"] = [
        problem.replace(REF_ROW, str(row))
        for problem, row in zip(rejects.loc[named, "problem"], rejects.loc[named, "ref_row"], strict=True)
    ]
    return rejects


def _spreadsheet_rows(source: SourceFile, rows: list[int]) -> list[int]:
    """``_row`` numbers of ``source`` as a spreadsheet shows them (see ``_past_blank_lines``)."""
    return spreadsheet_rows(source.csv, rows) if source.csv else rows


def _with_records(con, rejects: pd.DataFrame, files: dict[str, SourceFile]) -> pd.DataFrame:
    """Add each rejected row's original values (as JSON) so nothing is lost."""
    if rejects.empty:
        return rejects.assign(record=pd.Series(dtype=str))
    records = []
    for name, source in files.items():
        # rows breaking a row-local rule were copied to checked_<table>; a duplicate key can be on any row
        rows = f"raw_{name}" if TABLES[name].unique else f"checked_{name}"
        values = ", ".join(f"{c} := {c}" for c in TABLES[name].column_names)  # the file's values, not _row
        records.append(
            con.execute(
                f"SELECT {_sql_str(source.path.name)} AS file, _row AS row, "
                f"CAST(to_json(struct_pack({values})) AS VARCHAR) AS record "
                f"FROM {rows} WHERE _row IN {left_out_rows_sql(TABLES[name])}"
            ).df()
        )
    return rejects.merge(pd.concat(records), on=["file", "row"], how="left")


def _warnings(con, files: dict[str, SourceFile]) -> list[Problem]:
    """Things worth knowing that do not make a row unusable."""
    warnings = []
    blank = dict(con.execute("SELECT tbl, count(*) FROM empty_rows GROUP BY tbl").fetchall())
    for table, n in ((t, blank[t]) for t in TABLES if t in blank):
        warnings.append(
            Problem(
                files[table].path.name,
                f"{n} row{'s' if n != 1 else ''} with every field blank (as a spreadsheet can leave below the "
                f"data) {'were' if n != 1 else 'was'} skipped",
            )
        )
    if "patients" in files:
        warnings += _nhs_number_warnings(con, files["patients"])
    return warnings


def _unread_code_systems(con, source: SourceFile, mapping: TableMapping, read: set[str]) -> list[Problem]:
    """A warning counting, per code system, the events coded under one that ``read`` (the code systems of the
    protocol's codelists) does not hold: they are never read, whatever their code (a child protection plan
    coded in Read v2, under a protocol of SNOMED CT codelists). A code system is as ``events`` holds it: the
    export's word as the schema spells it (``_choice_sql``; an event without one is snomed). Rows left out
    (bad or blank) are not counted; nor are values that are no code system, which are bad rows.

    The file's distinct code_system values are found first, and each is cleaned and mapped (0.04 s over 50
    million events in Parquet, where a count of each takes 0.1 s); rows are counted only when one of them is a
    code system the protocol does not read, and then only the rows with such a value. The rows left out are
    found in the small ``checked_events`` (``_collect_problems``)."""
    col = TABLES["events"].column("code_system")

    def system(expr: str) -> str:
        return _typed_choice_sql(expr, col, mapping)

    unread = f"list_contains($known, {system('cleaned')}) AND NOT list_contains($read, {system('cleaned')})"
    systems = {"known": list(col.choices), "read": sorted(read)}
    [(values, blank)] = con.execute(
        f"""
        SELECT list(code_system) FILTER (WHERE code_system IS NOT NULL AND {unread}),
               coalesce(bool_or(code_system IS NULL AND {unread}), false)
        FROM (SELECT code_system, {_clean("code_system")} AS cleaned FROM (SELECT DISTINCT code_system FROM src_events))
        """,
        systems,
    ).fetchall()
    if not values and not blank:  # the usual case: no event is under a code system the protocol does not read
        return []
    counts = con.execute(
        f"""
        SELECT system, CAST(sum(n) AS BIGINT) AS n FROM (
            SELECT {system(_clean("code_system"))} AS system, n FROM (
                SELECT code_system, count(*) AS n FROM src_events
                WHERE list_contains($values, code_system) OR ($blank AND code_system IS NULL) GROUP BY code_system
            )
            UNION ALL
            SELECT {system("code_system")}, -count(*) FROM checked_events
            WHERE _row IN {left_out_rows_sql(TABLES["events"])} GROUP BY ALL
        )
        WHERE list_contains($known, system) AND NOT list_contains($read, system)
        GROUP BY system HAVING sum(n) > 0 ORDER BY n DESC, system
        """,
        {**systems, "values": values or [], "blank": blank},
    ).fetchall()
    if not counts:
        return []
    total = sum(n for _, n in counts)
    parts = ", ".join(f"'{name}' ({n} event{'s' if n != 1 else ''})" for name, n in counts)
    systems = "a code system" if len(counts) == 1 else "code systems"
    default = " (an event without a code_system is snomed)" if any(name == col.default for name, _ in counts) else ""
    export = ", or export the events with SNOMED CT codes" if col.default in read else ""
    many = total != 1
    return [
        Problem(
            source.path.name,
            f"{total} event{'s are' if many else ' is'} coded under {systems} that none of the protocol's "
            f"codelists uses: {parts}{default}; {'they were' if many else 'it was'} not read, so no criterion "
            f"counts {'them' if many else 'it'}, whatever {'their codes' if many else 'its code'}",
            f"give the protocol codelists in {'that code system' if len(counts) == 1 else 'those code systems'} "
            f"(a codelist with code_system: {counts[0][0]}, its codes inline or in its file){export}",
        )
    ]


NHS_NUMBER_WARNINGS = {  # what is wrong with an NHS number -> the warning's words for one number and for several
    "check": ("NHS number fails the modulus 11 check", "NHS numbers fail the modulus 11 check"),
    "length": ("NHS number is not 10 digits", "NHS numbers are not 10 digits"),
    "spreadsheet": (
        "NHS number is a number as a spreadsheet writes it (its last digits are lost)",
        "NHS numbers are numbers as a spreadsheet writes them (their last digits are lost)",
    ),
}


NHS_NUMBER_COLUMN = "column 'nhs_number'"  # how the NHS-number warnings' locations end


def about_nhs_numbers(warning: Problem) -> bool:
    """Whether ``warning`` is one of the NHS-number warnings (``_nhs_number_warnings``), which name rows of
    the patients file."""
    return warning.location.endswith(NHS_NUMBER_COLUMN)


def _nhs_number_warnings(con, source: SourceFile) -> list[Problem]:
    """A warning for each kind of bad NHS number (NHS_NUMBER_WARNINGS), and one for valid numbers given to more
    than one patient: most often one person with two records (registered twice), which splits their history,
    so that a child protection plan coded on one record is not seen when the family is linked through the
    other; else a number typed into the wrong record. Counts and rows only: an NHS number identifies a patient,
    so none is shown."""
    invalid = nhs_number_invalid_sql("nhs_number", "number")
    kind = (
        f"CASE WHEN NOT {invalid} THEN 'valid' "
        f"WHEN regexp_full_match(nhs_number, {_sql_str(SPREADSHEET_NUMBER)}) THEN 'spreadsheet' "
        "WHEN NOT regexp_full_match(nhs_number, '[0-9]{10}') THEN 'length' ELSE 'check' END"
    )
    # the numbers given more than once are found by a GROUP BY, not a window over every patient (a third of
    # the time on a million patients); only the rows with a problem are classified
    found = con.execute(
        f"""
        WITH numbered AS (
            SELECT _row, nhs_number, TRY_CAST(nhs_number AS UBIGINT) AS number FROM patients
            WHERE nhs_number IS NOT NULL
        ), classified AS (
            SELECT _row, nhs_number, {kind} AS kind FROM numbered
            WHERE {invalid} OR nhs_number IN (SELECT nhs_number FROM numbered GROUP BY ALL HAVING count(*) > 1)
        )
        SELECT replace(kind, 'valid', 'shared'), list(_row ORDER BY _row), count(DISTINCT nhs_number)
        FROM classified GROUP BY kind
        """
    ).fetchall()
    rows_of = {kind: (rows, numbers) for kind, rows, numbers in found}
    warnings = []
    for kind in [*NHS_NUMBER_WARNINGS, "shared"]:
        if kind not in rows_of:
            continue
        rows, numbers = rows_of[kind]
        where = f"{source.path.name}, {_rows_text(_spreadsheet_rows(source, rows))}, {NHS_NUMBER_COLUMN}"
        if kind == "shared":
            warnings.append(_shared_nhs_number_warning(where, len(rows), numbers))
            continue
        warnings.append(
            Problem(
                where,
                f"{len(rows)} {NHS_NUMBER_WARNINGS[kind][len(rows) != 1]} (the patients are still considered; "
                "check the numbers before sharing the list)",
            )
        )
    return warnings


def _shared_nhs_number_warning(where: str, patients: int, numbers: int) -> Problem:
    """The warning about ``patients`` records sharing ``numbers`` valid NHS numbers. Records with one number are
    most often one person registered twice: their history is split between the records, and a family is
    linked through one of them, so a child protection plan or a parent's risk factor coded on the other is not
    seen."""
    two = patients == 2 and numbers == 1
    return Problem(
        where,
        f"{patients} patients share {'one NHS number' if numbers == 1 else f'{numbers} NHS numbers'}: records "
        "sharing a number are most often one person registered twice, whose history is then split between them, "
        "so a child protection plan or a risk factor coded on one record is not seen when the family is linked "
        "through another (or the number was typed into the wrong record); each record is still considered on its "
        "own",
        "merge the records in the clinical system (or correct the number); until then, check "
        f"{'both records' if two else 'every record sharing a number'} before the meeting",
    )


def _rows_text(rows: list[int]) -> str:
    """'row 5', or 'rows 5, 9, ...' with the first 20 and a count of the rest."""
    listed = ", ".join(map(str, rows[:20])) + (f" and {len(rows) - 20} more" if len(rows) > 20 else "")
    return f"row{'s' if len(rows) != 1 else ''} {listed}"
