"""``rank`` sorts, dedupes and writes text only for the rows that count (most hits at ICB scale do not); these
check that its shortcuts give what the whole evidence table gives."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from casefind import api
from casefind.engine import duckdb_engine
from casefind.extract import read_extract
from casefind.ranking import evidence_table, rank
from tests.conftest import REPO

AS_OF = date(2026, 11, 24)


@pytest.fixture(scope="module")
def evaluated():
    protocol = api.resolve_protocol(None)
    extract = read_extract(REPO / "sample_data", event_codes=protocol.all_codes())
    return duckdb_engine.evaluate(extract.con, protocol, AS_OF), protocol


def _counted(table: pd.DataFrame, listed: pd.Series) -> pd.DataFrame:
    return table[table["eligible"] & ~table["held_back"] & table["patient_id"].isin(set(listed))]


@pytest.mark.parametrize("show_all", [False, True])
def test_the_evidence_of_listed_children_is_the_evidence_table_in_its_order(evaluated, show_all):
    evaluation, protocol = evaluated
    ranked = rank(evaluation, protocol, AS_OF, show_all=show_all)
    table = evidence_table(evaluation, protocol, AS_OF)
    assert len(ranked.entries) > 0
    pd.testing.assert_frame_equal(ranked.evidence.drop(columns="text"), _counted(table, ranked.entries["patient_id"]))


def test_each_criterion_counts_once_with_its_newest_route(evaluated):
    evaluation, protocol = evaluated
    ranked = rank(evaluation, protocol, AS_OF, show_all=True)
    counted = _counted(evidence_table(evaluation, protocol, AS_OF), ranked.entries["patient_id"])
    newest = counted.sort_values("date").groupby(["patient_id", "criterion_id"]).last()
    score = newest.groupby("patient_id")["component"].sum().round(4)
    got = ranked.entries.set_index("patient_id")["score"]
    pd.testing.assert_series_equal(got.sort_index(), score.sort_index(), check_names=False)
