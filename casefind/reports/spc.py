"""XmR (individuals and moving range) charts in the NHS "Making Data Count" style.

* centre line: the mean of the points;
* moving range: ``|x_i - x_(i-1)|``; process limits: ``mean +/- 2.66 x mean moving range`` (2.66 = 3 / 1.128,
  i.e. three sigma estimated from the moving range); when no point is negative (a rate), a lower limit or
  two-sigma line below zero is drawn at zero, as Making Data Count advises;
* special-cause rules, each flagging every point that takes part:
  - ``outside_limits``: a point strictly above the upper or below the lower process limit;
  - ``shift``: a run of 7 or more consecutive points all above, or all below, the mean
    (a point exactly on the mean ends the run);
  - ``trend``: 6 or more consecutive points each strictly higher (or each strictly lower) than the one
    before (equal neighbours end the trend);
  - ``two_of_three``: two of three consecutive points beyond the same two-sigma line
    (``mean +/- 2 x mean moving range / 1.128``).

Missing points (months with no child-years, so no rate) are skipped: statistics and rules use the remaining
points in order, and the missing ones are reported with no flags. A series with *suppressed* points is not
charted with :func:`xmr` at all but with :func:`points_only`: which months disclosure control hides depends
on their counts, so a mean and limits from the months left would be biased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

LIMIT_FACTOR = 2.66
D2 = 1.128  # bias constant for moving ranges of two points
SHIFT_LENGTH = 7
TREND_LENGTH = 6

SPC_COLUMNS = [
    "period",
    "value",
    "mean",
    "moving_range",
    "mean_moving_range",
    "lower_limit",
    "upper_limit",
    "lower_two_sigma",
    "upper_two_sigma",
    "outside_limits",
    "shift",
    "trend",
    "two_of_three",
    "special_cause",
]
RULES = ("outside_limits", "shift", "trend", "two_of_three")


def xmr(periods: Sequence[str], values: Sequence[float]) -> pd.DataFrame:
    """One row per period with the chart's lines and the special-cause flags (see module docstring)."""
    if len(periods) != len(values):
        raise ValueError("periods and values differ in length")
    present = [i for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    points = [float(values[i]) for i in present]
    lines = _lines(points)
    flags = {rule: _RULE_FUNCTIONS[rule](points, lines) for rule in RULES}
    rows = []
    position = {index: n for n, index in enumerate(present)}
    for index, period in enumerate(periods):
        n = position.get(index)
        row = {"period": period, **lines}
        row["value"] = points[n] if n is not None else math.nan
        row["moving_range"] = abs(points[n] - points[n - 1]) if n else math.nan
        for rule in RULES:
            row[rule] = bool(n is not None and flags[rule][n])
        row["special_cause"] = any(row[rule] for rule in RULES)
        rows.append(row)
    return pd.DataFrame(rows, columns=SPC_COLUMNS)


def points_only(periods: Sequence[str], values: Sequence[float]) -> pd.DataFrame:
    """The same rows as :func:`xmr` with the values alone: no mean, moving range or limits, no flags."""
    if len(periods) != len(values):
        raise ValueError("periods and values differ in length")
    rows = [
        {"period": period, "value": math.nan if value is None else float(value), **dict.fromkeys(RULES, False)}
        for period, value in zip(periods, values, strict=True)
    ]
    frame = pd.DataFrame(rows, columns=SPC_COLUMNS)
    frame["special_cause"] = False
    return frame


def _lines(points: list[float]) -> dict[str, float]:
    nan = math.nan
    if not points:
        return dict.fromkeys(
            ("mean", "mean_moving_range", "lower_limit", "upper_limit", "lower_two_sigma", "upper_two_sigma"),
            nan,
        )
    mean = sum(points) / len(points)
    ranges = [abs(b - a) for a, b in zip(points, points[1:], strict=False)]
    mmr = sum(ranges) / len(ranges) if ranges else nan
    two_sigma = 2 * mmr / D2
    # Rates cannot be negative: as Making Data Count advises, a lower line below zero is drawn at zero.
    floor = 0.0 if min(points) >= 0 else -math.inf
    return {
        "mean": mean,
        "mean_moving_range": mmr,
        "lower_limit": max(floor, mean - LIMIT_FACTOR * mmr),
        "upper_limit": mean + LIMIT_FACTOR * mmr,
        "lower_two_sigma": max(floor, mean - two_sigma),
        "upper_two_sigma": mean + two_sigma,
    }


def _outside_limits(points: list[float], lines: dict) -> list[bool]:
    if math.isnan(lines["upper_limit"]):
        return [False] * len(points)
    return [p > lines["upper_limit"] or p < lines["lower_limit"] for p in points]


def _shift(points: list[float], lines: dict) -> list[bool]:
    sides = [(p > lines["mean"]) - (p < lines["mean"]) for p in points]
    return _flag_runs(sides, SHIFT_LENGTH)


def _trend(points: list[float], lines: dict) -> list[bool]:
    """Steps between neighbours; a trend of N points is N-1 steps in the same direction."""
    steps = [(b > a) - (b < a) for a, b in zip(points, points[1:], strict=False)]
    step_flags = _flag_runs(steps, TREND_LENGTH - 1)
    flags = [False] * len(points)
    for i, flagged in enumerate(step_flags):
        if flagged:
            flags[i] = flags[i + 1] = True
    return flags


def _two_of_three(points: list[float], lines: dict) -> list[bool]:
    flags = [False] * len(points)
    if math.isnan(lines["upper_two_sigma"]):
        return flags
    high = [p > lines["upper_two_sigma"] for p in points]
    low = [p < lines["lower_two_sigma"] for p in points]
    for beyond in (high, low):
        for start in range(len(points) - 2):
            window = range(start, start + 3)
            if sum(beyond[i] for i in window) >= 2:
                for i in window:
                    flags[i] = flags[i] or beyond[i]
    return flags


def _flag_runs(signs: list[int], length: int) -> list[bool]:
    """Flag every element of a run of at least ``length`` equal, non-zero signs."""
    flags = [False] * len(signs)
    start = 0
    for i in range(1, len(signs) + 1):
        if i == len(signs) or signs[i] != signs[start]:
            if signs[start] != 0 and i - start >= length:
                for j in range(start, i):
                    flags[j] = True
            start = i
    return flags


_RULE_FUNCTIONS = {
    "outside_limits": _outside_limits,
    "shift": _shift,
    "trend": _trend,
    "two_of_three": _two_of_three,
}
