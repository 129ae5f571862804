"""Coding-rate measures computed in DuckDB: numerators, child-year denominators, rates and comparisons.

Definitions (all dates inclusive):

* A child is **eligible** on day ``d`` for an age range ``low..high`` when
  ``dob + low years <= d <= dob + (high + 1) years - 1 day`` (a 29 February birthday falls on 1 March in other
  years, as build-list's age rule), ``registered_from <= d`` (null = registered since birth),
  ``d <= registered_to`` (null = still registered) and ``d <= date_of_death`` (the day of death counts).
* **Numerator**: eligible children with at least one code of the category dated in the period (codes dated
  when the child was not eligible are ignored, so the numerator is always part of the denominator);
  **codes**: the number of such coded events (a row the export repeats, with the same child, code, day
  and clinician, is one event).
* **Child-years**: days eligible within the period / 365.25.
* **Children registered** (``children_registered``): children eligible on at least one day of the period,
  the group's population, which disclosure control reads (see :func:`finalise_rates`).
* **Registered at midpoint**: children eligible (in the age range, registered and alive) on the period's
  middle day; **cohort numerator**: those of them in the numerator, so
  ``proportion = cohort_numerator / registered_midpoint`` is a true proportion (Wilson interval). By age band, the
  numerator follows the child's age on the day of each code and the cohort their age on the midpoint, so a child
  who moves up a band during the period is in the proportion
  of the band they are in at the midpoint, with every code of the period.
* "any safeguarding code" is the union of all categories: a child counts once, an event once.
* **Clinician** rows: clinicians have no registered list, so no child-years. A clinician's denominator is
  **children seen**: the eligible children with at least one event of any code (not only a safeguarding
  code) recorded by the clinician in the period, on a day they were eligible; the numerator is those the
  clinician recorded a code of the category for, so ``proportion = numerator / children_seen`` (Wilson
  interval). Every clinician who recorded anything for an eligible child in the report's periods has a row,
  including those who never recorded a safeguarding code. Events of any code are read from ``raw_events``
  (every row of the events file, less the rows left out as bad) when the connection has it, since the
  typed ``events`` table may hold only the protocol's codes; otherwise from ``events``.
* Safeguarding codes are scanned once: one hash join of ``events`` to a (code_system, code) -> categories
  table; events of any code are scanned once more, only when a clinician breakdown is asked for.
* **Group labels** are published only when they cannot be a patient's identifier (see
  :func:`sex_label_sql` and :func:`publishable_code`); every other value, and an empty one, is counted in
  the group ``OTHER`` ("other or not recorded") without being shown, and :meth:`CodingMeasures.label_notices`
  says how many rows went there.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from casefind.dates import FIRST_YEAR, LAST_YEAR
from casefind.errors import OptionError
from casefind.extract import left_out_rows_sql, typed_date_sql
from casefind.reports import stats
from casefind.reports.periods import AgeBand, Period, check_age_bands, default_age_bands
from casefind.schema import TABLES

ANY_CATEGORY = "any safeguarding code"
BREAKDOWNS = ("overall", "practice", "clinician", "age_band", "sex")
OTHER = "other or not recorded"  # the group of every label that is not published, and of empty ones
# Sex as recorded (case and spaces ignored) -> the one spelling published; anything else is OTHER.
SEX_LABELS = {
    "f": "F", "female": "F", "m": "M", "male": "M",
    "i": "I", "indeterminate": "I", "u": "U", "unknown": "U", "not known": "U",
}  # fmt: skip
_CODE_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_TEN_DIGITS = re.compile(r"\d{10}")  # an NHS number, with or without its separators
_DATE_SHAPE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_POSTCODE_SHAPE = re.compile(r"[A-Za-z]{1,2}\d[A-Za-z\d]?\d[A-Za-z]{2}")
PSEUDONYM_DIGITS = 6  # hex digits of a clinician's pseudonym, unless two ids share them

RATE_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "category",
    "breakdown",
    "group",
    "numerator",
    "codes",
    "child_years",
    "rate",
    "lower",
    "upper",
    "children_registered",
    "registered_midpoint",
    "cohort_numerator",
    "proportion",
    "prop_lower",
    "prop_upper",
    "children_seen",
    "suppressed",
]
COMPARE_COLUMNS = [
    "category",
    "period_before",
    "period_after",
    "numerator_before",
    "child_years_before",
    "rate_before",
    "numerator_after",
    "child_years_after",
    "rate_after",
    "rate_ratio",
    "lower",
    "upper",
    "suppressed",
]
COUNT_COLUMNS = (
    "numerator", "codes", "children_registered", "registered_midpoint", "cohort_numerator", "children_seen",
)  # fmt: skip

Progress = Callable[[str], None]

_T_CODES = "_casefind_report_codes"
_T_MATCHED = "_casefind_report_matched"
_T_PERIODS = "_casefind_report_periods"
_T_BANDS = "_casefind_report_bands"
_T_PRACTICES = "_casefind_report_practice_labels"
_T_GROUPED = "_casefind_report_patients"  # the dates the report reads, with the published practice and sex
_T_CLINICIANS = "_casefind_report_clinician_labels"
_T_SEEN = "_casefind_report_seen"  # (clinician, patient_id, event_date): events of any code of eligible children
DENOMINATORS = ["child_days", "children_registered", "registered_midpoint"]  # per period x group, from patients
_FAR_PAST = "DATE '0001-01-01'"
_FAR_FUTURE = "DATE '9999-12-31'"


def normalise_breakdowns(breakdowns: Iterable[str]) -> tuple[str, ...]:
    """Overall rows are always produced; 'category' is accepted as a synonym since every row has one."""
    chosen = {"overall"}
    for name in breakdowns:
        name = "overall" if name == "category" else name.replace("-", "_")
        if name not in BREAKDOWNS:
            raise OptionError(
                f"--breakdown: unknown breakdown '{name}'; expected one of category, {', '.join(BREAKDOWNS[1:])}"
            )
        chosen.add(name)
    return tuple(b for b in BREAKDOWNS if b in chosen)


def sex_label_sql(column: str) -> str:
    """SQL for the published sex group: F, M, I or U for a value in ``SEX_LABELS`` (case and surrounding
    spaces ignored), otherwise ``OTHER``. A surname or an NHS number in a mis-mapped sex column is never shown."""
    cases = " ".join(f"WHEN '{raw}' THEN '{label}'" for raw, label in SEX_LABELS.items())
    return f"coalesce(CASE lower(trim({column})) {cases} END, '{OTHER}')"


def publishable_code(value: str | None) -> bool:
    """Whether a practice or clinician id has the shape of such a code and may be printed as a group label.

    Rule: 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit (so no spaces: no
    "Jane Smith"); not 10 digits once separators are removed (an NHS number); not a date (12/03/2015) or
    a postcode (SW1A1AA). A value that is also a patient's identifier in the extract is refused separately
    (see ``CodingMeasures``), since its shape cannot tell.
    """
    if value is None or not _CODE_SHAPE.fullmatch(value):
        return False
    digits = re.sub(r"[._-]", "", value)
    return not (_TEN_DIGITS.fullmatch(digits) or _DATE_SHAPE.fullmatch(value) or _POSTCODE_SHAPE.fullmatch(value))


PUBLIC_SALT = "casefind"  # the salt of the published method, when the practice gives no key (--clinician-key)


def pseudonym_map(ids: Iterable[str], salt: str = PUBLIC_SALT) -> dict[str, str]:
    """Pseudonyms that depend only on the id and the salt: "C" + the first 6 hex digits of
    sha256(salt + NUL + id), in capitals (so the codes are in no order the ids were).

    A clinician keeps their code in every report, whoever else is in it. Only when two ids present share
    those digits do both codes grow, a digit at a time, until they differ. ``OTHER`` keeps its name.
    """
    digests = {i: hashlib.sha256(f"{salt}\0{i}".encode()).hexdigest().upper() for i in set(ids) if i != OTHER}
    shared = Counter(d[:PSEUDONYM_DIGITS] for d in digests.values())
    mapping = {OTHER: OTHER}
    for ident, digest in digests.items():
        length = PSEUDONYM_DIGITS
        rivals = [d for d in digests.values() if d != digest] if shared[digest[:length]] > 1 else []
        while rivals := [d for d in rivals if d[:length] == digest[:length]]:
            length += 1
        mapping[ident] = "C" + digest[:length]
    return mapping


@dataclass(frozen=True)
class ExtractEnd:
    """The extract's last day as found on ``as_of``, the report's as-of date (``--as-of``, default the day it
    is run), so that the same extract and options, as-of date included, always give the same report.

    ``day`` is the latest event date on or before ``as_of``, None when there is none. An event dated after
    ``as_of`` is a typing error (2099 for 2009) or a planned item, not a sign the extract was taken later: such
    events are only counted (``later_events``, the latest of them ``latest_later``), so that one of them
    cannot make the months after the extract read as months without codes. ``first_day`` is the earliest
    event date on or before ``as_of``: the extract holds no history before it, so months before it would
    read as months without codes too.
    """

    day: date | None
    as_of: date
    later_events: int = 0
    latest_later: date | None = None
    first_day: date | None = None


def _has_raw_events(con) -> bool:
    """Whether ``read_extract`` made the connection (``raw_events``: every row of the events file, as text,
    beside ``problems`` and ``empty_rows``), or it holds a typed ``events`` table alone."""
    [(found,)] = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'raw_events'"
    ).fetchall()
    return bool(found)


def find_extract_end(con, as_of: date) -> ExtractEnd:
    """The extract's earliest and latest event dates on or before ``as_of``, and the events dated after it,
    in one scan.

    Read from ``raw_events`` (every row of the events file, dates as text) when the connection has it, so
    events outside the protocol's codelists and rows rejected for other reasons count too; dates are read
    as the extract reads them (ISO or UK, years FIRST_YEAR to LAST_YEAR) and unreadable ones are ignored.
    Otherwise from the typed ``events`` table.
    """
    has_raw = _has_raw_events(con)
    # each distinct date text is read once, with its row count (a few thousand dates among millions of rows);
    # the year test is in the FILTERs, where DuckDB cannot move it below the GROUP BY onto every row
    if has_raw:
        typed = (
            f"SELECT {typed_date_sql('date')} AS day, n FROM (SELECT date, count(*) AS n FROM raw_events GROUP BY date)"
        )
        dated = f"SELECT day, n, year(day) BETWEEN {FIRST_YEAR} AND {LAST_YEAR} AS ok FROM ({typed})"
    else:
        dated = "SELECT date AS day, count(*) AS n, date IS NOT NULL AS ok FROM events GROUP BY date"
    [(day, later, latest_later, first_day)] = con.execute(
        f"""SELECT max(day) FILTER (WHERE ok AND day <= $as_of), coalesce(sum(n) FILTER (WHERE ok AND day > $as_of), 0),
                   max(day) FILTER (WHERE ok AND day > $as_of), min(day) FILTER (WHERE ok AND day <= $as_of)
            FROM ({dated})""",
        {"as_of": as_of},
    ).fetchall()
    return ExtractEnd(day, as_of, int(later), latest_later, first_day)


def _birthday_sql(p: str, years: str) -> str:
    """The day a child turns ``years``, by build-list's age rule (``engine.duckdb_families.age_sql``): a
    29 February birthday falls on 1 March in other years (DuckDB's date arithmetic gives 28 February)."""
    day = f"CAST({p}.date_of_birth + to_years({years}) AS DATE)"
    return f"({day} + CAST(day({day}) <> day({p}.date_of_birth) AS INTEGER))"


def _start_sql(p: str, low: str) -> str:
    return f"greatest({_birthday_sql(p, low)}, coalesce({p}.registered_from, {_FAR_PAST}))"


def _end_sql(p: str, high: str) -> str:
    return (
        f"least({_birthday_sql(p, f'{high} + 1')} - 1, "
        f"coalesce({p}.registered_to, {_FAR_FUTURE}), coalesce({p}.date_of_death, {_FAR_FUTURE}))"
    )


@dataclass
class CodingMeasures:
    """Holds the once-scanned coded events for a report and computes rates over any periods.

    Use as a context manager: the temporary tables it creates on the connection are dropped on exit.
    """

    con: object
    categories: Mapping[str, Sequence[tuple[str, str]]]
    age_min: int
    age_max: int
    span_start: date
    span_end: date
    progress: Progress | None = None

    def __enter__(self) -> CodingMeasures:
        self._check_inputs()
        self._say("matching safeguarding codes in the events table")
        self._seen_ready = False
        self._create_codes_table()
        self._create_patient_labels()
        self._create_matched_table()
        return self

    def __exit__(self, *exc) -> None:
        for table in (_T_CODES, _T_MATCHED, _T_PERIODS, _T_BANDS, _T_PRACTICES, _T_CLINICIANS, _T_GROUPED, _T_SEEN):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")

    @property
    def category_names(self) -> list[str]:
        return [*self.categories.keys(), ANY_CATEGORY]

    # --- public computations ----------------------------------------------------------------------------

    def rates(
        self,
        periods: Sequence[Period],
        breakdowns: Iterable[str] = ("overall",),
        age_bands: Sequence[AgeBand] | None = None,
        suppress: bool = True,
        pseudonymise_clinicians: bool = False,
        clinician_salt: str = PUBLIC_SALT,
    ) -> pd.DataFrame:
        """Tidy rates: one row per period x category x breakdown group (see module docstring)."""
        chosen = normalise_breakdowns(breakdowns)
        self._create_periods_table(periods)
        overall_band = [AgeBand(self.age_min, self.age_max)]
        self._say("counting child-years")
        denominators = self._denominators(overall_band)
        frames = []
        for breakdown in chosen:
            self._say(f"rates by {breakdown}")
            if breakdown == "age_band":
                bands = check_age_bands(
                    list(age_bands or default_age_bands(self.age_min, self.age_max)),
                    self.age_min,
                    self.age_max,
                )
                frames.append(self._age_band_rows(bands))
            elif breakdown == "clinician":
                frames.append(self._clinician_rows(pseudonymise_clinicians, clinician_salt))
            else:
                frames.append(self._simple_rows(breakdown, denominators))
        raw = pd.concat(frames, ignore_index=True)
        raw = _attach_period_dates(raw, periods)
        return finalise_rates(raw, suppress, self.category_names)

    def compare(self, before: Period, after: Period, suppress: bool = True) -> pd.DataFrame:
        """Rate ratio after/before per category, from the (suppressed, if asked) overall figures."""
        if before.label == after.label:
            raise OptionError("--compare: the two date ranges are the same")
        table = self.rates([before, after], ("overall",), suppress=suppress)
        rows = []
        for category in self.category_names:
            b = table[(table.category == category) & (table.period == before.label)].iloc[0]
            a = table[(table.category == category) & (table.period == after.label)].iloc[0]
            ratio, lower, upper = stats.rate_ratio_ci(
                _num(b.numerator), b.child_years, _num(a.numerator), a.child_years
            )
            if math.isinf(ratio):  # no child coded before: the ratio and its upper limit are infinite
                ratio = upper = math.nan
            rows.append(
                {
                    "category": category,
                    "period_before": before.label,
                    "period_after": after.label,
                    "numerator_before": b.numerator,
                    "child_years_before": b.child_years,
                    "rate_before": b.rate,
                    "numerator_after": a.numerator,
                    "child_years_after": a.child_years,
                    "rate_after": a.rate,
                    "rate_ratio": ratio,
                    "lower": lower,
                    "upper": upper,
                    "suppressed": bool(pd.isna(b.numerator) or pd.isna(a.numerator)),
                }
            )
        frame = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
        frame[["numerator_before", "numerator_after"]] = frame[["numerator_before", "numerator_after"]].astype("Int64")
        return frame

    def funnel_input(
        self,
        period: Period,
        unit: str,
        pseudonymise_clinicians: bool = False,
        clinician_salt: str = PUBLIC_SALT,
        category: str = ANY_CATEGORY,
    ) -> pd.DataFrame:
        """Unsuppressed observed counts and denominators per practice or clinician over one period:
        ``group, numerator, denominator, population`` (child-years for a practice, children seen for a
        clinician; the population, which disclosure control reads, is the children registered or seen). The
        group ``OTHER`` is included; the funnel leaves it out (see ``report``).

        Funnel limits need the true figures; callers apply disclosure control to what they publish.
        """
        table = self.rates(
            [period],
            ("overall", unit),
            suppress=False,
            pseudonymise_clinicians=pseudonymise_clinicians,
            clinician_salt=clinician_salt,
        )
        rows = table[(table.breakdown == unit) & (table.category == category)]
        if unit == "practice":
            rows = rows.rename(columns={"child_years": "denominator", "children_registered": "population"})
        else:
            rows = rows.assign(denominator=rows["children_seen"], population=rows["children_seen"])
        return rows[["group", "numerator", "denominator", "population"]].reset_index(drop=True)

    # --- set-up -----------------------------------------------------------------------------------------

    def _check_inputs(self) -> None:
        if not self.categories:
            raise OptionError("protocol: no codelist categories to report on")
        if ANY_CATEGORY in self.categories:
            raise OptionError(f"protocol: the category name '{ANY_CATEGORY}' is reserved for the union")
        if not (0 <= self.age_min <= self.age_max):
            raise OptionError(f"protocol: age range {self.age_min}-{self.age_max} is not valid")

    def _create_codes_table(self) -> None:
        rows = [
            (str(system).strip().lower(), str(code).strip(), name)
            for name, codes in self.categories.items()
            for system, code in codes
        ]
        codes = pd.DataFrame(rows, columns=["code_system", "code", "category"], dtype="string")
        self.con.register("_casefind_report_codes_df", codes)
        try:
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {_T_CODES} AS
                SELECT code_system, code, list(DISTINCT category ORDER BY category) AS categories
                FROM _casefind_report_codes_df GROUP BY code_system, code"""
            )
        finally:
            self.con.unregister("_casefind_report_codes_df")

    def _create_matched_table(self) -> None:
        """The single scan of ``events``: coded events of eligible children within the report span. A row
        repeated in the export (same child, code, day and clinician) is one coded event. Practice, clinician
        and sex are the published labels (see :meth:`_create_label_tables`)."""
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_T_MATCHED} AS
            SELECT DISTINCT e.patient_id, e.date AS event_date, e.clinician_id AS clinician_raw,
                   lower(e.code_system) AS code_system, e.code,
                   c.categories, p.date_of_birth, p.registered_from, p.registered_to, p.date_of_death,
                   p.practice, p.sex
            FROM events e
            JOIN {_T_CODES} c ON lower(e.code_system) = c.code_system AND e.code = c.code
            JOIN {_T_GROUPED} p ON p.patient_id = e.patient_id
            WHERE e.date BETWEEN $span_start AND $span_end
              AND e.date BETWEEN {_start_sql("p", "$age_min")} AND {_end_sql("p", "$age_max")}""",
            {
                "span_start": self.span_start,
                "span_end": self.span_end,
                "age_min": self.age_min,
                "age_max": self.age_max,
            },
        )
        self._create_label_table(_T_CLINICIANS, f"SELECT DISTINCT clinician_raw FROM {_T_MATCHED}")
        [(self._hidden_clinician_codes, self._blank_clinician_codes)] = self.con.execute(
            f"""SELECT count(*) FILTER (WHERE cl.label = '{OTHER}'),
                       count(*) FILTER (WHERE coalesce(trim(m.clinician_raw), '') = '')
            FROM {_T_MATCHED} m LEFT JOIN {_T_CLINICIANS} cl ON cl.raw = m.clinician_raw"""
        ).fetchall()
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_T_MATCHED} AS
            SELECT DISTINCT m.* EXCLUDE (clinician_raw), coalesce(cl.label, '{OTHER}') AS clinician
            FROM {_T_MATCHED} m LEFT JOIN {_T_CLINICIANS} cl ON cl.raw = m.clinician_raw"""
        )

    def _create_patient_labels(self) -> None:
        """The practices' published labels, how many patients have a practice or sex not published, and
        ``_T_GROUPED``: each patient's dates with the published practice and sex, worked out once for the
        denominators and the matched events (each child-years pass would otherwise join and relabel)."""
        self._create_label_table(_T_PRACTICES, "SELECT DISTINCT practice_id FROM patients")
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_T_GROUPED} AS
            SELECT p.patient_id, p.date_of_birth, p.registered_from, p.registered_to, p.date_of_death,
                   coalesce(pl.label, '{OTHER}') AS practice, {sex_label_sql("p.sex")} AS sex
            FROM patients p LEFT JOIN {_T_PRACTICES} pl ON pl.raw = p.practice_id"""
        )
        [(self._hidden_practices, self._blank_practices, self._hidden_sexes, self._blank_sexes)] = self.con.execute(
            f"""SELECT count(*) FILTER (WHERE pl.label = '{OTHER}'),
                       count(*) FILTER (WHERE coalesce(trim(p.practice_id), '') = ''),
                       count(*) FILTER (WHERE trim(p.sex) <> '' AND {sex_label_sql("p.sex")} = '{OTHER}'),
                       count(*) FILTER (WHERE coalesce(trim(p.sex), '') = '')
            FROM patients p LEFT JOIN {_T_PRACTICES} pl ON pl.raw = p.practice_id"""
        ).fetchall()

    def _create_label_table(self, name: str, distinct_sql: str) -> None:
        """``name`` (raw, label): each distinct non-empty value of ``distinct_sql`` with its published label,
        the value itself when :func:`publishable_code` allows it and it is no patient's identifier in the
        ``patients`` table (compared without case), else ``OTHER``."""
        values = [v for (v,) in self.con.execute(distinct_sql).fetchall() if v is not None and str(v).strip()]
        shaped = pd.DataFrame({"raw": [str(v) for v in values if publishable_code(str(v))]}, dtype="string")
        self.con.register("_casefind_report_labels_df", shaped)
        try:
            # the few labels are looked up in the identifier columns (a hash of the labels, probed by each
            # patient), not the million identifiers gathered and hashed, which took 0.3 s a label table
            found = " UNION ".join(
                f"SELECT lower(CAST({c} AS VARCHAR)) AS v FROM patients WHERE lower(CAST({c} AS VARCHAR)) IN "
                "(SELECT lower(raw) FROM _casefind_report_labels_df)"
                for c in self._identifier_columns()
            )
            published = self.con.execute(
                f"""SELECT raw FROM _casefind_report_labels_df
                WHERE lower(raw) NOT IN (SELECT v FROM ({found}))"""
            ).fetchall()
        finally:
            self.con.unregister("_casefind_report_labels_df")
        allowed = {raw for (raw,) in published}
        frame = pd.DataFrame(
            {"raw": [str(v) for v in values], "label": [str(v) if str(v) in allowed else OTHER for v in values]},
            dtype="string",
        )
        self._replace_table(name, frame, "raw::VARCHAR AS raw, label::VARCHAR AS label")

    def _identifier_columns(self) -> list[str]:
        """The ``patients`` columns the schema marks as identifying a patient, that this extract has."""
        present = {c for (c,) in self.con.execute("SELECT column_name FROM (DESCRIBE patients)").fetchall()}
        return [c.name for c in TABLES["patients"].columns if c.identifies_patient and c.name in present]

    def label_notices(self, breakdowns: Iterable[str], suppress: bool = False) -> list[str]:
        """One sentence per breakdown among ``breakdowns`` (practice, clinician, sex) with values not published,
        empty ones included: how many rows went to ``OTHER``, never the values. With ``suppress`` the counts
        follow the report's disclosure control ("1 to 7", else "about" the count rounded to the nearest 5)."""
        chosen, notices = set(breakdowns), []
        code_rule = "(letters and digits, no spaces, no patient's identifier)"
        if "practice" in chosen:
            notices += _other_notice(
                "patient", "practice_id", self._blank_practices, self._hidden_practices,
                f"a practice_id that does not look like a practice code {code_rule}", suppress,
            )  # fmt: skip
        if "clinician" in chosen:
            notices += _other_notice(
                "coded event", "clinician_id", self._blank_clinician_codes, self._hidden_clinician_codes,
                f"a clinician_id that does not look like a clinician code {code_rule}", suppress,
            )  # fmt: skip
        if "sex" in chosen:
            notices += _other_notice(
                "patient", "sex", self._blank_sexes, self._hidden_sexes,
                "a sex other than F, M, I or U (or Female, Male, Indeterminate, Unknown)", suppress,
            )  # fmt: skip
        return notices

    def _create_periods_table(self, periods: Sequence[Period]) -> None:
        frame = pd.DataFrame(
            {
                "label": [p.label for p in periods],
                "ps": [p.start for p in periods],
                "pe": [p.end for p in periods],
                "mid": [p.midpoint for p in periods],
            }
        )
        for period in periods:
            if period.start < self.span_start or period.end > self.span_end:
                raise OptionError(f"period {period.label} lies outside the scanned dates")
        self._replace_table(
            _T_PERIODS, frame, "label::VARCHAR AS label, ps::DATE AS ps, pe::DATE AS pe, mid::DATE AS mid"
        )

    def _create_bands_table(self, bands: Sequence[AgeBand]) -> None:
        frame = pd.DataFrame(
            {
                "label": [b.label for b in bands],
                "low": [b.low for b in bands],
                "high": [b.high for b in bands],
            }
        )
        self._replace_table(_T_BANDS, frame, "label::VARCHAR AS label, low::INTEGER AS low, high::INTEGER AS high")

    def _replace_table(self, name: str, frame: pd.DataFrame, select: str) -> None:
        self.con.register("_casefind_report_tmp_df", frame)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM _casefind_report_tmp_df")
        finally:
            self.con.unregister("_casefind_report_tmp_df")

    # --- denominators and numerators -----------------------------------------------------------------------

    def _denominators(self, bands: Sequence[AgeBand]) -> pd.DataFrame:
        """Child-days, children and midpoint counts per period x practice x sex x band, in one pass over patients
        (a child is one spell per band, so ``children_registered`` counts each child once in each band)."""
        self._create_bands_table(bands)
        return self.con.execute(
            f"""WITH spells AS (
                SELECT p.practice, p.sex,
                       b.label AS band, {_start_sql("p", "b.low")} AS s, {_end_sql("p", "b.high")} AS e
                FROM {_T_GROUPED} p CROSS JOIN {_T_BANDS} b)
            SELECT per.label AS period, practice, sex, band,
                   sum(date_diff('day', greatest(s, per.ps), least(e, per.pe)) + 1)::BIGINT AS child_days,
                   count(*)::BIGINT AS children_registered,
                   count(*) FILTER (WHERE per.mid BETWEEN s AND e)::BIGINT AS registered_midpoint
            FROM spells JOIN {_T_PERIODS} per ON spells.s <= per.pe AND spells.e >= per.ps
            WHERE spells.s <= spells.e
            GROUP BY ALL"""
        ).df()

    def _numerators(self, group_sql: str, bands: Sequence[AgeBand]) -> pd.DataFrame:
        """Distinct children, codes and midpoint-cohort children per period x category x group.

        A code counts in the band of the child's age on its day (numerator, codes); the cohort numerator
        counts the child in the band of their age on the period's midpoint, as ``registered_midpoint`` does,
        whatever their age when coded: a child coded at 4 and 5 by the midpoint is in the 5-9 proportion."""
        self._create_bands_table(bands)
        coded_in_band = f"m.event_date BETWEEN {_start_sql('m', 'b.low')} AND {_end_sql('m', 'b.high')}"
        mid_in_band = f"per.mid BETWEEN {_start_sql('m', 'b.low')} AND {_end_sql('m', 'b.high')}"
        return self.con.execute(
            f"""WITH m AS (SELECT *, unnest(list_append(categories, $any)) AS category FROM {_T_MATCHED})
            SELECT per.label AS period, m.category, {group_sql} AS "group",
                   count(DISTINCT m.patient_id) FILTER (WHERE {coded_in_band})::BIGINT AS numerator,
                   count(*) FILTER (WHERE {coded_in_band})::BIGINT AS codes,
                   count(DISTINCT m.patient_id) FILTER (WHERE {mid_in_band})::BIGINT AS cohort_numerator
            FROM m JOIN {_T_PERIODS} per ON m.event_date BETWEEN per.ps AND per.pe
            JOIN {_T_BANDS} b ON {coded_in_band} OR {mid_in_band}
            GROUP BY ALL""",
            {"any": ANY_CATEGORY},
        ).df()

    def _simple_rows(self, breakdown: str, denominators: pd.DataFrame) -> pd.DataFrame:
        column = {"overall": None, "practice": "practice", "sex": "sex"}[breakdown]
        group_sql = f"m.{column}" if column else "'all'"
        numerators = self._numerators(group_sql, [AgeBand(self.age_min, self.age_max)])
        keyed = denominators.assign(group=denominators[column] if column else "all")
        dens = keyed.groupby(["period", "group"], as_index=False)[DENOMINATORS].sum()
        groups = ["all"] if column is None else sorted(set(dens["group"]))
        return self._grid(breakdown, self._complete(dens, groups), numerators)

    def _age_band_rows(self, bands: Sequence[AgeBand]) -> pd.DataFrame:
        numerators = self._numerators("b.label", bands)
        denominators = self._denominators(bands)
        dens = (
            denominators.rename(columns={"band": "group"})
            .groupby(["period", "group"], as_index=False)[DENOMINATORS]
            .sum()
        )
        return self._grid("age_band", self._complete(dens, [b.label for b in bands]), numerators)

    def _clinician_rows(self, pseudonymise: bool, salt: str) -> pd.DataFrame:
        """Per period x clinician x category: children coded over children seen (see module docstring).
        Every clinician who recorded anything for an eligible child in the periods has a row in each."""
        self._create_seen_table()
        numerators = self._numerators("m.clinician", [AgeBand(self.age_min, self.age_max)])
        seen = self.con.execute(
            f"""SELECT per.label AS period, s.clinician AS "group",
                   count(DISTINCT s.patient_id)::BIGINT AS children_seen
            FROM {_T_SEEN} s JOIN {_T_PERIODS} per ON s.event_date BETWEEN per.ps AND per.pe
            GROUP BY ALL"""
        ).df()
        seen = self._complete(seen, sorted(set(seen["group"])), ["children_seen"])
        # no registered list: no child-years, no midpoint census and no cohort
        frame = self._grid("clinician", seen, numerators).assign(
            child_days=math.nan, children_registered=math.nan, registered_midpoint=math.nan, cohort_numerator=math.nan
        )
        if pseudonymise:
            frame["group"] = frame["group"].map(pseudonym_map(frame["group"], salt))
        return frame

    def _create_seen_table(self) -> None:
        """``_T_SEEN``: each (clinician, child, day) with an event of any code recorded for a child on a day
        they were eligible, within the report span, the clinician as published. The matched safeguarding
        codes are added too, so a clinician's coded children are always among the children they saw."""
        if self._seen_ready:
            return
        self._say("reading the events of every clinician")
        eligible = f"BETWEEN {_start_sql('p', '$age_min')} AND {_end_sql('p', '$age_max')}"
        children = f"""SELECT patient_id FROM {_T_GROUPED} p
            WHERE {_start_sql("p", "$age_min")} <= $span_end AND {_end_sql("p", "$age_max")} >= $span_start"""
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_T_SEEN} AS
            WITH e AS ({self._any_events_sql(children)})
            SELECT DISTINCT e.clinician_raw, e.patient_id, e.event_date
            FROM e JOIN {_T_GROUPED} p ON p.patient_id = e.patient_id
            WHERE e.event_date BETWEEN $span_start AND $span_end AND e.event_date {eligible}""",
            {
                "span_start": self.span_start,
                "span_end": self.span_end,
                "age_min": self.age_min,
                "age_max": self.age_max,
            },
        )
        self._create_label_table(_T_CLINICIANS, f"SELECT DISTINCT clinician_raw FROM {_T_SEEN}")
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_T_SEEN} AS
            SELECT DISTINCT coalesce(cl.label, '{OTHER}') AS clinician, s.patient_id, s.event_date
            FROM {_T_SEEN} s LEFT JOIN {_T_CLINICIANS} cl ON cl.raw = s.clinician_raw
            UNION SELECT clinician, patient_id, event_date FROM {_T_MATCHED}"""
        )
        self._seen_ready = True

    def _any_events_sql(self, children: str) -> str:
        """SQL for (patient_id, event_date, clinician_raw) of every event, whatever its code, of the patients
        ``children`` selects.

        The typed ``events`` table may hold only the protocol's codes (see ``casefind.extract``): then every row
        of the events file is read from ``raw_events``, less the rows left out as bad; only the children's rows
        are kept before the distinct (patient, date, clinician) are typed, so adults' events cost one scan."""
        if not _has_raw_events(self.con):
            return "SELECT patient_id, date AS event_date, clinician_id AS clinician_raw FROM events"
        where = f"patient_id IN ({children}) AND _row NOT IN {left_out_rows_sql(TABLES['events'])}"
        return f"""SELECT r.patient_id, {typed_date_sql("r.date")} AS event_date, r.clinician_id AS clinician_raw
            FROM (SELECT DISTINCT patient_id, date, clinician_id FROM raw_events WHERE {where}) r"""

    def _complete(
        self, dens: pd.DataFrame, groups: Sequence[str], columns: Sequence[str] = DENOMINATORS
    ) -> pd.DataFrame:
        """Every period x group, so a period nobody was eligible in shows zero child-years (or, for clinicians,
        children seen: ``columns``), not no row."""
        periods = self.con.execute(f"SELECT label FROM {_T_PERIODS}").df()["label"]
        full = pd.MultiIndex.from_product([periods, groups], names=["period", "group"]).to_frame(index=False)
        full = full.merge(dens, on=["period", "group"], how="left")
        full[list(columns)] = full[list(columns)].fillna(0)
        return full.astype(dict.fromkeys(columns, "int64"))

    def _grid(self, breakdown: str, dens: pd.DataFrame, numerators: pd.DataFrame) -> pd.DataFrame:
        """Every period x group with a denominator, crossed with every category; absent numerators are 0."""
        cats = pd.DataFrame({"category": self.category_names})
        frame = dens.merge(cats, how="cross").merge(numerators, on=["period", "group", "category"], how="left")
        for column in ("numerator", "codes", "cohort_numerator"):
            frame[column] = frame[column].fillna(0).astype("int64")
        frame["breakdown"] = breakdown
        return frame

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


