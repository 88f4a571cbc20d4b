"""Schedules on two PostgreSQL replicas, each killed around a due time: every due time
starts exactly one execution (real minute boundaries: a slow test)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_replicas import start_replicas
from tests.support import ServerFactory, deploy, make_process, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MINUTES = 3  # due times watched; a replica is killed around each but the first


@pytest.mark.timeout(600)
def test_each_due_time_runs_once_with_replicas_killed_around_it(
    start_server: ServerFactory, pg_schema_url: str, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {"RUNPLANE_SCHEDULE_INTERVAL_SECONDS": "0.2"}
    replicas = start_replicas(start_server, pg_schema_url, 2, env=env)
    folder = make_process(
        tmp_path, "tick", code="def main():\n    return {}\n", manifest='entrypoint = "main:main"'
    )
    with replicas[0].client() as client:
        deploy(client, folder)
        r = client.post(
            "/api/v1/processes/tick/deployments/production/schedules",
            json={"name": "every-minute", "cron": "* * * * *"},
        )
        assert r.status_code == 201, r.text
        schedule = r.json()
    first_due = datetime.fromisoformat(schedule["nextDueTimes"][0])
    dues = [first_due + timedelta(minutes=i) for i in range(MINUTES)]

    for i, due in enumerate(dues):
        if i == 0:
            continue
        victim = replicas[i % 2]
        # Killed somewhere from 1.5 s before the due time to 0.5 s after it, and back
        # a few seconds later: the other replica (or it, restarted) starts the run.
        kill_at = due - timedelta(seconds=random.uniform(-0.5, 1.5))
        time.sleep(max(0.0, (kill_at - datetime.now(UTC)).total_seconds()))
        victim.kill()
        time.sleep(random.uniform(1.0, 3.0))
        victim.start()

    time.sleep(max(0.0, (dues[-1] - datetime.now(UTC)).total_seconds()) + 3)
    expected = {f"schedule-{schedule['id']}-{d.strftime('%Y%m%dT%H%M%SZ')}" for d in dues}
    with replicas[0].client() as client:

        def all_started() -> list[str] | None:
            items = client.get(
                "/api/v1/executions", params={"process": "tick", "limit": 100}
            ).json()["items"]
            ids = [i["executionId"] for i in items]
            return ids if expected <= set(ids) else None

        ids = wait_until(all_started, timeout=30)
    ran = [i for i in ids if i in expected]
    assert sorted(ran) == sorted(expected), ids  # each watched due time exactly once
    assert len(ids) == len(set(ids))
