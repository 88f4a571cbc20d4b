"""The native API end to end, against a real `runplane serve` and real executions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runplane.examples import example
from tests.support import Server, ServerFactory, deploy, make_process, wait_terminal, wait_until

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "4")
    root = tmp_path_factory.mktemp("processes")
    with srv.client() as c:
        deploy(
            c,
            make_process(
                root,
                "strict",
                manifest="""
                entrypoint = "main:main"
                [parameters.amount]
                type = "number"
                required = true
                [parameters.count]
                type = "integer"
                default = 1
                [parameters.flag]
                type = "boolean"
                """,
                code="def main(**kw):\n    return kw\n",
            ),
        )
        deploy(
            c,
            make_process(
                root,
                "secretive",
                manifest="""
                entrypoint = "main:main"
                [parameters.token]
                type = "secret"
                required = true
                [parameters.label]
                type = "string"
                default = "x"
                """,
                code="""
                def main(token, label):
                    print("the token is", token, flush=True)
                    return {"tokenLength": len(token), "label": label}
                """,
            ),
        )
        deploy(
            c,
            make_process(
                root,
                "boom",
                manifest='entrypoint = "main:main"',
                code="def main():\n    raise ValueError('bad invoice 42')\n",
            ),
        )
        deploy(
            c,
            make_process(
                root,
                "sleepy",
                manifest='entrypoint = "main:main"\ntimeout = "1s"',
                code="import time\n\ndef main():\n    print('napping', flush=True)\n"
                "    time.sleep(60)\n",
            ),
        )
        dual = make_process(
            root, "dual", manifest='entrypoint = "main:main"', code="def main(): pass\n"
        )
        deploy(c, dual, "production")
        deploy(c, dual, "sandbox")
        deploy(
            c,
            make_process(
                root, "hidden", manifest='entrypoint = "main:main"', code="def main(): pass\n"
            ),
            invokable=False,
        )
        deploy(c, example("slow"))
        deploy(c, example("shell-report"))
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def count(client: httpx.Client, process: str) -> int:
    r = client.get("/api/v1/executions", params={"process": process, "limit": 500})
    assert r.status_code == 200
    return len(r.json()["items"])


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["title"] and body["detail"] and body["type"].endswith(code)
    assert "Traceback" not in r.text
    return body


def test_seed_flow_put_201_204_409_then_succeeded(client: httpx.Client) -> None:
    url = "/api/v1/processes/hello/executions"
    body = {
        "executionId": "CloudFirstLabs_Test1",
        "inputArguments": {"name": "Ada"},
        "environment": "production",
    }
    first = client.put(url, json=body)
    assert first.status_code == 201, first.text
    record = first.json()
    assert record["executionId"] == "CloudFirstLabs_Test1"
    assert record["status"] in ("queued", "running")
    assert first.headers["location"] == f"/api/v1/executions/{record['id']}"
    again = client.put(url, json={**body, "inputArguments": {"name": "Ada"}})
    assert again.status_code == 204 and again.content == b""
    other = client.put(url, json={**body, "inputArguments": {"name": "Bob"}})
    assert_problem(other, 409, "execution_id_conflict")
    done = wait_terminal(client, record["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"greeting": "Hello, Ada!"}
    assert done["attempt"] == 1 and done["durationMs"] >= 0 and done["runtime"]
    by_client = client.get(f"{url}/CloudFirstLabs_Test1")
    assert by_client.status_code == 200 and by_client.json()["id"] == record["id"]


def test_repeat_compares_effective_inputs_not_bytes(client: httpx.Client) -> None:
    url = "/api/v1/processes/hello/executions"
    assert client.put(url, json={"executionId": "eff-1", "inputArguments": {}}).status_code == 201
    spelled_out = {"executionId": "eff-1", "inputArguments": {"name": "world"}}
    assert client.put(url, json=spelled_out).status_code == 204


def test_concurrent_puts_of_one_id_make_one_execution(client: httpx.Client, server: Server) -> None:
    statuses: list[int] = []

    def send() -> None:
        with server.client() as c:
            r = c.put(
                "/api/v1/processes/hello/executions",
                json={"executionId": "race-1", "inputArguments": {"name": "r"}},
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [204] * 7


def test_post_with_idempotency_key_replays_the_first_execution(client: httpx.Client) -> None:
    url = "/api/v1/processes/hello/executions"
    headers = {"Idempotency-Key": "idem-7"}
    first = client.post(url, json={"inputArguments": {"name": "I"}}, headers=headers)
    assert first.status_code == 201 and first.headers["location"].endswith(first.json()["id"])
    again = client.post(url, json={"inputArguments": {"name": "I"}}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post(url, json={"inputArguments": {"name": "J"}}, headers=headers)
    assert_problem(other, 409, "execution_id_conflict")


def test_post_with_wait_returns_the_result(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/processes/hello/executions", params={"wait": 20}, json={"inputArguments": {}}
    )
    assert r.status_code == 201
    assert r.json()["status"] == "succeeded"
    assert r.json()["result"] == {"greeting": "Hello, world!"}


def test_malformed_json_is_refused_and_nothing_stored(client: httpx.Client) -> None:
    before = count(client, "strict")
    r = client.post(
        "/api/v1/processes/strict/executions",
        content=b'{"inputArguments": {"amount": 1',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 400, "malformed_json")
    assert count(client, "strict") == before


def test_every_input_problem_is_listed_and_nothing_stored(client: httpx.Client) -> None:
    before = count(client, "strict")
    r = client.put(
        "/api/v1/processes/strict/executions",
        json={
            "executionId": "bad-inputs",
            "inputArguments": {"count": "three", "flag": "yes", "colour": "red"},
        },
    )
    body = assert_problem(r, 422, "invalid_input_arguments")
    problems = {p["name"]: p["code"] for p in body["errors"]}
    assert problems == {
        "count": "wrong_type",
        "flag": "wrong_type",
        "colour": "unknown_parameter",
        "amount": "missing_required",
    }
    assert count(client, "strict") == before
    assert client.get("/api/v1/processes/strict/executions/bad-inputs").status_code == 404


def test_unknown_fields_in_the_body_are_named(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/strict/executions", json={"inputs": {"amount": 1}})
    body = assert_problem(r, 422, "invalid_request")
    assert [p["name"] for p in body["errors"]] == ["inputs"]


def test_unknown_process_is_404(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/nope/executions", json={"inputArguments": {}})
    assert_problem(r, 404, "process_not_found")


def test_process_not_deployed_to_the_environment_is_409(client: httpx.Client) -> None:
    before = count(client, "boom")
    r = client.post(
        "/api/v1/processes/boom/executions",
        json={"inputArguments": {}, "environment": "sandbox"},
    )
    body = assert_problem(r, 409, "process_not_deployed")
    assert body["environment"] == "sandbox"
    assert count(client, "boom") == before
    r = client.post(
        "/api/v1/processes/boom/executions", json={"inputArguments": {}, "environment": "moon"}
    )
    assert_problem(r, 404, "environment_not_found")
    assert count(client, "boom") == before


def test_not_invokable_is_409_and_nothing_stored(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/hidden/executions", json={"inputArguments": {}})
    assert_problem(r, 409, "process_not_invokable")
    assert count(client, "hidden") == 0


def test_environment_is_required_when_several_are_invokable(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/dual/executions", json={"inputArguments": {}})
    body = assert_problem(r, 422, "environment_required")
    assert body["environments"] == ["production", "sandbox"]
    ok = client.post(
        "/api/v1/processes/dual/executions", json={"inputArguments": {}, "environment": "sandbox"}
    )
    assert ok.status_code == 201 and ok.json()["environment"] == "sandbox"


def test_body_over_one_mebibyte_is_413_and_nothing_stored(client: httpx.Client) -> None:
    before = count(client, "strict")
    big = b'{"inputArguments": {"amount": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}}'
    r = client.post(
        "/api/v1/processes/strict/executions",
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        yield big[: len(big) // 2]
        yield big[len(big) // 2 :]

    r = client.post(
        "/api/v1/processes/strict/executions",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")
    assert count(client, "strict") == before


def test_bad_manifest_upload_names_every_problem_and_stores_nothing(
    client: httpx.Client, tmp_path: Path
) -> None:
    from runplane.bundle import pack_folder

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "runplane.toml").write_text(
        '[process]\nname = "broken"\ntimeout = "forever"\n[parameters.n]\ntype = "text"\n'
    )
    r = client.post(
        "/api/v1/processes/broken/versions",
        content=pack_folder(folder),
        headers={"Content-Type": "application/zip"},
    )
    body = assert_problem(r, 422, "invalid_manifest")
    names = {p["name"] for p in body["errors"]}
    assert names == {"process", "process.timeout", "parameters.n.type"}
    assert all(p["file"] == "runplane.toml" for p in body["errors"])
    assert_problem(client.get("/api/v1/processes/broken"), 404, "process_not_found")


def test_not_a_zip_is_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/processes/x/versions",
        content=b"not a zip",
        headers={"Content-Type": "application/zip"},
    )
    assert_problem(r, 422, "invalid_bundle")
    r = client.post("/api/v1/processes/x/versions", json={"a": 1})
    assert_problem(r, 415, "unsupported_media_type")


def test_same_bundle_twice_is_the_same_version(client: httpx.Client) -> None:
    from runplane.bundle import pack_folder

    data = pack_folder(example("hello"))
    r = client.post(
        "/api/v1/processes/hello/versions",
        content=data,
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200 and r.json()["version"] == 1


def test_failing_process_is_failed_with_traceback_in_log(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/boom/executions", json={"inputArguments": {}})
    done = wait_terminal(client, r.json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "PROCESS_ERROR"
    assert "bad invoice 42" in done["error"]["message"]
    log = client.get(f"/api/v1/executions/{done['id']}/logs").text
    assert "Traceback" in log and "ValueError: bad invoice 42" in log


def test_timeout_kills_the_process_and_is_timed_out(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/sleepy/executions", json={"inputArguments": {}})
    done = wait_terminal(client, r.json()["id"])
    assert done["status"] == "timed_out" and done["error"]["code"] == "TIMED_OUT"
    assert done["durationMs"] < 10_000


def test_command_process_gets_input_and_writes_output(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/processes/shell-report/executions",
        params={"wait": 20},
        json={"inputArguments": {"message": "yo", "count": 2}},
    )
    done = wait_terminal(client, r.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"received": {"message": "yo", "count": 2}, "lines": 2}
    log = client.get(f"/api/v1/executions/{done['id']}/logs").text
    assert "line 2 of 2" in log


def test_secrets_are_masked_everywhere_and_reach_the_process(client: httpx.Client) -> None:
    canary = "canary-Zq81-secret"
    r = client.post(
        "/api/v1/processes/secretive/executions", json={"inputArguments": {"token": canary}}
    )
    assert r.status_code == 201 and canary not in r.text
    assert r.json()["inputArguments"]["token"] == "***"
    done = wait_terminal(client, r.json()["id"])
    assert done["result"] == {"tokenLength": len(canary), "label": "x"}
    log = client.get(f"/api/v1/executions/{done['id']}/logs").text
    assert "the token is ***" in log and canary not in log
    listing = client.get("/api/v1/executions", params={"process": "secretive"}).text
    assert canary not in listing


def test_logs_follow_streams_while_running_and_cancel_kills(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/slow/executions", json={"inputArguments": {"seconds": 30}})
    eid = r.json()["id"]
    seen = ""
    with client.stream("GET", f"/api/v1/executions/{eid}/logs", params={"follow": "true"}) as s:
        assert s.status_code == 200
        for text in s.iter_text():
            seen += text
            if "progress 2/30" in seen:
                break
    running = client.get(f"/api/v1/executions/{eid}").json()
    assert running["status"] == "running"
    c = client.post(f"/api/v1/executions/{eid}/cancel")
    assert c.status_code == 202 and c.json()["cancelRequested"] is True
    done = wait_terminal(client, eid, timeout=20)
    assert done["status"] == "cancelled" and done["error"]["code"] == "CANCELLED"
    assert done["durationMs"] < 20_000
    again = assert_problem(
        client.post(f"/api/v1/executions/{eid}/cancel"), 409, "execution_finished"
    )
    assert again["executionStatus"] == "cancelled"


def test_list_filters_and_paginates_with_a_url_safe_cursor(client: httpx.Client) -> None:
    ids = [
        client.post("/api/v1/processes/hello/executions", json={"inputArguments": {}}).json()["id"]
        for _ in range(5)
    ]
    for eid in ids:
        wait_terminal(client, eid)
    got: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"process": "hello", "status": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/executions", params=params).json()
        got += [i["id"] for i in page["items"]]
        assert all(i["status"] == "succeeded" for i in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert all(ch.isalnum() or ch in "-_" for ch in cursor)
    assert got == sorted(got, reverse=True)
    assert set(ids) <= set(got)
    assert_problem(
        client.get("/api/v1/executions", params={"status": "sleeping"}), 422, "invalid_request"
    )
    assert_problem(client.get("/api/v1/executions", params={"limit": 501}), 422, "invalid_request")


def test_get_wait_long_polls_until_terminal(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/slow/executions", json={"inputArguments": {"seconds": 1}})
    eid = r.json()["id"]
    got = client.get(f"/api/v1/executions/{eid}", params={"wait": 30})
    assert got.json()["status"] == "succeeded"


def test_unknown_ids_and_routes_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/api/v1/executions/nope"), 404, "execution_not_found")
    assert_problem(
        client.get("/api/v1/processes/hello/executions/nope"), 404, "execution_not_found"
    )
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")
    body = assert_problem(client.delete("/api/v1/executions"), 405, "method_not_allowed")
    assert body["title"] == "This method is not allowed on this resource."


def test_openapi_document_lists_the_routes(client: httpx.Client) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    assert "/api/v1/processes/{process}/executions" in paths
    assert {"put", "post"} <= set(paths["/api/v1/processes/{process}/executions"])
    assert "/api/v1/executions/{execution_id}/cancel" in paths


def test_deployments_and_versions_are_listed(client: httpx.Client) -> None:
    deps = client.get("/api/v1/deployments", params={"process": "dual"}).json()["items"]
    assert sorted(d["environment"] for d in deps) == ["production", "sandbox"]
    proc = client.get("/api/v1/processes/strict").json()
    assert proc["versions"][0]["parameters"][0]["name"] == "amount"
    names = [p["name"] for p in client.get("/api/v1/processes").json()["items"]]
    assert "hello" in names and "strict" in names


def test_deploy_refuses_bad_run_configuration(client: httpx.Client) -> None:
    r = client.put(
        "/api/v1/processes/strict/deployments/sandbox",
        json={"inputArguments": {"count": "x", "zzz": 1}},
    )
    body = assert_problem(r, 422, "invalid_input_arguments")
    assert {p["name"] for p in body["errors"]} == {"count", "zzz"}
    stored = client.get("/api/v1/deployments", params={"process": "strict"}).json()["items"]
    assert "sandbox" not in {d["environment"] for d in stored}
    r = client.put(
        "/api/v1/processes/strict/deployments/sandbox", json={"inputArguments": {"count": 1e20}}
    )
    body = assert_problem(r, 422, "invalid_input_arguments")
    assert [(p["name"], p["code"]) for p in body["errors"]] == [("count", "out_of_range")]
    assert_problem(
        client.put("/api/v1/processes/strict/deployments/moon", json={}),
        404,
        "environment_not_found",
    )


def test_run_configuration_defaults_apply(client: httpx.Client) -> None:
    r = client.put(
        "/api/v1/processes/strict/deployments/sandbox",
        json={"inputArguments": {"amount": 9.5, "count": 4}},
    )
    assert r.status_code == 201, r.text
    started = client.post(
        "/api/v1/processes/strict/executions",
        json={"inputArguments": {"count": 2}, "environment": "sandbox"},
    )
    done = wait_terminal(client, started.json()["id"])
    assert done["result"] == {"amount": 9.5, "count": 2}


def test_queued_cancel_is_immediate(start_server: ServerFactory) -> None:
    srv = start_server.start("--slots", "0")
    with srv.client() as c:
        r = c.post("/api/v1/processes/hello/executions", json={"inputArguments": {}})
        assert r.json()["status"] == "queued"
        got = c.post(f"/api/v1/executions/{r.json()['id']}/cancel")
        assert got.status_code == 200 and got.json()["status"] == "cancelled"
        wait_until(
            lambda: c.get(f"/api/v1/executions/{r.json()['id']}").json()["status"] == "cancelled"
        )


def test_deploy_changes_apply_to_the_very_next_trigger(
    client: httpx.Client, tmp_path: Path
) -> None:
    folder = make_process(
        tmp_path,
        "flip",
        manifest='entrypoint = "main:main"\n[parameters.v]\ntype = "integer"\ndefault = 0',
        code="def main(v):\n    return {'v': v}\n",
    )
    deploy(client, folder, inputArguments={"v": 1})
    url = "/api/v1/processes/flip/executions"
    assert client.post(url, params={"wait": 20}, json={}).json()["result"] == {"v": 1}
    r = client.put(
        "/api/v1/processes/flip/deployments/production", json={"inputArguments": {"v": 2}}
    )
    assert r.status_code == 200
    assert client.post(url, params={"wait": 20}, json={}).json()["result"] == {"v": 2}
    assert client.delete("/api/v1/processes/flip/deployments/production").status_code == 204
    assert_problem(client.post(url, json={}), 409, "process_not_invokable")


def test_bad_wait_and_idempotency_key_are_named(client: httpx.Client) -> None:
    url = "/api/v1/processes/hello/executions"
    for wait in ("soon", "-1", "nan", "99999"):
        body = assert_problem(
            client.post(url, params={"wait": wait}, json={}), 422, "invalid_request"
        )
        assert body["errors"][0]["name"] == "wait"
    body = assert_problem(
        client.post(url, json={}, headers={"Idempotency-Key": "k" * 256}), 422, "invalid_request"
    )
    assert body["errors"][0]["name"] == "Idempotency-Key"
    body = assert_problem(
        client.put(url, json={"executionId": "", "inputArguments": {}}), 422, "invalid_request"
    )
    assert body["errors"][0]["name"] == "executionId"


def test_huge_integers_are_refused_clearly_and_nothing_stored(client: httpx.Client) -> None:
    before = count(client, "strict")
    r = client.post(
        "/api/v1/processes/strict/executions",
        content=b'{"environment": "production", "inputArguments": '
        b'{"amount": 1, "count": 123456789012345678901234567890}}',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(r, 422, "invalid_input_arguments")
    assert [p["name"] for p in body["errors"]] == ["count"]
    assert count(client, "strict") == before


def test_identical_put_retry_is_204_even_after_the_deployment_changed(
    client: httpx.Client, tmp_path: Path
) -> None:
    folder = make_process(
        tmp_path,
        "retryable",
        manifest='entrypoint = "main:main"\n[parameters.v]\ntype = "integer"\ndefault = 0',
        code="def main(v):\n    return {'v': v}\n",
    )
    deploy(client, folder, inputArguments={"v": 1})
    url = "/api/v1/processes/retryable/executions"
    body = {"executionId": "lost-response-1", "inputArguments": {}}
    assert client.put(url, json=body).status_code == 201
    client.put(
        "/api/v1/processes/retryable/deployments/production", json={"inputArguments": {"v": 2}}
    )
    assert client.put(url, json=body).status_code == 204
    client.delete("/api/v1/processes/retryable/deployments/production")
    assert client.put(url, json=body).status_code == 204
    other = client.put(url, json={**body, "inputArguments": {"v": 3}})
    assert other.status_code == 409  # a different request is never a repeat


def test_plain_log_is_complete_beyond_one_page(client: httpx.Client, tmp_path: Path) -> None:
    folder = make_process(
        tmp_path,
        "chatty",
        manifest='entrypoint = "main:main"',
        code="import sys, time\n\ndef main():\n"
        "    for i in range(1500):\n        print(f'line {i}', flush=True)\n"
        "        if i % 100 == 0:\n            time.sleep(0.25)\n",
    )
    deploy(client, folder)
    r = client.post("/api/v1/processes/chatty/executions", json={})
    done = wait_terminal(client, r.json()["id"])
    assert done["status"] == "succeeded"
    text = client.get(f"/api/v1/executions/{done['id']}/logs").text
    assert text.splitlines() == [f"line {i}" for i in range(1500)]


def test_links_percent_encode_the_client_execution_id(client: httpx.Client) -> None:
    odd = "batch 7/run?x=1#a%2F"
    r = client.put(
        "/api/v1/processes/hello/executions", json={"executionId": odd, "inputArguments": {}}
    )
    link = r.json()["links"]["byExecutionId"]
    assert " " not in link and "?" not in link and "#" not in link
    again = client.get(link)
    assert again.status_code == 200 and again.json()["executionId"] == odd


def test_empty_post_body_starts_with_defaults(client: httpx.Client) -> None:
    r = client.post("/api/v1/processes/hello/executions", params={"wait": 20})
    assert r.status_code == 201 and r.json()["result"] == {"greeting": "Hello, world!"}


def test_float_that_coerces_to_a_huge_integer_is_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/processes/strict/executions",
        json={"environment": "production", "inputArguments": {"amount": 1, "count": 1e300}},
    )
    body = assert_problem(r, 422, "invalid_input_arguments")
    assert [p["name"] for p in body["errors"]] == ["count"]


def test_embedded_runtime_is_listed_with_a_fresh_heartbeat(client: httpx.Client) -> None:
    first = client.get("/api/v1/runtimes").json()["items"]
    assert len(first) == 1 and first[0]["state"] == "online" and first[0]["slots"] == 4
    # The test servers use a 3 s lease TTL, so a heartbeat comes every second.
    wait_until(
        lambda: (
            client.get("/api/v1/runtimes").json()["items"][0]["lastHeartbeatAt"]
            > first[0]["lastHeartbeatAt"]
        ),
        timeout=10,
    )


def test_openapi_documents_errors_as_problem_details(client: httpx.Client) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]
    post = doc["paths"]["/api/v1/processes/{process}/executions"]["post"]
    assert set(post["responses"]["422"]["content"]) == {"application/problem+json"}
    assert set(post["responses"]["default"]["content"]) == {"application/problem+json"}
    assert post["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "inputArguments"
    ]


def test_out_of_range_version_numbers_are_422(client: httpx.Client) -> None:
    assert_problem(
        client.get("/api/v1/processes/hello/versions/99999999999999999999"), 422, "invalid_request"
    )
    r = client.put(
        "/api/v1/processes/hello/deployments/sandbox", json={"version": 9223372036854775808}
    )
    assert_problem(r, 422, "invalid_request")


def test_trigger_path_allows_put_and_post(client: httpx.Client) -> None:
    r = client.get("/api/v1/processes/hello/executions")
    assert_problem(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"PUT", "POST"}


def test_nul_in_a_client_execution_id_is_refused(client: httpx.Client) -> None:
    r = client.put(
        "/api/v1/processes/hello/executions",
        content=b'{"executionId": "n\\u0000x", "inputArguments": {}}',
        headers={"Content-Type": "application/json"},
    )
    problem = assert_problem(r, 422, "invalid_request")
    assert problem["errors"][0]["name"] == "executionId"
