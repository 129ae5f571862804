"""The synthetic practice generator: deterministic, schema-conformant, and planted exactly as it says.

The planted cases are checked end to end: ``casefind.api.build_list`` runs once on the committed
``sample_data`` with the default protocol, and every planted expectation (listed, routed to a woman's
children, held back, near miss) must hold on the real list; nothing unplanted may be listed.
"""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import date
from pathlib import Path

import pytest

from casefind.api import build_list
from casefind.codes import nhs_number_valid, sctid_problem
from casefind.dates import age_on
from casefind.errors import OptionError
from casefind.protocol import default_protocol_path, load_protocol
from casefind.sample import AS_OF, MIN_PATIENTS, generate_practice, planted_markdown
from casefind.schema import APPOINTMENT_STATUSES, CODE_SYSTEMS, TABLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
REFERENCE = ROOT.parent / "shared" / "reference"
SMALL = 600
NEAR_MISSES = (  # labels of planted near misses: these patients must not be listed at all
    "cp_plan_ended", "child_in_need_ended", "looked_after_ended", "cause_for_concern_ended",
    "cause_for_concern_old", "exploitation_old", "new_birth_9_weeks", "booking_delivered", "booking_old",
    "unborn_concern_old", "cp_plan_deregistered", "cp_plan_died", "cp_plan_age_18",
)  # fmt: skip


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(default_protocol_path())


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    """The practice the documented command makes (the committed sample_data, as the drift test checks)."""
    out = tmp_path_factory.mktemp("practice")
    return out, generate_practice(out, patients=5000, seed=1)


@pytest.fixture(scope="module")
def case_list():
    """The default protocol's list for the committed sample, built once by the real engine."""
    return build_list(SAMPLE, as_of=date(2026, 11, 24))


def read_table(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def d(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_arguments_give_byte_identical_files(tmp_path, fmt):
    first = generate_practice(tmp_path / "a", patients=SMALL, seed=7, fmt=fmt)
    second = generate_practice(tmp_path / "b", patients=SMALL, seed=7, fmt=fmt)
    assert [p.name for p in first.files] == [f"{name}.{fmt}" for name in TABLES]
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert first.planted == second.planted


def test_another_seed_gives_another_practice(tmp_path):
    one = generate_practice(tmp_path / "a", patients=SMALL, seed=1)
    two = generate_practice(tmp_path / "b", patients=SMALL, seed=2)
    assert (tmp_path / "a" / "events.csv").read_bytes() != (tmp_path / "b" / "events.csv").read_bytes()
    assert {c.criterion_id for c in one.planted} == {c.criterion_id for c in two.planted}


def test_too_few_patients_is_refused(tmp_path):
    with pytest.raises(OptionError, match=f"at least {MIN_PATIENTS}"):
        generate_practice(tmp_path, patients=MIN_PATIENTS - 1)


def test_a_folder_holding_an_extract_is_not_overwritten_without_overwrite(tmp_path):
    from typer.testing import CliRunner

    from casefind.cli import app

    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "events.parquet").write_bytes(b"a real practice's events")
    args = ["sample-data", str(folder), "--patients", str(SMALL)]
    refused = CliRunner().invoke(app, args, terminal_width=300)
    assert refused.exit_code == 4
    assert f"{folder / 'events.parquet'}: already exists" in refused.output
    assert sorted(p.name for p in folder.iterdir()) == ["events.parquet"]
    assert (folder / "events.parquet").read_bytes() == b"a real practice's events"

    replaced = CliRunner().invoke(app, [*args, "--overwrite"], terminal_width=300)
    assert replaced.exit_code == 0, replaced.output
    # One extract, in CSV: the Parquet events file would have made 'events' ambiguous.
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.csv" for name in TABLES)


def test_parquet_holds_the_same_rows_as_csv(tmp_path):
    import pyarrow.parquet as pq

    generate_practice(tmp_path / "c", patients=SMALL, seed=3, fmt="csv")
    generate_practice(tmp_path / "p", patients=SMALL, seed=3, fmt="parquet")
    for name, table in TABLES.items():
        parquet = pq.read_table(tmp_path / "p" / f"{name}.parquet")
        assert tuple(parquet.column_names) == table.column_names
        assert all(str(f.type) == "string" for f in parquet.schema)
        rows = [tuple(v or "" for v in row.values()) for row in parquet.to_pylist()]
        assert rows == [tuple(r.values()) for r in read_table(tmp_path / "c", name)], name


# ------------------------------------------------------------------------------- committed sample_data


def documented_command() -> dict[str, str]:
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    match = re.search(r"casefind sample-data sample_data --patients (\d+) --seed (\d+)", readme)
    assert match, "sample_data/README.md must show the exact command that made the sample"
    as_of = re.search(r"as-of date (\d{4}-\d{2}-\d{2})", readme)
    assert as_of, "sample_data/README.md must state the as-of date"
    return {"patients": match.group(1), "seed": match.group(2), "as_of": as_of.group(1), "readme": readme}


def test_committed_sample_is_exactly_what_the_documented_command_makes(tmp_path):
    doc = documented_command()
    summary = generate_practice(
        tmp_path, patients=int(doc["patients"]), seed=int(doc["seed"]), as_of=date.fromisoformat(doc["as_of"])
    )
    assert sorted(p.name for p in SAMPLE.iterdir() if p.suffix == ".csv") == sorted(p.name for p in summary.files)
    for path in summary.files:
        # Compare digests: a failing byte-for-byte diff of a 10 MB file would take pytest minutes to render.
        committed, regenerated = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (SAMPLE / path.name, path))
        assert committed == regenerated, f"sample_data/{path.name} has drifted; regenerate it (see its README)"
    assert planted_markdown(summary) in doc["readme"], "the planted table in sample_data/README.md has drifted"


