"""Per-process secrets: start that process and read its executions, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    ADMIN_TOKEN,
    Server,
    ServerFactory,
    deploy,
    make_process,
    wait_terminal,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    with srv.client() as c:
        deploy(
            c,
            make_process(
                tmp_path_factory.mktemp("p"),
                "other",
                manifest='entrypoint = "main:main"',
                code="def main():\n    return {}\n",
            ),
        )
    try:
        yield srv
    finally:
        factory.stop_all()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code
    return body


def test_a_process_secret_starts_and_reads_its_process_only(server: Server) -> None:
    with server.client() as admin:
        made = admin.post("/api/v1/processes/hello/secret")
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        secret = made.json()["secret"]
        assert secret.startswith("rps_")
        problem(admin.post("/api/v1/processes/hello/secret"), 409, "conflict")
        other = admin.post("/api/v1/processes/other/executions", json={}).json()["id"]
    url = "/api/v1/processes/hello/executions"
    with server.client(token=None) as anon:
        by_header = anon.post(url, json={}, headers={"Runplane-Process-Secret": secret})
        assert by_header.status_code == 201, by_header.text
        by_query = anon.post(url, params={"process-secret": secret}, json={})
        assert by_query.status_code == 201, by_query.text
        headers = {"Runplane-Process-Secret": secret}
        done = anon.get(
            f"/api/v1/executions/{by_header.json()['id']}", params={"wait": 20}, headers=headers
        )
        assert done.status_code == 200 and done.json()["status"] == "succeeded"
        problem(
            anon.post("/api/v1/processes/other/executions", json={}, headers=headers),
            403,
            "forbidden",
        )
        problem(
            anon.get(f"/api/v1/executions/{other}", headers=headers), 404, "execution_not_found"
        )
        listed = anon.get("/api/v1/executions", params={"limit": 500}, headers=headers).json()
        assert {e["process"] for e in listed["items"]} == {"hello"}
        problem(anon.get("/api/v1/processes", headers=headers), 403, "forbidden")
        problem(anon.get("/api/v1/tokens", headers=headers), 403, "forbidden")
        wrong = anon.post(url, json={}, headers={"Runplane-Process-Secret": "rps_" + "x" * 43})
        problem(wrong, 401, "invalid_credentials")


def test_rotating_and_deleting_a_process_secret_take_effect_at_once(server: Server) -> None:
    url = "/api/v1/processes/other/executions"
    with server.client() as admin, server.client(token=None) as anon:

        def start(secret: str) -> httpx.Response:
            return anon.post(url, json={}, headers={"Runplane-Process-Secret": secret})

        old = admin.post("/api/v1/processes/other/secret").json()["secret"]
        assert start(old).status_code == 201
        new = admin.post("/api/v1/processes/other/secret/rotate").json()["secret"]
        problem(start(old), 401, "invalid_credentials")
        assert start(new).status_code == 201
        listed = admin.get("/api/v1/secrets").json()["items"]
        assert "other" in {s["process"] for s in listed} and new not in str(listed)
        assert admin.delete("/api/v1/processes/other/secret").status_code == 204
        problem(start(new), 401, "invalid_credentials")
        problem(admin.delete("/api/v1/processes/other/secret"), 404, "credential_not_found")
        problem(admin.post("/api/v1/processes/nope/secret"), 404, "process_not_found")


def test_secrets_never_reach_the_server_log(server: Server) -> None:
    with server.client() as admin:
        admin.delete("/api/v1/processes/hello/secret")
        secret = admin.post("/api/v1/processes/hello/secret").json()["secret"]
        token = admin.post(
            "/api/v1/tokens", json={"name": "canary", "scopes": ["executions:read"]}
        ).json()["token"]
    with server.client(token=None) as anon:
        r = anon.post(
            "/api/v1/processes/hello/executions",
            params={"process-secret": secret, "wait": 20},
            json={},
        )
        anon.get("/api/v1/executions", headers={"Authorization": f"Bearer {token}x"})
    with server.client() as admin:
        assert wait_terminal(admin, r.json()["id"])["status"] == "succeeded"
    log = server.log()
    assert secret not in log and token not in log


def test_the_access_log_redacts_credentials(start_server: ServerFactory) -> None:
    srv = start_server.start("--slots", "0", "--access-log")
    with srv.client() as admin:
        secret = admin.post("/api/v1/processes/hello/secret").json()["secret"]
    with srv.client(token=None) as anon:
        r = anon.post(
            "/api/v1/processes/hello/executions",
            params={"process-secret": secret, "wait": "0"},
            json={},
        )
        assert r.status_code == 201
    srv.stop()
    log = srv.log()
    assert '"POST /api/v1/processes/hello/executions?process-secret=***&wait=0" 201' in log
    assert secret not in log
    assert ADMIN_TOKEN not in log
    assert '"POST /api/v1/processes/hello/secret" 201' in log
