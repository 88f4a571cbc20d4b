"""work_items: output items (parent_id) and released states (state, exception_*), for
Robocorp robots calling the work-items API from inside a run

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = (
    ("parent_id", sa.String(36)),
    ("state", sa.String(12)),
    ("exception_type", sa.String(20)),
    ("exception_code", sa.String(200)),
    ("exception_message", sa.Text()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("work_items", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
