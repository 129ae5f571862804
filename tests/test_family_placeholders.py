"""Placeholder guards (casefind/engine/duckdb_families.py): one warning each, with counts and never a value."""

from __future__ import annotations

from datetime import date

from casefind import api
from casefind.protocol import parse_protocol

AS_OF = date(2026, 11, 24)
PROTOCOL = parse_protocol("""
name: placeholder warnings
version: "1"
population: {min_age: 0, max_age: 17}
codelists:
  cp_start: {codes: [{code: "342191000000101", term: "Subject to child protection plan"}]}
criteria:
  - {id: cp, label: CP plan, kind: coded_active, start: cp_start, weight: 10, tier: significant}
""")


def test_placeholder_parent_and_household_each_give_one_warning_without_values(make_extract):
    kids = [f"kid{n:02d}" for n in range(31)]
    patients = [f"{k} | 2015-01-01 | HOUSEHOLD-NULL" for k in kids[:25]]
    patients += [f"adult{n} | 1980-01-01 | HOUSEHOLD-NULL" for n in range(56)]  # 81 share the household_id
    patients += [f"{k} | 2015-01-01 | H{k}" for k in kids[25:]]
    folder = make_extract(
        patients="patient_id | date_of_birth | household_id\n" + "\n".join(patients),
        relationships="patient_id | related_patient_id | relationship\n"
        + "\n".join(f"{k} | PLACEHOLDER-0 | father" for k in kids),
        events="patient_id | code | date\nkid00 | 342191000000101 | 2026-01-01",
    )
    warnings = [w for w in api.build_list(folder, rules=PROTOCOL, as_of=AS_OF).info.warnings]
    assert [w for w in warnings if w.startswith(("relationships:", "patients:"))] == [
        "relationships: 1 id is named as the parent of more than 12 children (31 rows valid on the as-of date): "
        "most likely a placeholder for an unknown parent, such as 0 or UNKNOWN; those rows were not used for "
        "linking, so the children are not linked to it or, through it, to each other\n"
        "  HINT: sort relationships by related_patient_id to find the value given for that many children, and have "
        "the export leave an unknown parent blank; a real parent of that many children is not linked to them, so "
        "check those children by hand",
        "patients: 1 household_id is shared by more than 20 patients registered on the as-of date (81): a "
        "placeholder such as NULL or 0, or a care home, hostel or children's home, not a family household; "
        "shared-household links (household adult, child in household) were not made for it; explicit "
        "relationships rows still count\n"
        "  HINT: have the export leave an unknown household_id blank, and link children who live in a shared home "
        "to their carers with relationships rows",
    ]
    assert not any("PLACEHOLDER" in w or "HOUSEHOLD-NULL" in w or "kid" in w for w in warnings)


def test_several_placeholders_are_counted_together(make_extract):
    kids = [f"kid{n:02d}" for n in range(26)]
    patients = [f"{k} | 2015-01-01 | {'A' if n < 13 else 'B'}" for n, k in enumerate(kids)]
    patients += [f"adult{n} | 1980-01-01 | {'A' if n < 10 else 'B'}" for n in range(20)]  # 23 in each
    folder = make_extract(
        patients="patient_id | date_of_birth | household_id\n" + "\n".join(patients),
        relationships="patient_id | related_patient_id | relationship\n"
        + "\n".join(f"{k} | {'0' if n < 13 else 'UNKNOWN'} | mother" for n, k in enumerate(kids)),
    )
    warnings = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF).info.warnings
    assert [w.split("\n")[0] for w in warnings if w.startswith(("relationships:", "patients:"))] == [
        "relationships: 2 ids are each named as the parent of more than 12 children (26 rows valid on the as-of "
        "date): most likely a placeholder for an unknown parent, such as 0 or UNKNOWN; those rows were not used "
        "for linking, so the children are not linked to them or, through them, to each other",
        "patients: 2 household_ids are each shared by more than 20 patients registered on the as-of date (46 in "
        "all): a placeholder such as NULL or 0, or a care home, hostel or children's home, not a family household; "
        "shared-household links (household adult, child in household) were not made for them; explicit "
        "relationships rows still count",
    ]


def test_no_warning_just_under_the_limits(make_extract):
    kids = [f"kid{n:02d}" for n in range(12)]
    patients = [f"{k} | 2015-01-01 | H1" for k in kids] + [f"adult{n} | 1980-01-01 | H1" for n in range(8)]
    folder = make_extract(
        patients="patient_id | date_of_birth | household_id\n" + "\n".join(patients),
        relationships="patient_id | related_patient_id | relationship\n"
        + "\n".join(f"{k} | adult0 | father" for k in kids),
    )
    warnings = api.build_list(folder, rules=PROTOCOL, as_of=AS_OF).info.warnings
    assert [w for w in warnings if w.startswith(("relationships:", "patients:"))] == []
