"""runplane beside Celery (and Prefect), measured in one run on the same machine.

    python bench/compare.py [--only latency,burst,...] [--prefect] [--json compare.json]
                            [--serve-arg=--some-option=value ...] [--runtime-arg=... ...]

runplane (default embedded runtime, SQLite, unless said):
  latency      trigger → result of `hello` (PUT, then GET ?wait), p50, and its ratio to
               the floor app (bench/limit_e2e.py: durable insert, fork, durable update)
  latency-pg   the same on PostgreSQL (a fresh schema, dropped at the end)
  sequential   N no-op executions one after the other, total seconds
  burst        N no-op executions triggered at once, completed per second; with the CPU
               per execution of the server and every process under it (/proc, before and
               after), and of the server process alone
  runtime-rss  an idle remote `runplane runtime` with every process under it, RSS and PSS,
               once its fork server let its spare supervisor go; and RSS right after the work
  waiters      N clients holding GET ?wait=60 on an idle API-only server: its CPU
  replicas     accepted triggers/s, two `serve --slots 0` sharing one PostgreSQL (wrk)

Peers, for latency, sequential and burst: Celery 5 with Redis (a dedicated database,
flushed before and after), the same tasks in a prefork worker of concurrency 2, warm
and with a fresh child per task (worker_max_tasks_per_child=1); with --prefect, Prefect 3
(`serve`, limit 2) on its own smaller counts. A peer that is not installed or whose
service does not answer is skipped with the reason. Ratios are runplane / peer.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios
from harness import deploy_noop, p50, p99, pg_schema, server, stop_all
from peers import System, Unavailable, celery_worker, prefect_serve
from report import Report, Target, document, machine, table
from scenarios import Runplane, timed

SCENARIOS = ("latency", "latency-pg", "sequential", "burst", "runtime-rss", "waiters", "replicas")
WARMUPS = 5
WARMUP_SECONDS = 10
# the targets for these two hold for these counts only; the others are rates or per execution
TARGET_SEQUENTIAL = 40
TARGET_WAITERS = 1000


# --- measuring any system the same way ---------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How many of each, and how long each measurement may take."""

    latency: int
    sequential: int
    burst: int
    budget: float
    burst_budget: float


def measure(system: System, plan: Plan) -> dict[str, Any]:
    """Warm-ups, then trigger → result latencies, N sequential no-ops, N at once with CPU.

    Each measurement stops at its time budget: latencies keep the runs done, the
    sequential total is scaled up from the runs done, the burst's rate is what had
    succeeded by then; the figures say so ("partial").
    """
    end = time.monotonic() + WARMUP_SECONDS
    for i in range(WARMUPS):
        system.hello(i)
        system.noop(i)
        if time.monotonic() > end:
            break
    out: dict[str, Any] = {}
    if plan.latency:
        samples = timed(system.hello, plan.latency, plan.budget)
        out.update(latency_p50_ms=p50(samples), latency_p99_ms=p99(samples), runs=len(samples))
    if plan.sequential:
        samples = timed(system.noop, plan.sequential, plan.budget)
        out.update(
            sequential_s=sum(samples) / 1000 * plan.sequential / len(samples),
            sequential=len(samples),
        )
    if plan.burst:
        before = system.cpu_seconds()
        t0 = time.monotonic()
        done = system.burst(plan.burst, t0 + plan.burst_budget)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)  # the last processes reaped
        after = system.cpu_seconds()
        out.update(
            burst=plan.burst,
            burst_done=done,
            burst_per_s=done / elapsed,
            cpu_ms={k: (after[k] - before[k]) * 1000 / max(done, 1) for k in after},
        )
    return out


def partial(figures: dict[str, Any], plan: Plan) -> dict[str, str]:
    """Row key → what was cut short by its budget."""
    notes = {}
    if plan.latency and figures["runs"] < plan.latency:
        notes["latency_ms"] = f"p50 of {figures['runs']} runs, not {plan.latency}"
    if plan.sequential and figures["sequential"] < plan.sequential:
        notes["sequential_s"] = (
            f"{figures['sequential']} of {plan.sequential} runs in the budget, scaled up"
        )
    if plan.burst and figures["burst_done"] < plan.burst:
        notes["burst_per_s"] = notes["cpu_ms"] = notes["cpu_server_ms"] = (
            f"{figures['burst_done']} of {plan.burst} done in {plan.burst_budget:.0f} s"
        )
    return notes


def plan_of(args: argparse.Namespace, chosen: set[str]) -> Plan:
    return Plan(
        args.latency_runs if "latency" in chosen else 0,
        args.sequential if "sequential" in chosen else 0,
        args.burst if "burst" in chosen else 0,
        args.budget_seconds,
        args.burst_budget_seconds,
    )


# --- runplane -----------------------------------------------------------------------------


