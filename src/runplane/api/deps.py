"""Request-scoped dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runplane.service.context import Context


async def get_context(request: Request) -> Context:
    """The server's service context."""
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_context)]
