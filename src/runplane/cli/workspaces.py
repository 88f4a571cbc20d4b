"""`runplane workspaces ...` and `runplane environments ...`.

A workspace is a tenant: its processes, executions, credentials and environments
are invisible from any other. Creating one (the installation admin's token only)
answers its admin token once: on stdout alone (so `TOKEN=$(runplane workspaces
create NAME)` captures exactly it), with the "shown only now" note on stderr.
Environments belong to the workspace of the token that creates or lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import emit_json, emit_secret, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect

workspaces_app = typer.Typer(
    help="Create and list workspaces (creating needs the installation admin's token).",
    no_args_is_help=True,
)
environments_app = typer.Typer(
    help="Create and list the environments of your token's workspace.",
    no_args_is_help=True,
)


@workspaces_app.command("create")
def create_workspace(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The workspace's name.")],
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a workspace and print its admin token: the only time it is ever shown.

    With --json: {"name", "environments", "createdAt", "adminToken"}.
    """
    with connect(server, json_mode=json_output) as client:
        created = client.create_workspace(name)
    if json_output:
        emit_json(created)
        return
    emit_secret(
        created["adminToken"],
        Text.assemble(
            "Created workspace ",
            (created["name"], "bold"),
            f" with environments {', '.join(created['environments']) or 'none'}.\n",
            ("The admin token above is shown only now: store it safely. ", "bold yellow"),
            "It cannot be shown again.\n",
            "It administers this workspace only: use it as RUNPLANE_TOKEN or with "
            "`runplane login` to deploy, create tokens and apps, and so on.",
        ),
    )


@workspaces_app.command("list")
def list_workspaces(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the workspaces you may see (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_workspaces()
    if json_output:
        emit_json({"items": items})
        return
    rows = table("name", "created")
    for item in items:
        rows.add_row(Text(item["name"]), timestamp(item.get("createdAt")))
    print_table(rows)


@environments_app.command("create")
def create_environment(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The environment's name.")],
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create an environment in your token's workspace (with --json: {"name", "createdAt"})."""
    with connect(server, json_mode=json_output) as client:
        created = client.create_environment(name)
    if json_output:
        emit_json(created)
    else:
        out.print(Text.assemble("Created environment ", (created["name"], "bold"), "."))


@environments_app.command("list")
def list_environments(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the environments of your token's workspace (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_environments()
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No environments. Create one with: runplane environments create NAME")
        return
    rows = table("name", "created")
    for item in items:
        rows.add_row(Text(item["name"]), timestamp(item.get("createdAt")))
    print_table(rows)
