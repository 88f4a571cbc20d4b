"""Boomi AtomSphere style API end to end: ExecutionRequest (JSON and XML), the async
ExecutionRecord (202 then 200), queries with paging, errors in Boomi's shape."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from tests.support import Server, ServerFactory, deploy, make_process, wait_until

API = "/api/rest/v1"
NS = "{http://api.platform.boomi.com/}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
RECORD_MEMBERS = {
    "account",
    "atomId",
    "atomName",
    "executionId",
    "executionTime",
    "executionType",
    "processId",
    "processName",
    "recordedDate",
    "status",
}
DATE = "%Y-%m-%dT%H:%M:%SZ"

INVOICE = """
entrypoint = "main:main"
[parameters.invoice_id]
type = "string"
required = true
[parameters.copies]
type = "integer"
default = 1
[parameters.rate]
type = "number"
default = 1
[parameters.fail]
type = "boolean"
default = false
[parameters.meta]
type = "object"
[parameters.tags]
type = "array"
"""
INVOICE_CODE = """
def main(invoice_id, copies, rate, fail, meta=None, tags=None):
    if fail:
        raise RuntimeError("printer on fire")
    return {"total": rate * copies, "invoice": invoice_id, "meta": meta, "tags": tags}
"""
GATE_CODE = """
import time
from pathlib import Path

def main(gate):
    while not Path(gate).exists():
        time.sleep(0.05)
    return {"opened": True}