def test_committed_sample_is_small_enough():
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 15_000_000


# --------------------------------------------------------------------------------------------- schema


def test_files_follow_the_extract_schema(practice):
    folder, summary = practice
    for name, table in TABLES.items():
        with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == table.column_names, name
        assert len(rows) - 1 == summary.counts[name]
        for row in rows[1:]:
            assert len(row) == len(table.columns)
            for column, value in zip(table.columns, row, strict=True):
                if column.required:
                    assert value, f"{name}.{column.name} is required"
                if value and column.type == "date":
                    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) and date.fromisoformat(value)
                if value and column.choices:
                    assert value in column.choices
        if table.unique:
            for col in table.unique:
                i = table.column_names.index(col)
                assert len({r[i] for r in rows[1:]}) == len(rows) - 1


def test_every_reference_points_at_a_patient(practice):
    folder, _ = practice
    ids = {r["patient_id"] for r in read_table(folder, "patients")}
    for name in ("events", "relationships", "appointments", "concerns"):
        assert {r["patient_id"] for r in read_table(folder, name)} <= ids, name
    # except the planted father who is not registered at the practice (X ids: no patients row)
    unregistered = {r["related_patient_id"] for r in read_table(folder, "relationships")} - ids
    assert unregistered and all(re.fullmatch(r"X\d{5}", pid) for pid in unregistered)


def test_every_mother_and_father_is_at_least_16_years_older_than_their_child(practice):
    """The engine refuses a birth parent fewer than 12 years older than the child, with a warning: the sample's
    own families must not set it off (a father's age was once drawn apart from his children's)."""
    folder, _ = practice
    born = {r["patient_id"]: d(r["date_of_birth"]) for r in read_table(folder, "patients")}
    gaps = [
        (born[r["patient_id"]] - born[r["related_patient_id"]]).days / 365.25
        for r in read_table(folder, "relationships")
        if r["relationship"] in ("mother", "father") and r["related_patient_id"] in born
    ]
    assert len(gaps) > 1000 and min(gaps) >= 16


def test_registration_and_death_dates_are_consistent(practice):
    folder, _ = practice
    for row in read_table(folder, "patients"):
        born, start, end, died = (
            d(row["date_of_birth"]),
            d(row["registered_from"]),
            d(row["registered_to"]),
            d(row["date_of_death"]),
        )
        assert born <= AS_OF
        assert start is None or born <= start <= AS_OF
        assert end is None or (start or born) < end
        assert died is None or born <= died <= AS_OF
    for row in read_table(folder, "events"):
        assert d(row["date"]) <= AS_OF


