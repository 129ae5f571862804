"""`casefind coding-report` end to end, as an auditor runs it: files, exit codes, messages, privacy.

The extract is made so the figures can be worked out by hand. 750 children are registered and aged 8 to 10
throughout two 487-day comparison periods, so each period holds 750 x 487 / 365.25 = 1000 child-years.
Ten children get a child-protection code in the first period and fourteen in the second: 10 and 14 per
1000 child-years, a rate ratio of 14 / 10 = 1.4. Adults with the same codes add nothing. The extract's
earliest event is a blood pressure reading (no safeguarding code) on 01/06/2020, long before the report,
and its latest another on 30/09/2025: the day it was taken.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import shlex
import stat
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casefind.api import build_list
from casefind.cli import app
from tests.conftest import REPO, parse_table, write_csv

runner = CliRunner()

CP_CODE = "342191000000101"  # Subject to child protection plan -> report_category "Child protection"
BEFORE = "2023-01-01..2024-05-01"  # 487 days
AFTER = "2024-05-02..2025-08-31"  # 487 days
CHILDREN = 750
CODED_BEFORE, CODED_AFTER = 10, 14
CLINICIANS = ("DRSMITHX", "HVJONESQ")


def pipe_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = [" | ".join(columns)] + [" | ".join(row) for row in rows]
    return "\n".join(lines)


def nhs_numbers(count: int) -> list[str]:
    """Distinct valid (modulus 11) NHS numbers from the 999 test range."""
    numbers, n = [], 1000
    while len(numbers) < count:
        stem = f"999{n:06d}"
        check = 11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            numbers.append(stem + str(check % 11))
        n += 1
    return numbers


PATIENT_COLUMNS = [
    "patient_id", "nhs_number", "family_name", "given_name", "date_of_birth", "sex",
    "date_of_death", "registered_from", "registered_to", "practice_id",
]  # fmt: skip
EVENT_COLUMNS = ["patient_id", "code", "date", "clinician_id"]

# Two adults whose child-protection codes (on their own records) are outside the age range: never counted.
ADULTS = """
patient_id  | nhs_number | family_name | given_name | date_of_birth | sex | registered_from | practice_id
PATID-A0001 | 9990000026 | Quixotely   | Adult      | 1980-02-02    | F   | 2000-01-01      | PRACT-A
PATID-A0002 | 9990000034 | Quixotely   | Grown      | 1979-03-03    | M   | 2000-01-01      | PRACT-B
"""
ADULT_EVENTS = f"""
patient_id  | code      | date       | clinician_id
PATID-A0001 | {CP_CODE} | 2023-06-01 | DRSMITHX
PATID-A0002 | {CP_CODE} | 2025-06-01 | HVJONESQ
PATID-A0002 | 75367002  | 30/09/2025 | HVJONESQ
PATID-A0001 | 75367002  | 01/06/2020 | HVJONESQ
"""
EXTRACT_END = "2025-09-30"  # the blood pressure reading, the latest event; the latest code is on 2025-08-03


def patient_id(i: int) -> str:
    return f"PATID-{i:04d}"


def children() -> list[list[str]]:
    return [
        [patient_id(i), nhs, f"Zyxname{i:04d}", f"Given{i:04d}", "2015-01-01", "FM"[i % 2],
         "", "", "", ("PRACT-A", "PRACT-B")[i % 2]]
        for i, nhs in enumerate(nhs_numbers(CHILDREN))
    ]  # fmt: skip


def child_events() -> list[list[str]]:
    """Codes for children 0-9 in the first period, children 10-23 in the second; background codes for some."""
    rows = []
    for i in range(CODED_BEFORE):
        rows.append([patient_id(i), CP_CODE, f"2023-{1 + i:02d}-15", CLINICIANS[i % 2]])
    for i in range(CODED_BEFORE, CODED_BEFORE + CODED_AFTER):
        rows.append([patient_id(i), CP_CODE, f"2024-{6 + (i - 10) % 7:02d}-{1 + i}", CLINICIANS[i % 2]])
        rows.append([patient_id(i), CP_CODE, f"2025-0{1 + i % 8}-03", CLINICIANS[(i + 1) % 2]])  # a second code
    for i in range(100, 130):
        rows.append([patient_id(i), "390906007", "2024-03-03", CLINICIANS[i % 2]])  # follow-up encounter
    return rows


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("coding") / "extract"
    folder.mkdir()
    patients = parse_table(pipe_table(PATIENT_COLUMNS, children())) + parse_table(ADULTS)
    events = parse_table(pipe_table(EVENT_COLUMNS, child_events())) + parse_table(ADULT_EVENTS)
    write_csv(folder / "patients.csv", patients, PATIENT_COLUMNS)  # cells missing from ADULTS stay empty
    write_csv(folder / "events.csv", events, EVENT_COLUMNS)
    return folder


def run(*args: str):
    return runner.invoke(app, ["coding-report", *map(str, args)])


def report(extract: Path, out: Path, *options: str) -> Path:
    args = [extract, "--from", "2023-01-01", "--to", "2025-08-31", "--by", "quarter", "--out", out]
    result = run(*args, "--compare", BEFORE, AFTER, *options)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def default_report(extract, tmp_path_factory) -> Path:
    return report(extract, tmp_path_factory.mktemp("default") / "out")


@pytest.fixture(scope="module")
def open_report(extract, tmp_path_factory) -> Path:
    return report(extract, tmp_path_factory.mktemp("open") / "out", "--no-suppress")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def compare_row(out: Path, category: str) -> dict[str, str]:
    (row,) = [r for r in read_csv(out / "compare.csv") if r["category"] == category]
    return row


OUTPUTS = ["compare.csv", "funnel.csv", "provenance.json", "rates.csv", "report.html", "spc.csv"]


def test_writes_every_file_owner_only_and_says_so(extract, tmp_path):
    result = run(extract, "--from", "2023-01-01", "--to", "2025-08-31", "--by", "quarter", "--out", tmp_path / "o",
                 "--compare", BEFORE, AFTER)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "small numbers suppressed" in result.stdout
    assert "Wrote rates.csv, compare.csv, spc.csv, funnel.csv, report.html, provenance.json" in result.stdout
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == OUTPUTS  # no temporary files left
    for name in OUTPUTS:
        assert stat.S_IMODE((tmp_path / "o" / name).stat().st_mode) == 0o600, name


def test_no_progress_line_when_stderr_is_not_a_terminal(extract, tmp_path):
    """A scheduled job's log gets the result, not the spinner's last frame."""
    result = run(extract, "--from", "2023-01-01", "--to", "2025-08-31", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "reading the extract" not in result.stderr
    assert "rates by" not in result.stderr


def test_rerun_is_byte_identical(extract, default_report, tmp_path):
    again = report(extract, tmp_path / "again")
    for name in OUTPUTS:
        assert (again / name).read_bytes() == (default_report / name).read_bytes(), name


def test_provenance_records_each_input_file_as_a_list_does(extract, default_report):
    html_text = (default_report / "report.html").read_text(encoding="utf-8")
    recorded = json.loads(html.unescape(re.search(r"<dt>input_files</dt><dd>(.*?)</dd>", html_text).group(1)))
    expected = {
        table: {
            "file": f"{table}.csv",
            "format": "csv",
            "encoding": "utf-8",
            "sha256": hashlib.sha256((extract / f"{table}.csv").read_bytes()).hexdigest(),
        }
        for table in ("events", "patients")
    }
    assert recorded == expected
    assert build_list(extract, as_of=date(2025, 8, 31)).info.as_dict()["input_files"] == expected


def test_rate_ratio_worked_by_hand(open_report):
    row = compare_row(open_report, "Child protection")
    assert (row["period_before"], row["period_after"]) == (BEFORE, AFTER)
    assert (row["numerator_before"], row["child_years_before"], row["rate_before"]) == ("10", "1000.0000", "10.0000")
    assert (row["numerator_after"], row["child_years_after"], row["rate_after"]) == ("14", "1000.0000", "14.0000")
    assert row["rate_ratio"] == "1.4000"
    # exact conditional CI: 14 of the 24 coded children fall after; Clopper-Pearson for p = 14/24 is
    # beta(0.025; 14, 11) = 0.36643 .. beta(0.975; 15, 10) = 0.77890, and RR = p / (1 - p) at equal exposure
    assert (row["lower"], row["upper"]) == ("0.5784", "3.5229")
    assert row["suppressed"] == "false"
    assert compare_row(open_report, "any safeguarding code")["rate_ratio"] == "1.4000"
    nothing = compare_row(open_report, "Looked after")
    assert (nothing["numerator_before"], nothing["numerator_after"], nothing["rate_ratio"]) == ("0", "0", "")


def test_rate_ratio_with_disclosure_control_uses_the_rounded_counts(default_report):
    row = compare_row(default_report, "Child protection")
    # 10 stays 10; 14 is published as 15; child-years 1000 stay 1000; so the ratio is 15 / 10
    assert (row["numerator_before"], row["numerator_after"]) == ("10", "15")
    assert (row["rate_ratio"], row["lower"], row["upper"]) == ("1.5000", "0.6304", "3.7336")
    assert row["disclosure_control"].startswith("counts 0-7 suppressed")


def test_rates_count_children_not_codes_and_ignore_adults(open_report):
    rows = read_csv(open_report / "rates.csv")
    overall = {r["period"]: r for r in rows if r["breakdown"] == "overall" and r["category"] == "Child protection"}
    assert overall["2023-Q1"]["numerator"] == "3"  # children 0, 1, 2 (January to March 2023)
    assert overall["2023-Q1"]["codes"] == "3"
    assert sum(int(r["codes"]) for r in overall.values()) == CODED_BEFORE + 2 * CODED_AFTER
    # registered at the middle of every quarter: all 750 children, none of the adults
    assert {r["registered_midpoint"] for r in overall.values()} == {str(CHILDREN)}


def test_no_suppress_is_recorded_in_every_output(open_report, default_report):
    for name in ("rates.csv", "compare.csv"):
        assert all(r["disclosure_control"].startswith("NONE (--no-suppress)") for r in read_csv(open_report / name))
        assert not any("NONE" in r["disclosure_control"] for r in read_csv(default_report / name))
    html = (open_report / "report.html").read_text(encoding="utf-8")
    assert "Small-number suppression is OFF" in html
    assert "NONE (--no-suppress): for use inside the practice only; do not publish" in html
    assert "Small-number suppression is OFF" not in (default_report / "report.html").read_text(encoding="utf-8")


def test_suppressed_counts_are_hidden_or_multiples_of_five(default_report):
    rows = read_csv(default_report / "rates.csv")
    counts = [r[c] for r in rows for c in ("numerator", "codes", "registered_midpoint", "cohort_numerator")]
    assert all(c == "" or int(c) % 5 == 0 for c in counts)
    assert "" in counts  # 1-7 children coded in a quarter is common here


def test_clinicians_are_pseudonymised_unless_asked_not_to(extract, default_report, tmp_path):
    text = "".join((default_report / n).read_text(encoding="utf-8") for n in OUTPUTS)
    for clinician in CLINICIANS:
        assert clinician not in text
    groups = {r["group"] for r in read_csv(default_report / "rates.csv") if r["breakdown"] == "clinician"}
    assert groups == {"CBEB184", "C3822FD"}  # sha256("casefind" NUL id) starts beb184be... and 3822fddc...
    assert "&quot;pseudonymise_clinicians&quot;: true" in text
    out = report(extract, tmp_path / "shown", "--no-pseudonymise-clinicians")
    shown = "".join((out / n).read_text(encoding="utf-8") for n in OUTPUTS)
    assert all(c in shown for c in CLINICIANS)
    assert "&quot;pseudonymise_clinicians&quot;: false" in shown


def test_a_practice_key_makes_clinician_codes_only_it_can_recompute(extract, default_report, tmp_path, monkeypatch):
    """The published method with its public salt lets anyone who can guess the ids' format (GP03) recompute
    the codes; with the practice's key (--clinician-key, or CASEFIND_CLINICIAN_KEY) they are
    sha256(key NUL id), and the key itself is written nowhere."""
    key = "practice-secret-7f3a"
    monkeypatch.setenv("CASEFIND_CLINICIAN_KEY", key)
    out = report(extract, tmp_path / "keyed")
    groups = {r["group"] for r in read_csv(out / "rates.csv") if r["breakdown"] == "clinician"}
    expected = {"C" + hashlib.sha256(f"{key}\0{c}".encode()).hexdigest()[:6].upper() for c in CLINICIANS}
    assert groups == expected
    assert groups.isdisjoint({r["group"] for r in read_csv(default_report / "rates.csv")})
    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["options"]["clinician_key"] is True
    assert (
        json.loads((default_report / "provenance.json").read_text(encoding="utf-8"))["options"]["clinician_key"]
        is False
    )
    for name in OUTPUTS:
        assert key not in (out / name).read_text(encoding="utf-8"), name
    assert "only someone holding the key can tell whose a code is" in (out / "report.html").read_text(encoding="utf-8")


def test_no_patient_identifiers_in_any_output(extract, default_report, open_report):
    patients = read_csv(extract / "patients.csv")
    identifiers = {p[c] for p in patients for c in ("patient_id", "nhs_number", "family_name", "given_name")}
    assert len(identifiers) == 4 * CHILDREN + 7  # the two adults share a family name
    for folder in (default_report, open_report):
        for name in OUTPUTS:
            text = (folder / name).read_text(encoding="utf-8")
            assert "PATID" not in text and "Zyxname" not in text and "Quixotely" not in text, name
            leaked = {i for i in identifiers if i in text}
            assert not leaked, f"{name} contains {len(leaked)} patient identifier(s)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "2024-13-01", "--to", "2025-08-31"], "--from: expected a date as YYYY-MM-DD, got '2024-13-01'"),
        (["--from", "2024-01-01", "--to", "31/12/2025"], "--to: expected a date as YYYY-MM-DD, got '31/12/2025'"),
        (
            ["--from", "2025-01-01", "--to", "2024-12-31"],
            "--from/--to: the report ends (2024-12-31) before it starts (2025-01-01)",
        ),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--compare", "2024-01-01-2024-12-31", AFTER],
            "--compare: expected FROM..TO such as 2024-01-01..2024-12-31, got '2024-01-01-2024-12-31'",
        ),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--compare", BEFORE, "2025-02-30..2025-08-31"],
            "--compare: expected a date as YYYY-MM-DD, got '2025-02-30'",
        ),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--compare", AFTER, AFTER],
            "--compare: the two date ranges are the same",
        ),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--by", "week"],
            "--by: expected one of month, quarter, year, got 'week'",
        ),
        (
            ["--from", "2025-10-01", "--to", "2025-12-31"],
            f"--from: 2025-10-01 is after the extract's latest event date ({EXTRACT_END})\n"
            f"  HINT: choose dates up to {EXTRACT_END}, or use a later extract",
        ),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--compare", BEFORE, "2025-10-01..2025-12-31"],
            f"--compare: the range 2025-10-01..2025-12-31 starts after the extract's latest event date ({EXTRACT_END})",
        ),
        (["--from", "2024-01-01", "--to", "9999-12-31"], "--to: 9999-12-31 is not between 1850 and 2200"),
        (["--from", "1700-01-01", "--to", "2025-08-31"], "--from: 1700-01-01 is not between 1850 and 2200"),
        (
            ["--from", "2024-01-01", "--to", "2025-08-31", "--compare", "0224-01-01..2024-12-31", AFTER],
            "--compare: 0224-01-01 is not between 1850 and 2200",
        ),
        (["--from", "2024-01-01", "--to", "2025-08-31", "--as-of", "0225-09-30"], "--as-of: 0225-09-30 is not"),
        (
            ["--from", "2023-01-01", "--to", "2025-08-31", "--compare", "2023-01-01..2024-06-30", AFTER],
            "--compare: the ranges 2023-01-01..2024-06-30 and 2024-05-02..2025-08-31 overlap\n"
            "  HINT: give the BEFORE range first, ending before the AFTER range starts",
        ),
        (
            ["--from", "2023-01-01", "--to", "2025-08-31", "--compare", "2023-01-01..2025-08-31", AFTER],
            "--compare: the ranges 2023-01-01..2025-08-31 and 2024-05-02..2025-08-31 overlap",
        ),
        (
            ["--from", "2023-01-01", "--to", "2025-08-31", "--compare", AFTER, BEFORE],
            f"--compare: the ranges {AFTER} and {BEFORE} are in the wrong order",
        ),
    ],
    ids=[
        "bad-from",
        "bad-to",
        "to-before-from",
        "compare-no-dots",
        "compare-bad-date",
        "compare-same",
        "by-week",
        "from-after-extract",
        "compare-after-extract",
        "to-year-9999",
        "from-year-1700",
        "compare-year-0224",
        "as-of-year-0225",
        "compare-overlap",
        "compare-nested",
        "compare-reversed",
    ],  # fmt: skip
)
def test_bad_options_exit_2_with_one_clear_line(extract, tmp_path, options, message):
    if "--compare" not in options:
        options = [*options, "--compare", BEFORE, AFTER]  # so only the option under test is wrong
    result = run(extract, "--out", tmp_path / "o", *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_report_ends_on_the_extracts_latest_event_and_says_so(extract, tmp_path):
    result = run(extract, "--from", "2025-01-01", "--to", "2026-06-30", "--by", "quarter", "--no-suppress",
                 "--out", tmp_path / "o", "--compare", "2025-01-01..2025-06-30", "2025-07-01..2025-12-31")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-2:] == [
        f"warning: The report ends on {EXTRACT_END}, the extract's latest event date, not on --to 2026-06-30: "
        "the extract holds no codes after it, so later days would read as days with none.",
        f"warning: The --compare range 2025-07-01..2025-12-31 ends on {EXTRACT_END}, the extract's latest event "
        "date, not on 2025-12-31.",
    ]
    assert f"Coding-rate report 2025-01-01..{EXTRACT_END} by quarter" in result.stdout
    rows = [r for r in read_csv(tmp_path / "o" / "rates.csv") if r["breakdown"] == "overall"]
    assert sorted({(r["period"], r["period_end"]) for r in rows}) == [
        ("2025-Q1", "2025-03-31"), ("2025-Q2", "2025-06-30"), ("2025-Q3", EXTRACT_END),
    ]  # fmt: skip
    assert compare_row(tmp_path / "o", "Child protection")["period_after"] == f"2025-07-01..{EXTRACT_END}"
    html_text = html.unescape((tmp_path / "o" / "report.html").read_text(encoding="utf-8"))
    assert f'<p class="notice">The report ends on {EXTRACT_END}, the extract\'s latest event date' in html_text
    options = json.loads(re.search(r"<dt>options</dt><dd>(.*?)</dd>", html_text).group(1))
    assert (options["date_to"], options["date_to_requested"], options["extract_end"]) == (
        EXTRACT_END, "2026-06-30", EXTRACT_END,
    )  # fmt: skip


def test_unreadable_event_dates_do_not_move_the_extracts_end(extract, tmp_path):
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_bytes((extract / "patients.csv").read_bytes())
    events = (extract / "events.csv").read_text(encoding="utf-8") + "PATID-A0001,75367002,2031-02-30,DRSMITHX\n"
    (folder / "events.csv").write_text(events, encoding="utf-8")
    result = run(folder, "--from", "2025-01-01", "--to", "2026-06-30", "--out", tmp_path / "o", "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert f"Coding-rate report 2025-01-01..{EXTRACT_END} by month" in result.stdout


def test_an_earlier_report_in_the_out_folder_is_never_overwritten(extract, tmp_path):
    first = report(extract, tmp_path / "o")
    before = {name: (first / name).read_bytes() for name in OUTPUTS}
    result = run(extract, "--from", "2024-01-01", "--to", "2024-12-31", "--out", first)  # no --compare this time
    assert result.exit_code == 4, result.output
    assert (
        result.stderr.splitlines()[-2:]
        == (
            f"error: {first}: already holds rates.csv, compare.csv, spc.csv, funnel.csv, report.html, "
            "provenance.json from an earlier report; a report never overwrites one\n"
            "  HINT: choose a new --out folder, or move the earlier report's files away"
        ).splitlines()
    )
    assert {name: (first / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(p.name for p in first.iterdir()) == OUTPUTS


def test_compare_needs_two_ranges(extract, tmp_path):
    result = run(extract, "--from", "2024-01-01", "--to", "2025-08-31", "--out", tmp_path / "o", "--compare", BEFORE)
    assert result.exit_code == 2
    assert "--compare" in result.stderr


def test_compare_is_optional(extract, tmp_path):
    result = run(extract, "--from", "2024-01-01", "--to", "2024-12-31", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [n for n in OUTPUTS if n != "compare.csv"]


# --- the README example --------------------------------------------------------------------------------


def readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Coding-rate reports for auditors", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"<!-- coding-report-example -->\n```bash\n(.*?)\n```", section, flags=re.S)
    assert match, "the README's coding-rate section must show its example command"
    return match.group(1).strip()


def test_readme_example_runs(monkeypatch, tmp_path):
    args = shlex.split(readme_example())
    assert args[:3] == ["casefind", "coding-report", "sample_data"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    result = runner.invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    out = Path(args[args.index("--out") + 1]) if "--out" in args else Path("coding-report")
    written = sorted(p.name for p in out.iterdir())
    assert {"rates.csv", "spc.csv", "funnel.csv", "report.html"} <= set(written)


# --- privacy of group labels, the as-of date, provenance, the --out folder -------------------------------


def test_no_identifier_in_a_mis_mapped_column_becomes_a_group_label(extract, tmp_path):
    """A header mapped to the wrong column puts surnames or NHS numbers where sex, practice and clinician
    should be. With disclosure control and pseudonymisation both off (the most that is ever shown), none of
    them is printed: they are counted as one group, and stderr counts the rows without showing a value."""
    folder = tmp_path / "extract"
    folder.mkdir()
    patients = read_csv(extract / "patients.csv")
    for i, row in enumerate(patients[:40]):
        if i < 20:
            row["sex"] = row["family_name"]  # surname in the sex column
        elif i < 30:
            row["sex"] = row["nhs_number"]
        else:
            row["practice_id"] = patients[100 + i]["patient_id"]  # another child's id as the practice
    for i, row in enumerate(patients[40:50]):
        row["sex"] = [" female", "MALE", "Indeterminate", "u", "Unknown"][i % 5]  # spellings, one label each
    write_csv(folder / "patients.csv", patients, list(patients[0]))
    events = read_csv(extract / "events.csv")
    for i, row in enumerate(events[:12]):
        row["clinician_id"] = [patients[300]["nhs_number"], patients[301]["given_name"], "999 000 0026"][i % 3]
    write_csv(folder / "events.csv", events, list(events[0]))
    out = tmp_path / "o"
    result = run(folder, "--from", "2023-01-01", "--to", "2025-08-31", "--by", "quarter", "--out", out,
                 "--no-suppress", "--no-pseudonymise-clinicians")  # fmt: skip
    assert result.exit_code == 0, result.output
    identifiers = {p[c] for p in patients for c in ("patient_id", "nhs_number", "family_name", "given_name")}
    identifiers.add("999 000 0026")
    for name in [n for n in OUTPUTS if n != "compare.csv"]:
        text = (out / name).read_text(encoding="utf-8")
        leaked = {i for i in identifiers if i in text}
        assert not leaked, f"{name} contains {len(leaked)} patient identifier(s)"
    rows = read_csv(out / "rates.csv")
    groups = {b: {r["group"] for r in rows if r["breakdown"] == b} for b in ("sex", "practice", "clinician")}
    assert groups["sex"] == {"F", "M", "I", "U", "other or not recorded"}
    assert groups["practice"] == {"PRACT-A", "PRACT-B", "other or not recorded"}
    assert groups["clinician"] == {*CLINICIANS, "other or not recorded"}
    warnings = result.stderr
    assert "30 patients have a sex other than F, M, I or U" in warnings
    assert "10 patients have a practice_id that does not look like a practice code" in warnings
    assert "12 coded events have a clinician_id that does not look like a clinician code" in warnings


def test_the_as_of_date_is_used_for_the_extracts_end_and_recorded(extract, tmp_path):
    """On 2025-09-15 the blood pressure reading of 2025-09-30 lies in the future: the extract ends with the
    latest code, 2025-08-03, whichever day the report is run, and the run can be repeated exactly."""
    args = [extract, "--from", "2025-01-01", "--to", "2025-08-31", "--as-of", "2025-09-15"]
    first, second = run(*args, "--out", tmp_path / "a"), run(*args, "--out", tmp_path / "b")
    assert second.exit_code == 0, second.output
    assert first.exit_code == 0, first.output
    assert "1 event is dated 2025-09-30, after the as-of date (2025-09-15)" in first.stderr
    assert "Coding-rate report 2025-01-01..2025-08-03 by month" in first.stdout
    html_text = html.unescape((tmp_path / "a" / "report.html").read_text(encoding="utf-8"))
    options = json.loads(re.search(r"<dt>options</dt><dd>(.*?)</dd>", html_text).group(1))
    assert (options["as_of"], options["extract_end"], options["events_after_as_of"]) == ("2025-09-15", "2025-08-03", 1)
    for name in ("rates.csv", "spc.csv", "funnel.csv", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_provenance_records_the_mapping_file_and_skip_bad_rows(extract, default_report, tmp_path):
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_text(
        (extract / "patients.csv").read_text(encoding="utf-8").replace("date_of_birth", "Born On", 1), encoding="utf-8"
    )
    (folder / "events.csv").write_bytes((extract / "events.csv").read_bytes())
    mapping = tmp_path / "headers.yaml"
    mapping.write_bytes(b"patients:\n  columns:\n    Born On: date_of_birth\n")
    out = tmp_path / "o"
    result = run(folder, "--from", "2024-01-01", "--to", "2024-12-31", "--out", out, "--mapping", mapping,
                 "--skip-bad-rows")  # fmt: skip
    assert result.exit_code == 0, result.output

    def provenance(folder: Path, key: str):
        text = (folder / "report.html").read_text(encoding="utf-8")
        return json.loads(html.unescape(re.search(rf"<dt>{key}</dt><dd>(.*?)</dd>", text).group(1)))

    assert provenance(out, "mapping") == {
        "file": "headers.yaml",
        "sha256": hashlib.sha256(mapping.read_bytes()).hexdigest(),
    }
    assert provenance(out, "options")["skip_bad_rows"] is True
    assert provenance(default_report, "mapping") is None
    assert provenance(default_report, "options")["skip_bad_rows"] is False


def test_an_out_folder_that_cannot_be_created_stops_before_the_extract_is_read(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    missing = tmp_path / "no-such-extract"  # reading it would fail with another message
    result = run(missing, "--from", "2024-01-01", "--to", "2024-12-31", "--out", tmp_path / "a-file" / "report")
    assert result.exit_code == 4, result.output
    assert result.stderr.splitlines()[-2:] == [
        f"error: {tmp_path / 'a-file' / 'report'}: cannot create the report there: {tmp_path / 'a-file'} is a file, "
        "not a folder",
        "  HINT: choose another --out",
    ]


EXTRACT_START = "2020-06-01"  # the earliest event: a blood pressure reading


def test_report_starts_on_the_extracts_earliest_event_and_says_so(extract, tmp_path):
    result = run(extract, "--from", "2019-01-01", "--to", "2020-12-31", "--by", "quarter", "--no-suppress",
                 "--breakdown", "category", "--out", tmp_path / "o")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"warning: The report starts on {EXTRACT_START}, the extract's earliest event date, not on --from "
        "2019-01-01: the extract holds no events before it, so earlier days would read as days when nobody was "
        "coded."
    ) in result.stderr
    rows = [r for r in read_csv(tmp_path / "o" / "rates.csv") if r["breakdown"] == "overall"]
    assert sorted({(r["period"], r["period_start"]) for r in rows}) == [
        ("2020-Q2", EXTRACT_START), ("2020-Q3", "2020-07-01"), ("2020-Q4", "2020-10-01"),
    ]  # fmt: skip
    spc = {r["period"] for r in read_csv(tmp_path / "o" / "spc.csv")}
    assert min(spc) == EXTRACT_START[:7]
    provenance = json.loads((tmp_path / "o" / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["options"]["date_from_requested"] == "2019-01-01"
    assert provenance["options"]["extract_start"] == EXTRACT_START


def test_a_compared_range_before_the_extract_starts_stops(extract, tmp_path):
    result = run(extract, "--from", "2019-01-01", "--to", "2020-12-31", "--out", tmp_path / "o",
                 "--compare", "2019-01-01..2019-12-31", "2020-07-01..2020-12-31")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-2:] == [
        f"error: --compare: the range 2019-01-01..2019-12-31 ends before the extract's earliest event date "
        f"({EXTRACT_START})",
        f"  HINT: choose dates from {EXTRACT_START}, or use an extract that goes further back",
    ]
    assert not (tmp_path / "o").exists()


def test_a_clinician_who_never_codes_is_compared_on_the_children_they_saw(extract, tmp_path):
    """NURSE001 records blood pressure for 40 children and no safeguarding code: the typed events table holds
    only the protocol's codes, so the children seen are read from every row of the file. A bad row (an
    impossible date) left out with --skip-bad-rows does not count."""
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_bytes((extract / "patients.csv").read_bytes())
    extra = [f"{patient_id(i)},75367002,2024-03-03,NURSE001\n" for i in range(200, 240)]
    extra.append(f"{patient_id(300)},75367002,2024-02-30,NURSE002\n")
    events = (extract / "events.csv").read_text(encoding="utf-8") + "".join(extra)
    (folder / "events.csv").write_text(events, encoding="utf-8")
    result = run(folder, "--from", "2024-01-01", "--to", "2024-12-31", "--by", "year", "--out", tmp_path / "o",
                 "--no-suppress", "--no-pseudonymise-clinicians", "--skip-bad-rows")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {
        r["group"]: r
        for r in read_csv(tmp_path / "o" / "rates.csv")
        if r["breakdown"] == "clinician" and r["category"] == "any safeguarding code"
    }
    assert set(rows) == {*CLINICIANS, "NURSE001"}
    assert (rows["NURSE001"]["numerator"], rows["NURSE001"]["children_seen"]) == ("0", "40")
    assert rows["NURSE001"]["denominator"] == "" and rows["NURSE001"]["rate"] == ""
    assert "NURSE002" not in (tmp_path / "o" / "report.html").read_text(encoding="utf-8")


def test_the_extracts_warnings_reach_the_screen_the_report_and_its_provenance(extract, tmp_path):
    """A registered_to column under another name is not read: everyone counts as still registered and the
    child-years change. The auditor must be told, in the folder they keep, not only on the screen."""
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_text(
        (extract / "patients.csv").read_text(encoding="utf-8").replace("registered_to", "Deregistered", 1),
        encoding="utf-8",
    )
    (folder / "events.csv").write_bytes((extract / "events.csv").read_bytes())
    out = tmp_path / "o"
    result = run(folder, "--from", "2024-01-01", "--to", "2024-12-31", "--out", out)
    assert result.exit_code == 0, result.output
    warning = "column 'Deregistered' not used, and no column was found for registered_to"
    assert warning in result.stderr
    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert [w for w in provenance["warnings"] if warning in w] == [provenance["warnings"][0]]  # the first
    assert warning.replace("'", "&#x27;") in (out / "report.html").read_text(encoding="utf-8")


def test_rejects_csv_is_written_with_the_report_and_in_its_provenance(extract, tmp_path):
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_bytes((extract / "patients.csv").read_bytes())
    lines = (extract / "events.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[EVENT_COLUMNS.index("date")] = "31/02/2024"  # no such day: a bad row, left out with --skip-bad-rows
    lines[5] = ",".join(cells)
    (folder / "events.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "o"
    result = run(folder, "--from", "2024-01-01", "--to", "2024-12-31", "--out", out, "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["files_sha256"]["rejects.csv"] == hashlib.sha256((out / "rejects.csv").read_bytes()).hexdigest()
    assert "Wrote rates.csv, spc.csv, funnel.csv, report.html, rejects.csv, provenance.json" in result.stdout


def test_nhs_number_warnings_stay_out_of_the_report(extract, tmp_path):
    """A wrong check digit is build-list's warning, naming the patient's row: the report reads no NHS
    number, so neither its screen, nor report.html, nor provenance.json (which may leave the practice) say it.
    build-list on the same extract still warns."""
    folder = tmp_path / "extract"
    folder.mkdir()
    patients = (extract / "patients.csv").read_text(encoding="utf-8")
    first = nhs_numbers(1)[0]
    assert patients.count(first) == 1
    (folder / "patients.csv").write_text(patients.replace(first, first[:-1] + str((int(first[-1]) + 1) % 10)))
    (folder / "events.csv").write_bytes((extract / "events.csv").read_bytes())
    out = tmp_path / "o"
    result = run(folder, "--from", "2024-01-01", "--to", "2024-12-31", "--out", out)
    assert result.exit_code == 0, result.output
    assert "modulus 11" in " ".join(str(w) for w in build_list(folder, as_of=date(2025, 9, 30)).info.warnings)
    for text in (result.stderr, (out / "report.html").read_text(encoding="utf-8")):
        assert "modulus 11" not in text and "nhs_number" not in text
    assert not [w for w in json.loads((out / "provenance.json").read_text(encoding="utf-8"))["warnings"] if "NHS" in w]
