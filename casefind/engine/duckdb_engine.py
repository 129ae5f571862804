"""The DuckDB engine: one scan of ``events`` joined to a code -> criterion table, one small query per
criterion kind (every criterion of the kind at once; per criterion for the rarer kinds), then routing
through family links.

The scan keeps, for every patient, criterion and role (start / end / late / reciprocal), only the latest
event on or before the as-of date (plus, for missed-appointment criteria, the distinct dates within the
window); protocol codes dated after the as-of date are not read, and a warning counts them
(``_future_warnings``). Every criterion kind is decidable from those rows, because "latest code wins" and look-back
windows both only need the latest date: if the latest start is outside a window, so is every earlier one.

Each kind is first evaluated on every patient's *own* record; ``_route`` then carries a relative's hit to
the children whose criterion reads that relative's record (``record: [parent, household_adult, ...]``). A
child-side (``reciprocal``) code is evaluated too, and kept for the patient whose record it is in, never carried.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from casefind.engine import duckdb_families as families
from casefind.errors import Problem
from casefind.frames import isin
from casefind.protocol import (
    AntenatalBooking,
    CodedActive,
    CodedInWindow,
    MissedAppointments,
    NewBirth,
    Protocol,
)
from casefind.results import HIT_COLUMNS, Evaluation

ROLE_FIELDS = {  # criterion field -> role in the code map
    "start": "start",
    "codes": "start",
    "booking": "start",
    "end": "end",
    "late": "late",
    "reciprocal": "reciprocal",
}


GESTATION = "gestation"  # the role of booking codes read again for a gestation of ``late_at_weeks`` or more


def code_map(protocol: Protocol, as_of: date) -> pd.DataFrame:
    """One row per (code_system, code, criterion, role): the table the events scan joins to.

    ``window_start`` is set for missed-appointment criteria, whose scan also collects dates in the window.
    ``min_weeks`` is set for the ``GESTATION`` role: an antenatal criterion's booking codes once more, whose
    scan keeps only rows with a gestation of ``late_at_weeks`` or more, so that a late booking is seen
    whichever booking row of the pregnancy carries the gestation (not only the latest).
    """
    rows = []

    def add(criterion_id: str, role: str, names, window_start=None, min_weeks=None):
        for name in names:
            codelist = protocol.codelists[name]
            for code in codelist.codes:
                rows.append((codelist.code_system, code.code, criterion_id, role, code.term, window_start, min_weeks))

    for criterion in protocol.criteria:
        window_start = criterion.window.before(as_of) if isinstance(criterion, MissedAppointments) else None
        for field, names in criterion.codelist_refs().items():
            add(criterion.id, ROLE_FIELDS[field], names, window_start)
        if isinstance(criterion, AntenatalBooking) and criterion.late_at_weeks is not None:
            add(criterion.id, GESTATION, criterion.booking, min_weeks=criterion.late_at_weeks)
    for i, group in enumerate(protocol.concern.code_groups()):
        add(families.concern_id(i), "start", group.codes)
        add(families.concern_id(i), "end", group.end)
    columns = ["code_system", "code", "criterion_id", "role", "term", "window_start", "min_weeks"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["min_weeks"] = frame["min_weeks"].astype("Int64")
    frame["window_start"] = pd.to_datetime(frame["window_start"]).dt.date
    # The same code may sit in two codelists of one criterion role; keep one term for it.
    return frame.drop_duplicates(["code_system", "code", "criterion_id", "role"]).reset_index(drop=True)


def _scan_latest(con: duckdb.DuckDBPyConnection, protocol: Protocol, as_of: date) -> None:
    con.register("code_map_df", code_map(protocol, as_of))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE code_map AS SELECT * EXCLUDE (window_start, min_weeks), "
        "CAST(window_start AS DATE) AS window_start, CAST(min_weeks AS INTEGER) AS min_weeks FROM code_map_df"
    )
    con.unregister("code_map_df")
    # The latest row per group: the latest date; of rows on one day, one with a value first (a booking with
    # its gestation beside a booking code without one); then ties broken by code, term, value and code
    # system (highest first, a missing one before any other), so the chosen evidence is deterministic. A
    # window over the joined rows takes half the time of max() over a struct, which would order the same way.
    group = "PARTITION BY e.patient_id, m.criterion_id, m.role"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE latest AS
        SELECT patient_id, criterion_id, role, ev, dates FROM (
          SELECT e.patient_id, m.criterion_id, m.role,
                 {{'date': e.date, 'code': e.code, 'term': coalesce(e.term, m.term), 'value': e.value,
                   'code_system': e.code_system}} AS ev,
                 row_number() OVER ({group} ORDER BY e.date DESC NULLS FIRST, e.value IS NULL,
                   e.code DESC NULLS FIRST, coalesce(e.term, m.term) DESC NULLS FIRST, e.value DESC NULLS FIRST,
                   e.code_system DESC NULLS FIRST) AS nth,
                 list(DISTINCT e.date) FILTER (WHERE e.date >= m.window_start) OVER ({group}) AS dates
          FROM events e JOIN code_map m ON e.code = m.code AND e.code_system = m.code_system
          WHERE e.date <= ? AND (m.min_weeks IS NULL OR {gestation_weeks_sql("e.value")} >= m.min_weeks)
        ) WHERE nth = 1
        """,
        [as_of],
    )


