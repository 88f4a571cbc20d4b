"""PostgreSQL scale-out: two API replicas with no state of their own and three remote
runtimes on one database; a deployment's concurrency limit holds across all of them."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.support import ServerFactory, deploy, make_process, runtime_token, wait_terminal

pytestmark = pytest.mark.postgres

MARKED = """
import os, time
from pathlib import Path

def main(marks):
    me = os.getpid()
    with open(Path(marks) / "events", "a") as f:
        f.write(f"start {me} {time.monotonic()}\\n")
    time.sleep(0.4)
    with open(Path(marks) / "events", "a") as f:
        f.write(f"stop {me} {time.monotonic()}\\n")
    return {"ok": True}
"""
MANIFEST = """
entrypoint = "main:main"
[parameters.marks]
type = "string"
required = true
"""


def most_at_once(events: str) -> int:
    """The largest number of executions between their start and stop markers at once."""
    points = sorted(
        (float(t), 1 if kind == "start" else -1)
        for kind, _, t in (line.split() for line in events.splitlines())
    )
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    return peak


def test_the_concurrency_limit_holds_across_two_replicas_and_three_runtimes(
    start_server: ServerFactory, pg_schema_url: str, runtimes: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    first = start_server.start("--slots", "0", "--database-url", pg_schema_url, "--no-demo")
    second = start_server.start("--slots", "0", "--database-url", pg_schema_url, "--no-demo")
    with first.client() as a, second.client() as b:
        deploy(
            a,
            make_process(tmp_path, "limited", manifest=MANIFEST, code=MARKED),
            concurrencyLimit=2,
        )
        token = runtime_token(a, "fleet")
        for i, replica in enumerate((first, first, second)):
            runtimes(
                replica, token, "--environment", "production", "--slots", "3", "--name", f"rt{i}"
            )
        ids = [
            client.post(
                "/api/v1/processes/limited/executions",
                json={"inputArguments": {"marks": str(marks)}},
            ).json()["id"]
            for client, _ in zip(itertools.cycle((a, b)), range(12), strict=False)
        ]
        done = [
            wait_terminal(client, i, timeout=90)
            for client, i in zip(itertools.cycle((b, a)), ids, strict=False)
        ]
    assert [d["status"] for d in done] == ["succeeded"] * 12
    runtimes_used = {d["runtime"] for d in done if d.get("runtime")}
    events = (marks / "events").read_text()
    assert events.count("stop ") == 12
    # 9 slots across three runtimes would run all twelve at once without the limit
    assert most_at_once(events) == 2
    assert len(runtimes_used) >= 2, runtimes_used
