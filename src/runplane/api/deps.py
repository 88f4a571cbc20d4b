"""Request-scoped dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runplane.domain.auth import Principal
from runplane.service.context import Context


async def get_context(request: Request) -> Context:
    """The server's service context."""
    ctx: Context = request.app.state.ctx
    return ctx


def principal_of(request: Request) -> Principal:
    """The caller, resolved by the authentication middleware."""
    who: Principal = request.state.principal
    return who


async def get_principal(request: Request) -> Principal:
    """The caller (FastAPI dependency)."""
    return principal_of(request)


Ctx = Annotated[Context, Depends(get_context)]
Who = Annotated[Principal, Depends(get_principal)]
