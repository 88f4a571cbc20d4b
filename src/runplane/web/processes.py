"""Processes: the list, a process (versions, deployments, upload, start form, Integrate),
and starting an execution from the generated form."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.model import Deployment, Version
from runplane.domain.schedules import Schedule
from runplane.service import catalog, schedules
from runplane.service import executions as svc
from runplane.settings import MAX_BUNDLE_UPLOAD_BYTES
from runplane.web import forms, integrate
from runplane.web.common import ctx_of, form_of, go, text, who_of
from runplane.web.errors import console_route
from runplane.web.templating import render

router = APIRouter(route_class=console_route(), include_in_schema=False)


@router.get("/processes")
async def processes_page(request: Request) -> Response:
    """Every process with its newest version and where it is deployed."""
    ctx, who = ctx_of(request), who_of(request)
    listed = await catalog.list_processes(ctx, who)
    deployed: dict[str, list[Deployment]] = {}
    for d in await catalog.list_deployments(ctx, who):
        deployed.setdefault(d.process_name, []).append(d)
    rows = [(p, newest, deployed.get(p.name, [])) for p, newest in listed]
    return render(request, "processes.html", title="Processes", nav="processes", rows=rows)


def _start_target(
    deployments: list[Deployment], environment: str | None
) -> tuple[Deployment | None, list[Deployment]]:
    """(the deployment the form starts, the invokable ones to choose from)."""
    invokable = [d for d in deployments if d.invokable]
    chosen = next((d for d in invokable if d.environment_name == environment), None)
    return chosen or (invokable[0] if invokable else None), invokable


def _start_values(
    who: Principal,
    name: str,
    versions: dict[int, Version],
    deployments: list[Deployment],
    *,
    environment: str | None = None,
    prefill: dict[str, Any] | None = None,
    submitted: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    other_problems: list[str] | None = None,
    execution_id: str = "",
) -> dict[str, Any]:
    """What the start form template needs."""
    target, invokable = _start_target(deployments, environment)
    version = versions.get(target.version_number) if target else None
    configured = dict(target.input_arguments) if target else {}
    configured.update(prefill or {})
    return {
        "process": name,
        "can_start": who.has(Scope.EXECUTIONS_START),
        "target": target,
        "invokable": invokable,
        "fields": forms.fields(
            version.spec if version else {},
            configured=configured,
            submitted=submitted,
            problems=problems,
        ),
        "other_problems": other_problems or [],
        "execution_id": execution_id,
    }


@router.get("/processes/{process}")
async def process_page(request: Request, process: str) -> Response:
    """A process: versions, deployments per environment, upload, start form, Integrate."""
    ctx, who = ctx_of(request), who_of(request)
    proc, versions, deployments = await catalog.get_process(ctx, who, process)
    environments = await catalog.list_environments(ctx, who)
    by_number = {v.number: v for v in versions}
    deployed = {d.environment_name: d for d in deployments}
    target, _ = _start_target(deployments, None)
    newest = versions[0] if versions else None
    shown = by_number.get(target.version_number) if target else newest
    timetables = await schedules.list_schedules(ctx, who, process)
    return render(
        request,
        "process.html",
        title=proc.name,
        nav="processes",
        process=proc,
        versions=versions,
        deployments=deployments,
        schedules=[_schedule_row(s) for s in timetables],
        undeployed=[e for e in environments if e.name not in deployed],
        can_admin=who.has(Scope.PROCESSES_WRITE),
        parameters_of=forms.parameters_of,
        integrate=integrate.snippets(
            str(request.base_url).rstrip("/"),
            who,
            proc,
            deployments,
            shown.spec if shown else None,
        ),
        start=_start_values(who, process, by_number, deployments),
    )


@router.get("/processes/{process}/start")
async def start_page(
    request: Request, process: str, environment: str | None = None, again: str | None = None
) -> Response:
    """The start form on its own; `again` prefills it with an execution's inputs."""
    ctx, who = ctx_of(request), who_of(request)
    _, versions, deployments = await catalog.get_process(ctx, who, process)
    prefill: dict[str, Any] = {}
    if again:
        previous = await svc.get(ctx, who, again)
        if previous.process_name != process:
            raise errors.ExecutionNotFound(f"No execution {again!r} of process {process!r}.")
        prefill = dict(previous.inputs)
        environment = environment or previous.environment_name
    values = _start_values(
        who,
        process,
        {v.number: v for v in versions},
        deployments,
        environment=environment,
        prefill=prefill,
    )
    return render(request, "start.html", title=f"Start {process}", nav="processes", start=values)


@router.get("/processes/{process}/start-form")
async def start_form(request: Request, process: str, environment: str | None = None) -> Response:
    """The start form for another environment (its deployed version's parameters)."""
    ctx, who = ctx_of(request), who_of(request)
    _, versions, deployments = await catalog.get_process(ctx, who, process)
    values = _start_values(
        who, process, {v.number: v for v in versions}, deployments, environment=environment
    )
    return render(request, "_start_form.html", start=values)


