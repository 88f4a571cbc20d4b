"""Robocorp robots deployed as they are (robot.yaml, no runplane.toml): a task chosen
at deploy (or a process per task), its conda.yaml's pip packages in its own environment,
its PATH and PYTHONPATH entries, ROBOT_ROOT and a per-execution ROBOT_ARTIFACTS; any
trigger input is accepted as its payload."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dependencies import LIBRARY, start
from tests.support import Server, ServerFactory, admin_cli, wait_terminal

PY = f"{sys.version_info.major}.{sys.version_info.minor}"

ROBOT_YAML = """
tasks:
  Write report:
    shell: python report.py --kind "monthly report"
  Other task:
    command: [python, -c, "print('other')"]
condaConfigFile: conda.yaml
artifactsDir: output
PATH:
  - bin
PYTHONPATH:
  - lib
"""
REPORT = """
import json, os, subprocess, sys
import helper, rp_pinprobe

inputs = json.load(open(os.environ["RUNPLANE_INPUT"]))
artifacts = os.environ["ROBOT_ARTIFACTS"]
with open(os.path.join(artifacts, "report.txt"), "w") as f:
    f.write("done")
tool = subprocess.run(["tool"], capture_output=True, text=True, check=True).stdout.strip()
json.dump(
    {
        "argv": sys.argv[1:],
        "inputs": inputs,
        "helper": helper.NAME,
        "tool": tool,
        "library": rp_pinprobe.VERSION,
        "root": os.environ["ROBOT_ROOT"],
        "cwd": os.getcwd(),
        "artifacts": sorted(os.listdir(artifacts)),
        "artifactsInRoot": os.path.commonpath([artifacts, os.environ["ROBOT_ROOT"]])
        == os.environ["ROBOT_ROOT"],
    },
    open(os.environ["RUNPLANE_OUTPUT"], "w"),
)
print("report written", flush=True)
"""


def make_robot(root: Path, name: str = "monthly-robot") -> Path:
    folder = root / name
    (folder / "bin").mkdir(parents=True)
    (folder / "lib").mkdir()
    (folder / "robot.yaml").write_text(ROBOT_YAML)
    (folder / "conda.yaml").write_text(
        f"channels: [conda-forge]\ndependencies:\n  - python={PY}\n  - pip:\n    - {LIBRARY}==1.0\n"
    )
    (folder / "report.py").write_text(REPORT)
    (folder / "lib" / "helper.py").write_text('NAME = "from lib"\n')
    tool = folder / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho from bin\n")
    tool.chmod(0o755)
    return folder


def cli(srv: Server, tmp_path: Path, *args: str) -> Any:
    return admin_cli(srv, tmp_path, *args)


def test_a_robot_folder_deploys_and_runs_its_task_as_rcc_would(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start(start_server, tmp_path)
    folder = make_robot(tmp_path)

    unchosen = cli(srv, tmp_path, "deploy", str(folder))
    assert unchosen.exit_code != 0, unchosen
    assert "'Write report'" in unchosen.stderr and "'Other task'" in unchosen.stderr, unchosen
    assert "Traceback" not in unchosen.stderr

    deployed = cli(srv, tmp_path, "deploy", str(folder), "--task", "write REPORT", "--json")
    assert deployed.exit_code == 0, deployed.stderr
    with srv.client() as client:
        version = client.get("/api/v1/processes/monthly-robot/versions/1").json()
        assert version["command"] == ["python", "report.py", "--kind", "monthly report"]
        assert version["dependencies"]["requirements"] == [f"{LIBRARY}==1.0"]
        assert version["parameters"] == []
        started = client.post(
            "/api/v1/processes/monthly-robot/executions",
            json={"inputArguments": {"customer": "42", "lines": [1, 2]}},
        )
        assert started.status_code == 201, started.text
        done = wait_terminal(client, started.json()["id"], timeout=120)
        assert done["status"] == "succeeded", done
        result = done["result"]
        assert result["argv"] == ["--kind", "monthly report"]
        assert result["inputs"] == {"customer": "42", "lines": [1, 2]}
        assert (result["helper"], result["tool"], result["library"]) == (
            "from lib",
            "from bin",
            "1.0",
        )
        assert result["cwd"] == result["root"] and result["artifacts"] == ["report.txt"]
        assert result["artifactsInRoot"] is False, "each execution has its own artifacts"

        # Another task of the same robot is a process of its own...
        other = cli(
            srv, tmp_path, "deploy", str(folder), "--task", "Other task", "--name", "robot-other"
        )
        assert other.exit_code == 0, other.stderr
        doc = wait_terminal(
            client,
            client.post("/api/v1/processes/robot-other/executions", json={}).json()["id"],
        )
        assert doc["status"] == "succeeded", doc
        # ...not another task of the same process's version
        again = cli(srv, tmp_path, "deploy", str(folder), "--task", "Other task")
        assert again.exit_code != 0 and "process of its own" in again.stderr, again


def test_a_robot_yaml_with_problems_is_refused_naming_each(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start_server.start("--no-demo", "--slots", "0")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "robot.yaml").write_text(
        "tasks:\n  A:\n    shell: python a.py\n    command: [x]\n"
        "PATH: [/usr/bin]\npreRunScripts: [setup.sh]\n"
    )
    refused = cli(srv, tmp_path, "deploy", str(folder), "--json")
    assert refused.exit_code != 0
    problem = json.loads(refused.stdout or refused.stderr)
    names = sorted(p["name"] for p in problem.get("errors", problem.get("problems", [])))
    assert names == ["PATH", "artifactsDir", "preRunScripts", "tasks.A"], problem


WORKITEMS_ROBOT = """
tasks:
  Handle order:
    shell: python -m robocorp.tasks run tasks.py
