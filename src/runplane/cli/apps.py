"""`runplane apps ...`: create, list, rotate and delete OAuth2 client-credentials apps.

An app gets access tokens from `POST /oauth2/token` with its client id and client
secret. The client secret appears once, in the answer to `create` or `rotate`: on
stdout alone (so `SECRET=$(runplane apps create ...)` captures exactly it), with the
client id and the "shown only now" note on stderr; `--json` prints the whole app,
`clientId` and `clientSecret` included. `list` never shows a secret.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import emit_json, emit_secret, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect
from runplane.cli.tokens import SCOPES
from runplane.client.models import OAuthApp

app = typer.Typer(
    help="Create, list, rotate and delete OAuth2 client-credentials apps (needs admin).",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The app's name.")]


@app.command("create")
def create(
    name: NameArgument,
    scopes: Annotated[
        list[str],
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help=f"A scope its tokens may have; repeat for several ({', '.join(SCOPES)}).",
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
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create an app and print its client secret: the only time it is ever shown.

    Without --json: the client secret alone on stdout, the client id on stderr.
    With --json: {"name", "clientId", "clientSecret", "scopes", "environments", "createdAt"}.
    """
    with connect(server, json_mode=json_output) as client:
        created = client.create_app(name, scopes, environments=environments or None)
    _print_secret(created, "Created", json_output)


@app.command("list")
def list_apps(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the live apps, never their secrets (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        # The server never sends a secret here; make sure none is ever printed anyway.
        items = [_without_secret(item) for item in client.list_apps()]
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No apps. Create one with: runplane apps create NAME --scope SCOPE")
        return
    rows = table("name", "client id", "scopes", "environments", "created")
    for item in items:
        rows.add_row(
            Text(item["name"]),
            Text(item["clientId"]),
            Text(", ".join(item["scopes"])),
            Text(", ".join(item.get("environments") or []) or "all"),
            timestamp(item.get("createdAt")),
        )
    print_table(rows)


@app.command("rotate")
def rotate(
    name: NameArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Give an app a new client secret and print it; the old one and its tokens stop at once."""
    with connect(server, json_mode=json_output) as client:
        rotated = client.rotate_app(name)
    _print_secret(rotated, "Rotated", json_output)


@app.command("delete")
def delete(
    name: NameArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete an app; its access tokens stop working at once (--json: {"name", "deleted"})."""
    with connect(server, json_mode=json_output) as client:
        client.delete_app(name)
    if json_output:
        emit_json({"name": name, "deleted": True})
    else:
        out.print(Text.assemble("Deleted app ", (name, "bold"), "."))


def _print_secret(doc: OAuthApp, verb: str, json_output: bool) -> None:
    """The client secret alone on stdout (or the whole app with --json); the rest on stderr."""
    if json_output:
        emit_json(doc)
        return
    envs = doc.get("environments")
    where = "every environment" if not envs else "environments " + ", ".join(envs)
    emit_secret(
        doc["clientSecret"],
        Text.assemble(
            f"{verb} app ",
            (doc["name"], "bold"),
            f": scopes {', '.join(doc['scopes'])}; {where}.\n",
            "Client id: ",
            (doc["clientId"], "bold"),
            "\n",
            ("The client secret above is shown only now: store it safely. ", "bold yellow"),
            "It cannot be shown again; if it is lost, rotate it.\n",
            "Get an access token with POST /oauth2/token, grant_type=client_credentials, "
            "and the client id and secret as HTTP Basic credentials.",
        ),
    )


def _without_secret(item: OAuthApp) -> OAuthApp:
    item.pop("clientSecret", None)
    return item
