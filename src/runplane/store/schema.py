"""SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

Timestamps are stored in UTC; `UTCDateTime` gives back aware datetimes on
both backends. After the trigger's insert, status columns are only ever written by
`store/transitions.py`, which asks `domain/states.py` for the next status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from runplane.store.sealing import SealedJSON

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(36)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

processes = Table(
    "processes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

process_versions = Table(
    "process_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("process_id", ID, ForeignKey("processes.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("secret_defaults", SealedJSON, nullable=False),
    Column("bundle", LargeBinary, nullable=False),
    Column("bundle_bytes", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("process_id", "number"),
    UniqueConstraint("process_id", "content_hash"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("process_id", ID, ForeignKey("processes.id"), nullable=False),
    Column("environment_id", ID, ForeignKey("environments.id"), nullable=False),
    Column("version_id", ID, ForeignKey("process_versions.id"), nullable=False),
    Column("input_arguments", JSON, nullable=False),
    Column("secret_arguments", SealedJSON, nullable=False),
    Column("invokable", Boolean, nullable=False),
    Column("concurrency_limit", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("process_id", "environment_id"),
)

runtimes = Table(
    "runtimes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("environment_id", ID, ForeignKey("environments.id"), nullable=True),
    Column("slots", Integer, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("version", String(50), nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_heartbeat_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("process_id", ID, ForeignKey("processes.id"), nullable=False),
    Column("version_id", ID, ForeignKey("process_versions.id"), nullable=False),
    Column("deployment_id", ID, ForeignKey("deployments.id"), nullable=False),
    Column("environment_id", ID, ForeignKey("environments.id"), nullable=False),
    Column("client_execution_id", String(255), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("timeout_seconds", Float, nullable=False),
    Column("inputs", JSON, nullable=False),  # effective inputs, secrets masked
    Column("secret_inputs", SealedJSON, nullable=False),  # secret parameters, sealed
    Column("input_fingerprint", String(64), nullable=False),
    # the request as sent (environment + input arguments): a repeat of it is a repeat
    # even after the deployment's defaults changed
    Column("request_fingerprint", String(64), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error_code", String(100), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("runtime_id", ID, nullable=True),
    Column("lease_token", Integer, nullable=False),
    # the runtime's id for the claim that leased this attempt: a claim sent again
    # (its answer was lost) gets the same lease back instead of a second one
    Column("claim_id", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("process_id", "client_execution_id"),
    # the claim: the queue in id order, of every environment or of one (migration 0014)
    Index("ix_executions_queue", "status", "id"),
    Index("ix_executions_queue_environment", "status", "environment_id", "id"),
    Index("ix_executions_workspace_id_id", "workspace_id", "id"),
    # reports; the listing's time range (its id bounds: store.listing.created_between)
    Index("ix_executions_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
    Index("ix_executions_process_id_id", "process_id", "id"),
    Index("ix_executions_lease", "status", "lease_expires_at"),
)

execution_logs = Table(
    "execution_logs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_execution_logs_execution_id_id", "execution_id", "id"),
)

# Every status change of an execution (its insert as queued included), written in
# the transaction that made it: the log behind GET /api/v1/events. Append-only, purged
# after RUNPLANE_EVENT_RETENTION_SECONDS; no foreign keys (it is written on the trigger's
# hot path and outlives nothing it names). Streams read it in (tx_position, seq) order:
# see store/events.py for why not in seq order alone.
execution_events = Table(
    "execution_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # PostgreSQL: max(the writing transaction's id, the first transaction id its snapshot
    # still saw running); SQLite (one writer: seq order is commit order): 0
    Column("tx_position", BigInteger, nullable=False),
    Column("workspace_id", ID, nullable=False),
    Column("execution_id", ID, nullable=False),
    Column("process_id", ID, nullable=False),
    Column("environment_id", ID, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error_code", String(100), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_execution_events_workspace_id_tx_position_seq", "workspace_id", "tx_position", "seq"),
    sqlite_autoincrement=True,  # a purged seq is never handed out again
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # domain.auth.CredentialKind
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("scopes", JSON, nullable=False),
    Column("environment_ids", JSON, nullable=True),  # null: every environment
    Column("process_id", ID, ForeignKey("processes.id"), nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # an access token's OAuth2 client app (revoked with it; expired ones purged per app)
    Column("app_id", ID, ForeignKey("oauth_apps.id"), nullable=True),
    Index("ix_credentials_workspace_id_kind", "workspace_id", "kind"),
    Index("ix_credentials_app_id_expires_at", "app_id", "expires_at"),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("key", String(300), primary_key=True),  # "addr:<ip>" or "user:<name>"
    Column("window_start", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False),
)

oauth_apps = Table(
    "oauth_apps",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),  # sha256 of the client secret
    Column("scopes", JSON, nullable=False),
    Column("environment_ids", JSON, nullable=True),  # null: every environment
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)
# A name is unique among a workspace's live apps; a deleted app's name may be reused.
Index(
    "uq_oauth_apps_workspace_id_name_live",
    oauth_apps.c.workspace_id,
    oauth_apps.c.name,
    unique=True,
    sqlite_where=oauth_apps.c.deleted_at.is_(None),
    postgresql_where=oauth_apps.c.deleted_at.is_(None),
)

# Robocorp-style work items: a payload for one run of a process. A run is an
# execution; an item's state is read off its execution's status, never stored.
work_items = Table(
    "work_items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("process_id", ID, ForeignKey("processes.id"), nullable=False),
    # the run (execution) the item went to; null while it waits for a run-request
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=True),
    Column("payload", SealedJSON, nullable=False),  # {"payload": <any JSON>}, sealed
    Column("public_payload", JSON, nullable=False),  # the same, secret parameters masked
    Column("created_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=True),
    # Inside a run (Robocorp's libraries): an output item's input item; an item the robot
    # released, COMPLETED or FAILED, with the exception it gave. Otherwise the state is
    # read off the execution, as above.
    Column("parent_id", ID, nullable=True),
    Column("state", String(12), nullable=True),
    Column("exception_type", String(20), nullable=True),
    Column("exception_code", String(200), nullable=True),
    Column("exception_message", Text, nullable=True),
    Index("ix_work_items_process_id_id", "process_id", "id"),
    Index("ix_work_items_execution_id", "execution_id"),
)

# Files of a work item, uploaded in two steps (Robocorp's presigned-POST style): an
# upload slot with a one-time token, then the bytes.
work_item_files = Table(
    "work_item_files",
    metadata,
    Column("id", ID, primary_key=True),
    Column("work_item_id", ID, ForeignKey("work_items.id"), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_size", BigInteger, nullable=False),  # as announced; the upload must match
    Column("upload_hash", String(64), nullable=True),  # sha256 of the one-time token
    Column("upload_expires_at", UTCDateTime, nullable=True),
    Column("content", LargeBinary, nullable=True),  # null until uploaded
    Column("created_at", UTCDateTime, nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=True),
    Index("ix_work_item_files_work_item_id", "work_item_id"),
)

# Schedules: a deployment's executions started on a timetable (domain/schedules.py).
# `next_due_at` is the next due instant not yet looked at; a look at a due schedule
# starts its executions and moves it on in one transaction.
schedules = Table(
    "schedules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),
    Column("process_id", ID, ForeignKey("processes.id"), nullable=False),
    Column("environment_id", ID, ForeignKey("environments.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("input_arguments", JSON, nullable=False),  # secret ones masked
    Column("secret_arguments", SealedJSON, nullable=False),
    Column("missed", String(10), nullable=False),  # skip | last
    Column("enabled", Boolean, nullable=False),
    Column("source", String(10), nullable=False),  # api | manifest (declared in runplane.toml)
    Column("next_due_at", UTCDateTime, nullable=True),  # null: paused, or never due again
    Column("last_due_at", UTCDateTime, nullable=True),
    Column("last_execution_id", ID, nullable=True),
    Column("last_error", Text, nullable=True),  # why the last due time started nothing
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("process_id", "environment_id", "name"),
    Index("ix_schedules_next_due_at", "next_due_at"),
    Index("ix_schedules_workspace_id", "workspace_id"),
)

# Files a run left in its artifacts folder (a Robocorp robot's artifactsDir), kept
# with the execution: by attempt and path within the folder.
execution_artifacts = Table(
    "execution_artifacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("execution_id", "attempt", "name"),
)

# People who sign in to the web console. A name is unique in the installation;
# a user's rights are a role per workspace (domain.users.Role).
users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # Argon2id, with its parameters
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("last_sign_in_at", UTCDateTime, nullable=True),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), primary_key=True),
    Column("role", String(20), nullable=False),
    Index("ix_user_roles_workspace_id", "workspace_id"),
)

# Signed-in sessions, by the digest of their token; a session that ends is deleted,
# an idle one is purged by the sweeper.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the session token
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("workspace_id", ID, ForeignKey("workspaces.id"), nullable=False),  # it acts in
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("client_address", String(100), nullable=True),
    Column("user_agent", String(300), nullable=True),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_last_seen_at", "last_seen_at"),
)
