"""The runtime agent: claims executions, runs each in its own process group,
streams logs, heartbeats its leases and reports outcomes.

The same agent runs embedded in the server (through `InProcessGateway`) and as
`runplane runtime` on any machine (through `HttpGateway`). It never
writes a status itself: it reports outcomes under the claim's fencing token
and the server's state machine decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import replace
from pathlib import Path

from runplane import bundle as bundles
from runplane.dependencies import Dependencies
from runplane.domain import errors
from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status
from runplane.runtime import executor
from runplane.runtime.environments import (
    DEFAULT_MAX_ENVIRONMENTS,
    DependenciesFailed,
    Environments,
)
from runplane.runtime.executor import Job, LogSink, Outcome, RunningExecution, SpawnLauncher
from runplane.runtime.gateway import Gateway
from runplane.runtime.warm import WarmLauncher

log = logging.getLogger("runplane.runtime")

CLAIM_WAIT_SECONDS = 30.0
LOG_FLUSH_SECONDS = 0.2
LOG_FLUSH_BYTES = 64 * 1024
REPORT_LOG_BYTES = 16 * 1024  # the output left at the end goes with the report, up to this
REPORT_ATTEMPTS = 5
HAND_BACK_SECONDS = 10.0  # after a drain timeout: to kill the attempts and tell the server
HANDED_BACK = "handed back"
# A runtime that could not renew a lease for this fraction of its TTL kills the
# process itself: by the time the server could give the execution to another
# runtime (at the lease's expiry), this attempt is dead, so attempts never overlap.
SELF_FENCE_FRACTION = 0.8
CANCELLED = Outcome("cancelled", None, "CANCELLED", "execution was cancelled")


def default_runtime_name(suffix: str = "embedded") -> str:
    """`<hostname>-<suffix>`: stable across restarts of the same runtime."""
    return f"{socket.gethostname()}-{suffix}"


class _LogBuffer:
    """Batches log text and ships it under the lease every LOG_FLUSH_SECONDS."""

    def __init__(self, gateway: Gateway, claim: Claim) -> None:
        self.gateway = gateway
        self.claim = claim
        self.parts: list[str] = []
        self.size = 0
        self.lost = False
        self.lock = asyncio.Lock()

    async def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= LOG_FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            if not self.parts or self.lost:
                self.parts.clear()
                self.size = 0
                return
            text, self.parts, self.size = "".join(self.parts), [], 0
            try:
                await self.gateway.append_log(
                    self.claim.execution_id, self.claim.lease_token, self.claim.attempt, text
                )
            except errors.StaleLease:
                self.lost = True
            except Exception:
                # Transient (e.g. the database restarting): keep the text for the next
                # flush; the executor caps a log's size, so this stays bounded.
                log.warning("log flush for %s failed; will retry", self.claim.execution_id)
                self.parts.insert(0, text)
                self.size += len(text)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(LOG_FLUSH_SECONDS)
            await self.flush()

    def take(self) -> tuple[int, str] | None:
        """What is left to ship (attempt, text), for the report to carry; None if nothing."""
        if self.lost or not self.parts:
            return None
        text, self.parts, self.size = "".join(self.parts), [], 0
        return self.claim.attempt, text


class Agent:
    """Runs up to `slots` executions at a time for the environment(s) it serves."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        name: str,
        environment: str | None,
        slots: int,
        data_dir: Path,
        heartbeat_interval_seconds: float,
        launcher: WarmLauncher | SpawnLauncher | None = None,
        environments_max: int = DEFAULT_MAX_ENVIRONMENTS,
        prepare: list[str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.name = name
        self.environment = environment
        self.slots = slots
        self.bundle_dir = data_dir / "bundles"
        self.work_root = data_dir / "work"
        self.heartbeat_interval = heartbeat_interval_seconds
        self.launcher = launcher or SpawnLauncher()
        forget = (
            self.launcher.forget_environment if isinstance(self.launcher, WarmLauncher) else None
        )
        self.environments = Environments(
            data_dir / "environments", max_environments=environments_max, on_removed=forget
        )
        self.runtime: Runtime | None = None
        self.prepare = list(prepare or [])  # processes whose environments to build first
        self._free = asyncio.Semaphore(slots)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._hand_back = asyncio.Event()  # the drain timed out: kill and hand leases back
        self._bundle_locks: dict[str, asyncio.Lock] = {}

    async def run(self) -> None:
        """Register, then claim and run work until `drain()` is called."""
        self.work_root.mkdir(parents=True, exist_ok=True)
        self.bundle_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self.launcher.warm_up()
        except OSError:  # the first launch tries again, and fails that execution if it must
            log.exception("the %s launcher could not start", self.launcher.name)
        self.runtime = await self.gateway.register(self.name, self.environment, self.slots)
        if self.gateway.heartbeat_interval_seconds:
            self.heartbeat_interval = self.gateway.heartbeat_interval_seconds
        beat = asyncio.create_task(self._beat(), name="runtime-heartbeat")
        try:
            if self.prepare:
                await self._prepare()
            log.info("runtime %s online with %d slot(s)", self.name, self.slots)
            await self._claim_loop()
        finally:
            beat.cancel()

    async def _prepare(self) -> None:
        """Build the environments of the `prepare` processes' deployed versions now, before
        any work is claimed; errors.PrepareFailed if one cannot be built."""
        assert self.runtime is not None
        items = await self.gateway.dependencies(self.runtime, self.prepare)

        async def say(text: str) -> None:
            for line in text.splitlines():
                log.info("  %s", line)

        for item in items:
            what = f"{item['process']} version {item['version']}"
            if not item["dependencies"]:
                log.info("%s declares no dependencies: nothing to prepare", what)
                continue
            log.info("preparing the environment of %s", what)
            try:
                environment = await self.environments.prepare(
                    Dependencies.from_dict(item["dependencies"]), say
                )
            except DependenciesFailed as exc:
                raise errors.PrepareFailed(f"cannot prepare {what}: {exc}") from exc
            log.info("%s: environment %s is ready", what, environment.root)

    async def _beat(self) -> None:
        """Keep the registration's last heartbeat fresh while the agent runs."""
        assert self.runtime is not None
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                state = "draining" if self._stopping.is_set() else "online"
                await self.gateway.touch(self.runtime, state)
            except Exception:
                log.exception("runtime heartbeat failed")

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            await self._free.acquire()
            if self._stopping.is_set():
                self._free.release()
                break
            try:
                claim = await self._claim()
            except Exception:
                self._free.release()
                if self._stopping.is_set():
                    break
                log.exception("claim failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if claim is None:
                self._free.release()
                continue
            claimed_at = asyncio.get_running_loop().time()
            task = asyncio.create_task(
                self._execute(claim, claimed_at), name=f"execution-{claim.execution_id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self) -> Claim | None:
        assert self.runtime is not None
        claim_task = asyncio.create_task(self.gateway.claim(self.runtime, CLAIM_WAIT_SECONDS))
        stop_task = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {claim_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop_task.cancel()
        if claim_task in done:
            return claim_task.result()
        # Stopping: let an in-flight claim finish so a lease it took is not stranded.
        claim = await claim_task
        if claim is not None:
            return claim
        return None

    async def drain(self, timeout_seconds: float) -> None:
        """Stop claiming; let running executions finish for up to `timeout_seconds`; then
        kill the rest and hand their leases back (retried at once elsewhere, or failed
        with RUNTIME_LOST when no retry is left), rather than let the leases lapse."""
        self._stopping.set()
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.gateway.touch(self.runtime, "draining")
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_seconds)
            if pending:
                self._hand_back.set()
                _, stuck = await asyncio.wait(pending, timeout=HAND_BACK_SECONDS)
                for task in stuck:  # the server could not be told: the leases lapse
                    task.cancel()
                if stuck:
                    await asyncio.wait(stuck)
        await self.launcher.close()
        executor.discard_free_folders()
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.gateway.touch(self.runtime, "offline")

    async def _bundle(self, claim: Claim) -> Path:
        target = self.bundle_dir / claim.content_hash
        if target.is_dir():
            return target
        lock = self._bundle_locks.setdefault(claim.content_hash, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                digest, data = await self.gateway.fetch_bundle(claim.version_id)
                await asyncio.to_thread(bundles.extract, data, self.bundle_dir, digest)
        return target

    async def _execute(self, claim: Claim, claimed_at: float) -> None:
        logs = _LogBuffer(self.gateway, claim)
        try:
            outcome = await self._attempt(claim, claimed_at, logs)
        except asyncio.CancelledError:
            log.warning("execution %s abandoned at shutdown", claim.execution_id)
            raise
        except Exception as exc:
            # The details (which may quote SQL or paths) go to the runtime's log only.
            log.exception("execution %s could not be run", claim.execution_id)
            outcome = Outcome(
                "failed",
                None,
                "LAUNCH_FAILED",
                f"The runtime could not run this execution ({type(exc).__name__}); "
                "see the runtime's log.",
            )
        finally:
            self._free.release()
        if outcome == HANDED_BACK:
            try:
                status = await self.gateway.release(claim.execution_id, claim.lease_token)
                log.info("execution %s handed back → %s", claim.execution_id, status.value)
            except errors.StaleLease:
                pass  # the lease had ended anyway
            except Exception:
                log.exception("could not hand %s back; its lease will lapse", claim.execution_id)
        elif isinstance(outcome, Outcome):
            await self._keep_artifacts(claim, outcome)
            await self._report(claim, outcome, logs.take())

    async def _attempt(
        self, claim: Claim, claimed_at: float, logs: _LogBuffer
    ) -> Outcome | str | None:
        """Run one attempt; None when the lease was lost (someone else decides), HANDED_BACK
        when a drain timed out and the attempt was killed.

        The lease is held until `held_until` on this runtime's own monotonic clock:
        each renewal moves it to when its request was sent plus SELF_FENCE_FRACTION of
        the TTL. Past it without a renewal, the process is killed before the server
        can consider the lease expired.
        """
        loop = asyncio.get_running_loop()
        fence = 3 * self.heartbeat_interval * SELF_FENCE_FRACTION  # the TTL is 3 intervals
        held_until = claimed_at + fence
        spec = claim.spec
        job = Job(
            execution_id=claim.execution_id,
            attempt=claim.attempt,
            bundle_dir=await self._bundle(claim),
            entrypoint=spec["entrypoint"],
            command=spec["command"],
            inputs=claim.inputs,
            secret_values=tuple(
                str(claim.inputs[n]) for n in claim.secret_names if claim.inputs.get(n)
            )
            + ((claim.robot_run["token"],) if claim.robot_run else ()),
            timeout_seconds=claim.timeout_seconds,
            work_root=self.work_root,
            runtime=self.name,
            preload=bool(spec.get("preload")),
            robot=(
                {**spec["robot"], "run": claim.robot_run, "server": self.gateway.base_url}
                if spec.get("robot")
                else None
            ),
        )
        deps = spec.get("dependencies")
        flusher = asyncio.create_task(logs.run())
        running = _Run(self, job, Dependencies.from_dict(deps) if deps else None, logs.add)
        lost = handed_back = False
        try:
            async with self.gateway.changes(claim.execution_id) as news:
                waiter = asyncio.create_task(running.wait())
                while not waiter.done():
                    woke = asyncio.create_task(news.wait())
                    hand_back = asyncio.create_task(self._hand_back.wait())
                    await asyncio.wait(
                        {waiter, woke, hand_back},
                        timeout=max(0.0, min(self.heartbeat_interval, held_until - loop.time())),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    woke.cancel()
                    hand_back.cancel()
                    news.clear()
                    if waiter.done():
                        break
                    if self._hand_back.is_set():
                        log.warning("drain timed out: killing %s", claim.execution_id)
                        handed_back = True
                        running.cancel()
                        break
                    sent = loop.time()
                    try:
                        async with asyncio.timeout(max(1.0, held_until - sent)):
                            _, cancel_requested = await self.gateway.heartbeat(
                                claim.execution_id, claim.lease_token
                            )
                    except errors.StaleLease:
                        log.warning("lease on %s lost; killing it", claim.execution_id)
                        lost = True
                        running.cancel()
                        break
                    except Exception:
                        if loop.time() >= held_until:
                            log.error(
                                "lease on %s not renewed in time; killing it so that no "
                                "other runtime runs it at once",
                                claim.execution_id,
                            )
                            lost = True
                            running.cancel()
                            break
                        log.warning("heartbeat for %s failed; will retry", claim.execution_id)
                        continue
                    held_until = sent + fence
                    if cancel_requested:
                        running.cancel()
                outcome = await waiter
        finally:
            running.cancel()  # no-op once exited; kills the group on any error path
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if handed_back or logs.size > REPORT_LOG_BYTES:
            await logs.flush()  # else the rest goes with the report: one write, not two
        if lost or logs.lost:
            return None
        return HANDED_BACK if handed_back else outcome

    async def _keep_artifacts(self, claim: Claim, outcome: Outcome) -> None:
        """Hand the files the run left in its artifacts folder to the server (before the
        report: once it is in, the lease is over)."""
        for name, content in outcome.artifacts:
            try:
                await self.gateway.put_artifact(
                    claim.execution_id, claim.lease_token, claim.attempt, name, content
                )
            except errors.StaleLease:
                return
            except Exception:
                log.exception("artifact %s of %s could not be kept", name, claim.execution_id)

    async def _report(
        self, claim: Claim, outcome: Outcome, log_tail: tuple[int, str] | None
    ) -> None:
        for attempt in range(REPORT_ATTEMPTS):
            try:
                status = await self.gateway.report(
                    claim.execution_id,
                    claim.lease_token,
                    Status(outcome.status),
                    result=outcome.result,
                    error_code=outcome.error_code,
                    error_message=outcome.error_message,
                    log=log_tail,
                    robot_run=claim.robot_run is not None,
                )
                log.info("execution %s → %s", claim.execution_id, status.value)
                return
            except errors.StaleLease:
                log.warning("report for %s refused: lease no longer held", claim.execution_id)
                return
            except Exception:
                log.exception("report for %s failed (try %d)", claim.execution_id, attempt + 1)
                await asyncio.sleep(0.5 * 2**attempt)


class _Run:
    """One attempt from its environment (built first when it needs one) to its outcome.

    ``cancel()`` works at any point: while the environment is being built it gives
    up waiting for it (the build goes on for whoever else needs it) and the
    outcome is ``cancelled``; once launched, it cancels the execution.
    """

    def __init__(
        self, agent: Agent, job: Job, deps: Dependencies | None, log_sink: LogSink
    ) -> None:
        self._agent = agent
        self._running: RunningExecution | None = None
        self._cancelled = False
        self._task = asyncio.create_task(self._run(job, deps, log_sink))

    async def _run(self, job: Job, deps: Dependencies | None, log_sink: LogSink) -> Outcome:
        launcher = self._agent.launcher
        if deps is None:
            self._running = await launcher.start(job, log_sink)
            return await self._running.wait()
        try:
            async with self._agent.environments.use(deps, log_sink) as environment:
                self._running = await launcher.start(
                    replace(job, environment=environment.root), log_sink
                )
                return await self._running.wait()
        except DependenciesFailed as exc:
            return Outcome("failed", None, exc.code, str(exc)[:4000])

    def cancel(self) -> None:
        if self._running is not None:
            self._running.cancel()
        elif not self._task.done():
            self._cancelled = True
            self._task.cancel()

    async def wait(self) -> Outcome:
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._cancelled and self._task.cancelled():
                return CANCELLED
            self.cancel()
            raise