def _other_system_warnings(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Events whose code is one of the protocol's, but written under a code system the protocol does not give
    it (a SNOMED CT id labelled read2, say): they are never read, so a child can silently drop off the list.
    Counted per code system; the codes are not shown one by one."""
    counts = con.execute(
        """
        SELECT e.code_system, count(*) AS n, min(m.systems) AS systems
        FROM events e JOIN (SELECT code, string_agg(DISTINCT code_system, ' or ' ORDER BY code_system) AS systems
                            FROM code_map GROUP BY code) m ON m.code = e.code
        WHERE NOT EXISTS (SELECT 1 FROM code_map k WHERE k.code = e.code AND k.code_system = e.code_system)
        GROUP BY e.code_system ORDER BY n DESC, e.code_system
        """
    ).fetchall()
    if not counts:
        return []
    total = sum(n for _, n, _ in counts)
    parts = ", ".join(
        f"'{system}' ({n} event{'s' if n != 1 else ''}, where the protocol has {'it' if n == 1 else 'them'} as "
        f"{systems})"
        for system, n, systems in counts
    )
    return [
        str(
            Problem(
                "events",
                f"{total} event{' has' if total == 1 else 's have'} a code from the protocol's codelists under "
                f"another code system: {parts}; {'it was' if total == 1 else 'they were'} not read",
                "check the code_system column: a SNOMED CT concept id (such as 342191000000101) is 'snomed'; map "
                "the export's word for it in the mapping file's values, or give the codelist its code_system",
            )
        )
    ]


def _future_warnings(con: duckdb.DuckDBPyConnection, as_of: date) -> list[str]:
    """Events with a protocol code dated after the as-of date, which the scan does not read (``events`` holds
    only rows with a protocol code: one cheap count)."""
    [(n,)] = con.execute(
        "SELECT count(*) FROM events e SEMI JOIN code_map m ON m.code = e.code AND m.code_system = e.code_system "
        "WHERE e.date > ?",
        [as_of],
    ).fetchall()
    if not n:
        return []
    return [
        str(
            Problem(
                "events",
                f"{n} event{' has' if n == 1 else 's have'} a code from the protocol's codelists dated after the "
                f"as-of date ({as_of.isoformat()}); {'it was' if n == 1 else 'they were'} not read: usually a "
                "typing error in the date, or a planned item",
                "check those dates in the record",
            )
        )
    ]


_EVIDENCE = (
    "s.patient_id, s.criterion_id, s.ev.date AS date, s.ev.code AS code, s.ev.code_system AS code_system, "
    "s.ev.term AS term, s.ev.value AS value"
)


def _windows(con, criteria: list, as_of: date) -> None:
    """``criterion_window(criterion_id, window_start)`` for ``criteria``: what ``_latest_start_joined`` reads,
    so that one query evaluates every criterion of a kind (``window_start`` NULL: no look-back window)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE criterion_window AS "
        "SELECT unnest(?::VARCHAR[]) AS criterion_id, unnest(?::DATE[]) AS window_start",
        [[c.id for c in criteria], [c.window.before(as_of) if c.window else None for c in criteria]],
    )