@router.post("/processes/{process}/start")
async def start(request: Request, process: str) -> Response:
    """Start an execution from the form; a refusal shows each problem beside its field."""
    ctx, who = ctx_of(request), who_of(request)
    form = await form_of(request)
    environment = text(form, "environment") or None
    execution_id = text(form, "executionId") or None
    _, versions, deployments = await catalog.get_process(ctx, who, process)
    by_number = {v.number: v for v in versions}
    target, _ = _start_target(deployments, environment)
    spec = by_number[target.version_number].spec if target else {}
    submitted = forms.submitted_inputs(spec, form)
    request_ = svc.StartRequest(
        process=process,
        input_arguments=dict(submitted),
        environment=environment,
        execution_id=execution_id,
        text_inputs=True,
    )
    try:
        execution, _ = await svc.start(ctx, who, request_)
    except (errors.Unprocessable, errors.Conflict) as exc:
        names = {p["name"] for p in forms.parameters_of(spec)}
        by_field, other = forms.problems_by_field(exc.problems)
        other += [f"{n}: {d}" for n, d in by_field.items() if n not in names]
        if not exc.problems:
            other.append(exc.detail)
        values = _start_values(
            who,
            process,
            by_number,
            deployments,
            environment=environment,
            submitted={p["name"]: forms.posted(form, p) for p in forms.parameters_of(spec)},
            problems={n: d for n, d in by_field.items() if n in names},
            other_problems=other,
            execution_id=execution_id or "",
        )
        return render(request, "_start_form.html", 422, start=values)
    return go(request, f"/executions/{execution.id}")


@router.post("/processes/{process}/versions")
async def upload(request: Request, process: str) -> Response:
    """Upload a version: a zip of the process folder."""
    ctx, who = ctx_of(request), who_of(request)
    form = await form_of(request)
    bundle = form.get("bundle")
    if not isinstance(bundle, UploadFile) or not bundle.filename:
        raise errors.InvalidRequest(
            "Choose a zip of the process folder to upload.",
            problems=[{"name": "bundle", "code": "missing", "detail": "No file chosen."}],
        )
    data = await bundle.read(MAX_BUNDLE_UPLOAD_BYTES + 1)
    if len(data) > MAX_BUNDLE_UPLOAD_BYTES:
        raise errors.PayloadTooLarge(f"A bundle is at most {MAX_BUNDLE_UPLOAD_BYTES} bytes.")
    await catalog.upload_version(ctx, who, process, data)
    return go(request, f"/processes/{process}")


@router.post("/processes/{process}/deployments/{environment}")
async def deploy(request: Request, process: str, environment: str) -> Response:
    """Deploy a version to an environment, or toggle whether it may be started."""
    ctx, who = ctx_of(request), who_of(request)
    form = await form_of(request)
    raw_version, raw_limit = text(form, "version"), text(form, "concurrencyLimit")
    problems = []
    if raw_version and not raw_version.isdigit():
        problems.append({"name": "version", "code": "invalid", "detail": "A version number."})
    if raw_limit and not (raw_limit.isdigit() and int(raw_limit) > 0):
        problems.append(
            {"name": "concurrencyLimit", "code": "invalid", "detail": "A whole number above 0."}
        )
    if problems:
        raise errors.InvalidRequest("The deployment is not valid.", problems=problems)
    await catalog.deploy(
        ctx,
        who,
        process,
        environment,
        version=int(raw_version) if raw_version else None,
        input_arguments=None,  # keep the run configuration's
        invokable="true" in form.getlist("invokable"),
        concurrency_limit=int(raw_limit) if raw_limit else None,
    )
    return go(request, f"/processes/{process}")


def _schedule_row(schedule: Schedule) -> dict[str, Any]:
    """A schedule as its row shows it: the next due time in its own time zone."""
    upcoming = ""
    if schedule.enabled and schedule.next_due_at is not None:
        local = schedule.next_due_at.astimezone(ZoneInfo(schedule.timezone))
        upcoming = local.strftime("%Y-%m-%d %H:%M %Z")
    return {"schedule": schedule, "next": upcoming}


@router.post("/processes/{process}/schedules")
async def create_schedule(request: Request, process: str) -> Response:
    """A new schedule of one of the process's deployments."""
    ctx, who = ctx_of(request), who_of(request)
    form = await form_of(request)
    raw_inputs = text(form, "inputArguments")
    inputs: Any = {}
    if raw_inputs:
        try:
            inputs = json.loads(raw_inputs)
        except ValueError as exc:
            inputs = exc
        if not isinstance(inputs, dict):
            raise errors.InvalidRequest(
                "The input arguments must be a JSON object.",
                problems=[
                    {
                        "name": "inputArguments",
                        "code": "invalid",
                        "detail": 'A JSON object, e.g. {"mode": "full"}.',
                    }
                ],
            )
    await schedules.create(
        ctx,
        who,
        process,
        text(form, "environment"),
        schedules.ScheduleInput(
            name=text(form, "name") or "default",
            cron=text(form, "cron"),
            timezone=text(form, "timezone") or "UTC",
            input_arguments=inputs,
            missed=text(form, "missed") or "skip",
        ),
    )
    return go(request, f"/processes/{process}")


@router.post("/processes/{process}/schedules/{schedule_id}/{action}")
async def change_schedule(
    request: Request, process: str, schedule_id: str, action: str
) -> Response:
    """Pause, resume or delete a schedule."""
    ctx, who = ctx_of(request), who_of(request)
    if action == "delete":
        await schedules.delete(ctx, who, schedule_id)
    elif action in ("pause", "resume"):
        enabled = action == "resume"
        await schedules.update(ctx, who, schedule_id, schedules.ScheduleInput(enabled=enabled))
    else:
        raise errors.NotFound("No such action.")
    return go(request, f"/processes/{process}")
