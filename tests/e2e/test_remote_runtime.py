"""Remote runtimes: `runplane runtime` pulls work over HTTP with a runtime token and runs
it exactly as the embedded runtime does; leases are fenced, drains are clean, and a
runtime's death takes its executions' process groups with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    ServerFactory,
    deploy,
    make_process,
    pid_alive,
    runtime_token,
    wait_terminal,
    wait_until,
)

GREET = """
def main(name):
    print(f"hello {name}", flush=True)
    print("second line", flush=True)
    return {"greeting": f"hello {name}"}
"""
GREET_MANIFEST = """
entrypoint = "main:main"
[parameters.name]
type = "string"
required = true
"""

SLOW = """
import time
from pathlib import Path

def main(marks):
    Path(marks, "slow.started").write_text("x")
    print("slow started", flush=True)
    time.sleep(2)
    return {"slow": "done"}
"""

HANGER = """
import os, subprocess, time
from pathlib import Path

def main(marks):
    child = subprocess.Popen(["sleep", "1000"])
    Path(marks, "hanger.pids").write_text(f"{os.getpid()} {child.pid}")
    print("hanging", flush=True)
    time.sleep(1000)
"""
MARKS_MANIFEST = """
entrypoint = "main:main"
[parameters.marks]
type = "string"
required = true
"""


def listed(admin: httpx.Client, name: str) -> dict[str, Any] | None:
    items = admin.get("/api/v1/runtimes").json()["items"]
    return next((r for r in items if r["name"] == name), None)


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text


def test_remote_runtime_runs_executions_with_logs_and_shows_in_the_list(
    start_server: ServerFactory, runtimes: Any, tmp_path: Path
) -> None:
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        deploy(admin, make_process(tmp_path, "greet", manifest=GREET_MANIFEST, code=GREET))
        token = runtime_token(admin, "edge")
        rt = runtimes(
            srv, token, "--environment", "production", "--slots", "2", "--name", "edge-1",
            "--label", "site=lab",
        )  # fmt: skip
        online = wait_until(lambda: listed(admin, "edge-1"), timeout=20)
        assert online["environment"] == "production" and online["state"] == "online"
        assert online["slots"] == 2 and online["labels"] == {"site": "lab"}
        assert online["lastHeartbeatAt"] and online["id"]

        done = admin.post(
            "/api/v1/processes/greet/executions",
            params={"wait": 30},
            json={"inputArguments": {"name": "remote"}},
        ).json()
        done = wait_terminal(admin, done["id"])
        assert done["status"] == "succeeded", (done, rt.log())
        assert done["result"] == {"greeting": "hello remote"}
        logs = admin.get(f"/api/v1/executions/{done['id']}/logs").text
        assert "hello remote\nsecond line\n" in logs

        # Trigger → result through the remote runtime, bundle already cached.
        took = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = admin.post(
                "/api/v1/processes/greet/executions",
                params={"wait": 30},
                json={"inputArguments": {"name": "again"}},
            )
            assert r.json()["status"] == "succeeded", r.text
            took.append(time.perf_counter() - t0)
        print(f"trigger→result via remote runtime: median {sorted(took)[2] * 1000:.0f} ms")

        first_beat = listed(admin, "edge-1")["lastHeartbeatAt"]  # type: ignore[index]
        wait_until(lambda: listed(admin, "edge-1")["lastHeartbeatAt"] != first_beat)  # type: ignore[index]


def test_the_runtime_process_keeps_only_what_running_needs(
    start_server: ServerFactory, runtimes: Any
) -> None:
    """`runplane runtime` becomes runtime/main.py (same pid): no CLI libraries stay loaded,
    and the token is neither on its command line nor in its environment."""
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        token = runtime_token(admin, "edge")
        rt = runtimes(srv, token, "--environment", "production", "--name", "lean")
        wait_until(lambda: listed(admin, "lean"), timeout=20)
        proc = Path(f"/proc/{rt.proc.pid}")
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        assert b"runplane.runtime.main" in argv, argv
        assert token.encode() not in (proc / "cmdline").read_bytes()
        assert token.encode() not in (proc / "environ").read_bytes()
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runplane.runtime.main as m, runplane.runtime.remote, "
            "runplane.runtime.http_gateway, runplane.runtime.warm; "
            "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "httpx" in loaded
    for heavy in ("typer", "rich", "pygments", "pydantic", "sqlalchemy", "fastapi", "click"):
        assert heavy not in loaded, heavy


def test_a_refused_runtime_token_is_reported_without_a_traceback(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start_server.start("--slots", "0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env["RUNPLANE_CONFIG"] = str(tmp_path / "no-config.toml")
    done = subprocess.run(
        [
            sys.executable, "-m", "runplane.cli.main", "runtime", "--server", srv.base,
            "--token", "rp_not-a-real-token", "--environment", "production",
            "--data-dir", str(tmp_path / "rt"),
        ],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Error: the server refused the runtime's token" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "rp_not-a-real-token" not in done.stderr + done.stdout


def test_restarted_runtime_takes_over_its_registration(
    start_server: ServerFactory, runtimes: Any
) -> None:
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        token = runtime_token(admin, "edge")
        first = runtimes(srv, token, "--environment", "production", "--slots", "1", "--name", "r")
        rid = wait_until(lambda: listed(admin, "r"))["id"]
        first.stop()
        runtimes(srv, token, "--environment", "production", "--slots", "3", "--name", "r")
        wait_until(lambda: listed(admin, "r")["slots"] == 3)  # type: ignore[index]
        items = [r for r in admin.get("/api/v1/runtimes").json()["items"] if r["name"] == "r"]
        assert len(items) == 1 and items[0]["id"] == rid and items[0]["state"] == "online"


def test_runtime_token_acts_only_in_its_environment_and_other_tokens_are_403(
    start_server: ServerFactory,
) -> None:
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        production = runtime_token(admin, "prod-rt")
        sandbox = runtime_token(admin, "sandbox-rt", "sandbox")
        reader = admin.post(
            "/api/v1/tokens", json={"name": "reader", "scopes": ["executions:read"]}
        ).json()["token"]
        queued = admin.post("/api/v1/processes/hello/executions", json={}).json()
        assert queued["environment"] == "production"
    body = {"name": "x", "environment": "production", "slots": 1}
    with srv.client(token=production) as prod, srv.client(token=sandbox) as sand:
        prod_rt = prod.post("/api/v1/runtimes", json=body).json()
        problem(sand.post("/api/v1/runtimes", json=body), 403, "forbidden")
        taken = sand.post("/api/v1/runtimes", json={**body, "environment": "sandbox"})
        problem(taken, 409, "runtime_name_taken")  # not production's runtime `x`
        problem(sand.post(f"/api/v1/runtimes/{prod_rt['id']}/claims?wait=0"), 403, "forbidden")
        sand_rt = sand.post(
            "/api/v1/runtimes", json={**body, "name": "y", "environment": "sandbox"}
        )
        assert sand_rt.status_code == 201, sand_rt.text
        # The sandbox runtime never sees production work.
        assert (
            sand.post(f"/api/v1/runtimes/{sand_rt.json()['id']}/claims?wait=1").status_code == 204
        )
        problem(
            sand.post(f"/api/v1/leases/{queued['id']}/heartbeat", json={"leaseToken": 1}),
            403,
            "forbidden",
        )
        claim = prod.post(f"/api/v1/runtimes/{prod_rt['id']}/claims?wait=5")
        assert claim.status_code == 200 and claim.json()["executionId"] == queued["id"]
        assert claim.headers["cache-control"] == "no-store"
        bundle = prod.get(f"/api/v1/versions/{claim.json()['versionId']}/bundle")
        assert bundle.status_code == 200 and bundle.content[:2] == b"PK"
        assert bundle.headers["runplane-content-hash"] == claim.json()["contentHash"]
    with srv.client(token=reader) as r:
        lease = f"/api/v1/leases/{queued['id']}"
        for method, path, json in [
            ("POST", "/api/v1/runtimes", body),
            ("POST", f"/api/v1/runtimes/{prod_rt['id']}/claims?wait=0", None),
            ("POST", f"/api/v1/runtimes/{prod_rt['id']}/heartbeat", {"state": "online"}),
            ("POST", f"{lease}/heartbeat", {"leaseToken": 1}),
            ("POST", f"{lease}/logs", {"leaseToken": 1, "attempt": 1, "text": "x"}),
            ("POST", f"{lease}/report", {"leaseToken": 1, "status": "succeeded"}),
            ("GET", f"/api/v1/versions/{claim.json()['versionId']}/bundle", None),
        ]:
            problem(r.request(method, path, json=json), 403, "forbidden")


def test_stale_lease_token_is_refused_with_409_and_changes_nothing(
    start_server: ServerFactory,
) -> None:
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        token = runtime_token(admin, "manual")
        execution = admin.post("/api/v1/processes/hello/executions", json={}).json()
    with srv.client(token=token) as rt:
        runtime = rt.post(
            "/api/v1/runtimes", json={"name": "manual", "environment": "production", "slots": 1}
        ).json()
        claim = rt.post(f"/api/v1/runtimes/{runtime['id']}/claims?wait=5").json()
        lease = f"/api/v1/leases/{execution['id']}"
        good, stale = claim["leaseToken"], claim["leaseToken"] - 1
        attempt = claim["attempt"]
        problem(rt.post(f"{lease}/heartbeat", json={"leaseToken": stale}), 409, "stale_lease")
        problem(
            rt.post(f"{lease}/logs", json={"leaseToken": stale, "attempt": attempt, "text": "no"}),
            409,
            "stale_lease",
        )
        problem(
            rt.post(f"{lease}/report", json={"leaseToken": stale, "status": "failed"}),
            409,
            "stale_lease",
        )
        stale_tail = {"attempt": attempt, "text": "nor this"}
        problem(
            rt.post(
                f"{lease}/report",
                json={"leaseToken": stale, "status": "failed", "log": stale_tail},
            ),
            409,
            "stale_lease",
        )
        with srv.client() as admin:
            still = admin.get(f"/api/v1/executions/{execution['id']}").json()
            assert still["status"] == "running" and still["error"] is None
            assert admin.get(f"/api/v1/executions/{execution['id']}/logs").text == ""
        beat = rt.post(f"{lease}/heartbeat", json={"leaseToken": good})
        assert beat.status_code == 200 and beat.json()["cancelRequested"] is False
        logs = {"leaseToken": good, "attempt": attempt, "text": "yes\n"}
        assert rt.post(f"{lease}/logs", json=logs).status_code == 204
        report = {
            "leaseToken": good,
            "status": "succeeded",
            "result": {"ok": True},
            "log": {"attempt": attempt, "text": "and the rest\n"},  # stored with the report
        }
        r = rt.post(f"{lease}/report", json=report)
        assert r.status_code == 200 and r.json() == {"status": "succeeded"}
        problem(rt.post(f"{lease}/report", json=report), 409, "stale_lease")
    with srv.client() as admin:
        done = admin.get(f"/api/v1/executions/{execution['id']}").json()
        assert done["status"] == "succeeded" and done["result"] == {"ok": True}
        log = admin.get(f"/api/v1/executions/{execution['id']}/logs").text
        assert log == "yes\nand the rest\n"  # once: the refused report added nothing


def test_sigterm_drains_running_executions_and_takes_no_new_work(
    start_server: ServerFactory, runtimes: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        deploy(admin, make_process(tmp_path, "slow", manifest=MARKS_MANIFEST, code=SLOW))
        token = runtime_token(admin, "edge")
        rt = runtimes(
            srv, token, "--environment", "production", "--slots", "2", "--name", "d",
            "--drain-timeout", "20",
        )  # fmt: skip
        slow = admin.post(
            "/api/v1/processes/slow/executions", json={"inputArguments": {"marks": str(marks)}}
        ).json()
        wait_until(lambda: (marks / "slow.started").exists(), timeout=20)
        rt.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: listed(admin, "d")["state"] != "online", timeout=5)  # type: ignore[index]
        later = admin.post("/api/v1/processes/hello/executions", json={}).json()
        assert rt.proc.wait(20) == 0, rt.log()
        done = wait_terminal(admin, slow["id"])
        assert done["status"] == "succeeded" and done["result"] == {"slow": "done"}
        assert admin.get(f"/api/v1/executions/{later['id']}").json()["status"] == "queued"
        assert listed(admin, "d")["state"] == "offline"  # type: ignore[index]


def test_sigkilled_runtime_takes_its_process_groups_along_and_the_execution_is_lost(
    start_server: ServerFactory, runtimes: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        deploy(admin, make_process(tmp_path, "hanger", manifest=MARKS_MANIFEST, code=HANGER))
        token = runtime_token(admin, "edge")
        rt = runtimes(srv, token, "--environment", "production", "--slots", "1")
        hung = admin.post(
            "/api/v1/processes/hanger/executions", json={"inputArguments": {"marks": str(marks)}}
        ).json()
        pids_file = marks / "hanger.pids"
        wait_until(pids_file.exists, timeout=20)
        pids = [int(p) for p in pids_file.read_text().split()]
        assert all(pid_alive(p) for p in pids)
        rt.proc.send_signal(signal.SIGKILL)
        rt.proc.wait()
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10)
        lost = wait_terminal(admin, hung["id"], timeout=30)
        assert lost["status"] == "failed" and lost["error"]["code"] == "RUNTIME_LOST"


def test_a_runtime_cut_off_from_the_server_kills_its_work_before_the_lease_ends(
    start_server: ServerFactory, runtimes: Any, tmp_path: Path
) -> None:
    """Self-fencing: a runtime that cannot renew a lease kills the process before the
    server could give the execution to another runtime (attempts never overlap)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        deploy(admin, make_process(tmp_path, "hanger", manifest=MARKS_MANIFEST, code=HANGER))
        token = runtime_token(admin, "cut-off")
        runtimes(srv, token, "--environment", "production", "--slots", "1")
        hung = admin.post(
            "/api/v1/processes/hanger/executions", json={"inputArguments": {"marks": str(marks)}}
        ).json()
        pids_file = marks / "hanger.pids"
        wait_until(pids_file.exists, timeout=20)
        pids = [int(p) for p in pids_file.read_text().split()]
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGSTOP)  # the server stops answering; the runtime lives on
    stopped = time.monotonic()
    try:
        # the lease TTL is 3 s: the work must be dead before it could have expired
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10)
        assert time.monotonic() - stopped < 3.0
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    with srv.client() as admin:
        lost = wait_terminal(admin, hung["id"], timeout=30)
    assert lost["status"] == "failed" and lost["error"]["code"] == "RUNTIME_LOST"


