"""`runplane secrets ...`: generate, rotate, delete and list process secrets (admin).

A process secret starts one process and reads its executions, nothing else; it is
sent as the `Runplane-Process-Secret` header or the `process-secret` query parameter.
It appears once, in the answer to `generate` or `rotate`: on stdout alone (so
`SECRET=$(runplane secrets generate PROCESS)` captures exactly it), with the "shown
only now" note on stderr. `list` never shows a secret.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import emit_json, emit_secret, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect
from runplane.client.models import ProcessSecret

app = typer.Typer(
    help="Generate, rotate, delete and list process secrets (needs the admin scope).",
    no_args_is_help=True,
)

ProcessArgument = Annotated[
    str, typer.Argument(metavar="PROCESS", help="The process the secret starts.")
]


@app.command("generate")
def generate(
    process: ProcessArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the process's secret and print it: the only time it is ever shown.

    A process has one secret: to replace it, rotate it. With --json: {"process",
    "secret", "createdAt"}.
    """
    with connect(server, json_mode=json_output) as client:
        created = client.generate_process_secret(process)
    _print_secret(created, "Created", json_output)


@app.command("rotate")
def rotate(
    process: ProcessArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Give the process a new secret and print it; the old one stops working at once."""
    with connect(server, json_mode=json_output) as client:
        rotated = client.rotate_process_secret(process)
    _print_secret(rotated, "Rotated", json_output)


@app.command("delete")
def delete(
    process: ProcessArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke the process's secret at once (with --json: {"process", "deleted"})."""
    with connect(server, json_mode=json_output) as client:
        client.delete_process_secret(process)
    if json_output:
        emit_json({"process": process, "deleted": True})
    else:
        out.print(Text.assemble("Deleted the secret of process ", (process, "bold"), "."))


@app.command("list")
def list_secrets(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the processes that have a secret, never the secrets (--json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        # The server never sends a secret here; make sure none is ever printed anyway.
        items = [_without_secret(item) for item in client.list_process_secrets()]
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No process secrets. Create one with: runplane secrets generate PROCESS")
        return
    rows = table("process", "created")
    for item in items:
        rows.add_row(Text(item["process"]), timestamp(item.get("createdAt")))
    print_table(rows)


def _print_secret(doc: ProcessSecret, verb: str, json_output: bool) -> None:
    """The secret alone on stdout (or the whole document with --json); the note on stderr."""
    if json_output:
        emit_json(doc)
        return
    emit_secret(
        doc["secret"],
        Text.assemble(
            f"{verb} the secret of process ",
            (doc["process"], "bold"),
            ".\n",
            ("The secret above is shown only now: store it safely. ", "bold yellow"),
            "It cannot be shown again; if it is lost, rotate it.\n",
            "It starts this process and reads its executions, nothing else: send it as the "
            "Runplane-Process-Secret header or the process-secret query parameter.",
        ),
    )


def _without_secret(item: ProcessSecret) -> ProcessSecret:
    item.pop("secret", None)
    return item
