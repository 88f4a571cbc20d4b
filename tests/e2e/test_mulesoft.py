"""MuleSoft RPA style API end to end: OAuth2 client credentials, PUT/POST, GET, the
per-process OpenAPI document, errors in the surface's own shape."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from openapi_spec_validator import validate

from tests.support import Server, ServerFactory, deploy, make_process, wait_until

API = "/mulesoft/rpa/api/v2"


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
                required = true
                [parameters.copies]
                type = "integer"
                default = 1
                [parameters.fail]
                type = "boolean"
                default = false
                [outputs.total]
                type = "number"
                """,
                code="""
                def main(invoice_id, copies, fail):
                    if fail:
                        raise RuntimeError("printer on fire")
                    return {"total": 10.5 * copies, "invoice": invoice_id}
                """,
            ),
            inputArguments={"copies": 2},
        )
        deploy(
            admin,
            make_process(
                root, "shelved", manifest='entrypoint = "main:main"', code="def main(): pass\n"
            ),
            invokable=False,
        )
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def bearer(server: Server) -> dict[str, str]:
    """An access token from MuleSoft's token path, the client id and secret in Basic."""
    with server.client() as admin:
        app = admin.post(
            "/api/v1/apps",
            json={"name": "anypoint", "scopes": ["executions:start", "executions:read"]},
        ).json()
    basic = base64.b64encode(f"{app['clientId']}:{app['clientSecret']}".encode()).decode()
    with server.client(token=None) as anon:
        r = anon.post(
            "/accounts/api/v2/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    return {"Authorization": f"Bearer {body['access_token']}"}


@pytest.fixture
def ms(server: Server, bearer: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(token=None, headers=bearer) as c:
        yield c


def poll(ms: httpx.Client, execution_id: str) -> dict[str, Any]:
    url = f"{API}/processes/invoice-bot/executions/{quote(execution_id, safe='')}"
    return dict(
        wait_until(
            lambda: (doc := ms.get(url).json())["status"] in ("success", "error") and doc,
            timeout=30,
        )
    )


def vendor_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code and body["message"]
    return body


def test_put_201_204_409_then_success_with_the_result(ms: httpx.Client) -> None:
    url = f"{API}/processes/invoice-bot/executions"
    body = {"executionId": "CloudFirstLabs_Test1", "inputArguments": {"invoice_id": "INV-7"}}
    first = ms.put(url, json=body)
    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["executionId"] == "CloudFirstLabs_Test1"
    assert doc["status"] in ("notStarted", "running")
    assert doc["message"] == f"The process execution is in status {doc['status']}"
    assert ms.put(url, json=body).status_code == 204
    other = {**body, "inputArguments": {"invoice_id": "INV-8"}}
    vendor_error(ms.put(url, json=other), 409, "execution_id_conflict")
    done = poll(ms, "CloudFirstLabs_Test1")
    assert done["status"] == "success"
    assert done["result"] == {"total": 21.0, "invoice": "INV-7"}  # copies=2 from the deployment
    assert done["statusChangedAt"].endswith("Z")


def test_post_starts_with_a_server_made_execution_id(ms: httpx.Client) -> None:
    r = ms.post(
        f"{API}/processes/invoice-bot/executions", json={"inputArguments": {"invoice_id": "X"}}
    )
    assert r.status_code == 201
    assert poll(ms, r.json()["executionId"])["status"] == "success"


def test_any_execution_id_string_is_url_decoded(ms: httpx.Client) -> None:
    odd = "batch 7/run?x=1#a%2Fé"
    url = f"{API}/processes/invoice-bot/executions"
    assert (
        ms.put(url, json={"executionId": odd, "inputArguments": {"invoice_id": "Y"}}).status_code
        == 201
    )
    assert poll(ms, odd)["executionId"] == odd


def test_a_failed_run_reads_error_with_code_and_message(ms: httpx.Client) -> None:
    url = f"{API}/processes/invoice-bot/executions"
    body = {"executionId": "fails-1", "inputArguments": {"invoice_id": "Z", "fail": True}}
    assert ms.put(url, json=body).status_code == 201
    done = poll(ms, "fails-1")
    assert done["status"] == "error"
    assert done["result"]["code"] == "PROCESS_ERROR"
    assert "printer on fire" in done["result"]["message"]


def test_undeclared_input_keys_are_dropped_and_noted(ms: httpx.Client, server: Server) -> None:
    url = f"{API}/processes/invoice-bot/executions"
    body = {
        "executionId": "extra-keys",
        "inputArguments": {"invoice_id": "E", "outputTotal": None, "label": "x"},
    }
    assert ms.put(url, json=body).status_code == 201
    assert poll(ms, "extra-keys")["status"] == "success"
    with server.client() as admin:
        record = admin.get("/api/v1/processes/invoice-bot/executions/extra-keys").json()
        log = admin.get(f"/api/v1/executions/{record['id']}/logs").text
    assert "ignored input arguments that name no parameter: label, outputTotal" in log


def test_errors_in_mulesoft_shape_and_nothing_stored(ms: httpx.Client, server: Server) -> None:
    url = f"{API}/processes/invoice-bot/executions"
    vendor_error(ms.put(url, content=b"{not json"), 400, "malformed_json")
    vendor_error(ms.put(url, json={"inputArguments": {}}), 422, "invalid_request")
    bad = vendor_error(
        ms.put(url, json={"executionId": "typed", "inputArguments": {"invoice_id": 5}}),
        422,
        "invalid_input_arguments",
    )
    assert bad["errors"][0]["name"] == "invoice_id"
    vendor_error(
        ms.put(f"{API}/processes/nope/executions", json={"executionId": "n"}),
        404,
        "process_not_found",
    )
    vendor_error(
        ms.put(f"{API}/processes/shelved/executions", json={"executionId": "s"}),
        409,
        "process_not_invokable",
    )
    vendor_error(
        ms.get(f"{API}/processes/invoice-bot/executions/never"), 404, "execution_not_found"
    )
    with server.client() as admin:
        for eid in ("typed", "n", "s"):
            assert admin.get(f"/api/v1/processes/invoice-bot/executions/{eid}").status_code == 404


def test_missing_or_bad_token_is_401_in_mulesoft_shape(server: Server) -> None:
    with server.client(token=None) as anon:
        vendor_error(anon.get(f"{API}/processes/invoice-bot/executions/x"), 401, "unauthenticated")
    with server.client(token="rpa_" + "x" * 43) as bad:
        vendor_error(
            bad.get(f"{API}/processes/invoice-bot/executions/x"), 401, "invalid_credentials"
        )


def test_the_process_openapi_document_is_valid_and_typed(ms: httpx.Client) -> None:
    r = ms.get(f"{API}/processes/invoice-bot/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)  # OpenAPI 3.0 schema validation
    schemas = doc["components"]["schemas"]
    inputs = schemas["InputArguments"]
    assert inputs["properties"]["invoice_id"] == {"type": "string"}
    assert inputs["properties"]["copies"]["type"] == "integer"
    assert inputs["required"] == ["invoice_id"]
    assert schemas["OutputArguments"]["properties"]["total"] == {"type": "number"}
    ops = {
        op["operationId"]
        for path in doc["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert ops == {"startProcessV2", "startProcessNonIdempotentV2", "getProcessesExecutionStatusV2"}
    token_url = doc["components"]["securitySchemes"]["clientCredentials"]["flows"][
        "clientCredentials"
    ]["tokenUrl"]
    assert token_url.endswith("/accounts/api/v2/oauth2/token")


def test_native_api_sees_the_same_execution(ms: httpx.Client, server: Server) -> None:
    url = f"{API}/processes/invoice-bot/executions"
    body = {"executionId": "shared-1", "inputArguments": {"invoice_id": "S"}}
    assert ms.put(url, json=body).status_code == 201
    done = poll(ms, "shared-1")
    with server.client() as admin:
        native = admin.get("/api/v1/processes/invoice-bot/executions/shared-1").json()
    assert native["status"] == "succeeded" and native["result"] == done["result"]


def test_the_process_id_works_where_the_name_does(ms: httpx.Client, server: Server) -> None:
    with server.client() as admin:
        process_id = admin.get("/api/v1/processes/invoice-bot").json()["id"]
    url = f"{API}/processes/{process_id}/executions"
    body = {"executionId": "by-id", "inputArguments": {"invoice_id": "I"}}
    assert ms.put(url, json=body).status_code == 201
    assert ms.put(f"{API}/processes/invoice-bot/executions", json=body).status_code == 204
    assert ms.get(f"{url}/by-id").json()["executionId"] == "by-id"
    assert ms.get(f"{API}/processes/{process_id}/openapi.json").status_code == 200
    unknown = "01900000-0000-7000-8000-000000000000"
    vendor_error(ms.get(f"{API}/processes/{unknown}/executions/by-id"), 404, "execution_not_found")


def test_v1_takes_an_api_key_in_x_apikey(server: Server) -> None:
    with server.client() as admin:
        key = admin.post(
            "/api/v1/tokens",
            json={"name": "rpa-v1", "scopes": ["executions:start", "executions:read"]},
        ).json()["token"]
    v1 = "/mulesoft/rpa/api/v1/processes/invoice-bot/executions"
    with server.client(token=None, headers={"x-apikey": key}) as c:
        body = {"executionId": "v1-run", "inputArguments": {"invoice_id": "V1"}}
        assert c.put(v1, json=body).status_code == 201
        done = wait_until(lambda: (d := c.get(f"{v1}/v1-run").json())["status"] == "success" and d)
        assert done["result"]["invoice"] == "V1" and done["label"] is None
        doc = c.get("/mulesoft/rpa/api/v1/processes/invoice-bot/openapi.json").json()
        validate(doc)
        assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "x-apikey"
        assert doc["servers"][0]["url"].endswith("/mulesoft/rpa/api/v1")
    with server.client(token=None, headers={"x-apikey": "rpt_wrong"}) as c:
        vendor_error(c.get(f"{v1}/v1-run"), 401, "invalid_credentials")


def test_the_api_is_also_served_under_rpa_managers_own_path(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "1", env={"RUNPLANE_MULESOFT_BASE_PATH": "/rpa/api"})
    try:
        with srv.client() as admin:
            deploy(
                admin,
                make_process(
                    tmp_path_factory.mktemp("alias"),
                    "echo",
                    manifest='entrypoint = "main:main"\n[outputs.ok]\ntype = "boolean"',
                    code="def main():\n    return {'ok': True}\n",
                ),
            )
            odd = "a/b c"
            r = admin.put(
                "/rpa/api/v2/processes/echo/executions",
                json={"executionId": odd, "inputArguments": {}},
            )
            assert r.status_code == 201, r.text
            url = f"/rpa/api/v2/processes/echo/executions/{quote(odd, safe='')}"
            done = wait_until(lambda: (d := admin.get(url).json())["status"] == "success" and d)
            assert done["result"] == {"ok": True}
            assert admin.get("/mulesoft/rpa/api/v2/processes/echo/executions/x").status_code == 404
        with srv.client(token=None) as anon:
            vendor_error(anon.get(url), 401, "unauthenticated")
    finally:
        factory.stop_all()
