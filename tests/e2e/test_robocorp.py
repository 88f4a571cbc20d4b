"""Robocorp Control Room style APIs end to end: the legacy workspace-v1 API with a
process secret, the Process API (process-v1) with an RC-WSKEY workspace key, work
items, and errors in the surface's own shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import Server, ServerFactory, deploy, http_client, make_process, wait_until

LEGACY = "/workspace-v1/workspaces/default/processes/invoice-bot"
P = "/process-v1/workspaces/default/processes/invoice-bot"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    root = tmp_path_factory.mktemp("p")
    with srv.client() as admin:
        deploy(
            admin,
            make_process(
                root,
                "invoice-bot",
                manifest="""
                entrypoint = "main:main"
                [parameters.invoice_id]
                type = "string"
                default = "none"
                [parameters.copies]
                type = "integer"
                default = 1
                [parameters.fail]
                type = "boolean"
                default = false
                [parameters.api_key]
                type = "secret"
                default = "k"
                """,
                code="""
                def main(invoice_id, copies, fail, api_key):
                    if fail:
                        raise RuntimeError("printer on fire")
                    return {"invoice": invoice_id, "copies": copies}
                """,
            ),
        )
        deploy(
            admin,
            make_process(
                root, "other", manifest='entrypoint = "main:main"', code="def main(): pass\n"
            ),
        )
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def process_secret(server: Server) -> str:
    with server.client() as admin:
        r = admin.post("/api/v1/processes/invoice-bot/secret")
        assert r.status_code == 201, r.text
        return str(r.json()["secret"])


@pytest.fixture(scope="module")
def wskey(server: Server) -> str:
    with server.client() as admin:
        r = admin.post(
            "/api/v1/tokens",
            json={"name": "control-room", "scopes": ["executions:start", "executions:read"]},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@pytest.fixture
def rc(server: Server, wskey: str) -> Iterator[httpx.Client]:
    with server.client(token=None, headers={"Authorization": f"RC-WSKEY {wskey}"}) as c:
        yield c


def vendor_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["error"] == code and body["message"], body
    return body


def completed(client: httpx.Client, url: str, method: str = "GET") -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (doc := client.request(method, url).json())["state"] == "COMPL" and doc,
            timeout=30,
        )
    )


# --- Legacy API -----------------------------------------------------------------


def test_legacy_start_with_the_process_secret_header_and_poll(
    server: Server, process_secret: str
) -> None:
    headers = {"robocloud-process-secret": process_secret}
    with server.client(token=None, headers=headers) as c:
        r = c.post(f"{LEGACY}/runs", json={"variables": {"invoice_id": "INV-1", "copies": 3}})
        assert r.status_code == 200, r.text
        started = r.json()
        assert started["message"] == "OK"
        assert {"processRunId", "processId", "workspaceId", "workItemId"} <= started.keys()
        run_url = f"{LEGACY}/runs/{started['processRunId']}"
        first = c.get(run_url).json()
        assert first["state"] in ("INI", "IND", "IP", "COMPL")
        assert first["errorCode"] == "" and isinstance(first["duration"], int)
        done = completed(c, run_url)
        assert done["result"] == "OK" and done["errorCode"] == ""
        assert set(done) == {"id", "result", "state", "errorCode", "duration", "workspaceId"}
        assert completed(c, run_url, method="POST") == done  # old callers poll with POST
    with server.client() as admin:
        record = admin.get(f"/api/v1/executions/{started['processRunId']}").json()
    assert record["result"] == {"invoice": "INV-1", "copies": 3}


def test_legacy_bare_body_bearer_prefix_and_query_parameter(
    server: Server, process_secret: str
) -> None:
    with server.client(
        token=None, headers={"robocloud-process-secret": f"Bearer {process_secret}"}
    ) as c:
        r = c.post(f"{LEGACY}/runs", json={"invoice_id": "INV-2"})
        assert r.status_code == 200, r.text
        run_id = r.json()["processRunId"]
    with server.client(token=None) as anon:
        url = f"{LEGACY}/runs/{run_id}"
        done = completed(
            http_client(
                base_url=anon.base_url, params={"robocloud-process-secret": process_secret}
            ),
            url,
        )
        assert done["result"] == "OK"
        # No Content-Type at all: still JSON
        r = anon.post(
            f"{LEGACY}/runs",
            params={"robocloud-process-secret": process_secret},
            content=b'{"invoice_id": "INV-3"}',
        )
        assert r.status_code == 200, r.text


def test_legacy_failed_run_is_compl_err_with_an_error_code(
    server: Server, process_secret: str
) -> None:
    with server.client(token=None, headers={"robocloud-process-secret": process_secret}) as c:
        run_id = c.post(f"{LEGACY}/runs", json={"fail": True}).json()["processRunId"]
        done = completed(c, f"{LEGACY}/runs/{run_id}")
    assert done["result"] == "ERR" and done["errorCode"] == "PROCESS_ERROR"


def test_legacy_secret_is_for_its_process_only_and_wrong_secret_is_401(
    server: Server, process_secret: str
) -> None:
    with server.client(token=None, headers={"robocloud-process-secret": process_secret}) as c:
        vendor_error(
            c.post("/workspace-v1/workspaces/default/processes/other/runs", json={}),
            403,
            "forbidden",
        )
        vendor_error(c.post(f"{LEGACY}/runs", content=b"{oops"), 400, "malformed_json")
    with server.client(token=None, headers={"robocloud-process-secret": "rps_wrong"}) as c:
        r = vendor_error(c.post(f"{LEGACY}/runs", json={}), 401, "invalid_credentials")
        assert "rps_wrong" not in str(r)
    with server.client(token=None) as anon:
        vendor_error(anon.post(f"{LEGACY}/runs", json={}), 401, "unauthenticated")


# --- Process API ----------------------------------------------------------------


def test_start_a_run_read_it_its_work_items_and_robot_run(rc: httpx.Client) -> None:
    r = rc.post(f"{P}/runs", json={"invoice_id": "INV-10", "api_key": "s3cret-canary"})
    assert r.status_code == 200, r.text
    started = r.json()
    assert set(started) == {"id", "workItemIds"} and len(started["workItemIds"]) == 1
    run = completed(rc, f"{P}/runs/{started['id']}")
    assert run["result"] == "OK" and run["errorCode"] == "" and run["runNo"] >= 1
    assert run["workItemIds"] == started["workItemIds"]
    assert isinstance(run["robotRuns"], list) and len(run["robotRuns"]) == 1
    robot = rc.get(f"{P}/runs/{started['id']}/robotRuns/{run['robotRuns'][0]['id']}")
    assert robot.status_code == 200 and robot.json()["result"] == "OK"
    items = rc.get(f"{P}/runs/{started['id']}/work-items", params={"includeData": "true"})
    [item] = items.json()["data"]
    assert item["id"] == started["workItemIds"][0]
    assert item["state"] == "DONE" and item["processRunId"] == started["id"]
    assert item["payload"] == {"invoice_id": "INV-10", "api_key": "***"}  # secrets masked
    assert "payload" not in rc.get(f"{P}/work-items/{item['id']}").json()
    assert "s3cret-canary" not in items.text


def test_run_numbers_count_up_and_lists_are_wrapped(rc: httpx.Client) -> None:
    a = rc.post(f"{P}/runs", json=[]).json()["id"]  # any JSON value is a payload
    b = rc.post(f"{P}/runs", json={"variables": {"copies": 2}}).json()["id"]
    runs = rc.get(f"{P}/runs", params={"limit": 2}).json()["data"]
    assert [r["id"] for r in runs] == [b, a]
    assert runs[0]["runNo"] == runs[1]["runNo"] + 1
    pruns = rc.get("/process-v1/workspaces/default/pruns", params={"limit": 5}).json()
    assert isinstance(pruns, list) and pruns[0]["id"] == b
    processes = rc.get("/process-v1/workspaces/default/processes").json()["data"]
    assert {"invoice-bot", "other"} <= {p["name"] for p in processes}
    assert all(set(p) == {"id", "name"} for p in processes)
    assert completed(rc, f"{P}/runs/{a}")["result"] == "OK"


def test_runs_batch_starts_one_run_per_payload_or_none(rc: httpx.Client, server: Server) -> None:
    r = rc.post(f"{P}/runs-batch", json=[{"invoice_id": "B1"}, {"invoice_id": "B2"}])
    assert r.status_code == 200, r.text
    started = r.json()["data"]
    assert len(started) == 2 and len({s["id"] for s in started}) == 2
    results = [completed(rc, f"{P}/runs/{s['id']}") for s in started]
    assert all(x["result"] == "OK" for x in results)
    with server.client() as admin:
        before = len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])
        bad = vendor_error(
            rc.post(f"{P}/runs-batch", json=[{"invoice_id": "B3"}, {"copies": "two"}]),
            422,
            "invalid_input_arguments",
        )
        assert bad["errors"][0]["name"] == "copies"
        vendor_error(rc.post(f"{P}/runs-batch", json={"a": 1}), 422, "invalid_request")
        after = len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])
    assert after == before  # all or none


def test_work_items_wait_for_a_run_request_with_exactly_those_payloads(
    rc: httpx.Client, server: Server
) -> None:
    one = rc.post(f"{P}/work-items", json={"payload": {"invoice_id": "W1"}}).json()
    two = rc.post(
        f"{P}/work-items", params={"bodyAsPayload": "true"}, json={"invoice_id": "W2"}
    ).json()
    three = rc.post(f"{P}/work-items", json={"payload": {"invoice_id": "W3"}}).json()
    assert one["state"] == "PENDING" and one["processRunId"] is None
    assert one["payload"] == {"invoice_id": "W1"} and two["payload"] == {"invoice_id": "W2"}
    listed = rc.get(f"{P}/work-items", params={"includeData": "true", "limit": 3}).json()["data"]
    assert [i["id"] for i in listed] == [three["id"], two["id"], one["id"]]
    r = rc.post(
        f"{P}/run-request",
        content=b'{"type": "workItemIds", "workItemIds": ["%s", "%s"]}'
        % (one["id"].encode(), two["id"].encode()),
    )  # no Content-Type, as callers send it
    assert r.status_code == 200, r.text
    runs = r.json()["data"]
    assert [run["workItemIds"] for run in runs] == [[one["id"]], [two["id"]]]
    with server.client() as admin:
        results = [
            admin.get(f"/api/v1/executions/{run['id']}", params={"wait": 20}).json()["result"]
            for run in runs
        ]
    assert results == [{"invoice": "W1", "copies": 1}, {"invoice": "W2", "copies": 1}]
    item = rc.get(f"{P}/work-items/{one['id']}").json()
    assert item["state"] == "DONE" and item["processRunId"] == runs[0]["id"]
    # an item already given to a run is not given again; nothing starts
    vendor_error(
        rc.post(
            f"{P}/run-request",
            json={"type": "workItemIds", "workItemIds": [three["id"], one["id"]]},
        ),
        409,
        "work_item_conflict",
    )
    assert rc.get(f"{P}/work-items/{three['id']}").json()["state"] == "PENDING"
    # the default run-request takes the items still waiting
    default = rc.post(f"{P}/run-request", json={"type": "default"}).json()["data"]
    assert [run["workItemIds"] for run in default] == [[three["id"]]]


def test_a_failed_work_item_is_retried_in_a_new_run(rc: httpx.Client) -> None:
    started = rc.post(f"{P}/runs", json={"fail": True}).json()
    assert completed(rc, f"{P}/runs/{started['id']}")["result"] == "ERR"
    item_id = started["workItemIds"][0]
    assert rc.get(f"{P}/work-items/{item_id}").json()["state"] == "FAILED"
    retried = rc.post(f"{P}/work-items/{item_id}/retry")
    assert retried.status_code == 200, retried.text
    new_run = retried.json()["processRunId"]
    assert new_run != started["id"]
    assert completed(rc, f"{P}/runs/{new_run}")["result"] == "ERR"  # same payload, same fate
    ok = rc.post(f"{P}/runs", json={}).json()
    completed(rc, f"{P}/runs/{ok['id']}")
    vendor_error(rc.post(f"{P}/work-items/{ok['workItemIds'][0]}/retry"), 409, "work_item_conflict")


def test_process_and_workspace_ids_work_where_names_do(rc: httpx.Client, server: Server) -> None:
    with server.client() as admin:
        process_id = admin.get("/api/v1/processes/invoice-bot").json()["id"]
        [ws] = [
            w for w in admin.get("/api/v1/workspaces").json()["items"] if w["name"] == "default"
        ]
    r = rc.post(f"/process-v1/workspaces/{ws['id']}/processes/{process_id}/runs", json={})
    assert r.status_code == 200, r.text
    run = completed(rc, f"{P}/runs/{r.json()['id']}")
    assert run["processId"] == process_id and run["workspaceId"] == ws["id"]


def test_process_api_errors_in_its_shape_and_nothing_stored(
    rc: httpx.Client, server: Server, process_secret: str
) -> None:
    with server.client() as admin:
        before = len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])
    vendor_error(rc.post(f"{P}/runs", content=b"[1,"), 400, "malformed_json")
    vendor_error(rc.post(f"{P}/runs", json={"copies": "x"}), 422, "invalid_input_arguments")
    vendor_error(
        rc.post("/process-v1/workspaces/default/processes/nope/runs", json={}),
        404,
        "process_not_found",
    )
    vendor_error(
        rc.post("/process-v1/workspaces/elsewhere/processes/invoice-bot/runs", json={}),
        404,
        "workspace_not_found",
    )
    vendor_error(rc.get(f"{P}/runs/not-a-run"), 404, "execution_not_found")
    vendor_error(rc.get(f"{P}/work-items/not-an-item"), 404, "work_item_not_found")
    vendor_error(rc.get(f"{P}/runs", params={"limit": "lots"}), 422, "invalid_request")
    vendor_error(rc.post(f"{P}/run-request", json={"type": "weekly"}), 422, "invalid_request")
    vendor_error(rc.post(f"{P}/run-request", json={"type": "workItemIds"}), 422, "invalid_request")
    with server.client(token=None, headers={"Authorization": "RC-WSKEY nope"}) as bad:
        vendor_error(bad.get(f"{P}/runs"), 401, "invalid_credentials")
    with server.client(token=None, headers={"Authorization": f"RC-WSKEY {process_secret}"}) as c:
        vendor_error(c.get("/process-v1/workspaces/default/processes"), 403, "forbidden")
    with server.client() as admin:
        after = len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])
    assert after == before


def test_another_workspace_key_sees_nothing_here(server: Server) -> None:
    with server.client() as admin:
        made = admin.post("/api/v1/workspaces", json={"name": "robots-elsewhere"}).json()
    with server.client(
        token=None, headers={"Authorization": f"RC-WSKEY {made['adminToken']}"}
    ) as other:
        vendor_error(other.get(f"{P}/runs"), 404, "workspace_not_found")
        own = "/process-v1/workspaces/robots-elsewhere/processes/invoice-bot/runs"
        vendor_error(other.get(own), 404, "process_not_found")
        assert other.get("/process-v1/workspaces/robots-elsewhere/processes").json() == {"data": []}


def test_a_file_goes_to_a_work_item_in_two_steps(rc: httpx.Client, server: Server) -> None:
    item = rc.post(f"{P}/work-items", json={"payload": {"invoice_id": "F1"}}).json()
    content = b"%PDF-1.7 invoice \x00\xff" * 100
    slot = rc.post(
        f"{P}/work-items/{item['id']}/files/upload",
        json={"fileName": "invoice 7.pdf", "fileSize": len(content)},
    )
    assert slot.status_code == 200, slot.text
    assert slot.headers["cache-control"] == "no-store"
    url, fields = slot.json()["url"], slot.json()["fields"]
    assert url.startswith(server.base) and set(fields) == {"key", "token"}
    with http_client() as plain:  # presigned: no other credential
        wrong = plain.post(url, data={**fields, "token": "rpu_wrong"}, files={"file": content})
        vendor_error(wrong, 403, "forbidden")
        short = plain.post(url, data=fields, files={"file": content[:-1]})
        vendor_error(short, 422, "invalid_request")
        vendor_error(plain.post(url, data=fields), 422, "invalid_request")
        vendor_error(plain.post(url, content=b"not a form"), 422, "invalid_request")
        done = plain.post(url, data=fields, files={"file": ("invoice 7.pdf", content)})
        assert done.status_code == 204, done.text
        vendor_error(plain.post(url, data=fields, files={"file": content}), 403, "forbidden")
    [listed] = rc.get(f"{item_url(item)}").json()["files"]
    assert listed == {"id": fields["key"], "fileName": "invoice 7.pdf", "fileSize": len(content)}
    got = rc.get(f"{item_url(item)}/files/{listed['id']}")
    assert got.status_code == 200 and got.content == content
    assert "invoice%207.pdf" in got.headers["content-disposition"]
    bad = rc.post(
        f"{P}/work-items/{item['id']}/files/upload", json={"fileName": "a/b", "fileSize": -1}
    )
    assert {p["name"] for p in vendor_error(bad, 422, "invalid_request")["errors"]} == {
        "fileName",
        "fileSize",
    }
    vendor_error(
        rc.post(f"{P}/work-items/nope/files/upload", json={"fileName": "a", "fileSize": 1}),
        404,
        "work_item_not_found",
    )


def item_url(item: dict[str, Any]) -> str:
    return f"{P}/work-items/{item['id']}"
