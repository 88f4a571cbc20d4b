"""Boomi AtomSphere style routes: ExecutionRequest, the async ExecutionRecord, queries.

A thin translation: parse → one service call → render in Boomi's words
(`mapping.py`) and format (`formats.py`). `{account_id}` is the caller's
workspace, by name or id. Once an ExecutionRequest has started an execution
nothing is left that can fail: Boomi's callers retry a 5xx, which would start
the process again.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.compat.boomi import formats, mapping, query, trigger
from runplane.api.deps import principal_of
from runplane.api.routing import surface_route
from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.domain.model import Execution, Page
from runplane.service import executions as svc
from runplane.service import refs
from runplane.service.context import Context

log = logging.getLogger("runplane.compat.boomi")

router = APIRouter(
    prefix=mapping.PREFIX,
    tags=["boomi"],
    route_class=surface_route(
        lambda request, exc: mapping.error_response(exc, xml=_xml(request)), log
    ),
)


def _caller(request: Request) -> tuple[Context, Principal]:
    ctx: Context = request.app.state.ctx
    return ctx, principal_of(request)


def _xml(request: Request) -> bool:
    return formats.wants_xml(request.headers.get("accept"))


async def _trigger(request: Request) -> trigger.Trigger:
    raw = await request.body()
    if formats.is_xml(request.headers.get("content-type"), raw):
        return trigger.from_xml(formats.read_xml(raw))
    return trigger.from_document(formats.read_json(raw))


def _record_url(request: Request, account_id: str, execution: Execution) -> str:
    base = str(request.base_url).rstrip("/") + mapping.PREFIX
    return (
        f"{base}/{quote(account_id, safe='')}/ExecutionRecord/async/{mapping.request_id(execution)}"
    )


@router.post("/{account_id}/ExecutionRequest")
async def execution_request(account_id: str, request: Request) -> Response:
    """Start a process on an atom (a runplane environment or runtime): 200 with requestId."""
    xml = _xml(request)
    ctx, who = _caller(request)
    await refs.workspace(ctx, who, account_id)
    wanted = await _trigger(request)
    environment = await refs.runtime_or_environment(ctx, who, wanted.atom)
    process = await refs.process_name(ctx, who, wanted.process)
    execution, _ = await svc.start(
        ctx,
        who,
        svc.StartRequest(
            process,
            wanted.properties,
            environment=environment.name if environment else None,
            drop_undeclared=True,
            text_inputs=True,
        ),
    )
    # Accepted: from here on only rendering, which cannot fail.
    return formats.render(
        {
            "@type": "ExecutionRequest",
            "requestId": mapping.request_id(execution),
            "recordUrl": _record_url(request, account_id, execution),
            "atomId": wanted.atom,
            "processId": wanted.process_id or execution.process_id,
            "processName": execution.process_name,
        },
        xml=xml,
    )


@router.get("/{account_id}/ExecutionRecord/async/{request_id}")
async def execution_record(account_id: str, request_id: str, request: Request) -> Response:
    """The ExecutionRecord of a requestId: 202 until the execution starts, then 200."""
    xml = _xml(request)
    ctx, who = _caller(request)
    await refs.workspace(ctx, who, account_id)
    execution_id = mapping.runplane_id(request_id, mapping.REQUEST_ID_PREFIX)
    if execution_id is None:
        raise errors.ExecutionNotFound(f"No execution request {request_id!r}.")
    execution = await svc.get(ctx, who, execution_id)
    if mapping.not_started(execution):
        return formats.render(mapping.NOT_YET, 202, xml=xml)
    long_as_array = ctx.settings.boomi_long_as_array
    return formats.render(
        mapping.async_result(execution, account_id, long_as_array=long_as_array), xml=xml
    )


async def _page(ctx: Context, who: Principal, q: query.Query, cursor: str | None) -> Page:
    return await svc.list_executions(
        ctx,
        who,
        matching=q.matching,
        newest_first=q.newest_first,
        cursor=cursor,
        limit=query.PAGE_SIZE,
    )


def _query_result(ctx: Context, account_id: str, q: query.Query, page: Page) -> dict[str, object]:
    token = None if page.next_cursor is None else query.token(q, page.next_cursor)
    return mapping.query_result(
        page.items, token, account_id, long_as_array=ctx.settings.boomi_long_as_array
    )


@router.post("/{account_id}/ExecutionRecord/query")
async def query_records(account_id: str, request: Request) -> Response:
    """ExecutionRecords matching a QueryFilter, a page at a time."""
    xml = _xml(request)
    ctx, who = _caller(request)
    await refs.workspace(ctx, who, account_id)
    raw = await request.body()
    if formats.is_xml(request.headers.get("content-type"), raw):
        raise errors.UnsupportedMediaType("Send the query as JSON.")
    q = query.parse(formats.read_json(raw))
    page = await _page(ctx, who, q, None)
    return formats.render(_query_result(ctx, account_id, q, page), xml=xml)


@router.post("/{account_id}/ExecutionRecord/queryMore")
async def query_more_records(account_id: str, request: Request) -> Response:
    """The next page of a query: the body is its queryToken, as plain text."""
    xml = _xml(request)
    ctx, who = _caller(request)
    await refs.workspace(ctx, who, account_id)
    q, cursor = query.from_token((await request.body()).decode("utf-8", "replace"))
    page = await _page(ctx, who, q, cursor)
    return formats.render(_query_result(ctx, account_id, q, page), xml=xml)
