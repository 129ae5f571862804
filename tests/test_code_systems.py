"""A protocol code under another code system than the codelist's is never read: the run says so."""

from __future__ import annotations

from datetime import date

from casefind import api
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = parse_protocol("""
name: code systems
version: "1"
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
  sh_read: {code_system: read2, codes: ["U2..."]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
  - {id: sh, label: Self-harm, kind: coded_in_window, codes: sh_read, window: 1 year, weight: 3, tier: significant}
""")
PATIENTS = "patient_id | date_of_birth\n" + "\n".join(f"{p} | 2015-01-01" for p in ("ann", "bob", "cat", "dan"))


def _warnings(result) -> list[str]:
    return [w for w in result.info.warnings if w.startswith("events:")]


def test_protocol_codes_under_another_code_system_are_counted_in_a_warning(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events=(
            "patient_id | code            | date       | code_system\n"
            "ann        | 342191000000101 | 2026-01-01 | snomed\n"
            "bob        | 342191000000101 | 2026-01-01 | read2\n"
            "cat        | 342191000000101 | 2026-02-01 | read2\n"
            "dan        | 342191000000101 | 2026-03-01 | emis\n"
            "dan        | U2...           | 2026-03-01 | snomed\n"
            "ann        | 22298006        | 2026-03-01 | read2"  # not a protocol code: nothing to say
        ),
    )
    result = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF)
    assert list(result.entries["patient_id"]) == ["ann"], "codes are matched with their code system"
    assert _warnings(result) == [
        "events: 4 events have a code from the protocol's codelists under another code system: 'read2' (2 events, "
        "where the protocol has them as snomed), 'emis' (1 event, where the protocol has it as snomed), 'snomed' "
        "(1 event, where the protocol has it as read2); they were not read\n"
        "  HINT: check the code_system column: a SNOMED CT concept id (such as 342191000000101) is 'snomed'; map "
        "the export's word for it in the mapping file's values, or give the codelist its code_system"
    ]
    assert "bob" not in str(_warnings(result)), "no patient is named"


def test_no_warning_when_every_protocol_code_has_its_code_system(make_extract):
    folder = make_extract(
        patients=PATIENTS,
        events=(
            "patient_id | code            | date       | code_system\n"
            "ann        | 342191000000101 | 2026-01-01 |\n"
            "bob        | U2...           | 2026-03-01 | read2"
        ),
    )
    result = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF)
    assert sorted(result.entries["patient_id"]) == ["ann", "bob"]
    assert _warnings(result) == []
