"""Properties with an oracle: format round-trips, monotone windows, a total and stable order."""

from __future__ import annotations

import csv
import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casefind import api
from casefind.dates import age_on
from casefind.protocol import default_protocol_path, parse_protocol
from casefind.sample import generate_practice

AS_OF = date(2026, 11, 24)


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    generate_practice(folder, patients=600, seed=7, as_of=AS_OF, fmt="csv")
    return folder


def test_csv_and_parquet_extracts_give_the_same_list(practice, tmp_path_factory):
    parquet = tmp_path_factory.mktemp("parquet")
    generate_practice(parquet, patients=600, seed=7, as_of=AS_OF, fmt="parquet")
    from_csv = api.build_list(practice, as_of=AS_OF).entries
    from_parquet = api.build_list(parquet, as_of=AS_OF).entries
    assert len(from_csv) > 0
    assert from_csv.to_dict(orient="records") == from_parquet.to_dict(orient="records")


def _window_protocol(months: int):
    base = default_protocol_path()
    text = f"""
name: window property
version: "1"
codelists:
  concern: {{file: {base.parent / "codelists" / "cause-for-concern-start.csv"}}}
  cp: {{file: {base.parent / "codelists" / "cp-plan-start.csv"}}}
criteria:
  - {{id: concern, label: Concern, kind: coded_in_window, codes: [concern, cp], window: {months} months,
     weight: 1, tier: significant}}
"""
    return parse_protocol(text)


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=1, max_value=36), st.integers(min_value=0, max_value=36))
def test_widening_a_window_never_removes_a_patient(practice, months, extra):
    narrow = set(api.build_list(practice, rules=_window_protocol(months), as_of=AS_OF).entries["patient_id"])
    wide = set(api.build_list(practice, rules=_window_protocol(months + extra), as_of=AS_OF).entries["patient_id"])
    assert narrow <= wide