def _latest_start_joined(*roles: str, starts: tuple[str, ...] = ("start",)) -> str:
    """Latest rows of the ``starts`` roles (``s``: start codes, and child-side codes with ``reciprocal``) of the
    criteria in ``criterion_window`` (``w``), with the same patient's latest rows of ``roles`` (aliased by
    first letter)."""
    joins = "".join(
        f" LEFT JOIN latest {r[0]} ON {r[0]}.patient_id = s.patient_id AND {r[0]}.criterion_id = s.criterion_id"
        f" AND {r[0]}.role = '{r}'"
        for r in roles
    )
    of = ", ".join(f"'{r}'" for r in starts)
    return f"FROM latest s JOIN criterion_window w ON w.criterion_id = s.criterion_id {joins} WHERE s.role IN ({of})"


def _coded_active(con, criteria: list[CodedActive], as_of: date) -> pd.DataFrame:
    _windows(con, criteria, as_of)
    return con.execute(
        f"""
        SELECT {_EVIDENCE},
               CASE WHEN e.ev.date = s.ev.date THEN 'an end code on the same day does not close it'
                    WHEN e.ev IS NOT NULL THEN 'restarted after an end code on ' || e.ev.date
               END AS detail
        {_latest_start_joined("end")}
          AND {families.not_ended_sql("s", "e")}
          AND (w.window_start IS NULL OR s.ev.date >= w.window_start)
        """
    ).df()


def _coded_in_window(con, criteria: list[CodedInWindow], as_of: date) -> pd.DataFrame:
    """A code in the window; a child-side (``reciprocal``) code in the window too, as a row of its own marked
    ``child_side``, which ``_route`` keeps for the patient whose record it is in."""
    _windows(con, criteria, as_of)
    return con.execute(
        f"SELECT {_EVIDENCE}, NULL AS detail, s.role = 'reciprocal' AS child_side "
        f"{_latest_start_joined(starts=('start', 'reciprocal'))} AND s.ev.date >= w.window_start"
    ).df()


def _new_birth(con, c: NewBirth, as_of: date) -> pd.DataFrame:
    return con.execute(
        """
        SELECT patient_id, ? AS criterion_id, date_of_birth AS date, NULL AS code, NULL AS code_system,
               'Date of birth' AS term, NULL AS value, NULL AS detail
        FROM patients WHERE date_of_birth BETWEEN ? AND ?
        """,
        [c.id, c.window.before(as_of), as_of],
    ).df()


# Gestation as written at booking: weeks, then optionally days or an "/40" ("13", "13.5", "13+6", "13+0/40",
# "14 weeks", "14w", "14w 2d", "14/40"). Anything else (a date, "unknown") has no readable number of weeks.
_GESTATION = r"^(\d{1,2}(?:\.\d+)?)\s*(?:\+\s*[0-6])?\s*(?:/\s*40|w|wk|wks|weeks?)?(?:\s*\+?\s*[0-6]\s*(?:d|days?))?$"


def gestation_weeks_sql(value: str) -> str:
    """SQL for the whole or decimal weeks of gestation written in ``value`` (an SQL expression); NULL when
    the value has no readable number of weeks. ``explain`` reads the same expression, so it words what the
    engine decided."""
    return f"TRY_CAST(nullif(regexp_extract(lower(trim({value})), '{_GESTATION}', 1), '') AS DOUBLE)"


def gestation_shown_sql(value: str) -> str:
    """SQL for the gestation as the list shows it: "13+0 weeks", but "14/40" and "14 weeks" as written.
    ``explain`` reads the same expression."""
    return f"trim({value}) || CASE WHEN regexp_matches({value}, '^[0-9.+ ]+$') THEN ' weeks' ELSE '' END"


