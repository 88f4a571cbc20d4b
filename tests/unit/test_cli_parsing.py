"""The CLI and SDK without a server: input coercion, problem mapping, output shapes.

The SDK's transport is its one seam: these tests swap in `httpx.MockTransport`
so every command runs for real, down to the HTTP request it would send.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import runplane
from runplane.cli import session
from runplane.cli.inputs import coerce, declared_types, input_arguments
from runplane.cli.main import app
from runplane.client import (
    Client,
    ClientError,
    ServerUnreachable,
    UnexpectedResponse,
    error_from_problem,
)
from runplane.domain import errors
from runplane.settings import Settings

Handler = Callable[[httpx.Request], httpx.Response]
PROBLEM_JSON = {"Content-Type": "application/problem+json"}


def record(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    """An execution record as the server renders it."""
    doc: dict[str, Any] = {
        "id": "ex-1",
        "executionId": "ex-1",
        "process": "hello",
        "version": 1,
        "environment": "production",
        "status": status,
        "inputArguments": {"name": "Ada"},
        "result": {"greeting": "Hello, Ada!"} if status == "succeeded" else None,
        "error": None,
        "attempt": 1,
        "runtime": "embedded",
        "cancelRequested": False,
        "createdAt": "2025-01-02T10:11:12.345Z",
        "startedAt": None,
        "finishedAt": None,
        "durationMs": None,
        "links": {},
    }
    doc.update(fields)
    return doc


PROCESS_DETAIL = {
    "name": "hello",
    "createdAt": "2025-01-02T10:00:00Z",
    "versions": [
        {"version": 1, "parameters": [{"name": "name", "type": "integer", "required": False}]},
        {
            "version": 2,
            "parameters": [
                {"name": "name", "type": "string", "required": False, "default": "world"},
                {"name": "count", "type": "integer", "required": False},
            ],
        },
    ],
    "deployments": [
        {"environment": "sandbox", "version": 1},
        {"environment": "production", "version": 2},
    ],
}


# -- key=value coercion by declared type ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("string", "42", "42"),
        ("secret", " s3cret ", " s3cret "),
        ("string", "a=b", "a=b"),
        ("integer", "42", 42),
        ("integer", "-7", -7),
        ("number", "3", 3),
        ("number", "2.5", 2.5),
        ("number", "1e3", 1000.0),
        ("boolean", "true", True),
        ("boolean", "Yes", True),
        ("boolean", "1", True),
        ("boolean", "FALSE", False),
        ("boolean", "no", False),
        ("boolean", "0", False),
        ("object", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("array", '[1, "x", null]', [1, "x", None]),
    ],
)
def test_values_are_coerced_by_declared_type(kind: str, raw: str, value: Any) -> None:
    result = coerce(kind, raw)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("integer", "4.5"),
        ("integer", "four"),
        ("number", "nan"),
        ("number", "inf"),
        ("number", "x"),
        ("boolean", "maybe"),
        ("object", "[1]"),
        ("object", "{not json}"),
        ("array", '{"a": 1}'),
    ],
)
def test_a_value_that_is_not_its_declared_type_is_refused(kind: str, raw: str) -> None:
    with pytest.raises(ValueError, match=repr(raw).replace("[", r"\[").replace("{", r"\{")):
        coerce(kind, raw)


def test_a_key_naming_no_parameter_is_sent_as_a_string() -> None:
    assert input_arguments(["count=3", "other=3"], {"count": "integer"}) == {
        "count": 3,
        "other": "3",
    }


def test_every_bad_input_is_reported_at_once() -> None:
    with pytest.raises(errors.InvalidInputArguments) as caught:
        input_arguments(
            ["count=x", "flag=maybe", "count=2", "ok=1"],
            {"count": "integer", "flag": "boolean"},
        )
    assert [(p["name"], p["code"]) for p in caught.value.problems] == [
        ("count", "wrong_type"),
        ("flag", "wrong_type"),
        ("count", "duplicate"),
    ]


def test_declared_types_follow_the_version_deployed_to_the_environment() -> None:
    detail: Any = PROCESS_DETAIL
    assert declared_types(detail, "sandbox") == {"name": "integer"}
    assert declared_types(detail, "production") == {"name": "string", "count": "integer"}
    # Deployed to several environments and none named: the newest version.
    assert declared_types(detail, None) == {"name": "string", "count": "integer"}
    assert declared_types({"name": "x", "versions": [], "deployments": []}, None) == {}  # type: ignore[typeddict-item]


# -- problem details → domain errors -------------------------------------------


def test_a_problem_maps_to_the_domain_error_with_its_code() -> None:
    exc = error_from_problem(
        {
            "type": "about:blank",
            "title": "The input arguments do not match the process parameters.",
            "status": 422,
            "detail": "1 problem(s) with the input arguments: nme.",
            "code": "invalid_input_arguments",
            "errors": [{"name": "nme", "code": "unknown_parameter", "detail": "No such."}],
            "instance": "/api/v1/processes/hello/executions",
        },
        422,
    )
    assert type(exc) is errors.InvalidInputArguments
    assert exc.detail == "1 problem(s) with the input arguments: nme."
    assert exc.problems == [{"name": "nme", "code": "unknown_parameter", "detail": "No such."}]
    assert exc.extra == {"instance": "/api/v1/processes/hello/executions"}


def test_an_unknown_code_falls_back_to_the_class_of_its_status_keeping_the_code() -> None:
    exc = error_from_problem({"code": "runtime_not_found", "detail": "gone"}, 404)
    assert type(exc) is errors.NotFound
    assert (exc.code, exc.status, exc.detail) == ("runtime_not_found", 404, "gone")


def test_a_status_outside_the_tree_keeps_its_status() -> None:
    exc = error_from_problem({"title": "I'm a teapot", "code": "teapot"}, 418)
    assert type(exc) is errors.RunplaneError
    assert (exc.status, exc.code, exc.detail) == (418, "teapot", "I'm a teapot")


def test_every_error_class_round_trips_through_its_code() -> None:
    def tree(cls: type[errors.RunplaneError]) -> Iterator[type[errors.RunplaneError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from tree(sub)

    for cls in tree(errors.RunplaneError):
        assert type(error_from_problem({"code": cls.code}, cls.status)) is cls


# -- the SDK over a mock transport ---------------------------------------------


def mock_client(handler: Handler, **kwargs: Any) -> Client:
    return Client("http://runplane.test", transport=httpx.MockTransport(handler), **kwargs)


def test_error_responses_raise_domain_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        problem = {"status": 404, "code": "process_not_found", "detail": "No process 'x'."}
        return httpx.Response(404, json=problem, headers=PROBLEM_JSON)

    with mock_client(handler) as client, pytest.raises(errors.ProcessNotFound, match="No process"):
        client.get_process("x")


def test_a_repeated_put_answers_the_existing_record() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode()))
        if request.method == "PUT":
            assert json.loads(request.content) == {
                "inputArguments": {"n": 1},
                "executionId": "order/7",
            }
            return httpx.Response(204)
        return httpx.Response(200, json=record(executionId="order/7"))

    with mock_client(handler) as client:
        execution, created = client.start_execution("hello", {"n": 1}, execution_id="order/7")
    assert not created
    assert execution["executionId"] == "order/7"
    assert seen == [
        ("PUT", "/api/v1/processes/hello/executions"),
        ("GET", "/api/v1/processes/hello/executions/order%2F7"),
    ]


def test_a_token_is_sent_as_a_bearer_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0k"
        return httpx.Response(200, json={"status": "ok", "version": "1"})

    with mock_client(handler, token="t0k") as client:
        assert client.health()["status"] == "ok"


def test_a_refused_connection_is_server_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with mock_client(handler) as client, pytest.raises(ServerUnreachable, match="cannot reach"):
        client.health()


def test_a_non_json_answer_is_an_unexpected_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hi</html>", headers={"Content-Type": "text/html"})

    with mock_client(handler) as client, pytest.raises(UnexpectedResponse, match="not JSON"):
        client.health()


def test_a_server_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ClientError, match="not a server URL"):
        Client("localhost:8000")


# -- commands, over a mock transport -------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run a command with the SDK talking to `handler` (None: nothing may be sent)."""
    monkeypatch.delenv("RUNPLANE_SERVER", raising=False)
    monkeypatch.delenv("RUNPLANE_TOKEN", raising=False)

    def invoke(args: list[str], handler: Handler | None = None) -> Any:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise AssertionError(f"unexpected request {request.method} {request.url}")

        transport = httpx.MockTransport(handler or refuse)

        def client(server: str, *, token: str | None = None) -> Client:
            return Client(server, token=token, transport=transport)

        monkeypatch.setattr(session, "Client", client)
        return CliRunner().invoke(app, args)

    return invoke


