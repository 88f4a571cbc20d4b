"""What every client command shares: `--server`, `--json`, and one error boundary.

`connect()` resolves the server and credential (`runplane.client.config`: options,
then RUNPLANE_SERVER / RUNPLANE_TOKEN, then the config file `runplane login`
writes), opens a `Client`, and turns every failure into a message on stderr and
an exit code, so no command shows a traceback for an expected error:
0 success, 1 the request failed (or the execution did), 2 bad usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from runplane.cli.output import err, print_error
from runplane.client import Client, ClientError, ConfigError, Resolved, resolve
from runplane.client.config import TOKEN_ENV, TOKEN_OPTION, config_path, others_can_read
from runplane.domain.errors import RunplaneError, Unauthenticated

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "TOKEN_ENV",
    "JsonOption",
    "ServerOption",
    "connect",
    "new_client",
    "refused_message",
    "reporting_errors",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        help="Base URL of the runplane server.",
        show_default="$RUNPLANE_SERVER, else the config file's, else http://127.0.0.1:8000",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print exactly one JSON document on stdout and nothing else."),
]


def new_client(server: str, token: str | None = None) -> Client:
    """A `Client` (the seam tests swap for one over a mock transport)."""
    return Client(server, token=token)


def refused_message(exc: RunplaneError, note: str | None = None) -> str:
    """The one message for a 401: what the server said, and what to do about it."""
    message = (
        f"the server refused the credential: {exc.detail.rstrip('.')}; "
        "set RUNPLANE_TOKEN or run `runplane login`"
    )
    return f"{message} ({note})" if note else message


@contextmanager
def reporting_errors(*, json_mode: bool, note: str | None = None) -> Iterator[None]:
    """Print a domain, client or config error on stderr and exit 1."""
    try:
        yield
    except Unauthenticated as exc:
        print_error(
            refused_message(exc, note), [], code=exc.code, status=exc.status, json_mode=json_mode
        )
        raise typer.Exit(EXIT_FAILED) from None
    except RunplaneError as exc:
        print_error(exc.detail, exc.problems, code=exc.code, status=exc.status, json_mode=json_mode)
        raise typer.Exit(EXIT_FAILED) from None
    except (ClientError, ConfigError) as exc:
        print_error(exc.message, [], code=exc.code, status=None, json_mode=json_mode)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def warn_if_exposed(resolved: Resolved, *, json_mode: bool) -> None:
    """A token read from a file others may read: say so (like ssh does), but go on."""
    source = resolved.token_source
    if json_mode or source is None or source in (TOKEN_OPTION, TOKEN_ENV):
        return
    if others_can_read(Path(source)):
        err.print(
            f"Warning: {source} holds a token and others can read it: chmod 600 {source}",
            style="yellow",
            markup=False,
        )


@contextmanager
def connect(server: str | None, *, json_mode: bool) -> Iterator[Client]:
    """A client of the resolved server with the resolved token, inside the error boundary."""
    with reporting_errors(json_mode=json_mode):
        resolved = resolve(server=server)
    warn_if_exposed(resolved, json_mode=json_mode)
    note = resolved.note
    if resolved.token is None and note is None:
        note = f"no token was sent: none in {TOKEN_ENV} or {config_path()}"
    with (
        reporting_errors(json_mode=json_mode, note=note),
        new_client(resolved.server, resolved.token) as client,
    ):
        yield client