def _antenatal_booking(con, c: AntenatalBooking, as_of: date) -> pd.DataFrame:
    """Bookings in the window with no end code on or after their day. Unlike a plan's end code, a delivery
    on the day of the booking (a pregnancy first seen in labour) ends the pregnancy; a late code, or a
    booking row with a late gestation (``GESTATION``), dated on or before an end code belongs to the pregnancy
    that ended. A late gestation on an earlier booking row of this pregnancy counts (a booking examination at
    22 weeks, then a maternity booking code without a gestation), worded with its day."""
    _windows(con, [c], as_of)

    def in_this_pregnancy(alias: str) -> str:
        dated = f"{alias}.ev.date >= w.window_start AND (e.ev IS NULL OR {alias}.ev.date > e.ev.date)"
        return f"({alias}.ev IS NOT NULL AND {dated})"

    weeks = gestation_shown_sql("g.ev.value")
    frame = con.execute(
        f"""
        SELECT {_EVIDENCE},
               CASE WHEN {in_this_pregnancy("g")} THEN 'late booking: ' || {weeks} || ' at booking'
                      || CASE WHEN g.ev.date = s.ev.date THEN '' ELSE ' (' || g.ev.date || ')' END
                    WHEN {in_this_pregnancy("l")} THEN 'late booking: ' || l.ev.term || ' (' || l.ev.date || ')'
               END AS detail
        {_latest_start_joined("end", "late", GESTATION)}
          AND (e.ev IS NULL OR e.ev.date < s.ev.date)
          AND s.ev.date >= w.window_start
        """
    ).df()
    if c.late_only:
        frame = frame[frame["detail"].notna()]
    return frame


def _missed_appointments(con, c: MissedAppointments, as_of: date) -> pd.DataFrame:
    """Patients with any missed appointment in the window; ``value`` is the number of distinct days.

    ``min_count`` and ``single_if`` are applied in ``evaluate``, which knows the other criteria's hits.
    """
    statuses = ", ".join(f"'{s}'" for s in c.statuses)
    return con.execute(
        f"""
        WITH missed AS (
          SELECT patient_id, date, replace(status, '_', ' ') AS what FROM appointments
          WHERE status IN ({statuses}) AND date BETWEEN $from AND $as_of
          UNION ALL
          SELECT patient_id, unnest(dates), ev.term FROM latest WHERE criterion_id = $id AND role = 'start'
        )
        SELECT patient_id, $id AS criterion_id, max(date) AS date, NULL AS code, NULL AS code_system,
               'Latest missed appointment' AS term, CAST(count(DISTINCT date) AS VARCHAR) AS value,
               count(DISTINCT date) || ' since ' || strftime($from, '%Y-%m-%d') || ': '
               || string_agg(DISTINCT what, ', ' ORDER BY what) AS detail
        FROM missed WHERE date IS NOT NULL GROUP BY patient_id
        """,
        {"id": c.id, "from": c.window.before(as_of), "as_of": as_of},
    ).df()


def _one_by_one(evaluate_one: Callable) -> Callable:
    """An evaluator of a list of criteria from one of a single criterion."""

    def evaluate_all(con, criteria: list, as_of: date) -> pd.DataFrame:
        return pd.concat([evaluate_one(con, c, as_of) for c in criteria], ignore_index=True)

    return evaluate_all


KIND_EVALUATORS: dict[type, Callable] = {  # each takes every criterion of its kind at once
    CodedActive: _coded_active,
    CodedInWindow: _coded_in_window,
    NewBirth: _one_by_one(_new_birth),
    AntenatalBooking: _one_by_one(_antenatal_booking),
    MissedAppointments: _one_by_one(_missed_appointments),
}


def _sql_literal(value) -> str:
    """A date, number, boolean or None as an SQL literal, for views (which cannot take parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return str(int(value))


def _people_view(con, protocol: Protocol, as_of: date) -> None:
    """``people``: every patient with age on the as-of date, family, concern (own or anyone in the family),
    and whether (and why not) they can be listed (``people_status``, which the population count reads).

    A view, not a table: at ICB scale only the rows a query asks for (one patient for ``explain``, the
    population count's flags) are worked out. ``_relevant`` applies the same SQL (``_people_sql``) to the
    relevant patients only, as DuckDB would join all the others before filtering on a list of ids.
    """
    status, people = _people_sql(protocol, as_of, "patients")
    families.run_script(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE with_adult AS
        SELECT DISTINCT child_id AS patient_id FROM links WHERE role IN ('parent', 'household_adult');
        CREATE OR REPLACE TEMP VIEW people_status AS {status};
        CREATE OR REPLACE TEMP VIEW people AS {people}
        """,
    )


