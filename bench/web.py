#!/usr/bin/env python3
"""Web application benchmarks (see BENCHMARKS.md).

With a SQLite store holding the demo ledger at --invoices invoices:
1. Overview page: server time of `GET /` for a logged-in admin, cold (the
   first request after start builds the in-memory ledger view) and warm
   (wrk, one connection, 10 s: mean and p99).
2. `GET /api/v1/invoices?status=overdue` (first page of 50, bearer token):
   wrk with 2 threads and 32 connections for 30 s from a second process on
   loopback: requests/s, p99 latency, non-2xx answers and socket errors.
3. The same while `arflow dunning run` writes into the database, run after
   run (one per business day from NOW on) for the whole window.
4. The overview right after a ledger change (a payment posted through the
   API), when the in-memory view and its figures are rebuilt.

Usage: python3 bench/web.py [--invoices 100000] [--customers 2000] [--seconds 30]
Needs wrk (Debian package) and a release build (built here).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "arflow")
NOW = "2026-12-01T10:00:00Z"  # a Tuesday inside the default send window
EMAIL = "bench@example.com"
PASSWORD = "benchmark-password"


def sh(cmd, env, stdin=None):
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr}")
    return p.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wrk(url, headers, threads, conns, seconds):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": total,
        "rps": rps,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)],
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)],
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=2_000)
    ap.add_argument("--seconds", type=int, default=30)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "-p", "arflow"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="arflow-web-bench-")
    data = os.path.join(tmp, "data")
    env = dict(os.environ, ARFLOW_NOW=NOW, ARFLOW_LOG="warn")
    env.pop("ARFLOW_DATABASE_URL", None)
    base = [BIN, "--data-dir", data]
    t = time.perf_counter()
    sh(base + ["demo", "--customers", str(args.customers), "--invoices", str(args.invoices),
               "--today", NOW[:10]], env)
    print(f"loaded {args.invoices} invoices in {time.perf_counter() - t:.1f} s", flush=True)
    sh(base + ["user", "add", EMAIL, "--role", "admin", "--password-stdin"], env, PASSWORD + "\n")
    out = sh(base + ["user", "token", "create", EMAIL, "--name", "bench", "--scope", "read"], env)
    token = re.search(r"(arf_[0-9a-f]{64})", out).group(1)
    out = sh(base + ["user", "token", "create", EMAIL, "--name", "bench-write",
                     "--scope", "read,write"], env)
    write_token = re.search(r"(arf_[0-9a-f]{64})", out).group(1)

    port = free_port()
    server = subprocess.Popen(base + ["serve", "--port", str(port), "--no-worker"], env=env,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        # Log in (curl keeps the cookie).
        jar = os.path.join(tmp, "cookies")
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-c", jar, "-d",
                        f"email={EMAIL}&password={PASSWORD}", url + "/login"], check=True)
        cookie = None
        for line in open(jar):
            if "arflow_session" in line:
                cookie = "arflow_session=" + line.split()[-1]
        assert cookie, "login failed"

        def timed_get(path, headers):
            req = urllib.request.Request(url + path, headers=headers)
            t = time.perf_counter()
            with urllib.request.urlopen(req) as r:
                body = r.read()
                assert r.status == 200, r.status
            return (time.perf_counter() - t) * 1000, body

        cold_ms, _ = timed_get("/", {"Cookie": cookie})
        warm = wrk(url + "/", [f"Cookie: {cookie}"], 1, 1, 10)
        api_url = url + "/api/v1/invoices?status=overdue"
        first_ms, body = timed_get("/api/v1/invoices?status=overdue",
                                   {"Authorization": f"Bearer {token}"})
        page = json.loads(body)
        assert len(page["data"]) == 50, len(page["data"])
        api = wrk(api_url, [f"Authorization: Bearer {token}"], 2, 32, args.seconds)

        # Again, with dunning runs writing into the same SQLite file for the
        # whole window: one run per business day from NOW on (each day brings
        # new steps due), back to back until wrk is done.
        result = {"runs": 0, "failed": 0, "busy_s": 0.0, "messages": 0, "tasks": 0,
                  "step_records": 0}
        done = threading.Event()

        def dunning():
            day = datetime.datetime.fromisoformat(NOW.replace("Z", "+00:00"))
            while not done.is_set():
                if day.weekday() < 5:
                    run_env = dict(env, ARFLOW_NOW=day.strftime("%Y-%m-%dT%H:%M:%SZ"))
                    t = time.perf_counter()
                    p = subprocess.run(base + ["dunning", "run", "--json"], env=run_env,
                                       capture_output=True, text=True)
                    result["busy_s"] += time.perf_counter() - t
                    result["runs"] += 1
                    if p.returncode != 0:
                        result["failed"] += 1
                        result["error"] = p.stderr[-400:]
                    else:
                        w = json.loads(p.stdout)["written"]
                        for k in ("messages", "tasks", "step_records"):
                            result[k] += w[k]
                day += datetime.timedelta(days=1)

        th = threading.Thread(target=dunning)
        th.start()
        api_w = wrk(api_url, [f"Authorization: Bearer {token}"], 2, 32, args.seconds)
        done.set()
        th.join()
        overview_after_ms, _ = timed_get("/", {"Cookie": cookie})

        # The overview right after the ledger changed (a payment through the
        # API): the in-memory view and the figures are rebuilt for it.
        inv = page["data"][0]
        after_change = []
        for i in range(5):
            body = json.dumps({
                "key": f"BENCH-PAY-{i}", "customer": inv["customer"],
                "received_on": NOW[:10], "amount": "1.00",
                "allocations": [{"invoice": inv["number"], "amount": "1.00"}],
            }).encode()
            req = urllib.request.Request(url + "/api/v1/payments", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {write_token}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                assert r.status == 201, r.status
            ms, _ = timed_get("/", {"Cookie": cookie})
            after_change.append(round(ms, 1))
    finally:
        server.terminate()
        server.wait()
    print(json.dumps({
        "invoices": args.invoices,
        "overview": {"cold_ms": round(cold_ms, 1), "warm": warm},
        "api_first_request_ms": round(first_ms, 1),
        "api_overdue_first_page": api,
        "api_while_dunning_run": api_w,
        "dunning_runs_during_window": {k: (round(v, 1) if isinstance(v, float) else v)
                                       for k, v in result.items()},
        "overview_after_runs_ms": round(overview_after_ms, 1),
        "overview_after_a_ledger_change_ms": after_change,
    }, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
