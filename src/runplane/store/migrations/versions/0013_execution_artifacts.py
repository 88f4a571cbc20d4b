"""execution_artifacts: the files a run left in its artifacts folder

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "execution_artifacts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_artifacts_execution_id_executions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_artifacts")),
        sa.UniqueConstraint(
            "execution_id",
            "attempt",
            "name",
            name=op.f("uq_execution_artifacts_execution_id_attempt_name"),
        ),
    )


def downgrade() -> None:
    op.drop_table("execution_artifacts")
