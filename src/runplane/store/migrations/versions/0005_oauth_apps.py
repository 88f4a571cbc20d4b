"""oauth_apps: OAuth2 client-credentials apps; credentials.app_id for their access tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LIVE = "deleted_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("environment_ids", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_oauth_apps_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_apps")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_apps_client_id")),
    )
    op.create_index(
        "uq_oauth_apps_workspace_id_name_live",
        "oauth_apps",
        ["workspace_id", "name"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    # SQLite cannot add a foreign key to an existing table: batch mode copies it.
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("app_id", sa.String(36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_credentials_app_id_oauth_apps"), "oauth_apps", ["app_id"], ["id"]
        )
        batch.create_index("ix_credentials_app_id_expires_at", ["app_id", "expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_index("ix_credentials_app_id_expires_at")
        batch.drop_constraint(op.f("fk_credentials_app_id_oauth_apps"), type_="foreignkey")
        batch.drop_column("app_id")
    op.drop_index("uq_oauth_apps_workspace_id_name_live", table_name="oauth_apps")
    op.drop_table("oauth_apps")
