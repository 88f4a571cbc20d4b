"""The CLI and SDK without a server: input coercion, problem mapping, output shapes.

The SDK's transport is its one seam: these tests swap in `httpx.MockTransport`
so every command runs for real, down to the HTTP request it would send.
"""

from __future__ import annotations

import json
import os
import stat
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
    Config,
    ConfigError,
    ServerUnreachable,
    UnexpectedResponse,
    config_path,
    error_from_problem,
    resolve,
)
from runplane.client.config import load_config, save_config
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
    exc = error_from_problem({"code": "widget_not_found", "detail": "gone"}, 404)
    assert type(exc) is errors.NotFound
    assert (exc.code, exc.status, exc.detail) == ("widget_not_found", 404, "gone")


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
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """Run a command with the SDK talking to `handler` (None: nothing may be sent).

    RUNPLANE_CONFIG points into tmp_path, so no test ever reads the real config file.
    """
    monkeypatch.delenv("RUNPLANE_SERVER", raising=False)
    monkeypatch.delenv("RUNPLANE_TOKEN", raising=False)
    monkeypatch.setenv("RUNPLANE_CONFIG", str(tmp_path / "config" / "config.toml"))

    def invoke(args: list[str], handler: Handler | None = None, input: str | None = None) -> Any:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise AssertionError(f"unexpected request {request.method} {request.url}")

        transport = httpx.MockTransport(handler or refuse)

        def client(server: str, *, token: str | None = None) -> Client:
            return Client(server, token=token, transport=transport)

        monkeypatch.setattr(session, "Client", client)
        return CliRunner().invoke(app, args, input=input)

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
def test_serve_listens_beyond_loopback_with_a_note_on_tls(
    fake_server: list[Settings], host: str
) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host])
    assert result.exit_code == 0, result.output
    assert f"listening on {host}" in result.stderr and "TLS" in result.stderr
    assert fake_server[0].host == host


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "::1"])
def test_serve_accepts_a_loopback_host(fake_server: list[Settings], host: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host])
    assert result.exit_code == 0, result.output
    assert fake_server[0].host == host
    assert "listening on" not in result.stderr


# -- the config file -------------------------------------------------------------

TOKEN = "rpt_unit-test-token-0123456789abcdefghijklmnop"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_config_path_is_runplane_config_else_xdg_else_home(tmp_path: Path) -> None:
    explicit = tmp_path / "elsewhere.toml"
    assert config_path({"RUNPLANE_CONFIG": str(explicit), "XDG_CONFIG_HOME": "/x"}) == explicit
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "runplane" / "config.toml"
    )
    home = Path.home() / ".config" / "runplane" / "config.toml"
    assert config_path({}) == home
    assert config_path({"XDG_CONFIG_HOME": "relative/dir"}) == home  # XDG: relative is ignored


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_a_saved_config_is_0600_in_0700_directories_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    path = tmp_path / "a" / "b" / "config.toml"
    previous = os.umask(umask)
    try:
        save_config(path, Config(server="http://h:1", token=TOKEN))
    finally:
        os.umask(previous)
    assert mode(path) == 0o600
    assert mode(path.parent) & 0o077 == 0
    assert mode(tmp_path / "a") & 0o077 == 0
    assert load_config(path) == Config(server="http://h:1", token=TOKEN)


