"""Confidence intervals and statistical disclosure control for coding-rate reports.

Everything here is a pure function of counts, so it can be checked against published tables by hand.
Intervals are two-sided at level ``1 - alpha`` (95% by default).
"""

from __future__ import annotations

import functools
import math

from scipy import stats as _st

PER = 1000.0  # rates are reported per 1000 child-years
SMALL_COUNT_MAX = 7  # counts 0..7 are suppressed
ROUND_TO = 5  # every other count is rounded to the nearest 5
SUPPRESSED_STAND_IN = 3.5  # where a total must include a suppressed count, it counts as 3.5, the middle of 0..7


@functools.lru_cache(maxsize=4096)
def poisson_exact_ci(count: int, alpha: float = 0.05) -> tuple[float, float]:
    """Garwood's exact interval for a Poisson count, from chi-square quantiles.

    Exact (not normal-approximation) because safeguarding codes are rare and counts are often small.
    For zero events the lower limit is 0 and the upper uses the full ``alpha/2`` tail, as in published tables.
    Cached: a report asks for the same few counts thousands of times, and each scipy quantile costs 0.1 ms.
    """
    if count < 0:
        raise ValueError("a count cannot be negative")
    lower = 0.0 if count == 0 else _st.chi2.ppf(alpha / 2, 2 * count) / 2
    upper = _st.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(lower), float(upper)


@functools.lru_cache(maxsize=16)
def _normal_quantile(p: float) -> float:
    return float(_st.norm.ppf(p))


def rate_with_ci(count: int, child_years: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Rate per 1000 child-years with its exact Poisson interval; NaNs when there is no exposure."""
    if child_years is None or not child_years > 0 or count is None or _isnan(count):
        return math.nan, math.nan, math.nan
    lower, upper = poisson_exact_ci(int(count), alpha)
    scale = PER / child_years
    return count * scale, lower * scale, upper * scale


def wilson_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """Proportion with Wilson's score interval, which stays inside [0, 1] and behaves at 0 and n."""
    if n is None or _isnan(n) or n <= 0 or successes is None or _isnan(successes):
        return math.nan, math.nan, math.nan
    if successes < 0 or successes > n:
        raise ValueError("successes must be between 0 and n")
    z = _normal_quantile(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact binomial interval, used for the conditional rate-ratio interval."""
    lower = 0.0 if successes == 0 else _st.beta.ppf(alpha / 2, successes, n - successes + 1)
    upper = 1.0 if successes == n else _st.beta.ppf(1 - alpha / 2, successes + 1, n - successes)
    return float(lower), float(upper)


def rate_ratio_ci(
    count_before: int,
    years_before: float,
    count_after: int,
    years_after: float,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Rate ratio after/before with the exact conditional interval.

    Conditional on the total ``c1 + c2``, the after-count is binomial with
    ``p = RR*E2 / (E1 + RR*E2)``; the Clopper-Pearson interval for ``p`` maps to
    ``RR = p / (1 - p) * E1 / E2``. Returns NaNs when either exposure is zero or both counts are zero.
    """
    values = (count_before, years_before, count_after, years_after)
    if any(v is None or _isnan(v) for v in values) or not (years_before > 0 and years_after > 0):
        return math.nan, math.nan, math.nan
    total = int(count_before) + int(count_after)
    if total == 0:
        return math.nan, math.nan, math.nan
    exposure = years_before / years_after
    p_low, p_high = clopper_pearson_ci(int(count_after), total, alpha)
    ratio = math.inf if count_before == 0 else (count_after / years_after) / (count_before / years_before)
    lower = _odds(p_low) * exposure
    upper = _odds(p_high) * exposure
    return ratio, lower, upper


def _odds(p: float) -> float:
    return math.inf if p >= 1 else p / (1 - p)


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


# --- statistical disclosure control -------------------------------------------------------------------


def round_to_5(value: float) -> int:
    """Nearest multiple of 5, halves rounded up (so 2.5 -> 5; integers never sit exactly on a half)."""
    return int(math.floor(value / ROUND_TO + 0.5) * ROUND_TO)


def suppress_count(count: int | None) -> int | None:
    """Disclosure rule for a count of people or codes.

    Rule: 0 to 7 inclusive becomes ``None`` (suppressed: "fewer than 8"); 8 or more is rounded to the nearest
    multiple of 5 (8 -> 10, 12 -> 10, 13 -> 15).

    A 0 is suppressed too. Published, a 0 beside a suppressed cell is what gives it away: with a total of
    1 to 7 hidden and several parts hidden, each then at least 1, the parts can be forced (a hidden total of
    7 over seven hidden categories makes each 1), and a group's 0 beside a hidden total says who was coded.
    With 0 hidden as well, a hidden cell is anything from 0 to 7, and rounding the larger counts stops one
    being recovered by subtracting published totals.
    """
    if count is None or _isnan(count):
        return None
    count = int(count)
    if count <= SMALL_COUNT_MAX:
        return None
    return round_to_5(count)


def round_exposure(child_years: float | None) -> float | None:
    """Child-years are not counts of people, so they are rounded to the nearest 5 but never suppressed."""
    if child_years is None or _isnan(child_years):
        return None
    return float(round_to_5(child_years))
