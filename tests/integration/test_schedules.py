"""Schedules through the service layer on real SQLite and PostgreSQL: each due time
starts one execution, however many looks (or replicas) see it; missed times follow the
schedule's policy; what cannot start is recorded, and the schedule moves on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from runplane.bundle import pack_folder
from runplane.domain import errors
from runplane.domain.schedules import execution_id
from runplane.service import catalog, schedules
from runplane.service.context import Context
from runplane.service.schedules import ScheduleInput
from runplane.store.schema import executions
from tests.integration.test_users_service import Clock, admin_of, running

MANIFEST = """
[process]
name = "nightly"
entrypoint = "bot:main"
[parameters.mode]
type = "string"
required = true
[parameters.password]
type = "secret"
[[schedules]]
name = "declared"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
inputs = { mode = "declared" }
"""


def bundle_of(tmp_path: Path, manifest: str) -> bytes:
    folder = tmp_path / f"nightly-{len(list(tmp_path.glob('nightly-*')))}"
    folder.mkdir()
    (folder / "runplane.toml").write_text(manifest)
    (folder / "bot.py").write_text("def main(**kw):\n    return {}\n")
    return pack_folder(folder)


async def deploy(ctx: Context, tmp_path: Path, manifest: str = MANIFEST) -> None:
    who = admin_of(ctx)
    await catalog.upload_version(ctx, who, "nightly", bundle_of(tmp_path, manifest))
    await catalog.deploy(
        ctx,
        who,
        "nightly",
        "production",
        version=None,
        input_arguments={},
        invokable=True,
        concurrency_limit=None,
    )


def count_executions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(executions)) or 0)


@contextlib.asynccontextmanager
async def deployed(engine: Engine, tmp_path: Path) -> AsyncIterator[Context]:
    async with running(engine, tmp_path, Clock()) as ctx:
        await deploy(ctx, tmp_path)
        yield ctx


def go(engine: Engine, tmp_path: Path, scenario: Any) -> None:
    async def main() -> None:
        async with deployed(engine, tmp_path) as ctx:
            await scenario(ctx)

    asyncio.run(main())


def test_each_due_time_starts_one_execution_with_the_schedules_inputs(
    engine: Engine, tmp_path: Path
) -> None:
    async def scenario(ctx: Context) -> None:
        who = admin_of(ctx)
        made = await schedules.create(
            ctx,
            who,
            "nightly",
            "production",
            ScheduleInput(
                name="hourly",
                cron="0 * * * *",
                input_arguments={"mode": "full", "password": "hunter2"},
            ),
        )
        assert made.input_arguments == {"mode": "full", "password": "***"}
        due = made.next_due_at
        assert due is not None and due.minute == 0
        assert await schedules.fire_due(ctx, due - timedelta(seconds=1)) == []
        started = await schedules.fire_due(ctx, due + timedelta(seconds=2))
        assert started == [execution_id(made.id, due)]
        # looked at again (another replica, a retry): nothing more
        assert await schedules.fire_due(ctx, due + timedelta(seconds=3)) == []
        after = await schedules.get(ctx, who, made.id)
        assert after.next_due_at == due + timedelta(hours=1)
        assert after.last_due_at == due and after.last_error is None
        assert after.last_execution_id is not None
        with engine.connect() as conn:
            row = conn.execute(
                select(executions.c.inputs, executions.c.client_execution_id).where(
                    executions.c.id == after.last_execution_id
                )
            ).one()
        assert row.client_execution_id == started[0]
        assert row.inputs == {"mode": "full", "password": "***"}

    go(engine, tmp_path, scenario)
    # the declared schedule of runplane.toml exists too, and has run nothing yet
    assert count_executions(engine) == 1


def test_two_replicas_looking_at_once_start_each_due_time_once(
    engine: Engine, tmp_path: Path
) -> None:
    async def scenario(ctx: Context) -> None:
        who = admin_of(ctx)
        made = await schedules.create(
            ctx,
            who,
            "nightly",
            "production",
            ScheduleInput(name="often", cron="*/5 * * * *", input_arguments={"mode": "x"}),
        )
        assert made.next_due_at is not None
        async with running(engine, tmp_path, Clock()) as other:
            other.workspace_id = ctx.workspace_id
            at = made.next_due_at + timedelta(seconds=1)
            looks = [schedules.fire_due(c, at) for c in (ctx, other) for _ in range(3)]
            results = await asyncio.gather(*looks)
        started = [cid for result in results for cid in result]
        assert started == [execution_id(made.id, made.next_due_at)]

    go(engine, tmp_path, scenario)
    assert count_executions(engine) == 1


@pytest.mark.parametrize(("missed", "runs"), [("skip", 0), ("last", 1)])
def test_missed_due_times_follow_the_policy(
    engine: Engine, tmp_path: Path, missed: str, runs: int
) -> None:
    async def scenario(ctx: Context) -> None:
        who = admin_of(ctx)
        made = await schedules.create(
            ctx,
            who,
            "nightly",
            "production",
            ScheduleInput(
                name="hourly", cron="0 * * * *", input_arguments={"mode": "x"}, missed=missed
            ),
        )
        assert made.next_due_at is not None
        back = made.next_due_at + timedelta(hours=5, minutes=30)  # five hours down
        started = await schedules.fire_due(ctx, back)
        assert len(started) == runs
        if runs:
            assert started == [execution_id(made.id, made.next_due_at + timedelta(hours=5))]
        after = await schedules.get(ctx, who, made.id)
        assert after.next_due_at == made.next_due_at + timedelta(hours=6)

    go(engine, tmp_path, scenario)


def test_what_cannot_start_is_recorded_and_the_schedule_moves_on(
    engine: Engine, tmp_path: Path
) -> None:
    async def scenario(ctx: Context) -> None:
        who = admin_of(ctx)
        made = await schedules.create(
            ctx,
            who,
            "nightly",
            "production",
            ScheduleInput(name="hourly", cron="0 * * * *", input_arguments={"mode": "x"}),
        )
        assert made.next_due_at is not None
        await catalog.undeploy(ctx, who, "nightly", "production")
        assert await schedules.fire_due(ctx, made.next_due_at + timedelta(seconds=1)) == []
        after = await schedules.get(ctx, who, made.id)
        assert after.last_error is not None and "production" in after.last_error
        assert after.next_due_at == made.next_due_at + timedelta(hours=1)

    go(engine, tmp_path, scenario)
    assert count_executions(engine) == 0


def test_manage_check_pause_and_resume(engine: Engine, tmp_path: Path) -> None:
    async def scenario(ctx: Context) -> None:
        who = admin_of(ctx)
        listed = await schedules.list_schedules(ctx, who)
        assert [(s.name, s.source, s.timezone) for s in listed] == [
            ("declared", "manifest", "Europe/Berlin")
        ]
        with pytest.raises(errors.InvalidRequest) as bad:
            await schedules.create(
                ctx,
                who,
                "nightly",
                "production",
                ScheduleInput(name="bad name!", cron="0 8 * *", timezone="Mars/Base"),
            )
        assert sorted(p["name"] for p in bad.value.problems) == ["cron", "name", "timezone"]
        with pytest.raises(errors.InvalidInputArguments):
            await schedules.create(
                ctx,
                who,
                "nightly",
                "production",
                ScheduleInput(name="typo", cron="0 8 * * *", input_arguments={"mdoe": "x"}),
            )
        with pytest.raises(errors.Conflict):
            await schedules.create(
                ctx, who, "nightly", "production", ScheduleInput(name="declared", cron="@daily")
            )
        assert len(await schedules.list_schedules(ctx, who)) == 1  # nothing stored

        paused = await schedules.update(
            ctx, who, listed[0].id, ScheduleInput(enabled=False, missed="last")
        )
        assert not paused.enabled and paused.next_due_at is None and paused.missed == "last"
        resumed = await schedules.update(
            ctx, who, listed[0].id, ScheduleInput(enabled=True, cron="15 4 * * *")
        )
        assert resumed.enabled and resumed.next_due_at is not None
        assert resumed.next_due_at.minute == 15
        # a deleted declared schedule stays deleted when the same version is redeployed
        await schedules.delete(ctx, who, listed[0].id)
        await catalog.deploy(
            ctx,
            who,
            "nightly",
            "production",
            version=None,
            input_arguments={},
            invokable=True,
            concurrency_limit=None,
        )
        assert await schedules.list_schedules(ctx, who) == []
        # ...and comes back with a new version that declares it
        await deploy(ctx, tmp_path, MANIFEST + "\n# v2\n")
        assert [s.name for s in await schedules.list_schedules(ctx, who)] == ["declared"]

    go(engine, tmp_path, scenario)
