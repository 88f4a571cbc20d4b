"""`runplane users ...`: create, list and disable users of the web console, set their
passwords (needs a full admin's token).

A password is never an argument (other local users could read it): `create`
without --password-stdin lets the server generate one and prints it once, on
stdout alone (so `PW=$(runplane users create ...)` captures exactly it), with
the "shown only now" note on stderr; `passwd` asks twice without echo, or reads
one line of stdin with --password-stdin.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from runplane.cli.output import (
    emit_json,
    emit_secret,
    err,
    out,
    print_error,
    print_table,
    table,
    timestamp,
)
from runplane.cli.session import EXIT_USAGE, JsonOption, ServerOption, connect

ROLES = ("admin", "operator", "viewer")

app = typer.Typer(
    help="Create, list and disable users of the web console (needs an admin token).",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


@app.command("create")
def create(
    name: NameArgument,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            metavar="ROLE",
            help=f"The user's role: {', '.join(ROLES)}.",
            show_default=False,
        ),
    ],
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            metavar="NAME",
            help="The workspace of the role. Default: your token's (another one: the admin "
            "of workspace 'default' only).",
        ),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a user with a role and print its generated password, shown only now.

    A user that exists gets the role in the workspace instead. With --json: {"name",
    "role", "workspace", "createdAt", "disabled", "lastSignInAt", "password" (when
    generated)}.
    """
    password = _stdin_password(json_output) if password_stdin else None
    with connect(server, json_mode=json_output) as client:
        user = client.create_user(name, role, workspace=workspace, password=password)
    if json_output:
        emit_json(user)
        return
    where = f"role {user['role']} in workspace {user['workspace']}"
    if "password" not in user:
        verb = "Created" if password is not None else "Updated"
        out.print(Text.assemble(f"{verb} user ", (user["name"], "bold"), f": {where}."))
        return
    emit_secret(
        user["password"],
        Text.assemble(
            "Created user ",
            (user["name"], "bold"),
            f": {where}.\n",
            ("The password above is shown only now: hand it over safely. ", "bold yellow"),
            f"Set another with: runplane users passwd {user['name']}",
        ),
    )


@app.command("list")
def list_users(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the users of your token's workspace (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_users()
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No users. Create one with: runplane users create NAME --role ROLE")
        return
    rows = table("name", "role", "state", "last sign-in", "created")
    for item in items:
        rows.add_row(
            Text(item["name"]),
            item["role"],
            Text("disabled", "red") if item["disabled"] else Text("active"),
            timestamp(item.get("lastSignInAt")) if item.get("lastSignInAt") else "never",
            timestamp(item.get("createdAt")),
        )
    print_table(rows)


@app.command("disable")
def disable(
    name: NameArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Disable a user: it can no longer sign in, and its sessions end at once."""
    with connect(server, json_mode=json_output) as client:
        user = client.disable_user(name)
    if json_output:
        emit_json(user)
    else:
        out.print(Text.assemble("Disabled user ", (name, "bold"), "; its sessions have ended."))


@app.command("passwd")
def passwd(
    name: NameArgument,
    password_stdin: PasswordStdinOption = False,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set a user's password (asked twice, not echoed); its sessions end.

    With --json: {"name", "passwordChanged"}.
    """
    if password_stdin:
        password = _stdin_password(json_output)
    elif sys.stdin is not None and sys.stdin.isatty():
        password = _prompt_password(name)
    else:
        _usage_error("no terminal to ask for the password: use --password-stdin", json_output)
    with connect(server, json_mode=json_output) as client:
        client.set_user_password(name, password)
    if json_output:
        emit_json({"name": name, "passwordChanged": True})
    else:
        out.print(Text.assemble("Set the password of ", (name, "bold"), "; its sessions ended."))


def _prompt_password(name: str) -> str:
    try:
        # Prompts go to stderr: with --json, stdout carries the answer only.
        return str(
            typer.prompt(
                f"New password for {name}",
                hide_input=True,
                confirmation_prompt="Repeat it",
                err=True,
            )
        )
    except (EOFError, typer.Abort):
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _stdin_password(json_mode: bool) -> str:
    """The first line of stdin, without its line break (spaces belong to the password)."""
    try:
        line = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, UnicodeDecodeError) as exc:
        _usage_error(f"cannot read the password from stdin: {exc}", json_mode)
    password = line.rstrip("\r\n")
    if not password:
        _usage_error("--password-stdin: standard input holds no password", json_mode)
    return password


def _usage_error(message: str, json_mode: bool) -> NoReturn:
    print_error(message, [], code="usage", status=None, json_mode=json_mode)
    raise typer.Exit(EXIT_USAGE)
