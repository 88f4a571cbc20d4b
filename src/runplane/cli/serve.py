"""`runplane serve`: the API with an embedded runtime, in one command.

Only the options given on the command line are passed to `Settings`, so
RUNPLANE_* environment variables still apply to everything else. The server
is imported lazily: `runplane --help` and the client commands stay fast.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from runplane.cli.output import err
from runplane.cli.runtime import Launcher

EXIT_USAGE = 2


class LogLevel(StrEnum):
    """Server log levels (uvicorn's names)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (0.0.0.0 for every interface).",
            show_default="127.0.0.1",
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on.", show_default="8000")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="RUNPLANE_DATA_DIR",
            file_okay=False,
            help="Directory for the SQLite database and bundles.",
            show_default="~/.local/share/runplane",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="RUNPLANE_DATABASE_URL",
            help="Database URL (postgresql://...); default: SQLite in the data directory.",
        ),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Executions the embedded runtime runs at once; 0 = API only.",
            show_default="number of cores",
        ),
    ] = None,
    no_demo: Annotated[
        bool, typer.Option("--no-demo", help="Do not deploy the demo `hello` process.")
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            case_sensitive=False,
            help="Server log level.",
            show_default="info",
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log one line per request (credentials in query strings redacted).",
        ),
    ] = False,
    launcher: Annotated[
        Launcher | None,
        typer.Option(
            case_sensitive=False,
            help="How the embedded runtime starts executions: warm (forked from a fork "
            "server started once) or spawn (a fresh interpreter each).",
            show_default="warm",
        ),
    ] = None,
) -> None:
    """Run the runplane server with an embedded runtime."""
    from pydantic import ValidationError

    from runplane.settings import Settings

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "database_url": database_url,
        "slots": slots,
        "log_level": log_level.value if log_level else None,
        "demo": False if no_demo else None,
        "access_log": True if access_log else None,
        "launcher": launcher.value if launcher else None,
    }
    given = {name: value for name, value in options.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            err.print(f"Error: setting {where}: {problem['msg']}", style="red", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    if not is_loopback(settings.host):
        err.print(
            f"Note: listening on {settings.host}, beyond this machine. Every API route needs "
            "a credential; the server speaks plain HTTP, so put TLS in front of it "
            "(a reverse proxy) before credentials cross a network.",
            markup=False,
        )

    from runplane import server

    server.run(settings)
