"""Crash safety: SIGKILL the server mid-execution; nothing accepted is lost, no orphan
survives, and the running executions are recovered by lease expiry after restart."""

from __future__ import annotations

from pathlib import Path

from tests.support import ServerFactory, deploy, make_process, pid_alive, wait_terminal, wait_until

HANGER = """
import os, subprocess, time
from pathlib import Path

def main(tag, marks):
    marks = Path(marks)
    first = not (marks / f"{tag}.started").exists()
    (marks / f"{tag}.started").write_text("x")
    if not first:
        return {"attempt": "second"}
    child = subprocess.Popen(["sleep", "1000"])
    (marks / f"{tag}.pids").write_text(f"{os.getpid()} {child.pid}")
    print("hanging", flush=True)
    time.sleep(1000)
"""

MANIFEST = """
entrypoint = "main:main"
retries = {retries}
[parameters.tag]
type = "string"
required = true
[parameters.marks]
type = "string"
required = true
"""


def test_sigkilled_server_loses_nothing_and_recovers_running_executions(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    srv = start_server.start("--slots", "2")
    with srv.client() as c:
        deploy(c, make_process(tmp_path, "once", manifest=MANIFEST.format(retries=0), code=HANGER))
        deploy(c, make_process(tmp_path, "twice", manifest=MANIFEST.format(retries=1), code=HANGER))
        args = {"marks": str(marks)}
        once = c.post(
            "/api/v1/processes/once/executions", json={"inputArguments": {"tag": "once", **args}}
        ).json()["id"]
        twice = c.post(
            "/api/v1/processes/twice/executions", json={"inputArguments": {"tag": "twice", **args}}
        ).json()["id"]
        wait_until(lambda: (marks / "once.pids").exists() and (marks / "twice.pids").exists())
        # Both slots are busy: these stay queued.
        queued = [
            c.post("/api/v1/processes/hello/executions", json={"inputArguments": {}}).json()["id"]
            for _ in range(3)
        ]
        assert {c.get(f"/api/v1/executions/{q}").json()["status"] for q in queued} == {"queued"}
    pids = [int(p) for f in ("once.pids", "twice.pids") for p in (marks / f).read_text().split()]
    assert all(pid_alive(p) for p in pids)

    srv.kill()
    # The supervisors see their pipe close and kill each whole process group.
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10)

    srv.start()
    with srv.client() as c:
        lost = wait_terminal(c, once, timeout=30)
        assert lost["status"] == "failed" and lost["error"]["code"] == "RUNTIME_LOST"
        retried = wait_terminal(c, twice, timeout=30)
        assert retried["status"] == "succeeded" and retried["attempt"] == 2
        assert retried["result"] == {"attempt": "second"}
        for q in queued:
            assert wait_terminal(c, q)["status"] == "succeeded"
        listed = c.get("/api/v1/executions", params={"limit": 500}).json()["items"]
        assert {once, twice, *queued} <= {e["id"] for e in listed}
