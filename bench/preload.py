"""Preloading: trigger → result of a process whose import takes a second.

    python bench/preload.py [--runs 20]

Deploys the shipped example `preloaded` (its module sleeps a second while being
imported; `preload = true`) twice on one server with the default warm
launcher: as it is, and as `not-preloaded` with `preload = false`. For each it
prints the first execution (the preloaded one pays its import once, in the
zygote) and the p50 of the next `--runs` ones, each a POST with `?wait` (one
request: trigger, wait, result).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept import AUTH, serve, stop

from runplane.bundle import pack_folder
from runplane.examples import example


def deploy(c: httpx.Client, folder: Path, name: str) -> None:
    v = c.post(
        f"/api/v1/processes/{name}/versions",
        content=pack_folder(folder),
        headers={"Content-Type": "application/zip"},
    )
    v.raise_for_status()
    deployment = {"version": v.json()["version"]}
    c.put(f"/api/v1/processes/{name}/deployments/production", json=deployment).raise_for_status()


def run_once(c: httpx.Client, name: str) -> float:
    t0 = time.perf_counter()
    r = c.post(f"/api/v1/processes/{name}/executions", params={"wait": 60}, json={})
    elapsed = (time.perf_counter() - t0) * 1000
    if r.json()["status"] != "succeeded":
        raise SystemExit(f"{name} ended {r.json()['status']}: {r.json().get('error')}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}   python: {sys.version.split()[0]}")
    plain = Path(tempfile.mkdtemp(prefix="not-preloaded-")) / "process"
    shutil.copytree(example("preloaded"), plain)
    manifest = plain / "runplane.toml"
    manifest.write_text(
        manifest.read_text()
        .replace('name = "preloaded"', 'name = "not-preloaded"')
        .replace("preload = true", "preload = false")
    )
    proc, base, _ = serve("--no-demo")
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=120) as c:
            deploy(c, example("preloaded"), "preloaded")
            deploy(c, plain, "not-preloaded")
            rows = []
            for name in ("not-preloaded", "preloaded"):
                first = run_once(c, name)
                rest = [run_once(c, name) for _ in range(args.runs)]
                rows.append((name, first, statistics.median(rest)))
    finally:
        stop(proc)
    print(f"{'process':15s} {'first':>10s} {'p50 of next ' + str(args.runs):>16s}")
    for name, first, p50 in rows:
        print(f"{name:15s} {first:8.0f} ms {p50:13.1f} ms")
    print(f"preloaded / not preloaded (p50): {rows[1][2] / rows[0][2]:.3f}")


if __name__ == "__main__":
    main()
