"""The auditor coding-rate report: build it from a DuckDB connection, then write CSVs and HTML.

``build_coding_report`` computes values only; ``render_*`` and ``write_report`` format them and never
recompute, so the CLI, tests and notebooks share one code path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd

from casefind.dates import check_year
from casefind.errors import OptionError, OutputError, Problem
from casefind.files import atomic_write_all, lookup_error
from casefind.reports import html as h
from casefind.reports import stats
from casefind.reports.funnel import FUNNEL_COLUMNS, Funnel, funnel
from casefind.reports.measures import (
    ANY_CATEGORY,
    OTHER,
    PUBLIC_SALT,
    CodingMeasures,
    ExtractEnd,
    Progress,
    normalise_breakdowns,
)
from casefind.reports.periods import AgeBand, Period, make_periods, range_period
from casefind.reports.spc import SPC_COLUMNS, points_only, xmr
from casefind.reports.tidy_csv import to_csv_text

DISCLOSURE_ON = (
    "counts 0-7 suppressed (every count of a group of 1-7 children too); other counts and child-years rounded to "
    "nearest 5; rates from rounded figures"
)
DISCLOSURE_OFF = "NONE (--no-suppress): for use inside the practice only; do not publish"

RATES_CSV_COLUMNS = [
    "period", "group", "numerator", "denominator", "rate", "lower", "upper",
    "category", "breakdown", "period_start", "period_end", "codes", "children_registered", "registered_midpoint",
    "cohort_numerator", "children_seen", "proportion", "prop_lower", "prop_upper", "suppressed",
    "disclosure_control",
]  # fmt: skip
PROVENANCE_FILE = "provenance.json"
REPORT_FILES = ("rates.csv", "compare.csv", "spc.csv", "funnel.csv", "report.html", PROVENANCE_FILE)
REJECTS_FILE = "rejects.csv"  # written beside the report by the caller that read the extract (--skip-bad-rows)
SPC_CSV_COLUMNS = ["category", *SPC_COLUMNS, "suppressed", "disclosure_control"]
FUNNEL_MEASURES = {
    "practice": "children coded per 1000 child-years",
    "clinician": "children coded per 1000 children seen",
}
FUNNEL_CSV_COLUMNS = [
    "unit", "measure", *FUNNEL_COLUMNS, "suppressed", "pooled_rate", "pooled_rate_low", "pooled_rate_high",
    "phi", "overdispersed", "adjustment", "disclosure_control",
]  # fmt: skip


@dataclass(frozen=True)
class ReportOptions:
    """Everything that shaped the report; written into its provenance."""

    age_min: int
    age_max: int
    date_from: date
    date_to: date
    by: str
    breakdowns: tuple[str, ...]
    compare: tuple[tuple[date, date], tuple[date, date]] | None
    suppress: bool
    pseudonymise_clinicians: bool
    funnel_unit: str
    categories: tuple[str, ...]
    # --to and --compare as asked for; date_to and compare above end by extract_end (see _clip_to_extract)
    date_to_requested: date | None = None
    compare_requested: tuple[tuple[date, date], tuple[date, date]] | None = None
    extract_end: date | None = None
    # events dated after the as-of date, not used to find extract_end (None: not looked for)
    events_after_as_of: int | None = None
    as_of: date | None = None  # --as-of: the day the extract's end was judged on (None: no end looked for)
    # --from as asked for; date_from and compare above start by extract_start (see _clip_to_extract)
    date_from_requested: date | None = None
    extract_start: date | None = None
    clinician_key: bool = False  # the pseudonyms were made with the practice's private key, not the public salt

    def as_dict(self) -> dict:
        values = asdict(self)
        dates = ("date_from", "date_to", "date_from_requested", "date_to_requested", "extract_start", "extract_end")
        for key in (*dates, "as_of"):
            values[key] = None if values[key] is None else values[key].isoformat()
        for key in ("compare", "compare_requested"):
            if values[key]:
                values[key] = [[a.isoformat(), b.isoformat()] for a, b in values[key]]
        return values


@dataclass(frozen=True, eq=False)
class CodingReport:
    """The report's values. DataFrames are tidy; ``funnel_summary`` holds the funnel's target and test."""

    options: ReportOptions
    rates: pd.DataFrame
    spc: pd.DataFrame
    funnel: pd.DataFrame
    funnel_curve: pd.DataFrame
    funnel_summary: dict = field(default_factory=dict)
    compare: pd.DataFrame | None = None
    notices: tuple[str, ...] = ()  # what a reader must know first, e.g. that the dates were cut short
    rows_rejected: int = 0  # bad rows of the extract left out (--skip-bad-rows), listed in REJECTS_FILE


def check_options(
    date_from: date,
    date_to: date,
    by: str = "month",
    breakdowns: Iterable[str] = ("category",),
    compare: tuple[tuple[date, date], tuple[date, date]] | None = None,
) -> tuple[str, ...]:
    """Stop on any option the extract has no say in (``--by``, ``--breakdown``, ``--from``/``--to``,
    ``--compare``); returns the breakdowns as :func:`build_coding_report` uses them, which starts with this
    check. Call it before reading an extract, which can take minutes."""
    chosen = normalise_breakdowns(breakdowns)
    check_year("--from", date_from)
    check_year("--to", date_to)
    for day in [d for pair in compare or () for d in pair]:
        check_year("--compare", day)
    make_periods(date_from, date_to, by)  # the dates as asked for must make sense before they are cut
    _compare_periods(compare)
    return chosen


def build_coding_report(
    con,
    categories: Mapping[str, Sequence[tuple[str, str]]],
    age_min: int,
    age_max: int,
    date_from: date,
    date_to: date,
    by: str = "month",
    breakdowns: Iterable[str] = ("category", "practice", "clinician", "age_band", "sex"),
    compare: tuple[tuple[date, date], tuple[date, date]] | None = None,
    suppress: bool = True,
    pseudonymise_clinicians: bool = True,
    funnel_unit: str | None = None,
    age_bands: Sequence[AgeBand] | None = None,
    clinician_salt: str = PUBLIC_SALT,
    progress: Progress | None = None,
    extract_end: date | ExtractEnd | None = None,
    extract_start: date | None = None,
) -> CodingReport:
    """Compute every table of the coding-rate report with one scan of ``events``.

    ``compare`` is ``((before_from, before_to), (after_from, after_to))``; the rate ratio is after/before.
    ``funnel_unit`` is "practice" or "clinician"; by default practices when the extract has more than one,
    otherwise clinicians. The SPC chart is always of monthly rates, whatever ``by`` is. ``extract_end`` is
    the day the extract was taken, or the :class:`~casefind.reports.measures.ExtractEnd` found on the
    report's as-of date (see :func:`~casefind.reports.measures.find_extract_end`): the report and the compared
    ranges end by it, and the report's ``notices`` say where they were cut short and how many events were
    dated after the as-of date. When every event is dated after that day there is no end to cut at: the
    dates are not cut, and the notice says so. Likewise the report and the compared ranges start no earlier
    than the extract's earliest event date (``extract_start``, or the ``ExtractEnd``'s ``first_day``): the
    extract holds no history before it, so earlier days would read as days when nobody coded anything.
    Practice, clinician and sex labels that could identify a patient are not published (see
    :mod:`~casefind.reports.measures`); the notices count the rows grouped without them. Clinicians are
    pseudonymised unless ``pseudonymise_clinicians`` is False.
    """
    chosen = check_options(date_from, date_to, by, breakdowns, compare)
    notices, events_after_as_of, as_of, found = [], None, None, None
    if isinstance(extract_end, ExtractEnd):
        found = extract_end
        notices, events_after_as_of = _later_events_notices(found), found.later_events
        as_of, extract_end = found.as_of, found.day
        extract_start = found.first_day if extract_start is None else extract_start
    requested_from, requested_to, requested_compare = date_from, date_to, _compare_periods(compare)
    date_from, date_to, compare_periods, cut_notices = _clip_to_extract(
        date_from, date_to, requested_compare, _Extent(extract_start, extract_end, found)
    )
    periods = make_periods(date_from, date_to, by)
    months = periods if by == "month" else make_periods(date_from, date_to, "month")
    span = [date_from, date_to] + [d for p in compare_periods for d in (p.start, p.end)]
    with CodingMeasures(con, categories, age_min, age_max, min(span), max(span), progress) as measures:
        rates = measures.rates(periods, chosen, age_bands, suppress, pseudonymise_clinicians, clinician_salt)
        monthly = rates if by == "month" else measures.rates(months, ("overall",), suppress=suppress)
        spc = _spc_table(monthly, measures.category_names)
        if funnel_unit not in (None, "practice", "clinician"):
            raise OptionError(f"--funnel: expected 'practice' or 'clinician', got '{funnel_unit}'")
        whole = Period(f"{date_from.isoformat()}..{date_to.isoformat()}", date_from, date_to)
        raw = None if funnel_unit == "clinician" else measures.funnel_input(whole, "practice")
        unit = funnel_unit or ("practice" if _units(raw) > 1 else "clinician")
        if unit == "clinician":
            raw = measures.funnel_input(whole, unit, pseudonymise_clinicians, clinician_salt)
        compared = measures.compare(*compare_periods, suppress=suppress) if compare_periods else None
        label_notices = measures.label_notices({*chosen, unit}, suppress)
    result = _published_funnel(raw, suppress, FUNNEL_MODELS[unit])
    left_out = _funnel_left_out(raw, suppress, unit)
    options = ReportOptions(
        age_min, age_max, date_from, date_to, by, chosen, _ranges(compare_periods),
        suppress, pseudonymise_clinicians, unit, tuple(categories),
        requested_to, _ranges(requested_compare), extract_end, events_after_as_of, as_of,
        requested_from, extract_start, clinician_salt != PUBLIC_SALT,
    )  # fmt: skip
    return CodingReport(
        options=options,
        rates=rates,
        spc=spc,
        funnel=result.points,
        funnel_curve=result.curve,
        funnel_summary={
            "unit": unit,
            "measure": FUNNEL_MEASURES[unit],
            "left_out": left_out,
            "small_units": _small_units(raw) if suppress else 0,
            "category": ANY_CATEGORY,
            "pooled_rate": result.pooled_rate,
            "pooled_rate_low": result.pooled_rate_low,
            "pooled_rate_high": result.pooled_rate_high,
            "phi": result.phi,
            "tau2": result.tau2,
            "overdispersed": result.overdispersed,
            "adjustment": result.adjustment,
        },
        compare=compared,
        notices=(*notices, *cut_notices, *label_notices, *([left_out] if left_out else [])),
    )


def _later_events_notices(found: ExtractEnd) -> list[str]:
    """What a reader must know of the events dated after the as-of date: how many, the latest."""
    if not found.later_events:
        return []
    count, as_of, latest = found.later_events, found.as_of.isoformat(), found.latest_later.isoformat()
    text = (
        f"1 event is dated {latest}, after the as-of date ({as_of}); it was"
        if count == 1
        else f"{count} events are dated after the as-of date ({as_of}), the latest {latest}; they were"
    )
    text += " not used to find the extract's latest event date: such dates are typing errors or planned items."
    if found.day is None:
        text += f" No event is dated on or before {as_of}, so the report's dates are not cut to the extract's end."
    return [text]


@dataclass(frozen=True)
class _Extent:
    """The days the extract covers: its earliest and latest event dates (None: not known), and what was found
    on the as-of date, so a message can say when --as-of, not the extract, set the end."""

    start: date | None
    end: date | None
    found: ExtractEnd | None = None

    def end_words(self) -> tuple[str, str, str, str]:
        """How to name the end in a notice and in an error, the hint for the error, and why the days after
        the end are left out."""
        end = self.end.isoformat()
        if self.found is None or not self.found.later_events:
            latest = "the extract's latest event date"
            why = "the extract holds no codes after it"
            return latest, f"{latest} ({end})", f"choose dates up to {end}, or use a later extract", why
        as_of, count = self.found.as_of.isoformat(), self.found.later_events
        latest = f"the extract's latest event date on or before --as-of {as_of}"
        later = "1 event is" if count == 1 else f"{count:,} events are"
        return (
            latest,
            f"{latest} ({end}); {later} dated after --as-of, the latest {self.found.latest_later.isoformat()}, "
            "and not used",
            f"give --as-of the day the extract was taken (the default is today), or choose dates up to {end}",
            "events dated after --as-of are not used",
        )


def _clip_to_extract(
    date_from: date, date_to: date, compare: list[Period], extent: _Extent
) -> tuple[date, date, list[Period], list[str]]:
    """Start the report and the compared ranges no earlier than the extract's first day and end them by its
    last, saying so; stop if one lies wholly outside.

    Before the extract's first event and after it was taken there are no codes, only registered children:
    those days would read as days without codes, showing coding that never happened (a rate of 0, an
    infinite rate ratio, special causes).
    """
    notices = []
    if extent.end is not None:
        date_to, compare, notices = _clip_end(date_from, date_to, compare, extent)
    if extent.start is not None:
        date_from, compare, start_notices = _clip_start(date_from, date_to, compare, extent.start)
        notices = start_notices + notices
    return date_from, date_to, compare, notices


def _clip_end(
    date_from: date, date_to: date, compare: list[Period], extent: _Extent
) -> tuple[date, list[Period], list[str]]:
    extract_end, end = extent.end, extent.end.isoformat()
    latest, latest_dated, hint, why = extent.end_words()
    notices = [
        _cut_notice(
            date_from, date_to, extract_end,
            Problem("--from", f"{date_from.isoformat()} is after {latest_dated}", hint),
            f"The report ends on {end}, {latest}, not on --to {date_to.isoformat()}: "
            f"{why}, so later days would read as days with none.",
        )
    ]  # fmt: skip
    for period in compare:
        starts_after = Problem("--compare", f"the range {period.label} starts after {latest_dated}", hint)
        notices.append(
            _cut_notice(
                period.start, period.end, extract_end, starts_after,
                f"The --compare range {period.label} ends on {end}, {latest}, not on {period.end.isoformat()}.",
            )
        )  # fmt: skip
    clipped = [range_period(p.start, min(p.end, extract_end)) for p in compare]
    return min(date_to, extract_end), clipped, [n for n in notices if n]


def _clip_start(
    date_from: date, date_to: date, compare: list[Period], extract_start: date
) -> tuple[date, list[Period], list[str]]:
    first = extract_start.isoformat()
    earliest = f"the extract's earliest event date ({first})"
    hint = f"choose dates from {first}, or use an extract that goes further back"
    if date_to < extract_start:
        raise OptionError(Problem("--to", f"{date_to.isoformat()} is before {earliest}", hint))
    for period in compare:
        if period.end < extract_start:
            raise OptionError(Problem("--compare", f"the range {period.label} ends before {earliest}", hint))
    notices = []
    if date_from < extract_start:
        notices.append(
            f"The report starts on {first}, the extract's earliest event date, not on --from "
            f"{date_from.isoformat()}: the extract holds no events before it, so earlier days would read as days "
            "when nobody was coded."
        )
    for period in compare:
        if period.start < extract_start:
            notices.append(
                f"The --compare range {period.label} starts on {first}, the extract's earliest event date, "
                f"not on {period.start.isoformat()}."
            )
    clipped = [range_period(max(p.start, extract_start), p.end) for p in compare]
    return max(date_from, extract_start), clipped, notices


def _cut_notice(start: date, end: date, extract_end: date, starts_after: Problem, cut_short: str) -> str | None:
    """Stop with ``starts_after`` if the range starts after ``extract_end``; ``cut_short`` if it ends after it."""
    if start > extract_end:
        raise OptionError(starts_after)
    return cut_short if end > extract_end else None


def _ranges(periods: Sequence[Period]) -> tuple[tuple[date, date], ...] | None:
    return tuple((p.start, p.end) for p in periods) or None


def _compare_periods(compare) -> list[Period]:
    if compare is None:
        return []
    try:
        (b0, b1), (a0, a1) = compare
    except (TypeError, ValueError):
        raise OptionError("--compare: expected two date ranges, FROM..TO FROM..TO") from None
    before, after = range_period(b0, b1), range_period(a0, a1)
    if before.label == after.label:
        raise OptionError("--compare: the two date ranges are the same")
    if before.end >= after.start:
        # A shared day counts its children in both ranges, so the ratio compares a period with part of itself
        raise OptionError(
            Problem(
                "--compare",
                f"the ranges {before.label} and {after.label} "
                + ("overlap" if before.start <= after.end else "are in the wrong order"),
                "give the BEFORE range first, ending before the AFTER range starts",
            )
        )
    return [before, after]


FUNNEL_MODELS = {"practice": "poisson", "clinician": "binomial"}


def _units(raw: pd.DataFrame) -> int:
    """How many units a funnel of ``raw`` would plot: groups with a denominator, not counting ``OTHER`` (a blank
    or unpublishable id is no practice: one adult without a practice_id must not make a practice funnel)."""
    return int(((raw["group"] != OTHER) & (raw["denominator"] > 0)).sum())


def _spc_table(monthly: pd.DataFrame, category_names: Sequence[str]) -> pd.DataFrame:
    """XmR per category on the overall monthly rates.

    A category with any month suppressed gets its published points only, no mean, limits or flags:
    disclosure control hides a month because of its count (0 to 7), so the months left are not a fair
    sample and lines from them would be biased (with few children, often the months with none).
    """
    frames = []
    overall = monthly[monthly["breakdown"] == "overall"]
    for category in category_names:
        series = overall[overall["category"] == category]
        hidden = series["numerator"].isna().tolist()
        chart = (points_only if any(hidden) else xmr)(list(series["period"]), [float(v) for v in series["rate"]])
        chart.insert(0, "category", category)
        chart["suppressed"] = hidden
        frames.append(chart)
    return pd.concat(frames, ignore_index=True)[[*SPC_CSV_COLUMNS[:-1]]]


def _published_funnel(raw: pd.DataFrame, suppress: bool, model: str = "poisson") -> Funnel:
    """The funnel as published, from the units' true counts and denominators (``raw``: ``group, numerator,
    denominator``; child-years for the ``poisson`` model, children seen for ``binomial``).

    The group ``OTHER`` (blank or unpublishable ids) is no unit: it is left out, from the pooled value too
    (:func:`_funnel_left_out` says what it held).

    With disclosure control every figure in it is worked out from the published ones alone: each unit's
    count suppressed or rounded and its child-years rounded. The true pooled rate cannot be used: beside
    the other units' published counts (a 0 is published exactly) it would give a suppressed count back.
    Nor can one stand-in for a suppressed count (3.5, the middle of 0-7): with several units suppressed the
    pooled rate can be far off (true counts 7, 7, 7 and 19 give a pooled rate 20% low) and a unit inside
    the true limits is flagged as an outlier. So the pooled rate is known only to lie between
    ``pooled_rate_low`` (every suppressed count 0) and ``pooled_rate_high`` (every one 7); the funnel is
    worked out at both ends and at the stand-in (published as ``pooled_rate``, the blue line, and used for
    the z-scores), and the published limits are the widest of the three: the lower limit the lowest, the
    upper the highest. A unit is flagged outside only when it lies outside these limits, that is outside
    the funnel whatever the suppressed counts are (the limits rise with the pooled rate). The
    overdispersion test reads the units shown, at the stand-in; the widest limits also cover the
    decisions at both ends. Suppressed units have no rate, so no z-score or flag; a unit whose child-years
    round to 0 is not plotted, nor is a unit of 1 to 7 children (``population``, registered or seen), whose
    0 would say of each child that they were not coded (see ``measures.finalise_rates``). Without
    suppressed units the three coincide and this is the plain funnel.
    """
    raw = raw[raw["group"] != OTHER]
    groups = [str(g) for g in raw["group"]]
    observed = [int(o) for o in raw["numerator"]]
    denominators = [float(n) for n in raw["denominator"]]
    if not suppress:
        result = funnel(groups, observed, denominators, model=model)
        result = replace(result, pooled_rate_low=result.pooled_rate, pooled_rate_high=result.pooled_rate)
    else:
        counts = [stats.suppress_count(o) for o in observed]
        published = [_published_denominator(n, p, model) for n, p in zip(denominators, raw["population"], strict=True)]
        plotted = [c for c, n in zip(counts, published, strict=True) if n > 0]  # as funnel() plots them
        shown, hidden = sum(c for c in plotted if c is not None), sum(c is None for c in plotted)
        exposure = sum(published)
        targets = [
            (shown + hidden * k) / exposure if exposure > 0 else math.nan
            for k in (0, stats.SUPPRESSED_STAND_IN, stats.SMALL_COUNT_MAX)
        ]
        # phi from the units shown alone overstates overdispersion (the suppressed ones are the middle of the
        # spread), widening the limits until a real outlier is inside them: with any unit suppressed it is
        # not estimated, and the limits are the exact ones (widened over the pooled range, as above)
        estimate = hidden == 0
        result = _widest(
            *(funnel(groups, counts, published, target=t, model=model, estimate_dispersion=estimate) for t in targets)
        )
    points = result.points.assign(suppressed=result.points["observed"].isna())
    return replace(result, points=points[[*FUNNEL_COLUMNS, "suppressed"]])


def _published_denominator(value: float, population, model: str) -> float:
    """Child-years rounded to the nearest 5, or children seen rounded like any count of children; 0 (the unit
    is not plotted) for a unit of fewer than 8 children (``population``: registered, or seen, which is then
    ``value`` itself)."""
    if _small_group(population):
        return 0.0
    return float(stats.round_exposure(value) if model == "poisson" else stats.suppress_count(round(value)))


def _small_units(raw: pd.DataFrame) -> int:
    """How many units (``OTHER`` is none) disclosure control leaves off the funnel for having 1 to 7 children."""
    units = raw[(raw["group"] != OTHER) & (raw["population"] > 0)]
    return int(units["population"].map(_small_group).sum())


def _small_group(population) -> bool:
    """A group of 1 to 7 children, whose every count disclosure control hides (``measures.finalise_rates``)."""
    return stats.suppress_count(int(population)) is None


def _funnel_left_out(raw: pd.DataFrame, suppress: bool, unit: str) -> str | None:
    """What the funnel leaves out: the group ``OTHER``, in published figures; None when it held nothing."""
    other = raw[raw["group"] == OTHER]
    if other.empty or not other["denominator"].iloc[0] > 0:
        return None
    count, denominator = int(other["numerator"].iloc[0]), float(other["denominator"].iloc[0])
    population = other["population"].iloc[0]
    held = (
        "patients with a blank practice_id or one not shown"
        if unit == "practice"
        else "events with a blank clinician_id or one not shown"
    )
    if suppress and _small_group(population):
        held += ": 1 to 7 children, so every figure is suppressed"
    else:  # 8 children or more: the denominator published is not 0
        if suppress:
            count = stats.suppress_count(count)
            denominator = _published_denominator(denominator, population, FUNNEL_MODELS[unit])
        coded = "fewer than 8 (suppressed)" if count is None else f"{count:,}"
        if unit == "practice":
            held += f": {coded} children coded, {denominator:,.1f} child-years"
        else:
            held += f": {coded} children coded of {denominator:,.0f} children seen"
    return (
        f"The funnel plot leaves out the group '{OTHER}' ({held}): it is not a {unit}, so it is not plotted and "
        f"takes no part in the pooled {'rate' if unit == 'practice' else 'proportion'}."
    )


def _widest(low: Funnel, middle: Funnel, high: Funnel) -> Funnel:
    """``middle`` with the widest limits of the three and the flags they give (see :func:`_published_funnel`)."""
    points, curve = middle.points.copy(), middle.curve.copy()
    for frame, name in ((points, "points"), (curve, "curve")):
        ends = [getattr(f, name) for f in (low, middle, high)]
        for column in ("lower_95", "lower_998"):
            frame[column] = pd.concat([e[column] for e in ends], axis=1).min(axis=1, skipna=False)
        for column in ("upper_95", "upper_998"):
            frame[column] = pd.concat([e[column] for e in ends], axis=1).max(axis=1, skipna=False)
    for level in ("95", "998"):
        outside = (points["rate"] < points[f"lower_{level}"]) | (points["rate"] > points[f"upper_{level}"])
        points[f"outside_{level}"] = outside.fillna(False).astype(bool)
    adjustment = middle.adjustment
    if len({low.adjustment, middle.adjustment, high.adjustment}) > 1:
        adjustment += " at the stand-in pooled rate; the limits also cover the other decision"
    return replace(
        middle,
        points=points,
        curve=curve,
        adjustment=adjustment,
        pooled_rate_low=low.pooled_rate,
        pooled_rate_high=high.pooled_rate,
    )


# --- rendering ------------------------------------------------------------------------------------------


def rates_csv(report: CodingReport) -> str:
    frame = report.rates.rename(columns={"child_years": "denominator"}).assign(disclosure_control=_disclosure(report))
    return to_csv_text(frame, RATES_CSV_COLUMNS, ["breakdown", "category", "group", "period_start"])


def compare_csv(report: CodingReport) -> str | None:
    if report.compare is None:
        return None
    frame = report.compare.assign(disclosure_control=_disclosure(report))
    return to_csv_text(frame, [*frame.columns], ["category"])


def spc_csv(report: CodingReport) -> str:
    frame = report.spc.assign(disclosure_control=_disclosure(report))
    return to_csv_text(frame, SPC_CSV_COLUMNS, ["category", "period"])


def funnel_csv(report: CodingReport) -> str:
    summary = report.funnel_summary
    frame = report.funnel.assign(
        unit=summary["unit"], measure=summary["measure"], pooled_rate=summary["pooled_rate"],
        pooled_rate_low=summary["pooled_rate_low"], pooled_rate_high=summary["pooled_rate_high"], phi=summary["phi"],
        overdispersed=summary["overdispersed"], adjustment=summary["adjustment"],
        disclosure_control=_disclosure(report),
    )  # fmt: skip
    return to_csv_text(frame, FUNNEL_CSV_COLUMNS, ["group"])


def _disclosure(report: CodingReport) -> str:
    return DISCLOSURE_ON if report.options.suppress else DISCLOSURE_OFF


def render_html(report: CodingReport, provenance: Mapping) -> str:
    """The self-contained HTML report (see :mod:`casefind.reports.html`)."""
    o = report.options
    notices = ([] if o.suppress else ["Small-number suppression is OFF. " + DISCLOSURE_OFF]) + [*report.notices]
    if report.rows_rejected:
        rows = "1 bad row" if report.rows_rejected == 1 else f"{report.rows_rejected} bad rows"
        notices.append(
            f"{rows} of the extract {'was' if report.rows_rejected == 1 else 'were'} left out (--skip-bad-rows): "
            f"the codes and children in them are not counted. {REJECTS_FILE}, beside this report, lists each "
            "by file, row, column and problem."
        )
    any_spc = report.spc[report.spc["category"] == ANY_CATEGORY]
    unit = report.funnel_summary["unit"]
    axes = {"practice": ("rate per 1000 child-years", "child-years"),
            "clinician": ("children coded per 1000 children seen", "children seen")}[unit]  # fmt: skip
    sections = [
        (
            "Monthly rate: SPC chart",
            _figure(h.spc_svg(any_spc, f"XmR chart: {ANY_CATEGORY}, monthly rate"), _spc_caption(any_spc, o.suppress)),
        ),
        (
            f"Funnel plot of {unit}s",
            _figure(
                h.funnel_svg(
                    report.funnel,
                    report.funnel_curve,
                    report.funnel_summary["pooled_rate"],
                    f"Funnel plot: {ANY_CATEGORY} by {unit}",
                    *axes,
                ),
                _funnel_caption(report),
            ),
        ),
    ]
    if report.compare is not None:
        sections.append(
            ("Before and after", _compare_table(report.compare, report.options.suppress) + _ratio_notes(report.compare))
        )
    sections += _rate_tables(report)
    sections.append(("Method in plain words", _method_html(report)))
    sections.append(("Provenance", h.provenance_html(provenance_record(report, provenance))))
    title = f"Safeguarding coding rates, {o.date_from.isoformat()} to {o.date_to.isoformat()}"
    return h.page(title, sections, notices)


def provenance_record(report: CodingReport, provenance: Mapping) -> dict:
    """What produced the report: ``provenance`` (the inputs, from the caller that read them) with every option
    and the disclosure control; report.html shows it and provenance.json holds it."""
    return {
        **provenance,
        "options": {**report.options.as_dict(), **provenance.get("options", {})},
        "disclosure_control": _disclosure(report),
    }


def provenance_json(report: CodingReport, provenance: Mapping, outputs: Mapping[str, bytes]) -> str:
    """provenance.json: :func:`provenance_record`, the warnings the report gave, and the SHA-256 of each file
    written beside it, so an auditor can re-run the report and check every file is the same."""
    record = {
        **provenance_record(report, provenance),
        "warnings": list(report.notices),
        "rows_rejected": report.rows_rejected,
        "files_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(outputs.items())},
    }
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{h.esc(caption)}</figcaption></figure>"


def _spc_caption(spc: pd.DataFrame, suppress: bool) -> str:
    months = len(spc)
    hidden = int(spc["suppressed"].sum())
    empty = int((spc["value"].isna() & ~spc["suppressed"]).sum())
    if hidden:
        text = (
            f"No mean, process limits or special causes: {hidden} of {months} months {_are(hidden)} suppressed (fewer "
            "than 8 children coded), and lines worked out from the other months would be "
            "biased, because disclosure control hides a month according to its count. Grey: the published months. "
            "For the full chart, run the report with --no-suppress inside the practice, or on an extract covering "
            "more children."
        )
    elif spc["value"].notna().any():
        flagged = spc[spc["special_cause"]]["period"].tolist()
        text = (
            "Grey: common-cause variation. Orange: special cause (outside limits, run of 7, trend of 6, or 2 of 3 "
            "beyond two sigma). Dashed lines: process limits; blue: mean. "
            f"Special-cause periods: {', '.join(flagged) if flagged else 'none'}."
        )
    else:
        text = "No month has a rate to chart."
    if empty:
        why = "fewer than 2.5, which round to 0" if suppress else "no child of the age range registered"
        text += f" {empty} of {months} months {'has' if empty == 1 else 'have'} no child-years ({why}), so no rate."
    return text


def _are(count: int) -> str:
    return "is" if count == 1 else "are"


def _funnel_caption(report: CodingReport) -> str:
    s = report.funnel_summary
    hidden = int(report.funnel["suppressed"].sum())
    if not math.isnan(s["phi"]):
        phi = f"{s['phi']:.2f}"
    elif hidden:
        phi = "not estimated (with units suppressed, the units shown alone would overstate it)"
    else:
        phi = "not estimated (fewer than 3 units)"
    left_out = f" {s['left_out']}" if s.get("left_out") else ""
    small = s.get("small_units", 0)
    if small:
        units = f"{s['unit']}{'' if small == 1 else 's'}"
        left_out = (
            f" {small} {units} with 1 to 7 children {_are(small)} not plotted: under disclosure control every "
            f"figure of so small a group is suppressed.{left_out}"
        )
    clinician = s["unit"] == "clinician"
    if math.isnan(s["pooled_rate"]):
        rounded = " (after rounding to the nearest 5)" if report.options.suppress else ""
        has = "has children seen" if clinician else "has child-years"
        return f"No pooled value and no limits: no {s['unit']} {has} in the report's dates{rounded}.{left_out}"
    pooled = "pooled proportion" if clinician else "pooled rate"
    text = (
        f"Blue line: {pooled} {s['pooled_rate']:.2f} {s['measure'].removeprefix('children coded ')}. Dashed: "
        f"95% limits; solid: 99.8% limits. Overdispersion phi = {phi}; limits: {s['adjustment']}."
    )
    if hidden:
        text += (
            f" {hidden} {s['unit']}{'' if hidden == 1 else 's'} coded fewer than 8 children (suppressed), so the "
            f"pooled value is known only to lie between {s['pooled_rate_low']:.2f} and "
            f"{s['pooled_rate_high']:.2f}; the blue line counts each suppressed count as 3.5, and the limits are "
            "widened to hold at both ends, so a unit is marked outside only if it is outside whatever the "
            "suppressed counts are."
        )
    return text + left_out


INFINITE_RATIO = (
    "no child was coded in the before period, so the ratio and its upper limit are infinite (the lower limit is shown)"
)


def _ratio_notes(compare: pd.DataFrame) -> str:
    """One sentence per reason a rate ratio is blank, naming the categories it applies to."""
    blank: dict[str, list[str]] = {}
    for row in compare[compare["rate_ratio"].isna()].itertuples(index=False):
        if pd.isna(row.numerator_before) or pd.isna(row.numerator_after):
            why = "a count is suppressed (fewer than 8)"
        elif not (row.child_years_before > 0 and row.child_years_after > 0):
            why = "a period has no child-years"
        elif row.numerator_before == 0 and row.numerator_after > 0:
            why = INFINITE_RATIO
        else:
            why = "no child was coded in either period"
        blank.setdefault(why, []).append(row.category)
    sentences = [f"Rate ratio left blank for {', '.join(names)}: {why}." for why, names in blank.items()]
    return "".join(f"<p>{h.esc(sentence)}</p>" for sentence in sentences)


def _compare_table(compare: pd.DataFrame, suppress: bool) -> str:
    columns = [
        ("category", "Category", None),
        ("period_before", "Before", None),
        ("numerator_before", "Children", 0),
        ("rate_before", "Rate", 2),
        ("period_after", "After", None),
        ("numerator_after", "Children", 0),
        ("rate_after", "Rate", 2),
        ("rate_ratio", "Rate ratio", 2),
        ("lower", "95% CI low", 2),
        ("upper", "95% CI high", 2),
    ]
    of = " of the published (rounded) counts" if suppress else ""
    return h.table_html(compare, columns, f"Rate ratio after / before, exact conditional 95% CI{of}")


def _rate_tables(report: CodingReport) -> list[tuple[str, str]]:
    o = report.options
    counted = f"Aged {o.age_min}-{o.age_max}, registered and alive at midpoint"
    columns = [
        ("period", "Period", None),
        ("category", "Category", None),
        ("group", "Group", None),
        ("numerator", "Children coded", 0),
        ("codes", "Codes", 0),
        ("child_years", "Child-years", 1),
        ("rate", "Rate /1000", 2),
        ("lower", "95% CI low", 2),
        ("upper", "95% CI high", 2),
        ("children_registered", f"Aged {o.age_min}-{o.age_max}, registered and alive in the period", 0),
        ("registered_midpoint", counted, 0),
        ("proportion", "Proportion", 4),
    ]
    clinician_columns = [
        *columns[:5],
        ("children_seen", "Children seen", 0),
        ("proportion", "Proportion of children seen", 4),
        ("prop_lower", "95% CI low", 4),
        ("prop_upper", "95% CI high", 4),
    ]
    sections = []
    for breakdown in o.breakdowns:
        rows = report.rates[report.rates["breakdown"] == breakdown]
        heading = "Rates: all children" if breakdown == "overall" else f"Rates by {breakdown.replace('_', ' ')}"
        if breakdown == "clinician":
            heading = "Clinicians: children coded of the children they recorded anything for"
            table = h.table_html(rows, clinician_columns, "Proportion of children seen, Wilson 95% CI")
        else:
            table = h.table_html(rows, columns, "Rates per 1000 child-years, exact Poisson 95% CI")
        sections.append((heading, table))
    return sections


def _method_html(report: CodingReport) -> str:
    o = report.options
    ages = f"aged {o.age_min} to {o.age_max} (whole years)"
    paragraphs = [
        f"Children are counted while they are {ages}, registered with the practice and alive. Each day they "
        "meet all three adds one day to the denominator; child-years are those days divided by 365.25.",
        "The numerator is the number of different children with at least one code from the category on a day "
        "they were counted, in the period. 'Any safeguarding code' counts a child once "
        "whichever codes they had. "
        "The rate is children coded per 1000 child-years, with an exact (Poisson) 95% confidence interval.",
        f"The proportion is, of the children counted on the middle day of the period (aged {o.age_min} to "
        f"{o.age_max}, registered and alive that day), the share coded during the period, with a Wilson 95% "
        "interval. By age band, a child's numerator counts in the band of their age when coded, their "
        "proportion in the band of their age on the middle day.",
        "Clinicians do not have registered lists, so they have no child-years and no rate. A clinician's "
        "figure is a proportion: of the children they recorded anything for (an event with any code, on a day "
        "the child was counted), the share they recorded a code of the category for ('children seen' and "
        "'proportion of children seen'), with a Wilson 95% interval. Every clinician who recorded anything for "
        "a counted child has a row, including those who recorded no safeguarding code."
        + (
            " Clinician ids are replaced by codes made from a hash of the id (such as C3FA9B2): the same "
            "clinician has the same code in every report"
            + (
                " made with the same private key (--clinician-key), and only someone holding the key can tell "
                "whose a code is."
                if o.clinician_key
                else "; anyone who can guess the ids' format (GP03) can recompute the codes, as the method is "
                "public: a practice that shares the report outside the practice should set --clinician-key."
            )
            if o.pseudonymise_clinicians
            else " Clinician ids are shown as recorded (--no-pseudonymise-clinicians)."
        ),
        "Practice and clinician ids are shown only when they look like a code (letters, digits, '.', '_' or '-', "
        "no spaces, not 10 digits, not a date or postcode, not a patient's identifier in the extract), and sex "
        "only as F, M, I or U; anything else, and an empty value, is counted in the group 'other or not "
        "recorded' without its value, and a warning says how many.",
        "The report covers only the days the extract covers: it starts no earlier than the extract's earliest "
        "event date and ends no later than its latest (on or before the as-of date), whatever --from, --to and "
        "--compare say, with a warning when the dates were cut. Before the first event and after the extract "
        "was taken there are no codes, so those days would read as days when nobody was coded.",
        "The SPC chart shows the monthly rate with its mean and process limits (mean plus or "
        "minus 2.66 times the average month-to-month change; a lower line below zero is drawn at zero). A "
        "point outside the limits, 7 points in a row on one side of the mean, 6 points in a row going up or "
        "down, or 2 of 3 points in a row beyond the same two-sigma line (two thirds of the way from the mean "
        "to a process limit) suggest a real change, not chance.",
        _funnel_method(o.funnel_unit),
        "Before/after comparisons give the ratio of the later rate to the earlier one with an exact 95% interval"
        + (
            ", worked out from the published (rounded) counts and child-years, so it is exact for those, not for "
            "the true figures."
            if o.suppress
            else "."
        ),
        (
            "Small numbers: counts of 0 to 7 are hidden (a 0 too: beside a hidden count it would give the hidden "
            "one away), other counts and child-years are rounded to the nearest 5, and rates are worked out from "
            "the rounded figures. A group of 1 to 7 children (counted in the period, or seen by a clinician) has "
            "every count hidden, and such a practice or clinician is not plotted in the funnel. When any month is "
            "hidden, the SPC chart shows the published months without a mean or limits, which would be biased."
            if o.suppress
            else "Small numbers are NOT hidden in this report (--no-suppress). Keep it inside the practice."
        ),
    ]
    return "".join(f"<p>{h.esc(p)}</p>" for p in paragraphs)


def _funnel_method(unit: str) -> str:
    other = (
        "The group 'other or not recorded' (blank or unpublishable ids) is not a unit: it is not plotted and "
        "takes no part in the pooled value."
    )
    widened = "When units vary more than chance allows (overdispersion), the funnel is widened to allow for it."
    if unit == "practice":
        return (
            "The funnel plot compares each practice's rate over the whole period with the pooled rate of the "
            "practices plotted (all their children coded over all their child-years), with exact Poisson "
            f"limits. Practices outside the funnel differ more than chance alone would explain. {widened} {other}"
        )
    return (
        "The funnel plot compares each clinician's proportion of children seen who were coded, over the whole "
        "period, with the pooled proportion of the clinicians plotted (their children coded over their "
        "children seen, added up: a child seen by two clinicians counts for each), plotted against the "
        "children each saw, with exact binomial limits. A clinician below the funnel codes fewer of the "
        f"children they see than chance alone would explain. {widened} {other}"
    )


# --- writing --------------------------------------------------------------------------------------------


def check_out_dir(out_dir: str | os.PathLike) -> None:
    """Stop (exit code 4) if ``out_dir`` is a file, cannot be created, or already holds any file a report
    writes (rejects.csv too). Nothing is created: a run stopped by a bad option leaves no empty folder.

    An earlier report is never overwritten, and none of its files (a compare.csv, say) is left beside a new
    report that did not write it, where it would pass for part of it.
    """
    try:
        _check_out_dir(Path(out_dir))
    except OSError as exc:  # a folder on the way that may not be opened
        raise lookup_error(out_dir, exc) from None


def _check_out_dir(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise OutputError(
            Problem(str(directory), "is a file, not a folder", "choose a new --out folder for the report")
        )
    absolute = directory.absolute()
    existing = next(d for d in (absolute, *absolute.parents) if d.exists())  # "/" always exists
    why = None
    if not existing.is_dir():
        why = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = f"no permission to write in {existing}"
    if why:
        raise OutputError(Problem(str(directory), f"cannot create the report there: {why}", "choose another --out"))
    present = [name for name in (*REPORT_FILES, REJECTS_FILE) if (directory / name).exists()]
    if present:
        raise OutputError(
            Problem(
                str(directory),
                f"already holds {', '.join(present)} from an earlier report; a report never overwrites one",
                "choose a new --out folder, or move the earlier report's files away",
            )
        )


def write_report(
    report: CodingReport, out_dir: str | os.PathLike, provenance: Mapping, extra: Mapping[str, bytes] | None = None
) -> list[Path]:
    """Write rates.csv, compare.csv (if compared), spc.csv, funnel.csv, report.html, the ``extra`` files (by
    name: the rejects file) and provenance.json (the inputs, options and each other file's SHA-256); return
    their paths.

    ``out_dir`` must hold none of these files (see :func:`check_out_dir`). The files are written together
    (``files.atomic_write_all``): each to a temporary file in ``out_dir``, then linked into place, none left if
    one cannot be, so a reader never sees a half-written report; files are readable by their owner only (0600).
    """
    check_out_dir(out_dir)
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise OutputError(f"{directory}: cannot create the output folder ({exc.strerror})") from None
    outputs = {
        "rates.csv": rates_csv(report),
        "compare.csv": compare_csv(report),
        "spc.csv": spc_csv(report),
        "funnel.csv": funnel_csv(report),
        "report.html": render_html(report, provenance),
    }
    outputs = {name: text.encode("utf-8") for name, text in outputs.items() if text is not None} | dict(extra or {})
    outputs[PROVENANCE_FILE] = provenance_json(report, provenance, outputs).encode("utf-8")
    atomic_write_all({directory / name: data for name, data in outputs.items()}, overwrite=False)
    return [directory / name for name in outputs]
