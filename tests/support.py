"""Test support: real servers on free loopback ports, process folders, deploy helpers."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from runplane.bundle import pack_folder
from runplane.store.database import Database

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef-0123456789"  # RUNPLANE_ADMIN_TOKEN of test servers
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ADMIN_PASSWORD = "test-admin-password-0123"  # RUNPLANE_ADMIN_PASSWORD of test servers (user admin)
SERVER_START_SECONDS = 40.0


# httpx builds an SSL context for every client it makes (reading the CA bundle: ~30 ms of
# CPU, more than the request); the tests' servers speak plain HTTP on loopback, so every
# client of the tests shares one.
_SSL_CONTEXT = ssl.create_default_context()


def http_client(**kwargs: Any) -> httpx.Client:
    """An httpx client, made without reading the CA bundle again."""
    return httpx.Client(verify=_SSL_CONTEXT, **kwargs)


def postgres_url() -> str:
    """The PostgreSQL used by tests (RUNPLANE_TEST_POSTGRES_URL, default the local `test`)."""
    return os.environ.get("RUNPLANE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@functools.cache
def postgres_available() -> str | None:
    """None when PostgreSQL answers; else why not."""
    import psycopg

    try:
        with psycopg.connect(postgres_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{postgres_url()}: {exc}".strip()
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class Server:
    """A real `runplane serve` process that can be stopped, SIGKILLed and restarted."""

    def __init__(self, data_dir: Path, args: list[str], env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.args = args
        self.env = env
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    def start(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "runplane.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_SECONDS
        with http_client(base_url=self.base, timeout=1) as poll:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"server exited {self.proc.returncode}: {self.log()[-2000:]}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if poll.get("/api/v1/health").status_code == 200:
                        return self
                time.sleep(0.05)
        raise AssertionError(f"server did not answer in time: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx.Client:
        """An HTTP client of this server, authenticated as `token` (the admin by default)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", None) or {})
        return http_client(base_url=self.base, timeout=70, headers=headers, **kwargs)

    def kill(self) -> None:
        """SIGKILL the server process only (its executions' supervisors must notice)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ServerFactory:
    """Starts servers with fresh data dirs; stops every one of them at the end."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self.tmp = tmp
        self.servers: list[Server] = []

    def start(self, *args: str, env: dict[str, str | None] | None = None) -> Server:
        """A started server; `env` overrides the test defaults (None removes a variable)."""
        data = self.tmp.mktemp("server")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
        full_env.update(
            {
                "RUNPLANE_LEASE_TTL_SECONDS": "3",
                "RUNPLANE_SWEEP_INTERVAL_SECONDS": "0.5",
                "RUNPLANE_DRAIN_TIMEOUT_SECONDS": "2",
                "RUNPLANE_ADMIN_TOKEN": ADMIN_TOKEN,
                "RUNPLANE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                # tests refuse bad credentials on purpose, all from 127.0.0.1
                "RUNPLANE_AUTH_FAILURE_LIMIT": "1000",
            }
        )
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        server = Server(data, list(args), full_env)
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def make_process(
    root: Path,
    name: str,
    *,
    code: str = "",
    manifest: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """A process folder: runplane.toml (given body, [process] name filled in) and files."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(manifest).strip()
    (folder / "runplane.toml").write_text(f'[process]\nname = "{name}"\n{body}\n')
    if code:
        (folder / "main.py").write_text(textwrap.dedent(code))
    for rel, content in (files or {}).items():
        (folder / rel).write_text(textwrap.dedent(content))
    return folder


def deploy(
    client: httpx.Client,
    folder: Path,
    environment: str = "production",
    *,
    name: str | None = None,
    **config: Any,
) -> dict[str, Any]:
    """Upload a process folder and deploy its version; returns the deployment. `name`:
    the process's, where the folder does not say it (a Robocorp robot's)."""
    import tomllib

    if name is None:
        name = tomllib.loads((folder / "runplane.toml").read_text())["process"]["name"]
    r = client.post(
        f"/api/v1/processes/{name}/versions",
        content=pack_folder(folder),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code in (200, 201), r.text
    r = client.put(
        f"/api/v1/processes/{name}/deployments/{environment}",
        json={"version": r.json()["version"], **config},
    )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def wait_terminal(client: httpx.Client, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    """Long-poll an execution until it is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/executions/{execution_id}", params={"wait": 20})
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        if doc["status"] in ("succeeded", "failed", "timed_out", "cancelled"):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still {doc['status']} after {timeout} s")


