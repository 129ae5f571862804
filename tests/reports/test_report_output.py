"""The whole report: byte-identical re-runs, safe files, escaped HTML with no external references."""

import hashlib
import html
import json
import math
import os
import re
import stat
from datetime import date, timedelta

import pandas as pd
import pytest

from casefind.errors import OptionError, OutputError
from casefind.reports import ANY_CATEGORY, build_coding_report, render_html, write_report
from casefind.reports.html import LINE
from casefind.reports.measures import find_extract_end, pseudonym_map
from casefind.reports.report import DISCLOSURE_ON, compare_csv, funnel_csv, rates_csv, spc_csv
from casefind.reports.spc import xmr
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
            events.append(event(f"p{i:03d}", code, day, ["=cmd()", "GP02", None][(i + j) % 3]))
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
    assert names == ["compare.csv", "funnel.csv", "provenance.json", "rates.csv", "report.html", "spc.csv"]


def test_provenance_json_records_the_inputs_options_and_every_file(tmp_path):
    """One provenance.json for the report folder, as build-list's sidecar: what the caller recorded of the
    inputs, every option (as-of date, dates asked for and used), the warnings, and each file's SHA-256, so an
    auditor can re-run the report and check every CSV."""
    report = build(extract_end=date(2024, 10, 31))
    written = write_report(report, tmp_path, PROVENANCE)
    path = tmp_path / "provenance.json"
    assert path in written and stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["inputs"] == PROVENANCE["inputs"] and record["casefind_version"] == "0.1.0"
    assert record["protocol_hash"] == PROVENANCE["protocol_hash"]
    options = record["options"]
    assert (options["date_from"], options["date_to"], options["date_to_requested"]) == (
        "2023-01-01", "2024-10-31", "2024-12-31",
    )  # fmt: skip
    assert options["compare"] == [["2023-01-01", "2023-12-31"], ["2024-01-01", "2024-10-31"]]
    assert record["disclosure_control"] == DISCLOSURE_ON
    assert record["warnings"] == list(report.notices) and len(record["warnings"]) >= 2
    others = sorted(p.name for p in written if p != path)
    assert record["files_sha256"] == {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in others
    }


