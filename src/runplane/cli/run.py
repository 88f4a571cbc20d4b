"""`runplane run PROCESS`: start an execution and, with --wait, follow it to its result."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runplane.cli.inputs import InputOption, declared_types, input_arguments
from runplane.cli.output import (
    emit_json,
    err,
    execution_details,
    out,
    show_json,
    status_text,
)
from runplane.cli.session import EXIT_FAILED, JsonOption, ServerOption, connect
from runplane.client import TERMINAL_STATUSES, Client
from runplane.client.models import Execution


def run(
    process: Annotated[
        str, typer.Argument(metavar="PROCESS", help="Name of the process to start.")
    ],
    inputs: InputOption = None,
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment", "-e", help="Environment to run in (needed when deployed to several)."
        ),
    ] = None,
    execution_id: Annotated[
        str | None,
        typer.Option(
            "--execution-id",
            help="Your own id for this execution: starting it again with it is a no-op.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait for the result; exit 1 unless it succeeds.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0,
            metavar="SECONDS",
            help="Stop waiting after this long (implies --wait).",
        ),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start a process. With --wait, print its result (exit 0) or its error (exit 1)."""
    wait = wait or timeout is not None
    with connect(server, json_mode=json_output) as client:
        arguments = {}
        if inputs:
            types = declared_types(client.get_process(process), environment)
            arguments = input_arguments(inputs, types)
        record, created = client.start_execution(
            process, arguments, environment=environment, execution_id=execution_id
        )
        if not wait:
            if json_output:
                emit_json(record)
            else:
                _print_started(record, created)
            return
        if record["status"] not in TERMINAL_STATUSES:
            record = _wait(client, record, timeout, quiet=json_output)
    if json_output:
        emit_json(record)
    else:
        _print_outcome(record)
    if record["status"] != "succeeded":
        raise typer.Exit(EXIT_FAILED)


def _wait(client: Client, record: Execution, timeout: float | None, *, quiet: bool) -> Execution:
    """Long-poll to the end, with a live status line on stderr unless `quiet`."""
    label = f"{record['process']} [dim]{record['id']}[/]"
    if quiet or not err.is_terminal:
        return client.wait_for_execution(record["id"], timeout=timeout)
    with err.status(f"{label} {record['status']}, waiting for the result…") as line:

        def update(current: Execution) -> None:
            note = ", cancel requested" if current.get("cancelRequested") else ""
            line.update(
                f"{label} {current['status']} (attempt {current['attempt']}{note}), "
                "waiting for the result…"
            )

        try:
            return client.wait_for_execution(record["id"], timeout=timeout, on_poll=update)
        except KeyboardInterrupt:
            err.print(
                f"Stopped waiting; the execution goes on. "
                f"Follow it with: runplane executions show {record['id']} --wait 60"
            )
            raise


def _print_started(record: Execution, created: bool) -> None:
    verb = "Started" if created else "Already started:"
    out.print(
        Text.assemble(f"{verb} ", (record["process"], "bold"), " ", status_text(record["status"]))
    )
    out.print(execution_details(record))
    err.print(f"Follow it with: runplane executions show {record['id']} --wait 60", style="dim")


def _print_outcome(record: Execution) -> None:
    """Result JSON on stdout on success; otherwise the error on stderr."""
    if record["status"] == "succeeded":
        show_json(record["result"])
        return
    status = record["status"]
    if status not in TERMINAL_STATUSES:
        err.print(
            Text.assemble(
                ("Still ", "yellow"),
                status_text(status),
                f" when --timeout ran out. Follow it with: "
                f"runplane executions show {record['id']} --wait 60",
            )
        )
        return
    error = record.get("error") or {"code": status, "message": ""}
    err.print(
        Text.assemble(
            (record["process"], "bold"),
            " ",
            status_text(status),
            f": {error['code']}: {error['message']}",
        )
    )
    err.print(f"Logs: runplane executions logs {record['id']}", style="dim")
