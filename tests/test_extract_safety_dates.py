"""Dates with a time zone (safety review, finding B).

Text is read as written: a zone offset after the time does not move the date to UTC's. A Parquet instant
(TIMESTAMP WITH TIME ZONE, Spark's INT96) has no written date: it is given the calendar date it had in the UK,
whatever the connection's time zone.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casefind.extract import connect, read_extract
from tests.conftest import write_files

PATIENTS = "patient_id,date_of_birth\nP1,2015-01-01\n"
# each is 1 March 2024 where it was written; in UTC the first four are 29 February or 2 March
WRITTEN_1_MARCH = [
    "2024-03-01T00:30:00+01:00",
    "2024-03-01T23:30:00-05:00",
    "01/03/2024 00:30:00+01:00",
    "01/03/2024 23:30 -0500",
    "01/03/2024 00:30:00.250Z",
    "01/03/2024 12:00 GMT",
    "01-Mar-2024 00:30:00+01:00",
    "1 Mar 2024 00:30+01",
    "2024-03-01T00:30:00Z",
    "2024-03-01 00:30:00 UTC",
]


def _dates(extract, table: str = "events", column: str = "date") -> list[dt.date]:
    return [d for (d,) in extract.con.execute(f"SELECT {column} FROM {table} ORDER BY _row").fetchall()]


def test_a_date_written_with_a_time_and_a_zone_offset_is_the_date_written(tmp_path):
    events = "patient_id,code,date\n" + "".join(f"P1,342191000000101,{d}\n" for d in WRITTEN_1_MARCH)
    folder = write_files(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    extract = read_extract(folder)
    assert _dates(extract) == [dt.date(2024, 3, 1)] * len(WRITTEN_1_MARCH)


def test_a_zone_does_not_mend_a_date_that_is_not_one(tmp_path):
    # a zone is read after a time only: '01/03/2024+01:00' is no date casefind reads, with or without it
    bad = ["31/02/2024 00:30+01:00", "01/03/2024+01:00", "01/03/2024 00:30+01:00[Europe/London]"]
    events = "patient_id,code,date\n" + "".join(f"P1,1,{d}\n" for d in [*bad, "01/03/2024 00:30+01:00"])
    folder = write_files(tmp_path / "x", patients_csv=PATIENTS, events_csv=events)
    extract = read_extract(folder, skip_bad_rows=True)
    assert list(extract.rejects["row"]) == [2, 3, 4]
    assert set(extract.rejects["column"]) == {"date"}
    assert _dates(extract) == [dt.date(2024, 3, 1)]


def test_end_dates_and_other_tables_read_a_zone_offset_the_same_way(tmp_path):
    folder = write_files(
        tmp_path / "x",
        patients_csv="patient_id,date_of_birth,registered_to\nP1,01/03/2015 00:30+01:00,01/03/2024 00:30+01:00\n",
        events_csv="patient_id,code,date\n",
        concerns_csv="patient_id,raised_on,resolved_on\nP1,01/03/2024 00:30:00+01:00,02/03/2024 00:10Z\n",
    )
    extract = read_extract(folder)
    assert _dates(extract, "patients", "date_of_birth") == [dt.date(2015, 3, 1)]
    assert _dates(extract, "patients", "registered_to") == [dt.date(2024, 3, 1)]
    assert _dates(extract, "concerns", "raised_on") == [dt.date(2024, 3, 1)]
    assert _dates(extract, "concerns", "resolved_on") == [dt.date(2024, 3, 2)]


# A birth at 00:30 British Summer Time on 1 June 2024 is 23:30 UTC on 31 May; in winter UK time is UTC.
SUMMER_INSTANT = dt.datetime(2024, 5, 31, 23, 30, tzinfo=dt.UTC)
WINTER_INSTANT = dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
@pytest.mark.parametrize("unit", ["us", "ns"])
def test_a_parquet_instant_is_given_its_uk_date_whatever_the_connections_time_zone(tmp_path, zone, unit):
    """connect() sets the connection's zone to the UK's; a caller's own setting (a notebook's, say) must not
    move a date. A timestamp without a zone is a date and time as written, and stays so."""
    folder = write_files(tmp_path / "x", patients_csv=PATIENTS)
    instants = pa.array([SUMMER_INSTANT, WINTER_INSTANT], pa.timestamp(unit, tz="UTC"))
    pq.write_table(
        pa.table({"patient_id": ["P1", "P1"], "code": ["1", "1"], "date": instants}), folder / "events.parquet"
    )
    written = pa.array([dt.datetime(2024, 5, 31, 23, 30), dt.datetime(2024, 6, 1, 0, 30)], pa.timestamp(unit))
    pq.write_table(pa.table({"patient_id": ["P1", "P1"], "raised_on": written}), folder / "concerns.parquet")
    con = connect()
    con.execute(f"SET TimeZone = '{zone}'")
    extract = read_extract(folder, con=con)
    assert _dates(extract) == [dt.date(2024, 6, 1), dt.date(2024, 2, 29)]
    assert _dates(extract, "concerns", "raised_on") == [dt.date(2024, 5, 31), dt.date(2024, 6, 1)]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_a_spark_int96_instant_is_given_its_uk_date_whatever_the_connections_time_zone(tmp_path, zone):
    folder = write_files(tmp_path / "x", patients_csv=PATIENTS)
    instants = pa.array([SUMMER_INSTANT.replace(tzinfo=None), WINTER_INSTANT.replace(tzinfo=None)], pa.timestamp("ns"))
    pq.write_table(
        pa.table({"patient_id": ["P1", "P1"], "code": ["1", "1"], "date": instants}),
        folder / "events.parquet",
        use_deprecated_int96_timestamps=True,
    )
    con = connect()
    con.execute(f"SET TimeZone = '{zone}'")
    extract = read_extract(folder, con=con)
    assert _dates(extract) == [dt.date(2024, 6, 1), dt.date(2024, 2, 29)]
