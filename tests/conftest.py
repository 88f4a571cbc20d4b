"""Shared fixtures: real databases (SQLite file, PostgreSQL schema) and real servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text

from runplane.store import sealing
from runplane.store.database import create_sqlalchemy_engine
from runplane.store.migrate import upgrade
from tests.support import (
    RemoteRuntime,
    Server,
    ServerFactory,
    postgres_available,
    postgres_url,
)


@pytest.fixture(autouse=True, scope="session")
def sealing_key() -> None:
    """In-process store tests seal secret parameters with a key of their own."""
    sealing.use_key(Fernet.generate_key())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


def migrated_sqlite_file(folder: Path) -> Path:
    """A migrated SQLite database in `folder` (the run's temporary root), made on first
    use: a test's database is a copy of it (migrating costs more than most tests;
    test_migrations runs the migrations)."""
    path = folder / "migrated-store.db"
    if not path.exists():
        making = folder / f"migrated-store-{uuid.uuid4().hex}.db"
        engine = create_sqlalchemy_engine(f"sqlite:///{making}")
        upgrade(engine)
        engine.dispose()  # the last connection checkpoints the WAL into the file
        making.replace(path)
    return path


@contextlib.contextmanager
def isolated_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of its own: a SQLite file, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        shutil.copyfile(migrated_sqlite_file(tmp_path.parent), tmp_path / "store.db")
        engine = create_sqlalchemy_engine(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url().replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_sqlalchemy_engine(
        postgres_url(), connect_args={"options": f"-csearch_path={schema}"}
    )
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, isolated database on the parametrized backend."""
    with isolated_engine(backend, tmp_path) as eng:
        yield eng


def require_postgres() -> None:
    """Skip when PostgreSQL is not reachable; under CI=true, fail instead."""
    reason = postgres_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(f"PostgreSQL not reachable: {reason}")


@contextlib.contextmanager
def new_pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema (dropped afterwards)."""
    require_postgres()
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def schema_url(schema: str) -> str:
    """The URL of a database whose tables live in `schema` (search_path)."""
    return f"{postgres_url()}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema (dropped afterwards)."""
    with new_pg_schema() as schema:
        yield schema


@pytest.fixture
def pg_schema_url(pg_schema: str) -> str:
    """The URL of a database whose tables live in a fresh schema (search_path)."""
    return schema_url(pg_schema)


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """A factory of real `runplane serve` processes on free loopback ports; stops them all."""
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., object]]:
    """One server shared by a module's tests (started on first use)."""
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory.start
    finally:
        factory.stop_all()


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[Any]:
    """Start remote runtimes: `runtimes(srv, token, *args)`; killed at the end."""
    started: list[RemoteRuntime] = []

    def start(srv: Server, token: str, *args: str) -> RemoteRuntime:
        data = tmp_path / f"runtime-{len(started)}"
        data.mkdir()
        rt = RemoteRuntime(srv, token, data, *args)
        started.append(rt)
        return rt

    yield start
    for rt in started:
        rt.stop()
