"""Events coded under a code system that none of the protocol's codelists uses are never read: a warning says
how many, per code system, and what to do (safety review, finding A)."""

from __future__ import annotations

from datetime import date

from casefind import api
from casefind.extract import read_extract
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
CP = "342191000000101"  # Subject to child protection plan (SNOMED CT)
SNOMED_ONLY = parse_protocol(f"""
name: snomed only
version: "1"
codelists:
  cp_start: {{codes: ["{CP}"]}}
criteria:
  - {{id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}}
""")
READ2_ONLY = parse_protocol("""
name: read2 only
version: "1"
codelists:
  cp_start: {code_system: read2, codes: ["13Iv."]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
""")
PATIENTS = "patient_id | date_of_birth\n" + "\n".join(f"{p} | 2015-01-01" for p in ("ann", "bob", "cat", "dan"))
HINT_SNOMED = (
    "  HINT: give the protocol codelists in {that} (a codelist with code_system: {first}, its codes inline or in "
    "its file), or export the events with SNOMED CT codes"
)


def _code_system_warnings(warnings) -> list[str]:
    return [str(w) for w in warnings if "none of the protocol's codelists uses" in str(w)]


def test_events_under_a_code_system_no_codelist_uses_are_counted_per_system(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events=(
            "patient_id | code            | date       | code_system\n"
            "ann        | 342191000000101 | 2026-01-01 | snomed\n"
            "bob        | 13Iv.           | 2026-01-01 | read2\n"  # a CP plan in Read v2: the child is not listed
            "bob        | 246..           | 2026-01-02 | Read\n"  # the export's spelling of read2
            "cat        | 246..           | 2026-01-03 | read2\n"
            "cat        | XaBVJ           | 2026-01-03 | ctv3\n"
            "dan        | EMISNQ1         | 2026-01-04 | emis\n"
            "dan        | EMISNQ2         | 2026-01-05 | EMIS\n"
            "dan        | 22298006        | 2026-01-06 |\n"  # no code_system: snomed, which the protocol reads
            "dan        | 22298006        | 2026-01-07 | SNOMED CT"  # snomed too, as the export spells it
        ),
    )
    result = api.build_list(folder, rules=SNOMED_ONLY, as_of=AS_OF)
    assert list(result.entries["patient_id"]) == ["ann"]
    assert _code_system_warnings(result.info.warnings) == [
        "events.csv: 6 events are coded under code systems that none of the protocol's codelists uses: 'read2' "
        "(3 events), 'emis' (2 events), 'ctv3' (1 event); they were not read, so no criterion counts them, "
        "whatever their codes\n" + HINT_SNOMED.format(that="those code systems", first="read2")
    ]
    assert not any(p in w for w in result.info.warnings for p in ("ann", "bob", "cat", "dan")), "no one is named"


def test_one_event_under_one_unread_code_system_is_said_in_the_singular(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events="patient_id | code  | date       | code_system\nbob        | 13Iv. | 2026-01-01 | read2",
    )
    extract = read_extract(folder, event_codes=[CP], code_systems=["snomed"])
    assert _code_system_warnings(extract.warnings) == [
        "events.csv: 1 event is coded under a code system that none of the protocol's codelists uses: 'read2' "
        "(1 event); it was not read, so no criterion counts it, whatever its code\n"
        + HINT_SNOMED.format(that="that code system", first="read2")
    ]


def test_events_without_a_code_system_column_are_snomed_and_counted_when_no_codelist_is(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events="patient_id | code | date\nann | 342191000000101 | 2026-01-01\nbob | 13Iv. | 2026-01-01",
    )
    result = api.build_list(folder, rules=READ2_ONLY, as_of=AS_OF)
    assert result.entries.empty
    assert _code_system_warnings(result.info.warnings) == [
        "events.csv: 2 events are coded under a code system that none of the protocol's codelists uses: 'snomed' "
        "(2 events) (an event without a code_system is snomed); they were not read, so no criterion counts them, "
        "whatever their codes\n"
        "  HINT: give the protocol codelists in that code system (a codelist with code_system: snomed, its codes "
        "inline or in its file)"
    ]


def test_rows_left_out_as_bad_are_not_counted_as_unread(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events=(
            "patient_id | code  | date       | code_system\n"
            "bob        | 13Iv. | 2026-01-01 | read2\n"
            "cat        | 246.. | 31/02/2026 | read2\n"  # a bad date: left out, and said so in the rejects
            "zed        | 246.. | 2026-01-01 | read2\n"  # not in the patients file: left out too
            "cat        | 246.. | 2026-01-01 | icd10"  # no code system casefind knows: a bad row, not counted here
        ),
    )
    extract = read_extract(folder, skip_bad_rows=True, event_codes=[CP], code_systems=["snomed"])
    assert extract.rejected_rows == 3
    assert _code_system_warnings(extract.warnings) == [
        "events.csv: 1 event is coded under a code system that none of the protocol's codelists uses: 'read2' "
        "(1 event); it was not read, so no criterion counts it, whatever its code\n"
        + HINT_SNOMED.format(that="that code system", first="read2")
    ]


def test_the_coding_report_and_a_parquet_extract_get_the_warning_too(make_extract, tmp_path):
    import pandas as pd

    folder = make_extract(patients=PATIENTS)
    pd.DataFrame(
        {
            "patient_id": ["ann", "bob", "bob"],
            "code": [CP, "13Iv.", "246.."],
            "date": ["2026-01-01"] * 3,
            "code_system": ["snomed", "read2", "read2"],
        }
    ).to_parquet(folder / "events.parquet")
    (folder / "events.csv").unlink()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"""
name: snomed only
version: "1"
codelists:
  cp_start: {{codes: ["{CP}"], report_category: Child protection}}
criteria:
  - {{id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}}
"""
    )
    report, _ = api.coding_report(
        folder, tmp_path / "report", date_from=date(2026, 1, 1), date_to=date(2026, 3, 31), rules=rules, as_of=AS_OF
    )
    assert _code_system_warnings(report.notices) == [
        "events.parquet: 2 events are coded under a code system that none of the protocol's codelists uses: 'read2' "
        "(2 events); they were not read, so no criterion counts them, whatever their codes\n"
        + HINT_SNOMED.format(that="that code system", first="read2")
    ]