def _people_sql(protocol: Protocol, as_of: date, patients: str) -> tuple[str, str]:
    """SELECTs of ``people_status`` and ``people`` (which reads ``people_status``) over ``patients``, a table
    or a subquery of the patients table.

    A registration that ends on or after the date of death ended because of the death (practice systems
    close it on the day, or when the death is notified): the death rules apply, not the registration rule.
    """
    pop = protocol.population
    death_from = pop.include_deaths_within.before(as_of) if pop.include_deaths_within else None
    lit = {
        "as_of": _sql_literal(as_of),
        "registered": _sql_literal(pop.registered_on_as_of),
        "death_from": _sql_literal(death_from),
        "min_age": _sql_literal(pop.min_age),
        "max_age": _sql_literal(pop.max_age),
    }
    status = f"""
        SELECT p.*,
               CASE
                 WHEN date_of_birth > {lit["as_of"]} THEN 'not born by the as-of date'
                 WHEN {lit["registered"]} AND (registered_from > {lit["as_of"]} OR registered_to < {lit["as_of"]}
                                              AND NOT coalesce(registered_to >= date_of_death, false))
                   THEN 'not registered on the as-of date'
                 WHEN date_of_death <= {lit["as_of"]}
                      AND ({lit["death_from"]} IS NULL OR date_of_death < {lit["death_from"]})
                   THEN 'died before the as-of date'
               END AS exclusion,
               age BETWEEN {lit["min_age"]} AND {lit["max_age"]} AS in_age_range,
               age < 5 AND w.patient_id IS NULL AS no_linked_adult
        FROM (SELECT *, {families.age_sql(lit["as_of"])} AS age FROM {patients}) p
        LEFT JOIN with_adult w ON w.patient_id = p.patient_id"""
    people = f"""
        SELECT p.patient_id, nhs_number, family_name, given_name, date_of_birth, sex, date_of_death, household_id,
               age, p.family_id, coalesce(c.evidence, 'in the family: ' || lc.evidence) AS concern,
               c.patient_id IS NOT NULL OR lc.patient_id IS NOT NULL AS concerned, exclusion, in_age_range,
               no_linked_adult
        FROM (
          SELECT s.*, {families.family_id_sql("s.patient_id", "f.family_id")} AS family_id
          FROM people_status s LEFT JOIN family_of_linked f USING (patient_id)
        ) p
        LEFT JOIN concern c USING (patient_id)
        LEFT JOIN linked_concern lc USING (patient_id)"""
    return status, people


def _child_side(own: pd.DataFrame) -> pd.Series:
    """Which own-record hits come from a child-side (``reciprocal``) code (``_coded_in_window``'s mark; the
    other kinds have no such column)."""
    return own["child_side"].eq(True) if "child_side" in own else pd.Series(False, index=own.index)


def _concern_criteria_met(protocol: Protocol, own: pd.DataFrame) -> pa.Table:
    """(patient_id, label, what, date) for each ``concern.criteria`` criterion met on a patient's own record
    (not by a child-side code: that is about the child's relative); ``concern_table`` words it."""
    met = own[own["criterion_id"].isin(protocol.concern.criteria) & ~_child_side(own)]
    labels = pd.DataFrame(
        {"criterion_id": [c.id for c in protocol.criteria], "label": [c.label for c in protocol.criteria]}
    )
    met = met[["patient_id", "criterion_id", "term", "code", "date"]].merge(labels, on="criterion_id")
    return pa.Table.from_pandas(met.drop(columns="criterion_id"), preserve_index=False)


def _relevant(con, protocol: Protocol, as_of: date, own: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(people, links) for patients with a hit, the children linked to them, and those children's adults.

    At ICB scale ``people`` and ``links`` have millions of rows; ranking needs only these.
    """
    con.register("own_ids_df", pd.DataFrame({"patient_id": own["patient_id"].unique()}))
    families.run_script(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE own_ids AS SELECT DISTINCT patient_id FROM own_ids_df;
        CREATE OR REPLACE TEMP TABLE relevant_children AS
        SELECT patient_id FROM own_ids
        UNION SELECT child_id FROM links WHERE relative_id IN (SELECT patient_id FROM own_ids);
        CREATE OR REPLACE TEMP TABLE relevant_links AS
        SELECT child_id, relative_id, relation, role, priority FROM links
        WHERE child_id IN (SELECT patient_id FROM relevant_children)
           OR relative_id IN (SELECT patient_id FROM own_ids);
        CREATE OR REPLACE TEMP TABLE relevant_links AS {families.annotated_links_sql("relevant_links")}
        """,
    )
    con.unregister("own_ids_df")
    links = con.execute("SELECT * FROM relevant_links ORDER BY child_id, priority, relation, relative_id").df()
    status, people = _people_sql(
        protocol,
        as_of,
        "(SELECT * FROM patients WHERE patient_id IN "
        "(SELECT patient_id FROM relevant_children UNION SELECT relative_id FROM relevant_links))",
    )
    people = con.execute(f"WITH people_status AS ({status}) SELECT * FROM ({people}) ORDER BY patient_id").df()
    return people, links


