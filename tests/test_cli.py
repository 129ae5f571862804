"""The command line as users meet it: README commands, help text, exit codes, messages."""

from __future__ import annotations

import itertools
import re
import shlex

import pytest
from typer.testing import CliRunner

from casefind import schema
from casefind.cli import app
from tests.conftest import REPO

runner = CliRunner()
README = (REPO / "README.md").read_text()


def readme_commands() -> dict[str, str]:
    blocks = re.findall(r"<!-- command:(\w+) -->\n```bash\n(.*?)\n```", README, flags=re.S)
    return dict(blocks)


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert set(commands) == {"run", "test"}
    assert "pip install ." in commands["run"] and "casefind build-list sample_data" in commands["run"]
    assert "pip install '.[test]'" in commands["test"] and "pytest" in commands["test"]


def test_readme_run_command_builds_the_sample_list(monkeypatch):
    monkeypatch.chdir(REPO)
    casefind_part = readme_commands()["run"].split("&&")[-1].strip()
    args = shlex.split(casefind_part)[1:]  # drop the executable; run in-process
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Discussion list for the meeting on 24 November 2026" in result.output
    summary = result.output.strip().splitlines()[-1]
    assert re.search(r"listed \d+; as of 2026-11-24; protocol 'Vulnerable families", summary)
    listed = int(re.search(r"listed (\d+)", summary).group(1))
    assert listed > 10


def test_ci_runs_the_readme_commands():
    ci = (REPO / ".ci" / "run").read_text()
    assert "readme_command run" in ci and "readme_command test" in ci


def test_every_command_has_help_and_is_documented():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert command.help and len(command.help) > 20, name
        assert f"casefind {name}" in README, f"README does not mention `casefind {name}`"
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"})  # one option a line
        assert result.exit_code == 0
        # an on/off switch must not look as if it took a value (typer shows bool options as `<bool>`)
        switches = [p.opts[0] for p in command.params if getattr(p, "is_flag", False)]
        for line in result.output.splitlines():
            assert not any(s in line and "<bool>" in line for s in switches), (name, line)


def test_readme_schema_table_is_generated_from_the_schema():
    assert schema.markdown_table() in README


def test_schema_command_lists_every_column(monkeypatch):
    from rich.console import Console

    from casefind import cli

    monkeypatch.setattr(cli, "out", Console(width=250))
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    for table in schema.TABLES.values():
        for col in table.columns:
            assert col.name in result.output


@pytest.mark.parametrize(
    "args,code,message",
    [
        (
            ["build-list", "{extract}", "--as-of", "24/11/2026"],
            2,
            "--as-of: expected a date as YYYY-MM-DD, got '24/11/2026'",
        ),
        (
            ["build-list", "{extract}", "--as-of", "0224-11-24"],
            2,
            "--as-of: 0224-11-24 is not between 1850 and 2200\n  HINT: check the year",
        ),
        (["explain", "{extract}", "P1", "--as-of", "2260-01-01"], 2, "--as-of: 2260-01-01 is not between 1850"),
        (["build-list", "{extract}", "--out", "list.txt"], 2, "--out: unknown format '.txt'"),
        (["build-list", "{missing}"], 2, "no such directory"),
        (["build-list", "{extract}", "--rules", "{bad_rules}"], 3, "unknown kind 'coded_sometimes'"),
    ],
)
def test_exit_codes_and_messages(make_extract, tmp_path, args, code, message):
    folder = make_extract(patients="patient_id | date_of_birth\nP1 | 2015-01-01")
    values = {
        "extract": str(folder),
        "missing": str(tmp_path / "nope"),
        "bad_rules": str(REPO / "tests" / "fixtures" / "bad_rules" / "many_problems.yaml"),
    }
    result = runner.invoke(app, [a.format(**values) for a in args], terminal_width=300)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_extract_stops_and_names_the_row(make_extract):
    folder = make_extract(
        patients="patient_id | date_of_birth\nP1 | 2015-01-01",
        events="patient_id | code | date\nP1 | 342191000000101 | 31/02/2024",
    )
    result = runner.invoke(app, ["build-list", str(folder)], terminal_width=300)
    assert result.exit_code == 2
    assert "events.csv, row 2, column 'date': invalid date '31/02/2024'" in result.output


