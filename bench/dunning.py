#!/usr/bin/env python3
"""Dunning benchmarks (see BENCHMARKS.md).

1. Planner throughput: `plan_bench` plans N open invoices of M customers in
   memory (the pure planner, no database), best of several runs.
2. `arflow dunning run` end to end on SQLite: a store with C customers, each
   with an email contact and one overdue invoice, so one run renders and
   queues C messages (load, plan, render, one transaction). The database is
   restored from a copy before every repetition; the median is reported.
   A second run on the same day (nothing left to do) is timed too.

Usage: python3 bench/dunning.py [--invoices 1000000] [--customers 100000]
                                [--messages 100000] [--runs 3]
Needs a release build (built here).
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
BENCH = os.path.join(ROOT, "target", "release", "examples", "plan_bench")
NOW = "2026-12-01T09:00:00Z"  # a Tuesday, 09:00 UTC: inside the default send window


def run(cmd, env=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    return wall, proc.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invoices", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-p", "arflow", "-p", "arflow-dunning",
                    "--example", "plan_bench"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-p", "arflow"], cwd=ROOT, check=True)

    print(f"== planner: {args.invoices} open invoices, {args.customers} customers")
    out = subprocess.run([BENCH, str(args.invoices), str(args.customers), str(max(args.runs, 3))],
                         check=True, capture_output=True, text=True).stdout
    print(out.rstrip())

    work = tempfile.mkdtemp(prefix="arflow-dunning-bench-")
    try:
        data = os.path.join(work, "data")
        env = dict(os.environ, ARFLOW_DATA_DIR=data)
        env.pop("ARFLOW_DATABASE_URL", None)
        env.pop("ARFLOW_NOW", None)
        run([BIN, "init", "--name", "Bench Ltd", "--time-zone", "UTC", "--base-currency", "EUR"], env)
        n = args.messages
        paths = {}
        for kind, header, row in [
            ("customers", "customer_id,name,currency,time_zone,locale",
             lambda i: f"C{i:06},Customer {i},EUR,UTC,en"),
            ("contacts", "customer_id,name,email,primary",
             lambda i: f"C{i:06},Pat {i},ap{i}@c{i}.example,true"),
            ("invoices", "invoice_number,customer_id,issue_date,due_date,currency,total",
             lambda i: f"INV{i:07},C{i:06},2026-10-01,2026-11-23,EUR,{100 + i % 900}.00"),
        ]:
            p = os.path.join(work, f"{kind}.csv")
            with open(p, "w") as f:
                f.write(header + "\n")
                for i in range(n):
                    f.write(row(i) + "\n")
            paths[kind] = p
            run([BIN, "import", kind, p], env)
        db = os.path.join(data, "arflow.db")
        subprocess.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE);"], check=False,
                       capture_output=True)
        pristine = os.path.join(work, "pristine.db")
        shutil.copyfile(db, pristine)
        run_env = dict(env, ARFLOW_NOW=NOW)
        walls, second = [], []
        queued = None
        for _ in range(args.runs):
            for suffix in ("-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            shutil.copyfile(pristine, db)
            w, out = run([BIN, "dunning", "run", "--json"], run_env)
            walls.append(w)
            queued = json.loads(out)["written"]["messages"]
            w2, out2 = run([BIN, "dunning", "run", "--json"], run_env)
            second.append(w2)
            assert json.loads(out2)["written"]["messages"] == 0
        print(f"== dunning run on SQLite: {n} customers with one overdue invoice each")
        print(f"queued {queued} messages; runs: " + ", ".join(f"{w:.2f} s" for w in walls))
        print(f"median {statistics.median(walls):.2f} s end to end "
              f"({queued / statistics.median(walls):.0f} messages/s)")
        print(f"second run the same day (nothing to do): median {statistics.median(second):.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
