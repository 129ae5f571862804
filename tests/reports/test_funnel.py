"""Funnel limits: exact Poisson without overdispersion; DerSimonian-Laird widening only when needed."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from casefind.reports.funnel import binomial_limit, funnel, poisson_limit
from casefind.reports.report import _published_funnel


def poisson_cdf(r, mean):
    return sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(r + 1)) if r >= 0 else 0.0


def interpolated_quantile(mean, p):
    """Spiegelhalter (2005) appendix A.1.2, computed from the Poisson pmf directly."""
    r = 0
    while poisson_cdf(r, mean) < p:
        r += 1
    alpha = (poisson_cdf(r, mean) - p) / (poisson_cdf(r, mean) - poisson_cdf(r - 1, mean))
    return r - alpha


@pytest.mark.parametrize("mean, p", [(5.0, 0.975), (5.0, 0.025), (12.3, 0.999), (12.3, 0.001), (0.4, 0.975)])
def test_poisson_limit_is_the_interpolated_quantile(mean, p):
    assert poisson_limit(mean, p) == pytest.approx(interpolated_quantile(mean, p), abs=1e-9)


def test_a_curve_of_limits_is_worked_out_in_one_call_with_the_same_values():
    """The funnel's curve asks for hundreds of limits: as an array they are one scipy call each, and equal the
    reference quantile point by point (a mean of 0 has limit 0)."""
    means = [0.0, 0.4, 5.0, 12.3]
    limits = poisson_limit(np.array(means), 0.975)
    assert isinstance(limits, np.ndarray)
    expected = [0.0] + [interpolated_quantile(m, 0.975) for m in means[1:]]
    assert limits.tolist() == pytest.approx(expected, abs=1e-9)


def test_binomial_limits_of_a_curve_are_those_of_each_point():
    n = np.array([0.0, 1.0, 7.0, 40.0, 250.0])
    for theta, p in [(0.1, 0.975), (0.3, 0.001), (0.0, 0.975), (1.0, 0.5)]:
        curve = binomial_limit(n, theta, p)
        reference = [0.0 if theta <= 0 or k <= 0 else k if theta >= 1 else interpolated_binomial(int(k), theta, p)
                     for k in n]  # fmt: skip
        assert curve.tolist() == pytest.approx(reference, abs=1e-9)


def interpolated_binomial(n, theta, p):
    """Spiegelhalter (2005) A.1.2 for a binomial count, from scipy's pmf summed by hand."""
    cdf = np.cumsum([stats.binom.pmf(k, n, theta) for k in range(n + 1)])
    r = int(np.searchsorted(cdf, p - 1e-12))
    below = cdf[r - 1] if r > 0 else 0.0
    return max(0.0, r - (cdf[r] - p) / (cdf[r] - below))


def test_poisson_limit_approaches_normal_for_large_counts():
    assert poisson_limit(10000, 0.975) == pytest.approx(10000 + 1.96 * 100, abs=1.5)
    assert poisson_limit(10000, 0.001) == pytest.approx(10000 - 3.09 * 100, abs=1.5)


def test_consistent_units_get_exact_poisson_limits():
    result = funnel(["A", "B", "C", "D"], [10, 20, 31, 39], [1000, 2000, 3000, 4000])
    theta = 100 / 10000
    assert result.pooled_rate == pytest.approx(theta * 1000)
    assert not result.overdispersed and result.adjustment.startswith("none")
    b = result.points.set_index("group").loc["B"]
    assert b.lower_95 == pytest.approx(interpolated_quantile(theta * 2000, 0.025) / 2000 * 1000)
    assert b.upper_998 == pytest.approx(interpolated_quantile(theta * 2000, 0.999) / 2000 * 1000)
    assert not result.points["outside_95"].any()


def test_outlier_falls_outside_limits_without_overdispersion():
    groups, observed, years = list("ABCDEFGH"), [50, 50, 50, 50, 50, 50, 50, 80], [5000] * 8
    result = funnel(groups, observed, years)
    assert not result.overdispersed
    outside = result.points[result.points["outside_95"]]["group"].tolist()
    assert outside == ["H"]  # 80 vs 53.75 expected: above the 95% limit of about 68