def _rows(count: int, noun: str, suppress: bool = False) -> str:
    """Say "3 patients have"; with ``suppress``, the count as disclosure control publishes it ("1 to 7 patients
    have", "about 15 patients have": always "about", or its absence would tell a count rounding left alone)."""
    if suppress:
        shown = stats.suppress_count(count)
        return f"1 to 7 {noun}s have" if shown is None else f"about {shown:,} {noun}s have"
    return f"1 {noun} has" if count == 1 else f"{count:,} {noun}s have"


def _other_notice(noun: str, column: str, blank: int, hidden: int, value: str, suppress: bool) -> list[str]:
    """The sentence saying how many rows went to ``OTHER`` for one column: blank, and with ``value``, one
    not published (counts only, under disclosure control if ``suppress``)."""
    parts = []
    if blank:
        parts.append(f"{_rows(blank, noun, suppress)} no {column}")
    if hidden:
        parts.append(f"{_rows(hidden, noun, suppress)} {value}")
    if not parts:
        return []
    shown = ", the value not shown" if hidden else ""
    return [f"{' and '.join(parts)}: counted in the group '{OTHER}'{shown}."]


def _num(value):
    return None if pd.isna(value) else int(value)


def _attach_period_dates(frame: pd.DataFrame, periods: Sequence[Period]) -> pd.DataFrame:
    starts = {p.label: p.start for p in periods}
    ends = {p.label: p.end for p in periods}
    order = {p.label: i for i, p in enumerate(periods)}
    frame = frame.assign(
        period_start=frame["period"].map(starts),
        period_end=frame["period"].map(ends),
        period_order=frame["period"].map(order),
    )
    return frame


