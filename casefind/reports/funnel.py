"""Funnel plot data: practice (or clinician) coding rates against child-years, with control limits.

Method (Spiegelhalter, Stat Med 2005;24:1185 and Qual Saf Health Care 2005;14:347):

* Target: the pooled rate ``theta = sum(observed) / sum(child-years)``. (Under disclosure control the
  report passes a target worked out from the published, rounded totals instead; see ``report``.)
* Without overdispersion, limits are exact Poisson: for a unit with ``n`` child-years the ``p``-quantile
  of Poisson(``theta * n``) interpolated to a continuous value (their appendix A.1.2), divided by ``n``;
  95% limits use p = 0.025/0.975 and 99.8% limits p = 0.001/0.999.
* Overdispersion: z-scores ``(rate - theta) / sqrt(theta / n)`` are winsorised at their 10th and 90th
  percentiles; ``phi = mean(z_w ** 2)``. The data are called overdispersed when ``k * phi`` exceeds the
  95th percentile of chi-square on ``k - 1`` degrees of freedom (k = number of units, at least 3) -- a
  test of ``phi > 1`` that allows for the estimated target.
* Only then are the limits widened. The default is an **additive random-effects** model with
  DerSimonian-Laird ``tau^2 = max(0, (k * phi - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = n / theta``,
  and limits ``theta +/- z_p * sqrt(theta / n + tau^2)``; ``method="multiplicative"`` uses
  ``theta +/- z_p * sqrt(phi * theta / n)`` instead. The ``adjustment`` field records which was applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from casefind.reports.stats import PER

LEVELS = {"95": (0.025, 0.975), "998": (0.001, 0.999)}
WINSOR = (10, 90)
MIN_UNITS_FOR_DISPERSION = 3
CURVE_POINTS = 60

FUNNEL_COLUMNS = [
    "group",
    "observed",
    "child_years",
    "rate",
    "expected",
    "z",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "outside_95",
    "outside_998",
]
CURVE_COLUMNS = ["child_years", "lower_95", "upper_95", "lower_998", "upper_998"]


@dataclass(frozen=True)
class Funnel:
    """Per-unit points, a curve for drawing, the target and the overdispersion decision."""

    points: pd.DataFrame
    curve: pd.DataFrame
    pooled_rate: float  # per 1000 child-years
    phi: float
    tau2: float  # additive variance on the per-1000 scale squared (0 unless applied)
    overdispersed: bool
    adjustment: str  # "none (exact Poisson)", "additive random effects (DerSimonian-Laird)" or "multiplicative"
    method: str = "additive"
    # the range the pooled rate may lie in when some counts are suppressed (set by the report; NaN: not known)
    pooled_rate_low: float = math.nan
    pooled_rate_high: float = math.nan

    def limits_at(self, child_years: float) -> dict[str, float]:
        """The four limits (per 1000 child-years) for a unit with ``child_years`` of exposure."""
        if not child_years > 0:
            return dict.fromkeys(CURVE_COLUMNS[1:], math.nan)
        theta = self.pooled_rate / PER
        tau2 = self.tau2 / (PER * PER)
        raw = _limits(theta, child_years, self.overdispersed, self.method, self.phi, tau2)
        return {k: v * PER for k, v in raw.items()}


def funnel(
    groups: Sequence[str],
    observed: Sequence[int | None],
    child_years: Sequence[float],
    method: str = "additive",
    target: float | None = None,
) -> Funnel:
    """Funnel plot data for units with positive child-years (units without exposure are left out).

    ``observed`` may hold None, a suppressed count: that unit is placed at its child-years with no rate and
    takes no part in the overdispersion test. ``target`` (per child-year) is the target rate when the pooled
    rate cannot be worked out from ``observed`` (some counts suppressed); NaN for none.
    """
    if method not in ("additive", "multiplicative"):
        raise ValueError("method must be 'additive' or 'multiplicative'")
    units = [
        (str(g), None if o is None else int(o), float(n))
        for g, o, n in zip(groups, observed, child_years, strict=True)
        if n > 0
    ]
    units.sort(key=lambda u: u[0])
    total_n = sum(n for _, _, n in units)
    if target is not None:
        theta = target
    elif any(o is None for _, o, _ in units):
        raise ValueError("a target is needed when counts are suppressed")
    else:
        theta = sum(o for _, o, _ in units) / total_n if total_n else math.nan
    z = [math.nan if o is None else z_score(o, n, theta) for _, o, n in units]
    phi, overdispersed = _dispersion([v for v in z if not math.isnan(v)])
    tau2 = 0.0
    adjustment = "none (exact Poisson)"
    if overdispersed:
        if method == "additive":
            weights = [n / theta for _, o, n in units if o is not None]
            tau2 = _dersimonian_laird(phi, weights)
            adjustment = "additive random effects (DerSimonian-Laird)"
        else:
            adjustment = "multiplicative (phi)"

    def limits(n: float) -> dict[str, float]:
        return _limits(theta, n, overdispersed, method, phi, tau2)

    rows = []
    for (group, obs, n), zi in zip(units, z, strict=True):
        lim = limits(n)
        rate = math.nan if obs is None else obs / n
        rows.append(
            {
                "group": group,
                "observed": obs,
                "child_years": n,
                "rate": rate * PER,
                "expected": theta * n,
                "z": zi,
                **{k: v * PER for k, v in lim.items()},
                "outside_95": bool(rate < lim["lower_95"] or rate > lim["upper_95"]),
                "outside_998": bool(rate < lim["lower_998"] or rate > lim["upper_998"]),
            }
        )
    points = pd.DataFrame(rows, columns=FUNNEL_COLUMNS)
    points["observed"] = points["observed"].astype("Int64")
    points["z"] = points["z"].astype("float64")
    curve = _curve([n for _, _, n in units], limits)
    return Funnel(points, curve, theta * PER, phi, tau2 * PER * PER, overdispersed, adjustment, method)


def z_score(observed: float, child_years: float, theta: float) -> float:
    """``(observed / child_years - theta) / sqrt(theta / child_years)``: how far a unit's rate is from the
    target ``theta`` (per child-year) in Poisson standard errors; NaN without a positive target."""
    return (observed / child_years - theta) / math.sqrt(theta / child_years) if theta > 0 else math.nan


def poisson_limit(expected: float, p: float) -> float:
    """Continuous ``p``-quantile of a Poisson count with mean ``expected`` (Spiegelhalter 2005, A.1.2)."""
    if expected <= 0:
        return 0.0
    r = float(_st.poisson.ppf(p, expected))
    upper_cdf = _st.poisson.cdf(r, expected)
    lower_cdf = _st.poisson.cdf(r - 1, expected) if r > 0 else 0.0
    alpha = (upper_cdf - p) / (upper_cdf - lower_cdf) if upper_cdf > lower_cdf else 0.0
    return max(0.0, r - alpha)


def _dispersion(z: list[float]) -> tuple[float, bool]:
    k = len(z)
    if k < MIN_UNITS_FOR_DISPERSION:
        return math.nan, False
    low, high = np.percentile(z, WINSOR)
    winsorised = [min(max(v, low), high) for v in z]
    phi = sum(v * v for v in winsorised) / k
    critical = _st.chi2.ppf(0.95, k - 1)
    return float(phi), bool(k * phi > critical)


def _dersimonian_laird(phi: float, weights: list[float]) -> float:
    k = len(weights)
    total = sum(weights)
    denominator = total - sum(w * w for w in weights) / total
    return max(0.0, (k * phi - (k - 1)) / denominator) if denominator > 0 else 0.0


def _limits(theta: float, n: float, overdispersed: bool, method: str, phi: float, tau2: float) -> dict:
    """Limits on the per-child-year scale for a unit with ``n`` child-years."""
    result = {}
    for level, (p_low, p_high) in LEVELS.items():
        if not theta > 0:
            low = high = math.nan
        elif not overdispersed:
            low, high = poisson_limit(theta * n, p_low) / n, poisson_limit(theta * n, p_high) / n
        else:
            variance = theta / n + tau2 if method == "additive" else phi * theta / n
            z = _st.norm.ppf(p_high)
            low, high = max(0.0, theta - z * math.sqrt(variance)), theta + z * math.sqrt(variance)
        result[f"lower_{level}"] = low
        result[f"upper_{level}"] = high
    return result


def _curve(denominators: list[float], limits) -> pd.DataFrame:
    """Limits along a geometric grid of child-years, for drawing the funnel."""
    if not denominators:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    low, high = min(denominators) / 2, max(denominators) * 1.5
    grid = np.geomspace(low, high, CURVE_POINTS)
    rows = [{"child_years": float(n), **{k: v * PER for k, v in limits(float(n)).items()}} for n in grid]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)