condaConfigFile: conda.yaml
artifactsDir: output
"""
WORKITEMS_CONDA = f"""
channels: [conda-forge]
dependencies:
  - python={PY}
  - pip=24.0
  - pip:
    - robocorp-tasks==4.1.1
    - robocorp-workitems==1.5.1
"""
WORKITEMS_TASKS = """
import os
from pathlib import Path

from robocorp import workitems
from robocorp.tasks import task


@task
def handle_order():
    item = workitems.inputs.current
    payload = item.payload
    print(f"input {payload}", flush=True)
    if payload.get("fail") == "business":
        item.fail("BUSINESS", code="INVALID_ORDER", message="Order 42 is not valid")
        return
    note = Path(os.environ["ROBOT_ARTIFACTS"]) / "note.txt"
    note.write_text("a note")
    workitems.outputs.create({"stage": "first"})
    output = workitems.outputs.create(
        {"greeting": f"hello {payload.get('name')}", "seen": payload}, save=False
    )
    output.add_file(note)
    output.save()
    item.done()
"""


def pypi_reachable() -> str | None:
    import httpx

    try:
        httpx.head("https://pypi.org/simple/robocorp-workitems/", timeout=10)
    except httpx.HTTPError as exc:
        return str(exc)
    return None


@pytest.mark.slow  # installs robocorp-tasks and robocorp-workitems from PyPI
def test_an_unchanged_robocorp_robot_reads_and_writes_work_items(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    why = pypi_reachable()
    if why is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"this test installs robocorp-workitems from PyPI: {why}")
        pytest.skip(f"PyPI is not reachable (robocorp-workitems is installed from it): {why}")
    srv = start_server.start("--no-demo", "--slots", "2")
    folder = tmp_path / "order-robot"
    folder.mkdir()
    (folder / "robot.yaml").write_text(WORKITEMS_ROBOT)
    (folder / "conda.yaml").write_text(WORKITEMS_CONDA)
    (folder / "tasks.py").write_text(WORKITEMS_TASKS)
    deployed = cli(srv, tmp_path, "deploy", str(folder))
    assert deployed.exit_code == 0, deployed.stderr
    with srv.client() as client:
        # Through the native API: the input arguments are the input item's payload; the
        # result is the last output item's payload.
        started = client.post(
            "/api/v1/processes/order-robot/executions", json={"inputArguments": {"name": "Ada"}}
        )
        assert started.status_code == 201, started.text
        done = wait_terminal(client, started.json()["id"], timeout=240)
        log = client.get(f"/api/v1/executions/{done['id']}/logs").text
        assert done["status"] == "succeeded", (done, log)
        assert done["result"] == {"greeting": "hello Ada", "seen": {"name": "Ada"}}, done
        assert "input {'name': 'Ada'}" in log, log
        # Its artifacts, through the native API...
        listed = client.get(f"/api/v1/executions/{done['id']}/artifacts").json()["items"]
        # robocorp-tasks writes its log.html there too, as under Control Room
        assert {a["name"] for a in listed} == {"log.html", "note.txt", "output.robolog"}, listed
        assert {a["attempt"] for a in listed} == {1}
        got = client.get(f"/api/v1/executions/{done['id']}/artifacts/note.txt")
        assert got.status_code == 200 and got.content == b"a note", got
        # ...and its work items: the input (released done), then its two outputs.
        items = client.get(f"/api/v1/executions/{done['id']}/work-items").json()["items"]
        assert [(i["kind"], i["state"]) for i in items] == [
            ("input", "COMPLETED"),
            ("output", None),
            ("output", None),
        ], items
        assert items[0]["payload"] == {"name": "Ada"} and items[1]["payload"] == {"stage": "first"}
        assert [f["name"] for f in items[2]["files"]] == ["note.txt"], items

        # Through Robocorp's process API: a run, its items (input and outputs, with files).
        run = client.post(
            "/process-v1/workspaces/default/processes/order-robot/runs", json={"name": "Bob"}
        )
        assert run.status_code == 200, run.text
        run_id = run.json()["id"]
        status = wait_terminal(client, run_id, timeout=120)
        assert status["status"] == "succeeded", status
        assert status["result"]["greeting"] == "hello Bob"
        items = client.get(
            f"/process-v1/workspaces/default/processes/order-robot/runs/{run_id}/work-items",
            params={"includeData": "true", "sortOrder": "asc"},
        ).json()["data"]
        payloads = [i["payload"] for i in items]
        assert payloads[0] == {"name": "Bob"} and {"stage": "first"} in payloads, items
        last = items[-1]
        assert [f["fileName"] for f in last["files"]] == ["note.txt"], last
        assert items[0]["state"] == "DONE", items
        # The robot run's artifacts, and a link to one that needs no credential.
        base = f"/process-v1/workspaces/default/processes/order-robot/runs/{run_id}"
        arts = client.get(f"{base}/robotRuns/{run_id}-1/artifacts").json()
        note = next(a for a in arts if a["fileName"] == "note.txt")
        assert "log.html" in {a["fileName"] for a in arts}, arts
        link = client.get(f"{base}/robotRuns/{run_id}-1/artifacts/{note['id']}/note.txt")
        assert link.status_code == 200, link.text
        import httpx

        fetched = httpx.get(link.json(), timeout=10)
        assert fetched.status_code == 200 and fetched.content == b"a note"
        forged = httpx.get(link.json().split("?")[0] + "?token=nope", timeout=10)
        assert forged.status_code == 403

        # A BUSINESS exception fails the execution with its code and message.
        failed = client.post(
            "/api/v1/processes/order-robot/executions",
            json={"inputArguments": {"fail": "business"}},
        ).json()
        ended = wait_terminal(client, failed["id"], timeout=120)
        assert ended["status"] == "failed", ended
        assert ended["error"] == {"code": "INVALID_ORDER", "message": "Order 42 is not valid"}
        items = client.get(f"/api/v1/executions/{ended['id']}/work-items").json()["items"]
        assert items[0]["state"] == "FAILED" and items[0]["exception"] == {
            "type": "BUSINESS",
            "code": "INVALID_ORDER",
            "message": "Order 42 is not valid",
        }, items
