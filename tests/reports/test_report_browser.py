"""Render report.html in Debian's chromium: charts visible, no console errors, no network requests.

On a developer's machine without Debian's chromium (/usr/bin/chromium) or playwright it skips, saying so; when
the environment variable CI is set, either missing fails the test, so a CI run cannot pass without it (.ci/run
installs chromium). Set CASEFIND_SCREENSHOT_DIR to keep the screenshot for a human to look at.
"""

import importlib.util
import os
from datetime import date
from pathlib import Path

import pytest

from casefind.reports import build_coding_report, write_report

from .conftest import CATEGORIES
from .test_report_output import COMPARE, PROVENANCE, extract

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")


def _require(present: bool, missing: str, install: str) -> None:
    """Skip on a developer's machine without what the test needs; fail under CI, where it must be installed."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{missing}, and CI is set: CI must install it ({install}; see .ci/run), not skip this test")
    pytest.skip(f"{missing}: {install} to run this test")


def test_report_renders_offline_with_visible_charts(tmp_path):
    _require(CHROMIUM.exists(), f"Debian's chromium is not installed at {CHROMIUM}", "apt-get install chromium")
    _require(importlib.util.find_spec("playwright") is not None, "playwright is not installed", "pip install '.[test]'")
    from playwright import sync_api

    report = build_coding_report(
        extract(), CATEGORIES, 0, 17, date(2023, 1, 1), date(2024, 12, 31), compare=COMPARE, suppress=False
    )
    html_path = next(p for p in write_report(report, tmp_path, PROVENANCE) if p.name == "report.html")
    url = html_path.resolve().as_uri()
    requests, console_errors, page_errors = [], [], []
    shot = Path(os.environ.get("CASEFIND_SCREENSHOT_DIR", tmp_path)) / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(url, wait_until="load")
            charts = page.locator("svg")
            assert charts.count() == 2
            for i in range(2):
                chart = charts.nth(i)
                assert chart.is_visible()
                box = chart.bounding_box()
                assert box["width"] > 300 and box["height"] > 100
            assert page.locator("section#monthly-rate--spc-chart svg circle").count() >= 24  # one per month
            assert page.locator("section#funnel-plot-of-practices svg circle").count() >= 3
            assert page.get_by_role("heading", name="Method in plain words").is_visible()
            assert page.get_by_role("heading", name="Provenance").is_visible()
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert requests == [url]
    assert console_errors == [] and page_errors == []
    assert shot.stat().st_size > 10_000