def test_nhs_numbers_are_mostly_valid_test_numbers(practice):
    folder, _ = practice
    numbers = [r["nhs_number"] for r in read_table(folder, "patients")]
    given = [n for n in numbers if n]
    valid = [n for n in given if nhs_number_valid(n)]
    assert 0.01 < 1 - len(given) / len(numbers) < 0.05, "some patients have no NHS number"
    assert 0.90 < len(valid) / len(numbers) < 0.99
    assert 0 < len(given) - len(valid) < 0.02 * len(numbers), "a few have a wrong check digit"
    assert all(n.startswith("999") and len(n) == 10 for n in given), "only numbers from the reserved test range"
    assert len(set(given)) == len(given)


def test_codes_are_valid_sctids_or_read_codes(practice):
    folder, _ = practice
    systems = set()
    for row in read_table(folder, "events"):
        system = row["code_system"] or "snomed"
        systems.add(system)
        assert system in CODE_SYSTEMS
        if system == "snomed":
            assert sctid_problem(row["code"]) is None, row["code"]
        else:
            assert re.fullmatch(r"[0-9A-Za-z]{2,5}\.*", row["code"]) and len(row["code"]) == 5
    assert systems == {"snomed", "read2"}


# ---------------------------------------------------------------------------------------------- realism


def test_the_practice_looks_like_a_practice(practice):
    folder, summary = practice
    patients = read_table(folder, "patients")
    ages = [age_on(d(p["date_of_birth"]), AS_OF) for p in patients]
    assert set(range(18)) <= set(ages), "children of every age"
    assert 0.15 < sum(a < 18 for a in ages) / len(ages) < 0.30
    assert max(ages) >= 85
    assert 35 <= summary.events / summary.patients <= 60
    households: dict[str, list[dict]] = {}
    for p in patients:
        if p["household_id"]:
            households.setdefault(p["household_id"], []).append(p)
    assert 1.7 < len(patients) / len(households) < 3.0
    by_id = {p["patient_id"]: p for p in patients}
    relationships = read_table(folder, "relationships")
    assert {"mother", "father", "step-parent", "carer", "sibling"} == {r["relationship"] for r in relationships}
    assert any(r["start_date"] for r in relationships) and any(r["end_date"] for r in relationships)
    different_surname = [
        r
        for r in relationships
        if r["relationship"] in ("mother", "father", "step-parent")
        and r["related_patient_id"] in by_id
        and by_id[r["patient_id"]]["family_name"] != by_id[r["related_patient_id"]]["family_name"]
    ]
    assert len(different_surname) > 50
    statuses = [a["status"] for a in read_table(folder, "appointments")]
    assert statuses.count("attended") / len(statuses) > 0.8
    assert set(APPOINTMENT_STATUSES) == set(statuses)
    events = read_table(folder, "events")
    assert len({e["clinician_id"] for e in events}) >= 8 and all(e["clinician_id"] for e in events)
    assert any(e["value"] for e in events)
    assert read_table(folder, "concerns")


def test_notes_name_no_one(practice):
    folder, summary = practice
    names = set()
    for p in read_table(folder, "patients"):
        names.update((p["family_name"], p["given_name"]))
    for case in summary.planted:
        words = set(re.findall(r"[A-Za-z]+", case.note))
        assert not words & names, case.note


# ---------------------------------------------------------------------------------------- planted cases


def protocol_codes(protocol, criterion) -> set[str]:
    return {c for names in criterion.codelist_refs().values() for n in names for c in protocol.codelists[n].code_values}


def test_planted_codes_come_from_the_protocol_codelists(practice, protocol):
    _, summary = practice
    criteria = {c.id: c for c in protocol.criteria}
    every_protocol_code = {c for cl in protocol.codelists.values() for c in cl.code_values}
    for case in summary.planted:
        assert set(case.codes) <= every_protocol_code, case
        if case.criterion_id in criteria:
            assert case.codes == () or set(case.codes) & protocol_codes(protocol, criteria[case.criterion_id]), case
        else:
            assert case.criterion_id in NEAR_MISSES, case


