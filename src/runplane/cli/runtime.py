"""`runplane runtime`: a runtime on any machine that reaches the server over HTTP(S).

It needs no database access: a runtime token (`runplane tokens create NAME --scope
runtime --environment production`) and the server's URL are enough.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from runplane.cli.output import emit_json, err, print_table, table, timestamp
from runplane.cli.session import (
    EXIT_FAILED,
    EXIT_USAGE,
    JsonOption,
    ServerOption,
    connect,
    reporting_errors,
)

RUNTIME_MODULE = "runplane.runtime.main"
PIPE_CAPACITY_BYTES = 65536  # what Linux guarantees a pipe holds unread


class Launcher(StrEnum):
    """How a runtime starts executions (RUNPLANE_LAUNCHER)."""

    WARM = "warm"
    SPAWN = "spawn"


runtimes_app = typer.Typer(
    help="List the runtimes registered in your token's workspace.", no_args_is_help=True
)


def _labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, eq, val = value.partition("=")
        if not eq or not key.strip():
            err.print(f"Error: --label {value!r}: expected key=value", style="red", markup=False)
            raise typer.Exit(EXIT_USAGE)
        labels[key.strip()] = val.strip()
    return labels


def runtime(
    environment: Annotated[
        str,
        typer.Option(
            envvar="RUNPLANE_ENVIRONMENT",
            help="The environment this runtime serves (its token must be for it).",
        ),
    ],
    server: ServerOption = None,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            help="A runtime token of that environment.",
            show_default="$RUNPLANE_TOKEN, else the config file's",
        ),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Executions run at once.", show_default="cores"),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="A label shown in the runtimes list; repeatable."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Name of this runtime; restarted under the same name, it takes over "
            "its registration.",
            show_default="the host name",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Directory for bundles and working directories.",
            show_default="~/.local/share/runplane/runtime",
        ),
    ] = None,
    drain_timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, how long running executions may finish before they "
            "are killed and handed back.",
            show_default="$RUNPLANE_DRAIN_TIMEOUT_SECONDS, else 10 s",
        ),
    ] = None,
    launcher: Annotated[
        Launcher | None,
        typer.Option(
            case_sensitive=False,
            help="How executions start: warm (forked from a fork server started once) or "
            "spawn (a fresh interpreter each).",
            show_default="$RUNPLANE_LAUNCHER, else warm",
        ),
    ] = None,
    prepare: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PROCESS",
            help="Before taking work, build the environments of these processes' deployed "
            "versions (their declared dependencies); repeatable, or comma-separated.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run a runtime that pulls work from a runplane server over HTTP."""
    from runplane.client import resolve
    from runplane.settings import Settings, default_data_dir

    labels = _labels(label or [])
    with reporting_errors(json_mode=False):
        resolved = resolve(server=server, token=token)
        if resolved.token is None:
            err.print("Error: a runtime needs a token: --token or RUNPLANE_TOKEN", style="red")
            raise typer.Exit(EXIT_USAGE)
        settings = Settings()
    config = {
        "server": resolved.server,
        "token": resolved.token,
        "labels": labels,
        "name": name or socket.gethostname(),
        "environment": environment,
        "slots": slots or os.cpu_count() or 1,
        "data_dir": str(data_dir or default_data_dir() / "runtime"),
        "drain_timeout_seconds": (
            settings.drain_timeout_seconds if drain_timeout is None else drain_timeout
        ),
        "launcher": launcher.value if launcher else settings.launcher,
        "preload_max": settings.preload_max,
        "preload_idle_seconds": settings.preload_idle_seconds,
        "environments_max": settings.environments_max,
        "prepare": [n.strip() for v in prepare or [] for n in v.split(",") if n.strip()],
        "log_level": log_level,
    }
    _become_runtime(config)


def _become_runtime(config: dict[str, object]) -> NoReturn:
    """Replace this process (same pid) by the lean runtime process, runtime/main.py.

    The configuration goes through a pipe, so the token is never on a command line.
    """
    import json
    import sys

    data = json.dumps(config).encode()
    if len(data) >= PIPE_CAPACITY_BYTES:
        err.print("Error: the runtime's options are too long (labels?)", style="red")
        raise typer.Exit(EXIT_USAGE)
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as stream:  # fits: written before anyone reads
            stream.write(data)
        os.set_inheritable(read_end, True)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(  # noqa: S606 - the same program, leaner: no shell, no user input
            sys.executable,
            [sys.executable, "-m", RUNTIME_MODULE, "--config-fd", str(read_end)],
        )
    except OSError as exc:
        err.print(f"Error: cannot start the runtime: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        os.close(read_end)  # reached only if exec failed


@runtimes_app.command("list")
def list_runtimes(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List runtimes with their state and last heartbeat (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_runtimes()
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No runtimes. Start one with: runplane runtime --environment ENV")
        return
    rows = table("name", "environment", "state", "slots", "last heartbeat", "version", "labels")
    for item in items:
        rows.add_row(
            Text(item["name"]),
            Text(item["environment"] or "(every)"),
            Text(item["state"]),
            str(item["slots"]),
            timestamp(item["lastHeartbeatAt"]),
            Text(item["version"]),
            Text(",".join(f"{k}={v}" for k, v in sorted(item["labels"].items()))),
        )
    print_table(rows)