def test_run_wait_json_prints_exactly_the_final_record(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/processes/hello":
            return httpx.Response(200, json=PROCESS_DETAIL)
        if request.method == "POST":
            body = json.loads(request.content)
            assert body == {"inputArguments": {"name": "Ada", "count": 3}}
            return httpx.Response(201, json=record("queued"))
        assert request.url.params["wait"] == "25"
        return httpx.Response(200, json=record("succeeded"))

    result = cli(["run", "hello", "-i", "name=Ada", "-i", "count=3", "--wait", "--json"], handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == record("succeeded")
    assert result.stderr == ""


def test_run_wait_of_a_failed_execution_exits_1(cli: Callable[..., Any]) -> None:
    failed = record("failed", error={"code": "PROCESS_ERROR", "message": "boom"})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if request.method == "POST" else 200, json=failed)

    result = cli(["run", "hello", "--wait", "--json"], handler)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "PROCESS_ERROR"

    result = cli(["run", "hello", "--wait"], handler)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "PROCESS_ERROR: boom" in result.stderr


def test_a_problem_prints_every_listed_error_and_exits_1(cli: Callable[..., Any]) -> None:
    problem = {
        "status": 422,
        "code": "invalid_input_arguments",
        "detail": "2 problem(s) with the input arguments: a, b.",
        "errors": [
            {"name": "a", "code": "unknown_parameter", "detail": "No parameter 'a'."},
            {"name": "b", "code": "missing_required", "detail": "Parameter 'b' is required."},
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=problem, headers=PROBLEM_JSON)

    result = cli(["run", "hello"], handler)
    assert result.exit_code == 1
    assert "2 problem(s)" in result.stderr
    assert "No parameter 'a'." in result.stderr
    assert "Parameter 'b' is required." in result.stderr

    result = cli(["run", "hello", "--json"], handler)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(result.stderr)["errors"] == problem["errors"]


def test_an_unreachable_server_is_one_clear_line_and_exit_1(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = cli(["executions", "list", "--server", "http://127.0.0.1:9"], handler)
    assert result.exit_code == 1
    assert "cannot reach the server at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.output


def test_executions_list_json_is_the_page(cli: Callable[..., Any]) -> None:
    page = {"items": [record()], "nextCursor": "c2"}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get_list("status") == ["failed", "timed_out"]
        assert request.url.params["process"] == "hello"
        return httpx.Response(200, json=page)

    args = ["executions", "list", "-p", "hello", "-s", "failed", "-s", "timed_out", "--json"]
    result = cli(args, handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == page


def test_logs_json_is_id_and_log(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="line 1\nline 2\n")

    result = cli(["executions", "logs", "ex-1", "--json"], handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"id": "ex-1", "log": "line 1\nline 2\n"}


def test_processes_list_json_is_the_items(cli: Callable[..., Any]) -> None:
    items = [{"name": "hello", "latestVersion": 2, "createdAt": "2025-01-02T10:00:00Z"}]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": items})

    result = cli(["processes", "list", "--json"], handler)
    assert json.loads(result.stdout) == {"items": items}


def test_deploy_of_a_bad_manifest_names_every_key_and_sends_nothing(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "runplane.toml").write_text(
        '[process]\nname = "bad"\nentrypoint = "not valid"\ncolour = "red"\n'
    )
    result = cli(["deploy", str(tmp_path)])  # no handler: any request fails the test
    assert result.exit_code == 1
    assert "process.entrypoint" in result.stderr
    assert "process.colour" in result.stderr


def test_deploy_uploads_then_deploys_with_coerced_inputs(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "runplane.toml").write_text(
        '[process]\nname = "counter"\nentrypoint = "main:main"\n'
        '[parameters.count]\ntype = "integer"\ndefault = 1\n'
    )
    (tmp_path / "main.py").write_text("def main(count):\n    return {'count': count}\n")
    version = {"process": "counter", "version": 4}
    deployment = {"process": "counter", "environment": "sandbox", "version": 4}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert request.url.path == "/api/v1/processes/counter/versions"
            assert request.headers["Content-Type"] == "application/zip"
            return httpx.Response(201, json=version)
        assert request.url.path == "/api/v1/processes/counter/deployments/sandbox"
        assert json.loads(request.content) == {
            "version": 4,
            "inputArguments": {"count": 5},
            "invokable": False,
            "concurrencyLimit": 2,
        }
        return httpx.Response(201, json=deployment)

    args = ["deploy", str(tmp_path), "-e", "sandbox", "--input", "count=5"]
    result = cli([*args, "--not-invokable", "--concurrency-limit", "2", "--json"], handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"version": version, "deployment": deployment}


def test_a_malformed_input_pair_is_a_usage_error(cli: Callable[..., Any]) -> None:
    result = cli(["run", "hello", "-i", "name"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


# -- serve ---------------------------------------------------------------------


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replace `runplane.server` so `serve` records its settings instead of serving."""
    started: list[Settings] = []
    module = types.ModuleType("runplane.server")
    module.run = started.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "runplane.server", module)
    monkeypatch.setattr(runplane, "server", module, raising=False)
    for name in ("HOST", "PORT", "SLOTS", "DEMO", "DATA_DIR", "DATABASE_URL", "LOG_LEVEL"):
        monkeypatch.delenv(f"RUNPLANE_{name}", raising=False)
    return started


def test_serve_passes_only_the_options_given(
    fake_server: list[Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNPLANE_PORT", "9100")
    monkeypatch.setenv("RUNPLANE_SLOTS", "3")
    args = ["serve", "--slots", "0", "--no-demo", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--log-level", "DEBUG"])
    assert result.exit_code == 0, result.output
    [settings] = fake_server
    assert settings.port == 9100  # from the environment: --port was not given
    assert (settings.slots, settings.demo, settings.log_level) == (0, False, "debug")
    assert settings.data_dir == tmp_path
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_serve_refuses_a_non_loopback_host(fake_server: list[Settings], host: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host])
    assert result.exit_code == 2
    assert f"refusing to listen on {host}" in result.stderr
    assert fake_server == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "::1"])
def test_serve_accepts_a_loopback_host(fake_server: list[Settings], host: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host])
    assert result.exit_code == 0, result.output
    assert fake_server[0].host == host
