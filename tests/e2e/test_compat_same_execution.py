"""One engine under four surfaces: an execution started through any of the native
API, MuleSoft, Robocorp or Boomi routers is the same execution read through the
others, with each surface's own words for its state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import Server, ServerFactory, deploy, make_process

MULE = "/mulesoft/rpa/api/v2/processes/greeter/executions"
ROBO = "/process-v1/workspaces/default/processes/greeter"
BOOMI = "/api/rest/v1/default"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    with srv.client() as admin:
        deploy(
            admin,
            make_process(
                tmp_path_factory.mktemp("p"),
                "greeter",
                manifest="""
                entrypoint = "main:main"
                [parameters.name]
                type = "string"
                default = "world"
                [parameters.fail]
                type = "boolean"
                default = false
                [outputs.greeting]
                type = "string"
                """,
                code="""
                def main(name, fail):
                    if fail:
                        raise RuntimeError("no greeting for " + name)
                    return {"greeting": "Hello, " + name + "!"}
                """,
            ),
        )
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def robo(server: Server, admin: httpx.Client) -> Iterator[httpx.Client]:
    key = admin.post(
        "/api/v1/tokens",
        json={"name": "rc", "scopes": ["executions:start", "executions:read"]},
    ).json()["token"]
    with server.client(token=None, headers={"Authorization": f"RC-WSKEY {key}"}) as c:
        yield c


def everywhere(admin: httpx.Client, robo: httpx.Client, execution_id: str) -> dict[str, Any]:
    """The execution through every surface, once it has ended on the native API."""
    native = admin.get(f"/api/v1/executions/{execution_id}", params={"wait": 30}).json()
    assert native["status"] in ("succeeded", "failed"), native
    mule = admin.get(f"{MULE}/{quote(native['executionId'], safe='')}").json()
    run = robo.get(f"{ROBO}/runs/{execution_id}").json()
    record = admin.get(f"{BOOMI}/ExecutionRecord/async/executionrecord-{execution_id}")
    assert record.status_code == 200, record.text
    return {"native": native, "mule": mule, "robo": run, "boomi": record.json()["result"][0]}


def assert_succeeded(views: dict[str, Any], greeting: str) -> None:
    assert views["native"]["status"] == "succeeded"
    assert views["native"]["result"] == {"greeting": greeting}
    assert views["mule"]["status"] == "success"
    assert views["mule"]["result"] == {"greeting": greeting}
    assert (views["robo"]["state"], views["robo"]["result"]) == ("COMPL", "OK")
    assert views["boomi"]["status"] == "COMPLETE"
    assert views["boomi"]["executionId"].endswith(views["native"]["id"])


def test_started_natively_read_through_the_vendor_routers(
    admin: httpx.Client, robo: httpx.Client
) -> None:
    r = admin.put(
        "/api/v1/processes/greeter/executions",
        json={"executionId": "native-1", "inputArguments": {"name": "Ada"}},
    )
    assert r.status_code == 201, r.text
    assert_succeeded(everywhere(admin, robo, r.json()["id"]), "Hello, Ada!")


def test_started_through_mulesoft(admin: httpx.Client, robo: httpx.Client) -> None:
    r = admin.put(MULE, json={"executionId": "mule/1", "inputArguments": {"name": "Mule"}})
    assert r.status_code == 201, r.text
    native = admin.get("/api/v1/processes/greeter/executions/mule%2F1").json()
    assert_succeeded(everywhere(admin, robo, native["id"]), "Hello, Mule!")


def test_started_through_robocorp(admin: httpx.Client, robo: httpx.Client) -> None:
    r = robo.post(f"{ROBO}/runs", json={"variables": {"name": "Robo"}})
    assert r.status_code == 200, r.text
    views = everywhere(admin, robo, r.json()["id"])
    assert_succeeded(views, "Hello, Robo!")
    assert views["robo"]["workItemIds"] == r.json()["workItemIds"]


def test_started_through_boomi(admin: httpx.Client, robo: httpx.Client) -> None:
    r = admin.post(
        f"{BOOMI}/ExecutionRequest",
        json={
            "atomId": "production",
            "processId": "greeter",
            "DynamicProcessProperties": {
                "DynamicProcessProperty": [{"name": "name", "value": "Boomi"}]
            },
        },
    )
    assert r.status_code == 200, r.text
    request_id = r.json()["requestId"]
    execution_id = request_id.removeprefix("executionrecord-")
    assert_succeeded(everywhere(admin, robo, execution_id), "Hello, Boomi!")


def test_a_failure_reads_as_each_surfaces_error(admin: httpx.Client, robo: httpx.Client) -> None:
    r = robo.post(f"{ROBO}/runs", json={"name": "Eve", "fail": True})
    views = everywhere(admin, robo, r.json()["id"])
    assert views["native"]["status"] == "failed"
    assert views["native"]["error"]["code"] == "PROCESS_ERROR"
    assert views["mule"]["status"] == "error"
    assert views["mule"]["result"]["code"] == "PROCESS_ERROR"
    assert (views["robo"]["state"], views["robo"]["result"]) == ("COMPL", "ERR")
    assert views["robo"]["errorCode"] == "PROCESS_ERROR"
    assert views["boomi"]["status"] == "ERROR"
    assert "no greeting for Eve" in views["boomi"]["message"]


def test_unknown_routes_and_methods_answer_in_each_surfaces_shape(admin: httpx.Client) -> None:
    mule = admin.delete(MULE)
    assert mule.status_code == 405 and mule.json()["code"] == "method_not_allowed"
    robo = admin.get("/process-v1/workspaces/default/nothing-here")
    assert robo.status_code == 404 and robo.json()["error"] == "not_found"
    boomi = admin.get(f"{BOOMI}/Atom")
    assert boomi.status_code == 404 and boomi.json()["@type"] == "Error"
    native = admin.get("/api/v1/nothing-here")
    assert native.headers["content-type"].startswith("application/problem+json")
    for r in (mule, robo, boomi):
        assert r.headers["content-type"] == "application/json"
