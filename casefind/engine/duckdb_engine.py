"""The DuckDB engine: one scan of ``events`` joined to a code -> criterion table, then one small query per
criterion kind over the per-patient latest events.

The scan keeps, for every patient, criterion and role (start / end / late), only the latest event on or
before the as-of date. Every criterion kind is decidable from those rows, because "latest code wins" and
look-back windows both only need the latest date: if the latest start is outside a window, so is every
earlier one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import duckdb
import pandas as pd

from casefind.protocol import AntenatalBooking, CodedActive, CodedInWindow, NewBirth, Protocol
from casefind.results import HIT_COLUMNS, Evaluation

ROLE_FIELDS = {  # criterion field -> role in the code map
    "start": "start",
    "codes": "start",
    "booking": "start",
    "end": "end",
    "late": "late",
}


def code_map(protocol: Protocol) -> pd.DataFrame:
    """One row per (code_system, code, criterion, role): the table the events scan joins to."""
    rows = []
    for criterion in protocol.criteria:
        for field, names in criterion.codelist_refs().items():
            for name in names:
                codelist = protocol.codelists[name]
                for code in codelist.codes:
                    rows.append((codelist.code_system, code.code, criterion.id, ROLE_FIELDS[field], code.term))
    frame = pd.DataFrame(rows, columns=["code_system", "code", "criterion_id", "role", "term"])
    # The same code may sit in two codelists of one criterion role; keep one term for it.
    return frame.drop_duplicates(["code_system", "code", "criterion_id", "role"]).reset_index(drop=True)


def _scan_latest(con: duckdb.DuckDBPyConnection, protocol: Protocol, as_of: date) -> None:
    con.register("code_map_df", code_map(protocol))
    con.execute("CREATE OR REPLACE TEMP TABLE code_map AS SELECT * FROM code_map_df")
    con.unregister("code_map_df")
    # max() over a struct compares field by field: the latest date, ties broken by code, term, value, so the
    # chosen evidence is deterministic.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE latest AS
        SELECT e.patient_id, m.criterion_id, m.role,
               max({'date': e.date, 'code': e.code, 'term': coalesce(e.term, m.term), 'value': e.value,
                    'code_system': e.code_system}) AS ev
        FROM events e JOIN code_map m ON e.code = m.code AND e.code_system = m.code_system
        WHERE e.date <= ?
        GROUP BY ALL
        """,
        [as_of],
    )


_EVIDENCE = (
    "s.patient_id, ? AS criterion_id, s.ev.date AS date, s.ev.code AS code, s.ev.code_system AS code_system, "
    "s.ev.term AS term, s.ev.value AS value"
)


def _latest_start_joined(*roles: str) -> str:
    """Latest start rows (``s``) with the same patient's latest rows of ``roles`` (aliased by first letter)."""
    joins = "".join(
        f" LEFT JOIN latest {r[0]} ON {r[0]}.patient_id = s.patient_id AND {r[0]}.criterion_id = s.criterion_id"
        f" AND {r[0]}.role = '{r}'"
        for r in roles
    )
    return f"FROM latest s {joins} WHERE s.role = 'start' AND s.criterion_id = ?"


def _coded_active(con, c: CodedActive, as_of: date) -> pd.DataFrame:
    window_start = c.window.before(as_of) if c.window else None
    return con.execute(
        f"""
        SELECT {_EVIDENCE},
               CASE WHEN e.ev.date = s.ev.date THEN 'an end code on the same day does not close it'
                    WHEN e.ev IS NOT NULL THEN 'restarted after an end code on ' || e.ev.date
                                 END AS detail
        {_latest_start_joined("end")}
          AND (e.ev IS NULL OR e.ev.date <= s.ev.date)
          AND (CAST(? AS DATE) IS NULL OR s.ev.date >= ?)
        """,
        [c.id, c.id, window_start, window_start],
    ).df()


