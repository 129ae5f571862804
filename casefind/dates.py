"""Durations ("12 months", "8 weeks") and the arithmetic that turns them into window start dates."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from casefind.errors import OptionError, Problem

FIRST_YEAR, LAST_YEAR = 1850, 2200  # the years of a date casefind reads; outside them it is a slip (or two digits)
# Where the practice is. A date written as text is read as written, whatever zone offset follows its time
# ('2024-03-01T00:30:00+01:00' is 1 March: the day the person who wrote it meant). A timestamp stored as an
# instant (a Parquet TIMESTAMP WITH TIME ZONE, or Spark's INT96) has no written day: it is given the calendar
# date it had here, in UK time (a birth at 00:30 British Summer Time is on that day, not on the day before, as
# it is in UTC), whatever the computer's or the connection's time zone (``casefind.extract._parquet_text``).
PRACTICE_TIME_ZONE = "Europe/London"
_DURATION = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Duration:
    """A look-back length such as 12 months. Months and years follow the calendar."""

    amount: int
    unit: str  # day | week | month | year

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.match(str(text))
        if not match:
            raise ValueError(f"expected a duration like '12 months', got '{text}'")
        return cls(int(match.group(1)), match.group(2).lower())

    def before(self, day: date) -> date:
        """The date this duration before ``day`` (31 March minus 1 month is 28/29 February)."""
        if self.unit == "day":
            return day - timedelta(days=self.amount)
        if self.unit == "week":
            return day - timedelta(weeks=self.amount)
        months = self.amount * (12 if self.unit == "year" else 1)
        year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
        month += 1
        return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}{'' if self.amount == 1 else 's'}"


def age_on(born: date, day: date) -> int:
    """Age in whole years on ``day`` (a child born 29 February turns one on 1 March).

    The engine works ages out in SQL (``casefind.engine.duckdb_families.age_sql``); this is the reference the
    tests check it against."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_year(option: str, day: date) -> None:
    """Stop on a date given as an option whose year casefind never reads in an extract: a slip such as 0224
    for 2024, or 9999-12-31 for 'no end', which would make thousands of report periods or none."""
    if isinstance(day, date) and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise OptionError(
            Problem(option, f"{day.isoformat()} is not between {FIRST_YEAR} and {LAST_YEAR}", "check the year")
        )
