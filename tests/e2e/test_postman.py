"""The Postman collection of the MuleSoft flow (docs/postman/), run by newman against a
real server: token, PUT 201, PUT 204, GET polled to success. newman comes from npm into
the gitignored .cache/newman at the project root, installed once and then reused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support import Server, ServerFactory, deploy, make_process

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "docs" / "postman" / "runplane-mulesoft.postman_collection.json"
NEWMAN_DIR = ROOT / ".cache" / "newman"
NEWMAN = NEWMAN_DIR / "node_modules" / ".bin" / "newman"
NEWMAN_SPEC = "newman@6"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
PROCESS = "postman-bot"


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where newman must run (as PostgreSQL must)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"newman is required under CI=true: {reason}")
    pytest.skip(reason)


def _newman_version() -> str | None:
    if not NEWMAN.exists():
        return None
    try:
        out = subprocess.run(
            [str(NEWMAN), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="session")
def newman() -> Path:
    """newman 6 from npm in .cache/newman: installed on first use, reused after."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"{' and '.join(missing)} not found on PATH; newman needs Node.js and npm")
    if (_newman_version() or "").startswith("6."):
        return NEWMAN
    NEWMAN_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        install = subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(NEWMAN_DIR),
                "--no-audit",
                "--no-fund",
                "--no-update-notifier",
                "--loglevel=error",
                NEWMAN_SPEC,
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"npm install {NEWMAN_SPEC} took more than 240 s")
    if install.returncode != 0 or not (_newman_version() or "").startswith("6."):
        _unavailable(
            f"npm install {NEWMAN_SPEC} failed ({install.returncode}):\n"
            f"{install.stdout[-2000:]}{install.stderr[-2000:]}"
        )
    print(f"installed {NEWMAN_SPEC} in {time.monotonic() - started:.1f} s")
    return NEWMAN


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    with srv.client() as admin:
        deploy(
            admin,
            make_process(
                tmp_path_factory.mktemp("p"),
                PROCESS,
                manifest="""
                entrypoint = "main:main"
                [parameters.name]
                type = "string"
                required = true
                [parameters.fail]
                type = "boolean"
                default = false
                [outputs.greeting]
                type = "string"
                """,
                # long enough that the status request has to poll more than once
                code="""
                import time

                def main(name, fail):
                    if fail:
                        raise RuntimeError("printer on fire")
                    time.sleep(1.5)
                    return {"greeting": f"Hello, {name}!"}
                """,
            ),
        )
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def app(server: Server) -> dict[str, Any]:
    with server.client() as admin:
        r = admin.post(
            "/api/v1/apps",
            json={"name": "postman", "scopes": ["executions:start", "executions:read"]},
        )
    assert r.status_code == 201, r.text
    return dict(r.json())


def run_newman(newman: Path, report: Path, *env_vars: str) -> subprocess.CompletedProcess[str]:
    args = [str(newman), "run", str(COLLECTION)]
    for pair in env_vars:
        args += ["--env-var", pair]
    args += [
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--timeout-request",
        "15000",
        "--color",
        "off",
        "--disable-unicode",
    ]
    env = dict(os.environ)
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy  # loopback only, never through a proxy
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)


def newman_args(server: Server, app: dict[str, Any], *extra: str) -> list[str]:
    return [
        f"baseUrl={server.base}",
        f"clientId={app['clientId']}",
        f"clientSecret={app['clientSecret']}",
        f"process={PROCESS}",
        "pollDelayMs=250",
        "pollTries=120",
        *extra,
    ]


def execution_ids(server: Server) -> list[str]:
    """The executionIds of the process's executions, through the native API."""
    with server.client() as admin:
        r = admin.get("/api/v1/executions", params={"process": PROCESS, "limit": 500})
    assert r.status_code == 200, r.text
    return [e["executionId"] for e in r.json()["items"]]