def finalise_rates(raw: pd.DataFrame, suppress: bool, category_names: Sequence[str]) -> pd.DataFrame:
    """Rates, intervals and (optionally) disclosure control from raw counts and child-days.

    With ``suppress``: people and code counts follow :func:`stats.suppress_count`, codes and the cohort
    numerator are also hidden wherever the numerator is, child-years are rounded to the nearest 5, and every
    rate, proportion and interval is recomputed from those published figures (so it is hidden wherever its
    count is).

    A group of 1 to 7 children (its population: ``children_registered``, or a clinician's ``children_seen``)
    has every count hidden by that rule alone: no count of children in it can be more than 7, and its codes
    are hidden with its numerator. So one child with sex 'I' shows the same row whether she was coded or not.
    """
    records = []
    for row in raw.itertuples(index=False):
        records.append(_finalise_row(row._asdict(), suppress))
    frame = pd.DataFrame.from_records(records)
    frame["_breakdown_order"] = frame["breakdown"].map({b: i for i, b in enumerate(BREAKDOWNS)})
    category_order = {c: i for i, c in enumerate(category_names)}
    frame["_category_order"] = frame["category"].map(category_order)
    frame = frame.sort_values(["_breakdown_order", "_category_order", "group", "period_order"], kind="stable")
    frame = frame[RATE_COLUMNS].reset_index(drop=True)
    for column in COUNT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in ("child_years", "rate", "lower", "upper", "proportion", "prop_lower", "prop_upper"):
        frame[column] = frame[column].astype("float64")
    frame.attrs["suppressed"] = suppress
    return frame


