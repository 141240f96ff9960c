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
    print(f"generating {args.invoices} invoices / {args.customers} customers ...", flush=True)
    run([BIN, "demo", "--customers", str(args.customers), "--invoices", str(args.invoices),
         "--seed", "7", "--today", AS_OF, "--csv", csv_dir, "--single-file"], env=env)
    invoices_csv = os.path.join(csv_dir, "invoices.csv")
    size_mb = os.path.getsize(invoices_csv) / 1e6
    print(f"invoices.csv: {size_mb:.0f} MB")

    raw_db = os.path.join(work, "raw.db")

    def fresh_raw():
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(raw_db + suffix):
                os.remove(raw_db + suffix)

    sqlite_wall, sqlite_peak, _ = median_of(args.runs, lambda: ["sqlite3", raw_db, f".import --csv {invoices_csv} t"], setup=fresh_raw)

    data_dir = env["ARFLOW_DATA_DIR"]

    def fresh_arflow():
        shutil.rmtree(data_dir, ignore_errors=True)
        run([BIN, "init"], env=env)
        run([BIN, "import", "customers", os.path.join(csv_dir, "customers.csv")], env=env)

    import_wall, import_peak, out = median_of(args.runs, lambda: [BIN, "import", "invoices", invoices_csv, "--json"], setup=fresh_arflow, env=env)
    summary = json.loads(out)

    aging_wall, aging_peak, _ = median_of(args.runs, lambda: [BIN, "report", "aging", "--as-of", AS_OF, "--json"], env=env)
    dso_wall, dso_peak, dso_out = median_of(args.runs, lambda: [BIN, "report", "dso", "--as-of", AS_OF, "--json"], env=env)
    duck_wall, duck_peak, duck_out = median_of(args.runs, lambda: [sys.executable, os.path.join(ROOT, "bench", "duckdb_aging_dso.py"), invoices_csv, AS_OF])

    print()
    print(f"| step | time (median of {args.runs}) | peak RSS |")
    print("|---|---|---|")
    print(f"| sqlite3 .import --csv ({args.invoices} rows, raw) | {sqlite_wall:.2f} s | {sqlite_peak:.0f} MiB |")
    print(f"| arflow import invoices ({args.invoices} rows, validated, + payments/allocations/events) | {import_wall:.2f} s | {import_peak:.0f} MiB |")
    print(f"| ratio arflow / sqlite3 | {import_wall / sqlite_wall:.2f}x (goal <= 2x) | |")
    print(f"| arflow report aging | {aging_wall:.2f} s | {aging_peak:.0f} MiB |")
    print(f"| arflow report dso | {dso_wall:.2f} s | {dso_peak:.0f} MiB |")
    print(f"| arflow aging + dso | {aging_wall + dso_wall:.2f} s | {max(aging_peak, dso_peak):.0f} MiB |")
    print(f"| DuckDB aging + DSO from CSV | {duck_wall:.2f} s | {duck_peak:.0f} MiB |")
    print()
    print("arflow import summary:", json.dumps(summary.get("applied", summary))[:400])
    print("duckdb result:", duck_out.decode().strip())
    print("arflow dso:", dso_out.decode().strip()[:400])


if __name__ == "__main__":
    main()
