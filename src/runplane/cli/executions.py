"""`runplane executions ...`: list, show, follow the logs of, and cancel executions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.output import (
    duration,
    emit_json,
    err,
    execution_details,
    out,
    print_error,
    print_table,
    status_text,
    table,
    timestamp,
)
from runplane.cli.session import EXIT_FAILED, JsonOption, ServerOption, connect
from runplane.client import TERMINAL_STATUSES

app = typer.Typer(help="List, inspect, follow and cancel executions.", no_args_is_help=True)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The execution's server id.")]
STATUSES = ("queued", "running", "succeeded", "failed", "timed_out", "cancelled")


def _check_statuses(values: list[str] | None) -> list[str]:
    for value in values or []:
        if value not in STATUSES:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(STATUSES)}")
    return values or []


@app.command("list")
def list_executions(
    process: Annotated[
        str | None, typer.Option("--process", "-p", help="Only this process.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help=f"Only this status; repeat for several ({', '.join(STATUSES)}).",
            callback=_check_statuses,
        ),
    ] = None,
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only created at or after this ISO 8601 time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only created before this ISO 8601 time.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    cursor: Annotated[
        str | None, typer.Option(help="Continue from a previous page's next cursor.")
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List executions, newest first."""
    with connect(server, json_mode=json_output) as client:
        page = client.list_executions(
            process=process,
            status=status,
            environment=environment,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    if json_output:
        emit_json(page)
        return
    rows = table("id", "process", "env", "status", "created", "duration")
    for item in page["items"]:
        rows.add_row(
            Text(item["id"]),
            Text(f"{item['process']} v{item['version']}"),
            Text(item["environment"]),
            status_text(item["status"]),
            timestamp(item["createdAt"]),
            duration(item.get("durationMs")),
        )
    if page["items"]:
        print_table(rows)
    else:
        err.print("No executions.")
    if page.get("nextCursor"):
        err.print(f"More: --cursor {page['nextCursor']}", style="dim")


@app.command("show")
def show(
    execution: IdArgument,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait", min=0, metavar="SECONDS", help="Wait up to this long for it to finish."
        ),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one execution."""
    with connect(server, json_mode=json_output) as client:
        if wait is None:
            record = client.get_execution(execution)
        else:
            record = client.wait_for_execution(execution, timeout=wait)
    if json_output:
        emit_json(record)
    else:
        out.print(execution_details(record))


@app.command("logs")
def logs(
    execution: IdArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print an execution's log (with --json: {"id": ..., "log": ...})."""
    with connect(server, json_mode=json_output) as client:
        chunks = client.stream_logs(execution, follow=follow)
        if json_output:
            log = "".join(chunks)
        else:
            for chunk in chunks:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        if follow:
            status = client.get_execution(execution)["status"]
            if status not in TERMINAL_STATUSES:
                # The server ended the stream first (it is shutting down): not a whole log.
                print_error(
                    f"the server ended the log before the execution ended (it is {status}); "
                    "follow it again",
                    [],
                    code="follow_ended",
                    status=None,
                    json_mode=json_output,
                )
                raise typer.Exit(EXIT_FAILED)
    if json_output:
        emit_json({"id": execution, "log": log})


@app.command("cancel")
def cancel(
    execution: IdArgument,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cancel an execution: at once when queued, by stopping its process when running."""
    with connect(server, json_mode=json_output) as client:
        record = client.cancel_execution(execution)
    if json_output:
        emit_json(record)
        return
    if record["status"] == "cancelled":
        out.print(
            Text.assemble("Execution ", (record["id"], "bold"), " ", status_text("cancelled"))
        )
    else:
        out.print(
            Text.assemble(
                "Cancel requested for ",
                (record["id"], "bold"),
                f" ({record['status']}); it stops shortly.",
            )
        )
