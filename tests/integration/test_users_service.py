"""Users, sign-in and sessions through the service layer, on a real Context over real
SQLite and PostgreSQL (the console's sign-in route does not exist yet)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select, update

from runplane.auth import passwords
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.users import Role
from runplane.service import catalog, credentials, executions, leases, users, workspaces
from runplane.service.context import Context
from runplane.service.executions import StartRequest
from runplane.service.limits import FailureLimiter
from runplane.settings import Settings
from runplane.store import catalog as catalog_store
from runplane.store.database import Database
from runplane.store.schema import sessions
from runplane.store.schema import users as users_table
from tests.support import on_test_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE_SECONDS = 600.0
FAILURE_LIMIT = 3
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with Argon2's cheapest parameters: at the real cost a hash or a check is about
    0.2 s of CPU, and these tests are about users and sessions, not the hash, whose real
    parameters tests/unit/test_passwords.py checks (the weak hash of the rehash test is
    still made with other parameters, so it is still replaced)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_dummy_hash", [])


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def running(engine: Engine, tmp_path: Path, clock: Clock) -> AsyncIterator[Context]:
    """A started Context on the test's database, with workspace `default`."""
    db = Database(engine.url.render_as_string(hide_password=False))
    on_test_database(db, engine)
    db.start()
    ctx = Context(
        db=db,
        settings=Settings(data_dir=tmp_path, session_idle_timeout_seconds=IDLE_SECONDS),
        limiter=FailureLimiter(FAILURE_LIMIT, 60.0),
        clock=clock,
    )
    db.on_events = ctx.publish
    ctx.workspace_id = await db.write(lambda tx: catalog_store.bootstrap(tx, clock()))
    try:
        yield ctx
    finally:
        await db.close()


Scenario = Callable[[Context, Clock], Awaitable[None]]


@pytest.fixture
def run(engine: Engine, tmp_path: Path) -> Callable[[Scenario], None]:
    """Run a scenario against a started Context with a movable clock."""

    def go(scenario: Scenario) -> None:
        async def main() -> None:
            clock = Clock()
            async with running(engine, tmp_path, clock) as ctx:
                await scenario(ctx, clock)

        asyncio.run(main())

    return go


def admin_of(ctx: Context, workspace_id: str | None = None) -> Principal:
    """A full admin (an API token's principal) of a workspace (default: `default`)."""
    return Principal(
        workspace_id=workspace_id or ctx.workspace_id,
        credential_id="test-admin",
        kind=CredentialKind.API_TOKEN,
        name="test-admin",
        scopes=frozenset({Scope.ADMIN}),
    )


async def acme_admin(ctx: Context) -> Principal:
    created, _ = await workspaces.create_workspace(ctx, admin_of(ctx), "acme")
    return admin_of(ctx, created["id"])


