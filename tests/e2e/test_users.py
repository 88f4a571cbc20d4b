"""Users of the web console end to end: the native API, `runplane users`, and the first
start's user `admin`, against real servers. (Signing in has no route yet: the service
tests in tests/integration/test_users_service.py cover sessions.)"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from tests.e2e.test_cli_credentials import CLI_TIMEOUT_SECONDS, Cli, read_pty
from tests.support import ADMIN_TOKEN, Server, ServerFactory

SIGN_IN_LINE = re.compile(
    r"^Sign in to the console at (http://\S+/) as admin with password (\S+) \(shown only now\)\.$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory.start("--slots", "0", "--no-demo")
    finally:
        factory.stop_all()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, tmp_path / "config.toml")


def password_of(srv: Server, name: str) -> str:
    """The stored hash of a user's password, read from the server's SQLite file."""
    with contextlib.closing(sqlite3.connect(srv.data_dir / "runplane.db")) as db:
        row = db.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    assert row is not None, name
    return str(row[0])


def verifies(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerificationError:
        return False


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


# -- the native API ---------------------------------------------------------------------


def test_an_admin_creates_lists_disables_and_sets_passwords_of_users(
    server: Server, admin: httpx.Client
) -> None:
    made = admin.post("/api/v1/users", json={"name": "ada", "role": "operator"})
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    doc = made.json()
    generated = doc.pop("password")
    assert re.fullmatch(r"[0-9a-z]{5}(-[0-9a-z]{5}){3}", generated)
    assert doc == {
        "name": "ada",
        "role": "operator",
        "workspace": "default",
        "createdAt": doc["createdAt"],
        "disabled": False,
        "lastSignInAt": None,
    }
    stored = password_of(server, "ada")
    assert stored.startswith("$argon2id$") and verifies(stored, generated)

    chosen = admin.post(
        "/api/v1/users",
        json={"name": "vera", "role": "viewer", "password": "a chosen password"},
    )
    assert chosen.status_code == 201 and "password" not in chosen.json()
    assert verifies(password_of(server, "vera"), "a chosen password")

    listed = admin.get("/api/v1/users").json()["items"]
    assert {u["name"]: u["role"] for u in listed}.items() >= {
        ("ada", "operator"),
        ("vera", "viewer"),
    }
    assert generated not in json.dumps(listed) and all("password" not in u for u in listed)

    assert (
        admin.put("/api/v1/users/ada/password", json={"password": "another password"}).status_code
        == 204
    )
    assert verifies(password_of(server, "ada"), "another password")

    disabled = admin.post("/api/v1/users/ada/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    [ada] = [u for u in admin.get("/api/v1/users").json()["items"] if u["name"] == "ada"]
    assert ada["disabled"] is True

    # the same name again: a role change, never a second user or a password change
    changed = admin.post("/api/v1/users", json={"name": "vera", "role": "admin"})
    assert changed.status_code == 201 and changed.json()["role"] == "admin"
    assert "password" not in changed.json()
    problem(
        admin.post("/api/v1/users", json={"name": "vera", "role": "admin", "password": "x" * 12}),
        409,
        "user_exists",
    )


def test_user_requests_are_validated_whole(admin: httpx.Client) -> None:
    body = problem(
        admin.post(
            "/api/v1/users", json={"name": "Not Valid", "role": "boss", "password": "short"}
        ),
        422,
        "invalid_request",
    )
    assert [(e["name"], e["code"]) for e in body["errors"]] == [
        ("name", "invalid_name"),
        ("role", "invalid_role"),
        ("password", "password_too_short"),
    ]
    admin.post("/api/v1/users", json={"name": "pat", "role": "viewer"})
    body = problem(
        admin.put("/api/v1/users/pat/password", json={"password": "tiny"}), 422, "invalid_request"
    )
    assert body["errors"][0]["code"] == "password_too_short"
    problem(admin.post("/api/v1/users/nobody/disable"), 404, "user_not_found")
    problem(
        admin.put("/api/v1/users/nobody/password", json={"password": "long enough password"}),
        404,
        "user_not_found",
    )
    problem(admin.post("/api/v1/users", json={"role": "viewer"}), 422, "invalid_request")
    problem(
        admin.post("/api/v1/users", json={"name": "x", "role": "viewer", "workspace": "nope"}),
        404,
        "workspace_not_found",
    )


def test_only_full_admins_manage_users(server: Server, admin: httpx.Client) -> None:
    def token(name: str, scopes: list[str], **extra: Any) -> str:
        r = admin.post("/api/v1/tokens", json={"name": name, "scopes": scopes, **extra})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    operator = token("users-operator", ["executions:start", "executions:read"])
    limited = token("users-limited-admin", ["admin"], environments=["sandbox"])
    for secret in (operator, limited):
        with server.client(token=secret) as c:
            problem(c.get("/api/v1/users"), 403, "forbidden")
            problem(
                c.post("/api/v1/users", json={"name": "eve", "role": "admin"}), 403, "forbidden"
            )
            problem(c.post("/api/v1/users/admin/disable"), 403, "forbidden")
            problem(
                c.put("/api/v1/users/admin/password", json={"password": "taken over at last"}),
                403,
                "forbidden",
            )


def test_the_installation_admin_gives_roles_in_other_workspaces_and_no_one_else_does(
    server: Server, admin: httpx.Client
) -> None:
    acme = admin.post("/api/v1/workspaces", json={"name": "users-acme"}).json()["adminToken"]
    admin.post("/api/v1/users", json={"name": "root-user", "role": "admin"})
    made = admin.post(
        "/api/v1/users", json={"name": "acme-ops", "role": "operator", "workspace": "users-acme"}
    )
    assert made.status_code == 201 and made.json()["workspace"] == "users-acme"
    with server.client(token=acme) as c:
        assert [u["name"] for u in c.get("/api/v1/users").json()["items"]] == ["acme-ops"]
        problem(c.post("/api/v1/users/root-user/disable"), 404, "user_not_found")
        problem(
            c.post("/api/v1/users", json={"name": "root-user", "role": "viewer"}),
            409,
            "user_exists",
        )
        problem(
            c.post("/api/v1/users", json={"name": "x", "role": "viewer", "workspace": "default"}),
            404,
            "workspace_not_found",
        )
    names = [u["name"] for u in admin.get("/api/v1/users").json()["items"]]
    assert "acme-ops" not in names and "root-user" in names


# -- the CLI ------------------------------------------------------------------------------


def test_cli_creates_lists_disables_and_sets_passwords(server: Server, cli: Cli) -> None:
    base = ("--server", server.base)
    made = cli("users", "create", "cli-gen", "--role", "viewer", *base, token=ADMIN_TOKEN)
    assert made.exit_code == 0, made.stderr
    generated = made.stdout.strip()
    assert made.stdout == generated + "\n"  # the password alone on stdout
    assert "shown only now" in made.stderr and generated not in made.stderr
    assert verifies(password_of(server, "cli-gen"), generated)

    chosen = cli(
        "users", "create", "cli-own", "--role", "operator", "--password-stdin", "--json", *base,
        input="my own  password \n",
        token=ADMIN_TOKEN,
    )  # fmt: skip
    assert chosen.exit_code == 0, chosen.stderr
    assert chosen.json()["role"] == "operator" and "password" not in chosen.json()
    assert verifies(password_of(server, "cli-own"), "my own  password ")

    listed = cli("users", "list", "--json", *base, token=ADMIN_TOKEN)
    assert listed.exit_code == 0, listed.stderr
    roles = {u["name"]: u["role"] for u in listed.json()["items"]}
    assert roles["cli-gen"] == "viewer" and roles["cli-own"] == "operator"
    table = cli("users", "list", *base, token=ADMIN_TOKEN)
    assert table.exit_code == 0 and "cli-own" in table.stdout and "never" in table.stdout

    passwd = cli(
        "users", "passwd", "cli-gen", "--password-stdin", *base,
        input="a replaced password\n", token=ADMIN_TOKEN,
    )  # fmt: skip
    assert passwd.exit_code == 0, passwd.stderr
    assert verifies(password_of(server, "cli-gen"), "a replaced password")

    disabled = cli("users", "disable", "cli-gen", "--json", *base, token=ADMIN_TOKEN)
    assert disabled.exit_code == 0 and disabled.json()["disabled"] is True

    bad = cli("users", "create", "Bad Name", "--role", "boss", "--json", *base, token=ADMIN_TOKEN)
    assert bad.exit_code == 1 and bad.stdout == ""
    refused = json.loads(bad.stderr)
    assert refused["code"] == "invalid_request"
    assert [e["code"] for e in refused["errors"]] == ["invalid_name", "invalid_role"]

    missing = cli("users", "passwd", "cli-own", *base, token=ADMIN_TOKEN)  # no terminal
    assert missing.exit_code == 2 and "--password-stdin" in missing.stderr


def test_cli_passwd_on_a_terminal_asks_twice_without_echo(server: Server, cli: Cli) -> None:
    cli(
        "users", "create", "cli-tty", "--role", "viewer", "--server", server.base, token=ADMIN_TOKEN
    )
    argv = [sys.executable, "-m", "runplane.cli.main", "users", "passwd", "cli-tty"]
    env = {**cli.env, "RUNPLANE_TOKEN": ADMIN_TOKEN, "RUNPLANE_SERVER": server.base}
    secret = b"typed on a terminal"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, on the terminal
        try:
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
    status: int | None = None
    try:
        shown = read_pty(fd, deadline, until=b"New password for cli-tty: ")
        os.write(fd, secret + b"\n")
        shown += read_pty(fd, deadline, until=b"Repeat it: ")
        os.write(fd, secret + b"\n")
        shown += read_pty(fd, deadline)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        if status is None:  # the test failed early: do not leave the CLI behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert secret not in shown
    assert b"Set the password of" in shown and b"its sessions ended" in shown
    assert verifies(password_of(server, "cli-tty"), secret.decode())


# -- the first start ---------------------------------------------------------------------


def test_first_start_prints_the_admin_users_password_once(start_server: ServerFactory) -> None:
    srv = start_server.start("--slots", "0", "--no-demo", env={"RUNPLANE_ADMIN_PASSWORD": None})
    [(url, password)] = SIGN_IN_LINE.findall(srv.log())
    assert url == f"{srv.base}/"
    assert verifies(password_of(srv, "admin"), password)
    with srv.client() as admin:
        [user] = admin.get("/api/v1/users").json()["items"]
    assert (user["name"], user["role"], user["workspace"]) == ("admin", "admin", "default")
    srv.stop()
    srv.start()
    assert len(SIGN_IN_LINE.findall(srv.log())) == 1  # not on the second start
    assert srv.log().count(password) == 1
    assert verifies(password_of(srv, "admin"), password)


def test_runplane_admin_password_is_the_admin_users_password(
    start_server: ServerFactory,
) -> None:
    chosen = "the chosen admin password"
    srv = start_server.start("--slots", "0", "--no-demo", env={"RUNPLANE_ADMIN_PASSWORD": chosen})
    assert SIGN_IN_LINE.findall(srv.log()) == [] and chosen not in srv.log()
    assert verifies(password_of(srv, "admin"), chosen)
    srv.stop()
    srv.env["RUNPLANE_ADMIN_PASSWORD"] = "changed in the environment"
    srv.start()  # applied again when it changed
    assert verifies(password_of(srv, "admin"), "changed in the environment")


def test_a_short_admin_password_setting_is_refused_at_start(start_server: ServerFactory) -> None:
    with pytest.raises(AssertionError, match="RUNPLANE_ADMIN_PASSWORD"):
        start_server.start("--slots", "0", env={"RUNPLANE_ADMIN_PASSWORD": "too-short"})