def test_files_are_owner_only(tmp_path):
    for path in write_report(build(), tmp_path, PROVENANCE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rates_csv_is_tidy_sorted_and_records_disclosure_control():
    text = rates_csv(build())
    lines = text.split("\n")
    assert lines[0].startswith("period,group,numerator,denominator,rate,lower,upper,")
    assert text.endswith("\n") and "\r" not in text
    assert "counts 0-7 suppressed" in lines[1]
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


def test_clinicians_are_pseudonymised_by_default():
    report = build(funnel_unit="clinician")
    html = render_html(report, PROVENANCE)
    csv_text = rates_csv(report)
    for real in ("cmd()", "GP02"):
        assert real not in html and real not in csv_text
    # sha256("casefind" NUL "GP02") starts 2c25e7...; "=cmd()" is no clinician code, so it is not even hashed
    assert set(report.rates[report.rates.breakdown == "clinician"].group) == {"C2C25E7", "other or not recorded"}
    shown = build(funnel_unit="clinician", pseudonymise_clinicians=False)
    assert set(shown.rates[shown.rates.breakdown == "clinician"].group) == {"GP02", "other or not recorded"}


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


# --- SPC chart under disclosure control, empty periods, infinite ratios, dates after the extract ----------

CODED_PER_MONTH = {1: 10, 2: 3, 3: 0, 4: 12, 5: 0, 6: 9}  # 2024; 3 and the 0s are suppressed, 12 -> 10, 9 -> 10


def steady_extract(coded=CODED_PER_MONTH, code="1001"):
    """1200 children aged 5 all through 2024 at one practice; ``coded[m]`` different children coded in month m."""
    patients = [(f"c{i:04d}", date(2019, 1, 1), None, None, None, "FM"[i % 2], "A") for i in range(1200)]
    events, child = [], 0
    for month, count in coded.items():
        for _ in range(count):
            events.append(event(f"c{child:04d}", code, date(2024, month, 10), "GP01"))
            child += 1
    return make_connection(patients, events)


def steady_report(date_from=date(2024, 1, 1), date_to=date(2024, 6, 30), **kwargs):
    return build_coding_report(steady_extract(), CATEGORIES, 0, 17, date_from, date_to, **kwargs)


def caption(html_text, section):
    body = html_text.split(f'<section id="{section}">', 1)[1]
    return re.search(r"<figcaption>(.*?)</figcaption>", body).group(1)


def test_spc_with_a_suppressed_month_has_no_lines_and_says_why():
    report = steady_report()
    lines = spc_csv(report).splitlines()
    assert lines[0].endswith(",special_cause,suppressed,disclosure_control")
    # child-years: 1200 x 31 / 365.25 = 101.8 -> 100 (January), 29 days -> 95.3 -> 95, 30 days -> 98.6 -> 100
    assert [line for line in lines if line.startswith(ANY_CATEGORY)] == [
        f"{ANY_CATEGORY},2024-01,100.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-02,,,,,,,,,false,false,false,false,false,true,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-03,,,,,,,,,false,false,false,false,false,true,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-04,100.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-05,,,,,,,,,false,false,false,false,false,true,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-06,100.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
    ]
    html_text = render_html(report, PROVENANCE)
    assert caption(html_text, "monthly-rate--spc-chart") == (
        "No mean, process limits or special causes: 3 of 6 months are suppressed (fewer than 8 children coded), and "
        "lines worked out from the other months would be biased, because disclosure control hides a month "
        "according to its count. Grey: the published months. For the full chart, run the report with "
        "--no-suppress inside the practice, or on an extract covering more children."
    )
    chart = html_text.split('<section id="monthly-rate--spc-chart">', 1)[1].split("</svg>", 1)[0]
    assert f'stroke="{LINE}"' not in chart and 'stroke-dasharray="6 4"' not in chart  # no mean, no limits
    assert chart.count("<circle") == 3 + 1  # the three published months and the legend's dot
    assert "published month (others suppressed)" in chart


def test_spc_with_nothing_suppressed_is_the_plain_xmr_chart():
    report = steady_report(suppress=False)
    spc = report.spc[report.spc.category == ANY_CATEGORY].reset_index(drop=True)
    days = [31, 29, 31, 30, 31, 30]
    rates = [1000 * n / (1200 * d / 365.25) for n, d in zip(CODED_PER_MONTH.values(), days, strict=True)]
    expected = xmr([f"2024-0{m}" for m in range(1, 7)], rates)
    assert not spc["suppressed"].any()
    pd.testing.assert_frame_equal(spc.drop(columns=["category", "suppressed"]), expected)
    assert spc["mean"].iloc[0] == pytest.approx(sum(rates) / 6)
    text = caption(render_html(report, PROVENANCE), "monthly-rate--spc-chart")
    assert text.startswith("Grey: common-cause variation.") and text.endswith("Special-cause periods: none.")


def test_a_report_with_no_child_years_says_so_and_prints_no_nan():
    report = steady_report(date(1990, 1, 1), date(1990, 12, 31))
    html_text = render_html(report, PROVENANCE)
    assert caption(html_text, "monthly-rate--spc-chart").startswith(  # no child: every count is 0, hidden
        "No mean, process limits or special causes: 12 of 12 months are suppressed (fewer than 8 children coded)"
    )
    assert caption(html_text, "funnel-plot-of-clinicians") == (
        "No pooled value and no limits: no clinician has children seen in the report&#x27;s dates "
        "(after rounding to the nearest 5)."
    )
    assert not re.search(r"\bnan\b", html_text, flags=re.I)
    open_text = render_html(steady_report(date(1990, 1, 1), date(1990, 12, 31), suppress=False), PROVENANCE)
    assert caption(open_text, "monthly-rate--spc-chart") == (
        "No month has a rate to chart. 12 of 12 months have no child-years (no child of the age range "
        "registered), so no rate."
    )


def test_funnel_caption_without_a_pooled_rate_under_suppression():
    # one child-year at the practice rounds to 0: no published child-years, so no pooled rate
    report = steady_report(date(2024, 1, 1), date(2024, 1, 1))
    assert math.isnan(report.funnel_summary["pooled_rate"])
    text = caption(render_html(report, PROVENANCE), "funnel-plot-of-clinicians")
    assert text == (
        "No pooled value and no limits: no clinician has children seen in the report&#x27;s dates "
        "(after rounding to the nearest 5)."
    )


def test_rate_ratio_with_no_child_coded_before_is_blank_and_explained():
    before, after = (date(2024, 3, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 4, 30))
    report = steady_report(compare=(before, after), suppress=False)
    (row,) = [r for r in compare_csv(report).splitlines() if r.startswith("cp_plan,")]
    # 0 children in March, 12 in April: the ratio and its upper limit are infinite. The lower limit is the
    # Clopper-Pearson lower bound for 12 of 12, 0.025 ** (1 / 12) = 0.735352, as odds 2.77860, times the
    # exposure ratio 31 / 30. The rate after is 12 / (1200 x 30 / 365.25) x 1000 = 121.75.
    assert row == (
        "cp_plan,2024-03-01..2024-03-31,2024-04-01..2024-04-30,0,101.8480,0.0000,12,98.5626,121.7500,,2.8712,,"
        "false,NONE (--no-suppress): for use inside the practice only; do not publish"
    )
    html_text = render_html(report, PROVENANCE)
    assert (
        "<p>Rate ratio left blank for cp_plan, any safeguarding code: no child was coded in the before period, "
        "so the ratio and its upper limit are infinite (the lower limit is shown).</p>"
        "<p>Rate ratio left blank for cause_for_concern: no child was coded in either period.</p>"
    ) in html_text
    assert "inf" not in compare_csv(report)


def test_dates_after_the_extract_are_cut_off_and_said_so():
    report = steady_report(
        date(2024, 5, 1),
        date(2024, 9, 30),
        compare=((date(2024, 1, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 12, 31))),
        extract_end=date(2024, 6, 20),
    )
    overall = report.rates[(report.rates.breakdown == "overall") & (report.rates.category == ANY_CATEGORY)]
    assert list(overall.period) == ["2024-05", "2024-06"]
    assert overall.period_end.iloc[-1] == date(2024, 6, 20)
    assert list(report.compare.period_after.unique()) == ["2024-04-01..2024-06-20"]
    assert report.notices == (
        "The report ends on 2024-06-20, the extract's latest event date, not on --to 2024-09-30: the extract "
        "holds no codes after it, so later days would read as days with none.",
        "The --compare range 2024-04-01..2024-12-31 ends on 2024-06-20, the extract's latest event date, "
        "not on 2024-12-31.",
    )
    options = report.options.as_dict()
    assert (options["date_to"], options["date_to_requested"], options["extract_end"]) == (
        "2024-06-20", "2024-09-30", "2024-06-20",
    )  # fmt: skip
    assert options["compare"] == [["2024-01-01", "2024-03-31"], ["2024-04-01", "2024-06-20"]]
    assert options["compare_requested"] == [["2024-01-01", "2024-03-31"], ["2024-04-01", "2024-12-31"]]
    html_text = render_html(report, PROVENANCE)
    assert html_text.count('<p class="notice">') == 2
    assert "<title>Safeguarding coding rates, 2024-05-01 to 2024-06-20</title>" in html_text


def test_an_event_dated_after_today_does_not_stop_the_cut():
    con = steady_extract()  # the latest code is on 2024-06-10
    con.execute("INSERT INTO events VALUES ('c0000', '1001', 'snomed', DATE '2099-03-01', NULL, NULL, 'GP01')")
    end = find_extract_end(con, as_of=date(2024, 7, 1))
    report = build_coding_report(con, CATEGORIES, 0, 17, date(2024, 1, 1), date(2024, 9, 30), extract_end=end)
    assert report.notices == (
        "1 event is dated 2099-03-01, after the as-of date (2024-07-01); it was not used to find the "
        "extract's latest event date: such dates are typing errors or planned items.",
        "The report starts on 2024-01-10, the extract's earliest event date, not on --from 2024-01-01: the "
        "extract holds no events before it, so earlier days would read as days when nobody was coded.",
        "The report ends on 2024-06-10, the extract's latest event date on or before --as-of 2024-07-01, not on "
        "--to 2024-09-30: events dated after --as-of are not used, so later days would read as days with none.",
    )
    assert report.rates.period_end.max() == date(2024, 6, 10)
    options = report.options.as_dict()
    assert (options["date_to"], options["extract_end"], options["events_after_as_of"], options["as_of"]) == (
        "2024-06-10",
        "2024-06-10",
        1,
        "2024-07-01",
    )
    assert html.unescape(render_html(report, PROVENANCE)).count("1 event is dated 2099-03-01") == 1


def test_when_every_event_is_after_today_the_dates_are_not_cut():
    con = steady_extract()  # 34 events, 2024-01-10 to 2024-06-10
    end = find_extract_end(con, as_of=date(2023, 12, 31))
    report = build_coding_report(con, CATEGORIES, 0, 17, date(2023, 1, 1), date(2024, 9, 30), extract_end=end)
    assert report.notices == (
        "34 events are dated after the as-of date (2023-12-31), the latest 2024-06-10; they were not "
        "used to find the extract's latest event date: such dates are typing errors or planned items. No event is "
        "dated on or before 2023-12-31, so the report's dates are not cut to the extract's end.",
    )
    options = report.options.as_dict()
    assert (options["date_to"], options["extract_end"], options["events_after_as_of"]) == ("2024-09-30", None, 34)


@pytest.mark.parametrize(
    ("date_from", "compare", "message"),
    [
        (date(2024, 7, 1), None, "--from: 2024-07-01 is after the extract's latest event date (2024-06-20)"),
        (
            date(2024, 1, 1),
            ((date(2024, 1, 1), date(2024, 3, 31)), (date(2024, 6, 21), date(2024, 12, 31))),
            "--compare: the range 2024-06-21..2024-12-31 starts after the extract's latest event date (2024-06-20)",
        ),
    ],
    ids=["from", "compare"],
)
def test_a_report_starting_after_the_extract_stops(date_from, compare, message):
    with pytest.raises(OptionError) as caught:
        steady_report(date_from, date(2024, 9, 30), compare=compare, extract_end=date(2024, 6, 20))
    assert str(caught.value) == f"{message}\n  HINT: choose dates up to 2024-06-20, or use a later extract"


def test_an_out_folder_holding_an_earlier_report_is_refused(tmp_path):
    (tmp_path / "compare.csv").write_text("earlier")
    with pytest.raises(OutputError) as caught:
        write_report(steady_report(), tmp_path, PROVENANCE)
    assert str(caught.value) == (
        f"{tmp_path}: already holds compare.csv from an earlier report; a report never overwrites one\n"
        "  HINT: choose a new --out folder, or move the earlier report's files away"
    )
    assert sorted(os.listdir(tmp_path)) == ["compare.csv"]
    assert (tmp_path / "compare.csv").read_text() == "earlier"


# --- the extract's first day, --as-of in messages -----------------------------------------------------------


def test_dates_before_the_extracts_first_event_are_cut_off_and_said_so():
    """The steady extract's first event is on 2024-01-10: before it the extract holds no history, so 2023 would
    read as a year nobody was coded (a rate of 0, an infinite rate ratio, special causes)."""
    first = date(2024, 1, 10)
    report = steady_report(
        date(2023, 7, 1),
        date(2024, 6, 30),
        compare=((date(2023, 12, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 6, 30))),
        extract_end=date(2024, 6, 30),
        extract_start=first,
        suppress=False,
    )
    overall = report.rates[(report.rates.breakdown == "overall") & (report.rates.category == ANY_CATEGORY)]
    assert list(overall.period) == [f"2024-0{m}" for m in range(1, 7)]
    assert overall.period_start.iloc[0] == first
    assert list(report.spc[report.spc.category == ANY_CATEGORY].period) == list(overall.period)
    assert not report.spc["special_cause"].any()
    assert list(report.compare.period_before.unique()) == ["2024-01-10..2024-03-31"]
    # 22 children coded from 10 January (the first coded day) to 31 March, over 1200 x 82 days
    cp = report.compare.set_index("category").loc["cp_plan"]
    assert cp.numerator_before == 10 + 3 + 0
    assert cp.child_years_before == pytest.approx(1200 * ((date(2024, 3, 31) - first).days + 1) / 365.25)
    assert report.notices == (
        "The report starts on 2024-01-10, the extract's earliest event date, not on --from 2023-07-01: the "
        "extract holds no events before it, so earlier days would read as days when nobody was coded.",
        "The --compare range 2023-12-01..2024-03-31 starts on 2024-01-10, the extract's earliest event date, "
        "not on 2023-12-01.",
    )
    options = report.options.as_dict()
    assert (options["date_from"], options["date_from_requested"], options["extract_start"]) == (
        "2024-01-10", "2023-07-01", "2024-01-10",
    )  # fmt: skip
    assert "<title>Safeguarding coding rates, 2024-01-10 to 2024-06-30</title>" in render_html(report, PROVENANCE)


def test_the_first_day_is_found_with_the_end():
    con = steady_extract()
    report = build_coding_report(
        con, CATEGORIES, 0, 17, date(2023, 1, 1), date(2024, 6, 30), extract_end=find_extract_end(con, date(2024, 7, 1))
    )
    assert report.rates.period_start.min() == date(2024, 1, 10)  # the first coded day, found by the scan


@pytest.mark.parametrize(
    ("date_to", "compare", "message"),
    [
        (date(2024, 1, 9), None, "--to: 2024-01-09 is before the extract's earliest event date (2024-01-10)"),
        (
            date(2024, 6, 30),
            ((date(2023, 1, 1), date(2023, 12, 31)), (date(2024, 1, 1), date(2024, 6, 30))),
            "--compare: the range 2023-01-01..2023-12-31 ends before the extract's earliest event date (2024-01-10)",
        ),
    ],
    ids=["to", "compare"],
)
def test_a_report_ending_before_the_extract_starts_stops(date_to, compare, message):
    with pytest.raises(OptionError) as caught:
        steady_report(date(2023, 1, 1), date_to, compare=compare, extract_start=date(2024, 1, 10))
    assert (
        str(caught.value)
        == f"{message}\n  HINT: choose dates from 2024-01-10, or use an extract that goes further back"
    )


def test_a_start_after_the_as_of_end_says_it_was_the_as_of_date():
    """With --as-of 2024-03-01 the latest event on or before it is 2024-02-10; the April and June codes are
    after --as-of. The message must say that --as-of, not the extract, ended the dates there."""
    con = steady_extract()
    end = find_extract_end(con, as_of=date(2024, 3, 1))
    later = sum(count for month, count in CODED_PER_MONTH.items() if month > 3)
    with pytest.raises(OptionError) as caught:
        build_coding_report(con, CATEGORIES, 0, 17, date(2024, 4, 1), date(2024, 6, 30), extract_end=end)
    assert str(caught.value) == (
        "--from: 2024-04-01 is after the extract's latest event date on or before --as-of 2024-03-01 "
        f"(2024-02-10); {later} events are dated after --as-of, the latest 2024-06-10, and not used\n"
        "  HINT: give --as-of the day the extract was taken (the default is today), or choose dates up to 2024-02-10"
    )


# --- the clinician funnel: children coded over children seen -----------------------------------------------


def clinic():
    """One practice, 300 children aged 10 all through 2024. GP01 to GP07 each record something for 100
    children and code 10 of them; PN01 records something for 150 children and never codes."""
    patients = [(f"k{i:03d}", date(2014, 1, 1), None, None, None, "F", "A") for i in range(300)]
    seen = {f"GP0{j}": [(j * 30 + i) % 300 for i in range(100)] for j in range(1, 8)}
    seen["PN01"] = list(range(150, 300))
    coded = {clinician: children[:10] for clinician, children in seen.items()}
    coded["PN01"] = []
    events = []
    for clinician, children in seen.items():
        events += [event(f"k{i:03d}", "9999", date(2024, 3, 1 + i % 28), clinician) for i in children]
        events += [event(f"k{i:03d}", "1001", date(2024, 5, 1 + i % 28), clinician) for i in coded[clinician]]
    return make_connection(patients, events), seen, coded


def test_the_clinician_funnel_compares_each_clinicians_share_of_the_children_they_saw():
    con, seen, coded = clinic()
    report = build_coding_report(con, CATEGORIES, 0, 17, date(2024, 1, 1), date(2024, 12, 31), suppress=False)
    assert report.funnel_summary["unit"] == "clinician"
    points = report.funnel.set_index("group")
    names = pseudonym_map(seen)
    for clinician, children in seen.items():
        point = points.loc[names[clinician]]
        assert (point.observed, point.denominator) == (len(coded[clinician]), len(children)), clinician
        assert point.rate == pytest.approx(1000 * len(coded[clinician]) / len(children))
    pooled = sum(len(c) for c in coded.values()) / sum(len(c) for c in seen.values())  # 70 / 850
    assert report.funnel_summary["pooled_rate"] == pytest.approx(1000 * pooled)
    assert points.denominator.nunique() == 2  # each clinician's own children seen, not one shared exposure
    assert not report.funnel_summary["overdispersed"]
    pn01 = points.loc[names["PN01"]]
    assert pn01.observed == 0 and pn01.outside_998  # 0 of 150 against 8%: the under-coder is found
    assert pn01.lower_95 == pytest.approx(binomial_quantile(150, pooled, 0.025) / 150 * 1000)
    text = funnel_csv(report)
    assert text.splitlines()[0].startswith("unit,measure,group,observed,denominator,rate,")
    assert ",children coded per 1000 children seen," in text.splitlines()[1]
    html_text = html.unescape(render_html(report, PROVENANCE))
    assert "pooled proportion of the clinicians plotted (their children coded over their children seen" in html_text
    assert "with the overall rate" not in html_text and "main practice" not in html_text


def binomial_quantile(n, p, q):
    """Spiegelhalter (2005) A.1.2 for a binomial count, from the pmf."""
    cdf = [sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(r + 1)) for r in range(n + 1)]
    r = next(r for r in range(n + 1) if cdf[r] >= q)
    below = cdf[r - 1] if r else 0.0
    return max(0.0, r - (cdf[r] - q) / (cdf[r] - below))  # a count is never below 0


