"""Runtimes and scale-out: completion rate, claim latency, accept rate with replicas.

    python bench/runtimes.py [--executions 300] [--claims 100] [--seconds 8]
                             [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. No-op executions completed per second on an API-only server (SQLite) with
   1, 2 and 4 remote `runplane runtime`s of 4 slots each: N triggers queued at
   once, the time from the first accept to the last finish.
2. Claim latency (accepted → claimed: an execution's `startedAt - createdAt`),
   one trigger at a time against an idle runtime waiting in its long poll,
   p50 / p99: on SQLite; on PostgreSQL with the runtime on the replica that
   accepted; and on PostgreSQL with the trigger sent to the other replica
   (the wake-up crosses replicas).
3. Accepted triggers/s on PostgreSQL: wrk against one replica, then against two
   replicas at once (each gets half the connections), side by side in one run.

Each PostgreSQL run uses a fresh schema of its own, dropped at the end. Needs
`wrk` (Debian: apt-get install wrk) for part 3.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    AUTH,
    RUNTIME_SLOTS,
    deploy_noop,
    pg_schema,
    runtime_token,
    runtimes,
    serve,
    stop,
    wrk,
)


def warm(c: httpx.Client) -> None:
    for _ in range(3):  # bundle download and extraction, first imports
        r = c.post("/api/v1/processes/noop/executions", params={"wait": 60}, json={})
        if r.json()["status"] != "succeeded":
            raise SystemExit(f"warm-up ended {r.json()['status']}")


def completion_rate(executions: int, count: int) -> float:
    proc, base, _ = serve("--slots", "0", "--no-demo")
    try:
        deploy_noop(base)
        with (
            runtimes(base, runtime_token(base), count),
            httpx.Client(base_url=base, headers=AUTH, timeout=120) as c,
        ):
            warm(c)
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                ids = list(
                    pool.map(
                        lambda _: c.post("/api/v1/processes/noop/executions", json={}).json()["id"],
                        range(executions),
                    )
                )
            for i in ids:
                r = c.get(f"/api/v1/executions/{i}", params={"wait": 60}).json()
                if r["status"] != "succeeded":
                    raise SystemExit(f"{i} ended {r['status']}")
            elapsed = time.perf_counter() - t0
    finally:
        stop(proc)
    return executions / elapsed


def _ms(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (
        parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))
    ).total_seconds() * 1000


def claim_latencies(trigger_base: str, runtime_base: str, claims: int) -> tuple[float, float]:
    samples = []
    with (
        runtimes(runtime_base, runtime_token(runtime_base), 1),
        httpx.Client(base_url=trigger_base, headers=AUTH, timeout=60) as c,
    ):
        warm(c)
        for _ in range(claims):
            time.sleep(0.05)  # the runtime is back in its long poll
            r = c.post("/api/v1/processes/noop/executions", params={"wait": 30}, json={}).json()
            if r["status"] != "succeeded":
                raise SystemExit(f"claim run ended {r['status']}")
            samples.append(_ms(r["createdAt"], r["startedAt"]))
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def report(label: str, p50: float, p99: float) -> None:
    print(f"claim latency {label:36s} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--claims", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}   python: {sys.version.split()[0]}")

    rates = {n: completion_rate(args.executions, n) for n in (1, 2, 4)}
    for n, rate in rates.items():
        print(
            f"no-op executions/s with {n} runtime(s) x {RUNTIME_SLOTS} slots: {rate:7.1f}"
            f"   ({rate / rates[1]:.2f}x of 1)"
        )

    proc, base, _ = serve("--slots", "0", "--no-demo")
    try:
        deploy_noop(base)
        report("SQLite", *claim_latencies(base, base, args.claims))
    finally:
        stop(proc)

    with pg_schema(args.postgres) as url:
        a, a_base, _ = serve("--slots", "0", "--no-demo", "--database-url", url)
        b, b_base, _ = serve("--slots", "0", "--no-demo", "--database-url", url)
        try:
            deploy_noop(a_base)
            report("PostgreSQL, same replica", *claim_latencies(a_base, a_base, args.claims))
            report(
                "PostgreSQL, trigger on the other replica",
                *claim_latencies(b_base, a_base, args.claims),
            )
            if shutil.which("wrk") is None:
                print("wrk is not installed: accept rates skipped (apt-get install wrk)")
                return
            path = "/api/v1/processes/noop/executions"
            wrk(a_base + path, 2, args.connections)  # warm-up
            one, _ = wrk(a_base + path, args.seconds, args.connections)
            half = max(1, args.connections // 2)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                both = list(
                    pool.map(lambda u: wrk(u + path, args.seconds, half)[0], (a_base, b_base))
                )
            print(f"PostgreSQL accepted triggers/s, 1 replica   {one:8.0f}")
            print(
                f"PostgreSQL accepted triggers/s, 2 replicas  {sum(both):8.0f}"
                f"   ({sum(both) / one:.2f}x)"
            )
        finally:
            stop(a)
            stop(b)


if __name__ == "__main__":
    main()
