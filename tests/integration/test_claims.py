"""A runtime's claims through the service layer on real SQLite and PostgreSQL: a look
that left nothing claimable is not repeated until there is news, and news is never
missed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine

from runplane.service import executions, leases
from runplane.service.context import Context
from runplane.service.executions import StartRequest
from tests.integration.test_schedules import deploy
from tests.integration.test_users_service import Clock, admin_of, running

NOOP = """
[process]
name = "nightly"
entrypoint = "bot:main"
"""


async def trigger(ctx: Context) -> str:
    execution, _ = await executions.start(ctx, admin_of(ctx), StartRequest(process="nightly"))
    return execution.id


def test_a_drained_queue_is_not_looked_at_again_until_there_is_news(
    engine: Engine, tmp_path: Path
) -> None:
    async def main() -> None:
        async with running(engine, tmp_path, Clock()) as ctx:
            await deploy(ctx, tmp_path, NOOP)
            runtime = await leases.register(ctx, "rt", None, 2)
            assert await leases.claim(ctx, runtime, 0) is None  # a look: nothing queued
            looks = ctx.db.batches
            assert await leases.claim(ctx, runtime, 0.3) is None
            assert ctx.db.batches == looks  # no news: waited without looking again

            waiting = asyncio.create_task(leases.claim(ctx, runtime, 10))
            await asyncio.sleep(0.05)
            first = await trigger(ctx)  # news: the waiting claim looks and takes it
            claim = await asyncio.wait_for(waiting, 5)
            assert claim is not None and claim.execution_id == first
            # It took the only one: the next claim need not look either...
            looks = ctx.db.batches
            assert await leases.claim(ctx, runtime, 0.2) is None
            assert ctx.db.batches == looks
            # ...but with two queued, taking one leaves the other to be looked for.
            second, third = await trigger(ctx), await trigger(ctx)
            got = [await leases.claim(ctx, runtime, 0), await leases.claim(ctx, runtime, 0)]
            assert [c.execution_id for c in got if c is not None] == [second, third]

    asyncio.run(main())


def test_a_claim_sent_again_always_looks_for_the_lease_it_took(
    engine: Engine, tmp_path: Path
) -> None:
    async def main() -> None:
        async with running(engine, tmp_path, Clock()) as ctx:
            await deploy(ctx, tmp_path, NOOP)
            runtime = await leases.register(ctx, "rt", None, 1)
            queued = await trigger(ctx)
            taken = await leases.claim(ctx, runtime, 0, claim_id="c-1")
            assert taken is not None and taken.execution_id == queued  # and drained
            again = await leases.claim(ctx, runtime, 0, claim_id="c-1")  # its answer was lost
            assert again is not None and again.lease_token == taken.lease_token

    asyncio.run(main())