def run_embedded(args: argparse.Namespace, chosen: set[str], report: Report) -> None:
    plan = plan_of(args, chosen)
    if not (plan.latency or plan.sequential or plan.burst):
        return
    floor = None
    if plan.latency:
        print("floor app: trigger → result", flush=True)
        floor = p50(scenarios.floor_latencies(plan.latency, WARMUPS, plan.budget))
    print("runplane, SQLite, embedded runtime", flush=True)
    with server(*args.serve_arg) as srv:
        deploy_noop(srv.base)
        with contextlib.closing(Runplane(srv)) as system:
            figures = measure(system, plan)
    report.details["runplane"] = figures
    if floor is not None:
        ours = figures["latency_p50_ms"]
        report.details["floor"] = {"latency_p50_ms": floor}
        report.add("latency_ms", "trigger→result p50, hello, SQLite (ms)", ours, Target("<=", 15))
        report.add(
            "floor_ratio", f"  ÷ floor app, {floor:.1f} ms (x)", ours / floor, Target("<=", 1.6)
        )
    if plan.sequential:
        report.add(
            "sequential_s",
            f"{plan.sequential} sequential no-op executions (s)",
            figures["sequential_s"],
            Target("<=", 0.8) if plan.sequential == TARGET_SEQUENTIAL else None,
        )
    if plan.burst:
        cpu = figures["cpu_ms"]
        report.add(
            "burst_per_s",
            f"no-op executions/s, {plan.burst:,} at once",
            figures["burst_per_s"],
            Target(">=", 300),
        )
        report.add(
            "cpu_ms", "CPU per no-op execution, all processes (ms)", cpu["total"], Target("<=", 8)
        )
        report.add(
            "cpu_server_ms", "  of it in the server process (ms)", cpu["server"], Target("<=", 5)
        )
    for key, why in partial(figures, plan).items():
        report.partial[key, "runplane"] = why


