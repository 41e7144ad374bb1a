"""Stopping a stage early: the ``stops`` table (append-only) and ``decisions.stop_id``; an index on
``records.retracted`` (the stopping rule's pool leaves retracted records out, after every decision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_NO_REPLACE = (
    "EXISTS (SELECT 1 FROM stops WHERE id = NEW.id) "
    "OR (NEW.undoes_id IS NOT NULL AND EXISTS (SELECT 1 FROM stops WHERE undoes_id = NEW.undoes_id))"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=50), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("undoes_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stage IN ('title_abstract', 'full_text')", name=op.f("ck_stops_stage")),
        sa.CheckConstraint("records >= 0", name=op.f("ck_stops_records_nonneg")),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["reviewers.id"], name=op.f("fk_stops_reviewer_id_reviewers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["undoes_id"], ["stops.id"], name=op.f("fk_stops_undoes_id_stops"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stops")),
        sa.UniqueConstraint("undoes_id", name=op.f("uq_stops_undoes_id")),
    )
    if dialect == "sqlite":  # ALTER TABLE, not a batch rebuild (see 0004)
        op.execute(
            "ALTER TABLE decisions ADD COLUMN stop_id INTEGER CONSTRAINT fk_decisions_stop_id_stops REFERENCES stops (id)"
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER stops_no_{verb.lower()} BEFORE {verb} ON stops "
                "BEGIN SELECT RAISE(ABORT, 'stops is append-only'); END"
            )
        op.execute(
            f"CREATE TRIGGER stops_no_replace BEFORE INSERT ON stops WHEN {SQLITE_NO_REPLACE} "
            "BEGIN SELECT RAISE(ABORT, 'stops is append-only: this insert would replace a row'); END"
        )
    else:
        op.add_column("decisions", sa.Column("stop_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_decisions_stop_id_stops", "decisions", "stops", ["stop_id"], ["id"])
        if dialect == "postgresql":
            op.execute(
                "CREATE TRIGGER stops_append_only BEFORE UPDATE OR DELETE ON stops "
                "FOR EACH ROW EXECUTE FUNCTION screening_append_only()"
            )
            op.execute(
                "CREATE TRIGGER stops_no_truncate BEFORE TRUNCATE ON stops "
                "FOR EACH STATEMENT EXECUTE FUNCTION screening_append_only()"
            )
    op.create_index("ix_decisions_stop_id", "decisions", ["stop_id"], unique=False)
    op.create_index("ix_records_retracted", "records", ["retracted"], unique=False)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_records_retracted", table_name="records")
    op.drop_index("ix_decisions_stop_id", table_name="decisions")
    if dialect == "sqlite":
        for name in ("update", "delete", "replace"):
            op.execute(f"DROP TRIGGER IF EXISTS stops_no_{name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS stops_append_only ON stops")
        op.execute("DROP TRIGGER IF EXISTS stops_no_truncate ON stops")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("stop_id")
    op.drop_table("stops")
