"""Launchers side by side: starting a no-op execution, wall time and CPU.

    python bench/launchers.py [--runs 100]

Runs the same no-op Python entry point (and a no-op shell command) through
the executor, one at a time, with each launcher: `spawn` (a fresh interpreter
per execution), `warm` (forked by the fork server) and `warm` with `preload`
(forked from a zygote that imported the module). Prints the p50 launch →
outcome time and the CPU per execution of everything involved: this process
(the runtime's side), the spawned supervisors and their children, and the
fork server and zygotes with every process they forked (their own times plus
their reaped children's, from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runplane.runtime.executor import Job, SpawnLauncher
from runplane.runtime.warm import WarmLauncher

TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """Seconds of CPU of a process and its reaped descendants."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def sink(text: str) -> None:
    pass


async def measure(
    launcher: WarmLauncher | SpawnLauncher, folder: Path, runs: int, **kind: object
) -> tuple[float, float]:
    await launcher.warm_up()
    await asyncio.sleep(0.3)
    work = Path(tempfile.mkdtemp(prefix="bench-work-"))

    def job(n: int) -> Job:
        return Job(
            f"e{n}",
            1,
            folder,
            inputs={},
            secret_values=(),
            timeout_seconds=30,
            work_root=work,
            **kind,
        )  # type: ignore[arg-type]

    for n in range(5):  # warm-up: page cache, zygote
        await (await launcher.start(job(n), sink)).wait()
    forked: list[int] = []  # the fork server and the zygotes: their trees' CPU
    if isinstance(launcher, WarmLauncher) and launcher.server_pid is not None:
        forked = [launcher.server_pid, *launcher.zygote_pids]
    cpu0, fork0 = own_cpu(), sum(map(tree_cpu, forked))
    times = []
    for n in range(runs):
        t0 = time.perf_counter()
        outcome = await (await launcher.start(job(n), sink)).wait()
        times.append((time.perf_counter() - t0) * 1000)
        if outcome.status != "succeeded":
            raise SystemExit(f"{outcome}")
    await asyncio.sleep(0.2)  # the last supervisor reaped by the fork server
    cpu = own_cpu() - cpu0 + sum(map(tree_cpu, forked)) - fork0
    await launcher.close()
    return statistics.median(times), cpu / runs * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}   python: {sys.version.split()[0]}   runs: {args.runs}")
    folder = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    (folder / "noop.py").write_text("def main():\n    return {}\n")
    (folder / "noop.sh").write_text("#!/bin/sh\nexit 0\n")
    (folder / "noop.sh").chmod(0o755)
    python = {"entrypoint": "noop:main", "command": None}
    shell = {"entrypoint": None, "command": ["./noop.sh"]}
    rows = [
        ("spawn, entry point", SpawnLauncher(), python),
        ("warm, entry point", WarmLauncher(), python),
        ("warm + preload, entry point", WarmLauncher(), {**python, "preload": True}),
        ("spawn, command", SpawnLauncher(), shell),
        ("warm, command", WarmLauncher(), shell),
    ]
    results = [
        (label, *await measure(launcher, folder, args.runs, **kind))
        for label, launcher, kind in rows
    ]
    base = results[0]
    print(f"{'launcher':30s} {'p50 launch→outcome':>19s} {'CPU/execution':>14s}  vs spawn")
    for label, p50, cpu in results:
        ratios = f"{p50 / base[1]:.2f}x / {cpu / base[2]:.2f}x"
        print(f"{label:30s} {p50:16.1f} ms {cpu:11.1f} ms  {ratios}")


if __name__ == "__main__":
    asyncio.run(main())