def _coded_in_window(con, c: CodedInWindow, as_of: date) -> pd.DataFrame:
    window_start = c.window.before(as_of)
    return con.execute(
        f"SELECT {_EVIDENCE}, NULL AS detail FROM latest s "
        "WHERE s.role = 'start' AND s.criterion_id = ? AND s.ev.date >= ?",
        [c.id, c.id, window_start],
    ).df()


def _new_birth(con, c: NewBirth, as_of: date) -> pd.DataFrame:
    return con.execute(
        """
        SELECT patient_id, ? AS criterion_id, date_of_birth AS date, NULL AS code, NULL AS code_system,
               'Born ' || strftime(date_of_birth, '%Y-%m-%d') AS term, NULL AS value, NULL AS detail
        FROM patients WHERE date_of_birth BETWEEN ? AND ?
        """,
        [c.id, c.window.before(as_of), as_of],
    ).df()


def _antenatal_booking(con, c: AntenatalBooking, as_of: date) -> pd.DataFrame:
    window_start = c.window.before(as_of)
    weeks = c.late_at_weeks
    late_by_value = f"TRY_CAST(s.ev.value AS DOUBLE) >= {weeks}" if weeks is not None else "false"
    late_by_code = "(l.ev IS NOT NULL AND l.ev.date >= ? AND (e.ev IS NULL OR l.ev.date >= e.ev.date))"
    frame = con.execute(
        f"""
        SELECT {_EVIDENCE},
               CASE WHEN {late_by_value} THEN 'late booking: ' || s.ev.value || ' weeks at booking'
                    WHEN {late_by_code} THEN 'late booking: ' || l.ev.term || ' (' || l.ev.date || ')'
               END AS detail
        {_latest_start_joined("end", "late")}
          AND (e.ev IS NULL OR e.ev.date <= s.ev.date)
          AND s.ev.date >= ?
        """,
        [c.id, window_start, c.id, window_start],
    ).df()
    if c.late_only:
        frame = frame[frame["detail"].notna()]
    return frame


KIND_EVALUATORS: dict[type, Callable] = {
    CodedActive: _coded_active,
    CodedInWindow: _coded_in_window,
    NewBirth: _new_birth,
    AntenatalBooking: _antenatal_booking,
}


def _people(con, protocol: Protocol, as_of: date) -> pd.DataFrame:
    """Every patient with age on the as-of date and whether (and why not) they can be listed."""
    pop = protocol.population
    death_from = pop.include_deaths_within.before(as_of) if pop.include_deaths_within else None
    return con.execute(
        """
        SELECT patient_id, nhs_number, family_name, given_name, date_of_birth, sex, date_of_death, household_id,
               age,
               CASE
                 WHEN date_of_birth > $as_of THEN 'not born by the as-of date'
                 WHEN $registered AND (registered_from > $as_of OR registered_to < $as_of)
                   THEN 'not registered on the as-of date'
                 WHEN date_of_death <= $as_of AND ($death_from IS NULL OR date_of_death < $death_from)
                   THEN 'died before the as-of date'
               END AS exclusion,
               age BETWEEN $min_age AND $max_age AS in_age_range
        FROM (
          SELECT *, year($as_of) - year(date_of_birth)
                    - CASE WHEN strftime($as_of, '%m%d') < strftime(date_of_birth, '%m%d') THEN 1 ELSE 0 END AS age
          FROM patients
        )
        ORDER BY patient_id
        """,
        {
            "as_of": as_of,
            "registered": pop.registered_on_as_of,
            "death_from": death_from,
            "min_age": pop.min_age,
            "max_age": pop.max_age,
        },
    ).df()


def evaluate(con: duckdb.DuckDBPyConnection, protocol: Protocol, as_of: date) -> Evaluation:
    """Evaluate every criterion of ``protocol`` on the as-of date over the tables on ``con``."""
    _scan_latest(con, protocol, as_of)
    frames = [KIND_EVALUATORS[type(c)](con, c, as_of) for c in protocol.criteria]
    hits = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    if hits is None:
        hits = pd.DataFrame(columns=list(HIT_COLUMNS))
    return Evaluation(people=_people(con, protocol, as_of), hits=hits[list(HIT_COLUMNS)])