def test_a_claim_sent_again_gets_the_lease_it_took(start_server: ServerFactory) -> None:
    """A claim whose answer was lost is sent again under its claim id: it gets the same
    lease back, not a second execution (and the first is not stranded)."""
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        token = runtime_token(admin, "again")
        first = admin.post("/api/v1/processes/hello/executions", json={}).json()
        second = admin.post("/api/v1/processes/hello/executions", json={}).json()
    with srv.client(token=token) as rt:
        runtime = rt.post(
            "/api/v1/runtimes", json={"name": "again", "environment": "production", "slots": 2}
        ).json()
        url = f"/api/v1/runtimes/{runtime['id']}/claims"
        claim = rt.post(url, params={"wait": 5, "claimId": "c-1"}).json()
        again = rt.post(url, params={"wait": 5, "claimId": "c-1"}).json()
        assert again == claim and claim["executionId"] == first["id"]
        other = rt.post(url, params={"wait": 5, "claimId": "c-2"}).json()
        assert other["executionId"] == second["id"]
        lease = f"/api/v1/leases/{first['id']}/report"
        done = rt.post(lease, json={"leaseToken": claim["leaseToken"], "status": "succeeded"})
        assert done.status_code == 200, done.text
        # once the attempt ended, the old claim id holds nothing: a new claim waits
        assert rt.post(url, params={"wait": 0.2, "claimId": "c-1"}).status_code == 204


