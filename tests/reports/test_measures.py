"""Numerators and denominators on tiny hand-worked extracts (ages 0-17, dates inclusive)."""

from datetime import date

import pandas as pd
import pytest

from casefind.errors import OptionError
from casefind.reports.measures import (
    ANY_CATEGORY,
    OTHER,
    CodingMeasures,
    ExtractEnd,
    find_extract_end,
    pseudonym_map,
    publishable_code,
)
from casefind.reports.periods import AgeBand, make_periods, range_period

from .conftest import CATEGORIES, event, make_connection

SPAN = (date(2020, 1, 1), date(2026, 12, 31))


def rates(con, periods, breakdowns=("overall",), suppress=False, **kwargs):
    with CodingMeasures(con, CATEGORIES, 0, 17, *SPAN) as measures:
        return measures.rates(periods, breakdowns, suppress=suppress, **kwargs)


def row(frame, period, category=ANY_CATEGORY, breakdown="overall", group="all"):
    hit = frame[
        (frame.period == period)
        & (frame.category == category)
        & (frame.breakdown == breakdown)
        & (frame.group == group)
    ]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_child_years_stop_the_day_before_the_eighteenth_birthday():
    # Born 1 July 2006: turns 18 on 1 July 2024, so counts 1 Jan - 30 Jun 2024 = 31+29+31+30+31+30 = 182 days.
    con = make_connection(
        [("c1", date(2006, 7, 1), None, None, None, "F", "P1")],
        [event("c1", "1001", date(2024, 6, 20)), event("c1", "2001", date(2024, 7, 15))],
    )
    frame = rates(con, make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"))
    r = row(frame, "2024")
    assert r.child_years == pytest.approx(182 / 365.25)
    assert r.numerator == 1 and r.codes == 1  # the code after the birthday does not count
    assert row(frame, "2024", "cause_for_concern").numerator == 0
    assert r.rate == pytest.approx(1000 / (182 / 365.25))
    # Midpoint of 2024 is 1 Jan + 365 // 2 = 182 days = 1 July 2024: already 18, so not registered-as-child.
    assert r.registered_midpoint == 0 and r.cohort_numerator == 0


def test_registration_starting_mid_month_and_midpoint_census():
    # Registered from 15 March 2024: 17 days in March (15..31); March's midpoint is 16 March.
    con = make_connection(
        [("c1", date(2015, 1, 1), None, date(2024, 3, 15), None, "M", "P1")],
        [event("c1", "1001", date(2024, 3, 10)), event("c1", "1001", date(2024, 3, 20))],
    )
    frame = rates(con, make_periods(date(2024, 2, 1), date(2024, 3, 31), "month"))
    feb, mar = row(frame, "2024-02"), row(frame, "2024-03")
    assert feb.child_years == 0 and feb.registered_midpoint == 0
    assert mar.child_years == pytest.approx(17 / 365.25)
    assert mar.registered_midpoint == 1
    assert mar.numerator == 1 and mar.codes == 1  # the 10 March code predates registration
    assert mar.proportion == pytest.approx(1.0)


def test_death_mid_month_counts_the_day_of_death():
    # Died 10 April 2024: 10 days in April; midpoint 15 April is after death.
    con = make_connection(
        [("c1", date(2015, 1, 1), date(2024, 4, 10), None, None, "F", "P1")],
        [event("c1", "2001", date(2024, 4, 10))],
    )
    frame = rates(con, make_periods(date(2024, 4, 1), date(2024, 5, 31), "month"))
    apr, may = row(frame, "2024-04"), row(frame, "2024-05")
    assert apr.child_years == pytest.approx(10 / 365.25)
    assert apr.registered_midpoint == 0
    assert apr.numerator == 1
    assert may.child_years == 0


def test_deregistration_and_birth_inside_the_period():
    # Born 20 Jan 2024 (counts from birth: 12 days in Jan); another left on 5 Jan 2024 (5 days).
    con = make_connection(
        [
            ("b", date(2024, 1, 20), None, None, None, "F", "P1"),
            ("l", date(2010, 1, 1), None, None, date(2024, 1, 5), "M", "P1"),
        ],
        [],
    )
    frame = rates(con, make_periods(date(2024, 1, 1), date(2024, 1, 31), "month"))
    assert row(frame, "2024-01").child_years == pytest.approx(17 / 365.25)
    assert row(frame, "2024-01").registered_midpoint == 0  # midpoint 16 Jan: one unborn, one gone


def test_any_code_counts_each_child_and_each_event_once():
    categories = {"cp_plan": [("snomed", "1001")], "wide": [("SNOMED", "1001"), ("snomed", "2001")]}
    con = make_connection(
        [
            ("c1", date(2015, 1, 1), None, None, None, "F", "P1"),
            ("c2", date(2015, 1, 1), None, None, None, "M", "P1"),
        ],
        [
            event("c1", "1001", date(2024, 1, 3)),
            event("c1", "2001", date(2024, 1, 4)),
            event("c2", "2001", date(2024, 1, 5), system="Snomed"),
            event("c2", "2001", date(2024, 1, 6), system="ctv3"),
        ],
    )
    with CodingMeasures(con, categories, 0, 17, *SPAN) as measures:
        frame = measures.rates(make_periods(date(2024, 1, 1), date(2024, 1, 31)), suppress=False)
    assert (row(frame, "2024-01", "cp_plan").numerator, row(frame, "2024-01", "cp_plan").codes) == (1, 1)
    assert (row(frame, "2024-01", "wide").numerator, row(frame, "2024-01", "wide").codes) == (2, 3)
    # The 1001 event is in both categories but one event: 'any' has 2 children and 3 codes (ctv3 ignored).
    assert (row(frame, "2024-01").numerator, row(frame, "2024-01").codes) == (2, 3)
    assert row(frame, "2024-01").child_years == pytest.approx(2 * 31 / 365.25)


def test_a_row_the_export_repeats_is_one_coded_event():
    con = make_connection(
        [("c1", date(2015, 1, 1), None, None, None, "F", "P1")],
        [
            event("c1", "1001", date(2024, 1, 3), "amy"),
            event("c1", "1001", date(2024, 1, 3), "amy"),  # the same row twice
            event("c1", "1001", date(2024, 1, 3), "zed"),  # another clinician's code the same day
            event("c1", "1001", date(2024, 1, 4), "amy"),
        ],
    )
    frame = rates(con, make_periods(date(2024, 1, 1), date(2024, 1, 31)))
    assert (row(frame, "2024-01", "cp_plan").numerator, row(frame, "2024-01", "cp_plan").codes) == (1, 3)


def _practice_extract():
    patients = [
        ("a1", date(2012, 1, 1), None, None, None, "F", "A"),
        ("a2", date(2012, 1, 1), None, None, None, "M", "A"),
        ("b1", date(2012, 1, 1), None, None, None, "F", "B"),
        ("b2", date(2004, 1, 1), None, None, None, None, "B"),
    ]  # 20 in 2024: never a child here
    events = [
        event("a1", "1001", date(2024, 2, 1), "zed"),
        event("a2", "2001", date(2024, 2, 2), "zed"),
        event("b1", "1001", date(2024, 2, 3), "amy"),
        event("b1", "1001", date(2024, 2, 4), None),
    ]
    return make_connection(patients, events)


def test_practice_sex_and_age_band_breakdowns():
    frame = rates(
        _practice_extract(),
        make_periods(date(2024, 2, 1), date(2024, 2, 29)),
        ("practice", "sex", "age_band"),
        age_bands=[AgeBand(0, 11), AgeBand(12, 17)],
    )
    assert row(frame, "2024-02", breakdown="practice", group="A").numerator == 2
    assert row(frame, "2024-02", breakdown="practice", group="A").child_years == pytest.approx(2 * 29 / 365.25)
    b = row(frame, "2024-02", breakdown="practice", group="B")
    assert (b.numerator, b.codes, b.registered_midpoint) == (1, 2, 1)
    assert b.child_years == pytest.approx(29 / 365.25)
    assert row(frame, "2024-02", breakdown="sex", group="F").numerator == 2
    assert row(frame, "2024-02", breakdown="sex", group="M").numerator == 1
    assert set(frame[frame.breakdown == "sex"].group) == {"F", "M"}  # the adult with no sex is not a child
    assert row(frame, "2024-02", breakdown="age_band", group="12-17").numerator == 3
    assert row(frame, "2024-02", breakdown="age_band", group="00-11").child_years == 0


def test_a_child_who_moves_up_a_band_counts_in_the_proportion_of_their_midpoint_band():
    # Born 1 March 2019: aged 4 when coded on 10 Feb 2024, aged 5 at 2024's midpoint (1 July).
    # Rates follow the age at the code (the 00-04 band); the proportion follows the midpoint census, so the
    # child is the 05-17 band's cohort and coded in the period: 1 of 1, not 0 of 1.
    con = make_connection(
        [("c1", date(2019, 3, 1), None, None, None, "F", "P1")],
        [event("c1", "1001", date(2024, 2, 10))],
    )
    frame = rates(
        con,
        make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"),
        ("age_band",),
        age_bands=[AgeBand(0, 4), AgeBand(5, 17)],
    )
    young = row(frame, "2024", breakdown="age_band", group="00-04")
    older = row(frame, "2024", breakdown="age_band", group="05-17")
    assert (young.numerator, young.codes, young.registered_midpoint, young.cohort_numerator) == (1, 1, 0, 0)
    assert (older.numerator, older.codes, older.registered_midpoint, older.cohort_numerator) == (0, 0, 1, 1)
    assert older.proportion == pytest.approx(1.0)


BP = "9999"  # a blood pressure reading: no report category


def _clinic_events():
    """GP01 codes one child and records blood pressure for two more (and an adult); PN01 records blood
    pressure for four children and never a safeguarding code; HV01 codes one child twice. One GP01 event
    falls in March, and one event for the adult, never a child in 2024."""
    return [
        event("a1", "1001", date(2024, 2, 1), "GP01"),
        event("a2", BP, date(2024, 2, 2), "GP01"),
        event("b1", BP, date(2024, 2, 3), "GP01"),
        event("b2", BP, date(2024, 2, 3), "GP01"),
        event("a2", BP, date(2024, 3, 3), "GP01"),
        *(event(p, BP, date(2024, 2, 10 + i), "PN01") for i, p in enumerate(["a1", "a2", "b1", "c1"])),
        event("a1", BP, date(2024, 2, 11), "PN01"),
        event("c1", "2001", date(2024, 2, 5), "HV01"),
        event("c1", "1002", date(2024, 2, 6), "HV01"),
    ]


def _clinic_extract():
    patients = [
        ("a1", date(2012, 1, 1), None, None, None, "F", "A"),
        ("a2", date(2012, 1, 1), None, None, None, "M", "A"),
        ("b1", date(2012, 1, 1), None, None, None, "F", "B"),
        ("b2", date(2004, 1, 1), None, None, None, None, "B"),  # 20 in 2024: never a child here
        ("c1", date(2016, 5, 5), None, None, None, "F", "B"),
    ]
    return make_connection(patients, _clinic_events())


def _seen_and_coded(events, start, end, coded_codes=("1001", "1002", "2001")):
    """Worked from the event tuples: per clinician, the children (not b2) with any event, and those coded."""
    seen, coded = {}, {}
    for patient, code, _, day, _, _, clinician in events:
        if patient != "b2" and start <= day <= end:
            seen.setdefault(clinician, set()).add(patient)
            if code in coded_codes:
                coded.setdefault(clinician, set()).add(patient)
    return seen, coded


def test_clinician_rows_are_children_coded_over_the_children_they_saw():
    """Clinicians have no registered list: each row is the children they coded over the children they
    recorded anything for. PN01, who never records a safeguarding code, has a row (0 of 4)."""
    frame = rates(_clinic_extract(), make_periods(date(2024, 2, 1), date(2024, 2, 29)), ("clinician",))
    seen, coded = _seen_and_coded(_clinic_events(), date(2024, 2, 1), date(2024, 2, 29))
    clinicians = frame[(frame.breakdown == "clinician") & (frame.category == ANY_CATEGORY)]
    assert set(clinicians.group) == set(seen) == {"GP01", "PN01", "HV01"}
    for clinician, children in seen.items():
        got = row(frame, "2024-02", breakdown="clinician", group=clinician)
        assert got.children_seen == len(children), clinician
        assert got.numerator == len(coded.get(clinician, ())), clinician
        assert got.proportion == pytest.approx(len(coded.get(clinician, ())) / len(children)), clinician
        assert pd.isna(got.child_years) and pd.isna(got.rate) and pd.isna(got.registered_midpoint)
    assert row(frame, "2024-02", breakdown="clinician", group="HV01").codes == 2
    assert pd.isna(row(frame, "2024-02").children_seen)  # other breakdowns have no children seen


def test_children_seen_are_read_from_every_row_of_the_events_file():
    """With an extract read for the protocol's codes, the typed events table holds only those: the children
    a clinician saw are read from raw_events (every row, dates as text), less the rows left out as bad."""
    con = _clinic_extract()
    from casefind.extract import _define_macros

    _define_macros(con)
    con.execute(
        """CREATE TABLE raw_events AS SELECT row_number() OVER () + 1 AS _row, patient_id,
        strftime(date, '%d/%m/%Y') AS date, clinician_id FROM events"""
    )
    con.execute("INSERT INTO raw_events VALUES (100, 'b1', '12/02/2024', 'PN02')")  # a bad row, left out
    con.execute("CREATE TABLE problems AS SELECT 'events' AS tbl, 100::BIGINT AS row")
    con.execute("CREATE TABLE empty_rows (tbl VARCHAR, row BIGINT)")  # as read_extract makes it
    con.execute(f"DELETE FROM events WHERE code = '{BP}'")  # as read_extract keeps only the protocol's codes
    frame = rates(con, make_periods(date(2024, 2, 1), date(2024, 2, 29)), ("clinician",))
    seen, _ = _seen_and_coded(_clinic_events(), date(2024, 2, 1), date(2024, 2, 29))
    assert set(frame[frame.breakdown == "clinician"].group) == set(seen)
    for clinician, children in seen.items():
        assert row(frame, "2024-02", breakdown="clinician", group=clinician).children_seen == len(children)


def test_clinician_rows_suppress_children_seen_like_any_count():
    frame = rates(_clinic_extract(), make_periods(date(2024, 2, 1), date(2024, 2, 29)), ("clinician",), suppress=True)
    pn01 = row(frame, "2024-02", breakdown="clinician", group="PN01")  # 0 of 4: 4 children is hidden, the 0 too
    assert pd.isna(pn01.numerator) and pd.isna(pn01.codes) and pd.isna(pn01.children_seen)
    assert pd.isna(pn01.proportion) and pn01.suppressed


PUBLISHED = [
    "numerator", "codes", "child_years", "rate", "lower", "upper", "children_registered",
    "registered_midpoint", "cohort_numerator", "proportion", "prop_lower", "prop_upper", "suppressed",
]  # fmt: skip


def _sex_rows(sex_of_coded_child: str, coded: bool):
    """The published sex rows of 2024: 20 girls (3 coded, one on 1 December) and one child of
    ``sex_of_coded_child`` who is coded in June if ``coded``."""
    patients = [(f"k{i}", date(2015, 1, 1), None, None, None, "F", "P") for i in range(20)]
    patients.append(("x", date(2015, 1, 1), None, None, None, sex_of_coded_child, "P"))
    events = [event(f"k{i}", "1001", date(2024, 12 if i == 0 else 5, 1)) for i in range(3)]
    events += [event("x", "2001", date(2024, 6, 1))] if coded else []
    frame = rates(
        make_connection(patients, events), make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"), ("sex",), True
    )
    return frame[frame.breakdown == "sex"].set_index(["group", "category"])[PUBLISHED]


def test_a_group_of_1_to_7_children_has_every_count_hidden_zeros_too():
    """One child with sex I: a 0 would say she was not coded and a hidden count that she was. Her group is
    hidden whole, so its published row is the same whether she was coded or not."""
    not_coded, coded = _sex_rows("I", coded=False), _sex_rows("I", coded=True)
    pd.testing.assert_frame_equal(not_coded, coded)
    alone = coded.loc[("I", "cause_for_concern")]
    assert pd.isna(alone.numerator) and pd.isna(alone.codes) and pd.isna(alone.cohort_numerator)
    assert pd.isna(alone.children_registered) and pd.isna(alone.registered_midpoint) and alone.suppressed
    assert pd.isna(alone.rate) and pd.isna(alone.proportion)
    girls = coded.loc[("F", "cause_for_concern")]  # 20 children, none coded: the 0 is hidden too
    assert pd.isna(girls.numerator) and girls.children_registered == 20 and girls.child_years == 20


def test_a_zero_cohort_numerator_is_hidden_beside_a_hidden_numerator():
    """Numerator 1 to 7 hidden: a 0 beside it (none of them registered on the midpoint) would say so of
    each of them. A child who left in March is coded in February; 20 children stay all year."""
    patients = [(f"k{i}", date(2015, 1, 1), None, None, None, "F", "P") for i in range(20)]
    patients.append(("gone", date(2015, 1, 1), None, None, date(2024, 3, 1), "F", "P"))
    con = make_connection(patients, [event("gone", "1001", date(2024, 2, 1))])
    shown = rates(con, make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"))
    assert row(shown, "2024", "cp_plan").cohort_numerator == 0  # the true figure: she was gone by July
    frame = rates(con, make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"), suppress=True)
    cp = row(frame, "2024", "cp_plan")
    assert pd.isna(cp.numerator) and pd.isna(cp.cohort_numerator) and pd.isna(cp.proportion)
    assert cp.registered_midpoint == 20 and cp.children_registered == 20  # 21 rounds to 20


def test_pseudonyms_come_from_the_id_alone():
    # "C" + the first 6 hex digits of sha256("casefind" NUL id): zed ed0eee6b..., amy 71620d0f...
    assert pseudonym_map(["zed", "amy", OTHER]) == {"zed": "CED0EEE", "amy": "C71620D", OTHER: OTHER}
    # GP03 keeps its code whoever else is in the report (ranked among those present, it was C03, then C04)
    first = pseudonym_map(["GP01", "GP02", "GP03"])
    second = pseudonym_map(["GP03", "GP07", "GP11", "GP12", "GP13"])
    assert first["GP03"] == second["GP03"] == "CD94673"
    assert first == {"GP01": "C9E53BB", "GP02": "C2C25E7", "GP03": "CD94673", OTHER: OTHER}
    assert pseudonym_map(["GP03"], salt="another salt")["GP03"] != "CD94673"
    frame = rates(
        _practice_extract(),
        make_periods(date(2024, 2, 1), date(2024, 2, 29)),
        ("clinician",),
        pseudonymise_clinicians=True,
    )
    groups = set(frame[frame.breakdown == "clinician"].group)
    assert groups == {"CED0EEE", "C71620D", OTHER}


def test_pseudonyms_sharing_six_digits_grow_until_they_differ():
    # sha256 of GP00234 starts 336d4e3d..., of GP01824 336d4eb2...: both lengthen to 7 digits, only together
    assert pseudonym_map(["GP00234", "GP01824", "GP03"]) == {
        "GP00234": "C336D4E3", "GP01824": "C336D4EB", "GP03": "CD94673", OTHER: OTHER,
    }  # fmt: skip
    assert pseudonym_map(["GP00234", "GP03"])["GP00234"] == "C336D4E"


def test_the_extracts_end_is_the_latest_event_on_or_before_today():
    con = make_connection(
        [("c1", date(2015, 1, 1), None, None, None, "F", "P1")],
        [
            event("c1", "1001", date(2024, 3, 10)),
            event("c1", "9999", date(2024, 11, 2)),  # the day the report is run: still the extract's end
            event("c1", "1001", date(2099, 3, 1)),  # 2009 typed as 2099
            event("c1", "1002", date(2099, 3, 1)),  # twice on that day: two events, not one date
            event("c1", "9999", date(2025, 1, 15)),  # a planned review
        ],
    )
    today, first = date(2024, 11, 2), date(2024, 3, 10)  # the earliest event, 2024-03-10, starts the extract
    assert find_extract_end(con, today) == ExtractEnd(today, today, 3, date(2099, 3, 1), first)
    assert find_extract_end(con, date(2024, 1, 1)) == ExtractEnd(None, date(2024, 1, 1), 5, date(2099, 3, 1))
    assert find_extract_end(make_connection([], []), today) == ExtractEnd(None, today, 0, None)
    # from every row of the file as text, when the extract has it: rows that are no date are not counted
    from casefind.extract import _define_macros

    _define_macros(con)  # the extract's connection has them
    con.execute(
        "CREATE VIEW raw_events AS SELECT strftime(date, '%d/%m/%Y') AS date FROM events "
        "UNION ALL SELECT unnest(['31/02/2025', '01/03/25', NULL, '1 Sept 2024'])"
    )
    assert find_extract_end(con, today) == ExtractEnd(today, today, 3, date(2099, 3, 1), first)
    assert find_extract_end(con, date(2024, 1, 1)) == ExtractEnd(None, date(2024, 1, 1), 6, date(2099, 3, 1))


def test_suppression_rounds_counts_and_recomputes_rates():
    # 9 children each with one code, 12 children in total, all eligible the whole of 2024 (366 days).
    patients = [(f"k{i}", date(2015, 1, 1), None, None, None, "F", "P") for i in range(12)]
    events = [event(f"k{i}", "1001", date(2024, 5, 1)) for i in range(9)]
    con = make_connection(patients, events)
    frame = rates(con, make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"), suppress=True)
    cp = row(frame, "2024", "cp_plan")
    true_years = 12 * 366 / 365.25  # 12.02 -> rounded to 10
    assert true_years == pytest.approx(12.0246, abs=1e-4)
    assert (cp.numerator, cp.codes, cp.child_years, cp.registered_midpoint) == (10, 10, 10.0, 10)
    assert cp.rate == pytest.approx(1000.0)  # 10 / 10 child-years, from the rounded figures
    cfc = row(frame, "2024", "cause_for_concern")  # none coded: a 0 is hidden like 1 to 7, and its rate
    assert pd.isna(cfc.numerator) and pd.isna(cfc.rate) and cfc.suppressed
    assert frame.attrs["suppressed"] is True


def test_small_counts_are_suppressed_with_their_rates():
    patients = [(f"k{i}", date(2015, 1, 1), None, None, None, "F", "P") for i in range(20)]
    events = [event(f"k{i}", "1001", date(2024, 5, 1)) for i in range(3)]
    frame = rates(
        make_connection(patients, events),
        make_periods(date(2024, 1, 1), date(2024, 12, 31), "year"),
        suppress=True,
    )
    cp = row(frame, "2024", "cp_plan")
    assert pd.isna(cp.numerator) and pd.isna(cp.codes) and pd.isna(cp.rate) and pd.isna(cp.upper)
    assert pd.isna(cp.proportion) and cp.suppressed
    assert cp.registered_midpoint == 20


def test_compare_gives_rate_ratio_per_category():
    # One child all of 2023 and 2024; 1 code-day in 2023, coded again in 2024: RR = (1/366)/(1/365) days.
    con = make_connection(
        [("c", date(2015, 1, 1), None, None, None, "F", "P")],
        [event("c", "1001", date(2023, 5, 1)), event("c", "2001", date(2024, 5, 1))],
    )
    with CodingMeasures(con, CATEGORIES, 0, 17, *SPAN) as measures:
        table = measures.compare(
            range_period(date(2023, 1, 1), date(2023, 12, 31)),
            range_period(date(2024, 1, 1), date(2024, 12, 31)),
            suppress=False,
        )
    any_row = table[table.category == ANY_CATEGORY].iloc[0]
    assert any_row.rate_ratio == pytest.approx(365 / 366)
    cp = table[table.category == "cp_plan"].iloc[0]
    assert (cp.numerator_before, cp.numerator_after, cp.rate_ratio) == (1, 0, 0.0)
    assert cp.lower == 0.0


def test_quarters_are_clipped_to_the_report_dates():
    periods = make_periods(date(2024, 1, 15), date(2024, 5, 10), "quarter")
    assert [(p.label, p.start, p.end) for p in periods] == [
        ("2024-Q1", date(2024, 1, 15), date(2024, 3, 31)),
        ("2024-Q2", date(2024, 4, 1), date(2024, 5, 10)),
    ]
    assert periods[1].midpoint == date(2024, 4, 20)  # 1 Apr + 39 // 2 days


def test_bad_options_are_user_errors():
    with pytest.raises(OptionError, match="--by"):
        make_periods(date(2024, 1, 1), date(2024, 2, 1), "week")
    with pytest.raises(OptionError, match="ends"):
        make_periods(date(2024, 2, 1), date(2024, 1, 1))
    con = make_connection([], [])
    with pytest.raises(OptionError, match="unknown breakdown"):
        rates(con, make_periods(date(2024, 1, 1), date(2024, 1, 31)), ("postcode",))
    with pytest.raises(OptionError, match="reserved"), CodingMeasures(con, {ANY_CATEGORY: []}, 0, 17, *SPAN):
        pass


@pytest.mark.parametrize(
    ("value", "published"),
    [
        ("A81001", True), ("GP03", True), ("PRACT-A", True), ("G7654321", True), ("dr_01.b", True),
        ("Jane Smith", False), ("9990000026", False), ("999-000-0026", False), ("999 000 0026", False),
        ("12/03/2015", False), ("2015-03-12", False), ("SW1A1AA", False), ("=cmd()", False), ("", False),
        (None, False), ("x" * 41, False),
    ],
)  # fmt: skip
def test_only_values_shaped_like_a_code_are_published(value, published):
    assert publishable_code(value) is published


def test_labels_that_could_identify_a_patient_are_grouped_without_their_value():
    """Sex read in any common spelling is published as one letter; a surname in the sex column, a patient id
    as a practice, a patient's given name as a clinician all become one group, counted, never shown."""
    patients = [
        ("c1", date(2015, 1, 1), None, None, None, " female", "A81001"),
        ("c2", date(2015, 1, 1), None, None, None, "MALE", "A81001"),
        ("c3", date(2015, 1, 1), None, None, None, "Quixote", "c1"),
        ("c4", date(2015, 1, 1), None, None, None, "Indeterminate", "A81001"),
        ("c5", date(2015, 1, 1), None, None, None, None, "A81001"),
    ]
    con = make_connection(patients, [event(f"c{i}", "1001", date(2024, 1, 3), "GP01") for i in range(1, 6)])
    con.execute("ALTER TABLE patients ADD COLUMN given_name VARCHAR")
    con.execute("UPDATE patients SET given_name = 'Gp01' WHERE patient_id = 'c5'")  # a child named like GP01
    with CodingMeasures(con, CATEGORIES, 0, 17, *SPAN) as measures:
        frame = measures.rates(
            make_periods(date(2024, 1, 1), date(2024, 1, 31)), ("practice", "clinician", "sex"), suppress=False
        )
        notices = measures.label_notices(("practice", "clinician", "sex"))
    groups = {b: set(frame[frame.breakdown == b].group) for b in ("practice", "clinician", "sex")}
    assert groups == {"practice": {"A81001", OTHER}, "clinician": {OTHER}, "sex": {"F", "M", "I", OTHER}}
    assert row(frame, "2024-01", breakdown="sex", group=OTHER).registered_midpoint == 2  # Quixote and none
    assert notices == [
        f"1 patient has a practice_id that does not look like a practice code (letters and digits, no spaces, "
        f"no patient's identifier): counted in the group '{OTHER}', the value not shown.",
        f"5 coded events have a clinician_id that does not look like a clinician code (letters and digits, no "
        f"spaces, no patient's identifier): counted in the group '{OTHER}', the value not shown.",
        f"1 patient has no sex and 1 patient has a sex other than F, M, I or U (or Female, Male, Indeterminate, "
        f"Unknown): counted in the group '{OTHER}', the value not shown.",
    ]


def test_blank_practices_sexes_and_clinicians_are_counted_in_the_warnings():
    """An empty value goes to 'other or not recorded' as an unpublishable one does: the warnings count both."""
    patients = [
        ("c1", date(2015, 1, 1), None, None, None, "F", "A81001"),
        ("c2", date(2015, 1, 1), None, None, None, "", ""),
        ("c3", date(2015, 1, 1), None, None, None, None, None),
        ("c4", date(2015, 1, 1), None, None, None, "M", "Jane Smith"),
    ]
    events = [event("c1", "1001", date(2024, 1, 3), "GP01"), event("c2", "1001", date(2024, 1, 3), None)]
    events += [event("c3", "2001", date(2024, 1, 4), " "), event("c4", "2001", date(2024, 1, 4), "GP 01")]
    con = make_connection(patients, events)
    with CodingMeasures(con, CATEGORIES, 0, 17, *SPAN) as measures:
        notices = measures.label_notices(("practice", "clinician", "sex"))
    blank_sex = sum(1 for p in patients if not (p[5] or "").strip())
    blank_practice = sum(1 for p in patients if not (p[6] or "").strip())
    blank_clinician = sum(1 for e in events if not (e[6] or "").strip())
    assert notices == [
        f"{blank_practice} patients have no practice_id and 1 patient has a practice_id that does not look like a "
        f"practice code (letters and digits, no spaces, no patient's identifier): counted in the group '{OTHER}', "
        "the value not shown.",
        f"{blank_clinician} coded events have no clinician_id and 1 coded event has a clinician_id that does not "
        f"look like a clinician code (letters and digits, no spaces, no patient's identifier): counted in the "
        f"group '{OTHER}', the value not shown.",
        f"{blank_sex} patients have no sex: counted in the group '{OTHER}'.",
    ]


def test_the_label_warnings_count_as_disclosure_control_publishes():
    """In a report that may leave the practice, "1 patient has a sex other than ..." would publish a count of
    one: counts of 1 to 7 are given as such, others rounded to the nearest 5 and called "about"."""
    patients = [(f"c{i}", date(2015, 1, 1), None, None, None, "X" if i == 0 else None, "A81001") for i in range(14)]
    con = make_connection(patients, [event("c1", "1001", date(2024, 1, 3), "GP01")])
    with CodingMeasures(con, CATEGORIES, 0, 17, *SPAN) as measures:
        published = measures.label_notices(("sex",), suppress=True)
        inside = measures.label_notices(("sex",))
    assert published == [
        "about 15 patients have no sex and 1 to 7 patients have a sex other than F, M, I or U (or Female, Male, "
        f"Indeterminate, Unknown): counted in the group '{OTHER}', the value not shown."
    ]
    assert inside[0].startswith("13 patients have no sex and 1 patient has a sex other than")


def test_a_29_february_birthday_is_on_1_march_in_other_years_as_build_list_reads_it():
    """Born 2016-02-29: build-list's age rule makes the child 9 on 2025-03-01, not on 2025-02-28, so in a
    9-17 report a code on 28 February 2025 falls outside the age range and one on 1 March inside it."""
    con = make_connection(
        [("leap", date(2016, 2, 29), None, None, None, "F", "A81001")],
        [event("leap", "1001", date(2025, 2, 28)), event("leap", "2001", date(2025, 3, 1))],
    )
    with CodingMeasures(con, CATEGORIES, 9, 17, *SPAN) as measures:
        frame = measures.rates(make_periods(date(2025, 2, 1), date(2025, 3, 31)), suppress=False)
    assert row(frame, "2025-02", "cp_plan").numerator == 0
    assert row(frame, "2025-02").child_years == 0
    assert row(frame, "2025-03", "cause_for_concern").numerator == 1
    assert row(frame, "2025-03").child_years == pytest.approx(31 / 365.25)
