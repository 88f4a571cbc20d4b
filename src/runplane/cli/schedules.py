"""`runplane schedules ...`: a deployment's executions on a timetable (docs/schedules.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from runplane.cli.inputs import InputOption, declared_types, input_arguments
from runplane.cli.output import details, emit_json, err, out, print_table, table, timestamp
from runplane.cli.session import JsonOption, ServerOption, connect
from runplane.client.models import Schedule
from runplane.domain.errors import InvalidRequest

app = typer.Typer(
    help="Start a deployment's executions on a timetable: cron expressions in a time zone.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The schedule's id (see list).")]
CronOption = Annotated[
    str | None,
    typer.Option(
        "--cron",
        metavar="EXPR",
        help="Five fields (minute hour day-of-month month day-of-week), e.g. '0 8 * * 1-5', "
        "or @hourly, @daily, @weekly, @monthly, @yearly.",
    ),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option(
        "--timezone", "--tz", metavar="ZONE", help="An IANA time zone, e.g. Europe/Berlin."
    ),
]
MissedOption = Annotated[
    str | None,
    typer.Option(
        "--missed",
        metavar="skip|last",
        help="Due times missed while nothing ran: skip them, or run the last one once.",
    ),
]


@app.command("create")
def create(
    process: Annotated[str, typer.Argument(metavar="PROCESS", help="The process to start.")],
    cron: CronOption = None,
    timezone: TimezoneOption = None,
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            "-e",
            help="The deployment's environment (needed when deployed to several).",
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Its name within the deployment.")
    ] = "default",
    inputs: InputOption = None,
    missed: MissedOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a schedule of PROCESS's deployment; print it with its next due times."""
    if cron is None:
        err.print("Error: --cron is required, e.g. --cron '0 8 * * 1-5'", style="red")
        raise typer.Exit(2)
    with connect(server, json_mode=json_output) as client:
        detail = client.get_process(process)
        env = environment or _only_environment(detail.get("deployments", []), process)
        body: dict[str, Any] = {"name": name, "cron": cron, "enabled": not paused}
        if timezone is not None:
            body["timezone"] = timezone
        if missed is not None:
            body["missed"] = missed
        if inputs:
            body["inputArguments"] = input_arguments(inputs, declared_types(detail, env))
        made = client.create_schedule(process, env, body)
    _show(made, json_output, "Created")


@app.command("list")
def list_schedules(
    process: Annotated[
        str | None, typer.Option("--process", "-p", help="Only this process's.")
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List schedules with their next due time and last run (--json: {"items": [...]})."""
    with connect(server, json_mode=json_output) as client:
        items = client.list_schedules(process)
    if json_output:
        emit_json({"items": items})
        return
    if not items:
        err.print("No schedules. Create one with: runplane schedules create PROCESS --cron EXPR")
        return
    rows = table("id", "process", "environment", "name", "cron", "time zone", "next", "last")
    for item in items:
        rows.add_row(
            Text(item["id"]),
            Text(item["process"]),
            Text(item["environment"]),
            Text(item["name"]),
            Text(item["cron"]),
            Text(item["timezone"]),
            Text(item["nextDueTimes"][0] if item["nextDueTimes"] else "paused"),
            Text(_last(item)),
        )
    print_table(rows)


@app.command("show")
def show(
    schedule_id: IdArgument, server: ServerOption = None, json_output: JsonOption = False
) -> None:
    """One schedule, with its next five due times."""
    with connect(server, json_mode=json_output) as client:
        schedule = client.get_schedule(schedule_id)
    _show(schedule, json_output)


@app.command("update")
def update(
    schedule_id: IdArgument,
    cron: CronOption = None,
    timezone: TimezoneOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    inputs: InputOption = None,
    missed: MissedOption = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a schedule; what is not given stays. -i replaces every input argument."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {"cron": cron, "timezone": timezone, "name": name, "missed": missed}.items()
        if v is not None
    }
    with connect(server, json_mode=json_output) as client:
        if inputs:
            current = client.get_schedule(schedule_id)
            detail = client.get_process(current["process"])
            types = declared_types(detail, current["environment"])
            changes["inputArguments"] = input_arguments(inputs, types)
        if not changes:
            raise InvalidRequest(
                "Nothing to change: give --cron, --timezone, --name, -i or --missed."
            )
        schedule = client.update_schedule(schedule_id, changes)
    _show(schedule, json_output, "Updated")


@app.command("pause")
def pause(
    schedule_id: IdArgument, server: ServerOption = None, json_output: JsonOption = False
) -> None:
    """Stop starting executions until resumed."""
    with connect(server, json_mode=json_output) as client:
        schedule = client.update_schedule(schedule_id, {"enabled": False})
    _show(schedule, json_output, "Paused")


@app.command("resume")
def resume(
    schedule_id: IdArgument, server: ServerOption = None, json_output: JsonOption = False
) -> None:
    """Start executions again from the next due time (those passed meanwhile are not run)."""
    with connect(server, json_mode=json_output) as client:
        schedule = client.update_schedule(schedule_id, {"enabled": True})
    _show(schedule, json_output, "Resumed")


@app.command("delete")
def delete(
    schedule_id: IdArgument, server: ServerOption = None, json_output: JsonOption = False
) -> None:
    """Delete a schedule (the executions it started stay); --json: {"id", "deleted"}."""
    with connect(server, json_mode=json_output) as client:
        client.delete_schedule(schedule_id)
    if json_output:
        emit_json({"id": schedule_id, "deleted": True})
    else:
        out.print(Text.assemble("Deleted schedule ", (schedule_id, "bold"), "."))


def _only_environment(deployments: list[Any], process: str) -> str:
    names = sorted({d["environment"] for d in deployments})
    if len(names) == 1:
        return str(names[0])
    where = f"it is deployed to {', '.join(names)}" if names else "it is not deployed"
    raise InvalidRequest(f"Name the environment of {process!r} with --environment: {where}.")


def _last(item: Schedule) -> str:
    if item["lastError"]:
        return f"error: {item['lastError']}"
    return timestamp(item["lastDueAt"]) if item["lastDueAt"] else "-"


def _show(schedule: Schedule, json_output: bool, verb: str | None = None) -> None:
    if json_output:
        emit_json(schedule)
        return
    if verb:
        out.print(
            Text.assemble(
                f"{verb} schedule ",
                (schedule["name"], "bold"),
                f" of {schedule['process']} in {schedule['environment']} ({schedule['id']}).",
            )
        )
    rows = [
        ("cron", f"{schedule['cron']} ({schedule['timezone']})"),
        ("missed due times", "run the last one" if schedule["missed"] == "last" else "skipped"),
        ("inputs", schedule["inputArguments"] or "-"),
        ("state", "enabled" if schedule["enabled"] else "paused"),
        ("next due", "\n".join(schedule["nextDueTimes"]) or "-"),
        ("last", _last(schedule)),
        ("from", "runplane.toml" if schedule["source"] == "manifest" else "the API"),
    ]
    print_table(details(rows))
