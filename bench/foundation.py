#!/usr/bin/env python3
"""Foundation benchmarks, measured side by side in one run (see BENCHMARKS.md).

1. `arflow import invoices` of N rows into SQLite vs `sqlite3 DB '.import --csv FILE t'`
   (a raw, untyped, unvalidated load: the floor).
2. `arflow report aging` + `arflow report dso` over the N-invoice store vs DuckDB
   computing the same aging + DSO straight from the CSV (bench/duckdb_aging_dso.py).

Usage: python3 bench/foundation.py [--invoices 1000000] [--customers 100000] [--runs 3]
Needs: a release build (built here), sqlite3, and the duckdb Python package
(installed with pip when missing).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "arflow")
AS_OF = "2026-11-30"


def run(cmd, env=None, quiet=True):
    """Runs cmd and returns (wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE)
    out = proc.stdout.read() if quiet else b""
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"command failed ({status}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, out


def median_of(n, make_cmd, setup=None, env=None):
    walls, peaks, out = [], [], b""
    for _ in range(n):
        if setup:
            setup()
        w, p, out = run(make_cmd(), env=env)
        walls.append(w)
        peaks.append(p)
    return statistics.median(walls), max(peaks), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invoices", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="work directory to use and keep")
    args = ap.parse_args()

    try:
        import duckdb  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "duckdb"])
    if not shutil.which("sqlite3"):
        sys.exit("sqlite3 is missing: apt-get install sqlite3")

    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "arflow"], cwd=ROOT)
    work = args.keep or tempfile.mkdtemp(prefix="arflow-bench-")
    os.makedirs(work, exist_ok=True)
    csv_dir = os.path.join(work, "csv")
    env = dict(os.environ, ARFLOW_DATA_DIR=os.path.join(work, "data"))
    env.pop("ARFLOW_DATABASE_URL", None)

    print(f"machine: {os.cpu_count()} cores; work dir {work}")
    print(f"generating {args.invoices} invoices / {args.customers} customers (seed 7) in both CSV layouts ...", flush=True)
    ledger_dir = os.path.join(work, "csv-ledger")
    single_dir = os.path.join(work, "csv-single")
    demo = [BIN, "demo", "--customers", str(args.customers), "--invoices", str(args.invoices), "--seed", "7", "--today", AS_OF, "--csv"]
    run(demo + [ledger_dir], env=env)
    run(demo + [single_dir, "--single-file"], env=env)
    for d in (ledger_dir, single_dir):
        print(f"{d}/invoices.csv: {os.path.getsize(os.path.join(d, 'invoices.csv')) / 1e6:.0f} MB")

    raw_db = os.path.join(work, "raw.db")

    def fresh_raw():
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(raw_db + suffix):
                os.remove(raw_db + suffix)

    data_dir = env["ARFLOW_DATA_DIR"]

    def fresh_arflow(csv_dir):
        def setup():
            shutil.rmtree(data_dir, ignore_errors=True)
            run([BIN, "init"], env=env)
            # The demo's rates (crates/cli/src/commands/demo.rs); DuckDB uses the same.
            run([BIN, "fx", "set", "EUR", "USD", "1.08", "--on", "2020-01-01"], env=env)
            run([BIN, "fx", "set", "GBP", "USD", "1.27", "--on", "2020-01-01"], env=env)
            run([BIN, "import", "customers", os.path.join(csv_dir, "customers.csv")], env=env)
        return setup

    rows = []
    for label, csv_dir in (("invoices only (ledger layout)", ledger_dir), ("invoices + paid_date -> payments, allocations (single file)", single_dir)):
        invoices_csv = os.path.join(csv_dir, "invoices.csv")
        sq_wall, sq_peak, _ = median_of(args.runs, lambda: ["sqlite3", raw_db, f".import --csv {invoices_csv} t"], setup=fresh_raw)
        af_wall, af_peak, out = median_of(args.runs, lambda: [BIN, "import", "invoices", invoices_csv, "--json"], setup=fresh_arflow(csv_dir), env=env)
        applied = json.loads(out)["applied"]
        rows.append((label, sq_wall, sq_peak, af_wall, af_peak, applied))

    # The store now holds the single-file ledger: report on it, and let DuckDB
    # compute the same aging and DSO from the same CSV.
    single_csv = os.path.join(single_dir, "invoices.csv")
    aging_wall, aging_peak, aging_out = median_of(args.runs, lambda: [BIN, "report", "aging", "--as-of", AS_OF, "--json"], env=env)
    dso_wall, dso_peak, dso_out = median_of(args.runs, lambda: [BIN, "report", "dso", "--as-of", AS_OF, "--json"], env=env)
    summary_wall, summary_peak, _ = median_of(args.runs, lambda: [BIN, "report", "summary", "--as-of", AS_OF, "--json"], env=env)
    duck_wall, duck_peak, duck_out = median_of(args.runs, lambda: [sys.executable, os.path.join(ROOT, "bench", "duckdb_aging_dso.py"), single_csv, AS_OF])

    print()
    print(f"| step | time (median of {args.runs}) | peak RSS |")
    print("|---|---|---|")
    for label, sq_wall, sq_peak, af_wall, af_peak, applied in rows:
        print(f"| sqlite3 .import --csv, {label} | {sq_wall:.2f} s | {sq_peak:.0f} MiB |")
        written = ", ".join(f"{k} {v['inserted']}" for k, v in applied.items() if isinstance(v, dict) and v.get("inserted"))
        print(f"| arflow import invoices, {label} ({written}; events {applied.get('events')}) | {af_wall:.2f} s ({af_wall / sq_wall:.2f}x) | {af_peak:.0f} MiB |")
    print(f"| arflow report aging --json | {aging_wall:.2f} s | {aging_peak:.0f} MiB |")
    print(f"| arflow report dso --json | {dso_wall:.2f} s | {dso_peak:.0f} MiB |")
    print(f"| arflow aging + dso (two processes) | {aging_wall + dso_wall:.2f} s | {max(aging_peak, dso_peak):.0f} MiB |")
    print(f"| arflow report summary --json (aging, DSO, CEI in one process) | {summary_wall:.2f} s | {summary_peak:.0f} MiB |")
    print(f"| DuckDB aging + DSO from the CSV (one query) | {duck_wall:.2f} s | {duck_peak:.0f} MiB |")

    # Same numbers from both?
    duck = json.loads(duck_out)
    aging = json.loads(aging_out)
    dso = json.loads(dso_out)
    ours = [float(b["amount"]) for b in aging["buckets"]]
    print()
    print("aging buckets, arflow:", ours)
    print("aging buckets, DuckDB:", [round(x, 2) for x in duck["buckets"]])
    print(f"standard DSO, arflow {dso['dso']} / DuckDB {duck['dso_standard']:.2f}; best possible DSO, arflow {dso['best_possible_dso']} / DuckDB {duck['best_possible_dso']:.2f}")
    same = all(abs(a - b) < 0.005 for a, b in zip(ours, duck["buckets"]))
    print("buckets agree:", same)


if __name__ == "__main__":
    main()
