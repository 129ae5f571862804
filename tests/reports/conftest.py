"""Tiny in-memory extracts for the coding-rate report tests, built to the core's table contract."""

from __future__ import annotations

import duckdb
import pytest

PATIENT_COLUMNS = "patient_id, date_of_birth, date_of_death, registered_from, registered_to, sex, practice_id"
EVENT_COLUMNS = "patient_id, code, code_system, date, term, value, clinician_id"


def make_connection(patients: list[tuple], events: list[tuple]) -> duckdb.DuckDBPyConnection:
    """Create ``patients`` and ``events`` with the contract's types from tuples in column order."""
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE patients (patient_id VARCHAR, date_of_birth DATE, date_of_death DATE,
        registered_from DATE, registered_to DATE, sex VARCHAR, practice_id VARCHAR)"""
    )
    con.execute(
        """CREATE TABLE events (patient_id VARCHAR, code VARCHAR, code_system VARCHAR, date DATE,
        term VARCHAR, value VARCHAR, clinician_id VARCHAR)"""
    )
    if patients:
        con.executemany("INSERT INTO patients VALUES (?, ?, ?, ?, ?, ?, ?)", patients)
    if events:
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", events)
    return con


def event(patient_id, code, day, clinician=None, system="snomed"):
    return (patient_id, code, system, day, None, None, clinician)


CATEGORIES = {
    "cp_plan": [("snomed", "1001"), ("snomed", "1002")],
    "cause_for_concern": [("snomed", "2001")],
}


@pytest.fixture
def categories():
    return dict(CATEGORIES)
