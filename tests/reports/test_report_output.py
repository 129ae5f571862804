"""The whole report: byte-identical re-runs, safe files, escaped HTML with no external references."""

import html
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
from casefind.reports.measures import find_extract_end
from casefind.reports.report import DISCLOSURE_ON, compare_csv, rates_csv, spc_csv
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

CODED_PER_MONTH = {1: 10, 2: 3, 3: 0, 4: 12, 5: 0, 6: 9}  # 2024; February's 3 is suppressed, 12 -> 10, 9 -> 10


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
        f"{ANY_CATEGORY},2024-03,0.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-04,100.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-05,0.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
        f"{ANY_CATEGORY},2024-06,100.0000,,,,,,,,false,false,false,false,false,false,{DISCLOSURE_ON}",
    ]
    html_text = render_html(report, PROVENANCE)
    assert caption(html_text, "monthly-rate--spc-chart") == (
        "No mean, process limits or special causes: 1 of 6 months is suppressed (1 to 7 children coded), and "
        "lines worked out from the other months would be biased, because disclosure control hides a month "
        "according to its count. Grey: the published months. For the full chart, run the report with "
        "--no-suppress inside the practice, or on an extract covering more children."
    )
    chart = html_text.split('<section id="monthly-rate--spc-chart">', 1)[1].split("</svg>", 1)[0]
    assert f'stroke="{LINE}"' not in chart and 'stroke-dasharray="6 4"' not in chart  # no mean, no limits
    assert chart.count("<circle") == 5 + 1  # the five published months and the legend's dot
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
    assert caption(html_text, "monthly-rate--spc-chart") == (
        "No month has a rate to chart. 12 of 12 months have no child-years (fewer than 2.5, which round to 0), "
        "so no rate."
    )
    assert caption(html_text, "funnel-plot-of-clinicians") == (
        "No pooled rate and no limits: no clinician has child-years in the report&#x27;s dates "
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
        "No pooled rate and no limits: no clinician has child-years in the report&#x27;s dates "
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
        "The report ends on 2024-06-10, the extract's latest event date, not on --to 2024-09-30: the extract "
        "holds no codes after it, so later days would read as days with none.",
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
