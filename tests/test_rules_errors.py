"""Bad protocols give exact, located messages, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from casefind.errors import ExitCode, ProtocolError
from casefind.protocol import MISSABLE_STATUSES, load_protocol
from casefind.schema import APPOINTMENT_STATUSES

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
        f"No such file or directory\n  HINT: a codelist's file is found from the protocol file's folder ({FIXTURES}): "
        "give its path from there",
        f"{f}, line 12, criteria[0] (id 'cp').start: unknown codelist 'cp_strt' (did you mean 'cp_start'?)",
        f"{f}, line 19, criteria[1] (id 'sh').window: expected a duration like '12 months', got '12 mnths'",
        f"{f}, line 20, criteria[1] (id 'sh').weight: expected a number, got 'ten'",
        f"{f}, line 21, criteria[1] (id 'sh').tier: expected 'significant' or 'minor', got 'major'",
        f"{f}, line 24, criteria[2] (id 'x').kind: unknown kind 'coded_sometimes'; expected one of: coded_active, "
        "coded_in_window, new_birth, antenatal_booking, missed_appointments",
        f"{f}, line 33, criteria[3] (id 'nb').colour: unknown field 'colour' (check the spelling; see the protocol "
        "format in the README)",
    ]


def test_yaml_syntax_error_names_the_line():
    f = str(FIXTURES / "not_yaml.yaml")
    # libyaml's wording (PyYAML's wheels parse with it; see protocol._TextLoader)
    assert _messages("not_yaml.yaml") == [f"{f}, line 6: not valid YAML: did not find expected ',' or ']'"]


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
    assert f"{rules}, line 6, criteria[0] (id 'cp').wieght: unknown field 'wieght' (did you mean 'weight'?)" in messages


PROTOCOL = """\
name: t
version: "1"
codelists:
  cp: {codes: ["342191000000101"]}
  cp_end: {file: cl/end.csv}
criteria:
  - {id: cp, label: CP, kind: coded_active, start: cp, end: cp_end, weight: 10, tier: significant}
