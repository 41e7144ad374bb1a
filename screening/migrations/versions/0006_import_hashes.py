"""Re-imports and unfinished deduplication: ``sources.content_sha256`` (the imported file's content,
indexed, so a second import of it is noticed) and ``sources.deduped_at`` (set by the deduplication
that took the source's records in; empty after an import whose deduplication did not finish).

Sources already in a project were deduplicated by the import that made them (the CLI's
default), so they get ``deduped_at = run_at``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("content_sha256", sa.String(length=64), nullable=True))
    op.add_column("sources", sa.Column("deduped_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_sources_content_sha256", "sources", ["content_sha256"], unique=False)
    op.execute("UPDATE sources SET deduped_at = run_at")


def downgrade() -> None:
    op.drop_index("ix_sources_content_sha256", table_name="sources")
    with op.batch_alter_table("sources") as batch_op:
        batch_op.drop_column("deduped_at")
        batch_op.drop_column("content_sha256")
