"""GET /api/v1/events end to end: execution changes as server-sent events, filtered,
confined to what the caller may see, resumable without gaps, reset when too old,
kept alive, ended by SIGTERM; and across replicas on PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    Server,
    ServerFactory,
    SseStream,
    deploy,
    execution_events,
    make_process,
    wait_terminal,
    wait_until,
)

EVENTS = "/api/v1/events"
HEARTBEAT = {"RUNPLANE_SSE_HEARTBEAT_SECONDS": "1"}
FLOW = ["queued", "running", "succeeded"]
NOOP_MANIFEST = 'entrypoint = "main:main"'
NOOP = "def main():\n    return {}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2", env=HEARTBEAT)
    root = tmp_path_factory.mktemp("processes")
    with srv.client() as admin:
        deploy(admin, make_process(root, "side", manifest=NOOP_MANIFEST, code=NOOP), "sandbox")
    try:
        yield srv
    finally:
        factory.stop_all()


def start(client: httpx.Client, process: str = "hello", wait: float = 0) -> str:
    r = client.post(f"/api/v1/processes/{process}/executions", params={"wait": wait}, json={})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def finished(execution_id: str) -> Any:
    """`until` condition: the execution's terminal event has arrived."""
    return lambda got: "succeeded" in execution_events(got, execution_id)


def test_a_started_execution_streams_queued_running_succeeded_in_order(server: Server) -> None:
    with server.client() as admin, SseStream(server, EVENTS) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        first = stream.next()
        assert first is not None and first["retry"] == 2000
        eid = start(admin)
        got = stream.until(finished(eid))
    assert execution_events(got, eid) == FLOW
    mine = [m for m in got if m["data"]["id"] == eid]
    record = admin_record(server, eid)
    for m in mine:
        data = m["data"]
        assert m["event"] == "execution" and int(m["id"]) > 0
        assert data["executionId"] == record["executionId"]
        assert (data["process"], data["environment"], data["version"]) == (
            "hello",
            "production",
            1,
        )
        assert data["attempt"] == 1 and data["error"] is None
        assert data["at"].endswith("Z")
    assert mine[-1]["data"]["at"] == record["finishedAt"]
    assert len({m["id"] for m in got}) == len(got)


def admin_record(server: Server, execution_id: str) -> dict[str, Any]:
    with server.client() as admin:
        return wait_terminal(admin, execution_id)


def test_streams_filter_by_process_and_environment(server: Server) -> None:
    by_process = SseStream(server, EVENTS, params={"process": "side"})
    by_env = SseStream(server, EVENTS, params={"environment": "production"})
    both = SseStream(server, EVENTS, params=[("environment", "sandbox,production")])
    try:
        with server.client() as admin:
            hello = start(admin, wait=30)  # production; every event of it commits first
            side = start(admin, "side", wait=30)  # sandbox
            later = start(admin, wait=30)
        got = by_process.until(finished(side))
        assert {m["data"]["process"] for m in got[1:]} == {"side"}
        got = by_env.until(finished(later))
        assert {m["data"]["environment"] for m in got[1:]} == {"production"}
        assert execution_events(got, hello) == FLOW and execution_events(got, side) == []
        got = both.until(finished(later))
        for e in (hello, side, later):
            assert execution_events(got, e) == FLOW
    finally:
        for s in (by_process, by_env, both):
            s.close()


def test_the_execution_filter_takes_ids_repeated_or_comma_separated(server: Server) -> None:
    with server.client() as admin:
        start(admin, wait=30)  # so that some event is retained before the ones below
        with SseStream(server, EVENTS) as probe:
            first = probe.next()
        assert first is not None and first["id"].isdigit()  # where a reconnect resumes
        a, b, c = start(admin, wait=30), start(admin, "side", wait=30), start(admin, wait=30)
    for params in ([("execution", a), ("execution", b)], {"execution": f"{a}, {b}"}):
        with SseStream(server, EVENTS, params=params, headers={"Last-Event-ID": first["id"]}) as s:
            got = s.until(lambda g: "succeeded" in execution_events(g, b))
        assert execution_events(got, a) == FLOW and execution_events(got, b) == FLOW
        assert execution_events(got, c) == []