def test_a_drain_that_times_out_hands_the_lease_back_at_once(
    start_server: ServerFactory, runtimes: Any, tmp_path: Path
) -> None:
    """SIGTERM with a short drain timeout: the hung attempt is killed and its lease handed
    back, so the execution is retried without waiting for the lease to lapse."""
    marks = tmp_path / "marks"
    marks.mkdir()
    srv = start_server.start("--slots", "0", env={"RUNPLANE_LEASE_TTL_SECONDS": "30"})
    with srv.client() as admin:
        manifest = MARKS_MANIFEST.replace(
            'entrypoint = "main:main"', 'entrypoint = "main:main"\nretries = 1'
        )
        folder = make_process(tmp_path, "hanger", manifest=manifest, code=HANGER)
        deploy(admin, folder)
        token = runtime_token(admin, "handing")
        rt = runtimes(
            srv, token, "--environment", "production", "--slots", "1", "--drain-timeout", "1"
        )
        hung = admin.post(
            "/api/v1/processes/hanger/executions", json={"inputArguments": {"marks": str(marks)}}
        ).json()
        pids_file = marks / "hanger.pids"
        wait_until(pids_file.exists, timeout=20)
        pids = [int(p) for p in pids_file.read_text().split()]
        rt.proc.send_signal(signal.SIGTERM)
        assert rt.proc.wait(timeout=20) == 0
        assert not any(pid_alive(p) for p in pids)
        # handed back: queued again as attempt 2 long before the 30 s lease could lapse
        again = wait_until(
            lambda: (
                (e := admin.get(f"/api/v1/executions/{hung['id']}").json())["attempt"] == 2 and e
            ),
            timeout=10,
        )
        assert again["status"] == "queued"
        admin.post(f"/api/v1/executions/{hung['id']}/cancel")
