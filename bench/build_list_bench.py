"""Benchmark ``casefind.api.build_list`` at ICB scale against a bare DuckDB pass over the same events.

    python bench/build_list_bench.py                      # 1M patients, 50M events (generated once, cached)
    python bench/build_list_bench.py --patients 100000    # a quick run

Measures, each in its own subprocess so its peak RSS is its own:
  (a) build_list(data_dir, as_of=2026-11-24) with the default protocol;
  (b) the baseline: one DuckDB query joining events.parquet to every code in the protocol's codelists,
      grouped by patient - the least work any implementation must do;
  (c) a reference, not a target: one DuckDB pass that checks every event row (date, patient, code) and
      keeps the protocol's events - the least work of an implementation that validates every row;
  (d) the whole ``casefind build-list`` command on the committed 5,000-patient sample_data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

AS_OF = date(2026, 11, 24)
TARGET_RATIO = 3.0
TARGET_RSS_MB = 2500
TARGET_SAMPLE_SECONDS = 2.0
CSV_PATIENTS = 100_000  # the CSV measure: a large practice (or a small PCN), 5M events with the default density
GENERATOR_VERSION = "1"  # bump when the generated data changes, so cached copies are rebuilt

# Share of events carrying a code from the protocol's codelists: rare, as in real records.
PROTOCOL_HIT_RATE = 0.003
SYNTHETIC_BACKGROUND_CODES = 3000  # extra distinct (made-up but well-formed) SCTIDs, for realistic cardinality


# ------------------------------------------------------------------------------------------- generation


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _background_codes() -> tuple[list[str], list[str]]:
    """Real background concepts from the sample generator, plus made-up SCTIDs with valid check digits."""
    from casefind import sample
    from casefind.codes import verhoeff_check_digit

    entries = [e for e, _ in sample._CHILD_POOL + sample._ADULT_POOL]
    entries += list(sample._SMOKING + sample._CONTRACEPTION + (sample.VACCINATION, sample.MMR))
    entries += [(dx[0], dx[1]) for dx, _, _ in sample._CONDITIONS.values()]
    codes = {e[0]: e[1] for e in entries}
    real = list(codes)
    codes_out, terms_out = [], []
    # real concepts are the common ones: repeat them so they make up most background events
    for _ in range(100):
        codes_out += real
        terms_out += [codes[c] for c in real]
    for n in range(SYNTHETIC_BACKGROUND_CODES):
        stem = f"{9_100_000 + n * 7}00"  # partition 00 (a concept), 9-10 digits
        codes_out.append(stem + verhoeff_check_digit(stem))
        terms_out.append(f"Background concept {n}")
    return codes_out, terms_out


def _protocol_codes() -> tuple[list[str], list[str], list[int]]:
    """Protocol codes with weights: safeguarding and booking codes often, delivery codes sometimes."""
    from casefind.protocol import default_protocol_path, load_protocol

    protocol = load_protocol(default_protocol_path())
    codes, terms, weights = [], [], []
    seen = set()
    for name, codelist in sorted(protocol.codelists.items()):
        weight = 1 if name == "pregnancy_ended" else 20
        for c in codelist.codes:
            if c.code not in seen:
                seen.add(c.code)
                codes.append(c.code)
                terms.append(c.term)
                weights.append(weight)
    return codes, terms, weights


def generate(data_dir: Path, patients: int, events_per_patient: int) -> None:
    """Write patients.parquet and events.parquet (every column text) with vectorised DuckDB SQL.

    Pseudo-random values come from ``hash(row, salt)``, so the data are the same on every run.
    """
    import duckdb

    from casefind.sample import _FAMILY_NAMES, _GIVEN_F, _GIVEN_M, CLINICIANS_ALL

    tmp = data_dir.with_name(data_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{tmp / 'duckdb_tmp'}'")
    con.execute("SET memory_limit = '3GB'")
    as_of = f"DATE '{AS_OF.isoformat()}'"

    def lookup(name: str, values: list[str]) -> None:
        """A small table (ix 0..n-1, value) to join on, instead of indexing a list literal per row."""
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT (generate_subscripts(v, 1) - 1)::BIGINT AS ix, "
                    f"unnest(v) AS value FROM (SELECT {_sql_list(values)} AS v)")  # fmt: skip

    lookup("family", _FAMILY_NAMES)
    lookup("given_f", _GIVEN_F)
    lookup("given_m", _GIVEN_M)
    # date of birth in days before the as-of date (about 21% children, adults to 99); registration starts
    # on or after birth; about 5% left the practice (between their registration and the as-of date)
    stem = "lpad((900000000 + i)::VARCHAR, 9, '0')"
    weighted = " + ".join(f"{10 - k} * substr({stem}, {k + 1}, 1)::INT" for k in range(9))
    start = time.perf_counter()
    con.execute(f"""
        CREATE TEMP TABLE p AS
        WITH base AS (
            SELECT i,
                CASE WHEN hash(i, 1) % 100 < 21 THEN (hash(i, 2) % 6570)::BIGINT
                     ELSE (6570 + hash(i, 2) % 29200)::BIGINT END AS dob_days,
                {stem} AS stem, (11 - ({weighted}) % 11) % 11 AS check_digit
            FROM range({patients}) t(i)
        )
        SELECT *, least(dob_days, (hash(i, 9) % 9000)::BIGINT) AS from_days FROM base
    """)
    con.execute(f"""
        COPY (
            SELECT
                'P' || lpad(i::VARCHAR, 8, '0') AS patient_id,
                CASE WHEN check_digit = 10 OR hash(i, 3) % 100 < 2 THEN NULL
                     ELSE stem || check_digit::VARCHAR END AS nhs_number,
                f.value AS family_name,
                CASE WHEN hash(i, 5) % 2 = 0 THEN gf.value ELSE gm.value END AS given_name,
                strftime({as_of} - dob_days::INT, '%Y-%m-%d') AS date_of_birth,
                CASE WHEN hash(i, 5) % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
                CASE WHEN dob_days > 25000 AND hash(i, 7) % 100 < 3
                     THEN strftime({as_of} - (1 + hash(i, 8) % least(from_days, 700))::INT, '%Y-%m-%d')
                     END AS date_of_death,
                strftime({as_of} - from_days::INT, '%Y-%m-%d') AS registered_from,
                CASE WHEN from_days > 30 AND hash(i, 10) % 100 < 5
                     THEN strftime({as_of} - (1 + hash(i, 11) % (from_days - 1))::INT, '%Y-%m-%d')
                     END AS registered_to,
                'H' || lpad((i // 2.4)::BIGINT::VARCHAR, 7, '0') AS household_id,
                'Z' || lpad((i // 10000)::VARCHAR, 5, '0') AS practice_id
            FROM p
            JOIN family f ON f.ix = hash(i, 4) % {len(_FAMILY_NAMES)}
            JOIN given_f gf ON gf.ix = hash(i, 6) % {len(_GIVEN_F)}
            JOIN given_m gm ON gm.ix = hash(i, 6) % {len(_GIVEN_M)}
            ORDER BY i
        ) TO '{tmp / "patients.parquet"}' (FORMAT parquet, COMPRESSION zstd)
    """)

    bg_codes, bg_terms = _background_codes()
    pr_codes, pr_terms, pr_weights = _protocol_codes()
    # expand protocol codes by weight so a uniform pick honours the weights
    pr_pick = [(c, t) for c, t, w in zip(pr_codes, pr_terms, pr_weights, strict=True) for _ in range(w)]
    con.execute(
        "CREATE TEMP TABLE codes AS SELECT (generate_subscripts(c, 1) - 1)::BIGINT AS ix, unnest(c) AS code, "
        "unnest(t) AS term, unnest(h) AS hit FROM (SELECT ?::VARCHAR[] AS c, ?::VARCHAR[] AS t, ?::BOOLEAN[] AS h)",
        [
            bg_codes + [c for c, _ in pr_pick],
            bg_terms + [t for _, t in pr_pick],
            [False] * len(bg_codes) + [True] * len(pr_pick),
        ],
    )
    lookup("clinician", list(CLINICIANS_ALL))
    n_bg, n_pr, n_clin = len(bg_codes), len(pr_pick), len(CLINICIANS_ALL)
    hit_per_100k = int(PROTOCOL_HIT_RATE * 100_000)
    total = patients * events_per_patient
    bookings = "('169711001', '6551000000108', '6561000000106', '9381000000103')"
    con.execute(f"""
        COPY (
            WITH e AS (
                SELECT j, j // {events_per_patient} AS i,
                    CASE WHEN hash(j, 21) % 100000 < {hit_per_100k} THEN {n_bg} + hash(j, 23) % {n_pr}
                         ELSE hash(j, 22) % {n_bg} END AS code_ix
                FROM range({total}) t(j)
            )
            SELECT
                'P' || lpad(e.i::VARCHAR, 8, '0') AS patient_id,
                c.code,
                strftime({as_of} - (hash(j, 24) % least(p.from_days + 1, 5475))::INT, '%Y-%m-%d') AS date,
                c.term,
                NULL::VARCHAR AS code_system,
                CASE WHEN c.code = '75367002'
                     THEN (100 + hash(j, 25) % 70)::VARCHAR || '/' || (60 + hash(j, 26) % 40)::VARCHAR
                     WHEN c.code IN {bookings} THEN (6 + hash(j, 27) % 30)::VARCHAR END AS value,
                k.value AS clinician_id
            FROM e
            JOIN p USING (i)
            JOIN codes c ON c.ix = e.code_ix
            JOIN clinician k ON k.ix = hash(j, 28) % {n_clin}
            ORDER BY j
        ) TO '{tmp / "events.parquet"}' (FORMAT parquet, COMPRESSION zstd)
    """)
    con.close()
    shutil.rmtree(tmp / "duckdb_tmp", ignore_errors=True)
    (tmp / "generated.json").write_text(
        json.dumps(
            {
                "patients": patients,
                "events_per_patient": events_per_patient,
                "events": total,
                "generator_version": GENERATOR_VERSION,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )
    shutil.rmtree(data_dir, ignore_errors=True)
    tmp.rename(data_dir)


def ensure_data(workdir: Path, patients: int, events_per_patient: int) -> Path:
    data_dir = workdir / f"p{patients}_e{events_per_patient}"
    meta = data_dir / "generated.json"
    if meta.exists() and json.loads(meta.read_text()).get("generator_version") == GENERATOR_VERSION:
        print(f"using cached data in {data_dir}")
        return data_dir
    print(f"generating {patients:,} patients x {events_per_patient} events into {data_dir} ...", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(  # in a child, so the generator's memory does not count against anything measured
        [sys.executable, __file__, "--child", "generate", "--data", str(data_dir), "--patients", str(patients),
         "--events-per-patient", str(events_per_patient)],
        cwd=REPO,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit("generating the benchmark data failed")
    size = sum(p.stat().st_size for p in data_dir.iterdir()) / 1e6
    print(f"  generated in {time.perf_counter() - started:.1f} s ({size:,.0f} MB of Parquet)", flush=True)
    return data_dir


def ensure_csv(workdir: Path, patients: int, events_per_patient: int, uk_dates: bool = False) -> Path:
    """The same synthetic extract as CSV files, as most practice systems export it (made once, cached);
    ``uk_dates``: every date written dd/mm/yyyy, as EMIS Web and SystmOne CSV exports write them."""
    import duckdb

    from casefind.schema import TABLES

    source = ensure_data(workdir, patients, events_per_patient)
    csv_dir = workdir / f"csv{'_uk' if uk_dates else ''}_p{patients}_e{events_per_patient}"
    if (csv_dir / "done.json").exists() and (csv_dir / "done.json").read_text() == (
        source / "generated.json"
    ).read_text():
        return csv_dir
    shutil.rmtree(csv_dir, ignore_errors=True)
    csv_dir.mkdir(parents=True)
    con = duckdb.connect()
    for table in ("patients", "events"):
        dates = [c.name for c in TABLES[table].columns if c.type == "date"] if uk_dates else []
        day_first = ", ".join(f"strftime(TRY_CAST({d} AS DATE), '%d/%m/%Y') AS {d}" for d in dates)
        columns = f"* REPLACE ({day_first})" if dates else "*"
        con.execute(
            f"COPY (SELECT {columns} FROM read_parquet('{source / table}.parquet')) TO '{csv_dir / table}.csv' (HEADER)"
        )
    (csv_dir / "done.json").write_text((source / "generated.json").read_text())
    return csv_dir


# ----------------------------------------------------------------------------------- measured children


def peak_rss_mb() -> float:
    """This process's peak resident set size. VmHWM, unlike ru_maxrss, is not inherited from the parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


STAGES = {  # build_list's three stages: (module, function), timed where build_list looks them up
    "read": ("casefind.api", "read_extract"),
    "evaluate": ("casefind.engine.duckdb_engine", "evaluate"),
    "rank": ("casefind.api", "rank"),
}


def _time_stages() -> dict[str, float]:
    """Wrap each stage function in a timer (in this child process only); returns the seconds it fills in."""
    import importlib

    seconds: dict[str, float] = {}
    for stage, (module_name, name) in STAGES.items():
        module = importlib.import_module(module_name)
        inner = getattr(module, name)

        def timed(*args, _inner=inner, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                seconds[_stage] = seconds.get(_stage, 0.0) + time.perf_counter() - started

        setattr(module, name, timed)
    return seconds


def child_build_list(data_dir: Path) -> dict:
    from casefind.api import build_list

    stages = _time_stages()
    started = time.perf_counter()
    result = build_list(data_dir, as_of=AS_OF)
    seconds = time.perf_counter() - started
    info = getattr(result, "info", None)
    listed, rejected = getattr(info, "listed", None), getattr(info, "rows_rejected", None)
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "listed": listed,
        "rows_rejected": rejected,
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }


def child_baseline(data_dir: Path) -> dict:
    import duckdb

    from casefind.protocol import default_protocol_path, load_protocol

    protocol = load_protocol(default_protocol_path())
    codes = sorted({c for codelist in protocol.codelists.values() for c in codelist.code_values})
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE codes AS SELECT unnest(?::VARCHAR[]) AS code", [codes])
    rows = con.execute(
        "SELECT patient_id, count(*) AS n, max(date) AS latest "
        "FROM read_parquet(?) e JOIN codes c USING (code) GROUP BY patient_id",
        [str(data_dir / "events.parquet")],
    ).fetchall()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "patients_with_hits": len(rows)}


def child_validating_pass(data_dir: Path) -> dict:
    """Reference, not a target: the least work of a pass that checks every event row (the date parses, the
    patient exists, the code is there) and keeps every column of the events with a protocol code."""
    import duckdb

    from casefind.protocol import default_protocol_path, load_protocol

    codes = sorted(load_protocol(default_protocol_path()).all_codes())
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE codes AS SELECT unnest(?::VARCHAR[]) AS code", [codes])
    patients = str(data_dir / "patients.parquet")
    con.execute("CREATE TEMP TABLE pats AS SELECT patient_id FROM read_parquet(?)", [patients])
    con.execute(
        "CREATE TEMP TABLE kept AS SELECT * FROM read_parquet(?) "
        "WHERE code IN (SELECT code FROM codes) OR code IS NULL OR TRY_CAST(date AS DATE) IS NULL "
        "OR patient_id NOT IN (SELECT patient_id FROM pats)",
        [str(data_dir / "events.parquet")],
    )
    [(kept,)] = con.execute("SELECT count(*) FROM kept").fetchall()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rows_kept": kept}


CHILDREN = {"baseline": child_baseline, "validating-pass": child_validating_pass, "build-list": child_build_list}


def warm_page_cache(data_dir: Path) -> None:
    """Read the data files once before any measure: the first measure must not pay alone for reading them
    from disk (a cold baseline once took 4.7 s instead of 0.35 s, and made the ratio look met)."""
    for path in sorted(data_dir.glob("*.parquet")):
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


def run_child(kind: str, data_dir: Path, script: str = __file__) -> dict:
    """Run ``script --child KIND`` in a fresh process and return its JSON result plus the wall time.

    Each child reports its own peak RSS (``peak_rss_mb``); ``coding_report_bench.py`` uses this too.
    """
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, script, "--child", kind, "--data", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "wall_seconds": wall}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def time_sample_command(workdir: Path) -> dict:
    """Wall time of the whole ``casefind build-list`` command on a copy of the committed sample_data."""
    sample = workdir / "sample_data"
    shutil.rmtree(sample, ignore_errors=True)
    shutil.copytree(REPO / "sample_data", sample)
    exe = shutil.which("casefind", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-c", "from casefind.cli import main; main()"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as cwd:  # build-list may archive its output in the working folder
        started = time.perf_counter()
        proc = subprocess.run(
            command + ["build-list", str(sample), "--as-of", AS_OF.isoformat()],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:  # see the README: 1 is an internal error, 2-4 bad input, protocol or output
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "wall_seconds": wall}
    return {"wall_seconds": wall, "exit_code": proc.returncode}


# ------------------------------------------------------------------------------------------------- main


def _print_stages(result: dict) -> None:
    """The line under a build_list measure: how its time split between its stages."""
    split = ", ".join(f"{stage} {result['stages'].get(stage, 0):.2f} s" for stage in STAGES)
    print(f"{'  of which':<44}{split}")


def _fmt(result: dict, key: str, unit: str) -> str:
    return f"{result[key]:,.{2 if unit == 's' else 0}f} {unit}" if key in result else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1_000_000, help="patients to generate (default 1M)")
    parser.add_argument("--events-per-patient", type=int, default=50, help="coded events per patient (default 50)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cfbench"), help="where data is cached")
    parser.add_argument("--only", choices=("generate", *CHILDREN, "csv", "sample"), action="append",
                        help="run only these parts (repeatable); default: all")  # fmt: skip
    parser.add_argument("--child", choices=("generate", *CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "generate":
        generate(args.data, args.patients, args.events_per_patient)
        return 0
    if args.child:
        result = CHILDREN[args.child](args.data)
        print(json.dumps(result))
        return 0

    parts = set(args.only or ("generate", *CHILDREN, "csv", "sample"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    # the csv and sample measures make (or need) only their own data: --only sample runs in seconds
    needs_data = parts & {"generate", *CHILDREN}
    data_dir = None
    if needs_data:
        data_dir = ensure_data(args.workdir, args.patients, args.events_per_patient)
        warm_page_cache(data_dir)
    results: dict[str, dict] = {}
    if "baseline" in parts:
        print("baseline: bare DuckDB join of events to the protocol's codes ...", flush=True)
        results["baseline"] = run_child("baseline", data_dir)
    if "validating-pass" in parts:
        print("reference: a bare DuckDB pass that checks every event row and keeps the protocol's ...", flush=True)
        results["validating_pass"] = run_child("validating-pass", data_dir)
    if "build-list" in parts:
        print("build_list with the default protocol ...", flush=True)
        results["build_list"] = run_child("build-list", data_dir)
    if "csv" in parts:
        print(f"build_list on a {CSV_PATIENTS:,}-patient practice exported as CSV ...", flush=True)
        results["csv"] = run_child("build-list", ensure_csv(args.workdir, CSV_PATIENTS, args.events_per_patient))
        print("  ... and with its dates written dd/mm/yyyy ...", flush=True)
        results["csv_uk"] = run_child(
            "build-list", ensure_csv(args.workdir, CSV_PATIENTS, args.events_per_patient, uk_dates=True)
        )
    if "sample" in parts:
        print("casefind build-list sample_data (whole command) ...", flush=True)
        results["sample"] = time_sample_command(args.workdir)

    events = args.patients * args.events_per_patient
    size = f"{args.patients:,} patients, {events:,} events, " if needs_data else ""
    print(f"\n== casefind benchmark: {size}as of {AS_OF} ==")
    print(f"{'measure':<44}{'time':>12}{'peak RSS':>14}   target")
    base, built = results.get("baseline", {}), results.get("build_list", {})
    checking = results.get("validating_pass", {})
    for name, result in (
        ("baseline (DuckDB join + group by)", base),
        ("reference: validating pass (not a target)", checking),
        ("build_list (default protocol)", built),
    ):
        if not result:
            continue
        if "error" in result:
            print(f"{name:<44}  FAILED: {result['error']}")
            continue
        target = f"< {TARGET_RSS_MB:,} MB" if result is built else ""
        print(f"{name:<44}{_fmt(result, 'seconds', 's'):>12}{_fmt(result, 'peak_rss_mb', 'MB'):>14}   {target}")
    if built.get("stages"):
        _print_stages(built)
    if "seconds" in base and "seconds" in built:
        ratio = built["seconds"] / base["seconds"]
        ok = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(f"{'ratio build_list / baseline':<44}{ratio:>11.2f}x{'':>14}   <= {TARGET_RATIO:.0f}x  {ok}")
    if "seconds" in checking and "seconds" in built:
        ratio = built["seconds"] / checking["seconds"]
        print(f"{'ratio build_list / validating pass':<44}{ratio:>11.2f}x{'':>14}   (reference)")
    if "peak_rss_mb" in built:
        ok = "ok" if built["peak_rss_mb"] < TARGET_RSS_MB else "OVER"
        print(f"{'build_list peak RSS':<44}{'':>12}{built['peak_rss_mb']:>11,.0f} MB   < {TARGET_RSS_MB:,} MB  {ok}")
    for key, name in (
        ("csv", f"build_list, {CSV_PATIENTS // 1000}k patients as CSV"),
        ("csv_uk", "  the same, dates dd/mm/yyyy"),
    ):
        csv_run = results.get(key)
        if not csv_run:
            continue
        if "error" in csv_run:
            print(f"{name:<44}  FAILED: {csv_run['error']}")
        else:
            print(f"{name:<44}{_fmt(csv_run, 'seconds', 's'):>12}{_fmt(csv_run, 'peak_rss_mb', 'MB'):>14}")
            _print_stages(csv_run)
    sample = results.get("sample")
    if sample:
        if "error" in sample:
            print(f"{'casefind build-list sample_data':<44}  FAILED: {sample['error']}")
        else:
            ok = "ok" if sample["wall_seconds"] < TARGET_SAMPLE_SECONDS else "OVER"
            print(f"{'casefind build-list sample_data (wall)':<44}{sample['wall_seconds']:>10.2f} s{'':>14}   "
                  f"< {TARGET_SAMPLE_SECONDS:.0f} s  {ok}")  # fmt: skip
    if built.get("listed") is not None:
        print(f"listed by build_list: {built['listed']:,} (rows rejected: {built.get('rows_rejected')}); "
              f"patients with any protocol code: {base.get('patients_with_hits', 'n/a')}")  # fmt: skip
    print(json.dumps({"patients": args.patients, "events": events, **results}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
