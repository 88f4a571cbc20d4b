"""Robocorp Control Room's APIs as a surface: workspace-v1 and process-v1."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from runplane.api.compat.robocorp import mapping, router, runs
from runplane.api.surface import BodyLimit, Surface, header_reader, plain_scheme, query_reader
from runplane.domain import errors
from runplane.service.work_items import MAX_FILE_BYTES

PROCESS_SECRET = "robocloud-process-secret"  # noqa: S105 - a header / query parameter name
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # the form fields and part headers around a file


def _render(_: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    return mapping.error_response(exc, headers)


SURFACE = Surface(
    name="robocorp",
    prefixes=(mapping.LEGACY_PREFIX, mapping.PROCESS_PREFIX, runs.ITEMS_PREFIX),
    routers=(router.legacy, router.process_api, runs.process_api, runs.items_api),
    render_error=_render,
    public_prefixes=(mapping.UPLOADS_PREFIX,),  # authenticated by their one-time token
    schemes={"rc-wskey": plain_scheme},  # the workspace key
    readers=(header_reader(PROCESS_SECRET.encode()), query_reader(PROCESS_SECRET)),
    redacted_params=frozenset({PROCESS_SECRET, "token"}),  # token: a file link's
    body_limits=(
        BodyLimit(
            "POST",
            lambda path: path.startswith(mapping.UPLOADS_PREFIX),
            MAX_FILE_BYTES + MULTIPART_OVERHEAD_BYTES,
        ),
    ),
)
