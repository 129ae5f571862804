"""Spec tests: each YAML case is a protocol snippet, small tables and the expected list.

Select one with ``pytest -k <case id>``. The cases double as documentation of every rule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from casefind import api
from casefind.protocol import parse_protocol
from tests.conftest import parse_table

SPEC_DIR = Path(__file__).parent
BASE = yaml.safe_load((SPEC_DIR / "base_protocol.yaml").read_text())


def _cases():
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        if path.name == "base_protocol.yaml":
            continue
        for case in yaml.safe_load(path.read_text()):
            yield pytest.param(case, id=f"{path.stem}:{case['id']}")


def _protocol(snippet: dict):
    doc = {**BASE, **{k: v for k, v in snippet.items() if k != "codelists"}}
    doc["codelists"] = {**BASE["codelists"], **snippet.get("codelists", {})}
    return parse_protocol(yaml.safe_dump(doc), source="spec")


@pytest.mark.parametrize("case", list(_cases()))
def test_spec(case, make_extract):
    tables = {
        name: case[name] for name in ("patients", "events", "relationships", "appointments", "concerns") if name in case
    }
    folder = make_extract(**tables)
    result = api.build_list(folder, rules=_protocol(case["protocol"]), as_of=date.fromisoformat(str(case["as_of"])))
    expected = parse_table(case["expected"]) if case["expected"].strip() != "(empty)" else []
    got = [
        {col: _text(getattr(row, col)) for col in (expected[0] if expected else ["patient_id"])}
        for row in result.entries.itertuples()
    ]
    assert got == expected


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: an empty cell
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_one_missed_appointment_names_only_the_plan_the_child_is_on(make_extract):
    protocol = _protocol(
        {
            "criteria": [
                {"id": "cp", "label": "CP plan", "kind": "coded_active", "start": "cp_start", "weight": 10,
                 "tier": "significant"},
                {"id": "cin", "label": "Child in need", "kind": "coded_active", "start": "cin_start", "weight": 5,
                 "tier": "significant"},
                {"id": "wnb", "label": "Not brought", "kind": "missed_appointments", "window": "12 months",
                 "min_count": 2, "single_if": ["cp", "cin"], "weight": 3, "tier": "minor"},
            ]
        }
    )  # fmt: skip
    folder = make_extract(
        patients="patient_id | date_of_birth\non_cp | 2018-01-01\non_both | 2018-01-01",
        appointments="patient_id | date | status\non_cp | 2026-05-01 | was_not_brought\n"
        "on_both | 2026-05-01 | was_not_brought",
        events="patient_id | code | date\non_cp | 342191000000101 | 2026-01-01\n"
        "on_both | 342191000000101 | 2026-01-01\non_both | 135891007 | 2026-02-01",
    )
    result = api.build_list(folder, rules=protocol, as_of=date(2026, 11, 24))
    evidence = dict(zip(result.entries["patient_id"], result.entries["evidence"], strict=True))
    assert "one is enough with: CP plan]" in evidence["on_cp"]
    assert "one is enough with: CP plan, Child in need]" in evidence["on_both"]
