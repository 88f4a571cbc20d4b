"""The lease protocol as direct service calls: the gateway of the embedded runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status
from runplane.service import leases
from runplane.service.context import Context


class InProcessGateway:
    """The lease protocol as direct service calls, for the runtime embedded in the server."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.heartbeat_interval_seconds: float | None = None
        host = ctx.settings.host
        # a wildcard address is not one to connect to: this machine's loopback is
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        self.base_url = f"http://{host}:{ctx.settings.port}"
        """This server, as its own executions reach it (a robot's work-items calls)."""

    async def register(self, name: str, environment: str | None, slots: int) -> Runtime:
        return await leases.register(self.ctx, name, environment, slots)

    async def claim(self, runtime: Runtime, wait_seconds: float) -> Claim | None:
        return await leases.claim(self.ctx, runtime, wait_seconds)

    async def heartbeat(self, execution_id: str, lease_token: int) -> tuple[datetime, bool]:
        return await leases.heartbeat(self.ctx, execution_id, lease_token)

    async def append_log(
        self, execution_id: str, lease_token: int, attempt: int, text: str
    ) -> None:
        await leases.append_log(self.ctx, execution_id, lease_token, attempt, text)

    async def report(
        self,
        execution_id: str,
        lease_token: int,
        outcome: Status,
        *,
        result: dict[str, Any] | None,
        error_code: str | None,
        error_message: str | None,
        log: tuple[int, str] | None = None,
        robot_run: bool = False,
    ) -> Status:
        return await leases.report(
            self.ctx,
            execution_id,
            lease_token,
            outcome,
            result=result,
            error_code=error_code,
            error_message=error_message,
            log=log,
            robot_run=robot_run,
        )

    async def put_artifact(
        self, execution_id: str, lease_token: int, attempt: int, name: str, content: bytes
    ) -> None:
        await leases.put_artifact(self.ctx, execution_id, lease_token, attempt, name, content)

    async def release(self, execution_id: str, lease_token: int) -> Status:
        return await leases.release(self.ctx, execution_id, lease_token)

    async def fetch_bundle(self, version_id: str) -> tuple[str, bytes]:
        return await leases.fetch_bundle(self.ctx, version_id)

    async def dependencies(self, runtime: Runtime, processes: list[str]) -> list[dict[str, Any]]:
        return await leases.deployed_dependencies(self.ctx, runtime.id, processes)

    async def touch(self, runtime: Runtime, state: str) -> None:
        await leases.touch_runtime(self.ctx, runtime.id, state)

    @contextlib.asynccontextmanager
    async def changes(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        async with self.ctx.hub.execution_changes(execution_id) as ev:
            yield ev
