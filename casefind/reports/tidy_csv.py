"""Deterministic tidy CSV text that other SPC tools can read.

Rows are sorted by the given key columns, floats are written with a fixed number of decimals, missing or
suppressed values are empty cells, booleans are ``true``/``false``, dates are ISO 8601, lines end in ``\\n``.
The same frame always gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from casefind.files import neutralise_formula

FLOAT_DECIMALS = 4


def format_cell(value, decimals: int = FLOAT_DECIMALS) -> str:
    """One cell as text, independent of locale and pandas display options."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_float(float(value), decimals)
    if isinstance(value, date):
        return value.isoformat()
    return neutralise_formula(str(value))


def _format_float(value: float, decimals: int) -> str:
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def to_csv_text(frame: pd.DataFrame, columns: Sequence[str], sort_by: Sequence[str]) -> str:
    """``frame[columns]`` as CSV text, rows sorted by ``sort_by`` (compared as formatted text)."""
    rows = [[format_cell(v) for v in record] for record in frame[list(columns)].itertuples(index=False)]
    keys = [list(columns).index(c) for c in sort_by]
    rows.sort(key=lambda r: [r[k] for k in keys])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()