def test_every_clinician_is_in_the_rates_and_the_funnel_even_without_a_safeguarding_code():
    con, seen, coded = clinic()
    report = build_coding_report(
        con, CATEGORIES, 0, 17, date(2024, 1, 1), date(2024, 12, 31), by="year", pseudonymise_clinicians=False
    )
    rows = report.rates[(report.rates.breakdown == "clinician") & (report.rates.category == ANY_CATEGORY)]
    assert dict(zip(rows.group, rows.children_seen, strict=True)) == {c: len(s) for c, s in seen.items()}
    assert pd.isna(rows.set_index("group").loc["PN01", "numerator"])  # none coded: a 0, hidden like 1 to 7
    assert set(report.funnel.group) == set(seen)


# --- what the funnel leaves out ----------------------------------------------------------------------------


def test_an_adult_without_a_practice_does_not_make_a_practice_funnel():
    con, seen, _ = clinic()
    con.execute("INSERT INTO patients VALUES ('adult', DATE '1980-01-01', NULL, NULL, NULL, 'F', NULL)")
    report = build_coding_report(con, CATEGORIES, 0, 17, date(2024, 1, 1), date(2024, 12, 31), suppress=False)
    assert report.funnel_summary["unit"] == "clinician"
    assert len(report.funnel) == len(seen)


