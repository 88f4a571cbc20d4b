"""Jinja2 pages of the console: one environment, autoescaped, with the console's filters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from runplane.domain.auth import Principal, Scope
from runplane.domain.states import Status
from runplane.web import session

ENV = Environment(
    loader=PackageLoader("runplane.web", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

ROLE_OF_SCOPES = (
    (Scope.ADMIN, "admin"),
    (Scope.EXECUTIONS_START, "operator"),
    (Scope.EXECUTIONS_READ, "viewer"),
)
TERMINAL = [s.value for s in Status if s.terminal]
CANCELLABLE = (Status.QUEUED, Status.RUNNING)


def role_of(who: Principal) -> str:
    """The console role a principal acts with (admin, operator, viewer)."""
    for scope, role in ROLE_OF_SCOPES:
        if who.has(scope):
            return role
    return "viewer"


def ts(value: datetime | None) -> str:
    """An ISO 8601 UTC time, to the second ('' for none)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_time(value: datetime | None) -> str:
    """A time as people read it: date and time to the second, UTC."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(ms: int | float | None) -> str:
    """A duration in the unit that reads best."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(ms)} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def pretty_json(value: Any) -> str:
    """JSON for people: indented, keys in their order."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


ENV.filters.update(ts=ts, shown_time=shown_time, duration=duration, pretty_json=pretty_json)
ENV.globals.update(
    TERMINAL=TERMINAL, user=None, role=None, csrf="", nav="", title="runplane", messages=()
)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page (or, for htmx, a fragment) rendered with what every page needs: the user,
    their role, the CSRF token, the active navigation entry."""
    who: Principal | None = request.scope.get("state", {}).get("principal")
    values.setdefault("nav", "")
    values.setdefault("title", "runplane")
    context = {
        "request": request,
        "user": who.name if who else None,
        "role": role_of(who) if who else None,
        "csrf": session.csrf_of(request),
        **values,
    }
    html = ENV.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def fragment(template: str, **values: Any) -> str:
    """A template rendered on its own (a table row, an error message)."""
    return ENV.get_template(template).render(values)
