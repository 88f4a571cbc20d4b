"""What every client command shares: `--server`, `--json`, and one error boundary.

`connect()` opens a `Client` and turns every failure into a message on stderr
and an exit code, so no command shows a traceback for an expected error:
0 success, 1 the request failed (or the execution did), 2 bad usage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from runplane.cli.output import print_error
from runplane.client import Client, ClientError
from runplane.domain.errors import RunplaneError

TOKEN_ENV = "RUNPLANE_TOKEN"  # noqa: S105 - the name of an environment variable
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

ServerOption = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="RUNPLANE_SERVER",
        help="Base URL of the runplane server.",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print exactly one JSON document on stdout and nothing else."),
]


@contextmanager
def reporting_errors(*, json_mode: bool) -> Iterator[None]:
    """Print a domain or client error on stderr and exit 1."""
    try:
        yield
    except RunplaneError as exc:
        print_error(exc.detail, exc.problems, code=exc.code, status=exc.status, json_mode=json_mode)
        raise typer.Exit(EXIT_FAILED) from None
    except ClientError as exc:
        print_error(exc.message, [], code=exc.code, status=None, json_mode=json_mode)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextmanager
def connect(server: str, *, json_mode: bool) -> Iterator[Client]:
    """A client for `server` (bearer token from $RUNPLANE_TOKEN), inside the error boundary."""
    with reporting_errors(json_mode=json_mode):
        client = Client(server, token=os.environ.get(TOKEN_ENV) or None)
        with client:
            yield client
