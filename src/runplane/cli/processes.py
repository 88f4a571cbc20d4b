"""`runplane processes ...`: what is published, and what each version expects."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import compact, emit_json, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect

app = typer.Typer(help="List and inspect processes.", no_args_is_help=True)


@app.command("list")
def list_processes(
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List every process with its newest version (with --json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_processes()
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No processes yet. Publish one with: runplane deploy FOLDER")
        return
    rows = table("name", "latest version", "created")
    for item in items:
        latest = item.get("latestVersion")
        rows.add_row(
            Text(item["name"]), "-" if latest is None else str(latest), timestamp(item["createdAt"])
        )
    print_table(rows)


@app.command("show")
def show(
    process: Annotated[str, typer.Argument(metavar="PROCESS", help="Name of the process.")],
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a process: its deployments and the parameters of its newest version."""
    with connect(server, json_mode=json_output) as client:
        detail = client.get_process(process)
    if json_output:
        emit_json(detail)
        return
    out.print(Text(detail["name"], "bold"), f"(created {timestamp(detail['createdAt'])})")
    deployments = table("environment", "version", "invokable", "concurrency", "inputs")
    for d in detail["deployments"]:
        limit = d.get("concurrencyLimit")
        deployments.add_row(
            Text(d["environment"]),
            str(d["version"]),
            "yes" if d["invokable"] else "no",
            "unlimited" if limit is None else str(limit),
            Text(compact(d.get("inputArguments", {}))),
        )
    if detail["deployments"]:
        print_table(deployments)
    else:
        out.print(Text("Not deployed.", "yellow"))
    if not detail["versions"]:
        return
    newest = max(detail["versions"], key=lambda v: v["version"])
    out.print(Text(f"\nParameters of version {newest['version']}:", "bold"))
    params = table("name", "type", "required", "default", "description")
    for p in newest["parameters"]:
        params.add_row(
            Text(p["name"]),
            p["type"],
            "yes" if p["required"] else "no",
            Text(compact(p["default"]) if "default" in p else "-"),
            Text(p.get("description", "")),
        )
    print_table(params)