class RemoteRuntime:
    """A `runplane runtime` subprocess (its own session: signals reach it alone)."""

    def __init__(self, srv: Server, token: str, data_dir: Path, *args: str) -> None:
        self.log_path = data_dir / "runtime.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
        env["RUNPLANE_CONFIG"] = str(data_dir / "no-config.toml")
        cmd = [
            sys.executable,
            "-m",
            "runplane.cli.main",
            "runtime",
            "--server",
            srv.base,
            "--token",
            token,
            "--data-dir",
            str(data_dir),
            *args,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def runtime_token(admin: httpx.Client, name: str, environment: str = "production") -> str:
    r = admin.post(
        "/api/v1/tokens",
        json={"name": name, "scopes": ["runtime"], "environments": [environment]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def sign_in(server: Server, name: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    """A console session of `name`, as a browser holds it: the session cookie, and the CSRF
    token its pages carry sent as X-CSRF-Token (what htmx does)."""
    import re

    client = http_client(base_url=server.base, timeout=70)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    r = client.post(
        "/login", data={"csrf_token": token.group(1), "name": name, "password": password}
    )
    assert r.status_code == 303, r.text
    page = client.get("/processes")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text.replace("&#34;", '"'))
    assert csrf, page.text[:500]
    client.headers["X-CSRF-Token"] = csrf.group(1)
    return client


class SseStream:
    """A server-sent events response read on a thread: each message (`id`, `event`,
    `data` decoded from JSON, `retry`, or `comment`) lands in a queue; None at its end."""

    def __init__(
        self,
        srv: Server,
        path: str,
        *,
        token: str | None = ADMIN_TOKEN,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        # no read timeout: a stream waits as long as it likes; tests bound their waits
        self.client = http_client(
            base_url=srv.base, headers=auth, timeout=httpx.Timeout(30, read=None)
        )
        self._cm = self.client.stream(
            "GET",
            path,
            params=params,
            headers={"Accept": "text/event-stream", **(headers or {})},
        )
        self.response = self._cm.__enter__()
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.ended = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._thread.start()

    def _read(self) -> None:
        message: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if message:
                        self.messages.put(message)
                    message = {}
                elif line.startswith(":"):
                    self.messages.put({"comment": line[1:].strip()})
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        message["data"] = json.loads(value)
                    elif name == "retry":
                        message["retry"] = int(value)
                    else:
                        message[name] = value
            self.ended = True
        except BaseException as exc:  # read by the test (closing the stream lands here too)
            self.error = exc
        self.messages.put(None)

    def next(self, timeout: float = 20.0) -> dict[str, Any] | None:
        """The next message (None once the stream has ended); fails after `timeout` s."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None

    def until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Messages (comments left out) until `done(messages so far)`; fails at the deadline
        or when the stream ends first."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while not done(got):
            message = self.next(max(0.01, deadline - time.monotonic()))
            if message is None:
                raise AssertionError(f"the stream ended first ({self.error!r}): {got}")
            if "comment" not in message:
                got.append(message)
        return got

    def close(self) -> None:
        """Disconnect (as a client that goes away)."""
        # The reader thread is blocked reading the socket: shutting it down wakes the
        # reader now (closing the response alone wakes it at the next keepalive only).
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self._cm.__exit__(None, None, None)
        self.client.close()
        self._thread.join(10)

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def execution_events(messages: list[dict[str, Any]], execution_id: str) -> list[str]:
    """The statuses an execution went through, as `execution` events told them."""
    return [
        m["data"]["status"]
        for m in messages
        if m.get("event") == "execution" and m["data"]["id"] == execution_id
    ]


def make_wheel(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel of distribution `name` at `version` with `files` (path: text),
    written by hand into `folder`: a package index needs nothing more than this file."""
    import base64
    import hashlib
    import zipfile

    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    entries = {
        **{path: textwrap.dedent(text) for path, text in files.items()},
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: runplane-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in entries.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    entries[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in entries.items():
            archive.writestr(path, text)
    return wheel


def admin_cli(srv: Server, config_dir: Path, *args: str, timeout: float = 60.0) -> Any:
    """Run `runplane ARGS` against `srv` as its admin (tests/cli_runner.py), with a config
    file of its own in `config_dir`: (exit code, stdout, stderr) as `Finished`."""
    from tests.cli_runner import run_cli

    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env |= {
        "RUNPLANE_SERVER": srv.base,
        "RUNPLANE_TOKEN": ADMIN_TOKEN,
        "RUNPLANE_CONFIG": str(config_dir / "cli.toml"),
    }
    return run_cli(list(args), env=env, timeout=timeout)


def on_test_database(db: Database, engine: Engine) -> None:
    """Point `db` at a test's isolated database (tests/conftest.py `isolated_engine`).

    A PostgreSQL schema is in the engine's connect arguments, not its URL, so the
    Database takes that engine for writes and reads. A SQLite file is its URL, so the
    Database keeps the writer and reader engines it made for it, as a server does.
    """
    if engine.dialect.name == "sqlite":
        return
    db.engine.dispose()
    db.engine = db.read_engine = engine