def test_another_workspace_and_limited_credentials_see_none_of_it(
    server: Server, tmp_path: Path
) -> None:
    with server.client() as admin:
        made = admin.post("/api/v1/workspaces", json={"name": "acme"})
        assert made.status_code == 201, made.text
        acme_token = made.json()["adminToken"]
        r = admin.post(
            "/api/v1/tokens",
            json={
                "name": "sandbox-reader",
                "scopes": ["executions:read"],
                "environments": ["sandbox"],
            },
        )
        assert r.status_code == 201, r.text
        sandbox_token = r.json()["token"]
        with server.client(acme_token) as acme:
            deploy(acme, make_process(tmp_path, "acme-job", manifest=NOOP_MANIFEST, code=NOOP))
        secret = admin.post("/api/v1/processes/side/secret").json()["secret"]
        acme_stream = SseStream(server, EVENTS, token=acme_token)
        sandbox_stream = SseStream(server, EVENTS, token=sandbox_token)
        side_stream = SseStream(
            server, EVENTS, token=None, headers={"Runplane-Process-Secret": secret}
        )
        try:
            hidden = start(admin, wait=30)  # default workspace, production
            with server.client(acme_token) as acme:
                own = start(acme, "acme-job", wait=30)  # commits after every hidden event
            visible = start(admin, "side", wait=30)  # sandbox
            got = acme_stream.until(finished(own))
            assert {m["data"]["id"] for m in got if "data" in m} == {own}
            for stream in (sandbox_stream, side_stream):  # environment, process limits
                got = stream.until(finished(visible))
                assert {m["data"]["id"] for m in got if "data" in m} == {visible}
                assert hidden not in str(got)
        finally:
            for stream in (acme_stream, sandbox_stream, side_stream):
                stream.close()