def postgres_answers(args: argparse.Namespace, report: Report, what: str) -> bool:
    try:
        psycopg.connect(args.postgres, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        report.skip(what, f"PostgreSQL at {args.postgres} does not answer: {exc}".strip())
        return False
    return True


def run_postgres_latency(args: argparse.Namespace, report: Report) -> None:
    print("runplane, PostgreSQL, embedded runtime", flush=True)
    if not postgres_answers(args, report, "latency-pg"):
        return
    with pg_schema(args.postgres) as url:
        with server("--database-url", url, *args.serve_arg) as srv:
            deploy_noop(srv.base)
            plan = Plan(args.latency_runs, 0, 0, args.budget_seconds, args.burst_budget_seconds)
            with contextlib.closing(Runplane(srv)) as system:
                figures = measure(system, plan)
        report.details["runplane postgres"] = figures
        if "latency_ms" in partial(figures, plan):
            report.partial["latency_pg_ms", "runplane"] = partial(figures, plan)["latency_ms"]
        report.add(
            "latency_pg_ms",
            "trigger→result p50, hello, PostgreSQL (ms)",
            figures["latency_p50_ms"],
            Target("<=", 25),
        )


def run_api_only(args: argparse.Namespace, chosen: set[str], report: Report) -> None:
    if not {"runtime-rss", "waiters"} & chosen:
        return
    with server("--slots", "0", *args.serve_arg) as srv:
        if "runtime-rss" in chosen:
            print("runplane, an idle remote runtime", flush=True)
            rss = scenarios.runtime_rss(srv, args.runtime_arg)
            report.details["runtime-rss"] = rss
            report.add(
                "runtime_rss_mb",
                f"idle remote runtime RSS, {rss['processes']} process(es) (MB)",
                rss["rss_mb"],
                Target("<=", 40),
            )
            report.add(
                "runtime_pss_mb",
                "  its PSS (shared pages split among the processes) (MB)",
                rss["pss_mb"],
                None,
            )
            busy = rss["just_after_work"]
            report.add(
                "runtime_busy_rss_mb",
                f"  2 s after its last execution, {busy['processes']} process(es), RSS (MB)",
                busy["rss_mb"],
                None,
            )
        if "waiters" in chosen:
            print(f"runplane, {args.waiters:,} held ?wait=60", flush=True)
            held = scenarios.held_waits(srv, args.waiters, args.idle_seconds)
            report.details["waiters"] = held
            report.add(
                "waiters_pct",
                f"{args.waiters:,} clients holding ?wait=60 (% of a core)",
                held["core_fraction"] * 100,
                Target("<", 5) if args.waiters == TARGET_WAITERS else None,
            )


def run_replicas(args: argparse.Namespace, report: Report) -> None:
    if shutil.which("wrk") is None:
        report.skip("replicas", "wrk is not installed (Debian: apt-get install wrk)")
        return
    print("runplane, two PostgreSQL replicas, accept", flush=True)
    if not postgres_answers(args, report, "replicas"):
        return
    with pg_schema(args.postgres) as url:
        flags = ("--slots", "0", "--no-demo", "--database-url", url, *args.serve_arg)
        with server(*flags) as a, server(*flags) as b:
            figures = scenarios.replicas_accept(a, b, args.accept_seconds, args.connections)
        report.details["replicas"] = figures
        report.add(
            "replicas_per_s",
            "accepted triggers/s, 2 PostgreSQL replicas",
            figures["per_second"],
            Target(">=", 2000),
        )


# --- peers --------------------------------------------------------------------------------


def run_peer(
    name: str,
    start: Callable[[], contextlib.AbstractContextManager[System]],
    plan: Plan,
    report: Report,
) -> None:
    print(name, flush=True)
    try:
        with start() as system:
            figures = measure(system, plan)
    except Unavailable as exc:
        report.skip(name, str(exc))
        return
    report.details[name] = figures
    for key, figure in (
        ("latency_ms", figures.get("latency_p50_ms")),
        ("sequential_s", figures.get("sequential_s")),
        ("burst_per_s", figures.get("burst_per_s")),
        ("cpu_ms", figures.get("cpu_ms", {}).get("total")),
    ):
        if figure is not None:
            report.peer(key, name, figure)
    for key, why in partial(figures, plan).items():
        report.partial[key, name] = why


def run_peers(args: argparse.Namespace, chosen: set[str], report: Report) -> None:
    plan = plan_of(args, chosen)
    if not (plan.latency or plan.sequential or plan.burst):
        return
    if args.no_celery:
        report.skip("celery", "--no-celery")
    else:
        for name, fresh in (("celery warm", False), ("celery fresh", True)):
            run_peer(name, functools.partial(celery_worker, args.redis, fresh), plan, report)
    if args.prefect:
        small = Plan(
            min(plan.latency, args.prefect_runs),
            0,
            min(plan.burst, args.prefect_burst),
            plan.budget,
            plan.burst_budget,
        )
        run_peer("prefect", prefect_serve, small, report)
        figures = report.details.get("prefect", {})
        if "runs" in figures:
            report.partial.setdefault(
                ("latency_ms", "prefect"), f"p50 of {figures['runs']} runs (--prefect-runs)"
            )
        if "burst" in figures:
            why = f"{figures['burst_done']} of {figures['burst']} at once (--prefect-burst)"
            for key in ("burst_per_s", "cpu_ms"):
                report.partial.setdefault((key, "prefect"), why)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    ap.add_argument("--skip", help="comma-separated scenarios to leave out")
    ap.add_argument("--no-celery", action="store_true", help="leave Celery out")
    ap.add_argument("--prefect", action="store_true", help="add Prefect 3 when installed")
    ap.add_argument("--latency-runs", type=int, default=100)
    ap.add_argument("--sequential", type=int, default=TARGET_SEQUENTIAL)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--waiters", type=int, default=TARGET_WAITERS)
    ap.add_argument("--idle-seconds", type=float, default=5, help="span of the waiters' CPU")
    ap.add_argument("--accept-seconds", type=int, default=8, help="wrk duration, replicas")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections, in all")
    ap.add_argument(
        "--budget-seconds",
        type=float,
        default=15,
        help="at most this long for each system's latency runs, and for its sequential runs",
    )
    ap.add_argument(
        "--burst-budget-seconds",
        type=float,
        default=45,
        help="at most this long for each system's burst",
    )
    ap.add_argument("--prefect-runs", type=int, default=5, help="Prefect's latency runs")
    ap.add_argument("--prefect-burst", type=int, default=10, help="Prefect's runs at once")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a database of its own")
    ap.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to every `runplane serve` (repeat; --serve-arg=--flag=value)",
    )
    ap.add_argument(
        "--runtime-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to `runplane runtime` (repeat)",
    )
    ap.add_argument("--json", default="compare.json", help="where to write the figures")
    args = ap.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else set(SCENARIOS)
    chosen -= set(args.skip.split(",")) if args.skip else set()
    unknown = chosen - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    args.scenarios = [s for s in SCENARIOS if s in chosen]
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so every `with` stops what it started


def main() -> None:
    args = parse()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us ignoring it
        signal.signal(signum, _interrupt)
    chosen = set(args.scenarios)
    started = time.monotonic()
    report = Report()
    info = machine()
    print(
        f"cores: {info['cores']}   python: {info['python']}   SQLite: {info['sqlite']}   "
        f"load: {info['load'][0]:.1f}   scenarios: {', '.join(args.scenarios)}",
        flush=True,
    )
    code = 0
    try:
        run_embedded(args, chosen, report)
        if "latency-pg" in chosen:
            run_postgres_latency(args, report)
        run_api_only(args, chosen, report)
        if "replicas" in chosen:
            run_replicas(args, report)
        run_peers(args, chosen, report)
    except KeyboardInterrupt:
        report.skip("the rest", "interrupted")
        code = 130
    except SystemExit as exc:  # a measurement went wrong: say what, keep what was measured
        report.skip("the rest", f"failed: {exc}")
        code = 1
    finally:
        stop_all()
    print()
    print(table(report))
    for s in report.skipped:
        print(f"skipped {s['what']}: {s['reason']}")
    options = {k: v for k, v in vars(args).items() if k != "json"}
    doc = document(report, options, time.monotonic() - started)
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n{time.monotonic() - started:.0f} s; figures in {args.json}")
    sys.exit(code)


if __name__ == "__main__":
    main()
