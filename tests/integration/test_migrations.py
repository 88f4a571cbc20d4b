"""Migrations: every revision applies in order on both backends and keeps the data."""

from __future__ import annotations

import concurrent.futures
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from runplane.store.database import create_sqlalchemy_engine
from runplane.store.migrate import alembic_config, upgrade
from runplane.store.schema import metadata
from tests.support import postgres_url


def _engine(backend: str, tmp_path: Path, schema: str):  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        return create_sqlalchemy_engine(f"sqlite:///{tmp_path / 'm.db'}"), None
    admin = create_engine(postgres_url().replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = create_sqlalchemy_engine(
        postgres_url(), connect_args={"options": f"-csearch_path={schema}"}
    )
    return eng, admin


def test_upgrade_from_the_first_revision_keeps_rows(backend: str, tmp_path: Path) -> None:
    schema = f"m_{uuid.uuid4().hex[:10]}"
    engine, admin = _engine(backend, tmp_path, schema)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO workspaces (id, name, created_at) VALUES ('w', 'default', :t)"),
                {"t": "2026-01-01 00:00:00"},
            )
        upgrade(engine)
        upgrade(engine)  # idempotent at head
        columns = {c["name"] for c in inspect(engine).get_columns("executions")}
        assert "request_fingerprint" in columns
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT name FROM workspaces")) == "default"
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def test_migrations_build_exactly_the_tables_of_schema_py(backend: str, tmp_path: Path) -> None:
    # Also down one revision and up again: the newest migration must undo cleanly
    # (on SQLite its batch mode copies tables) and redo to the same schema.
    schema = f"m_{uuid.uuid4().hex[:10]}"
    engine, admin = _engine(backend, tmp_path, schema)
    cfg = alembic_config()
    try:
        upgrade(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "-1")
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.mark.postgres
def test_concurrent_migrations_of_a_fresh_schema_take_turns(pg_schema_url: str) -> None:
    # Replicas starting together: without the advisory lock they race to create tables.
    engines = [create_sqlalchemy_engine(pg_schema_url) for _ in range(3)]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(engines)) as pool:
            for f in [pool.submit(upgrade, e) for e in engines]:
                f.result(timeout=60)
        with engines[0].connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        for e in engines:
            e.dispose()