def test_blank_practices_are_left_out_of_the_funnel_and_the_pooled_rate():
    """Practices A and B, and 100 children without a practice_id: the funnel plots A and B around their own
    pooled rate and says what it left out."""
    patients, events = [], []
    for i in range(300):
        practice = ("A", "B", None)[i % 3]
        patients.append((f"k{i:03d}", date(2014, 1, 1), None, None, None, "F", practice))
        if i % 3 == 2 or i % 10 == 0:  # every blank-practice child coded, 1 in 10 of the others
            events.append(event(f"k{i:03d}", "1001", date(2024, 5, 1), "GP01"))
    con = make_connection(patients, events)
    report = build_coding_report(con, CATEGORIES, 0, 17, date(2024, 1, 1), date(2024, 12, 31), suppress=False)
    assert report.funnel_summary["unit"] == "practice"
    assert list(report.funnel.group) == ["A", "B"]
    coded = {p: sum(1 for i in range(300) if i % 3 == k and i % 10 == 0) for k, p in enumerate("AB")}
    child_years = 100 * 366 / 365.25  # per practice
    assert report.funnel_summary["pooled_rate"] == pytest.approx(1000 * sum(coded.values()) / (2 * child_years))
    left_out = (
        "The funnel plot leaves out the group 'other or not recorded' (patients with a blank practice_id or one "
        f"not shown: 100 children coded, {child_years:,.1f} child-years): it is not a practice, so it is not "
        "plotted and takes no part in the pooled rate."
    )
    assert left_out in report.notices
    assert "100 patients have no practice_id: counted in the group 'other or not recorded'." in report.notices
    assert html.escape(left_out) in caption(render_html(report, PROVENANCE), "funnel-plot-of-practices")