def test_the_config_is_never_readable_by_others_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    opened: list[tuple[int, int]] = []
    modes_while_writing: list[int] = []
    real_open, real_write = os.open, os.write

    def spy_open(file: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(file, flags, mode, **kwargs)
        if not os.path.isdir(file):
            opened.append((flags, mode))
        return fd

    def spy_write(fd: int, data: Any) -> int:
        modes_while_writing.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    save_config(path, Config(server="http://h:1", token=TOKEN))
    [(flags, created_mode)] = opened
    assert created_mode == 0o600
    assert flags & os.O_CREAT and flags & os.O_EXCL  # a new file, never an existing one
    assert modes_while_writing and set(modes_while_writing) == {0o600}


def test_saving_replaces_the_old_file_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('server = "http://old:1"\ntoken = "old"\n')
    path.chmod(0o644)
    old_inode = os.stat(path).st_ino
    save_config(path, Config(server="http://new:2", token=TOKEN))
    assert os.stat(path).st_ino != old_inode  # a new file renamed over the old one
    assert mode(path) == 0o600
    assert load_config(path) == Config(server="http://new:2", token=TOKEN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temporary left

    def broken_write(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", broken_write)
    with pytest.raises(ConfigError, match="No space left"):
        save_config(path, Config(server="http://newer:3", token="other"))
    assert load_config(path) == Config(server="http://new:2", token=TOKEN)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_values_round_trip_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    odd = 'quo"te back\\slash tab\t newline\n é 🙂 \x7f'
    save_config(path, Config(server="http://h:1/base", token=odd))
    assert load_config(path) == Config(server="http://h:1/base", token=odd.strip())
    save_config(path, Config(server="http://h:1"))
    assert path.read_text() == 'server = "http://h:1"\n'


def test_a_missing_config_is_empty_and_a_broken_one_is_a_clear_error(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none.toml") == Config()
    broken = tmp_path / "broken.toml"
    broken.write_text("server = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    broken.write_text("token = 42\n")
    with pytest.raises(ConfigError, match="'token' must be a string"):
        load_config(broken)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    save_config(path, Config(server="http://saved:8000", token="from-config"))
    return path


def test_the_token_comes_from_the_option_then_the_environment_then_the_config(
    config_file: Path,
) -> None:
    env = {"RUNPLANE_TOKEN": "from-env"}
    got = resolve(token="from-option", environ=env, path=config_file)
    assert (got.server, got.token, got.token_source) == (
        "http://saved:8000",
        "from-option",
        "--token",
    )
    got = resolve(environ=env, path=config_file)
    assert (got.token, got.token_source) == ("from-env", "RUNPLANE_TOKEN")
    got = resolve(environ={"RUNPLANE_TOKEN": "  "}, path=config_file)  # blank: unset
    assert (got.token, got.token_source) == ("from-config", str(config_file))
    got = resolve(environ={}, path=config_file.with_name("none.toml"))
    assert (got.server, got.token, got.token_source) == ("http://127.0.0.1:8000", None, None)


def test_the_server_comes_from_the_option_then_the_environment_then_the_config(
    config_file: Path,
) -> None:
    env = {"RUNPLANE_SERVER": "http://env:1"}
    assert resolve(server="http://opt:1", environ=env, path=config_file).server == "http://opt:1"
    assert resolve(environ=env, path=config_file).server == "http://env:1"
    assert resolve(environ={}, path=config_file).server == "http://saved:8000"


def test_the_config_token_is_only_sent_to_the_config_server(config_file: Path) -> None:
    got = resolve(server="http://SAVED:8000/", environ={}, path=config_file)
    assert got.token == "from-config"  # the same server, spelt differently
    got = resolve(server="http://elsewhere:8000", environ={}, path=config_file)
    assert got.token is None
    assert got.note is not None and "is for http://saved:8000" in got.note
    assert "from-config" not in repr(resolve(environ={}, path=config_file))
    # A token saved without a server goes wherever the server points.
    save_config(config_file, Config(token="no-server"))
    assert resolve(server="http://any:1", environ={}, path=config_file).token == "no-server"


def test_the_config_is_not_read_when_options_and_environment_say_everything(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("not toml at all [")
    env = {"RUNPLANE_TOKEN": "t", "RUNPLANE_SERVER": "http://env:1"}
    assert resolve(environ=env, path=broken).token == "t"
    with pytest.raises(ConfigError):
        resolve(environ={"RUNPLANE_TOKEN": "t"}, path=broken)


# -- login, logout, and the token a command sends ---------------------------------


def environments_handler(accept: str | None, seen: list[httpx.Request]) -> Handler:
    """GET /environments: 200 for the `accept` token, else 401 as the server answers it."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("Authorization") == f"Bearer {accept}":
            return httpx.Response(200, json={"items": [{"name": "production"}]})
        problem = {
            "status": 401,
            "code": "invalid_credentials",
            "detail": "The credential is unknown, expired or revoked.",
        }
        return httpx.Response(401, json=problem, headers=PROBLEM_JSON)

    return handler


def configured() -> Path:
    """The config file of the `cli` fixture."""
    return Path(os.environ["RUNPLANE_CONFIG"])


def test_login_reads_one_line_of_stdin_checks_it_and_saves_it(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []
    args = ["login", "--server", "http://runplane.test:8000/", "--json"]
    result = cli(args, environments_handler(TOKEN, seen), input=f"{TOKEN}\nignored\n")
    assert result.exit_code == 0, result.output
    path = configured()
    assert json.loads(result.stdout) == {
        "server": "http://runplane.test:8000",
        "configFile": str(path),
    }
    assert TOKEN not in result.stdout + result.stderr
    [request] = seen
    assert request.url.path == "/api/v1/environments"
    assert load_config(path) == Config(server="http://runplane.test:8000", token=TOKEN)
    assert mode(path) == 0o600

    # The saved server and token serve the next command, with no RUNPLANE_TOKEN.
    def processes(request: httpx.Request) -> httpx.Response:
        assert str(request.url).startswith("http://runplane.test:8000/")
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(200, json={"items": []})

    assert cli(["processes", "list", "--json"], processes).exit_code == 0

    # RUNPLANE_TOKEN goes before the config file.
    monkeypatch.setenv("RUNPLANE_TOKEN", "env-token")

    def with_env_token(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer env-token"
        return httpx.Response(200, json={"items": []})

    assert cli(["processes", "list", "--json"], with_env_token).exit_code == 0


def test_login_refuses_a_token_the_server_rejects_and_saves_nothing(
    cli: Callable[..., Any],
) -> None:
    seen: list[httpx.Request] = []
    handler = environments_handler(TOKEN, seen)
    result = cli(["login", "--server", "http://runplane.test"], handler, input="wrong-token\n")
    assert result.exit_code == 1
    assert "refused the token" in result.stderr
    assert "nothing was saved" in result.stderr
    assert "wrong-token" not in result.output
    assert not configured().exists()

    result = cli(["login", "--server", "http://runplane.test", "--token", "wrong-token"], handler)
    assert result.exit_code == 1
    assert not configured().exists()


def test_login_with_no_token_is_a_usage_error(cli: Callable[..., Any]) -> None:
    result = cli(["login", "--server", "http://runplane.test"], input="")
    assert result.exit_code == 2
    assert "no token given" in result.stderr
    result = cli(["login", "--server", "http://runplane.test"], input="bad\x01token\n")
    assert result.exit_code == 2
    assert not configured().exists()


def test_login_accepts_a_live_token_that_may_not_read_environments(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        problem = {"status": 403, "code": "forbidden", "detail": "This credential needs ..."}
        return httpx.Response(403, json=problem, headers=PROBLEM_JSON)

    result = cli(["login", "--server", "http://runplane.test", "--token", "runtime-only"], handler)
    assert result.exit_code == 0, result.output
    assert load_config(configured()).token == "runtime-only"


def test_login_replaces_the_previous_config_and_logout_keeps_only_the_server(
    cli: Callable[..., Any],
) -> None:
    path = configured()
    save_config(path, Config(server="http://runplane.test", token="old"))
    # No --server: the config file's server is the one logged in to.
    result = cli(["login", "--token", TOKEN], environments_handler(TOKEN, []))
    assert result.exit_code == 0, result.output
    assert load_config(path) == Config(server="http://runplane.test", token=TOKEN)

    result = cli(["logout", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"server": "http://runplane.test", "configFile": str(path)}
    assert load_config(path) == Config(server="http://runplane.test")
    assert mode(path) == 0o600
    assert cli(["logout"]).exit_code == 0  # already logged out: nothing to do


def test_a_401_says_the_credential_was_refused_and_what_to_do(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPLANE_TOKEN", "revoked")
    handler = environments_handler(TOKEN, [])
    result = cli(["executions", "list"], handler)
    assert result.exit_code == 1
    assert (
        "the server refused the credential: The credential is unknown, expired or revoked; "
        "set RUNPLANE_TOKEN or run `runplane login`"
    ) in " ".join(result.stderr.split())
    assert "Traceback" not in result.output

    result = cli(["executions", "list", "--json"], handler)
    problem = json.loads(result.stderr)
    assert (problem["status"], problem["code"]) == (401, "invalid_credentials")
    assert problem["detail"].startswith("the server refused the credential: ")


# -- tokens ---------------------------------------------------------------------------

CREATED = {
    "name": "ci",
    "username": "ci",
    "token": TOKEN,
    "scopes": ["executions:read", "executions:start"],
    "environments": ["sandbox"],
    "expiresAt": "2025-01-03T10:00:00.000Z",
    "createdAt": "2025-01-02T10:00:00.000Z",
}


def test_tokens_create_sends_every_scope_and_environment(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/api/v1/tokens")
        assert json.loads(request.content) == {
            "name": "ci",
            "scopes": ["executions:read", "executions:start"],
            "environments": ["sandbox", "staging"],
            "expiresIn": 86400,
        }
        return httpx.Response(201, json=CREATED)

    args = ["tokens", "create", "ci", "--scope", "executions:read", "--scope", "executions:start"]
    args += ["--environment", "sandbox", "-e", "staging", "--expires-in", "86400"]
    result = cli([*args, "--json"], handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == CREATED
    assert result.stderr == ""

    result = cli(args, handler)
    assert result.exit_code == 0, result.output
    assert result.stdout == TOKEN + "\n"  # the token alone: TOKEN=$(runplane tokens create ...)
    assert "shown only now" in result.stderr
    assert TOKEN not in result.stderr


def test_tokens_create_needs_a_scope(cli: Callable[..., Any]) -> None:
    result = cli(["tokens", "create", "ci"])
    assert result.exit_code == 2
    assert "--scope" in result.output


def test_tokens_list_never_prints_a_secret(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [CREATED]})  # even if a server sent one

    result = cli(["tokens", "list", "--json"], handler)
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)["items"]
    assert "token" not in item
    assert item["name"] == "ci"
    result = cli(["tokens", "list"], handler)
    assert result.exit_code == 0, result.output
    assert "ci" in result.stdout
    assert TOKEN not in result.output


def test_tokens_rotate_prints_the_new_token_and_delete_confirms(cli: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            assert request.url.raw_path == b"/api/v1/tokens/ci%2F1"
            return httpx.Response(204)
        assert request.url.raw_path == b"/api/v1/tokens/ci%2F1/rotate"
        return httpx.Response(200, json=CREATED)

    result = cli(["tokens", "rotate", "ci/1"], handler)
    assert result.exit_code == 0, result.output
    assert result.stdout == TOKEN + "\n"
    assert json.loads(cli(["tokens", "rotate", "ci/1", "--json"], handler).stdout) == CREATED
    result = cli(["tokens", "delete", "ci/1", "--json"], handler)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "ci/1", "deleted": True}