@pytest.fixture(scope="module")
def shuffled_practice(practice, tmp_path_factory):
    """The practice with every file's rows in a seeded random order: generated ids come sorted, which would
    hide a sort that forgets the patient_id tie-break."""
    folder = tmp_path_factory.mktemp("shuffled")
    rng = random.Random(7)
    for path in practice.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            header, *rows = list(csv.reader(handle))
        rng.shuffle(rows)
        with (folder / path.name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    return folder


def test_the_order_is_total_and_follows_the_documented_keys(shuffled_practice):
    practice = shuffled_practice
    entries = api.build_list(practice, as_of=AS_OF).entries
    assert list(entries["rank"]) == list(range(1, len(entries) + 1))
    assert entries["patient_id"].is_unique
    for _, family in entries.groupby("family_rank", sort=True):
        keys = [(-r.score, -r.latest_evidence.toordinal(), r.patient_id) for r in family.itertuples()]
        assert keys == sorted(keys)
    best = entries.groupby("family_rank", sort=True).first()
    keys = [(-r.score, -r.latest_evidence.toordinal(), r.patient_id) for r in best.itertuples()]
    assert keys == sorted(keys)
    again = api.build_list(practice, as_of=AS_OF).entries
    assert again.equals(entries)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([2.5, 6.0]),
            st.sampled_from([date(2026, 3, 1), date(2026, 4, 1)]),
            st.sampled_from([None, "F1", "F2"]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_follows_the_documented_keys_whatever_order_the_rows_come_in(children, rng):
    """The engine hands children to ranking sorted by patient_id, which hides a sort that forgets the last
    tie-break; here ties on score and evidence date come in any order, and only patient_id can settle them."""
    import pandas as pd

    from casefind.ranking import _order

    rows = [
        {"patient_id": f"P{i:02d}", "family_id": family, "score": score, "latest_evidence": when,
         "date_of_birth": date(2015, 1, 1)}
        for i, (score, when, family) in enumerate(children)
    ]  # fmt: skip
    rng.shuffle(rows)
    got = _order(pd.DataFrame(rows))["patient_id"].tolist()

    def child_key(row):  # README: score, then the most recent evidence, then patient_id (text order)
        return (-row["score"], -row["latest_evidence"].toordinal(), row["patient_id"])

    families: dict[str, list[dict]] = {}
    for row in rows:
        families.setdefault(row["family_id"] or "F-" + row["patient_id"], []).append(row)
    by_best_child = sorted(families.values(), key=lambda family: min(map(child_key, family)))
    assert got == [row["patient_id"] for family in by_best_child for row in sorted(family, key=child_key)]


@given(
    st.lists(st.none() | st.sampled_from(["P1", "P2", "P10", "", "é"]), max_size=20),
    st.lists(st.none() | st.sampled_from(["P1", "P10", "x"]), max_size=8),
    st.sampled_from(["str", object]),
)
def test_arrow_isin_agrees_with_pandas(column, values, dtype):
    import pandas as pd

    from casefind.frames import isin

    series = pd.Series(column, dtype=dtype, index=range(100, 100 + len(column)))
    expected = series.isin(values)
    got = isin(series, values)
    assert got.index.equals(expected.index)
    assert got.tolist() == expected.tolist()


_TIE_PROTOCOL = """
name: ties
version: "1"
codelists:
  cfc: {codes: [{code: "836881000000105", term: "Cause for concern"}, {code: "342191000000101", term: "Other concern"}]}
criteria:
  - {id: cfc, label: Concern, kind: coded_in_window, codes: [cfc], window: 12 months, weight: 1, tier: significant}
"""


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["836881000000105", "342191000000101"]),
            st.sampled_from([date(2026, 11, 1), date(2026, 11, 2)]),
            st.sampled_from([None, "a", "b"]),
            st.sampled_from([None, "1", "2"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_latest_event_is_the_greatest_by_date_then_having_a_value_then_code_term_value(events):
    """Of the rows on the latest date, one with a value comes first (a booking with its gestation); ties are
    then broken by code, term and value (highest first; a missing term before any other), whatever order
    the rows come in."""
    from casefind.engine import duckdb_engine
    from casefind.extract import connect

    con = connect()
    con.execute(
        "CREATE TEMP TABLE events (patient_id VARCHAR, code VARCHAR, date DATE, term VARCHAR, value VARCHAR, "
        "code_system VARCHAR)"
    )
    con.executemany("INSERT INTO events VALUES ('P1', ?, ?, ?, ?, 'snomed')", list(events))
    protocol = parse_protocol(_TIE_PROTOCOL)
    duckdb_engine._scan_latest(con, protocol, AS_OF)
    [(got,)] = con.execute("SELECT ev FROM latest WHERE criterion_id = 'cfc' AND role = 'start'").fetchall()

    terms = {"836881000000105": "Cause for concern", "342191000000101": "Other concern"}
    rows = [(d, c, t if t is not None else terms[c], v) for c, d, t, v in events]

    def key(row):  # None sorts above every value, as in the engine
        return tuple((1, "") if x is None else (0, x) for x in row)

    expected = max(rows, key=lambda row: (row[0], row[3] is not None, key(row[1:])))
    assert (got["date"], got["code"], got["term"], got["value"]) == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), min_size=1, max_size=30),
       st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))  # fmt: skip
def test_age_in_sql_is_whole_years_with_the_birthday_not_yet_come_counting_one_less(births, as_of):
    from casefind.engine.duckdb_families import age_sql
    from casefind.extract import connect

    con = connect()
    con.execute("CREATE TEMP TABLE patients AS SELECT unnest(?::DATE[]) AS date_of_birth", [births])
    got = [age for (age,) in con.execute(f"SELECT {age_sql('$as_of')} FROM patients", {"as_of": as_of}).fetchall()]
    assert got == [age_on(b, as_of) for b in births]  # the reference, itself tested on birthdays in test_codes
