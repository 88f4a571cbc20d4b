"""execution_events: every execution status change, for the event stream

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "execution_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("tx_position", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("process_id", sa.String(36), nullable=False),
        sa.Column("environment_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_execution_events"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_execution_events_workspace_id_tx_position_seq",
        "execution_events",
        ["workspace_id", "tx_position", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_execution_events_workspace_id_tx_position_seq", "execution_events")
    op.drop_table("execution_events")
