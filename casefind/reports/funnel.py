"""Funnel plot data: each unit's coding rate or proportion against its denominator, with control limits.

Two models, one per kind of denominator:

* ``poisson``: practices, children coded over child-years (a rate, per 1000 child-years);
* ``binomial``: clinicians, children coded over the children the clinician recorded anything for (a
  proportion, per 1000 children seen). Clinicians have no registered list, so no child-years of their own.

Method (Spiegelhalter, Stat Med 2005;24:1185 and Qual Saf Health Care 2005;14:347), with ``V(theta)`` the
variance of one unit of denominator: ``theta`` (Poisson) or ``theta * (1 - theta)`` (binomial):

* Target: the pooled value ``theta = sum(observed) / sum(denominator)``. (Under disclosure control the
  report passes a target worked out from the published, rounded totals instead; see ``report``.)
* Without overdispersion, limits are exact: for a unit with denominator ``n`` the ``p``-quantile of
  Poisson(``theta * n``) or Binomial(``n``, ``theta``), interpolated to a continuous value (their appendix
  A.1.2), divided by ``n``; 95% limits use p = 0.025/0.975 and 99.8% limits p = 0.001/0.999.
* Overdispersion: z-scores ``(y / n - theta) / sqrt(V(theta) / n)`` are winsorised at their 10th and 90th
  percentiles; ``phi = mean(z_w ** 2)``. The data are called overdispersed when ``k * phi`` exceeds the
  95th percentile of chi-square on ``k - 1`` degrees of freedom (k = number of units, at least 3) -- a
  test of ``phi > 1`` that allows for the estimated target.
* Only then are the limits widened. The default is an **additive random-effects** model with
  DerSimonian-Laird ``tau^2 = max(0, (k * phi - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = n / V(theta)``,
  and limits ``theta +/- z_p * sqrt(V(theta) / n + tau^2)``; ``method="multiplicative"`` uses
  ``theta +/- z_p * sqrt(phi * V(theta) / n)`` instead. The ``adjustment`` field records which was applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from casefind.reports.stats import PER

MODELS = ("poisson", "binomial")
LEVELS = {"95": (0.025, 0.975), "998": (0.001, 0.999)}
WINSOR = (10, 90)
MIN_UNITS_FOR_DISPERSION = 3
CURVE_POINTS = 60

FUNNEL_COLUMNS = [
    "group",
    "observed",
    "denominator",
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
CURVE_COLUMNS = ["denominator", "lower_95", "upper_95", "lower_998", "upper_998"]


@dataclass(frozen=True)
class Funnel:
    """Per-unit points, a curve for drawing, the target and the overdispersion decision.

    Rates, limits and the pooled value are per 1000 units of denominator (child-years or children seen)."""

    points: pd.DataFrame
    curve: pd.DataFrame
    pooled_rate: float  # per 1000 units of denominator
    phi: float
    tau2: float  # additive variance on the per-1000 scale squared (0 unless applied)
    overdispersed: bool
    adjustment: str  # "none (exact Poisson)", "additive random effects (DerSimonian-Laird)" or "multiplicative"
    method: str = "additive"
    # the range the pooled rate may lie in when some counts are suppressed (set by the report; NaN: not known)
    pooled_rate_low: float = math.nan
    pooled_rate_high: float = math.nan
    model: str = "poisson"


def funnel(
    groups: Sequence[str],
    observed: Sequence[int | None],
    denominators: Sequence[float],
    method: str = "additive",
    target: float | None = None,
    model: str = "poisson",
    estimate_dispersion: bool = True,
) -> Funnel:
    """Funnel plot data for units with a positive denominator (units without one are left out).

    ``observed`` may hold None, a suppressed count: that unit is placed at its denominator with no rate and
    takes no part in the overdispersion test. ``target`` (per unit of denominator) is the target when the
    pooled value cannot be worked out from ``observed`` (some counts suppressed); NaN for none. ``model`` is
    "poisson" (child-years) or "binomial" (children seen: the denominators are whole numbers). Without
    ``estimate_dispersion`` no overdispersion is estimated (phi NaN) and the limits are the exact ones.
    """
    if method not in ("additive", "multiplicative"):
        raise ValueError("method must be 'additive' or 'multiplicative'")
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}")
    units = [
        (str(g), None if o is None else int(o), float(n))
        for g, o, n in zip(groups, observed, denominators, strict=True)
        if n is not None and n > 0
    ]
    units.sort(key=lambda u: u[0])
    total_n = sum(n for _, _, n in units)
    if target is not None:
        theta = target
    elif any(o is None for _, o, _ in units):
        raise ValueError("a target is needed when counts are suppressed")
    else:
        theta = sum(o for _, o, _ in units) / total_n if total_n else math.nan
    z = [math.nan if o is None else z_score(o, n, theta, model) for _, o, n in units]
    phi, overdispersed = _dispersion([v for v in z if not math.isnan(v)]) if estimate_dispersion else (math.nan, False)
    tau2 = 0.0
    exact = "none (exact Poisson)" if model == "poisson" else "none (exact binomial)"
    adjustment = exact
    if overdispersed:
        if method == "additive":
            weights = [n / _unit_variance(theta, model) for _, o, n in units if o is not None]
            tau2 = _dersimonian_laird(phi, weights)
            adjustment = "additive random effects (DerSimonian-Laird)"
        else:
            adjustment = "multiplicative (phi)"

    def limits(n: float) -> dict[str, float]:
        return _limits(theta, n, overdispersed, method, phi, tau2, model)

    rows = []
    for (group, obs, n), zi in zip(units, z, strict=True):
        lim = limits(n)
        rate = math.nan if obs is None else obs / n
        rows.append(
            {
                "group": group,
                "observed": obs,
                "denominator": n,
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
    curve = _curve([n for _, _, n in units], limits, whole=model == "binomial")
    return Funnel(points, curve, theta * PER, phi, tau2 * PER * PER, overdispersed, adjustment, method, model=model)


def z_score(observed: float, denominator: float, theta: float, model: str = "poisson") -> float:
    """``(observed / denominator - theta) / sqrt(V(theta) / denominator)``: how far a unit is from the target
    ``theta`` (per unit of denominator) in standard errors; NaN when the target leaves no variance."""
    variance = _unit_variance(theta, model)
    return (observed / denominator - theta) / math.sqrt(variance / denominator) if variance > 0 else math.nan


def _unit_variance(theta: float, model: str) -> float:
    if not theta > 0:
        return math.nan if math.isnan(theta) else 0.0
    return theta if model == "poisson" else max(0.0, theta * (1 - theta))


def poisson_limit(expected, p: float):
    """Continuous ``p``-quantile of a Poisson count with mean ``expected`` (Spiegelhalter 2005, A.1.2). A
    number, or an array of them: a funnel's curve is worked out in one call, not a scipy call per point."""
    expected = np.asarray(expected, dtype=float)
    mean = np.where(expected > 0, expected, 1.0)  # placeholder mean where the limit is 0 anyway
    limit = _interpolated(lambda r: _st.poisson.cdf(r, mean), _st.poisson.ppf(p, mean), p)
    return _like(expected, np.where(expected > 0, limit, 0.0))


