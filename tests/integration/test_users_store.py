"""The users store: users, roles per workspace, sessions, on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from runplane.domain import errors
from runplane.domain.events import CredentialsChanged
from runplane.domain.users import Role
from runplane.store import catalog
from runplane.store import users as store
from runplane.store.database import Tx
from runplane.store.schema import sessions

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write(engine: Engine, fn: Callable[[Tx], T]) -> tuple[T, list[Any]]:
    with engine.begin() as conn:
        tx = Tx(conn)
        return fn(tx), tx.events


def read(engine: Engine, fn: Callable[[Any], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


@pytest.fixture
def two_workspaces(engine: Engine) -> tuple[str, str]:
    default, _ = write(engine, lambda tx: catalog.bootstrap(tx, T0))
    acme, _ = write(engine, lambda tx: catalog.create_workspace(tx, "acme", T0))
    return default, acme


def _user(engine: Engine, name: str, ws: str, role: Role = Role.VIEWER) -> str:
    def op(tx: Tx) -> str:
        user_id = store.create_user(tx, name, "hash-" + name, T0)
        store.set_role(tx, user_id, ws, role)
        return user_id

    return write(engine, op)[0]


def test_a_user_name_is_unique_in_the_installation(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, acme = two_workspaces
    _user(engine, "ada", default)
    with pytest.raises(errors.UserExists):
        _user(engine, "ada", acme)
    account = read(engine, lambda c: store.find_user_by_name(c, "ada"))
    assert account is not None and account.roles == {default: Role.VIEWER}
    assert read(engine, lambda c: store.find_user_by_name(c, "nobody")) is None


def test_a_role_is_set_per_workspace_and_replaced_in_place(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, acme = two_workspaces
    user_id = _user(engine, "bob", default)
    _, events = write(engine, lambda tx: store.set_role(tx, user_id, acme, Role.OPERATOR))
    assert events == [CredentialsChanged(acme)]
    write(engine, lambda tx: store.set_role(tx, user_id, default, Role.ADMIN))
    account = read(engine, lambda c: store.find_user_by_name(c, "bob"))
    assert account is not None
    assert account.roles == {default: Role.ADMIN, acme: Role.OPERATOR}
    [listed] = read(engine, lambda c: store.list_users(c, acme))
    assert (listed.name, listed.role, listed.workspace, listed.disabled) == (
        "bob",
        Role.OPERATOR,
        "acme",
        False,
    )


def test_users_are_listed_per_workspace_and_others_are_not_found(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, acme = two_workspaces
    _user(engine, "carol", default)
    _user(engine, "alice", default, Role.ADMIN)
    _user(engine, "dave", acme)
    assert [u.name for u in read(engine, lambda c: store.list_users(c, default))] == [
        "alice",
        "carol",
    ]
    with pytest.raises(errors.UserNotFound):
        read(engine, lambda c: store.get_account(c, acme, "carol"))
    assert read(engine, lambda c: store.get_account(c, acme, "dave")).name == "dave"


def _session(engine: Engine, session_id: str, user_id: str, ws: str, at: datetime) -> None:
    write(
        engine,
        lambda tx: store.create_session(tx, session_id, user_id, ws, at, "127.0.0.1", "test"),
    )


def test_a_session_carries_its_users_state_and_role(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, acme = two_workspaces
    user_id = _user(engine, "erin", default, Role.OPERATOR)
    _session(engine, "a" * 64, user_id, default, T0)
    _session(engine, "b" * 64, user_id, acme, T0)  # no role there
    found = read(engine, lambda c: store.find_session(c, "a" * 64))
    assert found is not None
    assert (found.user_name, found.role, found.user_disabled) == ("erin", Role.OPERATOR, False)
    other = read(engine, lambda c: store.find_session(c, "b" * 64))
    assert other is not None and other.role is None
    assert read(engine, lambda c: store.find_session(c, "c" * 64)) is None


def test_touching_a_session_writes_only_when_it_was_seen_before_the_bound(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, _ = two_workspaces
    user_id = _user(engine, "fay", default)
    _session(engine, "a" * 64, user_id, default, T0)
    later = T0 + timedelta(seconds=90)
    minute = timedelta(seconds=60)
    write(engine, lambda tx: store.touch_session(tx, "a" * 64, later, later - minute))
    seen = read(engine, lambda c: store.find_session(c, "a" * 64))
    assert seen is not None and seen.last_seen_at == later
    # a second request in the same interval changes nothing
    again = later + timedelta(seconds=1)
    write(engine, lambda tx: store.touch_session(tx, "a" * 64, again, again - minute))
    seen = read(engine, lambda c: store.find_session(c, "a" * 64))
    assert seen is not None and seen.last_seen_at == later


def test_disabling_a_user_ends_its_sessions_and_tells_every_workspace_it_holds_a_role_in(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, acme = two_workspaces
    user_id = _user(engine, "gus", default)
    write(engine, lambda tx: store.set_role(tx, user_id, acme, Role.VIEWER))
    other = _user(engine, "hal", default)
    _session(engine, "a" * 64, user_id, default, T0)
    _session(engine, "b" * 64, user_id, acme, T0)
    _session(engine, "c" * 64, other, default, T0)
    account = read(engine, lambda c: store.find_user_by_name(c, "gus"))
    assert account is not None
    _, events = write(engine, lambda tx: store.disable_user(tx, account, T0))
    assert set(events) == {CredentialsChanged(default), CredentialsChanged(acme)}
    assert read(engine, lambda c: store.find_session(c, "a" * 64)) is None
    assert read(engine, lambda c: store.find_session(c, "b" * 64)) is None
    assert read(engine, lambda c: store.find_session(c, "c" * 64)) is not None
    [gus] = [u for u in read(engine, lambda c: store.list_users(c, default)) if u.name == "gus"]
    assert gus.disabled


def test_ending_a_users_sessions_can_spare_the_callers_own(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, _ = two_workspaces
    user_id = _user(engine, "ivy", default)
    for sid in ("a" * 64, "b" * 64, "c" * 64):
        _session(engine, sid, user_id, default, T0)
    ended, _ = write(engine, lambda tx: store.end_sessions_of_user(tx, user_id, keep="b" * 16))
    assert ended == 2
    assert read(engine, lambda c: store.find_session(c, "b" * 64)) is not None
    assert write(engine, lambda tx: store.end_session(tx, "b" * 64))[0] is True
    assert write(engine, lambda tx: store.end_session(tx, "b" * 64)) == (False, [])


def test_a_rehash_does_not_overwrite_a_password_changed_meanwhile(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, _ = two_workspaces
    user_id = _user(engine, "jan", default)
    write(engine, lambda tx: store.set_password_hash(tx, user_id, "new", T0))
    write(engine, lambda tx: store.rehash_password(tx, user_id, "hash-jan", "rehashed-old"))
    account = read(engine, lambda c: store.find_user_by_name(c, "jan"))
    assert account is not None and account.password_hash == "new"
    write(engine, lambda tx: store.rehash_password(tx, user_id, "new", "rehashed-new"))
    account = read(engine, lambda c: store.find_user_by_name(c, "jan"))
    assert account is not None and account.password_hash == "rehashed-new"


def test_idle_sessions_are_purged_in_bounded_batches(
    engine: Engine, two_workspaces: tuple[str, str]
) -> None:
    default, _ = two_workspaces
    user_id = _user(engine, "kim", default)
    for i in range(5):
        _session(engine, f"{i}" * 64, user_id, default, T0)
    _session(engine, "f" * 64, user_id, default, T0 + timedelta(hours=9))
    cutoff = T0 + timedelta(hours=1)
    assert write(engine, lambda tx: store.purge_sessions(tx, cutoff, 3)) == (3, [])
    assert write(engine, lambda tx: store.purge_sessions(tx, cutoff, 3)) == (2, [])
    assert write(engine, lambda tx: store.purge_sessions(tx, cutoff, 3)) == (0, [])
    left = read(engine, lambda c: c.scalar(select(func.count()).select_from(sessions)))
    assert left == 1
