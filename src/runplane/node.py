"""A runplane node: the database, its listener, the sweeper (expired leases, old execution
events), the embedded runtime, the demo.

Started and stopped by the ASGI lifespan, so a test can run a whole node with
`create_app(settings)` and one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from runplane import demo
from runplane.runtime.agent import Agent, default_runtime_name
from runplane.runtime.inprocess import InProcessGateway
from runplane.runtime.warm import create_launcher
from runplane.service import credentials, events, leases, schedules, users
from runplane.service.context import Context
from runplane.service.hub import Hub
from runplane.service.limits import FailureLimiter
from runplane.settings import Settings
from runplane.store import catalog, sealing
from runplane.store.database import Database

log = logging.getLogger("runplane.node")


class Node:
    """Everything one `runplane serve` process runs besides the HTTP server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ctx: Context | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.agent: Agent | None = None
        self.demo_ready = False
        self.new_admin_token: str | None = None  # shown once, on the first start
        self.new_admin_password: str | None = None  # user `admin`'s, shown once likewise

    @property
    def started(self) -> bool:
        """True between start() and stop()."""
        return self._ctx is not None

    @property
    def ctx(self) -> Context:
        """The service context (available once started)."""
        if self._ctx is None:
            raise RuntimeError("the node is not started")
        return self._ctx

    async def start(self) -> None:
        """Migrate, listen (PostgreSQL), bootstrap, deploy the demo, start the sweeper and
        the embedded runtime."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        sealing.use_key(
            sealing.fernet_key(s.secret_key.get_secret_value())
            if s.secret_key
            else sealing.load_or_create_key_file(s.data_dir)
        )
        db = Database(s.resolved_database_url)
        # Replicas starting together take turns from migration to demo.
        async with db.starting():
            await asyncio.to_thread(db.migrate)
            db.start()
            ctx = Context(
                db=db,
                settings=s,
                limiter=FailureLimiter(s.auth_failure_limit, s.auth_failure_window_seconds),
                # Every change reaches this hub, unless other replicas' cannot (no NOTIFY).
                hub=Hub(reliable=db.dialect != "postgresql" or s.notify),
            )
            db.on_events = ctx.publish
            if s.notify:
                listener = await db.enable_notify(ctx.publish, ctx.resync)
                if listener is not None:
                    self._tasks.append(asyncio.create_task(listener.run(), name="listener"))
            ctx.workspace_id = await db.write(lambda tx: catalog.bootstrap(tx, ctx.clock()))
            self._ctx = ctx
            configured = s.admin_token.get_secret_value() if s.admin_token else None
            self.new_admin_token = await credentials.bootstrap_admin(ctx, configured)
            password = s.admin_password.get_secret_value() if s.admin_password else None
            self.new_admin_password = await users.bootstrap_admin_user(ctx, password)
            if s.demo:
                await demo.install(ctx)
                self.demo_ready = await demo.is_deployed(ctx)
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="sweeper"))
        self._tasks.append(asyncio.create_task(self._schedule_forever(), name="scheduler"))
        if s.slots > 0:
            self.agent = Agent(
                InProcessGateway(ctx),
                name=default_runtime_name(),
                environment=None,
                slots=s.slots,
                data_dir=s.data_dir,
                heartbeat_interval_seconds=s.heartbeat_interval_seconds,
                launcher=create_launcher(
                    s.launcher,
                    preload_max=s.preload_max,
                    preload_idle_seconds=s.preload_idle_seconds,
                ),
                environments_max=s.environments_max,
            )
            self._tasks.append(asyncio.create_task(self.agent.run(), name="runtime"))

    def end_long_polls(self) -> None:
        """The server is exiting: its long polls (`?wait`, claims, log follows, event
        streams) answer now instead of holding the graceful shutdown for their wait.
        The embedded runtime, which is no request, drains in `stop`."""
        if self._ctx is not None:
            self._ctx.hub.close()

    async def stop(self) -> None:
        """Drain the embedded runtime, stop the sweeper, close the database."""
        if self.agent is not None:
            await self.agent.drain(self.settings.drain_timeout_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._ctx is not None:
            await self._ctx.db.close()
            self._ctx = None

    async def _schedule_forever(self) -> None:
        """Start what schedules make due: a cheap read each interval, a look when due."""
        interval = self.settings.schedule_interval_seconds
        while True:
            try:
                earliest = await schedules.earliest_due(self.ctx)
                # PostgreSQL's clock decides in the look; this only avoids idle writes.
                if earliest is not None and earliest <= self.ctx.clock() + timedelta(
                    seconds=interval
                ):
                    started = await schedules.fire_due(self.ctx)
                    if started:
                        log.info("schedules started %d execution(s)", len(started))
            except Exception:
                log.exception("looking for due schedules failed")
            await asyncio.sleep(interval)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                for execution_id, status in await leases.sweep(self.ctx):
                    log.warning("lease of %s expired → %s", execution_id, status.value)
            except Exception:
                log.exception("sweep failed")
            try:
                await users.purge_idle_sessions(self.ctx)
            except Exception:
                log.exception("purging idle sessions failed")
            try:
                await events.purge(self.ctx)
            except Exception:
                log.exception("purging old execution events failed")
            await asyncio.sleep(self.settings.sweep_interval_seconds)
