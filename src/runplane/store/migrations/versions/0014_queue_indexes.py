"""executions (status, id) and (status, environment_id, id): a claim walks the queue in
id order and stops at its first candidates, where (status, environment_id, run_after)
made it sort every queued execution on each claim

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_queue", "executions", ["status", "id"])
    op.create_index(
        "ix_executions_queue_environment", "executions", ["status", "environment_id", "id"]
    )
    op.drop_index("ix_executions_claim", table_name="executions")


def downgrade() -> None:
    op.create_index("ix_executions_claim", "executions", ["status", "environment_id", "run_after"])
    op.drop_index("ix_executions_queue_environment", table_name="executions")
    op.drop_index("ix_executions_queue", table_name="executions")
