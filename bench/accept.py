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
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
BODY = '{"inputArguments":{"name":"x"}}'
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        f"wrk.method='POST'\nwrk.body='{BODY}'\nwrk.headers['Content-Type']='application/json'\n"
        f"wrk.headers['Authorization']='Bearer {ADMIN_TOKEN}'\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None:
        raise SystemExit("wrk printed no rate:\n" + out)
    if bad:
        raise SystemExit(f"{bad.group(1)} non-2xx responses from {url}")
    latency = re.search(r"Latency\s+(\S+)", out)
    return float(rate.group(1)), latency.group(1) if latency else "?"


def serve(*args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="runplane-bench-"))
    runplane = Path(sys.executable).with_name("runplane")
    proc = subprocess.Popen(
        [str(runplane), "serve", "--port", str(port), "--data-dir", str(data), *args],
        env={**os.environ, "RUNPLANE_ADMIN_TOKEN": ADMIN_TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/v1/health")
    return proc, base, data


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


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
