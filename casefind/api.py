"""The library API: one plain function per command. The CLI and tests call these."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import date
from pathlib import Path

from casefind import __version__, export
from casefind.dates import check_year
from casefind.engine import duckdb_engine
from casefind.errors import ExtractError, OptionError, Problem, ProtocolError
from casefind.extract import Extract, about_nhs_numbers, read_extract
from casefind.files import refuse_existing
from casefind.protocol import Protocol, default_protocol_path, load_protocol
from casefind.ranking import rank
from casefind.results import CaseList, RunInfo


def resolve_protocol(rules: str | Path | Protocol | None) -> Protocol:
    if isinstance(rules, Protocol):
        return rules
    return load_protocol(rules or default_protocol_path())


def _read(data_dir: str | Path, protocol: Protocol, mapping: str | Path | None, skip_bad_rows: bool) -> Extract:
    """The extract as ``protocol`` reads it: its events with a protocol code, and a warning for events under
    a code system none of its codelists uses."""
    return read_extract(
        data_dir,
        mapping=mapping,
        skip_bad_rows=skip_bad_rows,
        event_codes=protocol.all_codes(),
        code_systems={codelist.code_system for codelist in protocol.codelists.values()},
    )


def build_list(
    data_dir: str | Path,
    *,
    rules: str | Path | Protocol | None = None,
    as_of: date | None = None,
    mapping: str | Path | None = None,
    skip_bad_rows: bool = False,
    show_all: bool = False,
    full: bool = False,
) -> CaseList:
    """Read the extract in ``data_dir``, apply the protocol on ``as_of`` (default today), rank the list.

    ``show_all`` also lists children below the tier threshold (marked in ``notes``); ``full`` names the
    linked adults (the full meeting list) instead of giving only their relationship and patient id.
    """
    as_of = _meeting_date(as_of)
    protocol = resolve_protocol(rules)
    extract = _read(data_dir, protocol, mapping, skip_bad_rows)
    evaluation = duckdb_engine.evaluate(extract.con, protocol, as_of)
    ranked = rank(evaluation, protocol, as_of, show_all=show_all, full=full)
    info = run_info(
        extract,
        protocol,
        as_of,
        population=evaluation.population,
        listed=len(ranked.entries),
        mapping=mapping,
        skip_bad_rows=skip_bad_rows,
        show_all=show_all,
        full=full,
    )
    info = dataclasses.replace(
        info,
        held_back_without_concern=ranked.held_back,
        below_threshold=ranked.below_threshold,
        data_gaps=ranked.data_gaps,
        warnings=info.warnings + evaluation.warnings,
    )
    return CaseList(
        entries=ranked.entries, evidence=ranked.evidence, info=info, adults=ranked.adults, rejects=extract.rejects
    )


def _meeting_date(as_of: date | None) -> date:
    """``as_of``, or today; a year outside those casefind reads in an extract is a slip (``0224-11-24``)."""
    as_of = as_of or date.today()
    check_year("--as-of", as_of)
    return as_of


def _mapping_provenance(mapping: str | Path | None) -> dict[str, str] | None:
    """The ``--mapping`` file as provenance records it: its name and SHA-256 (None without one)."""
    if mapping is None:
        return None
    mapping = Path(mapping)
    return {"file": mapping.name, "sha256": hashlib.sha256(mapping.read_bytes()).hexdigest()}


def run_info(
    extract: Extract,
    protocol: Protocol,
    as_of: date,
    *,
    population: int,
    listed: int,
    mapping: str | Path | None = None,
    skip_bad_rows: bool = False,
    show_all: bool = False,
    full: bool = False,
) -> RunInfo:
    """The list's provenance: its inputs (the ``mapping`` file by name and SHA-256 too) and the options that
    change it, enough to run it again."""
    return RunInfo(
        as_of=as_of,
        protocol_name=protocol.name,
        protocol_version=protocol.version,
        protocol_sha256=protocol.fingerprint(),
        codelist_sha256=protocol.codelist_hashes(),
        input_files=extract.input_files(),
        casefind_version=__version__,
        rows_read=extract.rows_read,
        rows_rejected=extract.rejected_rows,
        population=population,
        listed=listed,
        warnings=tuple(str(w) for w in extract.warnings),
        mapping_file=_mapping_provenance(mapping),
        skip_bad_rows=skip_bad_rows,
        show_all=show_all,
        full=full,
    )


def with_rejects_file(case_list: CaseList, path: str) -> CaseList:
    """The same list, recording where its rejected rows were written."""
    return dataclasses.replace(case_list, info=dataclasses.replace(case_list.info, rejects_file=path))


def check_list_outputs(out: Path | None, as_of: date, *, skip_bad_rows: bool, overwrite: bool) -> Path:
    """Before the extract is read: ``out``'s format is one casefind writes, and ``out``, its provenance and the
    rejects file can be written without replacing an earlier run's (unless ``overwrite``; see
    ``export.check_outputs``). Returns where rejected rows go (``export.rejects_path``)."""
    if out is not None and out.suffix.lower() not in export.FORMATS:
        raise OptionError(f"--out: unknown format '{out.suffix or '(none)'}'; use one of {', '.join(export.FORMATS)}")
    rejects = export.rejects_path(out, as_of)
    # Beside --out, an earlier run's rejects file would pass for this one's: checked even if none can be written.
    export.check_outputs(out, rejects if skip_bad_rows or out is not None else None, overwrite=overwrite)
    return rejects


def save_list(
    case_list: CaseList, out: Path | None, rejects: Path, *, overwrite: bool = False
) -> tuple[CaseList, list[Path]]:
    """Write the list to ``out`` with its provenance and its rejects file, all or none (``export.write_list``);
    without ``out``, only the rejects file, if rows were left out. With ``overwrite``, a rejects file an earlier
    run left beside ``out`` is removed when this list has none, so that it cannot pass for this run's.

    Returns the list, recording where its rejected rows went, and the files written (the list first)."""
    left_out = bool(len(case_list.rejects))
    if left_out:
        case_list = with_rejects_file(case_list, str(rejects))
    if out is None:
        if left_out:
            export.write_rejects(case_list.rejects, rejects, overwrite=overwrite)
        return case_list, [rejects] if left_out else []
    export.write_list(case_list, out, overwrite=overwrite, rejects=rejects)
    if overwrite and not left_out:
        rejects.unlink(missing_ok=True)
    return case_list, [out, export.provenance_path(out), *([rejects] if left_out else [])]


def coding_report(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    date_from: date,
    date_to: date,
    by: str = "month",
    rules: str | Path | Protocol | None = None,
    mapping: str | Path | None = None,
    skip_bad_rows: bool = False,
    compare: tuple[tuple[date, date], tuple[date, date]] | None = None,
    breakdowns: tuple[str, ...] = ("category", "practice", "clinician", "age_band", "sex"),
    suppress: bool = True,
    pseudonymise_clinicians: bool = True,
    clinician_key: str | None = None,
    progress=None,
    as_of: date | None = None,
) -> tuple:
    """Coding rates of the protocol's report categories; writes CSVs and report.html into ``out_dir``.

    ``clinician_key``: the practice's private key for the clinician codes (``--clinician-key``); without one
    they follow the published method, which anyone who can guess the ids' format can recompute.

    The report ends by the extract's latest event date on or before ``as_of`` (default: today), the day the
    extract was taken; ``report.notices`` say when ``date_to`` or a compared range was cut short there, and
    how many events are dated after ``as_of`` (not used to find the end). ``as_of`` is recorded in the
    provenance: the same extract and options, ``as_of`` included, give byte-identical files. ``out_dir``
    must not hold an earlier report. Every option is checked before the extract is read, which can take
    minutes.

    With ``skip_bad_rows``, the bad rows left out are listed in ``out_dir/rejects.csv`` (0600) by file, row,
    column and problem; a value is quoted only when it has its column's shape (as build-list's messages do)
    and never from a column that identifies a patient. The provenance records ``skip_bad_rows`` and the
    ``mapping`` file by name and SHA-256. ``report.rows_rejected`` counts the rows left out and report.html
    says they were. Returns the ``casefind.reports.CodingReport`` and the files written.
    """
    from casefind import reports  # slow to import (scipy.stats): build-list and explain do without it
    from casefind.export import rejects_csv

    reports.check_out_dir(out_dir)  # before the extract is read, not after minutes of work
    as_of = _meeting_date(as_of)
    reports.check_options(date_from, date_to, by, breakdowns, compare)
    protocol = resolve_protocol(rules)
    categories = protocol.report_categories()
    if not categories:
        raise ProtocolError(
            Problem("", "no codelist has a report_category", "add 'report_category: NAME' to the codelists to count")
        )
    extract = _read(data_dir, protocol, mapping, skip_bad_rows)
    mapping_file = _mapping_provenance(mapping)  # read by now, so it exists
    report = reports.build_coding_report(
        extract.con,
        categories,
        protocol.population.min_age,
        protocol.population.max_age,
        date_from,
        date_to,
        by=by,
        breakdowns=breakdowns,
        compare=compare,
        suppress=suppress,
        pseudonymise_clinicians=pseudonymise_clinicians,
        clinician_salt=clinician_key or reports.PUBLIC_SALT,
        progress=progress,
        extract_end=reports.find_extract_end(extract.con, as_of),
    )
    notices = (*_report_warnings(extract), *report.notices)
    report = dataclasses.replace(report, rows_rejected=extract.rejected_rows, notices=notices)
    provenance = {
        "protocol": {"name": protocol.name, "version": protocol.version, "sha256": protocol.fingerprint()},
        "codelists_sha256": protocol.codelist_hashes(),
        "input_files": extract.input_files(),
        "rows_read": dict(sorted(extract.rows_read.items())),
        "rows_rejected": extract.rejected_rows,
        "options": {**report.options.as_dict(), "skip_bad_rows": skip_bad_rows},
        "mapping": mapping_file,  # as build-list records it: file name and SHA-256, or None
        "casefind_version": __version__,
    }
    # the rows left out, without their values (the report folder holds no identifiers), written with the report
    left_out = extract.rejects.drop(columns="record")
    written = reports.write_report(
        report, out_dir, provenance, {reports.REJECTS_FILE: rejects_csv(left_out)} if len(left_out) else {}
    )
    return report, written


def _report_warnings(extract: Extract) -> list[str]:
    """The extract's warnings about the files the coding report reads (patients and events: a column not found,
    blank rows skipped), which may change every figure and so come first in its notices. Those about the
    files it does not read (no relationships file) are the list's concern, not the report's; so are those
    about NHS numbers, which the report does not read: they name rows of single patients, which a report that
    may leave the practice must not."""
    read = [extract.files[t].path.name for t in ("patients", "events") if t in extract.files]
    return [str(w) for w in extract.warnings if any(name in w.location for name in read) and not about_nhs_numbers(w)]


def explain(
    data_dir: str | Path,
    patient_id: str,
    *,
    rules: str | Path | Protocol | None = None,
    as_of: date | None = None,
    mapping: str | Path | None = None,
    skip_bad_rows: bool = False,
):
    """Why one patient is (or is not) on the list: every criterion, the score and the family.

    With ``skip_bad_rows`` the explanation's ``left_out`` counts the bad rows left out (they may hide links,
    codes or appointments) and shows the first few problems; no rejects file is written (build-list writes
    one). A patient whose row in the patients file was left out stops the run with that row's problems.
    """
    from casefind.explain import explain as explain_patient
    from casefind.explain import rejected_patient

    patient_id = patient_id.strip()  # pasted with a space around it; the extract's ids are read trimmed
    as_of = _meeting_date(as_of)
    protocol = resolve_protocol(rules)
    extract = _read(data_dir, protocol, mapping, skip_bad_rows)
    evaluation = duckdb_engine.evaluate(extract.con, protocol, as_of)
    detail = duckdb_engine.patient_detail(extract.con, patient_id, as_of)
    if detail["person"].empty:
        rejected = rejected_patient(extract.rejects, extract.files["patients"].path.name, patient_id)
        if rejected is not None:
            raise ExtractError(rejected)
        raise OptionError("PATIENT_ID: no patient with this patient_id in the patients file")
    everyone = rank(evaluation, protocol, as_of, show_all=True)
    listed = rank(evaluation, protocol, as_of)
    return explain_patient(patient_id, protocol, as_of, everyone, listed, evaluation, detail, extract.rejects)


def copy_rules(directory: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the bundled protocol, its codelists, the report its codes' ``source`` cells cite
    (``safeguarding-codes.md``) and the example mapping file into ``directory`` to edit (the codelists keep
    their place beside the protocol, so its ``file:`` paths still hold). Files already there are replaced
    only with ``overwrite``. Returns the files written."""
    source = default_protocol_path().parent
    kept = (".yaml", ".csv", ".md")
    names = sorted(p.relative_to(source) for p in source.rglob("*") if p.suffix in kept and p.is_file())
    targets = [Path(directory) / name for name in names]
    if not overwrite:
        refuse_existing(
            targets,
            "already exists",
            "Nothing was written. Choose another folder, or add --overwrite to replace these files.",
        )
    for name, target in zip(names, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    return targets