def _one_route_per_relative(routed: pd.DataFrame) -> pd.DataFrame:
    """Keep the most specific relationship per (child, criterion, relative): explicit links first."""
    return routed.sort_values(["priority", "relation"], kind="mergesort").drop_duplicates(
        ["patient_id", "criterion_id", "via_patient_id"]
    )


def _route(
    protocol: Protocol, as_of: date, own: pd.DataFrame, people: pd.DataFrame, links: pd.DataFrame
) -> tuple[pd.DataFrame, set[str]]:
    """Carry hits along family links to the children whose criterion reads that relative's record.

    Pregnancy criteria (``lists_adults``) are carried from the expectant woman to the children she is
    linked to (her children, and children in her household who are not her siblings: see
    ``duckdb_families.annotated_links_sql``) who are in the population; only when there are none is
    the woman herself the case, and then parental criteria read her own record too. A pregnancy ends with the
    woman's death: one who died on or before the as-of date carries hers to no one, and is no case for it.
    A sibling's record is read only while the sibling is a child registered here (not excluded, under
    ``duckdb_families.ADULT_AGE``, whatever the population's ages). Only patients in the patients file are
    cases: a sibling linked by id but registered elsewhere is not.

    A child-side (``reciprocal``) code meets the criterion in the record it is in, whatever ``record`` lists, and
    is never carried: it is about the child whose record it is in. See ``_own_record``.

    Returns the hits and the expectant women who are cases themselves.
    """
    records = pd.DataFrame([(c.id, r) for c in protocol.criteria for r in c.record], columns=["criterion_id", "role"])
    eligible_children = set(people.loc[people["exclusion"].isna() & people["in_age_range"], "patient_id"])
    # whatever the population's ages: a baby or a 17-year-old on a plan is a risk to a 10-year-old, though the
    # protocol lists only children of 1 to 15
    child_siblings = set(people.loc[people["exclusion"].isna() & (people["age"] < families.ADULT_AGE), "patient_id"])
    marked = _child_side(own)
    own, child_side = own[~marked], own[marked]
    pregnancy = {c.id for c in protocol.criteria if c.lists_adults}

    # a pregnancy ends with the woman's death: a booking or unborn-baby plan of a woman who has died reaches no one
    died = people.loc[pd.to_datetime(people["date_of_death"]) <= pd.Timestamp(as_of), "patient_id"]
    preg = own[own["criterion_id"].isin(pregnancy) & ~isin(own["patient_id"], set(died))]
    to_children = links[links["pregnancy_not_carried"].isna() & isin(links["child_id"], eligible_children)]
    carried = preg.merge(to_children, left_on="patient_id", right_on="relative_id")
    carried = carried.assign(
        patient_id=carried["child_id"],
        via_patient_id=carried["relative_id"],
        via_relation=carried["relation"] + " (expectant)",
    )
    carried = _one_route_per_relative(carried)
    expectant = set(preg["patient_id"]) - set(carried["via_patient_id"])
    kept_preg = preg[isin(preg["patient_id"], expectant | eligible_children)]

    self_links = pd.DataFrame(
        {
            "child_id": sorted(expectant),
            "relative_id": sorted(expectant),
            "relation": "expectant mother (own record)",
            "role": "parent",
            "priority": 0,
        }
    )
    all_links = pd.concat([links, self_links], ignore_index=True)
    others = own[~own["criterion_id"].isin(pregnancy)]
    via = others.merge(records[records["role"] != "own"], on="criterion_id").merge(
        all_links, left_on=["patient_id", "role"], right_on=["relative_id", "role"]
    )
    # a sibling's record counts while the sibling is a child registered here: a plan coded on a brother who has
    # since turned 18 or moved away cannot be ended by a code here, so it would read as current for ever
    via = via[(via["role"] != "sibling") | isin(via["relative_id"], child_siblings)]
    via = via.assign(patient_id=via["child_id"], via_patient_id=via["relative_id"], via_relation=via["relation"])
    via = _one_route_per_relative(via)
    own_kept = others.merge(records[records["role"] == "own"][["criterion_id"]], on="criterion_id")
    # of a criterion that reads relatives too ('Parental or household drug misuse'), a hit from the child's own
    # record says so: a teenager's own code is not a parent's
    reads_others = set(records.loc[records["role"] != "own", "criterion_id"])
    own_kept = own_kept.assign(via_relation=own_kept["criterion_id"].map(lambda c: OWN if c in reads_others else None))
    own_kept = _own_record(own_kept, child_side)
    columns = list(HIT_COLUMNS) + ["via_patient_id", "via_relation"]
    frames = [f.reindex(columns=columns) for f in (own_kept, kept_preg, via, carried) if len(f)]
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    hits = hits[isin(hits["patient_id"], people["patient_id"])]  # a relative with no record here is no case
    return hits.drop_duplicates(["patient_id", "criterion_id", "via_patient_id", "via_relation"]), expectant


