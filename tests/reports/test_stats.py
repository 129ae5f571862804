"""Intervals against published tables and hand calculations; the disclosure rule case by case."""

import math

import pytest
from scipy import optimize, stats

from casefind.reports.stats import (
    clopper_pearson_ci,
    poisson_exact_ci,
    rate_ratio_ci,
    rate_with_ci,
    round_exposure,
    suppress_count,
    wilson_ci,
)

# Exact Poisson 95% limits for x events, as tabulated (e.g. Garwood 1936; Ulm 1990; OpenEpi).
GARWOOD = {0: (0.0, 3.6889), 1: (0.0253, 5.5716), 5: (1.6235, 11.6683), 10: (4.7954, 18.3904)}


@pytest.mark.parametrize("count", sorted(GARWOOD))
def test_poisson_exact_ci_matches_published_table(count):
    lower, upper = poisson_exact_ci(count)
    assert lower == pytest.approx(GARWOOD[count][0], abs=5e-5)
    assert upper == pytest.approx(GARWOOD[count][1], abs=5e-5)


def test_rate_per_1000_scales_the_count_interval():
    rate, lower, upper = rate_with_ci(10, 2000.0)  # 10 children in 2000 child-years
    assert rate == pytest.approx(5.0)
    assert lower == pytest.approx(4.7954 / 2, abs=5e-5)
    assert upper == pytest.approx(18.3904 / 2, abs=5e-5)


def test_rate_without_exposure_is_missing():
    assert all(math.isnan(v) for v in rate_with_ci(3, 0.0))


@pytest.mark.parametrize(
    "k, n, expected",
    [
        (5, 10, (0.2366, 0.7634)),  # Newcombe 1998 style worked value
        (0, 10, (0.0, 0.2775)),  # upper = z^2 / (n + z^2)
        (10, 10, (0.7225, 1.0)),
        (81, 263, (0.2553, 0.3662)),  # Newcombe (1998) Table I example 81/263
    ],
)
def test_wilson_interval_known_values(k, n, expected):
    p, lower, upper = wilson_ci(k, n)
    assert p == pytest.approx(k / n)
    assert lower == pytest.approx(expected[0], abs=5e-5)
    assert upper == pytest.approx(expected[1], abs=5e-5)


def test_clopper_pearson_five_of_ten():
    assert clopper_pearson_ci(5, 10) == pytest.approx((0.1871, 0.8129), abs=5e-5)


def _exact_binomial_limits(x, n):
    """Clopper-Pearson by root finding on the binomial tails (an independent route to the same limits)."""
    lower = optimize.brentq(lambda p: stats.binom.sf(x - 1, n, p) - 0.025, 1e-12, 1 - 1e-12)
    upper = optimize.brentq(lambda p: stats.binom.cdf(x, n, p) - 0.025, 1e-12, 1 - 1e-12)
    return lower, upper


def test_rate_ratio_exact_conditional_interval():
    # 10 children in 1000 child-years before, 20 in 500 after: RR = (20/500)/(10/1000) = 4.
    low_p, high_p = _exact_binomial_limits(20, 30)
    exposure = 1000 / 500
    ratio, lower, upper = rate_ratio_ci(10, 1000.0, 20, 500.0)
    assert ratio == pytest.approx(4.0)
    assert lower == pytest.approx(low_p / (1 - low_p) * exposure, rel=1e-6)
    assert upper == pytest.approx(high_p / (1 - high_p) * exposure, rel=1e-6)
    assert lower < ratio < upper


def test_rate_ratio_edge_cases():
    ratio, lower, upper = rate_ratio_ci(0, 100.0, 5, 100.0)
    assert math.isinf(ratio) and math.isinf(upper) and lower > 0
    assert all(math.isnan(v) for v in rate_ratio_ci(0, 100.0, 0, 100.0))


@pytest.mark.parametrize(
    "count, shown",
    [
        (0, None),  # a 0 beside a hidden count gives it away: hidden too
        (1, None),
        (4, None),
        (7, None),
        (8, 10),
        (12, 10),
        (13, 15),
        (17, 15),
        (18, 20),
        (102, 100),
        (103, 105),
        (None, None),
    ],
)
def test_suppress_count_rule(count, shown):
    assert suppress_count(count) == shown


@pytest.mark.parametrize("years, shown", [(0.0, 0.0), (2.4, 0.0), (2.5, 5.0), (7.49, 5.0), (1234.6, 1235.0)])
def test_child_years_are_rounded_not_suppressed(years, shown):
    assert round_exposure(years) == shown
