"""Volume, issue, pages and language become unbounded text: real exports put long values there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SIZES = {"volume": 100, "issue": 100, "pages": 100, "language": 50}


def upgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        for column, size in SIZES.items():
            batch_op.alter_column(column, existing_type=sa.String(size), type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        for column, size in SIZES.items():
            batch_op.alter_column(column, existing_type=sa.Text(), type_=sa.String(size), existing_nullable=True)
