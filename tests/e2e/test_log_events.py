"""An execution's log as server-sent events (live chunks, then `end`; resumable; a tail)
and as JSON pages read backwards, next to the plain text answer that stays as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import (
    Server,
    ServerFactory,
    SseStream,
    deploy,
    http_client,
    make_process,
    wait_terminal,
)

LINES = [f"tick {i}" for i in range(1, 6)]
TICKER = """
import time

def main():
    for i in range(1, 6):
        print(f"tick {i}", flush=True)
        time.sleep(0.3)  # longer than the runtime's 200 ms shipping interval: many chunks
    return {}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2", env={"RUNPLANE_SSE_HEARTBEAT_SECONDS": "1"})
    root = tmp_path_factory.mktemp("processes")
    with srv.client() as admin:
        deploy(
            admin, make_process(root, "ticker", manifest='entrypoint = "main:main"', code=TICKER)
        )
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def done(server: Server) -> dict[str, Any]:
    """A finished ticker execution and its chunks, read as JSON."""
    with server.client() as admin:
        eid = admin.post("/api/v1/processes/ticker/executions", json={}).json()["id"]
        wait_terminal(admin, eid)
        page = admin.get(f"/api/v1/executions/{eid}/logs", params={"format": "json"}).json()
    assert page["more"] is False and len(page["items"]) >= 3
    return {"id": eid, "chunks": page["items"]}


def logs(eid: str) -> str:
    return f"/api/v1/executions/{eid}/logs"


def read_to_end(stream: SseStream) -> list[dict[str, Any]]:
    """Every message up to `end`; the stream must close right after it."""
    got = stream.until(lambda g: bool(g) and g[-1].get("event") == "end")
    assert stream.next(10) is None and stream.ended
    return got


def text_of(messages: list[dict[str, Any]]) -> str:
    return "".join(m["data"]["text"] for m in messages if m.get("event") == "log")


def test_a_running_execution_streams_its_chunks_live_then_end(server: Server) -> None:
    with server.client() as admin:
        eid = admin.post("/api/v1/processes/ticker/executions", json={}).json()["id"]
        with SseStream(server, logs(eid)) as stream:
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            got = read_to_end(stream)
        record = admin.get(f"/api/v1/executions/{eid}").json()
    assert got[0]["retry"] == 2000
    chunks = [m for m in got if m.get("event") == "log"]
    assert text_of(got) == "".join(f"{line}\n" for line in LINES)
    assert [int(m["id"]) for m in chunks] == sorted(int(m["id"]) for m in chunks)
    assert all(int(m["id"]) == m["data"]["id"] and m["data"]["at"].endswith("Z") for m in chunks)
    assert got[-1]["data"] == {"status": "succeeded"} == {"status": record["status"]}


def test_last_event_id_resumes_after_that_chunk(server: Server, done: dict[str, Any]) -> None:
    chunks = done["chunks"]
    first = str(chunks[0]["id"])
    expected = "".join(c["text"] for c in chunks[1:])
    with SseStream(server, logs(done["id"]), headers={"Last-Event-ID": first}) as stream:
        assert text_of(read_to_end(stream)) == expected
    with SseStream(server, logs(done["id"]), params={"lastEventId": first}) as stream:
        assert text_of(read_to_end(stream)) == expected


def test_tail_starts_with_the_last_chunks(server: Server, done: dict[str, Any]) -> None:
    chunks = done["chunks"]
    with SseStream(server, logs(done["id"]), params={"tail": 2}) as stream:
        got = read_to_end(stream)
    assert [m["data"] for m in got if m.get("event") == "log"] == chunks[-2:]
    with SseStream(server, logs(done["id"]), params={"tail": 0}) as stream:
        got = read_to_end(stream)
    assert [m.get("event") for m in got[1:]] == ["end"]


def test_json_pages_read_the_log_backwards(server: Server, done: dict[str, Any]) -> None:
    chunks = done["chunks"]
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"format": "json", "limit": 2}
    with server.client() as admin:
        while True:
            r = admin.get(logs(done["id"]), params=params)
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            page = r.json()
            pages.append(page["items"])
            if not page["more"]:
                break
            params["before"] = page["items"][0]["id"]
    assert all(0 < len(p) <= 2 for p in pages)
    assert [c for p in reversed(pages) for c in p] == chunks
    assert all(set(c) == {"id", "text", "at", "attempt"} for c in chunks)


def test_the_text_answer_is_unchanged_and_the_new_parameters_are_checked(
    server: Server, done: dict[str, Any]
) -> None:
    with server.client() as admin:
        r = admin.get(logs(done["id"]))
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == "".join(c["text"] for c in done["chunks"])
        # the SDK's Accept: application/json still gets the text
        assert admin.get(logs(done["id"]), headers={"Accept": "application/json"}).text == r.text
        bad = admin.get(logs(done["id"]), params={"tail": 3})
        assert bad.status_code == 422 and bad.json()["errors"][0]["name"] == "tail"
        bad = admin.get(logs(done["id"]), params={"format": "xml"})
        assert bad.status_code == 422
        missing = admin.get(logs("nope"), headers={"Accept": "text/event-stream"})
        assert missing.status_code == 404 and missing.json()["code"] == "execution_not_found"
        missing = admin.get(logs("nope"), params={"format": "json"})
        assert missing.status_code == 404


def test_another_workspace_cannot_stream_or_page_the_log(
    server: Server, done: dict[str, Any]
) -> None:
    with server.client() as admin:
        made = admin.post("/api/v1/workspaces", json={"name": "other"})
        assert made.status_code == 201, made.text
    with http_client(
        base_url=server.base, headers={"Authorization": f"Bearer {made.json()['adminToken']}"}
    ) as other:
        r = other.get(logs(done["id"]), headers={"Accept": "text/event-stream"})
        assert r.status_code == 404
        r = other.get(logs(done["id"]), params={"format": "json"})
        assert r.status_code == 404
