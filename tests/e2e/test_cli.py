"""The `runplane` command end to end: real CLI processes against a real `runplane serve`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runplane.examples import example
from tests.cli_runner import run_cli
from tests.support import ADMIN, ADMIN_TOKEN, make_process

CLI_TIMEOUT_SECONDS = 90


@dataclass
class Result:
    """One finished `runplane` invocation."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Result]


@pytest.fixture(scope="module")
def base(module_server: Callable[..., Any]) -> str:
    """A server with two execution slots and no demo: the tests deploy what they run."""
    return str(module_server("--slots", "2", "--no-demo").base)


@pytest.fixture(scope="module")
def cli(base: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Run `runplane ARGS...` as its own process (tests/cli_runner.py) against the
    module's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env["RUNPLANE_SERVER"] = base
    env["RUNPLANE_TOKEN"] = ADMIN_TOKEN
    # Never a real user's config file (`runplane login`'s), whatever the test does.
    env["RUNPLANE_CONFIG"] = str(tmp_path_factory.mktemp("cli-config") / "config.toml")

    def run(*args: str) -> Result:
        done = run_cli(args, env=env, timeout=CLI_TIMEOUT_SECONDS)
        return Result(done.exit_code, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Path:
    """Deploys `hello` (the shipped example) and `echo` (typed inputs, fails on demand)."""
    root = tmp_path_factory.mktemp("processes")
    echo = make_process(
        root,
        "echo",
        manifest="""
        entrypoint = "main:main"
        [parameters.count]
        type = "integer"
        default = 0
        [parameters.ratio]
        type = "number"
        default = 0
        [parameters.flag]
        type = "boolean"
        default = false
        [parameters.tags]
        type = "array"
        default = []
        [parameters.meta]
        type = "object"
        default = {}
        [parameters.fail]
        type = "boolean"
        default = false
        [parameters.hold]
        type = "number"
        default = 0
        """,
        code="""
        import time

        def main(fail, hold, **inputs):
            print("echo got", sorted(inputs), flush=True)
            time.sleep(hold)  # the process waits, not the test: it is cancelled
            if fail:
                raise RuntimeError("failing on purpose")
            return inputs
        """,
    )
    for folder in (example("hello"), echo):
        result = cli("deploy", str(folder), "--json")
        assert result.exit_code == 0, result.stderr
    return root


def test_deploy_then_run_wait_gives_the_greeting(cli: Cli) -> None:
    deployed = cli("deploy", str(example("hello")), "--environment", "production", "--json")
    assert deployed.exit_code == 0, deployed.stderr
    doc = deployed.json()
    assert doc["version"]["process"] == "hello"
    assert doc["deployment"]["environment"] == "production"
    assert doc["deployment"]["version"] == doc["version"]["version"]

    result = cli("run", "hello", "-i", "name=Ada", "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    record = result.json()
    assert record["status"] == "succeeded"
    assert record["result"] == {"greeting": "Hello, Ada!"}


def test_run_wait_prints_the_result_object_for_people(cli: Cli, processes: Path) -> None:
    result = cli("run", "hello", "-i", "name=Bob", "--wait")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"greeting": "Hello, Bob!"}


def test_run_coerces_inputs_by_their_declared_types(cli: Cli, processes: Path) -> None:
    result = cli(
        "run",
        "echo",
        *("-i", "count=3", "-i", "ratio=0.5", "-i", "flag=yes"),
        *("-i", 'tags=["a", 2]', "-i", 'meta={"k": null}'),
        "--wait",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["result"] == {
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", 2],
        "meta": {"k": None},
    }


def test_run_of_a_failing_process_exits_1(cli: Cli, processes: Path) -> None:
    result = cli("run", "echo", "-i", "fail=true", "--wait", "--json")
    assert result.exit_code == 1
    record = result.json()
    assert record["status"] == "failed"
    assert "failing on purpose" in record["error"]["message"]

    result = cli("run", "echo", "-i", "fail=1", "--wait")
    assert result.exit_code == 1
    assert "failing on purpose" in result.stderr
    assert result.stdout == ""


def test_an_unknown_input_is_refused_by_name(cli: Cli, processes: Path) -> None:
    result = cli("run", "hello", "-i", "nmae=Ada", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    problem = json.loads(result.stderr)
    assert problem["status"] == 422
    assert [e["name"] for e in problem["errors"]] == ["nmae"]


def test_a_bad_manifest_is_refused_before_anything_is_uploaded(
    cli: Cli, base: str, tmp_path: Path
) -> None:
    folder = make_process(
        tmp_path, "broken", manifest='entrypoint = "not a callable"\ncolour = "red"'
    )
    result = cli("deploy", str(folder))
    assert result.exit_code == 1
    assert "process.entrypoint" in result.stderr
    assert "process.colour" in result.stderr

    listed = cli("processes", "list", "--json")
    assert "broken" not in [p["name"] for p in listed.json()["items"]]
    assert httpx.get(f"{base}/api/v1/processes/broken", headers=ADMIN).status_code == 404


def test_executions_list_shows_the_executions(cli: Cli, processes: Path) -> None:
    started = cli("run", "hello", "-i", "name=List", "--json").json()

    result = cli("executions", "list", "--process", "hello", "--limit", "50", "--json")
    assert result.exit_code == 0, result.stderr
    page = result.json()
    assert started["id"] in [item["id"] for item in page["items"]]
    assert all(item["process"] == "hello" for item in page["items"])
    assert "nextCursor" in page

    table = cli("executions", "list", "--process", "hello")
    assert started["id"] in table.stdout  # ids are never cut short in a table


def test_executions_logs_print_what_the_process_printed(cli: Cli, processes: Path) -> None:
    record = cli("run", "hello", "-i", "name=Logs", "--wait", "--json").json()

    result = cli("executions", "logs", record["id"], "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"id": record["id"], "log": "Hello, Logs!\n"}

    followed = cli("executions", "logs", record["id"], "--follow")
    assert followed.exit_code == 0, followed.stderr
    assert followed.stdout == "Hello, Logs!\n"


def test_follow_streams_the_log_until_the_execution_ends(cli: Cli, processes: Path) -> None:
    started = cli("run", "echo", "-i", "hold=1", "--json").json()
    followed = cli("executions", "logs", started["id"], "--follow")
    assert followed.exit_code == 0, followed.stderr
    assert "echo got" in followed.stdout
    shown = cli("executions", "show", started["id"], "--json").json()
    assert shown["status"] == "succeeded"


def test_cancel_stops_an_execution(cli: Cli, processes: Path) -> None:
    started = cli("run", "echo", "-i", "hold=300", "--json").json()

    cancelled = cli("executions", "cancel", started["id"], "--json")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.json()["id"] == started["id"]

    shown = cli("executions", "show", started["id"], "--wait", "30", "--json")
    assert shown.json()["status"] == "cancelled"

    again = cli("executions", "cancel", started["id"], "--json")
    assert again.exit_code == 1
    assert json.loads(again.stderr)["code"] == "execution_finished"


def test_the_same_execution_id_starts_one_execution(cli: Cli, processes: Path) -> None:
    first = cli("run", "hello", "-i", "name=Once", "--execution-id", "cli-once", "--json")
    again = cli("run", "hello", "-i", "name=Once", "--execution-id", "cli-once", "--json")
    assert first.exit_code == again.exit_code == 0, first.stderr + again.stderr
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["executionId"] == "cli-once"

    other = cli("run", "hello", "-i", "name=Twice", "--execution-id", "cli-once", "--json")
    assert other.exit_code == 1
    assert json.loads(other.stderr)["code"] == "execution_id_conflict"


def test_a_stopped_server_is_a_clear_error(cli: Cli) -> None:
    result = cli("processes", "list", "--server", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "cannot reach the server at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