"""


def _write(tmp_path: Path, protocol: str = PROTOCOL, csv: str = "code,term\n342891000000105,ended\n") -> Path:
    (tmp_path / "cl").mkdir(exist_ok=True)
    (tmp_path / "cl" / "end.csv").write_text(csv)
    (tmp_path / "p.yaml").write_text(protocol)
    return tmp_path / "p.yaml"


def test_codelist_file_problems_are_located_in_the_file_as_a_spreadsheet_shows_it(tmp_path, monkeypatch):
    _write(tmp_path, csv="code,term\n342891000000105,ok\n,deleted code\n160889006,typo\n\n,,\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProtocolError) as caught:
        load_protocol("p.yaml")
    assert caught.value.exit_code == ExitCode.BAD_PROTOCOL
    assert [str(p) for p in caught.value.problems] == [
        "cl/end.csv, row 3, column 'code': missing code\n  HINT: give the code, or delete the row",
        "cl/end.csv, row 4, column 'code': invalid SNOMED CT code '160889006': the Verhoeff check digit is wrong "
        "(a typing error?)",
    ]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"], ids=["utf8", "utf8-bom", "windows-1252", "utf16-bom"]
)
def test_codelist_files_are_read_in_the_encodings_editors_save(tmp_path, encoding):
    path = _write(tmp_path)
    text = "code,term\r\n342891000000105,Child\u2019s plan ended \u2013 see letter\r\n"
    (tmp_path / "cl" / "end.csv").write_bytes(text.encode(encoding))
    [code] = load_protocol(path).codelists["cp_end"].codes
    assert (code.code, code.term) == ("342891000000105", "Child\u2019s plan ended \u2013 see letter")


def test_codes_a_spreadsheet_has_rounded_get_a_hint(tmp_path):
    rows = ["code,term", "3.42891E+14,ended", "1129631000000100,sixteen digits", "342891000000105.0,ended"]
    path = _write(tmp_path, csv="\n".join(rows) + "\n")
    hint = (
        "\n  HINT: spreadsheet programs show long numbers like 3.42891E+14 and keep only 15 digits: open the file "
        "with the 'code' column formatted as text (or edit it in a text editor) and restore the codes"
    )
    csv_file = tmp_path / "cl" / "end.csv"
    assert _messages(path) == [
        f"{csv_file}, row 2, column 'code': invalid SNOMED CT code '3.42891E+14': a SNOMED CT identifier is 6 to "
        "18 digits with no leading zero" + hint,
        f"{csv_file}, row 3, column 'code': invalid SNOMED CT code '1129631000000100': the Verhoeff check digit "
        "is wrong (a typing error?)" + hint,
        f"{csv_file}, row 4, column 'code': invalid SNOMED CT code '342891000000105.0': a SNOMED CT identifier is "
        "6 to 18 digits with no leading zero" + hint,
    ]


def test_a_codelist_file_problem_does_not_hide_other_problems_of_that_codelist(tmp_path):
    protocol = PROTOCOL.replace("{file: cl/end.csv}", "{file: cl/end.csv, code_system: snowmed}")
    path = _write(tmp_path, protocol, csv="code,term\n,gone\n")
    assert _messages(path) == [
        f"{tmp_path / 'cl' / 'end.csv'}, row 2, column 'code': missing code\n  HINT: give the code, or delete the row",
        f"{path}, line 5, codelists.cp_end.code_system: expected 'snomed', 'read2', 'ctv3' or 'emis', got 'snowmed'",
    ]


def test_missed_appointment_statuses_are_those_of_the_extract_a_protocol_may_count_as_missed(tmp_path):
    """The protocol picks which statuses can be missed; the words must be the extract schema's, or no
    appointment would ever match them."""
    assert set(MISSABLE_STATUSES) <= set(APPOINTMENT_STATUSES)
    protocol = PROTOCOL + (
        "  - {id: dna, label: DNA, kind: missed_appointments, window: 1 year, statuses: [attended], weight: 1, "
        "tier: minor}\n"
    )
    path = _write(tmp_path, protocol)
    assert _messages(path) == [
        f"{path}, line 8, criteria[1] (id 'dna').statuses[0]: expected 'was_not_brought', 'did_not_attend' or "
        "'cancelled_by_patient', got 'attended'"
    ]


def test_inline_codes_are_checked_even_when_a_file_is_also_given(tmp_path):
    protocol = PROTOCOL.replace("{file: cl/end.csv}", '{file: cl/end.csv, codes: ["342891000000106"]}')
    path = _write(tmp_path, protocol)
    assert _messages(path) == [
        f"{path}, line 5, codelists.cp_end.file: give either 'codes' or 'file', not both",
        f"{path}, line 5, codelists.cp_end.codes[0]: invalid SNOMED CT code '342891000000106': the Verhoeff "
        "check digit is wrong (a typing error?)",
    ]


def test_an_unknown_concern_codelist_is_listed_with_the_other_problems(tmp_path):
    protocol = PROTOCOL + "concern:\n  codes: cp_ned\n  end: cp_ende\n  window: 2 yeers\n"
    path = _write(tmp_path, protocol)
    assert _messages(path) == [
        f"{path}, line 9, concern.codes: unknown codelist 'cp_ned' (did you mean 'cp_end'?)",
        f"{path}, line 10, concern.end: unknown codelist 'cp_ende' (did you mean 'cp_end'?)",
        f"{path}, line 11, concern.window: expected a duration like '12 months', got '2 yeers'",
    ]


def test_a_concern_also_group_is_checked_like_the_concern_codes(tmp_path):
    protocol = PROTOCOL + (
        "concern:\n  also:\n    - codes: cp_ned\n      end: cp_ende\n      window: 12 mnths\n"
        "    - end: cp_end\n    - {codes: cp_end, windw: 2 years}\n"
    )
    path = _write(tmp_path, protocol)
    assert _messages(path) == [
        f"{path}, line 10, concern.also[0].codes: unknown codelist 'cp_ned' (did you mean 'cp_end'?)",
        f"{path}, line 11, concern.also[0].end: unknown codelist 'cp_ende' (did you mean 'cp_end'?)",
        f"{path}, line 12, concern.also[0].window: expected a duration like '12 months', got '12 mnths'",
        f"{path}, line 13, concern.also[1].codes: required field is missing",
        f"{path}, line 14, concern.also[2].windw: unknown field 'windw' (did you mean 'window'?)",
    ]


def test_concern_criteria_must_exist_read_the_own_record_and_not_need_concern(tmp_path):
    protocol = PROTOCOL + (
        "  - {id: sib, label: Sibling CP, kind: coded_active, start: cp, record: sibling, weight: 4, tier: minor}\n"
        "  - {id: gated, label: Gated, kind: coded_active, start: cp, requires_concern: true, weight: 1, tier: minor}\n"
        "concern:\n  criteria: [cpp, sib, gated, cp]\n"
    )
    path = _write(tmp_path, protocol)
    assert _messages(path) == [
        f"{path}, line 11, concern.criteria: unknown criterion 'cpp' (did you mean 'cp'?)",
        f"{path}, line 11, concern.criteria: 'sib' does not read the patient's own record",
        f"{path}, line 11, concern.criteria: 'gated' itself requires concern, so it cannot give it",
    ]


@pytest.mark.parametrize(
    "window,message",
    [
        ("3000 years", "expected a duration of at most 150 years, got '3000 years'"),
        ("1801 months", "expected a duration of at most 150 years (1800 months), got '1801 months'"),
        ("7827 weeks", "expected a duration of at most 150 years (7826 weeks), got '7827 weeks'"),
        ("99999999999 days", "expected a duration of at most 150 years (54787 days), got '99999999999 days'"),
    ],
)
def test_durations_longer_than_150_years_are_located_protocol_errors(tmp_path, window, message):
    path = _write(tmp_path, PROTOCOL.replace("tier: significant}", f"tier: significant, window: {window}}}"))
    assert _messages(path) == [f"{path}, line 7, criteria[0] (id 'cp').window: {message}"]


@pytest.mark.parametrize("window", ["150 years", "1800 months", "7826 weeks", "54787 days"])
def test_the_longest_durations_allowed_give_a_window_start(tmp_path, window):
    from datetime import date

    path = _write(tmp_path, PROTOCOL.replace("tier: significant}", f"tier: significant, window: {window}}}"))
    assert load_protocol(path).criteria[0].window.before(date(2026, 11, 24)).year == 1876


def test_a_zero_half_life_is_a_located_error(tmp_path):
    path = _write(tmp_path, PROTOCOL.replace("tier: significant}", "tier: significant, half_life: 0 days}"))
    assert _messages(path) == [
        f"{path}, line 7, criteria[0] (id 'cp').half_life: expected a duration above zero, got '0 days' "
        "(a zero half-life would make the criterion's weight 0)"
    ]


def test_a_criterion_without_an_id_is_named_by_its_index_only(tmp_path):
    path = _write(tmp_path, PROTOCOL.replace("id: cp, ", ""))
    assert _messages(path) == [f"{path}, line 7, criteria[0].id: required field is missing"]


def test_a_protocol_saved_as_windows_1252_is_read(tmp_path):
    """An old Notepad saves 'é' as one byte; that used to be an internal error (exit 1)."""
    from casefind.protocol import default_protocol_path, load_protocol

    text = default_protocol_path().read_text(encoding="utf-8")
    assert "\nname: " in text
    rules = tmp_path / "vf.yaml"
    rules.write_bytes(text.replace("\nname: ", "\nname: Caf\u00e9 practice - ", 1).encode("cp1252", errors="replace"))
    for name in ("codelists",):
        (tmp_path / name).symlink_to(default_protocol_path().parent / name)
    assert load_protocol(rules).name.startswith("Caf\u00e9 practice - ")


@pytest.mark.parametrize("weight", ["inf", "-inf", "nan", "1e400"])
def test_a_weight_must_be_a_finite_number(tmp_path, weight):
    """An infinite weight would make every score infinite, which no spreadsheet or JSON reader takes."""
    rules = _write(tmp_path, PROTOCOL.replace("weight: 10", f"weight: {weight}"))
    assert _messages(rules) == [f"{rules}, line 7, criteria[0] (id 'cp').weight: expected a finite number"]


def test_a_field_of_another_kind_or_part_says_where_it_belongs(tmp_path):
    rules = tmp_path / "misplaced.yaml"
    rules.write_text(
        "name: t\nversion: '1'\nwindow: 2 months\ncodelists:\n  cp: {codes: ['342191000000101']}\ncriteria:\n"
        "  - {id: sh, kind: coded_in_window, label: SH, codes: [cp], window: 12 months, weight: 1, tier: minor,\n"
        "     end: [cp], minor_criteria_needed: 2}\n"
    )
    assert _messages(rules) == [
        f"{rules}, line 3, window: 'window' is not a field here "
        "(it belongs in concern or a concern.also group or a criterion)",
        f"{rules}, line 8, criteria[0] (id 'sh').end: 'end' is not a field of kind 'coded_in_window' "
        "(only of: coded_active, antenatal_booking)",
        f"{rules}, line 8, criteria[0] (id 'sh').minor_criteria_needed: 'minor_criteria_needed' is not a field "
        "here (it belongs in ranking)",
    ]


def test_yaml_merge_keys_may_override_what_they_bring_in(tmp_path):
    """``<<: *anchor`` copies a criterion; the keys written beside it win, as YAML says. They are not duplicates."""
    rules = _write(
        tmp_path,
        PROTOCOL
        + "  - <<: &sh {id: sh, label: SH, kind: coded_in_window, codes: cp, window: 1 year, weight: 1, tier: minor}\n"
        "  - <<: *sh\n    id: sh_recent\n    label: SH recently\n    window: 1 month\n    weight: 3\n",
    )
    protocol = load_protocol(rules)
    recent = protocol.criterion("sh_recent")
    assert (recent.label, str(recent.window), recent.weight, recent.codes) == ("SH recently", "1 month", 3, ("cp",))
    assert protocol.criterion("sh").weight == 1


def test_a_key_written_twice_beside_a_merge_key_is_still_a_duplicate(tmp_path):
    rules = _write(
        tmp_path,
        PROTOCOL
        + "  - &sh {id: sh, label: SH, kind: coded_in_window, codes: cp, window: 1 year, weight: 1, tier: minor}\n"
        "  - <<: *sh\n    id: sh_recent\n    weight: 3\n    weight: 4\n",
    )
    assert _messages(rules) == [
        f"{rules}, line 12, criteria[2] (id 'sh_recent').weight: duplicate key (the later one would silently win)"
    ]


def test_an_id_a_boolean_and_a_missing_codelist_file_are_said_in_the_leads_words(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: t\nversion: '1'\ncodelists:\n  cp: {file: codelists/cp.csv}\n  cp2: {codes: ['342191000000101']}\n"
        "criteria:\n  - {id: young carer, label: X, kind: coded_active, start: cp2, weight: 1, tier: minor,\n"
        "     requires_concern: yes please}\n"
    )
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert [(p.location, p.message, p.hint) for p in caught.value.problems] == [
        (
            f"{path}, line 4, codelists.cp.file",
            f"cannot read codelist file '{tmp_path / 'codelists' / 'cp.csv'}': No such file or directory",
            f"a codelist's file is found from the protocol file's folder ({tmp_path}): give its path from there",
        ),
        (
            f"{path}, line 7, criteria[0].id",
            "expected lower-case letters, digits and _, starting with a letter (such as young_carer), got "
            "'young carer'",
            None,
        ),
        (
            f"{path}, line 8, criteria[0] (id 'young carer').requires_concern",
            "expected true or false, got 'yes please'",
            None,
        ),
    ]
