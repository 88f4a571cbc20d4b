"""Alembic, driven from code: `upgrade(engine)` brings any database to head.

The migration scripts live in `store/migrations/versions/`, one ordered set for
SQLite and PostgreSQL alike. On PostgreSQL the upgrade holds an advisory lock
for its schema, so replicas starting together take turns instead of racing to
create the same tables: the first migrates, the others then find the schema at
head and change nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, func, select

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock(key, hashtext(schema)): runplane's key, then the schema
MIGRATION_LOCK_KEY = 0x52504D47  # "RPMG"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def lock_schema(conn: Connection, key: int, *, session: bool = False) -> None:
    """On PostgreSQL, wait for the advisory lock (`key`, this schema), held until the
    transaction ends (or with `session`, until unlocked or the connection closes);
    SQLite's writer is exclusive already."""
    if conn.dialect.name == "postgresql":
        lock = func.pg_advisory_lock if session else func.pg_advisory_xact_lock
        conn.execute(select(lock(key, func.hashtext(func.current_schema()))))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to `revision` in one transaction, one migrator at a time."""
    cfg = alembic_config()
    with engine.begin() as conn:
        lock_schema(conn, MIGRATION_LOCK_KEY)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
