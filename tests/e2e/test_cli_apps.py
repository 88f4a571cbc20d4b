"""`runplane apps|secrets|workspaces|environments` end to end: the CLI against a real server.

Every CLI process runs with a clean environment (the `Cli` of test_cli_credentials):
no RUNPLANE_* variable unless a test sets one, HOME and RUNPLANE_CONFIG in a
temporary directory. What a command prints is then used for real: an app's client
credentials get an access token from /oauth2/token that starts `hello`, a process
secret starts `hello` in the header and the query string, a workspace's admin token
sees that workspace only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_cli_credentials import Cli, Result
from tests.support import ADMIN_TOKEN, Server, ServerFactory

START = "/api/v1/processes/hello/executions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (admin token ADMIN_TOKEN), the demo `hello`, no runtime slots.

    With no slots every execution stays queued: a start answers 201 and nothing runs.
    """
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory.start("--slots", "0")
    finally:
        factory.stop_all()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, tmp_path / "config" / "runplane.toml")


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    with server.client(token=None) as c:
        yield c


def as_admin(cli: Cli, server: Server, *args: str, token: str = ADMIN_TOKEN) -> Result:
    return cli(*args, "--server", server.base, token=token)


def json_of(cli: Cli, server: Server, *args: str, token: str = ADMIN_TOKEN) -> dict[str, Any]:
    """`runplane ARGS --json`: exit 0 and exactly one JSON object on stdout."""
    result = as_admin(cli, server, *args, "--json", token=token)
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


def problem_of(result: Result, status: int) -> dict[str, Any]:
    """A refused `--json` command: exit 1, nothing on stdout, the problem on stderr."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    doc: dict[str, Any] = json.loads(result.stderr)
    assert doc["status"] == status, doc
    return doc


def token_request(c: httpx.Client, client_id: str, client_secret: str) -> httpx.Response:
    """POST /oauth2/token, a form body, the client authenticated with HTTP Basic."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return c.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()},
    )


def access_token(c: httpx.Client, client_id: str, client_secret: str) -> str:
    r = token_request(c, client_id, client_secret)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def without_process_secret(server: Server, process: str) -> None:
    """Start from a process with no secret, whichever test of the module ran before."""
    with server.client() as admin:
        assert admin.delete(f"/api/v1/processes/{process}/secret").status_code in (204, 404)


