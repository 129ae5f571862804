"""The command line: parse options, call one library function, render the result. Nothing else."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import sys
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from casefind import __version__, api, schema
from casefind.errors import ExitCode, OptionError, UserError
from casefind.ranking import family_adults_text, score_text

app = typer.Typer(
    help="casefind: find the children and families to discuss at a GP practice's vulnerable-family meeting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks could show patient data; see _friendly_errors
    add_completion=False,
)
# No console markup: names, terms and values come from the extract, and "[/]" in a term must print as typed,
# not be read as a style (or crash the table). Styles are given as Text spans instead (see _text).


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of the output stopped early (``casefind build-list DATA | head``): not an error, and
        every file was already written (outputs are written before the list is printed). Print nothing more
        and exit 0; rich's default exits 1, which here means an internal error."""
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (sys.stderr if self.stderr else sys.stdout).fileno())
        raise typer.Exit(0)


out = _Console(markup=False)
err = _Console(stderr=True, markup=False)
# control characters, and the invisible marks that reorder text (a right-to-left override can make a line read
# differently from what it holds)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _text(value, style: str = "") -> Text:
    """One line of text from the extract or the user, printed as it reads: control characters, which could make
    up an escape sequence that drives the terminal, are shown as U+FFFD, and so are a line break or a tab (in a
    name, say), which would break the list's rows."""
    return Text(_CONTROL.sub("\ufffd", str(value)), style=style)


def _lines(values, style: str = "") -> Text:
    """Several lines, each printed as ``_text`` prints one."""
    return Text("\n".join(_CONTROL.sub("\ufffd", str(v)) for v in values), style=style)


def _styled(label: str, style: str, rest: str) -> Text:
    """A label before casefind's own text, whose line breaks (a problem's HINT line) are kept."""
    return Text.assemble((label, style), " ", _lines(rest.split("\n")))


def _flag(name: str, help: str):
    """An on/off switch. Its empty metavar stops typer showing ``<bool>``, as if the switch took a value."""
    return typer.Option(False, name, metavar="", help=help)


def _path(name: str, help: str, default: Path | None = None):
    """A file or folder option. Not ``readable``: typer would stop on an existing path it cannot read with a
    usage error (exit code 2) before casefind runs, where an unreadable protocol is exit code 3, an --out file
    casefind may replace need not be readable, and casefind's own messages carry a hint."""
    return typer.Option(default, name, readable=False, help=help)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _stopped_by_signals():
    """Ctrl-C, a scheduler's SIGTERM or a closed terminal's SIGHUP stop a run as KeyboardInterrupt does, so that
    every ``finally`` runs: the extract's work folder (it can hold a UTF-8 copy of a whole CSV file) and
    DuckDB's spill folder are removed, as on any other stop; by default SIGTERM and SIGHUP end the process with
    neither. Yields the signals received (DuckDB may report an interrupted query as another error)."""
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    try:
        earlier = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread (an embedding application): leave its handlers alone
        earlier = {}
    try:
        yield received
    finally:
        for sig, handler in earlier.items():
            signal.signal(sig, handler)


