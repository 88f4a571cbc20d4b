"""Accept throughput and trigger→result latency, side by side with a bare reference.

    python bench/accept.py [--seconds 8] [--connections 32] [--latency-runs 200]

1. Accepted triggers/s: wrk POSTs `hello` triggers to `runplane serve --slots 0`
   (SQLite) at the given concurrency; the same load against bench/limit_app.py
   (Starlette + one durable SQLite insert per request) in the same run. Prints
   both, the ratio, and the server's CPU time per accepted trigger (steadier
   than req/s on a shared machine).
2. End-to-end latency of `hello` (POST ?wait → succeeded), sequential, with the
   embedded runtime: p50 / p99 / max.

Needs `wrk` (Debian: apt-get install wrk). Prints the machine's core count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import AUTH, cpu_seconds, free_port, serve, stop, wait_http, wrk

HERE = Path(__file__).resolve().parent


def accept_rates(seconds: int, connections: int) -> tuple[float, float]:
    port = free_port()
    ref = subprocess.Popen([sys.executable, str(HERE / "limit_app.py"), str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        wrk(f"http://127.0.0.1:{port}/accept", 2, connections)  # warm-up
        limit, limit_lat = wrk(f"http://127.0.0.1:{port}/accept", seconds, connections)
    finally:
        ref.terminate()
        ref.wait()
    proc, base, _ = serve("--slots", "0")
    try:
        url = base + "/api/v1/processes/hello/executions"
        wrk(url, 2, connections)  # warm-up
        cpu_before = cpu_seconds(proc.pid)
        ours, ours_lat = wrk(url, seconds, connections)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        stop(proc)
    print(f"bare limit app      {limit:8.0f} req/s   (avg latency {limit_lat})")
    print(f"runplane accept     {ours:8.0f} req/s   (avg latency {ours_lat})")
    print(f"ratio               {ours / limit:8.2f}x")
    # CPU per trigger hardly moves when the machine is shared; req/s does.
    print(f"server CPU          {cpu * 1e6 / (ours * seconds):8.0f} us per accepted trigger")
    return ours, limit


def latency(runs: int) -> None:
    proc, base, _ = serve()
    try:
        with httpx.Client(base_url=base, timeout=60, headers=AUTH) as c:
            url = "/api/v1/processes/hello/executions"
            for _ in range(5):  # warm-up: bundle extraction, first imports
                c.post(url, params={"wait": 30}, json={"inputArguments": {}})
            samples = []
            for i in range(runs):
                t0 = time.perf_counter()
                r = c.post(url, params={"wait": 30}, json={"inputArguments": {"name": str(i)}})
                samples.append((time.perf_counter() - t0) * 1000)
                if r.json()["status"] != "succeeded":
                    raise SystemExit(f"run {i} ended {r.json()['status']}")
    finally:
        stop(proc)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"hello trigger→result  p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
        f"max {samples[-1]:6.1f} ms   ({runs} sequential runs)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--latency-runs", type=int, default=200)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    print(f"cores: {os.cpu_count()}   python: {sys.version.split()[0]}")
    accept_rates(args.seconds, args.connections)
    latency(args.latency_runs)


if __name__ == "__main__":
    main()