def _hand_dispersion(observed, years):
    theta = sum(observed) / sum(years)
    z = np.array([(o / n - theta) / math.sqrt(theta / n) for o, n in zip(observed, years, strict=True)])
    low, high = np.percentile(z, [10, 90])
    phi = float(np.mean(np.clip(z, low, high) ** 2))
    w = np.array([n / theta for n in years])
    tau2 = max(0.0, (len(z) * phi - (len(z) - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    return theta, phi, tau2


def test_overdispersed_units_get_additive_random_effects_limits():
    observed, years = [10, 50, 100, 200, 400], [1000, 1000, 1000, 1000, 1000]
    theta, phi, tau2 = _hand_dispersion(observed, years)
    assert 5 * phi > stats.chi2.ppf(0.95, 4)
    result = funnel(list("ABCDE"), observed, years)
    assert result.overdispersed and "DerSimonian-Laird" in result.adjustment
    assert result.phi == pytest.approx(phi)
    assert result.tau2 == pytest.approx(tau2 * 1e6)
    a = result.points.set_index("group").loc["A"]
    assert a.upper_95 == pytest.approx((theta + 1.959964 * math.sqrt(theta / 1000 + tau2)) * 1000, rel=1e-5)
    assert a.upper_998 > a.upper_95


def test_multiplicative_adjustment_option():
    observed, years = [10, 50, 100, 200, 400], [1000] * 5
    theta, phi, _ = _hand_dispersion(observed, years)
    result = funnel(list("ABCDE"), observed, years, method="multiplicative")
    a = result.points.set_index("group").loc["A"]
    assert a.upper_95 == pytest.approx((theta + 1.959964 * math.sqrt(phi * theta / 1000)) * 1000, rel=1e-5)


def test_too_few_units_skip_the_dispersion_test():
    result = funnel(["A", "B"], [1, 100], [1000, 1000])
    assert math.isnan(result.phi) and not result.overdispersed
    assert list(result.curve.columns) == ["denominator", "lower_95", "upper_95", "lower_998", "upper_998"]
    assert (result.curve["upper_998"] >= result.curve["upper_95"]).all()


def _published(groups, observed, years, population=None):
    """The published practice funnel; each practice has 1,000 children unless ``population`` says."""
    population = population or [1000] * len(groups)
    raw = pd.DataFrame({"group": groups, "numerator": observed, "denominator": years, "population": population})
    return _published_funnel(raw, suppress=True)


def test_published_rows_depend_only_on_the_published_figures():
    """9 and 11 both publish as 10: swapping them between two units (same child-years, so the same pooled
    rate) must not change either unit's published row, z-score included."""
    groups, years = list("ABCDE"), [3005.0, 3005.0, 2990.0, 3010.0, 2500.0]
    first = _published(groups, [9, 11, 20, 3, 40], years).points.set_index("group")
    second = _published(groups, [11, 9, 20, 3, 40], years).points.set_index("group")
    assert first.loc["A", "observed"] == 10 and first.loc["B", "observed"] == 10
    for column in ("observed", "denominator", "rate", "z", "lower_95", "upper_998", "outside_95"):
        assert first.loc["A", column] == second.loc["A", column], column
        assert first.loc["B", column] == second.loc["B", column], column
    theta = first.loc["A", "expected"] / first.loc["A", "denominator"]
    assert first.loc["A", "z"] == pytest.approx((10 / 3005 - theta) / math.sqrt(theta / 3005))
    assert math.isnan(first.loc["D", "z"])  # 3 is suppressed: no z either
    assert first.loc["D", "suppressed"] and not first.loc["A", "suppressed"]


def test_a_suppressed_count_cannot_be_worked_out_from_the_pooled_rate_or_phi():
    """A unit coding 0 children beside a small one coding 1 (suppressed): with the true total behind the
    pooled rate, 0.8608 per 1000 x 1160 child-years gave the hidden 1 back. Every published figure must be
    the same whatever the hidden count (1 to 7), here and with more units."""
    for groups, shown, years in (
        (["Z1", "Z2"], [0], [1125.0, 35.0]),
        (["A", "B", "C", "D"], [0, 40, 25], [1125.0, 3000.0, 2000.0, 35.0]),
    ):
        results = [_published(groups, [*shown, hidden], years) for hidden in range(1, 8)]
        for result in results[1:]:
            pd.testing.assert_frame_equal(result.points, results[0].points)
            pd.testing.assert_frame_equal(result.curve, results[0].curve)
            for name in ("pooled_rate", "phi", "tau2", "overdispersed"):
                same = getattr(result, name) == getattr(results[0], name)
                assert same or (math.isnan(getattr(result, name)) and math.isnan(getattr(results[0], name))), name
        assert results[0].points.set_index("group").loc[groups[-1], "suppressed"]


def test_without_suppression_the_published_funnel_is_the_true_one():
    raw = pd.DataFrame(
        {
            "group": list("ABCD"),
            "numerator": [10, 20, 31, 39],
            "denominator": [1000.0, 2000, 3000, 4000],
            "population": [3, 900, 1400, 1800],
        }
    )
    published = _published_funnel(raw, suppress=False)
    assert published.pooled_rate == pytest.approx(10.0)
    assert published.points["observed"].tolist() == [10, 20, 31, 39]
    assert not published.points["suppressed"].any()


def test_suppressed_counts_do_not_make_a_false_outlier():
    """Three practices coding 7 children each in 100 child-years (all suppressed) and one coding 19 in 200:
    the true pooled rate is 40 / 500 = 80 per 1000, and D (95 per 1000) is well inside its limits. Counting
    each hidden count as 4 made the pooled rate 32 / 500 = 64 and flagged D. Published, the pooled rate is
    only known to lie between 20 / 500 = 40 (each hidden count 0) and 41 / 500 = 82, and D is flagged only if
    outside at both; the blue line counts each as 3.5, the middle of 0-7: 30.5 / 500 = 61."""
    groups, years = list("ABCD"), [100.0, 100.0, 100.0, 200.0]
    assert not funnel(groups, [7, 7, 7, 19], years).points["outside_95"].any()  # the truth
    published = _published(groups, [7, 7, 7, 19], years)
    assert (published.pooled_rate_low, published.pooled_rate, published.pooled_rate_high) == pytest.approx(
        (40.0, 61.0, 82.0)
    )
    d = published.points.set_index("group").loc["D"]
    assert (d["observed"], d["rate"]) == (20, pytest.approx(100.0))
    assert not d["outside_95"] and not d["outside_998"]


@pytest.mark.parametrize("hidden", range(8))
def test_the_published_limits_hold_whatever_the_suppressed_counts_are(hidden):
    """For every value the hidden counts could take, the exact Poisson limits around the pooled rate it gives
    (Spiegelhalter's, worked out here from the definition) lie inside the published limits, so a unit flagged
    in the published funnel is outside whatever the hidden counts are."""
    groups, years = list("ABCDE"), [100.0, 100.0, 150.0, 200.0, 400.0]
    published = _published(groups, [3, 5, 7, 19, 0], years).points.set_index("group")
    theta = (4 * hidden + 20) / sum(years)  # published counts: 19 -> 20; 3, 5, 7 and 0 hidden (each 0 to 7)
    for group, n in (("D", 200.0), ("E", 400.0)):
        for level, (p_low, p_high) in (("95", (0.025, 0.975)), ("998", (0.001, 0.999))):
            low, high = poisson_limit(theta * n, p_low) / n * 1000, poisson_limit(theta * n, p_high) / n * 1000
            assert published.loc[group, f"lower_{level}"] <= low + 1e-9
            assert published.loc[group, f"upper_{level}"] >= high - 1e-9


def binomial_quantile(n, p, q):
    """Spiegelhalter (2005) A.1.2 for a binomial count, computed from the binomial pmf directly."""
    cdf = [sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(r + 1)) for r in range(n + 1)]
    r = next(r for r in range(n + 1) if cdf[r] >= q)
    return max(0.0, r - (cdf[r] - q) / (cdf[r] - (cdf[r - 1] if r else 0.0)))  # a count is never below 0


def test_a_proportion_funnel_has_exact_binomial_limits_around_the_pooled_proportion():
    """Clinicians: children coded over children seen. Each unit keeps its own denominator; the target is the
    pooled proportion; the limits are binomial quantiles, interpolated as Spiegelhalter's."""
    groups, coded, seen = list("ABCDE"), [4, 6, 9, 2, 12], [60, 80, 120, 40, 150]
    result = funnel(groups, coded, seen, model="binomial")
    theta = sum(coded) / sum(seen)
    assert result.pooled_rate == pytest.approx(1000 * theta)
    assert not result.overdispersed and result.adjustment == "none (exact binomial)"
    points = result.points.set_index("group")
    for group, y, n in zip(groups, coded, seen, strict=True):
        point = points.loc[group]
        assert (point.observed, point.denominator, point.rate) == (y, n, pytest.approx(1000 * y / n))
        assert point.z == pytest.approx((y / n - theta) / math.sqrt(theta * (1 - theta) / n))
        assert point.lower_95 == pytest.approx(binomial_quantile(n, theta, 0.025) / n * 1000)
        assert point.upper_998 == pytest.approx(binomial_quantile(n, theta, 0.999) / n * 1000)
    assert all(float(n).is_integer() for n in result.curve["denominator"])  # children come whole


def test_a_published_proportion_funnel_leaves_out_other_and_hides_small_denominators():
    raw = pd.DataFrame(
        {
            "group": ["A", "B", "C", "other or not recorded"],
            "numerator": [0, 12, 20, 30],
            "denominator": [5.0, 150.0, 200.0, 100.0],
            "population": [5, 150, 200, 100],
        }
    )
    published = _published_funnel(raw, suppress=True, model="binomial")
    assert list(published.points.group) == ["B", "C"]  # A saw 5 children: hidden, so not plotted
    assert published.pooled_rate == pytest.approx(1000 * (10 + 20) / (150 + 200))  # 12 is published as 10


def test_a_practice_of_1_to_7_children_is_not_plotted_whatever_it_coded():
    """Four children over a year are about 5 child-years, which would plot. Its 0 would say of each of the
    four that they were not coded, and a hidden count that one of them was: under disclosure control the
    practice is left off, and nothing published depends on its count, 0 included."""
    groups, years = ["A", "B", "TINY"], [3005.0, 2990.0, 4.0]
    results = [_published(groups, [20, 31, coded], years, [1000, 1000, 4]) for coded in range(5)]
    for result in results:
        assert list(result.points.group) == ["A", "B"]
        pd.testing.assert_frame_equal(result.points, results[0].points)
        assert result.pooled_rate == results[0].pooled_rate
    assert results[0].pooled_rate == pytest.approx(1000 * (20 + 30) / (3005 + 2990))  # 31 is published as 30
    eight = _published(groups, [20, 31, 0], years, [1000, 1000, 8])  # 8 children: plotted, its 0 hidden
    tiny = eight.points.set_index("group").loc["TINY"]
    assert pd.isna(tiny["observed"]) and tiny["suppressed"]


def test_with_a_unit_suppressed_overdispersion_is_not_estimated_from_the_units_shown():
    """The units shown are the extremes (0 hidden like 1 to 7, the middle of the spread hidden): phi from them
    alone came out 9.2 against a true 3.7 on the sample, and its wide limits hid a real outlier. With any unit
    suppressed no phi is estimated and the limits are the exact ones."""
    groups, years = list("ABCDEFGH"), [500.0] * 8
    coded = [0, 3, 5, 7, 10, 40, 60, 100]  # A-D hidden; E-H shown, spread wide
    published = _published(groups, coded, years)
    assert math.isnan(published.phi) and not published.overdispersed
    assert published.adjustment == "none (exact Poisson)"
    assert published.points.set_index("group").loc["H", "outside_998"]  # 200 per 1000 against about 55
