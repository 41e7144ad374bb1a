"""Index records.deleted_from_source: the dashboard counts live records on every decision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        batch_op.create_index("ix_records_deleted_from_source", ["deleted_from_source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        batch_op.drop_index("ix_records_deleted_from_source")
