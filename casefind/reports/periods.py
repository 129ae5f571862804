"""Reporting periods (calendar months, quarters, years) and age bands.

Periods are calendar-aligned and clipped to the report's ``date_from``..``date_to`` (both inclusive), so a
report starting on 15 January has a first "month" of 15-31 January and child-years follow the clipped dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from casefind.errors import OptionError

PERIOD_KINDS = ("month", "quarter", "year")


@dataclass(frozen=True)
class Period:
    """One reporting period; ``start`` and ``end`` are inclusive, ``midpoint`` is the census day."""

    label: str
    start: date
    end: date

    @property
    def midpoint(self) -> date:
        """The clipped period's middle day (rounded down): the census day for 'registered at midpoint'."""
        return self.start + timedelta(days=(self.end - self.start).days // 2)


@dataclass(frozen=True)
class AgeBand:
    """Whole-year ages ``low``..``high`` inclusive."""

    low: int
    high: int

    @property
    def label(self) -> str:
        return f"{self.low:02d}-{self.high:02d}"


def make_periods(date_from: date, date_to: date, by: str = "month") -> list[Period]:
    """Calendar periods covering ``date_from``..``date_to`` inclusive, clipped at both ends."""
    if by not in PERIOD_KINDS:
        raise OptionError(f"--by: expected one of {', '.join(PERIOD_KINDS)}, got '{by}'")
    if date_to < date_from:
        raise OptionError(
            f"--from/--to: the report ends ({date_to.isoformat()}) before it starts ({date_from.isoformat()})"
        )
    months = {"month": 1, "quarter": 3, "year": 12}[by]
    first_month = (date_from.month - 1) // months * months + 1
    cursor = date(date_from.year, first_month, 1)
    periods = []
    while cursor <= date_to:
        following = _add_months(cursor, months)
        start = max(cursor, date_from)
        end = min(following - timedelta(days=1), date_to)
        periods.append(Period(_label(cursor, by), start, end))
        cursor = following
    return periods


def range_period(start: date, end: date) -> Period:
    """A single period spanning a before/after comparison range, labelled ``start..end``."""
    if end < start:
        raise OptionError(f"--compare: the range {start.isoformat()}..{end.isoformat()} ends before it starts")
    return Period(f"{start.isoformat()}..{end.isoformat()}", start, end)


def default_age_bands(age_min: int, age_max: int, width: int = 5) -> list[AgeBand]:
    """Five-year bands from ``age_min`` (0-4, 5-9, 10-14, 15-17 for children aged 0-17)."""
    return [AgeBand(low, min(low + width - 1, age_max)) for low in range(age_min, age_max + 1, width)]


def check_age_bands(bands: list[AgeBand], age_min: int, age_max: int) -> list[AgeBand]:
    """Bands must lie within the protocol's age range and not overlap, or a child would count twice."""
    ordered = sorted(bands, key=lambda b: b.low)
    previous_high = age_min - 1
    for band in ordered:
        if band.high < band.low or band.low < age_min or band.high > age_max or band.low <= previous_high:
            raise OptionError(
                f"age bands: band {band.label} overlaps another band or lies outside ages {age_min}-{age_max}"
            )
        previous_high = band.high
    return ordered


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, 1)


def _label(start: date, by: str) -> str:
    if by == "month":
        return f"{start.year:04d}-{start.month:02d}"
    if by == "quarter":
        return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year:04d}"
