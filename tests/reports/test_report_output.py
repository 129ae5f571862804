"""The whole report: byte-identical re-runs, safe files, escaped HTML with no external references."""

import os
import re
import stat
from datetime import date, timedelta

import pytest

from casefind.reports import ANY_CATEGORY, build_coding_report, render_html, write_report
from casefind.reports.report import rates_csv
from casefind.reports.tidy_csv import format_cell

from .conftest import CATEGORIES, event, make_connection

PROVENANCE = {
    "casefind_version": "0.1.0",
    "protocol_hash": "sha256:abc",
    "inputs": {"events.csv": "sha256:def"},
}
COMPARE = ((date(2023, 1, 1), date(2023, 12, 31)), (date(2024, 1, 1), date(2024, 12, 31)))


def extract(categories=CATEGORIES):
    """Three practices, 300 children, codes spread deterministically over 2023-2024."""
    patients, events = [], []
    for i in range(300):
        dob = date(2008, 1, 1) + timedelta(days=(i * 37) % 5000)
        patients.append((f"p{i:03d}", dob, None, None, None, "FM"[i % 2], "ABC"[i % 3]))
        for j in range(i % 4):
            day = date(2023, 1, 1) + timedelta(days=(i * 53 + j * 191) % 730)
            code = [c for codes in categories.values() for _, c in codes][(i + j) % 3]
            events.append(event(f"p{i:03d}", code, day, ["=cmd()", "dr b", None][(i + j) % 3]))
    return make_connection(patients, events)


def build(categories=CATEGORIES, **kwargs):
    return build_coding_report(
        extract(categories),
        categories,
        0,
        17,
        date(2023, 1, 1),
        date(2024, 12, 31),
        compare=COMPARE,
        **kwargs,
    )


def test_rerun_gives_byte_identical_files(tmp_path):
    first = [p.read_bytes() for p in write_report(build(), tmp_path / "one", PROVENANCE)]
    second = [p.read_bytes() for p in write_report(build(), tmp_path / "two", PROVENANCE)]
    assert first == second
    names = sorted(os.listdir(tmp_path / "one"))
    assert names == ["compare.csv", "funnel.csv", "rates.csv", "report.html", "spc.csv"]  # no temp files left


def test_files_are_owner_only(tmp_path):
    for path in write_report(build(), tmp_path, PROVENANCE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rates_csv_is_tidy_sorted_and_records_disclosure_control():
    text = rates_csv(build())
    lines = text.split("\n")
    assert lines[0].startswith("period,group,numerator,denominator,rate,lower,upper,")
    assert text.endswith("\n") and "\r" not in text
    assert "counts 1-7 suppressed" in lines[1]
    open_text = rates_csv(build(suppress=False))
    assert "NONE (--no-suppress)" in open_text.split("\n")[1]
    # numerators in the suppressed file are 0, empty or multiples of 5
    header = lines[0].split(",")
    col = header.index("numerator")
    numerators = [line.split(",")[col] for line in lines[1:] if line]
    assert all(n == "" or int(n) % 5 == 0 for n in numerators)
    assert any(n == "" for n in numerators) and any(n not in ("", "0") for n in numerators)


def test_csv_cells_are_fixed_and_formula_safe():
    assert format_cell(1 / 3) == "0.3333"
    assert format_cell(-0.00001) == "0.0000"
    assert format_cell(float("nan")) == ""
    assert format_cell(True) == "true"
    assert format_cell("=cmd()") == "'=cmd()"
    assert format_cell(date(2024, 2, 29)) == "2024-02-29"


def test_pseudonymised_report_has_no_clinician_ids():
    report = build(pseudonymise_clinicians=True, funnel_unit="clinician")
    html = render_html(report, PROVENANCE)
    csv_text = rates_csv(report)
    for real in ("cmd()", "dr b"):
        assert real not in html and real not in csv_text
    assert set(report.rates[report.rates.breakdown == "clinician"].group) == {"C01", "C02", "unknown"}


def test_html_escapes_text_and_references_nothing_external():
    categories = {
        "<script>alert(1)</script>": [("snomed", "1001")],
        "cfc & co": [("snomed", "2001"), ("snomed", "1002")],
    }
    html = render_html(build(categories), {**PROVENANCE, "note": "<b>x</b>"})
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    references = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?([^"')\s>]+)""", html)
    assert all(r.startswith(("data:", "#")) for r in references), references
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert html.count("<svg") == 2


def test_report_tables_hold_the_any_category_and_compare():
    report = build()
    assert set(report.rates.category) == {*CATEGORIES, ANY_CATEGORY}
    assert list(report.compare.category) == [*CATEGORIES, ANY_CATEGORY]
    assert list(report.spc[report.spc.category == ANY_CATEGORY].period)[:2] == ["2023-01", "2023-02"]
    assert report.funnel_summary["unit"] == "practice" and sorted(report.funnel.group) == ["A", "B", "C"]


def test_unwritable_output_is_a_user_error(tmp_path):
    from casefind.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_report(build(), blocker / "sub", PROVENANCE)
