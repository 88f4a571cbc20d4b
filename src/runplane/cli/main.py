"""The `runplane` command: wires the sub-commands together.

```
runplane serve                      the server, with an embedded runtime
runplane runtime --environment ENV  a remote runtime: pulls work over HTTP
runplane runtimes list              registered runtimes, their state and heartbeat
runplane deploy FOLDER              publish and deploy a process
runplane run PROCESS                start it (and --wait for the result)
runplane processes list|show
runplane executions list|show|logs|cancel
runplane login|logout               save a server and its token (or forget the token)
runplane tokens create|list|rotate|delete         API tokens
runplane apps create|list|rotate|delete           OAuth2 client-credentials apps
runplane secrets generate|rotate|delete|list      process secrets
runplane users create|list|disable|passwd         users of the web console, roles
runplane workspaces create|list                   tenants, each with its admin token
runplane environments create|list
```

Client commands find their server in --server, RUNPLANE_SERVER, the config file, or
http://127.0.0.1:8000, and their token in RUNPLANE_TOKEN or the config file.
"""

from __future__ import annotations

from typing import Annotated

import typer

from runplane import __version__
from runplane.cli import (
    apps,
    executions,
    process_secrets,
    processes,
    schedules,
    tokens,
    users,
    workspaces,
)
from runplane.cli.deploy import deploy
from runplane.cli.login import login, logout
from runplane.cli.run import run
from runplane.cli.runtime import runtime, runtimes_app
from runplane.cli.serve import serve

app = typer.Typer(
    name="runplane",
    help="Start automation processes over HTTP and track them to a result.",
    no_args_is_help=True,
    add_completion=False,
    # Never print local variables (a token may be one) in a traceback.
    pretty_exceptions_show_locals=False,
)
app.command()(serve)
app.command()(runtime)
app.add_typer(runtimes_app, name="runtimes")
app.command()(deploy)
app.command()(run)
app.add_typer(processes.app, name="processes")
app.add_typer(executions.app, name="executions")
app.command()(login)
app.command()(logout)
app.add_typer(tokens.app, name="tokens")
app.add_typer(apps.app, name="apps")
app.add_typer(process_secrets.app, name="secrets")
app.add_typer(schedules.app, name="schedules")
app.add_typer(users.app, name="users")
app.add_typer(workspaces.workspaces_app, name="workspaces")
app.add_typer(workspaces.environments_app, name="environments")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"runplane {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Start automation processes over HTTP and track them to a result."""


if __name__ == "__main__":
    app()
