"""The seam between a runtime agent and the server: the lease protocol.

`runtime.inprocess.InProcessGateway` calls the service directly (the embedded
runtime); a remote runtime uses `runtime.http_gateway.HttpGateway`, with the
same methods over HTTP. Either way the agent claims, heartbeats, logs and
reports under the lease's fencing token. This module imports neither, so a
remote runtime loads no database code.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any, Protocol

from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status


class Gateway(Protocol):
    """What a runtime agent needs from the server."""

    base_url: str
    """The server's base URL as executions reach it (a robot's work-items calls)."""

    # How often to heartbeat, when the server says so at registration (None: the agent's own).
    heartbeat_interval_seconds: float | None

    async def register(self, name: str, environment: str | None, slots: int) -> Runtime: ...

    async def claim(self, runtime: Runtime, wait_seconds: float) -> Claim | None: ...

    async def heartbeat(self, execution_id: str, lease_token: int) -> tuple[datetime, bool]: ...

    async def append_log(
        self, execution_id: str, lease_token: int, attempt: int, text: str
    ) -> None: ...

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
    ) -> Status: ...

    async def put_artifact(
        self, execution_id: str, lease_token: int, attempt: int, name: str, content: bytes
    ) -> None: ...

    async def release(self, execution_id: str, lease_token: int) -> Status: ...

    async def fetch_bundle(self, version_id: str) -> tuple[str, bytes]: ...

    async def dependencies(self, runtime: Runtime, processes: list[str]) -> list[dict[str, Any]]:
        """The declared dependencies of these processes' deployed versions."""
        ...

    async def touch(self, runtime: Runtime, state: str) -> None: ...

    def changes(self, execution_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """An event set when the server has news for this execution (e.g. a cancel)."""
        ...
