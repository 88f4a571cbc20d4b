"""`runplane apps|secrets|workspaces|environments` without a server: requests and output shapes.

Like test_cli_parsing, the SDK talks to an `httpx.MockTransport`, so every command
runs for real down to the HTTP request it sends. A secret is printed only by the
command that creates or rotates it: alone on stdout (the note on stderr), or as
part of the one JSON object `--json` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from runplane.cli import session
from runplane.cli.main import app
from runplane.client import Client

Handler = Callable[[httpx.Request], httpx.Response]
PROBLEM_JSON = {"Content-Type": "application/problem+json"}

CLIENT_SECRET = "rpcs_client-secret-0123456789abcdefghijklmnopqrstuv"
PROCESS_SECRET = "rps_process-secret-0123456789abcdefghijklmnopqrstu"
ADMIN_TOKEN = "rpt_workspace-admin-0123456789abcdefghijklmnopqrs"

APP = {
    "name": "scheduler",
    "clientId": "rpc_0123456789abcdef",
    "clientSecret": CLIENT_SECRET,
    "scopes": ["executions:read", "executions:start"],
    "environments": ["production"],
    "createdAt": "2025-01-02T10:00:00.000Z",
}
SECRET = {"process": "hello", "secret": PROCESS_SECRET, "createdAt": "2025-01-02T10:00:00.000Z"}
WORKSPACE = {
    "name": "acme",
    "environments": ["sandbox", "production"],
    "createdAt": "2025-01-02T10:00:00.000Z",
    "adminToken": ADMIN_TOKEN,
}
ENVIRONMENT = {"name": "staging", "createdAt": "2025-01-02T10:00:00.000Z"}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """Run a command with the SDK talking to `handler` (None: nothing may be sent)."""
    monkeypatch.delenv("RUNPLANE_SERVER", raising=False)
    monkeypatch.setenv("RUNPLANE_TOKEN", "rpt_the-callers-token-0123456789")
    monkeypatch.setenv("RUNPLANE_CONFIG", str(tmp_path / "config" / "config.toml"))

    def invoke(args: list[str], handler: Handler | None = None) -> Any:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise AssertionError(f"unexpected request {request.method} {request.url}")

        transport = httpx.MockTransport(handler or refuse)

        def client(server: str, *, token: str | None = None) -> Client:
            return Client(server, token=token, transport=transport)

        monkeypatch.setattr(session, "Client", client)
        return CliRunner().invoke(app, args)

    return invoke


def answer(
    method: str, raw_path: bytes, status: int, doc: Any, body: Any = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that checks the one request it expects and answers `doc`."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.raw_path) == (method, raw_path)
        if body is not None:
            assert json.loads(request.content) == body
        if doc is None:
            return httpx.Response(status)
        return httpx.Response(status, json=doc)

    return handler


def one_json_object(result: Any) -> dict[str, Any]:
    """What --json must print: exit 0, one JSON object on stdout, nothing on stderr."""
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


# -- apps ------------------------------------------------------------------------------


def test_apps_create_sends_every_scope_and_environment(cli: Callable[..., Any]) -> None:
    handler = answer(
        "POST",
        b"/api/v1/apps",
        201,
        APP,
        {
            "name": "scheduler",
            "scopes": ["executions:start", "executions:read"],
            "environments": ["production", "sandbox"],
        },
    )
    args = ["apps", "create", "scheduler", "--scope", "executions:start"]
    args += ["--scope", "executions:read", "--environment", "production", "-e", "sandbox"]
    assert one_json_object(cli([*args, "--json"], handler)) == APP

    human = cli(args, handler)
    assert human.exit_code == 0, human.output
    assert human.stdout == CLIENT_SECRET + "\n"  # SECRET=$(runplane apps create ...)
    assert "shown only now" in human.stderr
    assert APP["clientId"] in human.stderr
    assert CLIENT_SECRET not in human.stderr


def test_apps_create_without_an_environment_sends_none(cli: Callable[..., Any]) -> None:
    doc = {**APP, "environments": None}
    handler = answer(
        "POST", b"/api/v1/apps", 201, doc, {"name": "scheduler", "scopes": ["executions:read"]}
    )
    result = cli(["apps", "create", "scheduler", "--scope", "executions:read"], handler)
    assert result.exit_code == 0, result.output
    assert "every environment" in result.stderr


def test_apps_create_needs_a_scope(cli: Callable[..., Any]) -> None:
    result = cli(["apps", "create", "scheduler"])
    assert result.exit_code == 2
    assert "--scope" in result.output


def test_apps_list_never_prints_a_secret(cli: Callable[..., Any]) -> None:
    handler = answer("GET", b"/api/v1/apps", 200, {"items": [APP]})  # even if a server sent one
    [item] = one_json_object(cli(["apps", "list", "--json"], handler))["items"]
    assert "clientSecret" not in item
    assert (item["name"], item["clientId"]) == ("scheduler", APP["clientId"])
    table = cli(["apps", "list"], handler)
    assert table.exit_code == 0, table.output
    assert "scheduler" in table.stdout and APP["clientId"] in table.stdout
    assert CLIENT_SECRET not in table.output


def test_apps_rotate_prints_the_new_secret_and_delete_confirms(cli: Callable[..., Any]) -> None:
    rotate = answer("POST", b"/api/v1/apps/a%2Fb/rotate", 200, APP)
    result = cli(["apps", "rotate", "a/b"], rotate)
    assert result.exit_code == 0, result.output
    assert result.stdout == CLIENT_SECRET + "\n"
    assert "shown only now" in result.stderr
    assert one_json_object(cli(["apps", "rotate", "a/b", "--json"], rotate)) == APP

    delete = answer("DELETE", b"/api/v1/apps/a%2Fb", 204, None)
    assert one_json_object(cli(["apps", "delete", "a/b", "--json"], delete)) == {
        "name": "a/b",
        "deleted": True,
    }
    human = cli(["apps", "delete", "a/b"], delete)
    assert human.exit_code == 0, human.output
    assert "Deleted app a/b." in human.stdout


def test_a_refused_command_prints_nothing_on_stdout(cli: Callable[..., Any]) -> None:
    problem = {"status": 403, "code": "forbidden", "detail": "The admin scope is needed."}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json=problem, headers=PROBLEM_JSON)

    result = cli(["apps", "create", "x", "--scope", "admin", "--json"], handler)
    assert result.exit_code == 1
    assert result.stdout == ""
    err = json.loads(result.stderr)
    assert (err["status"], err["code"]) == (403, "forbidden")


# -- process secrets -------------------------------------------------------------------


def test_secrets_generate_prints_the_secret_alone(cli: Callable[..., Any]) -> None:
    handler = answer("POST", b"/api/v1/processes/hello/secret", 201, SECRET)
    assert one_json_object(cli(["secrets", "generate", "hello", "--json"], handler)) == SECRET
    human = cli(["secrets", "generate", "hello"], handler)
    assert human.exit_code == 0, human.output
    assert human.stdout == PROCESS_SECRET + "\n"
    assert "shown only now" in human.stderr
    assert "Runplane-Process-Secret" in human.stderr
    assert PROCESS_SECRET not in human.stderr


def test_secrets_generate_twice_is_a_conflict(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        doc = {"status": 409, "code": "conflict", "detail": "The process has a secret."}
        return httpx.Response(409, json=doc, headers=PROBLEM_JSON)

    result = cli(["secrets", "generate", "hello", "--json"], handler)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(result.stderr)["code"] == "conflict"


def test_secrets_rotate_delete_and_list(cli: Callable[..., Any]) -> None:
    rotate = answer("POST", b"/api/v1/processes/a%2Fb/secret/rotate", 200, SECRET)
    assert one_json_object(cli(["secrets", "rotate", "a/b", "--json"], rotate)) == SECRET
    human = cli(["secrets", "rotate", "a/b"], rotate)
    assert human.exit_code == 0, human.output
    assert human.stdout == PROCESS_SECRET + "\n"

    delete = answer("DELETE", b"/api/v1/processes/a%2Fb/secret", 204, None)
    assert one_json_object(cli(["secrets", "delete", "a/b", "--json"], delete)) == {
        "process": "a/b",
        "deleted": True,
    }

    listing = answer("GET", b"/api/v1/secrets", 200, {"items": [SECRET]})
    [item] = one_json_object(cli(["secrets", "list", "--json"], listing))["items"]
    assert item == {"process": "hello", "createdAt": SECRET["createdAt"]}
    table = cli(["secrets", "list"], listing)
    assert table.exit_code == 0, table.output
    assert "hello" in table.stdout
    assert PROCESS_SECRET not in table.output


def test_empty_listings_say_how_to_create_one(cli: Callable[..., Any]) -> None:
    for args, path, hint in [
        (["secrets", "list"], b"/api/v1/secrets", "runplane secrets generate"),
        (["apps", "list"], b"/api/v1/apps", "runplane apps create"),
    ]:
        result = cli(args, answer("GET", path, 200, {"items": []}))
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert hint in result.stderr


# -- workspaces and environments --------------------------------------------------------


def test_workspaces_create_prints_the_admin_token_alone(cli: Callable[..., Any]) -> None:
    handler = answer("POST", b"/api/v1/workspaces", 201, WORKSPACE, {"name": "acme"})
    assert one_json_object(cli(["workspaces", "create", "acme", "--json"], handler)) == WORKSPACE
    human = cli(["workspaces", "create", "acme"], handler)
    assert human.exit_code == 0, human.output
    assert human.stdout == ADMIN_TOKEN + "\n"  # TOKEN=$(runplane workspaces create acme)
    assert "shown only now" in human.stderr
    assert "sandbox, production" in human.stderr
    assert ADMIN_TOKEN not in human.stderr


def test_workspaces_list(cli: Callable[..., Any]) -> None:
    items = [
        {"name": "default", "createdAt": "2025-01-01T00:00:00Z"},
        {"name": "acme", "createdAt": "2025-01-02T10:00:00Z"},
    ]
    handler = answer("GET", b"/api/v1/workspaces", 200, {"items": items})
    assert one_json_object(cli(["workspaces", "list", "--json"], handler)) == {"items": items}
    table = cli(["workspaces", "list"], handler)
    assert table.exit_code == 0, table.output
    assert "default" in table.stdout


def test_environments_create_and_list(cli: Callable[..., Any]) -> None:
    create = answer("POST", b"/api/v1/environments", 201, ENVIRONMENT, {"name": "staging"})
    assert one_json_object(cli(["environments", "create", "staging", "--json"], create)) == (
        ENVIRONMENT
    )
    human = cli(["environments", "create", "staging"], create)
    assert human.exit_code == 0, human.output
    assert "Created environment staging." in human.stdout

    listing = answer("GET", b"/api/v1/environments", 200, {"items": [ENVIRONMENT]})
    assert one_json_object(cli(["environments", "list", "--json"], listing)) == {
        "items": [ENVIRONMENT]
    }
    table = cli(["environments", "list"], listing)
    assert table.exit_code == 0, table.output
    assert "staging" in table.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["apps", "create", "x", "--scope", "admin"],
        ["apps", "list"],
        ["apps", "rotate", "x"],
        ["apps", "delete", "x"],
        ["secrets", "generate", "hello"],
        ["secrets", "rotate", "hello"],
        ["secrets", "delete", "hello"],
        ["secrets", "list"],
        ["workspaces", "create", "acme"],
        ["workspaces", "list"],
        ["environments", "create", "staging"],
        ["environments", "list"],
    ],
)
def test_every_command_prints_one_json_object_with_json(
    cli: Callable[..., Any], args: list[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.method == "GET":
            return httpx.Response(200, json={"items": []})
        if path.startswith("/api/v1/apps"):
            return httpx.Response(200, json=APP)
        if "/secret" in path:
            return httpx.Response(200, json=SECRET)
        if path == "/api/v1/workspaces":
            return httpx.Response(201, json=WORKSPACE)
        return httpx.Response(201, json=ENVIRONMENT)

    one_json_object(cli([*args, "--json"], handler))