def _finalise_row(row: dict, suppress: bool) -> dict:
    clinician = row["breakdown"] == "clinician"  # children seen, not child-years (see module docstring)
    child_years = math.nan if clinician else row["child_days"] / 365.25
    counts = {c: None if pd.isna(row.get(c, math.nan)) else int(row[c]) for c in COUNT_COLUMNS}
    present = [c for c, v in counts.items() if v is not None]
    hidden = False
    if suppress:
        shown = {c: stats.suppress_count(v) if v is not None else None for c, v in counts.items()}
        if shown["numerator"] is None:
            shown["codes"] = shown["cohort_numerator"] = None
        hidden = any(shown[c] is None for c in present)
        counts = shown
        if not clinician:
            child_years = stats.round_exposure(child_years)
    if clinician or counts["numerator"] is None:
        rate, lower, upper = (math.nan,) * 3
    else:
        rate, lower, upper = stats.rate_with_ci(counts["numerator"], child_years)
    successes, n = ("numerator", "children_seen") if clinician else ("cohort_numerator", "registered_midpoint")
    if counts[successes] is None or counts[n] is None:
        prop = (math.nan,) * 3
    else:
        prop = stats.wilson_ci(counts[successes], counts[n])
    return {
        **row,
        **counts,
        "child_years": child_years,
        "rate": rate,
        "lower": lower,
        "upper": upper,
        "proportion": prop[0],
        "prop_lower": prop[1],
        "prop_upper": prop[2],
        "suppressed": hidden,
    }
