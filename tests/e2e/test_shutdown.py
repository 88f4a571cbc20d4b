"""SIGTERM answers every long poll at once: `?wait` long polls get the record as it is,
runtime claims get their empty 204, log follows (text and events) and event streams end
cleanly, and the server exits at once instead of waiting them out; nor does its idle
embedded runtime hold it. A followed log that ended before its execution is an error
for the CLI, not a whole log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    ADMIN,
    ADMIN_TOKEN,
    ServerFactory,
    SseStream,
    http_client,
    runtime_token,
)

HELD = 4  # long polls of each kind
EXIT_BOUND_SECONDS = 3.0  # uvicorn's graceful timeout in tests is 7 s (drain 2 s + 5)


class Held:
    """One request on its own thread; what it got, and when."""

    def __init__(self, send: Callable[[httpx.Client], httpx.Response], base: str) -> None:
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self.answered_at = 0.0
        self._send = send
        self._client = http_client(base_url=base, headers=ADMIN, timeout=90)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client:
                self.response = self._send(self._client)
                self.response.read()  # a followed text log: until it ends
        except BaseException as exc:
            self.error = exc
        self.answered_at = time.monotonic()

    def result(self) -> httpx.Response:
        self._thread.join(10)
        assert self.response is not None, self.error
        return self.response


def test_sigterm_answers_every_long_poll_and_the_server_exits_at_once(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    # No embedded runtime: nothing runs, nothing to drain; every wait can only be ended.
    srv = start_server.start("--slots", "0")
    with srv.client() as admin:
        queued = admin.post("/api/v1/processes/hello/executions", json={}).json()
        token = runtime_token(admin, "edge", "sandbox")  # hello is deployed to production
    runtime_auth = {"Authorization": f"Bearer {token}"}
    with srv.client(token=token) as edge:
        r = edge.post(
            "/api/v1/runtimes", json={"name": "edge", "environment": "sandbox", "slots": 1}
        )
        assert r.status_code == 201, r.text
        runtime_id = r.json()["id"]
    eid = queued["id"]

    def kind(send: Callable[[httpx.Client], httpx.Response]) -> list[Held]:
        return [Held(send, srv.base) for _ in range(HELD)]

    waits = kind(lambda c: c.get(f"/api/v1/executions/{eid}", params={"wait": 60}))
    starts = kind(
        lambda c: c.post("/api/v1/processes/hello/executions", params={"wait": 60}, json={})
    )
    claims = kind(
        lambda c: c.post(
            f"/api/v1/runtimes/{runtime_id}/claims", params={"wait": 60}, headers=runtime_auth
        )
    )
    follows = kind(lambda c: c.get(f"/api/v1/executions/{eid}/logs", params={"follow": "true"}))
    log_streams = [SseStream(srv, f"/api/v1/executions/{eid}/logs") for _ in range(HELD)]
    event_streams = [SseStream(srv, "/api/v1/events") for _ in range(HELD)]
    for stream in (*log_streams, *event_streams):
        assert stream.next() is not None  # retry: 2000, so the stream is open
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env.update(
        RUNPLANE_SERVER=srv.base,
        RUNPLANE_TOKEN=ADMIN_TOKEN,
        RUNPLANE_CONFIG=str(tmp_path / "config.toml"),
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "runplane.cli.main", "executions", "logs", "--follow", eid],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # the other requests reach the server (each is shown held below)
    held: list[Held] = [*waits, *starts, *claims, *follows]
    assert all(h.response is None and h.error is None for h in held)

    assert srv.proc is not None
    signalled = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(30)
    took = time.monotonic() - signalled
    print(f"\nSIGTERM → exit with {6 * HELD} long polls held: {took:.2f} s")
    assert took < EXIT_BOUND_SECONDS, f"exit took {took:.1f} s: {srv.log()[-2000:]}"

    for h in waits:
        r = h.result()
        assert r.status_code == 200, r.text
        assert r.json()["id"] == eid and r.json()["status"] == "queued"
    for h in starts:
        r = h.result()
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "queued"
    for h in claims:
        assert h.result().status_code == 204
    for h in follows:
        r = h.result()
        assert r.status_code == 200 and r.text == ""  # ended cleanly, nothing was logged
    for h in held:
        assert h.answered_at >= signalled  # held until the signal, not answered before
    # The CLI's follow ended before its execution: an error, not a whole log (exit 0).
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 1 and out == "" and err.startswith("Error: "), (out, err)
    for stream in log_streams:
        got = drain(stream)
        assert all(m.get("event") != "end" for m in got), got  # not ended: resume later
    for stream in event_streams:
        drain(stream)


def drain(stream: SseStream) -> list[dict[str, Any]]:
    """What the stream still sent, once it ended cleanly (not a broken connection)."""
    got = []
    while (message := stream.next(5)) is not None:
        got.append(message)
    assert stream.ended, stream.error
    stream.close()
    return got


def test_sigterm_stops_a_server_with_its_embedded_runtime_at_once(
    start_server: ServerFactory,
) -> None:
    # Nothing to drain: the embedded runtime's open claim must not hold the exit either.
    srv = start_server.start("--slots", "2")
    with srv.client() as admin:
        r = admin.post("/api/v1/processes/hello/executions", params={"wait": 30}, json={})
        assert r.json()["status"] == "succeeded", r.text
    assert srv.proc is not None
    signalled = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(30)
    took = time.monotonic() - signalled
    assert took < EXIT_BOUND_SECONDS, f"exit took {took:.1f} s: {srv.log()[-2000:]}"