def binomial_limit(n, theta: float, p: float):
    """Continuous ``p``-quantile of a Binomial(``n``, ``theta``) count (Spiegelhalter 2005, A.1.2); ``n`` a
    whole number or an array of them."""
    n = np.asarray(n, dtype=float)
    if theta <= 0:
        return _like(n, np.zeros_like(n))
    if theta >= 1:
        return _like(n, np.maximum(n, 0.0))
    trials = np.where(n > 0, np.rint(n), 1.0)
    limit = _interpolated(lambda r: _st.binom.cdf(r, trials, theta), _st.binom.ppf(p, trials, theta), p)
    return _like(n, np.where(n > 0, limit, 0.0))


def _interpolated(cdf, r, p: float):
    """``r`` (the ``p``-quantile of a discrete count) less how far ``p`` falls short of its cdf, as a share of
    the step to ``r - 1``."""
    upper_cdf = cdf(r)
    lower_cdf = np.where(r > 0, cdf(r - 1), 0.0)
    step = upper_cdf - lower_cdf
    alpha = np.where(step > 0, (upper_cdf - p) / np.where(step > 0, step, 1.0), 0.0)
    return np.maximum(0.0, r - alpha)


def _like(given: np.ndarray, values: np.ndarray):
    """``values`` as a float when ``given`` was one number, else as an array."""
    return float(values) if given.ndim == 0 else values


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


def _limits(
    theta: float, n: float, overdispersed: bool, method: str, phi: float, tau2: float, model: str = "poisson"
) -> dict:
    """Limits per unit of denominator for a unit with denominator ``n`` (a number, or an array: a curve)."""
    result = {}
    ceiling = math.inf if model == "poisson" else 1.0
    for level, (p_low, p_high) in LEVELS.items():
        if not theta > 0:
            low = high = math.nan
        elif not overdispersed:
            if model == "poisson":
                low, high = poisson_limit(theta * n, p_low) / n, poisson_limit(theta * n, p_high) / n
            else:
                low, high = binomial_limit(np.rint(n), theta, p_low) / n, binomial_limit(np.rint(n), theta, p_high) / n
        else:
            unit = _unit_variance(theta, model)
            variance = unit / n + tau2 if method == "additive" else phi * unit / n
            z = _st.norm.ppf(p_high)
            low = np.maximum(0.0, theta - z * np.sqrt(variance))
            high = np.minimum(ceiling, theta + z * np.sqrt(variance))
        result[f"lower_{level}"] = low
        result[f"upper_{level}"] = high
    return result


def _curve(denominators: list[float], limits, whole: bool = False) -> pd.DataFrame:
    """Limits along a geometric grid of denominators (whole numbers for children seen), for drawing."""
    if not denominators:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    low, high = min(denominators) / 2, max(denominators) * 1.5
    grid = [float(n) for n in np.geomspace(low, high, CURVE_POINTS)]
    if whole:
        grid = sorted({float(max(1, round(n))) for n in grid})
    grid = np.array(grid)
    curve = pd.DataFrame({"denominator": grid, **{k: v * PER for k, v in limits(grid).items()}})
    return curve[CURVE_COLUMNS]