def test_skip_bad_rows_writes_private_rejects_beside_the_output(make_extract, tmp_path):
    folder = make_extract(
        patients="patient_id | date_of_birth\nP1 | 2015-01-01",
        events="patient_id | code | date\nP1 | 342191000000101 | 2026-01-01\nP1 | 135891007 | 31/02/2024",
    )
    out = tmp_path / "list.csv"
    result = runner.invoke(
        app,
        ["build-list", str(folder), "--as-of", "2026-11-24", "--skip-bad-rows", "--out", str(out)],
        terminal_width=300,
    )
    assert result.exit_code == 0, result.output
    rejects = tmp_path / "list.csv.rejects.csv"
    assert rejects.stat().st_mode & 0o777 == 0o600
    assert "invalid date '31/02/2024'" in rejects.read_text()
    assert "1 bad row was left out" in result.output
    assert f"Wrote {out}, list.csv.provenance.json and list.csv.rejects.csv." in result.output


def test_a_protocol_file_that_cannot_be_read_is_a_protocol_problem(make_extract, tmp_path, monkeypatch):
    """Exit code 3 with casefind's message, not a usage error from the command-line parser (exit code 2)."""
    import os
    from pathlib import Path

    folder = make_extract(patients="patient_id | date_of_birth\nP1 | 2015-01-01")
    rules = tmp_path / "rules.yaml"
    rules.write_text("name: x\n")
    real_access, real_read = os.access, Path.read_bytes

    def access(path, mode, *args, **kwargs):  # as for a file its owner made unreadable to others
        return False if str(path) == str(rules) else real_access(path, mode, *args, **kwargs)

    def read_bytes(path):
        if str(path) == str(rules):
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = runner.invoke(app, ["build-list", str(folder), "--rules", str(rules)], terminal_width=300)
    assert result.exit_code == 3, result.output
    assert f"error: {rules}: cannot read the protocol file: Permission denied" in result.output


def test_an_earlier_list_is_not_replaced_without_overwrite(make_extract, tmp_path, monkeypatch):
    good = "patient_id | code | date\nP1 | 342191000000101 | 2026-01-01"
    bad = good + "\nP1 | 135891007 | 31/02/2024"
    patients = "patient_id | date_of_birth\nP1 | 2015-01-01"
    out = tmp_path / "list.csv"
    args = ["build-list", "--as-of", "2026-11-24", "--skip-bad-rows", "--out", str(out)]
    first = runner.invoke(app, [*args, str(make_extract(patients=patients, events=bad))], terminal_width=300)
    assert first.exit_code == 0, first.output
    written = {path.name: path.read_bytes() for path in tmp_path.glob("list.*")}
    assert set(written) == {"list.csv", "list.csv.provenance.json", "list.csv.rejects.csv"}

    clean = make_extract(patients=patients, events=good)
    again = runner.invoke(app, [*args, str(clean)], terminal_width=300)
    assert again.exit_code == 4
    for name in written:
        assert f"- {tmp_path / name}: already exists (from an earlier run?)" in again.output
    assert "add --overwrite to replace these files" in again.output
    assert {path.name: path.read_bytes() for path in tmp_path.glob("list.*")} == written

    replaced = runner.invoke(app, [*args, "--overwrite", str(clean)], terminal_width=300)
    assert replaced.exit_code == 0, replaced.output
    assert sorted(path.name for path in tmp_path.glob("list.*")) == ["list.csv", "list.csv.provenance.json"]
    provenance = tmp_path / "list.csv.provenance.json"
    assert provenance.read_bytes() != written[provenance.name]  # the new run's: no rejects file
    assert out.stat().st_mode & 0o777 == 0o600

    # Without --out the rejects file is named by the meeting date, in the current folder: kept the same way.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "casefind-rejects-2026-11-24.csv").write_text("kept")
    no_out = ["build-list", "--as-of", "2026-11-24", "--skip-bad-rows", str(clean)]
    refused = runner.invoke(app, no_out, terminal_width=300)
    assert refused.exit_code == 4
    assert "Run from another folder, or give --out, or add --overwrite" in refused.output  # no --out was given
    assert (tmp_path / "casefind-rejects-2026-11-24.csv").read_text() == "kept"


