"""`runplane login|logout|tokens` end to end: real CLI processes against a real server.

Every CLI process runs with a clean environment: no RUNPLANE_* variable unless a
test sets one, HOME in a temporary directory, and (unless a test checks the
default location) RUNPLANE_CONFIG pointing there too, so no test can read or
write a real user's config file.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import run_cli
from tests.support import ADMIN_TOKEN, Server, ServerFactory

CLI_TIMEOUT_SECONDS = 60
REFUSED = "the server refused the credential"


@dataclass
class Result:
    """One finished `runplane` invocation."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Cli:
    """Runs `runplane ARGS...` as its own process (tests/cli_runner.py) with a clean
    environment."""

    def __init__(self, home: Path, config: Path | None) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPLANE_", "XDG_"))}
        self.env["HOME"] = str(home)
        if config is not None:
            self.env["RUNPLANE_CONFIG"] = str(config)

    def __call__(self, *args: str, input: str | None = None, token: str | None = None) -> Result:
        env = dict(self.env)
        if token is not None:
            env["RUNPLANE_TOKEN"] = token
        done = run_cli(args, env=env, input=input or "", timeout=CLI_TIMEOUT_SECONDS)
        return Result(done.exit_code, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (admin token ADMIN_TOKEN), the demo `hello`, no runtime
    slots; each test names its own tokens."""
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory.start("--slots", "0")
    finally:
        factory.stop_all()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config" / "runplane.toml"


@pytest.fixture
def cli(tmp_path: Path, config: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, config)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def create_token(cli: Cli, server: Server, name: str, *options: str) -> dict[str, Any]:
    """`runplane tokens create NAME ... --json` as the admin; the one JSON object it prints."""
    result = cli(
        "tokens", "create", name, *options, "--server", server.base, "--json", token=ADMIN_TOKEN
    )
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = result.json()  # exactly one JSON document on stdout
    return doc


def test_login_saves_the_token_and_commands_need_no_runplane_token(
    server: Server, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(home, config=None)  # the default location: ~/.config/runplane/config.toml
    path = home / ".config" / "runplane" / "config.toml"

    before = cli("processes", "list", "--server", server.base)
    assert before.exit_code == 1
    assert REFUSED in before.stderr
    assert "runplane login" in before.stderr

    result = cli("login", "--server", server.base, "--json", input=ADMIN_TOKEN + "\n")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"server": server.base, "configFile": str(path)}
    assert ADMIN_TOKEN not in result.output
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert ADMIN_TOKEN in path.read_text()

    listed = cli("processes", "list", "--json")  # no --server, no RUNPLANE_TOKEN
    assert listed.exit_code == 0, listed.stderr
    assert "hello" in [p["name"] for p in listed.json()["items"]]

    logged_out = cli("logout", "--json")
    assert logged_out.exit_code == 0, logged_out.stderr
    assert logged_out.json() == {"server": server.base, "configFile": str(path)}
    assert ADMIN_TOKEN not in path.read_text()
    after = cli("processes", "list", "--json")
    assert after.exit_code == 1
    problem = json.loads(after.stderr)
    assert (problem["status"], problem["code"]) == (401, "unauthenticated")
    assert problem["detail"].startswith(REFUSED)


def read_pty(fd: int, deadline: float, until: bytes | None = None) -> bytes:
    """What a pseudo-terminal shows, up to `until` (None: until the program exits)."""
    seen = b""
    while until is None or until not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the terminal showed only {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the program exited and closed the terminal
            chunk = b""
        if not chunk:
            if until is None:
                return seen
            raise AssertionError(f"the terminal closed after {seen!r}")
        seen += chunk
    return seen


def test_login_on_a_terminal_reads_the_token_without_echo(
    server: Server, cli: Cli, config: Path
) -> None:
    argv = [sys.executable, "-m", "runplane.cli.main", "login", "--server", server.base]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, on the terminal
        try:
            os.execve(sys.executable, argv, cli.env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
    status: int | None = None
    try:
        # The prompt's last space is written once echo is off (getpass), not before.
        shown = read_pty(fd, deadline, until=b"API token: ")
        os.write(fd, ADMIN_TOKEN.encode() + b"\n")
        shown += read_pty(fd, deadline)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        if status is None:  # the test failed early: do not leave the CLI behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert ADMIN_TOKEN.encode() not in shown
    assert b"Logged in to" in shown
    assert ADMIN_TOKEN in config.read_text()
    assert mode(config) == 0o600


def test_a_wrong_token_is_refused_by_login_and_nothing_is_saved(
    server: Server, cli: Cli, config: Path
) -> None:
    wrong = "rpt_not-a-token-this-server-knows-0123456789abc"
    result = cli("login", "--server", server.base, input=wrong + "\n")
    assert result.exit_code == 1
    assert "refused the token" in result.stderr
    assert "nothing was saved" in result.stderr
    assert wrong not in result.output
    assert not config.exists()

    # A working login stays as it was when a later one is refused.
    assert cli("login", "--server", server.base, "--token", ADMIN_TOKEN).exit_code == 0
    saved = config.read_bytes()
    assert cli("login", "--server", server.base, "--token", wrong).exit_code == 1
    assert config.read_bytes() == saved
    assert cli("processes", "list", "--json").exit_code == 0


def test_a_wrong_runplane_token_is_a_clear_error(server: Server, cli: Cli) -> None:
    result = cli("executions", "list", "--server", server.base, token="rpt_wrong-0123456789")
    assert result.exit_code == 1
    assert (
        "the server refused the credential: The credential is unknown, expired or revoked; "
        "set RUNPLANE_TOKEN or run `runplane login`"
    ) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_a_created_token_does_what_its_scope_allows_and_no_more(server: Server, cli: Cli) -> None:
    created = create_token(cli, server, "reader", "--scope", "executions:read")
    assert created["name"] == created["username"] == "reader"
    assert created["scopes"] == ["executions:read"]
    reader = created["token"]

    listed = cli("executions", "list", "--server", server.base, "--json", token=reader)
    assert listed.exit_code == 0, listed.stderr
    assert "items" in listed.json()

    started = cli("run", "hello", "--server", server.base, "--json", token=reader)
    assert started.exit_code == 1
    assert started.stdout == ""
    problem = json.loads(started.stderr)
    assert (problem["status"], problem["code"]) == (403, "forbidden")

    # Without --json: the token alone on stdout, the note on stderr; it works at once.
    human = cli(
        "tokens",
        "create",
        "starter",
        "--scope",
        "executions:start",
        "--scope",
        "executions:read",
        "--environment",
        "production",
        "--server",
        server.base,
        token=ADMIN_TOKEN,
    )
    assert human.exit_code == 0, human.stderr
    starter = human.stdout.strip()
    assert human.stdout == starter + "\n"
    assert "shown only now" in human.stderr
    assert starter not in human.stderr
    run = cli("run", "hello", "-i", "name=Ada", "--server", server.base, "--json", token=starter)
    assert run.exit_code == 0, run.stderr
    assert run.json()["environment"] == "production"


def test_rotate_retires_the_old_token_and_delete_the_new_one(server: Server, cli: Cli) -> None:
    old = create_token(cli, server, "ci", "--scope", "executions:read")["token"]
    rotated = cli("tokens", "rotate", "ci", "--server", server.base, "--json", token=ADMIN_TOKEN)
    assert rotated.exit_code == 0, rotated.stderr
    new = rotated.json()["token"]
    assert new != old

    def list_with(token: str) -> Result:
        return cli("executions", "list", "--server", server.base, "--json", token=token)

    refused = list_with(old)
    assert refused.exit_code == 1
    assert json.loads(refused.stderr)["status"] == 401
    assert REFUSED in json.loads(refused.stderr)["detail"]
    assert list_with(new).exit_code == 0

    # Without --json, rotate prints the new token alone on stdout.
    again = cli("tokens", "rotate", "ci", "--server", server.base, token=ADMIN_TOKEN)
    assert again.exit_code == 0, again.stderr
    newest = again.stdout.strip()
    assert list_with(new).exit_code == 1
    assert list_with(newest).exit_code == 0

    deleted = cli("tokens", "delete", "ci", "--server", server.base, "--json", token=ADMIN_TOKEN)
    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.json() == {"name": "ci", "deleted": True}
    gone = list_with(newest)
    assert gone.exit_code == 1
    assert json.loads(gone.stderr)["status"] == 401
    missing = cli("tokens", "delete", "ci", "--server", server.base, "--json", token=ADMIN_TOKEN)
    assert missing.exit_code == 1
    assert json.loads(missing.stderr)["status"] == 404


def test_tokens_list_never_contains_a_secret(server: Server, cli: Cli) -> None:
    secrets = [
        create_token(cli, server, "one", "--scope", "executions:read")["token"],
        create_token(cli, server, "two", "--scope", "processes:write", "--expires-in", "3600")[
            "token"
        ],
        ADMIN_TOKEN,
    ]
    as_json = cli("tokens", "list", "--server", server.base, "--json", token=ADMIN_TOKEN)
    assert as_json.exit_code == 0, as_json.stderr
    items = {item["name"]: item for item in as_json.json()["items"]}
    assert {"one", "two"} <= set(items)
    assert all("token" not in item for item in items.values())
    assert items["two"]["expiresAt"] is not None

    table = cli("tokens", "list", "--server", server.base, token=ADMIN_TOKEN)
    assert table.exit_code == 0, table.stderr
    assert "one" in table.stdout and "two" in table.stdout
    for secret in secrets:
        assert secret not in as_json.output
        assert secret not in table.output


def test_a_token_without_the_admin_scope_cannot_manage_tokens(server: Server, cli: Cli) -> None:
    reader = create_token(cli, server, "not-an-admin", "--scope", "executions:read")["token"]
    result = cli("tokens", "list", "--server", server.base, "--json", token=reader)
    assert result.exit_code == 1
    assert json.loads(result.stderr)["code"] == "forbidden"