CHILD_SIDE = "child's record"  # the route of a hit from a child-side code
OWN = "own record"  # the route of an own-record hit of a criterion that reads relatives' records too


def _own_record(own: pd.DataFrame, child_side: pd.DataFrame) -> pd.DataFrame:
    """The hits of patients' own records: those of criteria reading ``own``, and child-side codes (whose route
    says ``child's record``). Of the two for one criterion, the more recent is kept, the first on the same day.
    A criterion reading ``own`` whose ``codes`` hold the child-side codes has read the same code from both
    lists: it is a child-side code, and says so."""
    key = ["patient_id", "criterion_id", "date", "code"]
    may = own["criterion_id"].isin(child_side["criterion_id"].unique())  # criteria with child-side codes only
    same = own.loc[may, key].merge(child_side[key].drop_duplicates(), how="left", indicator=True)["_merge"]
    own.loc[own.index[may], "via_relation"] = own.loc[may, "via_relation"].where(
        ~same.eq("both").to_numpy(), CHILD_SIDE
    )
    both = pd.concat([own, child_side.assign(via_relation=CHILD_SIDE)], ignore_index=True)
    latest_first = both.sort_values("date", ascending=False, kind="mergesort")
    return both.loc[latest_first.drop_duplicates(["patient_id", "criterion_id"]).index.sort_values()]


def _reciprocal_gaps(con, protocol: Protocol, hits: pd.DataFrame) -> pd.Series:
    """True where a relative's hit has no child-side (reciprocal) code in the child's own record."""
    have = con.execute(
        "SELECT DISTINCT patient_id, criterion_id, true AS coded FROM latest WHERE role = 'reciprocal'"
    ).df()
    needs = {c.id for c in protocol.criteria if c.codelist_refs().get("reciprocal")}
    coded = hits[["patient_id", "criterion_id"]].merge(have, how="left", on=["patient_id", "criterion_id"])["coded"]
    # (an expectant woman who is the case herself has no child record to code: her own record is the route)
    routed = hits["via_patient_id"].notna() & (hits["via_patient_id"] != hits["patient_id"])
    routed &= hits["criterion_id"].isin(needs)
    return routed & ~coded.fillna(False).astype(bool).to_numpy()


