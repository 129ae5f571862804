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
