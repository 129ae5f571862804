"""Benchmark a monthly coding-rate report at ICB scale against a bare DuckDB aggregate over the same events.

    python bench/coding_report_bench.py                      # 1M patients, 50M events (generated once, cached)
    python bench/coding_report_bench.py --patients 100000    # a quick run

The data are made (and cached in --workdir) by ``bench/build_list_bench.py``'s generator, so both
benchmarks share one copy. Each measure runs in its own subprocess, which reports its own peak RSS
(``VmHWM``), as in ``build_list_bench.py``:
  (a) ``casefind.api.coding_report(by="month")`` over --from..--to with the default protocol's report
      categories and every breakdown, writing its CSVs and report.html;
  (b) the baseline: one scan of events.parquet joined to the report-category codes, grouped by month and
      category, counting distinct patients - the least work any implementation must do.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))  # run from a checkout without installing

from build_list_bench import ensure_data, peak_rss_mb, run_child, warm_page_cache  # noqa: E402  (the shared generator and runner)

DATE_FROM, DATE_TO = date(2024, 1, 1), date(2025, 12, 31)


# ----------------------------------------------------------------------------------- measured children


def child_report(data_dir: Path) -> dict:
    from casefind.api import coding_report

    steps: list[tuple[str, float]] = []  # (step, seconds since start) from the report's progress callback
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        report, written = coding_report(
            data_dir, out, date_from=DATE_FROM, date_to=DATE_TO, by="month",
            progress=lambda step: steps.append((step, time.perf_counter() - started)),
        )  # fmt: skip
        seconds = time.perf_counter() - started
        overall = report.rates[report.rates["breakdown"] == "overall"]
        return {
            "seconds": seconds,
            "extract_read_seconds": steps[0][1] if steps else None,  # until the report's first step
            "steps": [[name, round(at, 2)] for name, at in steps],
            "files": [p.name for p in written],
            "rate_rows": len(report.rates),
            "coded_children_months": int(overall["numerator"].fillna(0).sum()),
            "peak_rss_mb": peak_rss_mb(),
        }


def child_baseline(data_dir: Path) -> dict:
    import duckdb

    from casefind.protocol import default_protocol_path, load_protocol

    categories = load_protocol(default_protocol_path()).report_categories()
    pairs = sorted({(code, name) for name, codes in categories.items() for _, code in codes})
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE codes AS SELECT unnest(?::VARCHAR[]) AS code, unnest(?::VARCHAR[]) AS category",
        [[c for c, _ in pairs], [n for _, n in pairs]],
    )
    rows = con.execute(
        """SELECT date_trunc('month', e.date::DATE) AS month, c.category, count(DISTINCT e.patient_id) AS children
        FROM read_parquet(?) e JOIN codes c USING (code)
        WHERE e.date::DATE BETWEEN ? AND ?
        GROUP BY ALL""",
        [str(data_dir / "events.parquet"), DATE_FROM, DATE_TO],
    ).fetchall()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "groups": len(rows),
        "coded_children_months": sum(r[2] for r in rows),
        "peak_rss_mb": peak_rss_mb(),
    }


CHILDREN = {"report": child_report, "baseline": child_baseline}


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1_000_000, help="patients to generate (default 1M)")
    parser.add_argument("--events-per-patient", type=int, default=50, help="coded events per patient (default 50)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cfbench"), help="where data is cached")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(CHILDREN[args.child](args.data)))
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    data_dir = ensure_data(args.workdir, args.patients, args.events_per_patient)
    warm_page_cache(data_dir)
    print("baseline: bare DuckDB scan of events joined to the category codes, by month and category ...", flush=True)
    base = run_child("baseline", data_dir, __file__)
    print(f"coding_report by month, {DATE_FROM}..{DATE_TO}, every breakdown ...", flush=True)
    built = run_child("report", data_dir, __file__)

    events = args.patients * args.events_per_patient
    print(f"\n== coding-report benchmark: {args.patients:,} patients, {events:,} events, {DATE_FROM}..{DATE_TO} ==")
    print(f"{'measure':<44}{'time':>12}{'peak RSS':>14}")
    for name, result in (("baseline (DuckDB scan + join + group by)", base), ("coding_report (monthly)", built)):
        if "error" in result:
            print(f"{name:<44}  FAILED: {result['error']}")
        else:
            print(f"{name:<44}{result['seconds']:>10.1f} s{result['peak_rss_mb']:>11,.0f} MB")
    if built.get("extract_read_seconds") is not None:
        read = built["extract_read_seconds"]
        print(f"{'  of which reading + validating the extract':<44}{read:>10.1f} s")
        print(f"{'  of which the report (measures, CSV, HTML)':<44}{built['seconds'] - read:>10.1f} s")
    if "seconds" in base and "seconds" in built:
        print(f"{'ratio coding_report / baseline':<44}{built['seconds'] / base['seconds']:>11.2f}x")
        print(
            f"coded child-months: baseline {base['coded_children_months']:,} (any age, by event month); "
            f"report {built['coded_children_months']:,} (children 0-17 while registered, rounded/suppressed)"
        )
    print(json.dumps({"patients": args.patients, "events": events, "baseline": base, "report": built}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