def test_reading_events_needs_the_read_scope(server: Server) -> None:
    with server.client() as admin:
        r = admin.post("/api/v1/tokens", json={"name": "starter", "scopes": ["executions:start"]})
        token = r.json()["token"]
    with server.client(token) as starter:
        r = starter.get(EVENTS, headers={"Accept": "text/event-stream"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    with server.client() as admin:
        r = admin.get(EVENTS, headers={"Last-Event-ID": "not-a-number"})
        assert r.status_code == 422 and r.json()["errors"][0]["name"] == "Last-Event-ID"


def test_last_event_id_resumes_without_gaps_or_duplicates(server: Server) -> None:
    started: list[str] = []

    def keep_starting(client: httpx.Client, n: int) -> None:
        for _ in range(n):
            started.append(start(client))

    with server.client() as admin, concurrent.futures.ThreadPoolExecutor(1) as bg:
        first = SseStream(server, EVENTS, params={"process": "hello"})
        running = bg.submit(keep_starting, admin, 12)
        got = first.until(lambda g: len(g) >= 8)  # in the middle of it all
        first.close()
        last_id = [m for m in got if "id" in m and "event" in m][-1]["id"]
        second = SseStream(
            server, EVENTS, params={"process": "hello"}, headers={"Last-Event-ID": last_id}
        )
        running.result(timeout=60)
        try:
            rest = second.until(
                lambda g: all("succeeded" in execution_events(got + g, e) for e in started),
                timeout=60,
            )
        finally:
            second.close()
    assert rest[0].get("retry") == 2000 and rest[0].get("id") == last_id  # no reset
    seen = [m for m in got + rest if m.get("event") == "execution"]
    ids = [m["id"] for m in seen]
    assert len(ids) == len(set(ids)), "an event came twice"
    for e in started:
        assert execution_events(seen, e) == FLOW, e

    # The query parameter does the same for clients that cannot set headers.
    with SseStream(server, EVENTS, params={"process": "hello", "lastEventId": last_id}) as third:
        again = third.until(lambda g: len([m for m in g if "event" in m]) >= 3)
    assert [m["id"] for m in again if "event" in m][:3] == [m["id"] for m in rest if "event" in m][
        :3
    ]


def test_a_heartbeat_comment_arrives_while_nothing_changes(server: Server) -> None:
    with SseStream(server, EVENTS, params={"execution": "nothing-ever"}) as stream:
        deadline = time.monotonic() + 20
        while True:
            message = stream.next(max(0.01, deadline - time.monotonic()))
            assert message is not None
            if message.get("comment") == "keepalive":
                break


def test_an_id_older_than_the_retention_gets_a_reset_then_live_events(
    start_server: ServerFactory,
) -> None:
    srv = start_server.start(
        "--slots", "1", env={"RUNPLANE_EVENT_RETENTION_SECONDS": "1", **HEARTBEAT}
    )
    with srv.client() as admin:
        with SseStream(srv, EVENTS) as stream:
            old = start(admin)
            got = stream.until(finished(old))
        old_id = got[-1]["id"]

        def reset_now() -> dict[str, Any] | None:
            with SseStream(srv, EVENTS, headers={"Last-Event-ID": old_id}) as s:
                assert s.next() is not None  # retry: 2000
                second = s.next()  # a reset, or (still retained) a keepalive
                assert second is not None
                return second if second.get("event") == "reset" else None

        reset = wait_until(reset_now, timeout=30)  # once the sweeper purged the old events
        assert (
            reset["data"]["lastEventId"] == old_id
            and "no longer retained" in reset["data"]["reason"]
        )
        assert reset["id"] == "" or reset["id"].isdigit()  # nothing, or the newest retained
        with SseStream(srv, EVENTS, headers={"Last-Event-ID": old_id}) as stream:
            fresh = start(admin)
            got = stream.until(finished(fresh))
        assert got[1]["event"] == "reset"
        assert execution_events(got, fresh) == FLOW


def test_sigterm_ends_open_streams_and_the_server_exits_within_its_drain_timeout(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    srv = start_server.start("--slots", "1")  # drain timeout 2 s in tests
    with srv.client() as admin:
        deploy(
            admin,
            make_process(
                tmp_path,
                "long",
                manifest=NOOP_MANIFEST,
                code="import time\ndef main():\n    print('on', flush=True)\n    time.sleep(60)\n",
            ),
        )
        eid = start(admin, "long")
    streams = [
        SseStream(srv, EVENTS),
        SseStream(srv, f"/api/v1/executions/{eid}/logs"),
    ]
    for s in streams:
        s.until(lambda g: bool(g))
    assert srv.proc is not None
    began = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(30)
    took = time.monotonic() - began
    for s in streams:
        while s.next(5) is not None:
            pass
        assert s.ended, s.error  # a clean end of the response, not a broken connection
        s.close()
    assert took < 2 + 2, f"exit took {took:.1f} s"  # the drain timeout, plus start-up slack


@pytest.mark.postgres
def test_a_change_through_one_replica_reaches_a_stream_on_another(
    start_server: ServerFactory, pg_schema_url: str, tmp_path: Path
) -> None:
    from tests.e2e.test_replicas import start_replicas

    a, b = start_replicas(start_server, pg_schema_url, 2)
    with b.client() as on_b:
        deploy(on_b, make_process(tmp_path, "noop", manifest=NOOP_MANIFEST, code=NOOP))
        with SseStream(a, EVENTS) as stream:
            assert stream.next() is not None
            lags = []
            for _ in range(3):
                r = on_b.post("/api/v1/processes/noop/executions", json={})
                sent = time.monotonic()
                eid = r.json()["id"]
                stream.until(lambda g, eid=eid: execution_events(g, eid) == ["queued"])
                lags.append(time.monotonic() - sent)
                r = on_b.post(f"/api/v1/executions/{eid}/cancel")
                assert r.status_code == 200, r.text
                stream.until(lambda g, eid=eid: execution_events(g, eid) == ["cancelled"])
    print(f"\nB accepts → stream on A: {[round(x * 1000) for x in lags]} ms")
    assert max(lags) < 0.9  # LISTEN/NOTIFY, not the 1 s polling fallback
