"""`runplane tokens ...`: create, list, rotate and delete API tokens (admin scope).

A token's secret appears once, in the answer to `create` or `rotate`: on stdout
alone (so `TOKEN=$(runplane tokens create ...)` captures exactly it), with the
"shown only now" note on stderr. `list` never shows a secret.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import emit_json, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect
from runplane.client.models import ApiToken

SCOPES = ("executions:start", "executions:read", "processes:write", "runtime", "admin")

app = typer.Typer(
    help="Create, list, rotate and delete API tokens (needs the admin scope).",
    no_args_is_help=True,
)

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The token's name (its Basic auth username).")
]


@app.command("create")
def create(
    name: NameArgument,
    scopes: Annotated[
        list[str],
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help=f"A scope; repeat for several ({', '.join(SCOPES)}).",
            show_default=False,
        ),
    ],
    environments: Annotated[
        list[str] | None,
        typer.Option(
            "--environment",
            "-e",
            metavar="ENV",
            help="Only this environment; repeat for several. None named: every environment.",
        ),
    ] = None,
    expires_in: Annotated[
        int | None,
        typer.Option(
            "--expires-in",
            min=1,
            metavar="SECONDS",
            help="Expire after this many seconds. Default: never.",
        ),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create an API token and print it: the only time it is ever shown.

    With --json: {"name", "username", "token", "scopes", "environments", "expiresAt",
    "createdAt"}.
    """
    with connect(server, json_mode=json_output) as client:
        created = client.create_token(
            name, scopes, environments=environments or None, expires_in_seconds=expires_in
        )
    _print_secret(created, "Created", json_output)


@app.command("list")
def list_tokens(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the live API tokens, never their secrets (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        # The server never sends a secret here; make sure none is ever printed anyway.
        items = [_without_secret(item) for item in client.list_tokens()]
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No API tokens. Create one with: runplane tokens create NAME --scope SCOPE")
        return
    rows = table("name", "scopes", "environments", "expires", "created")
    for item in items:
        rows.add_row(
            Text(item["name"]),
            Text(", ".join(item["scopes"])),
            Text(", ".join(item.get("environments") or []) or "all"),
            timestamp(item.get("expiresAt")) if item.get("expiresAt") else "never",
            timestamp(item.get("createdAt")),
        )
    print_table(rows)


@app.command("rotate")
def rotate(
    name: NameArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Give a token a new secret and print it; the old one stops working at once."""
    with connect(server, json_mode=json_output) as client:
        rotated = client.rotate_token(name)
    _print_secret(rotated, "Rotated", json_output)


@app.command("delete")
def delete(
    name: NameArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a token: it stops working at once (with --json: {"name", "deleted"})."""
    with connect(server, json_mode=json_output) as client:
        client.delete_token(name)
    if json_output:
        emit_json({"name": name, "deleted": True})
    else:
        out.print(Text.assemble("Deleted token ", (name, "bold"), "."))


def _print_secret(doc: ApiToken, verb: str, json_output: bool) -> None:
    """The secret alone on stdout (or the whole document with --json); the note on stderr."""
    if json_output:
        emit_json(doc)
        return
    sys.stdout.write(doc["token"] + "\n")
    sys.stdout.flush()
    expires = timestamp(doc["expiresAt"]) if doc.get("expiresAt") else "never"
    err.print(
        Text.assemble(
            f"{verb} token ",
            (doc["name"], "bold"),
            f": scopes {', '.join(doc['scopes'])}; {_environments(doc)}; expires {expires}.\n",
            ("The token above is shown only now: store it safely. ", "bold yellow"),
            "It cannot be shown again; if it is lost, rotate it.\n",
            f"Use it as RUNPLANE_TOKEN, as `Authorization: Bearer <token>`, or with Basic "
            f"auth as username {doc['username']!r} and the token as password.",
        )
    )


def _environments(doc: ApiToken) -> str:
    envs = doc.get("environments")
    return "every environment" if not envs else "environments " + ", ".join(envs)


def _without_secret(item: ApiToken) -> ApiToken:
    item.pop("token", None)
    return item