def _friendly_errors(func):
    """User errors: one clear message and their exit code. Bugs: no traceback (it might hold patient data)
    unless CASEFIND_DEBUG=1 is set. A run stopped by a signal says so and exits with 128 + the signal's number
    (130 for Ctrl-C), never as an internal error."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _stopped_by_signals() as received:
            try:
                return func(*args, **kwargs)
            except UserError as exc:
                err.print(_styled("error:", "bold red", exc.render()), highlight=False, soft_wrap=True)
                raise typer.Exit(int(exc.exit_code)) from None
            except (typer.Exit, typer.Abort):
                raise
            except (KeyboardInterrupt, Exception) as exc:
                if received or isinstance(exc, KeyboardInterrupt):
                    signum = received[0] if received else signal.SIGINT
                    err.print(_styled("stopped:", "bold red", f"{signal.Signals(signum).name} received"))
                    raise typer.Exit(128 + int(signum)) from None
                _internal_error(exc)

    return wrapper


def _internal_error(exc: Exception) -> None:
    """A bug: its kind and where to report it, not its details (they may hold patient data)."""
    if os.environ.get("CASEFIND_DEBUG") == "1":
        raise exc
    err.print(
        _styled(
            "internal error:",
            "bold red",
            f"{type(exc).__name__} in casefind {__version__}. Details are hidden because they may contain "
            "patient data; rerun with CASEFIND_DEBUG=1 to see them, and report the bug without sharing "
            "patient data.",
        ),
        highlight=False,
    )
    raise typer.Exit(int(ExitCode.INTERNAL)) from None


def _parse_date(value: str, option: str) -> date:
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise OptionError(f"{option}: expected a date as YYYY-MM-DD, got '{value}'") from None


def _parse_as_of(value: str | None) -> date:
    return date.today() if value is None else _parse_date(value, "--as-of")


TABLE_MIN_WIDTH = 110  # below this the "Why" column is too narrow to read: the list is printed stacked


def _print_list(case_list) -> None:
    """The list as a table on a wide terminal; stacked (one block per child, reasons full width below the
    child's line) on a narrow one or when printed to a file or pipe, which rich takes as 80 columns."""
    info = case_list.info
    title = f"Discussion list for the meeting on {info.as_of:%d %B %Y}"
    families = _families(case_list)
    if out.width < TABLE_MIN_WIDTH:
        out.print(_text(title, "bold"))
        for header, adults, children in families:
            out.print()
            out.print(_text(header, "bold"))
            _print_indented(_text(f"Adults: {adults}", "dim"), 5)
            for rank, name, age, nhs, score, why in children:
                line = f"{rank:>3}. {name}, age {age}" + (f", NHS {nhs}" if nhs else "") + f", score {score}"
                out.print(_text(line))
                _print_indented(why, 5)
        return
    table = Table(title=title, show_lines=True, expand=False)
    for name, justify in (
        ("#", "right"),
        ("Name", "left"),
        ("Age", "right"),
        ("NHS number", "left"),
        ("Score", "right"),
        ("Why", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")
    for header, adults, children in families:
        table.add_row("", _text(header, "bold"), "", "", "", _text(f"Adults: {adults}", "dim"))
        for rank, name, age, nhs, score, why in children:
            table.add_row(rank, _text(name), age, _text(nhs), score, why)
    out.print(table)


def _print_indented(text: Text, indent: int) -> None:
    """``text`` wrapped to the terminal with every line indented, and no trailing spaces in a file."""
    for line in text.wrap(out, max(out.width - indent, 20)):
        line.rstrip()
        out.print(Text(" " * indent) + line, soft_wrap=True)


def _families(case_list) -> list[tuple[str, str, list[tuple]]]:
    """Per family, in rank order: its header, its linked adults, and per listed child the cells printed
    (rank, name, age, NHS number, score, and why: the evidence with any notes)."""
    adults_by_family = family_adults_text(case_list.adults)
    families = []
    for family_rank, family in case_list.entries.groupby("family_rank", sort=True):
        first = family.iloc[0]
        children = []
        for row in family.itertuples():
            name = ", ".join(p for p in (row.family_name, row.given_name) if isinstance(p, str) and p)
            # A row staff could not find in the clinical system without its id.
            name = name or f"(no name; patient_id {row.patient_id})"
            nhs = row.nhs_number if isinstance(row.nhs_number, str) else ""
            why = _lines(row.evidence.split(" | "))
            if row.notes:
                why.append_text(_lines(["", row.notes], "italic"))
            children.append((str(row.rank), name, str(row.age), nhs, score_text(row.score), why))
        header = f"Family {family_rank} ({first.family_id})"
        families.append((header, adults_by_family.get(first.family_id, "") or "none linked", children))
    return families


def _summary(info) -> str:
    read = ", ".join(f"{n} {t}" for t, n in info.rows_read.items() if t in ("patients", "events"))
    text = (
        f"Read {read}; population {info.population}; listed {info.listed}; as of {info.as_of.isoformat()}; "
        f"protocol '{info.protocol_name}' version {info.protocol_version} (sha256 {info.protocol_sha256[:12]})."
    )
    if info.held_back_without_concern:
        n = info.held_back_without_concern
        text += (
            f" {n} more child{'ren' if n != 1 else ''} meet{'s' if n == 1 else ''} criteria that need a "
            "professional-concern flag but have none."
        )
    if info.below_threshold:
        n = info.below_threshold
        text += f" {n} more below the tier threshold (--all shows them)."
    gaps = "; ".join(f"{what}: {n}" for what, n in info.data_gaps.items() if n)
    if gaps:
        text += f" Data gaps: {gaps}."
    if info.rows_rejected:
        text += " " + _left_out(info.rows_rejected, info.rejects_file)
    return text


def _left_out(rows: int, rejects_file) -> str:
    """The summary's line on rows --skip-bad-rows left out, and where they were written."""
    return f"{'1 bad row was' if rows == 1 else f'{rows} bad rows were'} left out (see {rejects_file})."


@app.command("build-list")
@_friendly_errors
def build_list(
    data_dir: Path = typer.Argument(..., help="Folder with patients.csv/.parquet, events.csv/.parquet, ..."),
    rules: Path = _path("--rules", "Selection protocol YAML (default: the bundled protocol)."),
    as_of: str = typer.Option(None, "--as-of", metavar="YYYY-MM-DD", help="Meeting date YYYY-MM-DD (default: today)."),
    out_file: Path = _path("--out", "Also write the list: .csv, .parquet, .json or .xlsx."),
    mapping: Path = _path("--mapping", "YAML mapping your export's headers to casefind's."),
    skip_bad_rows: bool = _flag(
        "--skip-bad-rows", "Leave bad rows out (written to a rejects file) instead of stopping."
    ),
    quiet: bool = _flag("--quiet", "Print only the summary line, not the table."),
    show_all: bool = _flag("--all", "Also list children below the tier threshold (marked in the notes)."),
    full: bool = _flag("--full", "Name linked adults (the full meeting list), not just relationship."),
    overwrite: bool = _flag("--overwrite", "Replace an existing --out file, its provenance and rejects files."),
) -> None:
    """Build the ranked discussion list for a meeting and print it (and write it with --out)."""
    meeting = _parse_as_of(as_of)
    rejects_file = api.check_list_outputs(out_file, meeting, skip_bad_rows=skip_bad_rows, overwrite=overwrite)
    case_list = api.build_list(
        data_dir,
        rules=rules,
        as_of=meeting,
        mapping=mapping,
        skip_bad_rows=skip_bad_rows,
        show_all=show_all,
        full=full,
    )
    case_list, written = api.save_list(case_list, out_file, rejects_file, overwrite=overwrite)
    if not quiet:
        _print_list(case_list)
    for warning in case_list.info.warnings:
        err.print(_styled("warning:", "yellow", warning), highlight=False, soft_wrap=True)
    out.print(_text(_summary(case_list.info)), highlight=False, soft_wrap=True)
    if out_file is not None:
        names = [str(written[0]), *(path.name for path in written[1:])]  # the list, its provenance, its rejects
        out.print(f"Wrote {', '.join(names[:-1])} and {names[-1]}.", highlight=False, soft_wrap=True)


def _parse_range(text: str, option: str) -> tuple[date, date]:
    start, sep, end = text.partition("..")
    if not sep:
        raise OptionError(f"{option}: expected FROM..TO such as 2024-01-01..2024-12-31, got '{text}'")
    return _parse_date(start, option), _parse_date(end, option)


@app.command("coding-report")
@_friendly_errors
def coding_report(
    data_dir: Path = typer.Argument(..., help="Extract folder (as for build-list)."),
    date_from: str = typer.Option(..., "--from", metavar="YYYY-MM-DD", help="First day of the report, YYYY-MM-DD."),
    date_to: str = typer.Option(
        ...,
        "--to",
        metavar="YYYY-MM-DD",
        help="Last day of the report, YYYY-MM-DD (inclusive; cut to the extract's latest event date).",
    ),
    by: str = typer.Option("month", "--by", help="Period: month, quarter or year."),
    out_dir: Path = _path(
        "--out", "Folder for the CSVs and report.html (not one holding an earlier report).", Path("coding-report")
    ),
    rules: Path = _path("--rules", "Protocol whose report_category codelists are counted."),
    compare: tuple[str, str] | None = typer.Option(
        None,
        "--compare",
        metavar="FROM..TO FROM..TO",
        help="Before and after ranges, e.g. 2024-01-01..2024-12-31 2025-01-01..2025-12-31.",
    ),
    breakdown: list[str] = typer.Option(
        ["category", "practice", "clinician", "age_band", "sex"],
        "--breakdown",
        metavar="NAME",
        help="Repeat to choose breakdowns.",
    ),
    no_suppress: bool = _flag(
        "--no-suppress", "Show small numbers (for use inside the practice only; recorded in the output)."
    ),
    pseudonymise_clinicians: bool = typer.Option(
        True,
        "--pseudonymise-clinicians/--no-pseudonymise-clinicians",
        metavar="",  # an on/off pair, as _flag: no <bool>
        help="Replace clinician ids with codes such as C3FA9B2, the same in every report (the default); "
        "--no-pseudonymise-clinicians shows the ids (recorded in the output).",
    ),
    clinician_key: str = typer.Option(
        None,
        "--clinician-key",
        envvar="CASEFIND_CLINICIAN_KEY",
        metavar="KEY",
        show_envvar=True,
        help="The practice's private key for the clinician codes: without it anyone who can guess the ids' "
        "format can recompute them. Keep it with the practice; the same key gives the same codes.",
    ),
    mapping: Path = _path("--mapping", "YAML mapping your export's headers to casefind's."),
    skip_bad_rows: bool = _flag(
        "--skip-bad-rows",
        "Leave bad rows out instead of stopping; they are listed in OUT/rejects.csv (no patient identifiers).",
    ),
    as_of: str = typer.Option(
        None,
        "--as-of",
        metavar="YYYY-MM-DD",
        help="The run's date (default: today): events after it do not move the extract's end. Recorded in the "
        "output; the same extract and options, --as-of included, give identical files.",
    ),
) -> None:
    """Coding-rate report for auditors: children coded per 1000 child-years, SPC chart, funnel plot."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from casefind.reports import REJECTS_FILE

    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    run_date = _parse_as_of(as_of)
    ranges = None
    if compare is not None:
        ranges = (_parse_range(compare[0], "--compare"), _parse_range(compare[1], "--compare"))
    # The spinner is for a person watching; a log or a scheduled job's mail gets the result lines only.
    columns = SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()
    with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
        task = bar.add_task("reading the extract", total=None)
        report, written = api.coding_report(
            data_dir,
            out_dir,
            date_from=start,
            date_to=end,
            by=by,
            rules=rules,
            mapping=mapping,
            skip_bad_rows=skip_bad_rows,
            compare=ranges,
            breakdowns=tuple(breakdown),
            suppress=not no_suppress,
            pseudonymise_clinicians=pseudonymise_clinicians,
            clinician_key=clinician_key,
            progress=lambda step: bar.update(task, description=step),
            as_of=run_date,
        )
    for notice in report.notices:
        err.print(_styled("warning:", "yellow", notice), highlight=False, soft_wrap=True)
    control = "small numbers suppressed" if not no_suppress else "NOT suppressed (for use inside the practice only)"
    out.print(
        f"Coding-rate report {report.options.date_from}..{report.options.date_to} by {by}: {control}. "
        f"Wrote {', '.join(p.name for p in written)} to {out_dir}.",
        highlight=False,
        soft_wrap=True,
    )
    if report.rows_rejected:
        out.print(_text(_left_out(report.rows_rejected, out_dir / REJECTS_FILE)), highlight=False, soft_wrap=True)


@app.command("explain")
@_friendly_errors
def explain(
    data_dir: Path = typer.Argument(..., help="Extract folder (as for build-list)."),
    patient_id: str = typer.Argument(..., help="The patient_id to explain."),
    rules: Path = _path("--rules", "Selection protocol YAML (default: the bundled protocol)."),
    as_of: str = typer.Option(None, "--as-of", metavar="YYYY-MM-DD", help="Meeting date YYYY-MM-DD (default: today)."),
    mapping: Path = _path("--mapping", "YAML mapping your export's headers to casefind's."),
    skip_bad_rows: bool = _flag(
        "--skip-bad-rows", "Leave bad rows out instead of stopping; the output counts them and shows the first few."
    ),
) -> None:
    """Explain one patient: every criterion met or not and why, the score arithmetic, the family."""
    result = api.explain(
        data_dir, patient_id, rules=rules, as_of=_parse_as_of(as_of), mapping=mapping, skip_bad_rows=skip_bad_rows
    )
    for line in result.summary:
        out.print(_text(line), highlight=False, soft_wrap=True)
    table = Table(title="Criteria", show_lines=True)
    for col in ("criterion", "status", "why"):
        table.add_column(col, overflow="fold")
    for c in result.criteria:
        label = Text.assemble(_text(c.label), "\n", _text(c.criterion_id, "dim"))
        table.add_row(label, c.status, _lines(c.reasons))
    out.print(table)
    out.print(_text("Family links on the as-of date: " + "; ".join(result.family)), highlight=False, soft_wrap=True)
    for line in result.left_out:
        out.print(_text(line), highlight=False, soft_wrap=True)


@app.command("schema")
@_friendly_errors
def show_schema() -> None:
    """Print the extract schema: tables, columns, types, required or optional, and meaning."""
    table = Table(title="casefind extract schema (one file per table: NAME.csv or NAME.parquet)")
    for col in ("table", "column", "type", "required", "meaning"):
        table.add_column(col, overflow="fold", no_wrap=col in ("column", "required"))
    for row in schema.describe():
        table.add_row(*row.values())
    out.print(table)


@app.command("sample-data")
@_friendly_errors
def sample_data(
    directory: Path = typer.Argument(..., help="Folder to write the synthetic extract into (created if needed)."),
    patients: int = typer.Option(5000, "--patients", min=300, help="Number of patients (300 or more)."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives identical files."),
    as_of: str = typer.Option(
        "2026-11-24", "--as-of", metavar="YYYY-MM-DD", help="Date the practice is generated around."
    ),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    overwrite: bool = _flag("--overwrite", "Replace the extract files the folder already holds."),
) -> None:
    """Generate a deterministic synthetic practice (no real patients) to try casefind on."""
    from casefind import sample

    if fmt not in ("csv", "parquet"):
        raise OptionError(f"--format: expected csv or parquet, got '{fmt}'")
    summary = sample.generate_practice(
        directory, patients=patients, seed=seed, as_of=_parse_as_of(as_of), fmt=fmt, overwrite=overwrite
    )
    out.print(f"Wrote a synthetic practice to {directory}: {summary}", highlight=False, soft_wrap=True)


@app.command("rules")
@_friendly_errors
def copy_rules(
    directory: Path = typer.Argument(..., help="Folder to copy the bundled protocol into (created if needed)."),
    overwrite: bool = _flag("--overwrite", "Replace protocol files the folder already holds."),
) -> None:
    """Copy the bundled protocol, its codelists and an example mapping file into a folder, to edit."""
    written = api.copy_rules(directory, overwrite=overwrite)
    protocol = directory / "vulnerable-families.yaml"
    out.print(
        _text(
            f"Wrote {len(written)} files to {directory}. Edit {protocol}, "
            f"then: casefind build-list DATA --rules {protocol}"
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("version")
def show_version() -> None:
    """Print the casefind version."""
    out.print(__version__)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
