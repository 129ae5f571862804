"""Bad protocols give exact, located messages, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from casefind.errors import ExitCode, ProtocolError
from casefind.protocol import load_protocol

FIXTURES = Path(__file__).parent / "fixtures" / "bad_rules"


def _messages(name: str | Path) -> list[str]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(FIXTURES / name)
    assert caught.value.exit_code == ExitCode.BAD_PROTOCOL
    return [str(p) for p in caught.value.problems]


def test_every_problem_is_reported_with_file_line_and_path():
    f = str(FIXTURES / "many_problems.yaml")
    assert _messages("many_problems.yaml") == [
        f"{f}, line 5, codelists.cp_start.codes[1]: invalid SNOMED CT code '342191000000102': "
        "the Verhoeff check digit is wrong (a typing error?)",
        f"{f}, line 7, codelists.cp_end.file: cannot read codelist file '{FIXTURES / 'missing.csv'}': "
        "No such file or directory",
        f"{f}, line 12, criteria[0].start: unknown codelist 'cp_strt' (did you mean 'cp_start'?)",
        f"{f}, line 19, criteria[1].window: expected a duration like '12 months', got '12 mnths'",
        f"{f}, line 20, criteria[1].weight: expected a number, got 'ten'",
        f"{f}, line 21, criteria[1].tier: expected 'significant' or 'minor', got 'major'",
        f"{f}, line 24, criteria[2].kind: unknown kind 'coded_sometimes'; expected one of: coded_active, "
        "coded_in_window, new_birth, antenatal_booking, missed_appointments",
        f"{f}, line 33, criteria[3].colour: unknown field 'colour' (check the spelling; see the protocol format "
        "in the README)",
    ]


def test_yaml_syntax_error_names_the_line():
    f = str(FIXTURES / "not_yaml.yaml")
    assert _messages("not_yaml.yaml") == [f"{f}, line 6: not valid YAML: expected ',' or ']', but got '<stream end>'"]


def test_duplicate_criterion_ids():
    f = str(FIXTURES / "duplicate_ids.yaml")
    assert _messages("duplicate_ids.yaml") == [f"{f}, line 8, criteria[1].id: duplicate id 'cp' (also criteria[0])"]


def test_duplicate_yaml_keys_are_not_silently_dropped(tmp_path):
    path = tmp_path / "dupe.yaml"
    path.write_text(
        'name: a\nversion: "1"\nname: b\ncodelists:\n  cp: {codes: ["342191000000101"]}\n'
        "criteria:\n  - {id: cp, label: CP, kind: coded_active, start: cp, weight: 1, tier: minor}\n"
    )
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}, line 3, name: duplicate key (the later one would silently win)"
    ]


def test_missing_protocol_file(tmp_path):
    with pytest.raises(ProtocolError, match="cannot read the protocol file: No such file or directory"):
        load_protocol(tmp_path / "nope.yaml")


def test_the_model_is_immutable():
    from casefind.protocol import default_protocol_path

    protocol = load_protocol(default_protocol_path())
    with pytest.raises(Exception, match="frozen"):
        protocol.criteria[0].weight = 99


def test_a_misspelt_field_gets_a_suggestion(tmp_path):
    rules = tmp_path / "typo.yaml"
    rules.write_text(
        "name: t\nversion: '1'\ncodelists:\n  cp: {codes: ['342191000000101']}\n"
        "criteria:\n  - {id: cp, kind: coded_active, label: CP, start: [cp], wieght: 10, tier: significant}\n"
    )
    messages = _messages(rules)  # an absolute path: FIXTURES / rules is rules
    assert f"{rules}, line 6, criteria[0].wieght: unknown field 'wieght' (did you mean 'weight'?)" in messages