@pytest.mark.timeout(360)  # the first run installs newman
def test_newman_runs_the_collection_to_success(
    newman: Path, server: Server, app: dict[str, Any], tmp_path: Path
) -> None:
    before = execution_ids(server)
    report = tmp_path / "newman.json"
    started = time.monotonic()
    done = run_newman(newman, report, *newman_args(server, app, 'inputArguments={"name": "Ada"}'))
    output = (
        f"newman exited {done.returncode} after {time.monotonic() - started:.1f} s\n"
        f"{done.stdout}\n{done.stderr}"
    )
    assert done.returncode == 0, output
    print(output)

    run = json.loads(report.read_text())["run"]
    assert run["stats"]["assertions"]["failed"] == 0 and not run["failures"], output
    names = [e["item"]["name"] for e in run["executions"]]
    assert names[:3] == [
        "1. Access token (OAuth2 client credentials)",
        "2. Start the process (PUT, 201)",
        "3. Start again with the same executionId (PUT, 204)",
    ], names
    polls = run["executions"][3:]
    assert len(polls) >= 2, names  # the process sleeps: the status request polled again
    assert {e["item"]["name"] for e in polls} == {"4. Poll the status until it ends (GET)"}
    codes = [e["response"]["code"] for e in run["executions"]]
    assert codes[:3] == [200, 201, 204] and set(codes[3:]) == {200}, codes
    passed = {a["assertion"] for e in run["executions"] for a in e.get("assertions", [])}
    assert {"token: token_type is bearer", "status: success", "status: result is an object"} <= (
        passed
    )

    # the executionId the start request made up ({{$guid}}), the same one polled
    execution_id = json.loads(run["executions"][1]["request"]["body"]["raw"])["executionId"]
    assert str(uuid.UUID(execution_id)) == execution_id
    assert [e["request"]["url"]["path"][-1] for e in polls] == [execution_id] * len(polls)

    with server.client() as admin:
        native = admin.get(f"/api/v1/processes/{PROCESS}/executions/{execution_id}")
    assert native.status_code == 200, native.text
    assert native.json()["status"] == "succeeded"
    assert native.json()["result"] == {"greeting": "Hello, Ada!"}
    # two PUTs with that executionId, one execution
    assert [e for e in execution_ids(server) if e not in before] == [execution_id]


@pytest.mark.timeout(360)  # the first run installs newman
def test_a_failed_run_fails_newman_and_keeps_a_given_execution_id(
    newman: Path, server: Server, app: dict[str, Any], tmp_path: Path
) -> None:
    execution_id = f"order-{uuid.uuid4().hex[:8]}"
    report = tmp_path / "newman.json"
    done = run_newman(
        newman,
        report,
        *newman_args(
            server,
            app,
            f"executionId={execution_id}",
            'inputArguments={"name": "Bob", "fail": true}',
        ),
    )
    output = f"newman exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 1, output
    run = json.loads(report.read_text())["run"]
    failed = [f["error"]["test"] for f in run["failures"]]
    assert failed == ["status: success"], output  # error has a result object too
    start = json.loads(run["executions"][1]["request"]["body"]["raw"])
    assert start == {"executionId": execution_id, "inputArguments": {"name": "Bob", "fail": True}}
    with server.client() as admin:
        native = admin.get(f"/api/v1/processes/{PROCESS}/executions/{execution_id}").json()
    assert native["status"] == "failed"


def test_the_collection_is_postman_v21_with_the_documented_variables() -> None:
    """What the Postman app's import and newman read: v2.1 info, variables, four requests."""
    doc = json.loads(COLLECTION.read_text())
    assert doc["info"]["schema"] == SCHEMA_V21 and doc["info"]["name"]
    variables = {v["key"]: v["value"] for v in doc["variable"]}
    assert {"baseUrl", "clientId", "clientSecret", "process", "executionId", "inputArguments"} <= (
        variables.keys()
    )
    assert variables["executionId"] == ""  # made by the start request's pre-request script
    assert isinstance(json.loads(variables["inputArguments"]), dict)
    assert all(isinstance(v, str) for v in variables.values())
    requests = [(i["request"]["method"], i["request"]["url"]["raw"]) for i in doc["item"]]
    ms = "{{baseUrl}}/mulesoft/rpa/api/v2/processes/{{process}}/executions"
    assert requests == [
        ("POST", "{{baseUrl}}/accounts/api/v2/oauth2/token"),
        ("PUT", ms),
        ("PUT", ms),
        ("GET", ms + "/{{executionId}}"),
    ]
    for item in doc["item"]:
        assert item["name"] and isinstance(item["response"], list)
        url = item["request"]["url"]
        assert url["raw"] == "/".join([*url["host"], *url["path"]])
        for event in item["event"]:
            assert event["listen"] in ("prerequest", "test")
            assert event["script"]["type"] == "text/javascript"
            assert all(isinstance(line, str) for line in event["script"]["exec"])
    assert doc["item"][0]["request"]["auth"]["type"] == "basic"
    assert doc["auth"]["type"] == "bearer"