def starts_hello(c: httpx.Client, token: str, execution_id: str) -> int:
    r = c.put(
        START,
        json={"executionId": execution_id, "inputArguments": {"name": "cli"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return r.status_code


# -- apps ------------------------------------------------------------------------------


def test_an_app_made_by_the_cli_gets_a_token_that_starts_hello(
    server: Server, cli: Cli, anonymous: httpx.Client
) -> None:
    app = json_of(
        cli,
        server,
        "apps",
        "create",
        "scheduler",
        "--scope",
        "executions:start",
        "--scope",
        "executions:read",
        "--environment",
        "production",
    )
    assert app["name"] == "scheduler"
    assert app["scopes"] == ["executions:read", "executions:start"]
    assert app["environments"] == ["production"]
    token = access_token(anonymous, app["clientId"], app["clientSecret"])
    assert starts_hello(anonymous, token, "cli-app-1") == 201

    # Without --json: the client secret alone on stdout, the client id with the note.
    human = as_admin(cli, server, "apps", "create", "nightly", "--scope", "executions:start")
    assert human.exit_code == 0, human.stderr
    secret = human.stdout.strip()
    assert human.stdout == secret + "\n"
    assert "shown only now" in human.stderr
    assert secret not in human.stderr
    [listed] = [a for a in json_of(cli, server, "apps", "list")["items"] if a["name"] == "nightly"]
    assert listed["clientId"] in human.stderr
    token = access_token(anonymous, listed["clientId"], secret)
    assert starts_hello(anonymous, token, "cli-app-2") == 201


def test_rotating_an_app_refuses_the_old_secret_and_deleting_it_refuses_all(
    server: Server, cli: Cli, anonymous: httpx.Client
) -> None:
    app = json_of(cli, server, "apps", "create", "rotating", "--scope", "executions:start")
    client_id, old = app["clientId"], app["clientSecret"]
    old_token = access_token(anonymous, client_id, old)

    rotated = json_of(cli, server, "apps", "rotate", "rotating")
    new = rotated["clientSecret"]
    assert (rotated["clientId"], rotated["name"]) == (client_id, "rotating")
    assert new != old
    refused = token_request(anonymous, client_id, old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert starts_hello(anonymous, old_token, "cli-rotate-old") == 401
    assert starts_hello(anonymous, access_token(anonymous, client_id, new), "cli-rotate") == 201

    # Without --json, rotate prints the new client secret alone.
    again = as_admin(cli, server, "apps", "rotate", "rotating")
    assert again.exit_code == 0, again.stderr
    newest = again.stdout.strip()
    assert again.stdout == newest + "\n" and "shown only now" in again.stderr
    assert token_request(anonymous, client_id, new).status_code == 401
    newest_token = access_token(anonymous, client_id, newest)

    assert json_of(cli, server, "apps", "delete", "rotating") == {
        "name": "rotating",
        "deleted": True,
    }
    gone = token_request(anonymous, client_id, newest)
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"
    assert starts_hello(anonymous, newest_token, "cli-deleted") == 401
    assert "rotating" not in {a["name"] for a in json_of(cli, server, "apps", "list")["items"]}
    problem_of(as_admin(cli, server, "apps", "delete", "rotating", "--json"), 404)


def test_apps_need_the_admin_scope_and_a_valid_scope(server: Server, cli: Cli) -> None:
    reader = json_of(cli, server, "tokens", "create", "app-reader", "--scope", "executions:read")
    args = ("apps", "create", "x", "--scope", "executions:read", "--json")
    refused = as_admin(cli, server, *args, token=reader["token"])
    assert problem_of(refused, 403)["code"] == "forbidden"
    bad = as_admin(cli, server, "apps", "create", "x", "--scope", "nope", "--json")
    assert problem_of(bad, 422)["errors"][0]["code"] == "invalid_scope"


# -- process secrets ---------------------------------------------------------------------


def test_a_process_secret_from_the_cli_starts_hello_by_header_and_query(
    server: Server, cli: Cli, anonymous: httpx.Client
) -> None:
    def by_header(secret: str) -> int:
        r = anonymous.post(START, json={}, headers={"Runplane-Process-Secret": secret})
        return r.status_code

    def by_query(secret: str) -> int:
        return anonymous.post(START, params={"process-secret": secret}, json={}).status_code

    without_process_secret(server, "hello")
    made = json_of(cli, server, "secrets", "generate", "hello")
    assert made["process"] == "hello"
    first = made["secret"]
    assert by_header(first) == 201
    assert by_query(first) == 201
    again = as_admin(cli, server, "secrets", "generate", "hello", "--json")
    assert problem_of(again, 409)["code"] == "conflict"

    rotated = json_of(cli, server, "secrets", "rotate", "hello")["secret"]
    assert rotated != first
    assert by_header(first) == 401 and by_query(first) == 401
    assert by_header(rotated) == 201 and by_query(rotated) == 201

    # Without --json: the secret alone on stdout, the note on stderr.
    human = as_admin(cli, server, "secrets", "rotate", "hello")
    assert human.exit_code == 0, human.stderr
    newest = human.stdout.strip()
    assert human.stdout == newest + "\n"
    assert "shown only now" in human.stderr and newest not in human.stderr
    assert by_header(rotated) == 401
    assert by_header(newest) == 201

    assert json_of(cli, server, "secrets", "delete", "hello") == {
        "process": "hello",
        "deleted": True,
    }
    assert by_header(newest) == 401 and by_query(newest) == 401
    problem_of(as_admin(cli, server, "secrets", "delete", "hello", "--json"), 404)

    human = as_admin(cli, server, "secrets", "generate", "hello")  # a fresh one after delete
    assert human.exit_code == 0, human.stderr
    assert by_query(human.stdout.strip()) == 201


# -- workspaces and environments ------------------------------------------------------------


def test_a_workspace_admin_token_sees_its_own_environments_only(server: Server, cli: Cli) -> None:
    made = json_of(cli, server, "workspaces", "create", "acme")
    assert made["name"] == "acme"
    assert set(made["environments"]) == {"sandbox", "production"}
    acme = made["adminToken"]

    created = json_of(cli, server, "environments", "create", "staging", token=acme)
    assert created["name"] == "staging"
    acme_envs = json_of(cli, server, "environments", "list", token=acme)["items"]
    assert {e["name"] for e in acme_envs} == {"sandbox", "production", "staging"}
    default_envs = json_of(cli, server, "environments", "list")["items"]
    assert "staging" not in {e["name"] for e in default_envs}
    dup = as_admin(cli, server, "environments", "create", "staging", "--json", token=acme)
    problem_of(dup, 409)

    assert [w["name"] for w in json_of(cli, server, "workspaces", "list", token=acme)["items"]] == [
        "acme"
    ]
    every = {w["name"] for w in json_of(cli, server, "workspaces", "list")["items"]}
    assert {"default", "acme"} <= every
    refused = as_admin(cli, server, "workspaces", "create", "evil", "--json", token=acme)
    assert problem_of(refused, 403)["code"] == "forbidden"

    # Without --json: the admin token alone on stdout, "shown only now" on stderr.
    human = as_admin(cli, server, "workspaces", "create", "globex")
    assert human.exit_code == 0, human.stderr
    globex = human.stdout.strip()
    assert human.stdout == globex + "\n"
    assert "shown only now" in human.stderr and globex not in human.stderr
    envs = json_of(cli, server, "environments", "list", token=globex)["items"]
    assert {e["name"] for e in envs} == {"sandbox", "production"}

    table = as_admin(cli, server, "environments", "list", token=acme)
    assert table.exit_code == 0, table.stderr
    assert "staging" in table.stdout


def test_listings_hold_no_secrets(server: Server, cli: Cli) -> None:
    without_process_secret(server, "hello")
    shown = [
        json_of(cli, server, "apps", "create", "listed", "--scope", "executions:read")[
            "clientSecret"
        ],
        json_of(cli, server, "secrets", "generate", "hello")["secret"],
        json_of(cli, server, "workspaces", "create", "listed")["adminToken"],
        ADMIN_TOKEN,
    ]
    apps = json_of(cli, server, "apps", "list")["items"]
    assert "listed" in {a["name"] for a in apps}
    assert all("clientSecret" not in a for a in apps)
    secrets = json_of(cli, server, "secrets", "list")["items"]
    assert "hello" in {s["process"] for s in secrets}
    assert all("secret" not in s for s in secrets)
    for args in (
        ("apps", "list"),
        ("secrets", "list"),
        ("workspaces", "list"),
        ("environments", "list"),
    ):
        for extra in ((), ("--json",)):
            result = as_admin(cli, server, *args, *extra)
            assert result.exit_code == 0, result.stderr
            assert result.stdout.strip(), args
            for secret in shown:
                assert secret not in result.output, args
