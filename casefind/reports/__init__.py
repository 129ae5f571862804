"""Coding-rate reports for auditors: rates, SPC charts, funnel plots, CSV and a self-contained HTML report.

Library only: everything works on a DuckDB connection holding the core's ``patients`` and ``events`` tables.
"""

from casefind.reports.measures import ANY_CATEGORY, PUBLIC_SALT, ExtractEnd, find_extract_end
from casefind.reports.report import (
    REJECTS_FILE,
    CodingReport,
    ReportOptions,
    build_coding_report,
    check_options,
    check_out_dir,
    render_html,
    write_report,
)

__all__ = [
    "ANY_CATEGORY",
    "PUBLIC_SALT",
    "REJECTS_FILE",
    "CodingReport",
    "ExtractEnd",
    "ReportOptions",
    "build_coding_report",
    "check_options",
    "check_out_dir",
    "find_extract_end",
    "render_html",
    "write_report",
]
