"""Schedules end to end: declared in runplane.toml, managed by API and CLI, shown with
their next due times, and run by the server when due (the due time moved into the past
in the database, rather than waiting for the clock)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import Server, ServerFactory, admin_cli, deploy, make_process, wait_until

CODE = """
import json
import os

def main(mode):
    print(f"mode {mode}", flush=True)
    return {"mode": mode, "execution": os.environ["RUNPLANE_EXECUTION_ID"]}
"""
MANIFEST = """
entrypoint = "main:main"
[parameters.mode]
type = "string"
required = true
[[schedules]]
name = "nightly"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
inputs = { mode = "nightly" }
"""


def cli(srv: Server, tmp_path: Path, *args: str) -> Any:
    return admin_cli(srv, tmp_path, *args)


def make_due(srv: Server, schedule_id: str, ago: timedelta = timedelta(seconds=1)) -> str:
    """Move a schedule's next due time into the past (as the clock would); returns it."""
    due = (datetime.now(UTC) - ago).replace(microsecond=0)
    with sqlite3.connect(srv.data_dir / "runplane.db") as conn:
        stored = conn.execute(
            "SELECT next_due_at FROM schedules WHERE id = ?", (schedule_id,)
        ).fetchone()[0]
        text = due.strftime("%Y-%m-%d %H:%M:%S.%f") if "." in stored else due.isoformat()
        conn.execute("UPDATE schedules SET next_due_at = ? WHERE id = ?", (text, schedule_id))
    return due.strftime("%Y%m%dT%H%M%SZ")


def test_declared_created_and_run_when_due(start_server: ServerFactory, tmp_path: Path) -> None:
    srv = start_server.start("--no-demo", "--slots", "2")
    folder = make_process(tmp_path, "nightly", code=CODE, manifest=MANIFEST)
    with srv.client() as client:
        deploy(client, folder)
        listed = client.get("/api/v1/schedules").json()["items"]
        assert [(s["name"], s["source"], s["inputArguments"]) for s in listed] == [
            ("nightly", "manifest", {"mode": "nightly"})
        ]
        times = listed[0]["nextDueTimes"]
        assert len(times) == 5 and all(t[11:16] == "02:30" for t in times), times
        assert all(t.endswith(("+01:00", "+02:00")) for t in times), times

        # The CLI: create (inputs coerced by the declared types), list, show, pause, resume.
        made = cli(
            srv,
            tmp_path,
            "schedules", "create", "nightly", "--cron", "*/5 * * * *", "--name", "often",
            "-i", "mode=cli", "--missed", "last", "--json",
        )  # fmt: skip
        assert made.exit_code == 0, made.stderr
        often = json.loads(made.stdout)
        assert often["environment"] == "production" and often["missed"] == "last"
        assert often["inputArguments"] == {"mode": "cli"} and often["source"] == "api"
        shown = cli(srv, tmp_path, "schedules", "show", often["id"])
        assert shown.exit_code == 0 and "*/5 * * * *" in shown.stdout, shown
        table = cli(srv, tmp_path, "schedules", "list")
        assert "often" in table.stdout and "nightly" in table.stdout, table
        paused = cli(srv, tmp_path, "schedules", "pause", often["id"], "--json")
        assert paused.exit_code == 0 and '"enabled": false' in paused.stdout, paused
        resumed = cli(srv, tmp_path, "schedules", "resume", often["id"], "--json")
        assert resumed.exit_code == 0 and '"enabled": true' in resumed.stdout, resumed

        # Bad input: every problem named, nothing stored.
        bad = client.post(
            "/api/v1/processes/nightly/deployments/production/schedules",
            json={"name": "bad", "cron": "0 8 * *", "timezone": "Mars/Base"},
        )
        assert bad.status_code in (400, 422), bad.text
        assert sorted(p["name"] for p in bad.json()["errors"]) == ["cron", "timezone"], bad.text
        refused = cli(srv, tmp_path, "schedules", "create", "nightly", "--cron", "nope")
        assert refused.exit_code != 0 and "cron" in refused.stderr, refused
        assert "Traceback" not in refused.stderr
        assert len(client.get("/api/v1/schedules").json()["items"]) == 2

        # Due: the server starts one execution, with the schedule's inputs, once.
        stamp = make_due(srv, often["id"])
        expected = f"schedule-{often['id']}-{stamp}"
        found = wait_until(
            lambda: (
                client.get(f"/api/v1/processes/nightly/executions/{expected}").status_code == 200
            ),
            timeout=30,
        )
        assert found
        run = client.get(
            f"/api/v1/processes/nightly/executions/{expected}", params={"wait": 30}
        ).json()
        assert run["status"] == "succeeded" and run["result"]["mode"] == "cli", run
        time.sleep(2.5)  # more looks: nothing more
        items = client.get("/api/v1/executions", params={"process": "nightly"}).json()["items"]
        assert [i["executionId"] for i in items] == [expected]
        after = client.get(f"/api/v1/schedules/{often['id']}").json()
        assert after["lastExecutionId"] == run["id"] and after["lastError"] is None
        assert datetime.fromisoformat(after["nextDueTimes"][0]) > datetime.now(UTC)

        deleted = cli(srv, tmp_path, "schedules", "delete", often["id"])
        assert deleted.exit_code == 0, deleted
        assert client.get(f"/api/v1/schedules/{often['id']}").status_code == 404
