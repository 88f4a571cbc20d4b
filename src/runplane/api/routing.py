"""Routes whose every failure is answered in their surface's own error format."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from runplane.api import problems
from runplane.domain import errors


def surface_route(
    render_error: Callable[[Request, Exception], Response], log: logging.Logger
) -> type[APIRoute]:
    """An APIRoute class that turns any exception of its handlers into `render_error`'s
    answer (a RunplaneError as mapped, anything else a logged 500), never a trace."""

    class SurfaceRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:  # converted in the one place
                    return render_error(request, problems.to_error(request, exc))
                except errors.RunplaneError as exc:
                    return render_error(request, exc)
                except Exception as exc:
                    log.error(
                        "unexpected error on %s %s", request.method, request.url.path, exc_info=exc
                    )
                    return render_error(request, exc)

            return guarded

    return SurfaceRoute