def _apply_missed_thresholds(protocol: Protocol, hits: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Keep missed-appointment hits that reach min_count, or one miss when a ``single_if`` criterion is met.

    A ``single_if`` criterion held back for want of a concern flag (``requires_concern``) does not count, so
    it does not make one miss enough either."""
    concerned = people.loc[people["concerned"].astype(bool), "patient_id"]
    keep = pd.Series(True, index=hits.index)
    for c in protocol.criteria:
        if not isinstance(c, MissedAppointments):
            continue
        rows = hits["criterion_id"] == c.id
        patients = hits.loc[rows, "patient_id"]
        counts = pd.to_numeric(hits.loc[rows, "value"])
        because = pd.Series("", index=patients.index, dtype=object)  # the single_if criteria this child meets
        for other in c.single_if:
            counted = hits.loc[hits["criterion_id"] == other, "patient_id"]
            if protocol.criterion(other).requires_concern:
                counted = counted[isin(counted, concerned)]
            met = isin(patients, counted)
            because[met] = (because[met] + ", " + protocol.criterion(other).label).str.removeprefix(", ")
        keep[rows] = (counts >= c.min_count) | ((counts >= 1) & (because != ""))
        detail = hits.loc[rows, "detail"].astype(str)
        hits.loc[rows, "detail"] = detail.where(counts >= c.min_count, detail + "; one is enough with: " + because)
    return hits[keep]


def evaluate(con: duckdb.DuckDBPyConnection, protocol: Protocol, as_of: date) -> Evaluation:
    """Evaluate every criterion of ``protocol`` on the as-of date over the tables on ``con``."""
    _scan_latest(con, protocol, as_of)
    deaths = protocol.population.include_deaths_within
    warnings = _other_system_warnings(con) + _future_warnings(con, as_of)
    warnings += families.build_links(con, as_of, deaths.before(as_of) if deaths else None)
    concern_from = [g.window.before(as_of) if g.window else None for g in protocol.concern.code_groups()]
    kinds: dict[type, list] = {}
    for c in protocol.criteria:
        kinds.setdefault(type(c), []).append(c)
    frames = [KIND_EVALUATORS[kind](con, criteria, as_of) for kind, criteria in kinds.items()]
    frames = [f for f in frames if len(f)]
    own = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(HIT_COLUMNS))
    families.concern_table(con, as_of, concern_from, _concern_criteria_met(protocol, own))
    _people_view(con, protocol, as_of)
    people, links = _relevant(con, protocol, as_of, own)
    hits, expectant = _route(protocol, as_of, own, people, links)
    hits = _apply_missed_thresholds(protocol, hits, people)
    hits = hits.assign(reciprocal_missing=_reciprocal_gaps(con, protocol, hits))
    people["expectant"] = isin(people["patient_id"], expectant)
    population, no_adult = con.execute(
        "SELECT count(*) FILTER (WHERE exclusion IS NULL AND in_age_range), "
        "count(*) FILTER (WHERE exclusion IS NULL AND no_linked_adult) FROM people_status"
    ).fetchone()
    return Evaluation(
        people=people,
        hits=hits.reset_index(drop=True),
        links=links.drop(columns="priority"),
        warnings=tuple(warnings),
        population=int(population),
        no_linked_adult=int(no_adult),
    )


def patient_detail(con: duckdb.DuckDBPyConnection, patient_id: str, as_of: date) -> dict:
    """Everything ``explain`` needs about one patient after ``evaluate`` ran on ``con``: their people row,
    their links (``links``: their relatives; ``relative_of``: the children whose parent or household adult
    they are), and the latest coded rows (per criterion and role) of them and their linked relatives."""
    person = con.execute("SELECT * FROM people WHERE patient_id = ?", [patient_id]).df()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE patient_links AS SELECT * FROM links WHERE child_id = $id OR relative_id = $id",
        {"id": patient_id},
    )
    reach = families.annotated_links_sql("patient_links")
    links = con.execute(
        f"SELECT relative_id, relation, role, pregnancy_not_carried FROM ({reach}) WHERE child_id = ? "
        "ORDER BY priority, relation, relative_id",
        [patient_id],
    ).df()
    relative_of = con.execute(
        f"SELECT child_id, relation, role, pregnancy_not_carried FROM ({reach}) "
        "WHERE relative_id = ? AND role IN ('parent', 'household_adult') ORDER BY child_id, priority, relation",
        [patient_id],
    ).df()
    ids = [patient_id, *links["relative_id"].unique()]
    latest = con.execute(
        "SELECT patient_id, criterion_id, role, ev.date AS date, ev.code AS code, ev.term AS term, ev.value AS value, "
        f"{gestation_weeks_sql('ev.value')} AS weeks, {gestation_shown_sql('ev.value')} AS gestation, "
        "dates FROM latest WHERE list_contains(?, patient_id)",
        [ids],
    ).df()
    relatives = con.execute(
        "SELECT patient_id, exclusion, age, date_of_death FROM people WHERE list_contains(?, patient_id)",
        [ids],
    ).df()
    appointments = con.execute(
        "SELECT date, status FROM appointments WHERE patient_id = ? AND date <= ? ORDER BY date", [patient_id, as_of]
    ).df()
    return {
        "person": person,
        "links": links,
        "relative_of": relative_of,
        "latest": latest,
        "relatives": relatives,
        "appointments": appointments,
    }