def test_each_role_signs_in_to_a_session_with_its_scopes(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        expected = {
            "ada": frozenset({Scope.ADMIN}),
            "otto": frozenset({Scope.EXECUTIONS_START, Scope.EXECUTIONS_READ}),
            "vera": frozenset({Scope.EXECUTIONS_READ}),
        }
        for name, role in (("ada", "admin"), ("otto", "operator"), ("vera", "viewer")):
            user, generated = await users.create_user(
                ctx, admin_of(ctx), name, role, password=PASSWORD
            )
            assert generated is None and user.role == Role(role) and user.workspace == "default"
            signed = await users.sign_in(ctx, name.upper(), PASSWORD, "10.0.0.1")
            assert signed.token.startswith("rpw_") and signed.workspace_id == ctx.workspace_id
            assert signed.user.last_sign_in_at == clock.now
            assert users.csrf_valid(signed.token, signed.csrf_token)
            assert signed.token not in repr(signed)
            who = await users.session_principal(ctx, signed.token)
            assert (who.kind, who.name) == (CredentialKind.SESSION, name)
            assert who.scopes == expected[name]
            assert who.workspace_id == ctx.workspace_id
            assert who.credential_id.startswith("session:")
            assert signed.token not in who.credential_id
        listed = await users.list_users(ctx, admin_of(ctx))
        assert [(u.name, u.role.value) for u in listed] == [
            ("ada", "admin"),
            ("otto", "operator"),
            ("vera", "viewer"),
        ]

    run(scenario)


def test_a_session_token_is_no_bearer_token(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "admin", password=PASSWORD)
        signed = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        await users.session_principal(ctx, signed.token)  # cached now
        with pytest.raises(errors.InvalidCredentials):
            await credentials.authenticate(ctx, signed.token)

    run(scenario)


def test_wrong_password_unknown_user_and_disabled_user_get_the_same_answer(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        await users.create_user(ctx, admin_of(ctx), "gone", "viewer", password=PASSWORD)
        await users.disable_user(ctx, admin_of(ctx), "gone")
        answers = []
        attempts = (("ada", "wrong password!"), ("nobody", PASSWORD), ("gone", PASSWORD))
        for name, password in attempts:
            with pytest.raises(errors.InvalidCredentials) as refused:
                await users.sign_in(ctx, name, password, f"10.0.0.{len(answers)}")
            answers.append((refused.value.status, refused.value.code, refused.value.detail))
        assert answers == [(401, "invalid_credentials", users.SIGN_IN_FAILED)] * 3

    run(scenario)


def test_failed_sign_ins_over_the_limit_get_429_even_with_the_right_password(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        for i in range(FAILURE_LIMIT):
            with pytest.raises(errors.InvalidCredentials):
                await users.sign_in(ctx, "ada", f"guess number {i}", f"10.0.1.{i}")
        with pytest.raises(errors.TooManyRequests) as blocked:  # by the user name
            await users.sign_in(ctx, "ada", PASSWORD, "10.0.2.1")
        assert blocked.value.status == 429 and blocked.value.extra["retry_after"] >= 1
        for i in range(FAILURE_LIMIT):  # and by the address, for any name
            with pytest.raises(errors.InvalidCredentials):
                await users.sign_in(ctx, f"someone-{i}", PASSWORD, "10.0.3.1")
        with pytest.raises(errors.TooManyRequests):
            await users.sign_in(ctx, "other", PASSWORD, "10.0.3.1")
        clock.advance(61)  # the window ends
        assert (await users.sign_in(ctx, "ada", PASSWORD, "10.0.2.1")).user.name == "ada"

    run(scenario)


def test_sign_out_ends_the_session_at_once(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "operator", password=PASSWORD)
        signed = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        other = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        await users.session_principal(ctx, signed.token)  # cached now
        await users.sign_out(ctx, signed.token)
        with pytest.raises(errors.SessionExpired) as over:
            await users.session_principal(ctx, signed.token)
        assert (over.value.status, over.value.code) == (401, "session_expired")
        assert (await users.session_principal(ctx, other.token)).name == "ada"
        await users.sign_out(ctx, signed.token)  # again: nothing to end
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, "rpw_" + "x" * 43)

    run(scenario)


def test_disabling_a_user_ends_all_its_sessions_at_once(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "operator", password=PASSWORD)
        tokens = [(await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")).token for _ in "ab"]
        for token in tokens:
            await users.session_principal(ctx, token)  # cached now
        disabled = await users.disable_user(ctx, admin_of(ctx), "ada")
        assert disabled.disabled and disabled.name == "ada"
        for token in tokens:
            with pytest.raises(errors.SessionExpired):
                await users.session_principal(ctx, token)
        with pytest.raises(errors.InvalidCredentials):
            await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")

    run(scenario)


def test_a_new_password_ends_the_users_other_sessions(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "admin", password=PASSWORD)
        mine = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        elsewhere = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.2")
        me = await users.session_principal(ctx, mine.token)
        await users.session_principal(ctx, elsewhere.token)
        await users.set_password(ctx, me, "ada", "a brand new password")
        assert (await users.session_principal(ctx, mine.token)).name == "ada"
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, elsewhere.token)
        with pytest.raises(errors.InvalidCredentials):
            await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.3")
        await users.sign_in(ctx, "ada", "a brand new password", "10.0.0.3")
        # set by another admin: every session of the user ends
        await users.set_password(ctx, admin_of(ctx), "ada", "yet another password")
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, mine.token)

    run(scenario)


def test_a_bad_password_is_refused_with_every_problem_named(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        with pytest.raises(errors.InvalidRequest) as bad:
            await users.create_user(ctx, admin_of(ctx), "Not Valid", "boss", password="short")
        assert bad.value.status == 422
        assert [(p["name"], p["code"]) for p in bad.value.problems] == [
            ("name", "invalid_name"),
            ("role", "invalid_role"),
            ("password", "password_too_short"),
        ]
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        with pytest.raises(errors.InvalidRequest) as short:
            await users.set_password(ctx, admin_of(ctx), "ada", "ada")
        assert {p["code"] for p in short.value.problems} == {
            "password_too_short",
            "password_is_user_name",
        }
        with pytest.raises(errors.UserNotFound):
            await users.set_password(ctx, admin_of(ctx), "nobody", PASSWORD)

    run(scenario)


def test_an_idle_session_expires_and_one_in_use_does_not(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        busy = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        idle = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        for _ in range(4):  # used every 5 minutes for 20 minutes: past the 10-minute timeout
            clock.advance(IDLE_SECONDS / 2)
            assert (await users.session_principal(ctx, busy.token)).name == "ada"
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, idle.token)
        clock.advance(IDLE_SECONDS)
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, busy.token)
        # the sweeper's purge deletes both rows
        assert await users.purge_idle_sessions(ctx) == 2

    run(scenario)


def test_last_seen_is_written_at_most_once_a_minute(
    run: Callable[[Scenario], None], engine: Engine
) -> None:
    def last_seen() -> list[datetime]:
        with engine.connect() as conn:
            return list(conn.scalars(select(sessions.c.last_seen_at)))

    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        signed = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        ctx.principals.clear()
        for _ in range(5):  # every 10 s, never from the cache: still no write
            clock.advance(10)
            await users.session_principal(ctx, signed.token)
            ctx.principals.clear()
        assert last_seen() == [T0]
        clock.advance(10)  # 60 s after the sign-in
        await users.session_principal(ctx, signed.token)
        assert last_seen() == [T0 + timedelta(seconds=60)]

    run(scenario)


def test_a_role_change_reaches_a_live_session_at_once(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        signed = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        assert (await users.session_principal(ctx, signed.token)).scopes == {Scope.EXECUTIONS_READ}
        user, generated = await users.create_user(ctx, admin_of(ctx), "ada", "operator")
        assert (user.role, generated) == (Role.OPERATOR, None)
        assert (await users.session_principal(ctx, signed.token)).has(Scope.EXECUTIONS_START)

    run(scenario)


def test_a_generated_password_is_returned_once_and_signs_in(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        user, generated = await users.create_user(ctx, admin_of(ctx), "ada", "viewer")
        assert generated is not None and len(generated) == 23
        assert (await users.sign_in(ctx, "ada", generated, "10.0.0.1")).user.id == user.id
        with pytest.raises(errors.UserExists):  # a password never comes with a role change
            await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)

    run(scenario)


def test_workspaces_admins_manage_their_own_users_only(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        acme = await acme_admin(ctx)
        root = admin_of(ctx)
        await users.create_user(ctx, root, "ada", "admin", password=PASSWORD)
        # another workspace's user does not exist for acme's admin
        with pytest.raises(errors.UserNotFound):
            await users.disable_user(ctx, acme, "ada")
        with pytest.raises(errors.UserNotFound):
            await users.set_password(ctx, acme, "ada", "taken over at last")
        assert await users.list_users(ctx, acme) == []
        # its name is taken, but acme's admin cannot give it a role
        with pytest.raises(errors.UserExists):
            await users.create_user(ctx, acme, "ada", "viewer")
        # nor name another workspace
        with pytest.raises(errors.WorkspaceNotFound):
            await users.create_user(ctx, acme, "eve", "admin", workspace="default")
        # the installation's admin may do both
        user, _ = await users.create_user(ctx, root, "ada", "viewer", workspace="acme")
        assert (user.workspace, user.role) == ("acme", Role.VIEWER)
        made, generated = await users.create_user(ctx, root, "bob", "admin", workspace="acme")
        assert generated is not None and made.workspace == "acme"
        assert [u.name for u in await users.list_users(ctx, acme)] == ["ada", "bob"]
        # acme's admin cannot take over a user that also belongs to `default`
        with pytest.raises(errors.Forbidden):
            await users.set_password(ctx, acme, "ada", "taken over at last")
        with pytest.raises(errors.Forbidden):
            await users.disable_user(ctx, acme, "ada")
        await users.set_password(ctx, acme, "bob", "acme's own business")
        # a session of ada in acme acts there, by name
        signed = await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1", workspace="acme")
        assert signed.workspace_id == acme.workspace_id
        assert (await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")).workspace_id == (
            ctx.workspace_id
        )
        with pytest.raises(errors.InvalidCredentials):
            await users.sign_in(ctx, "bob", "acme's own business", "10.0.0.1", workspace="nope")
        assert (await users.sign_in(ctx, "bob", "acme's own business", "1.1.1.1")).workspace_id == (
            acme.workspace_id
        )

    run(scenario)


def test_managing_users_needs_a_full_admin(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "admin", password=PASSWORD)
        await users.create_user(ctx, admin_of(ctx), "otto", "operator", password=PASSWORD)
        operator = await users.session_principal(
            ctx, (await users.sign_in(ctx, "otto", PASSWORD, "10.0.0.1")).token
        )
        admin = await users.session_principal(
            ctx, (await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")).token
        )
        calls: list[Callable[[Principal], Awaitable[Any]]] = [
            lambda who: users.create_user(ctx, who, "eve", "admin"),
            lambda who: users.list_users(ctx, who),
            lambda who: users.disable_user(ctx, who, "ada"),
            lambda who: users.set_password(ctx, who, "ada", "taken over at last"),
        ]
        for call in calls:
            with pytest.raises(errors.Forbidden):
                await call(operator)
        made, _ = await users.create_user(ctx, admin, "eve", "viewer")  # a session admin may
        assert made.name == "eve"

    run(scenario)


def test_viewers_and_operators_read_the_catalog_but_do_not_change_it(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        principals = {}
        for name, role in (("otto", "operator"), ("vera", "viewer")):
            await users.create_user(ctx, admin_of(ctx), name, role, password=PASSWORD)
            signed = await users.sign_in(ctx, name, PASSWORD, "10.0.0.1")
            principals[role] = await users.session_principal(ctx, signed.token)
        for who in principals.values():
            assert await catalog.list_processes(ctx, who) == []
            assert {e.name for e in await catalog.list_environments(ctx, who)} == {
                "sandbox",
                "production",
            }
            assert await catalog.list_deployments(ctx, who) == []
            assert await leases.list_runtimes(ctx, who) == []
            assert (await executions.list_executions(ctx, who)).items == []
            with pytest.raises(errors.ProcessNotFound):
                await catalog.list_versions(ctx, who, "hello")
            with pytest.raises(errors.Forbidden):
                await catalog.upload_version(ctx, who, "hello", b"zip")
            with pytest.raises(errors.Forbidden):
                await credentials.create_token(ctx, who, "t", ["admin"], [], None)
            with pytest.raises(errors.Forbidden):
                await workspaces.create_environment(ctx, who, "staging")
        # starting: the operator passes the scope check (and finds no process), the viewer not
        with pytest.raises(errors.ProcessNotFound):
            await executions.start(ctx, principals["operator"], StartRequest("hello"))
        with pytest.raises(errors.Forbidden):
            await executions.start(ctx, principals["viewer"], StartRequest("hello"))

    run(scenario)


def test_a_hash_with_old_parameters_is_replaced_on_sign_in(
    run: Callable[[Scenario], None], engine: Engine
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    def stored() -> str:
        with engine.connect() as conn:
            return str(conn.scalar(select(users_table.c.password_hash)))

    async def scenario(ctx: Context, clock: Clock) -> None:
        await users.create_user(ctx, admin_of(ctx), "ada", "viewer", password=PASSWORD)
        with engine.begin() as conn:
            conn.execute(update(users_table).values(password_hash=weak))
        await users.sign_in(ctx, "ada", PASSWORD, "10.0.0.1")
        rehashed = stored()
        assert rehashed != weak and not passwords.needs_rehash(rehashed)
        assert passwords.verify_password(rehashed, PASSWORD)

    run(scenario)


def test_the_bootstrap_admin_user_gets_a_password_once_or_the_configured_one(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        generated = await users.bootstrap_admin_user(ctx, None)
        assert generated is not None and len(generated.replace("-", "")) == 20
        assert await users.bootstrap_admin_user(ctx, None) is None  # a later start
        signed = await users.sign_in(ctx, "admin", generated, "10.0.0.1")
        assert (await users.session_principal(ctx, signed.token)).scopes == {Scope.ADMIN}
        # RUNPLANE_ADMIN_PASSWORD set later: applied, and the old sessions end
        assert await users.bootstrap_admin_user(ctx, "the configured password") is None
        with pytest.raises(errors.SessionExpired):
            await users.session_principal(ctx, signed.token)
        with pytest.raises(errors.InvalidCredentials):
            await users.sign_in(ctx, "admin", generated, "10.0.0.1")
        await users.sign_in(ctx, "admin", "the configured password", "10.0.0.1")
        with pytest.raises(errors.InvalidRequest):
            await users.bootstrap_admin_user(ctx, "too short")

    run(scenario)


def test_the_configured_admin_password_is_the_first_ones(run: Callable[[Scenario], None]) -> None:
    async def scenario(ctx: Context, clock: Clock) -> None:
        assert await users.bootstrap_admin_user(ctx, "the configured password") is None
        [admin] = await users.list_users(ctx, admin_of(ctx))
        assert (admin.name, admin.role) == ("admin", Role.ADMIN)
        await users.sign_in(ctx, "admin", "the configured password", "10.0.0.1")

    run(scenario)


def test_csrf_tokens_belong_to_their_session() -> None:
    first, second = "rpw_" + "a" * 43, "rpw_" + "b" * 43
    token = users.csrf_token(first)
    assert token == users.csrf_token(first) and token != users.csrf_token(second)
    assert users.csrf_valid(first, token)
    assert not users.csrf_valid(second, token)
    assert not users.csrf_valid(first, "")
    assert not users.csrf_valid(first, token[:-1] + "\udc80")