def test_no_published_count_is_below_8_not_even_0():
    """A statistician recovered hidden counts from published zeros: a hidden total of 1 to 7 over hidden parts
    each then at least 1 forces them all, and a group's 0 beside a hidden total says which group was coded.
    Published, every count of people or codes is blank or a multiple of 5 from 10 up; a blank one stands for
    anything from 0 to 7, so nothing is forced."""
    report = build()
    counts = report.rates[["numerator", "codes", "children_registered", "registered_midpoint", "cohort_numerator",
                           "children_seen"]]  # fmt: skip
    shown = counts.stack()  # the published (not blank) counts
    assert len(shown) and (shown >= 10).all() and (shown % 5 == 0).all()
    assert report.rates["numerator"].isna().any()  # some hidden, 0s among them
    assert (build(suppress=False).rates["numerator"] == 0).any()
    observed = report.funnel["observed"].dropna()
    assert ((observed >= 10) & (observed % 5 == 0)).all()
    for column in ("numerator_before", "numerator_after"):
        published = report.compare[column].dropna()
        assert ((published >= 10) & (published % 5 == 0)).all()


def test_a_practice_of_1_to_7_children_is_left_off_the_published_funnel_and_the_caption_says_so():
    """Practices A and B of 100 children and T of 3, none of whom is coded: T's 0 would say of each of the
    three that they were not. Published, T is not plotted and the caption counts it; inside the practice
    (--no-suppress) it is plotted with its 0; 3 patients with a blank practice_id count as 1 to 7."""
    patients, events = [], []
    for i in range(203):
        practice = "AB"[i % 2] if i < 200 else "T"
        patients.append((f"k{i:03d}", date(2014, 1, 1), None, None, None, "F", practice))
        if i < 200 and i % 10 == 0:
            events.append(event(f"k{i:03d}", "1001", date(2024, 5, 1), "GP01"))
    patients += [(f"n{i}", date(2014, 1, 1), None, None, None, "F", None) for i in range(3)]
    period = (date(2024, 1, 1), date(2024, 12, 31))
    published = build_coding_report(make_connection(patients, events), CATEGORIES, 0, 17, *period)
    inside = build_coding_report(make_connection(patients, events), CATEGORIES, 0, 17, *period, suppress=False)
    assert list(published.funnel.group) == ["A", "B"] and published.funnel_summary["small_units"] == 1
    assert list(inside.funnel.group) == ["A", "B", "T"] and inside.funnel.observed.tolist()[-1] == 0
    text = caption(render_html(published, PROVENANCE), "funnel-plot-of-practices")
    assert "1 practice with 1 to 7 children is not plotted: under disclosure control every figure of so small a " in (
        html.unescape(text)
    )
    assert "1 to 7 patients have no practice_id: counted in the group 'other or not recorded'." in published.notices
    assert "3 patients have no practice_id: counted in the group 'other or not recorded'." in inside.notices
    other = "patients with a blank practice_id or one not shown: 1 to 7 children, so every figure is suppressed"
    assert any(other in n for n in published.notices)


# --- plain words -------------------------------------------------------------------------------------------


def test_the_method_says_what_the_code_does():
    html_text = html.unescape(render_html(build(suppress=False), PROVENANCE))
    assert "of the children counted on the middle day of the period (aged 0 to 17, registered and alive that day)" in (
        html_text
    )
    assert '<th class="num">Aged 0-17, registered and alive at midpoint</th>' in html_text
    assert "2 of 3 points in a row beyond the same two-sigma line" in html_text
    assert "near a limit" not in html_text and "Registered at midpoint" not in html_text


def test_the_spc_docstring_says_the_lower_lines_stop_at_zero():
    from casefind.reports import spc

    assert "not floored" not in spc.__doc__ and "drawn at zero" in spc.__doc__