"""


def basic(secret: str, user: str = "BOOMI_TOKEN.someone@example.com") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    root = tmp_path_factory.mktemp("p")
    with srv.client() as admin:
        deploy(admin, make_process(root, "invoice-bot", manifest=INVOICE, code=INVOICE_CODE))
        gate = make_process(
            root,
            "gate",
            manifest='entrypoint = "main:main"\n[parameters.gate]\ntype = "string"',
            code=GATE_CODE,
        )
        deploy(admin, gate, concurrencyLimit=1)
        idle = 'entrypoint = "main:main"'
        deploy(
            admin,
            make_process(root, "shelved", manifest=idle, code="def main(): pass\n"),
            invokable=False,
        )
        twice = make_process(root, "twice", manifest=idle, code="def main(): pass\n")
        deploy(admin, twice)
        deploy(admin, twice, environment="sandbox")
        sandboxed = make_process(root, "sandboxed", manifest=idle, code="def main(): pass\n")
        deploy(admin, sandboxed, environment="sandbox")
        token = admin.post(
            "/api/v1/tokens",
            json={"name": "boomi", "scopes": ["executions:start", "executions:read"]},
        ).json()["token"]
        reader = admin.post(
            "/api/v1/tokens", json={"name": "boomi-reader", "scopes": ["executions:read"]}
        ).json()["token"]
        workspace = next(
            w for w in admin.get("/api/v1/workspaces").json()["items"] if w["name"] == "default"
        )
        envs = {e["name"]: e["id"] for e in admin.get("/api/v1/environments").json()["items"]}
        runtime = admin.get("/api/v1/runtimes").json()["items"][0]["name"]
        acme = admin.post("/api/v1/workspaces", json={"name": "acme"})
        assert acme.status_code == 201, acme.text
    try:
        yield {
            "server": srv,
            "token": token,
            "reader": reader,
            "workspace_id": workspace["id"],
            "envs": envs,
            "runtime": runtime,
            "root": root,
        }
    finally:
        factory.stop_all()


@pytest.fixture
def boomi(world: dict[str, Any]) -> Iterator[httpx.Client]:
    server: Server = world["server"]
    with server.client(
        token=None, headers={**basic(world["token"]), "Accept": "application/json"}
    ) as c:
        yield c


@pytest.fixture
def admin(world: dict[str, Any]) -> Iterator[httpx.Client]:
    with world["server"].client() as c:
        yield c


def request(process: str, atom: str = "production", **properties: str) -> dict[str, Any]:
    return {
        "@type": "ExecutionRequest",
        "atomId": atom,
        "processId": process,
        "DynamicProcessProperties": {
            "@type": "ExecutionRequestDynamicProcessProperties",
            "DynamicProcessProperty": [
                {"@type": "", "name": k, "value": v} for k, v in properties.items()
            ],
        },
    }


def start(c: httpx.Client, body: dict[str, Any], account: str = "default") -> dict[str, Any]:
    r = c.post(f"{API}/{account}/ExecutionRequest", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return dict(r.json())


def poll(c: httpx.Client, record_url: str, *finals: str) -> dict[str, Any]:
    """The record once its status is one of `finals` (a final status by default)."""
    wanted = finals or ("COMPLETE", "ERROR", "ABORTED")

    def done() -> dict[str, Any] | None:
        r = c.get(record_url)
        if r.status_code == 202:
            return None
        assert r.status_code == 200, r.text
        record: dict[str, Any] = r.json()["result"][0]
        return record if record["status"] in wanted else None

    return dict(wait_until(done, timeout=30))


def boomi_error(r: httpx.Response, status: int, *fragments: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["@type"] == "Error" and set(body) == {"@type", "message"}
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    assert "Traceback" not in r.text
    return str(body["message"])


def executions_count(admin: httpx.Client) -> int:
    return len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])


def check_dates(record: dict[str, Any]) -> None:
    for member in ("executionTime", "recordedDate"):
        parsed = datetime.strptime(record[member], DATE)
        assert abs(parsed.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=5)


def test_request_polls_202_until_started_then_200_complete_with_the_record(
    boomi: httpx.Client, world: dict[str, Any], admin: httpx.Client
) -> None:
    gate = world["root"] / "gate-open"
    holder = start(boomi, request("gate", gate=str(gate)))
    poll(boomi, holder["recordUrl"], "INPROCESS")
    waiting = start(boomi, request("gate", gate=str(gate)))
    assert waiting["requestId"].startswith("executionrecord-")
    assert waiting["recordUrl"] == (
        f"{world['server'].base}{API}/default/ExecutionRecord/async/{waiting['requestId']}"
    )
    assert (waiting["atomId"], waiting["processId"], waiting["processName"]) == (
        "production",
        "gate",
        "gate",
    )
    r = boomi.get(waiting["recordUrl"])  # the deployment runs one at a time
    assert r.status_code == 202
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"@type": "AsyncOperationResult", "responseStatusCode": 202}
    Path(gate).touch()
    record = poll(boomi, waiting["recordUrl"])
    r = boomi.get(waiting["recordUrl"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert (doc["@type"], doc["responseStatusCode"], doc["numberOfResults"]) == (
        "AsyncOperationResult",
        200,
        1,
    )
    assert set(record) >= RECORD_MEMBERS
    assert record["@type"] == "ExecutionRecord"
    assert record["status"] == "COMPLETE" and "message" not in record
    assert record["executionType"] == "exec_manual"
    assert record["account"] == "default"
    runplane_id = waiting["requestId"].removeprefix("executionrecord-")
    assert record["executionId"] == f"execution-{runplane_id}"
    assert (record["atomName"], record["atomId"]) == ("production", world["envs"]["production"])
    assert record["processName"] == "gate"
    kind, duration = record["executionDuration"]
    assert kind == "Long" and isinstance(duration, int) and duration >= 0
    check_dates(record)
    native = admin.get(f"/api/v1/executions/{runplane_id}").json()
    assert native["status"] == "succeeded" and native["result"] == {"opened": True}
    assert record["processId"] == admin.get("/api/v1/processes/gate").json()["id"]


def test_xml_request_and_record_with_ids_as_attributes(
    boomi: httpx.Client, admin: httpx.Client
) -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
    <ExecutionRequest processId="invoice-bot" atomId="production" xmlns="http://api.platform.boomi.com/">
      <DynamicProcessProperties>
        <DynamicProcessProperty name="invoice_id" value="INV-X"/>
        <DynamicProcessProperty><name>copies</name><value>3</value></DynamicProcessProperty>
      </DynamicProcessProperties>
      <ProcessProperties>
        <ProcessProperty componentId="c-1">
          <ProcessPropertyValue key="rate" value="0.5"/>
        </ProcessProperty>
      </ProcessProperties>
    </ExecutionRequest>"""
    xml = {"Content-Type": "application/xml", "Accept": "application/xml"}
    r = boomi.post(f"{API}/default/ExecutionRequest", content=body, headers=xml)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(r.content)
    assert root.tag == f"{NS}ExecutionRequest"
    request_id, record_url = root.get("requestId"), root.get("recordUrl")
    assert request_id and request_id.startswith("executionrecord-")
    assert record_url and record_url.endswith(f"/ExecutionRecord/async/{request_id}")

    def complete() -> dict[str, str] | None:
        got = boomi.get(record_url, headers={"Accept": "application/xml"})
        if got.status_code == 202:
            assert ElementTree.fromstring(got.content).get("responseStatusCode") == "202"
            return None
        assert got.headers["content-type"] == "application/xml"
        result = ElementTree.fromstring(got.content).find(f"{NS}result")
        if result is None or result.get("status") != "COMPLETE":
            return None
        assert result.get(f"{XSI}type") == "bns:ExecutionRecord"
        return dict(result.attrib)

    record = wait_until(complete, timeout=30)
    assert set(record) >= RECORD_MEMBERS
    datetime.strptime(record["recordedDate"], DATE)
    assert int(record["executionDuration"]) >= 0
    native = admin.get(f"/api/v1/executions/{request_id.removeprefix('executionrecord-')}").json()
    assert native["inputArguments"]["copies"] == 3 and native["result"]["total"] == 1.5
    # No namespace, JSON answer by default
    plain = (
        '<ExecutionRequest atomId="production" processName="invoice-bot">'
        '<DynamicProcessProperties><DynamicProcessProperty name="invoice_id" value="I"/>'
        "</DynamicProcessProperties></ExecutionRequest>"
    )
    r = boomi.post(
        f"{API}/default/ExecutionRequest",
        content=plain,
        headers={"Content-Type": "text/xml", "Accept": "*/*"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert poll(boomi, r.json()["recordUrl"])["status"] == "COMPLETE"


def test_property_values_are_converted_to_the_declared_types(
    boomi: httpx.Client, admin: httpx.Client
) -> None:
    body = request("invoice-bot", invoice_id="42", copies="2", meta='{"a": [1]}', tags='["x"]')
    body["ProcessProperties"] = {
        "@type": "ExecutionRequestProcessProperties",
        "ProcessProperty": [
            {
                "@type": "ProcessProperty",
                "componentId": "9b1c",
                "ProcessPropertyValue": [
                    {"@type": "", "key": "rate", "value": "2.5"},
                    {"key": "copies", "value": "4"},  # process properties win
                    {"key": "fail", "value": "ignored", "useDefault": True},
                    {"key": "outputTotal", "value": "dropped"},
                ],
            }
        ],
    }
    started = start(boomi, body)
    assert poll(boomi, started["recordUrl"])["status"] == "COMPLETE"
    runplane_id = started["requestId"].removeprefix("executionrecord-")
    native = admin.get(f"/api/v1/executions/{runplane_id}").json()
    assert native["inputArguments"] == {
        "invoice_id": "42",
        "copies": 4,
        "rate": 2.5,
        "fail": False,
        "meta": {"a": [1]},
        "tags": ["x"],
    }
    assert native["result"]["total"] == 10.0
    logs = admin.get(f"/api/v1/executions/{runplane_id}/logs").text
    assert "ignored input arguments that name no parameter: outputTotal" in logs


def test_values_that_do_not_convert_are_refused_naming_each_and_nothing_is_stored(
    boomi: httpx.Client, admin: httpx.Client
) -> None:
    before = executions_count(admin)
    r = boomi.post(
        f"{API}/default/ExecutionRequest",
        json=request("invoice-bot", invoice_id="1", copies="three", fail="maybe", tags="{}"),
    )
    boomi_error(r, 400, "copies: Expected integer, got 'three'", "fail:", "tags:")
    r = boomi.post(f"{API}/default/ExecutionRequest", json=request("invoice-bot"))
    boomi_error(r, 400, "invoice_id")  # required, not given
    assert executions_count(admin) == before


def test_a_failing_process_reads_error_with_its_message(boomi: httpx.Client) -> None:
    started = start(boomi, request("invoice-bot", invoice_id="Z", fail="true"))
    record = poll(boomi, started["recordUrl"])
    assert record["status"] == "ERROR"
    assert "printer on fire" in record["message"]
    check_dates(record)


def test_a_cancelled_execution_reads_aborted(
    boomi: httpx.Client, admin: httpx.Client, world: dict[str, Any]
) -> None:
    started = start(boomi, request("gate", gate=str(world["root"] / "never")))
    poll(boomi, started["recordUrl"], "INPROCESS")
    runplane_id = started["requestId"].removeprefix("executionrecord-")
    assert admin.post(f"/api/v1/executions/{runplane_id}/cancel").status_code in (200, 202)
    record = poll(boomi, started["recordUrl"])
    assert record["status"] == "ABORTED" and record["message"]


def test_atom_is_an_environment_by_name_or_id_or_a_runtime_by_name(
    boomi: httpx.Client, world: dict[str, Any], admin: httpx.Client
) -> None:
    for atom in ("production", world["envs"]["production"], world["runtime"]):
        started = start(boomi, request("invoice-bot", atom=atom, invoice_id="A"))
        assert started["atomId"] == atom
        record = poll(boomi, started["recordUrl"])
        assert record["atomName"] == "production" and record["status"] == "COMPLETE"
    before = executions_count(admin)
    url = f"{API}/default/ExecutionRequest"
    boomi_error(boomi.post(url, json=request("invoice-bot", atom="nowhere")), 404, "nowhere")
    boomi_error(boomi.post(url, json=request("sandboxed")), 400, "not deployed", "production")
    boomi_error(boomi.post(url, json=request("shelved")), 400, "not invokable")
    boomi_error(
        boomi.post(url, json=request("twice", atom=world["runtime"])),
        400,
        "production, sandbox",
        "atomId",
    )
    boomi_error(boomi.post(url, json=request("no-such-process")), 404, "no-such-process")
    assert executions_count(admin) == before
    sandbox = start(boomi, request("twice", atom=world["envs"]["sandbox"]))
    assert poll(boomi, sandbox["recordUrl"])["atomName"] == "sandbox"


def test_process_by_id_and_account_by_workspace_name_or_id(
    boomi: httpx.Client, world: dict[str, Any], admin: httpx.Client
) -> None:
    process_id = admin.get("/api/v1/processes/invoice-bot").json()["id"]
    started = start(boomi, request(process_id, invoice_id="by-id"), account=world["workspace_id"])
    assert (started["processId"], started["processName"]) == (process_id, "invoice-bot")
    assert f"/{world['workspace_id']}/ExecutionRecord/async/" in started["recordUrl"]
    record = poll(boomi, started["recordUrl"])
    assert record["account"] == world["workspace_id"]
    by_name = request("x", invoice_id="by-name")
    del by_name["processId"]
    by_name["processName"] = "invoice-bot"
    assert start(boomi, by_name)["processId"] == process_id


def test_another_workspaces_account_is_not_found(boomi: httpx.Client, admin: httpx.Client) -> None:
    before = executions_count(admin)
    started = start(boomi, request("invoice-bot", invoice_id="mine"))
    request_id = started["requestId"]
    for path in (
        "ExecutionRequest",
        f"ExecutionRecord/async/{request_id}",
        "ExecutionRecord/query",
    ):
        method = "GET" if "async" in path else "POST"
        r = boomi.request(method, f"{API}/acme/{path}", json=request("invoice-bot", invoice_id="x"))
        boomi_error(r, 404, "acme")
    assert executions_count(admin) == before + 1


def test_authentication_failures_answer_in_boomis_shape(world: dict[str, Any]) -> None:
    server: Server = world["server"]
    url = f"{API}/default/ExecutionRecord/query"
    with server.client(token=None) as anonymous:
        boomi_error(anonymous.post(url, json={}), 401, "credential")
        boomi_error(anonymous.post(url, json={}, headers=basic("rpt_" + "x" * 43)), 401)
        boomi_error(anonymous.post(url, json={}, headers={"Authorization": "Bearer nope"}), 401)
        xml = anonymous.post(url, json={}, headers={"Accept": "application/xml"})
        assert xml.status_code == 401 and xml.headers["content-type"] == "application/xml"
        assert ElementTree.fromstring(xml.content).tag == f"{NS}Error"
        assert anonymous.post(url, json={}, headers=basic(world["token"])).status_code == 200
        bearer = {"Authorization": f"Bearer {world['token']}"}
        assert anonymous.post(url, json={}, headers=bearer).status_code == 200
        plain_user = basic(world["token"], user="someone@example.com")
        assert anonymous.post(url, json={}, headers=plain_user).status_code == 200
        reader = basic(world["reader"])
        r = anonymous.post(
            f"{API}/default/ExecutionRequest",
            json=request("invoice-bot", invoice_id="r"),
            headers=reader,
        )
        boomi_error(r, 403, "executions:start")
        assert anonymous.post(url, json={}, headers=reader).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b'{"atomId": "production",', "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "ExecutionRequest object"),
        (b'{"processId": "invoice-bot"}', "application/json", "atomId"),
        (b'{"atomId": "production"}', "application/json", "processId"),
        (b'{"atomId": 7, "processId": "invoice-bot"}', "application/json", "atomId"),
        (
            b'{"atomId": "production", "processId": "invoice-bot", '
            b'"DynamicProcessProperties": {"DynamicProcessProperty": ["x"]}}',
            "application/json",
            "DynamicProcessProperty[0]",
        ),
        (
            b'{"atomId": "production", "processId": "invoice-bot", '
            b'"DynamicProcessProperties": {"DynamicProcessProperty": [{"value": "1"}]}}',
            "application/json",
            "name",
        ),
        (b"<ExecutionRequest atomId='production'", "application/xml", "not valid XML"),
        (b"<Other atomId='production' processId='invoice-bot'/>", "application/xml", "root"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<ExecutionRequest atomId="&b;" processId="invoice-bot"/>',
            "application/xml",
            "not valid XML",
        ),
    ],
)
def test_bad_bodies_are_400_and_store_nothing(
    boomi: httpx.Client, admin: httpx.Client, content: bytes, content_type: str, fragment: str
) -> None:
    before = executions_count(admin)
    r = boomi.post(
        f"{API}/default/ExecutionRequest", content=content, headers={"Content-Type": content_type}
    )
    boomi_error(r, 400, fragment)
    assert executions_count(admin) == before


