"""executions (workspace_id, created_at, id): reports, and the id bounds of the listing's
time range

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_executions_workspace_id_created_at_id",
        "executions",
        ["workspace_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_executions_workspace_id_created_at_id", table_name="executions")
