"""A practice system's CSV export copied into DuckDB as it is: every value text, rows in line order.

Real exports differ, and each difference is read rather than refused:

* **Encoding**: UTF-8, with or without a BOM; Windows-1252 (found while DuckDB reads: a line that is not
  UTF-8 is a rejected line of type INVALID ENCODING); UTF-16 with a BOM (Excel's "Unicode Text").
  Windows-1252 and UTF-16 files are read through a private UTF-8 copy. A file that is not UTF-8 is read
  as UTF-8 where it is and Windows-1252 byte by byte where it is not (``_cp1252_where_not_utf8``): a
  Windows-1252 file reads the same, and a UTF-8 file with one name typed in from a Windows program keeps
  its other accented names ('Alí', not 'AlÃ­').
* **Delimiter**: commas; when the header line has no comma but one of ``;``, tab or ``|``, that one
  (Excel in locales with a decimal comma saves semicolons, "Unicode Text" saves tabs). Fields are quoted as
  RFC 4180 says, with double quotes, and nothing is guessed per row, so a broken quote is reported by line.
* **Excel's ``sep=;`` first line** names the delimiter and is skipped. Excel hides it too, so row numbers
  stay as the spreadsheet shows them (header row 1); line numbers of malformed rows are the file's own.
* **Lines above the header** (blank lines, or a title such as the search's name and run date, which
  reporting tools write): the header is the first of the first ``PREAMBLE_LINES`` non-blank lines that is
  one (the caller's ``is_header`` says which: it holds every required column), or failing that the first
  with the most fields; the lines above it are skipped.
  A spreadsheet shows them, so row numbers count them (header row N, first record row N + 1).
  When no line is a header and most lines below the chosen one do not fit it as rows, that line is a title
  and the header is further down (or missing): the run stops with one message saying so, not one per row.
  The chosen line is used when the rows fit it, so that a misspelt header, or a missing one (the first
  row is a record), is reported as such by the caller.
* **Lines far too long** near the top (a web page with an inline image, or a binary file, saved as .csv):
  a line read while looking for the header that is longer than ``LONGEST_TOP_LINE`` stops the run with a
  message naming the line. Lines below the header are DuckDB's to read, up to its own line limit.
* **Mixed line endings** (CRLF and LF in one file, e.g. two exports joined): DuckDB refuses the file, so it
  is read through a copy with LF endings. Line numbers do not change.
* **Blank lines**: DuckDB skips them; ``spreadsheet_rows`` turns record numbers back into the rows a
  spreadsheet shows, which count them. A line of only spaces and tabs is a blank line too, not a row of one
  field.
* **A row longer than ``MAX_LINE_BYTES``** (2 MB) is not read: it stops the run with a message saying so. No
  real row comes near it; one that long is almost always a quote left open, running many lines into one.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import itertools
import mmap
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import duckdb

from casefind.errors import ExtractError, Problem

DELIMITERS = (",", ";", "\t", "|")
PREAMBLE_LINES = 20  # how far down a header is looked for when the first line is not one
# No header or title comes near this (it is the csv module's limit on a field): a line above the header,
# or one looked at as a header, that is longer is not a line of a table.
LONGEST_TOP_LINE = 131_072
# DuckDB's limit on a row (it rejects a longer one), as casefind sets it: no real row comes near (a long
# consultation note is some kilobytes); a longer one is almost always a quote left open.
MAX_LINE_BYTES = 2_000_000
_SEP_LINE = re.compile(r'"?sep=(.)"?\r?\n?')  # Excel's delimiter line, sometimes quoted by other tools
_INVALID_STATE = "CSV Parser state machine reached an invalid state"  # DuckDB, on mixed line endings


@dataclass(frozen=True)
class CsvLayout:
    """How a CSV file is laid out, and the file DuckDB read for it."""

    path: Path  # the user's file
    encoding: str = "utf-8"  # utf-8, cp1252 or utf-16
    delimiter: str = ","
    sep_line: bool = False  # the file starts with Excel's 'sep=' line
    preamble: int = 0  # lines a spreadsheet shows above the header (blank or a title), skipped
    header_found: bool = True  # the caller's is_header took the header; False: the first with the most fields
    read: Path | None = None  # the user's file, or a private UTF-8 copy (removed with the read's workdir)

    @property
    def skipped(self) -> int:
        """Lines of the file above the header: not in the copy DuckDB read."""
        return self.sep_line + self.preamble


def read_csv(
    con,
    name: str,
    path: Path,
    shown: str,
    workdir: Path,
    expected: str,
    is_header: Callable[[list[str]], bool] = lambda fields: True,
    optional: bool = False,
) -> CsvLayout:
    """Copy the CSV file ``path`` into the table ``file_<name>`` (every column VARCHAR, ``rowid`` in line
    order). ``shown`` names the file in messages; ``expected`` says what its header should hold, and
    ``is_header`` whether a line's fields are a header (for finding one below a title). ``optional``: the
    extract may leave the table out, which the hint for an empty file says.

    Raises ExtractError for an empty file, a file without a header in its first lines, a header that cannot
    be used, and malformed lines (all listed).
    """
    with path.open("rb") as handle:
        start = handle.read(4096)
    if not start.strip(codecs.BOM_UTF8 + b" \t\r\n"):
        raise ExtractError(
            Problem(
                shown,
                f"the file is empty: expected a header row with {expected}",
                "delete it (the table is optional) or export it again with its header row"
                if optional
                else "export it again from the practice system, with its header row",
            )
        )
    utf16 = start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in start and not utf16:  # no text but UTF-16 (and UTF-32) has NUL bytes
        raise ExtractError(
            Problem(
                shown,
                "not a text file in a known encoding (it holds NUL bytes: UTF-16 without a byte-order mark?)",
                "save it as 'CSV UTF-8 (Comma delimited)'",
            )
        )
    for encoding in ("utf-16",) if utf16 else ("utf-8", "cp1252"):  # cp1252 decodes any bytes
        layout = _layout(path, encoding, shown, is_header)
        read = layout and _copy(con, name, layout, shown, workdir)
        if read:
            break
    malformed = con.execute(  # one message per line (DuckDB records each surplus or missing field)
        f"SELECT line, arg_max(error_type, coalesce(column_idx, 0)), arg_max(error_message, coalesce(column_idx, 0)) "
        f"FROM rejects_{name} WHERE NOT {_blank_line('csv_line')} GROUP BY line ORDER BY line"
    ).fetchall()
    if malformed and not read.header_found:
        # The first line with the most fields is not the header when most lines below it are not rows of
        # its width: it is a title, and the header is further down. Then one message, not one per row. When
        # the rows fit it, it is a misspelt header or a first record, which the caller reports by name.
        [(rows,)] = con.execute(f"SELECT count(*) FROM file_{name}").fetchall()
        if len(malformed) > rows:
            raise ExtractError(
                Problem(
                    shown,
                    f"no header row naming {expected} in the first {PREAMBLE_LINES} non-blank lines",
                    "delete the lines above the header, or export the table without a title",
                )
            )
    if malformed:
        # DuckDB counts records (a quoted note over two lines is one) and blank lines: the row a spreadsheet
        # shows. The copy DuckDB read starts at the header.
        raise ExtractError([_malformed(f"{shown}, row {line + read.skipped}", *error) for line, *error in malformed])
    return read


def _blank_line(line: str) -> str:
    """SQL true for a line DuckDB rejected that holds only spaces and tabs: read as the blank line it looks
    like (DuckDB skips a truly blank one, and takes this one for a row of one field)."""
    return f"trim({line}, ' \t\r\n') = ''"


def _malformed(where: str, error_type: str, message: str) -> Problem:
    """The problem of a line DuckDB could not read as a row."""
    if error_type == "LINE SIZE OVER MAXIMUM":
        size = re.search(r"Actual Size:\s*([0-9]+)", message or "")
        return Problem(
            where,
            f"the row is {f'{int(size.group(1)) / 1e6:.1f} MB' if size else 'too long'}, longer than casefind reads "
            f"({MAX_LINE_BYTES / 1e6:.0f} MB): most likely a quote left open, which runs the lines after it into "
            "one field",
            "fix the quoting of this row; a note this long cannot be read, so shorten it or export the table "
            "without its free text",
        )
    return Problem(
        where,
        f"malformed row: {message}",
        "fix the quoting or the number of fields; --skip-bad-rows cannot skip a row whose fields cannot be told apart",
    )


def _cp1252_where_not_utf8(error: UnicodeDecodeError) -> tuple[str, int]:
    """Codec error handler ``casefind-cp1252``: bytes that are not UTF-8 are read as Windows-1252."""
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


codecs.register_error("casefind-cp1252", _cp1252_where_not_utf8)


def _open_text(path: Path, encoding: str, errors: str = "strict", newline: str | None = "") -> io.TextIOWrapper:
    """``path`` opened as casefind reads ``encoding`` (see the module docstring)."""
    if encoding == "cp1252":
        return path.open(encoding="utf-8-sig", errors="casefind-cp1252", newline=newline)
    return path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, errors=errors, newline=newline)


def _layout(path: Path, encoding: str, shown: str, is_header: Callable[[list[str]], bool]) -> CsvLayout | None:
    """The delimiter, whether there is an Excel ``sep=`` line, and how many lines are above the header, from
    the first lines of ``path`` read as ``encoding``; None when those lines are not in it.

    Lines are read up to the header, or PREAMBLE_LINES non-blank lines when none is one, and no further:
    records below the header are not looked at here, so a long note in one is DuckDB's to read.
    """
    sep, fields, delimiters, found = None, {}, {}, False
    try:
        with _open_text(path, encoding) as handle:
            for i in itertools.count():
                line = handle.readline(LONGEST_TOP_LINE + 1)  # a longer one is not read whole
                if not line:
                    break
                if len(line.rstrip("\r\n")) > LONGEST_TOP_LINE:
                    raise ExtractError(
                        Problem(
                            f"{shown}, line {i + 1}",
                            f"the line is longer than {LONGEST_TOP_LINE:,} characters, far too long to be a row of "
                            "an export: is the file a web page or a binary file saved as .csv?",
                            "export the table again as CSV",
                        )
                    )
                if i == 0 and (sep := _SEP_LINE.fullmatch(line)):
                    if sep.group(1) not in DELIMITERS:
                        raise ExtractError(
                            Problem(
                                f"{shown}, line 1",
                                f"'sep=' names {sep.group(1)!r} as the delimiter",
                                "save it as CSV (commas)",
                            )
                        )
                    continue
                if line.strip():
                    delimiters[i] = sep.group(1) if sep else _delimiter(line)
                    fields[i] = next(csv.reader([line], delimiter=delimiters[i]), [])
                    found = is_header(fields[i])
                    if found or len(fields) == PREAMBLE_LINES:
                        break
    except UnicodeDecodeError:
        return None
    # The line that is a header (the last read); failing that, the first with the most fields (a title has one
    # or two), so that the header's own problem, such as a misspelt column, is what is reported.
    widest = max(fields, key=lambda i: sum(bool(f.strip()) for f in fields[i]), default=int(bool(sep)))
    header = max(fields) if found else widest
    return CsvLayout(path, encoding, delimiters.get(header, ","), bool(sep), header - bool(sep), found)


def _delimiter(header: str) -> str:
    """The one of ``;``, tab or ``|`` a header line without commas has; else a comma."""
    found = [d for d in DELIMITERS if d in header]
    return found[0] if len(found) == 1 else ","


def _copy(con, name: str, layout: CsvLayout, shown: str, workdir: Path, copy: bool = False) -> CsvLayout | None:
    """Copy the file into ``file_<name>`` and return its layout with the file read. None, with nothing
    copied, when the file is not in ``layout.encoding``.

    DuckDB reads a UTF-8 file itself, checking every byte as it goes (an invalid sequence is a rejected line
    of type INVALID ENCODING), so no separate pass is needed. Other encodings, and files with lines above
    the header (DuckDB's ``skip`` silently read nothing after a CRLF 'sep=' line), are read through a copy
    that starts at the header; so is a UTF-8 file with mixed line endings, which DuckDB refuses.
    """
    direct = not copy and layout.encoding == "utf-8" and not layout.skipped
    try:
        read = layout.path if direct else _utf8_copy(layout, workdir)
    except UnicodeDecodeError:
        return None
    header = _header(read, layout.delimiter, shown)
    columns = "{" + ", ".join(_sql_str(h) + ": 'VARCHAR'" for h in header) + "}"
    scan = (  # no sniffing: RFC 4180 double quotes, so a broken quote is reported by line
        f"read_csv({_sql_str(str(read))}, header=true, auto_detect=false, columns={columns}, "
        f"delim={_sql_str(layout.delimiter)}, quote='\"', escape='\"', max_line_size={MAX_LINE_BYTES}, "
        f"store_rejects=true, rejects_table='rejects_{name}', rejects_scan='rejects_scan_{name}')"
    )
    con.execute("SET preserve_insertion_order = true")  # rowid is the line order: the row numbers
    try:
        con.execute(f"CREATE TEMP TABLE file_{name} AS SELECT * FROM {scan}")
    except duckdb.Error as exc:
        if direct and _INVALID_STATE in str(exc):  # mixed line endings: a copy has LF only
            return _copy(con, name, layout, shown, workdir, copy=True)
        raise ExtractError(Problem(shown, f"cannot read as CSV: {str(exc).splitlines()[0]}")) from None
    finally:
        con.execute("SET preserve_insertion_order = false")
    [(not_utf8,)] = con.execute(f"SELECT count(*) FROM rejects_{name} WHERE error_type = 'INVALID ENCODING'").fetchall()
    if not_utf8:
        for leftover in (f"file_{name}", f"rejects_{name}", f"rejects_scan_{name}"):
            con.execute(f"DROP TABLE {leftover}")
        return None
    return replace(layout, read=read)


def _utf8_copy(layout: CsvLayout, workdir: Path) -> Path:
    """A private UTF-8 copy of the file with LF line endings (Python's universal newlines), from its header
    on. Raises UnicodeDecodeError when a UTF-8 file is not UTF-8 after all."""
    target = workdir / f"{layout.path.stem}.{layout.encoding}.utf8.csv"
    errors = "strict" if layout.encoding == "utf-8" else "replace"  # UTF-16 with a broken pair
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with (
        _open_text(layout.path, layout.encoding, errors, newline=None) as src,
        os.fdopen(fd, "w", encoding="utf-8", newline="\n") as dst,
    ):
        for _ in range(layout.skipped):
            src.readline()
        for block in iter(lambda: src.read(1 << 20), ""):
            dst.write(block)
    return target


def _header(path: Path, delimiter: str, shown: str) -> list[str]:
    """The header row, read as the CSV module reads it; blank names become column1, column2 ..."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    names = [h.strip() or f"column{i + 1}" for i, h in enumerate(header)]
    if repeated := repeated_names(names):
        raise ExtractError(Problem(shown, f"the header repeats column(s) {', '.join(repeated)}", REPEATED_HINT))
    return names


REPEATED_HINT = "give every column its own name (names that differ only in case are one name)"


def repeated_names(names: list[str]) -> list[str]:
    """The column names given twice, in DuckDB's way of seeing names: 'ID' and 'id' are one column."""
    folded = [n.casefold() for n in names]
    return sorted({n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1})


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------ row numbers


def spreadsheet_rows(layout: CsvLayout, records: list[int]) -> list[int]:
    """Record numbers (``rowid + 2``: the first record after the header is 2) as the rows a spreadsheet
    shows, which count the lines above the header and blank lines. The file is read again in full only when
    a quick search finds a blank line."""
    after = _records_after_blank_lines(layout)
    return [r + layout.preamble + bisect.bisect_right(after, r - 2) for r in records]


def _records_after_blank_lines(layout: CsvLayout) -> tuple[int, ...]:
    """For each blank line after the header of the file read, the number of records before it, in order. A
    line of spaces and tabs is blank too (``_blank_line``): DuckDB rejects it as a short row, and it is left
    out as a blank line is; one as wide as the header is a row of blank fields, which DuckDB reads."""
    stat = layout.read.stat()  # a run asks about one file more than once: cached per version of the file
    return _records_after_blank_lines_of(layout.read, layout.delimiter, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _records_after_blank_lines_of(path: Path, delimiter: str, mtime_ns: int, size: int) -> tuple[int, ...]:
    with path.open("rb") as handle:
        blank = size and _has_blank_line(handle)
    after, records = [], 0
    if blank:
        # DuckDB has read these records, each up to its own line limit; the csv module's smaller limit on a
        # field (see LONGEST_TOP_LINE) must not refuse a long note DuckDB took. Raised for this read only.
        limit = csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
        try:
            with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
                reader = csv.reader(handle, delimiter=delimiter)
                width = len(next(reader, []))  # the header's
                for record in reader:
                    if len(record) != width and not "".join(record).strip(" \t\r\n"):
                        after.append(records)
                    else:
                        records += 1
        finally:
            csv.field_size_limit(limit)
    return tuple(after)


_BLANK_LINE = re.compile(rb"\n[ \t]*\r?\n")  # an empty line, or one of spaces and tabs


def _has_blank_line(handle: io.BufferedReader) -> bool:
    """Whether the file may have a blank line (or one of spaces and tabs): a quick search, for the rare file
    that has none. Lines that only start with a space (an export padding its fields) do not count, so such a
    file is not read a second time."""
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _BLANK_LINE.search(data) is not None
