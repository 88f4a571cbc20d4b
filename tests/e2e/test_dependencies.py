"""Dependencies per version, end to end: processes that pin different versions of one
library run side by side on one runtime, each in its own environment built once with uv
from the machine's index configuration; a build that fails fails its execution with
DEPENDENCIES_FAILED; a folder whose declaration is wrong is refused at deploy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from runplane.bundle import pack_folder
from tests.support import (
    RemoteRuntime,
    ServerFactory,
    deploy,
    make_process,
    make_wheel,
    runtime_token,
    wait_terminal,
    wait_until,
)

LIBRARY = "rp-pinprobe"
CODE = """
import os, sys
import rp_pinprobe

def main():
    print(f"rp-pinprobe {rp_pinprobe.VERSION}", flush=True)
    return {"version": rp_pinprobe.VERSION, "prefix": sys.prefix}
"""
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def start(start_server: ServerFactory, tmp_path: Path, *args: str) -> Any:
    """A server whose runtime installs from a local folder of wheels only."""
    wheels = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        make_wheel(wheels, LIBRARY, version, {"rp_pinprobe.py": f'VERSION = "{version}"\n'})
    return start_server.start(
        "--no-demo",
        "--slots",
        "6",
        *args,
        env={
            "UV_FIND_LINKS": str(wheels),
            "UV_NO_INDEX": "1",
            "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        },
    )


def trigger(client: httpx.Client, process: str) -> str:
    r = client.post(f"/api/v1/processes/{process}/executions", json={})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_two_pins_of_one_library_run_side_by_side(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start(start_server, tmp_path)
    folders = {
        "pin-one": make_process(
            tmp_path,
            "pin-one",
            code=CODE,
            manifest='entrypoint = "main:main"',
            files={"requirements.txt": f"# the old one\n{LIBRARY}==1.0\n"},
        ),
        "pin-two": make_process(
            tmp_path,
            "pin-two",
            code=CODE,
            manifest='entrypoint = "main:main"',
            files={"pyproject.toml": f'[project]\nname = "x"\ndependencies = ["{LIBRARY}==2.0"]\n'},
        ),
        "pin-conda": make_process(
            tmp_path,
            "pin-conda",
            code=CODE,
            manifest='entrypoint = "main:main"\npreload = true',
            files={
                "conda.yaml": f"""
                    channels: [conda-forge]
                    dependencies:
                      - python={PY}
                      - nodejs=22
                      - pip:
                        - {LIBRARY}==1.0
                """
            },
        ),
    }
    expected = {"pin-one": "1.0", "pin-two": "2.0", "pin-conda": "1.0"}
    with srv.client() as client:
        for folder in folders.values():
            deploy(client, folder)
        version = client.get("/api/v1/processes/pin-conda/versions/1").json()
        assert version["dependencies"] == {
            "source": "conda.yaml",
            "requirements": [f"{LIBRARY}==1.0"],
            "python": PY,
            "ignored": ["nodejs=22"],
        }
        # First executions of each, at once: each set is built once, while they wait.
        ids = {trigger(client, name): name for name in [*folders, *folders]}
        done = {eid: wait_terminal(client, eid, timeout=120) for eid in ids}
        prefixes: dict[str, set[str]] = {}
        for eid, doc in done.items():
            name = ids[eid]
            assert doc["status"] == "succeeded", doc
            assert doc["result"]["version"] == expected[name], (name, doc)
            prefixes.setdefault(name, set()).add(doc["result"]["prefix"])
            log = client.get(f"/api/v1/executions/{eid}/logs").text
            assert f"rp-pinprobe {expected[name]}" in log, log
        assert all(len(p) == 1 for p in prefixes.values()), prefixes
        assert len({p for ps in prefixes.values() for p in ps}) == 3, prefixes
        building = [
            eid
            for eid in ids
            if "building the environment" in client.get(f"/api/v1/executions/{eid}/logs").text
        ]
        assert {ids[eid] for eid in building} == set(folders), building
        conda_log = client.get(f"/api/v1/executions/{building[0]}/logs").text
        # Later executions reuse the environment: no build in their logs.
        again = {trigger(client, name): name for name in folders}
        for eid, name in again.items():
            doc = wait_terminal(client, eid)
            assert doc["status"] == "succeeded" and doc["result"]["prefix"] in prefixes[name]
            assert (
                "building the environment" not in client.get(f"/api/v1/executions/{eid}/logs").text
            )
    environments = [
        p for p in (srv.data_dir / "environments").iterdir() if (p / ".runplane-ready").exists()
    ]
    assert len(environments) == 3, environments
    assert "ready in" in conda_log


def test_a_build_that_fails_fails_its_execution_and_is_tried_again(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start(start_server, tmp_path, "--launcher", "spawn")
    folder = make_process(
        tmp_path,
        "pin-missing",
        code=CODE,
        manifest='entrypoint = "main:main"',
        files={"requirements.txt": f"{LIBRARY}==9.9\n"},
    )
    with srv.client() as client:
        deploy(client, folder)
        first = wait_terminal(client, trigger(client, "pin-missing"))
        assert first["status"] == "failed", first
        assert first["error"]["code"] == "DEPENDENCIES_FAILED", first
        assert f"{LIBRARY}==9.9" in first["error"]["message"], first
        log = client.get(f"/api/v1/executions/{first['id']}/logs").text
        assert "building the environment" in log and f"{LIBRARY}==9.9" in log, log

        make_wheel(tmp_path / "wheels", LIBRARY, "9.9", {"rp_pinprobe.py": 'VERSION = "9.9"\n'})
        second = wait_terminal(client, trigger(client, "pin-missing"))
        assert second["status"] == "succeeded", second
        assert second["result"]["version"] == "9.9"


def test_a_wrong_declaration_is_refused_at_deploy_naming_each_problem(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start_server.start("--no-demo", "--slots", "0")
    folder = make_process(
        tmp_path,
        "pin-wrong",
        code=CODE,
        manifest='entrypoint = "main:main"\ndependencies = "deps/base.txt"',
    )
    (folder / "deps").mkdir()
    (folder / "deps" / "base.txt").write_text("requests==2.31.0\n-e .\nnot a requirement!\n")
    with srv.client() as client:
        r = client.post(
            "/api/v1/processes/pin-wrong/versions",
            content=pack_folder(folder),
            headers={"Content-Type": "application/zip"},
        )
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "invalid_manifest", problem
        assert [(p["file"], p["name"], p["code"]) for p in problem["errors"]] == [
            ("deps/base.txt", "line 2", "unsupported_option"),
            ("deps/base.txt", "line 3", "invalid_requirement"),
        ], problem
        assert client.get("/api/v1/processes/pin-wrong").status_code == 404


def test_a_remote_runtime_prepares_environments_before_taking_work(
    start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = start(start_server, tmp_path, "--slots", "0")
    for name, value in srv.env.items():
        if name.startswith("UV_"):
            monkeypatch.setenv(name, value)  # the runtime installs from the same wheels
    folder = make_process(
        tmp_path,
        "pin-ahead",
        code=CODE,
        manifest='entrypoint = "main:main"',
        files={"requirements.txt": f"{LIBRARY}==2.0\n"},
    )
    with srv.client() as client:
        deploy(client, folder)
        token = runtime_token(client, "ahead")

        (tmp_path / "rt-refused").mkdir()
        (tmp_path / "rt").mkdir()
        refused = RemoteRuntime(
            srv,
            token,
            tmp_path / "rt-refused",
            "--prepare",
            "pin-ahead,nope",
            "--environment",
            "production",
        )
        assert refused.proc.wait(timeout=60) == 1, refused.log()
        assert "Error: Not deployed to this runtime's environment: nope." in refused.log()
        assert "Traceback" not in refused.log()

        data = tmp_path / "rt"
        runtime = RemoteRuntime(
            srv,
            token,
            data,
            "--prepare",
            "pin-ahead",
            "--name",
            "ahead",
            "--environment",
            "production",
        )
        try:
            wait_until(lambda: "online with" in runtime.log(), timeout=60)
            log = runtime.log()
            assert "preparing the environment of pin-ahead version 1" in log, log
            assert log.index("is ready") < log.index("online with"), log
            assert len(list((data / "environments").glob("*/.runplane-ready"))) == 1
            doc = wait_terminal(client, trigger(client, "pin-ahead"))
            assert doc["status"] == "succeeded" and doc["result"]["version"] == "2.0", doc
            text = client.get(f"/api/v1/executions/{doc['id']}/logs").text
            assert "building the environment" not in text, text
        finally:
            runtime.stop()
