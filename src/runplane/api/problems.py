"""The ONE place errors become RFC 9457 problem details on the native API.

Every RunplaneError renders as `application/problem+json` with its status,
title, detail, stable `code` and, when it has them, `errors` (one entry per
problem, each naming what is wrong). Framework errors (bad JSON, shape
errors, unknown routes) are mapped onto the same shape. Nothing else ever
reaches a client: an unexpected exception is logged and answered with a
plain 500 problem, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runplane.domain import errors

log = logging.getLogger("runplane.api")

PROBLEM_TYPE_PREFIX = "urn:runplane:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: errors.BadRequest,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
}


def problem_body(exc: errors.RunplaneError, instance: str | None = None) -> dict[str, Any]:
    """The problem-details document of a domain error."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + exc.code,
        "title": exc.title(),
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
    }
    if instance:
        body["instance"] = instance
    if exc.problems:
        body["errors"] = exc.problems
    for key, value in exc.extra.items():
        body.setdefault(key, value)
    return body


def problem_response(
    exc: errors.RunplaneError,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An `application/problem+json` response for a domain error."""
    return Response(
        orjson.dumps(problem_body(exc, instance)),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _validation_problems(exc: RequestValidationError) -> errors.RunplaneError:
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return errors.MalformedJson(
                f"The request body is not valid JSON: {ctx.get('error', 'parse error')}."
            )
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else ""
        name = ".".join(loc[1:]) or where
        detail = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            detail = "Unknown field."
        problems.append(
            {"name": name, "in": where, "code": err.get("type", "invalid"), "detail": detail}
        )
    names = ", ".join(p["name"] for p in problems)
    return errors.InvalidRequest(f"The request is not valid: {names}.", problems=problems)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "example": "urn:runplane:problem:process_not_found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "process_not_found"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per problem, each naming what is wrong.",
            "items": {
                "type": "object",
                "required": ["name", "code", "detail"],
                "properties": {
                    "name": {"type": "string"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                    "in": {"type": "string"},
                    "file": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document so every error response is a problem document.

    FastAPI documents its own 422 shape; runplane answers every error,
    validation included, as `application/problem+json`. Only the native API
    (under /api/v1): the token endpoints document their RFC 6749 errors.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, path_item in schema.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            _drop_validation_schema(path_item)
            continue
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = problem
                    response.setdefault("description", "Problem details")
            responses.setdefault("422", {"description": "Invalid request", "content": problem})
            responses["default"] = {"description": "Problem details", "content": problem}
    return schema


def _drop_validation_schema(path_item: dict[str, Any]) -> None:
    """Other surfaces answer bad requests in their own shape: FastAPI's 422 schema, which
    the document no longer holds, is replaced by a description."""
    for operation in path_item.values():
        response = operation.get("responses", {}).get("422")
        if response is not None and "HTTPValidationError" in str(response.get("content", "")):
            operation["responses"]["422"] = {
                "description": "Invalid request, in this surface's own error format"
            }


def to_error(request: Request, exc: Exception) -> errors.RunplaneError:
    """Any exception as the domain error it stands for (unexpected ones logged, as 500)."""
    path = request.url.path
    if isinstance(exc, errors.RunplaneError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_problems(exc)
    if isinstance(exc, StarletteHTTPException):
        cls = _HTTP_CODES.get(exc.status_code, errors.RunplaneError)
        err = cls(str(exc.detail))
        if exc.status_code == 404:
            err = errors.NotFound(f"No route {request.method} {path}.")
        elif exc.status_code == 405:
            err = errors.MethodNotAllowed(f"{request.method} is not allowed on {path}.")
        elif cls is errors.RunplaneError:
            err.status = exc.status_code
        return err
    log.error("unexpected error on %s %s", request.method, path, exc_info=exc)
    return errors.RunplaneError("An unexpected error occurred.")


def response_headers(exc: Exception, err: errors.RunplaneError) -> dict[str, str] | None:
    """Headers an error's answer carries: an HTTP exception's own, or Retry-After."""
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        return dict(exc.headers)
    if "retry_after" in err.extra:
        return {"Retry-After": str(err.extra["retry_after"])}
    return None


def exception_response(request: Request, exc: Exception) -> Response:
    """The problem response of any exception: the one mapping, whoever raised it."""
    err = to_error(request, exc)
    return problem_response(err, request.url.path, headers=response_headers(exc, err))


def install(app: FastAPI, render: Callable[[Request, Exception], Response] | None = None) -> None:
    """Register the exception handlers that render every error: as a problem, or by
    `render` (which picks the format of the surface a path belongs to)."""
    respond = render or exception_response

    async def handler(request: Request, exc: Exception) -> Response:
        return respond(request, exc)

    for cls in (errors.RunplaneError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(cls, handler)
