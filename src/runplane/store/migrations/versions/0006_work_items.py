"""work_items, work_item_files: Robocorp-style work items (each the payload of one run)
and their uploaded files

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("process_id", sa.String(36), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("public_payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_work_items_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["process_id"], ["processes.id"], name=op.f("fk_work_items_process_id_processes")
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"], name=op.f("fk_work_items_execution_id_executions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
    )
    op.create_index("ix_work_items_process_id_id", "work_items", ["process_id", "id"])
    op.create_index("ix_work_items_execution_id", "work_items", ["execution_id"])
    op.create_table(
        "work_item_files",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("work_item_id", sa.String(36), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("upload_hash", sa.String(64), nullable=True),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_work_item_files_work_item_id_work_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item_files")),
    )
    op.create_index("ix_work_item_files_work_item_id", "work_item_files", ["work_item_id"])


def downgrade() -> None:
    op.drop_index("ix_work_item_files_work_item_id", table_name="work_item_files")
    op.drop_table("work_item_files")
    op.drop_index("ix_work_items_execution_id", table_name="work_items")
    op.drop_index("ix_work_items_process_id_id", table_name="work_items")
    op.drop_table("work_items")