def test_extract_text_prints_as_typed_never_as_terminal_markup(make_extract, monkeypatch):
    from casefind import cli

    monkeypatch.setattr(cli.out, "width", 300)  # no wrapping inside cells
    folder = make_extract(
        patients="patient_id | family_name | given_name | date_of_birth\n"
        "P1 | O[b]Brien | [/]Amy\u202enomis | 2015-01-01\nP2 | | | 2016-01-01",
        events="patient_id | code | date | term\n"
        "P1 | 342191000000101 | 2026-01-01 | [red]Child protection plan[/red]\n"
        "P2 | 342191000000101 | 2026-02-01 | \x1b[2JCP plan",
    )
    result = runner.invoke(app, ["build-list", str(folder), "--as-of", "2026-11-24"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "O[b]Brien, [/]Amy" in result.output
    assert "[red]Child protection plan[/red]" in result.output
    assert "\x1b" not in result.output and "\ufffd[2JCP plan" in result.output  # the escape character is shown as �
    assert "\u202e" not in result.output and "Amy\ufffdnomis" in result.output  # a right-to-left override too
    assert "(no name; patient_id P2)" in result.output  # staff can still find the child

    error = runner.invoke(app, ["build-list", str(folder), "--rules", "[/]rules.yaml"], terminal_width=300)
    assert error.exit_code == 3, error.output
    assert "error: [/]rules.yaml: cannot read the protocol file" in error.output


@pytest.mark.parametrize("width", [80, 300])
def test_a_line_break_or_tab_in_extract_text_keeps_each_child_on_its_own_line(tmp_path, monkeypatch, width):
    from casefind import cli

    monkeypatch.setattr(cli.out, "width", width)
    folder = tmp_path / "extract"
    folder.mkdir()
    # quoted CSV fields may hold line breaks
    (folder / "patients.csv").write_text(
        'patient_id,family_name,given_name,date_of_birth\r\nP1,Nowak,"Jakub\nJohn",2015-01-01\r\n', newline=""
    )
    (folder / "events.csv").write_text(
        'patient_id,code,date,term\r\nP1,342191000000101,2026-01-01,"CP\tplan\r\nstarted"\r\n', newline=""
    )
    result = runner.invoke(app, ["build-list", str(folder), "--as-of", "2026-11-24"], terminal_width=width)
    assert result.exit_code == 0, result.output
    assert "Nowak, Jakub\ufffdJohn" in result.output or "Jakub\ufffdJohn Nowak" in result.output
    assert "CP\ufffdplan\ufffd\ufffdstarted" in result.output
    assert not any(line.strip().startswith("John") for line in result.output.splitlines())


def test_internal_errors_hide_details(monkeypatch, make_extract):
    from casefind import api

    def boom(*args, **kwargs):
        raise ValueError("patient SECRET-123 broke something")

    monkeypatch.setattr(api, "build_list", boom)
    folder = make_extract(patients="patient_id | date_of_birth\nP1 | 2015-01-01")
    result = runner.invoke(app, ["build-list", str(folder)], terminal_width=300)
    assert result.exit_code == 1
    assert "SECRET" not in result.output
    assert "CASEFIND_DEBUG=1" in result.output


def test_readme_families_example_is_what_the_sample_gives():
    from datetime import date

    from casefind import api

    block = re.search(r"<!-- families-example -->\n```text\n(.*?)\n```", README, flags=re.S).group(1)
    evidence_lines = [ln.strip() for ln in block.splitlines()[1:]]
    result = api.build_list(REPO / "sample_data", as_of=date(2026, 11, 24))
    listed = result.entries.set_index("rank")
    for line in evidence_lines:
        match = re.match(r"(\d+)\s+([^,]+), (\S+)\s+(\d+)\s+(.*)", line)
        if match:
            rank, family_name, given_name, age, evidence = match.groups()
            row = listed.loc[int(rank)]
            assert (row.family_name, row.given_name, str(row.age)) == (family_name, given_name, age)
        else:
            evidence = line
        assert evidence in result.entries["evidence"].str.cat(sep=" | ")
    header = block.splitlines()[0]
    family_id = re.search(r"\((F[0-9a-f]{8})\)", header).group(1)
    adults = result.adults[result.adults["family_id"] == family_id]
    for relation, patient in re.findall(r"(\w[\w ]*) \(patient (\w+)\)", header.split("Adults: ")[1]):
        assert ((adults["patient_id"] == patient) & (adults["relation"] == relation)).any()


def test_full_names_linked_adults_and_default_does_not(make_extract, tmp_path):
    from datetime import date

    from casefind import api

    folder = make_extract(
        patients="patient_id | given_name | family_name | date_of_birth\nkid | Amy | Khan | 2015-01-01\n"
        "mum | Sara | Khan | 1990-01-01",
        relationships="patient_id | related_patient_id | relationship\nkid | mum | mother",
        events="patient_id | code | date\nkid | 342191000000101 | 2026-01-01",
    )
    plain = api.build_list(folder, as_of=date(2026, 11, 24)).entries["linked_adults"].tolist()
    full = api.build_list(folder, as_of=date(2026, 11, 24), full=True).entries["linked_adults"].tolist()
    assert plain == ["mother (patient mum)"]
    assert full == ["mother (patient mum, Sara Khan)"]


def test_list_is_stacked_on_a_narrow_terminal_and_a_table_on_a_wide_one(make_extract, monkeypatch):
    from casefind import cli

    folder = make_extract(
        patients="patient_id | nhs_number | family_name | given_name | date_of_birth\n"
        "P1 | 9434765919 | Smith | Amy | 2015-01-01",
        events="patient_id | code | date | term\n"
        "P1 | 342191000000101 | 2026-01-01 | Child protection plan with a long description of its category",
    )
    args = ["build-list", str(folder), "--as-of", "2026-11-24"]
    monkeypatch.setattr(cli.out, "width", 60)
    narrow = runner.invoke(app, args).output.splitlines()
    child = next(i for i, line in enumerate(narrow) if "Smith, Amy" in line)
    assert narrow[child] == "  1. Smith, Amy, age 11, NHS 9434765919, score 10"
    reasons = list(itertools.takewhile(lambda line: line.startswith("     "), narrow[child + 1 :]))
    assert len(reasons) > 1, "the reason is wrapped under the child, not cut off"
    assert all(len(line) <= 60 and line == line.rstrip() for line in reasons)
    assert narrow[child + 1 + len(reasons)].startswith(("warning: ", "Read 1 patients"))  # then the summary
    assert "Child protection plan with a long description of its category" in " ".join(x.strip() for x in reasons)
    assert "┃" not in "".join(narrow)

    monkeypatch.setattr(cli.out, "width", 200)
    wide = runner.invoke(app, args).output
    assert "┃ Name" in wide and "│ Smith, Amy" in wide


def test_rules_copies_the_bundled_protocol_to_edit_and_never_over_an_edited_copy(tmp_path):
    from casefind.protocol import default_protocol_path, load_protocol

    target = tmp_path / "my rules"
    result = runner.invoke(app, ["rules", str(target)], terminal_width=300)
    assert result.exit_code == 0, result.output
    copied = load_protocol(target / "vulnerable-families.yaml")  # its codelist paths resolve in the copy
    assert copied.fingerprint() == load_protocol(default_protocol_path()).fingerprint()
    assert (target / "mapping.example.yaml").is_file()
    assert "## 1. Codes per criterion" in (target / "safeguarding-codes.md").read_text(encoding="utf-8")
    (target / "vulnerable-families.yaml").write_text("edited")
    again = runner.invoke(app, ["rules", str(target)], terminal_width=300)
    assert again.exit_code == 4 and "vulnerable-families.yaml: already exists" in again.output
    assert (target / "vulnerable-families.yaml").read_text() == "edited"
    assert runner.invoke(app, ["rules", str(target), "--overwrite"]).exit_code == 0
    assert load_protocol(target / "vulnerable-families.yaml").fingerprint() == copied.fingerprint()


def test_a_reader_that_stops_early_is_not_an_internal_error(tmp_path):
    """``casefind build-list DATA | head``: the list is printed after --out is written; when the reader closes
    the pipe casefind stops printing and exits 0 (rich's default, exit 1, is our internal-error code)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "list.csv"
    command = [sys.executable, "-c", "from casefind.cli import main; main()", "build-list", str(REPO / "sample_data")]
    env = {**os.environ, "COLUMNS": "200"}  # the wide table: more than a pipe holds, so a write meets the closed pipe
    with subprocess.Popen(
        [*command, "--as-of", "2026-11-24", "--all", "--full", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert b"Discussion list" in proc.stdout.readline()  # the title, centred over the table
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, stderr
    assert "internal error" not in stderr and "BrokenPipe" not in stderr
    assert out.exists() and out.with_name("list.csv.provenance.json").exists()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_leaves_no_copy_of_the_extract_and_says_so(make_extract, tmp_path, signame):
    """A scheduler's timeout (SIGTERM) or Ctrl-C while the extract is read: the work folder (which can hold a
    UTF-8 copy of a whole CSV file) and DuckDB's spill folder are removed, and the exit code is 128 + the
    signal's number, not an internal error."""
    import os
    import signal
    import subprocess
    import sys

    folder = make_extract(
        patients="patient_id | date_of_birth\nP1 | 2015-01-01",
        events="patient_id | code | date\nP1 | 342191000000101 | 2026-01-01",
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = (
        "import os, signal\n"
        "from casefind import extract\n"
        "from casefind.cli import app\n"
        "read_rows = extract._read_rows\n"
        "def stopped(*args, **kwargs):\n"
        f"    os.kill(os.getpid(), signal.{signame})\n"
        "    return read_rows(*args, **kwargs)\n"
        "extract._read_rows = stopped\n"
        f"app(['build-list', {str(folder)!r}, '--as-of', '2026-11-24'])\n"
    )
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 128 + getattr(signal, signame), done.stderr
    assert f"stopped: {signame} received" in done.stderr
    assert "internal error" not in done.stderr
    assert list(scratch.iterdir()) == []
