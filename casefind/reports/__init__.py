"""Coding-rate reports for auditors: rates, SPC charts, funnel plots, CSV and a self-contained HTML report.

Library only: everything works on a DuckDB connection holding the core's ``patients`` and ``events`` tables.
"""

from casefind.reports.measures import ANY_CATEGORY, latest_event_date
from casefind.reports.report import (
    CodingReport,
    ReportOptions,
    build_coding_report,
    check_out_dir,
    render_html,
    write_report,
)

__all__ = [
    "ANY_CATEGORY",
    "CodingReport",
    "ReportOptions",
    "build_coding_report",
    "check_out_dir",
    "latest_event_date",
    "render_html",
    "write_report",
]