def test_risk_factor_codes_are_from_the_reference_lists(practice):
    assert REFERENCE.is_dir(), (
        f"{REFERENCE} is missing: the reference code lists live in ../shared beside this checkout, "
        "as in CI (.ci/run); clone or copy shared/ next to the repository"
    )
    known = set(re.findall(r"\b\d{6,18}\b", (REFERENCE / "safeguarding-codes.md").read_text(encoding="utf-8")))
    for path in (REFERENCE / "codelists").glob("*.csv"):
        known |= {row.get("code", "") for row in csv.DictReader(path.open(encoding="utf-8"))}
    _, summary = practice
    for case in summary.planted:
        if case.criterion_id.startswith("parental_") or case.criterion_id == "was_not_brought":
            assert set(case.codes) <= known, case


def test_every_criterion_is_planted_listed_and_not(practice, protocol):
    _, summary = practice
    listed = {c.criterion_id for c in summary.planted if c.expect_listed}
    assert listed == {c.id for c in protocol.criteria}, "every default criterion is listed for someone"
    unlisted = {c.criterion_id for c in summary.planted if not c.expect_listed}
    assert set(NEAR_MISSES) <= unlisted
    gated = {c.id for c in protocol.criteria if c.requires_concern}
    assert {c.criterion_id for c in summary.planted if "held back" in c.note} <= gated
    assert {"parental_alcohol_misuse", "new_birth", "parental_mental_illness"} <= {
        c.criterion_id for c in summary.planted if "held back" in c.note
    }


# ----------------------------------------------------------------------------------- the real engine