def test_request_ids_that_name_no_execution_are_404(boomi: httpx.Client) -> None:
    for request_id in (
        "executionrecord-01a20992-42af-7076-92b9-b6edad73e7c5",
        "executionrecord-nope",
        "execution-01a20992-42af-7076-92b9-b6edad73e7c5",
    ):
        boomi_error(boomi.get(f"{API}/default/ExecutionRecord/async/{request_id}"), 404)


def query(c: httpx.Client, body: Any, account: str = "default") -> dict[str, Any]:
    r = c.post(f"{API}/{account}/ExecutionRecord/query", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    assert doc["@type"] == "QueryResult" and doc["numberOfResults"] == len(doc["result"])
    return doc


def expression(prop: str, operator: str, *arguments: str) -> dict[str, Any]:
    return {
        "QueryFilter": {
            "expression": {"argument": list(arguments), "operator": operator, "property": prop}
        }
    }


def test_query_filters_by_execution_status_process_and_time(
    boomi: httpx.Client, admin: httpx.Client
) -> None:
    ok = start(boomi, request("invoice-bot", invoice_id="q-ok"))
    bad = start(boomi, request("invoice-bot", invoice_id="q-bad", fail="true"))
    ok_record = poll(boomi, ok["recordUrl"])
    bad_record = poll(boomi, bad["recordUrl"])
    ok_id, bad_id = ok_record["executionId"], bad_record["executionId"]

    found = query(boomi, expression("executionId", "EQUALS", ok_id))
    assert [r["executionId"] for r in found["result"]] == [ok_id]
    assert "queryToken" not in found
    assert set(found["result"][0]) >= RECORD_MEMBERS

    errors = query(boomi, expression("status", "EQUALS", "ERROR"))["result"]
    assert bad_id in {r["executionId"] for r in errors}
    assert {r["status"] for r in errors} == {"ERROR"}

    process_id = admin.get("/api/v1/processes/invoice-bot").json()["id"]
    for ref in (process_id, "invoice-bot"):
        mine = query(boomi, expression("processId", "EQUALS", ref))["result"]
        assert {ok_id, bad_id} <= {r["executionId"] for r in mine}
        assert {r["processName"] for r in mine} == {"invoice-bot"}

    times = sorted([ok_record["executionTime"], bad_record["executionTime"]])
    window = query(boomi, expression("executionTime", "BETWEEN", *times))["result"]
    assert {ok_id, bad_id} <= {r["executionId"] for r in window}
    for record in window:
        assert times[0] <= record["executionTime"] <= times[1]
    after = (datetime.strptime(times[1], DATE) + timedelta(seconds=1)).strftime(DATE)
    later = query(boomi, expression("executionTime", "GREATER_THAN_OR_EQUAL", after))["result"]
    assert not {ok_id, bad_id} & {r["executionId"] for r in later}

    both = {
        "QueryFilter": {
            "expression": {
                "operator": "and",
                "nestedExpression": [
                    {"argument": ["ERROR"], "operator": "EQUALS", "property": "status"},
                    {"argument": times, "operator": "BETWEEN", "property": "executionTime"},
                    {"argument": ["invoice-bot"], "operator": "EQUALS", "property": "processName"},
                ],
            }
        },
        "QuerySort": {"sortField": [{"fieldName": "executionTime", "sortOrder": "ASC"}]},
    }
    assert bad_id in {r["executionId"] for r in query(boomi, both)["result"]}
    assert ok_id not in {r["executionId"] for r in query(boomi, both)["result"]}
    either = {
        "QueryFilter": {
            "expression": {
                "operator": "or",
                "nestedExpression": [
                    {"argument": [ok_id], "operator": "EQUALS", "property": "executionId"},
                    {"argument": [bad_id], "operator": "EQUALS", "property": "executionId"},
                ],
            }
        }
    }
    assert {r["executionId"] for r in query(boomi, either)["result"]} == {ok_id, bad_id}
    everything = query(boomi, {})["result"]
    assert {ok_id, bad_id} <= {r["executionId"] for r in everything}
    newest_first = [r["executionId"] for r in everything]
    assert newest_first.index(bad_id) < newest_first.index(ok_id)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            expression("processName", "LIKE", "invoice%"),
            "'LIKE' is not supported on property 'processName'",
        ),
        (expression("nodeId", "EQUALS", "n"), "Property 'nodeId' is not supported"),
        (expression("status", "EQUALS", "FINISHED"), "'FINISHED' is not an ExecutionRecord status"),
        (expression("executionTime", "BETWEEN", "yesterday", "today"), "not a date"),
        (expression("executionTime", "BETWEEN", "2025-01-01T00:00:00Z"), "takes 2 argument"),
        ({"QueryFilter": "all"}, "QueryFilter"),
        (
            {"QuerySort": {"sortField": [{"fieldName": "status", "sortOrder": "ASC"}]}},
            "executionTime",
        ),
    ],
)
def test_unsupported_queries_are_400_naming_what(
    boomi: httpx.Client, body: Any, fragment: str
) -> None:
    boomi_error(boomi.post(f"{API}/default/ExecutionRecord/query", json=body), 400, fragment)


