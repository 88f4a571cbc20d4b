"""A remote runtime's life: register over HTTP, run work until a signal, then drain.

`runplane runtime` (cli/runtime.py) parses options and calls `run_remote`.
SIGTERM or SIGINT drains: the runtime says it is `draining` (the server ends its
claim long poll and grants it no new lease), running executions get up to the
drain timeout to finish, and any still running then are killed; their leases
lapse and the server's sweeper retries or fails them, as for the embedded runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from runplane.runtime.agent import Agent
from runplane.runtime.environments import DEFAULT_MAX_ENVIRONMENTS
from runplane.runtime.executor import SpawnLauncher
from runplane.runtime.http_gateway import HttpGateway
from runplane.runtime.warm import WarmLauncher

log = logging.getLogger("runplane.runtime")

FALLBACK_HEARTBEAT_SECONDS = 10.0  # until the server says otherwise at registration
CLAIM_LOOP_EXIT_SECONDS = 10.0  # a draining runtime's last claim ends within ~1 s


def configure_logging(level: str) -> None:
    """Plain, one-line log records on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def run_remote(
    gateway: HttpGateway,
    *,
    name: str,
    environment: str,
    slots: int,
    data_dir: Path,
    drain_timeout_seconds: float,
    launcher: WarmLauncher | SpawnLauncher | None = None,
    environments_max: int = DEFAULT_MAX_ENVIRONMENTS,
    prepare: list[str] | None = None,
) -> None:
    """Run an agent through `gateway` until SIGTERM/SIGINT, then drain. Raises when the
    runtime cannot register or stops on its own (e.g. its credential was refused)."""
    agent = Agent(
        gateway,
        name=name,
        environment=environment,
        slots=slots,
        data_dir=data_dir,
        heartbeat_interval_seconds=FALLBACK_HEARTBEAT_SECONDS,
        launcher=launcher,
        environments_max=environments_max,
        prepare=prepare,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(agent.run(), name="runtime")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # registration refused, or the agent failed: raise it
            return
        log.info("draining: no new work; running executions get %.0f s", drain_timeout_seconds)
        deadline = time.monotonic() + drain_timeout_seconds
        await agent.drain(drain_timeout_seconds)
        # A claim granted just before the server saw `draining` still runs: wait for the
        # claim loop to end, then drain whatever it started in the time that is left.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(running, CLAIM_LOOP_EXIT_SECONDS)
        await agent.drain(max(0.0, deadline - time.monotonic()))
        log.info("runtime %s stopped", name)
    finally:
        stopping.cancel()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await gateway.aclose()