def _evidence_routes(case_list) -> tuple[set[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """(child, criterion) pairs on the list, and (relative, criterion) -> children it was routed to."""
    ev = case_list.evidence
    direct = set(zip(ev["patient_id"], ev["criterion_id"], strict=True))
    routed: dict[tuple[str, str], set[str]] = {}
    for child, criterion, via in zip(ev["patient_id"], ev["criterion_id"], ev["via_patient_id"], strict=True):
        if isinstance(via, str) and via != child:
            routed.setdefault((via, criterion), set()).add(child)
    return direct, routed


def test_planted_cases_are_on_the_engines_list_as_planted(practice, protocol, case_list):
    _, summary = practice
    criteria = {c.id for c in protocol.criteria}
    direct, routed = _evidence_routes(case_list)
    listed = set(case_list.entries["patient_id"])
    for case in summary.planted:
        key = (case.patient_id, case.criterion_id)
        if case.expect_listed:
            assert key in direct or routed.get(key), f"planted to be listed, not on the list: {case}"
            if case.routed_to:  # a pregnancy carried to the woman's children; she is not listed for it
                assert routed.get(key) == set(case.routed_to) and key not in direct, case
            elif case.criterion_id in {c.id for c in protocol.criteria if c.lists_adults}:
                assert key in direct and not routed.get(key), f"a woman with no children is listed herself: {case}"
        elif case.criterion_id in criteria:
            assert key not in direct and not routed.get(key), f"planted not to be listed, but is: {case}"
        else:
            assert case.patient_id not in listed, f"near miss {case.criterion_id} is listed: {case}"
            assert not any(via == case.patient_id for via, _ in routed), f"routed from a near miss: {case}"


def test_nothing_unplanted_is_listed(practice, case_list):
    _, summary = practice
    entries = case_list.entries
    got = {
        pid: tuple(sorted(criteria.split(";")))
        for pid, criteria in zip(entries["patient_id"], entries["criteria"], strict=True)
    }
    assert got == summary.expected_listed()


def test_held_back_children_and_data_gaps_are_reported(practice, case_list):
    _, summary = practice
    info = case_list.info
    assert info.held_back_without_concern > 0
    held_back = {c.patient_id for c in summary.planted if "held back" in c.note}
    assert info.held_back_without_concern == len(held_back)
    assert info.data_gaps and all(count > 0 for count in info.data_gaps.values()), info.data_gaps
    notes = dict(zip(case_list.entries["patient_id"], case_list.entries["notes"], strict=True))
    for case in summary.planted:
        if case.expect_listed and "data gap" in case.note:
            assert "data gap" in notes[case.patient_id], case


def test_family_situations_are_in_the_data(practice):
    """The situations of issue 3 are really in the files, as the planted notes describe them."""
    folder, summary = practice
    people = {r["patient_id"]: r for r in read_table(folder, "patients")}
    relationships = read_table(folder, "relationships")
    links = {}
    for r in relationships:
        links.setdefault(r["patient_id"], []).append(r)

    def case(criterion: str, words: str):
        (found,) = [c for c in summary.planted if c.criterion_id == criterion and words in c.note]
        return found, people[found.patient_id]

    # an ended step-parent link to an adult who now lives elsewhere
    found, child = case("parental_alcohol_misuse", "former step-parent")
    (ended,) = [r for r in links[found.patient_id] if r["relationship"] == "step-parent"]
    assert d(ended["end_date"]) < AS_OF
    assert people[ended["related_patient_id"]]["household_id"] not in ("", child["household_id"])
    # separated parents: the father lives in another household
    found, child = case("parental_domestic_abuse", "separated parents")
    (father,) = [people[r["related_patient_id"]] for r in links[found.patient_id] if r["relationship"] == "father"]
    (mother,) = [people[r["related_patient_id"]] for r in links[found.patient_id] if r["relationship"] == "mother"]
    assert mother["household_id"] == child["household_id"] != father["household_id"] != ""
    # half-siblings: one father, different surnames and households, no sibling row
    found, child = case("sibling_cp_plan", "half-sibling")
    (father,) = [r["related_patient_id"] for r in links[found.patient_id] if r["relationship"] == "father"]
    (half,) = [
        pid
        for pid, rows in links.items()
        if pid != found.patient_id and father in {r["related_patient_id"] for r in rows}
    ]
    assert people[half]["family_name"] != child["family_name"]
    assert people[half]["household_id"] != child["household_id"]
    assert not [r for r in links[found.patient_id] if r["relationship"] == "sibling"]
    # a father who left the household: another household now, the father link still recorded
    found, child = case("parental_suicide_self_harm", "left the household")
    (father,) = [people[r["related_patient_id"]] for r in links[found.patient_id] if r["relationship"] == "father"]
    assert father["household_id"] not in ("", child["household_id"])
    # a father not registered here: a relationship with no patients row
    found, _ = case("parental_domestic_abuse", "not registered")
    assert [
        r for r in links[found.patient_id] if r["relationship"] == "father" and r["related_patient_id"] not in people
    ]
    # a child under 5 with no linked adult
    found, child = case("cause_for_concern", "no linked adult")
    assert age_on(d(child["date_of_birth"]), AS_OF) < 5 and found.patient_id not in links
    assert not [
        p for p in people.values()
        if p["household_id"] == child["household_id"] and age_on(d(p["date_of_birth"]), AS_OF) >= 18
    ]  # fmt: skip


def test_only_planted_children_miss_appointments_repeatedly(practice, protocol):
    folder, summary = practice
    (criterion,) = [c for c in protocol.criteria if c.id == "was_not_brought"]
    since = criterion.window.before(AS_OF)
    wnb_codes = protocol_codes(protocol, criterion)
    born = {r["patient_id"]: d(r["date_of_birth"]) for r in read_table(folder, "patients")}
    days: dict[str, set[date]] = {}
    for a in read_table(folder, "appointments"):
        if a["status"] in criterion.statuses and since <= d(a["date"]) <= AS_OF:
            days.setdefault(a["patient_id"], set()).add(d(a["date"]))
    for e in read_table(folder, "events"):
        if e["code"] in wnb_codes and since <= d(e["date"]) <= AS_OF:
            days.setdefault(e["patient_id"], set()).add(d(e["date"]))
    repeated = {pid for pid, missed in days.items() if len(missed) >= 2 and age_on(born[pid], AS_OF) < 18}
    planted = {c.patient_id for c in summary.planted if c.criterion_id == "was_not_brought"}
    assert repeated <= planted and planted - repeated, "background children miss at most one appointment a year"