def test_bad_query_tokens_and_xml_queries_are_refused(boomi: httpx.Client) -> None:
    more = f"{API}/default/ExecutionRecord/queryMore"
    for token in ("", "not-a-token", base64.urlsafe_b64encode(b'{"query": {}}').decode()):
        r = boomi.post(more, content=token, headers={"Content-Type": "text/plain"})
        boomi_error(r, 400, "queryToken")
    r = boomi.post(
        f"{API}/default/ExecutionRecord/query",
        content=b"<QueryConfig/>",
        headers={"Content-Type": "application/xml"},
    )
    boomi_error(r, 415, "JSON")


def test_query_pages_by_100_with_query_more(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On an API-only server executions stay queued: cheap to make, and 202 for good."""
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "0")
    try:
        with srv.client() as admin:
            folder = make_process(
                tmp_path_factory.mktemp("p"),
                "cheap",
                manifest='entrypoint = "main:main"',
                code="def main(): pass\n",
            )
            deploy(admin, folder)
            token = admin.post(
                "/api/v1/tokens",
                json={"name": "b", "scopes": ["executions:start", "executions:read"]},
            ).json()["token"]
        with srv.client(token=None, headers=basic(token)) as c:
            made = [start(c, request("cheap"))["requestId"] for _ in range(105)]
            r = c.get(f"{API}/default/ExecutionRecord/async/{made[0]}")
            assert r.status_code == 202 and r.json()["responseStatusCode"] == 202
            first = query(c, expression("processName", "EQUALS", "cheap"))
            assert first["numberOfResults"] == 100 and first["queryToken"]
            assert {r["status"] for r in first["result"]} == {"INPROCESS"}
            assert all("executionDuration" not in r for r in first["result"])
            r = c.post(
                f"{API}/default/ExecutionRecord/queryMore",
                content=first["queryToken"],
                headers={"Content-Type": "text/plain"},
            )
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            second = r.json()
            assert second["@type"] == "QueryResult" and second["numberOfResults"] == 5
            assert "queryToken" not in second
            ids = [r["executionId"] for r in first["result"] + second["result"]]
            expected = [f"execution-{m.removeprefix('executionrecord-')}" for m in reversed(made)]
            assert ids == expected
            oldest = query(
                c,
                {
                    **expression("processId", "EQUALS", "cheap"),
                    "QuerySort": {"sortField": {"fieldName": "executionTime", "sortOrder": "ASC"}},
                },
            )
            assert [r["executionId"] for r in oldest["result"]] == expected[::-1][:100]
    finally:
        factory.stop_all()
