"""Decisions that cannot race or be rewritten: revisions, one undo per decision, one resolution
chain per record and stage, leases on the records on screen, append-only against every statement.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A project screened by an older version may already hold what these rules forbid (two undo
rows of one decision, two resolutions of one record, written by racing processes). Those
rows are kept, as the audit trail they are; the unique indexes then cover only the rows
written from now on (``id`` above the highest id at upgrade), and the upgrade says so in
the audit log.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("decisions", "audit_log")
RESOLUTION_ROWS = "kind = 'resolution' AND value <> 'undo'"
DOUBLE_UNDOS = "SELECT count(*) FROM (SELECT undoes_id FROM decisions WHERE undoes_id IS NOT NULL GROUP BY undoes_id HAVING count(*) > 1) AS d"
DOUBLE_RESOLUTIONS = (
    f"SELECT count(*) FROM (SELECT record_id FROM decisions WHERE {RESOLUTION_ROWS} "
    "GROUP BY record_id, stage HAVING count(*) > 1) AS d"
)

# An INSERT OR REPLACE (or an upsert) deletes or rewrites the row it collides with, and SQLite
# fires no delete trigger for that unless recursive_triggers is on (a per-connection setting
# another program need not set): refuse every insert that collides with a row that exists.
SQLITE_NO_REPLACE = {
    "decisions": (
        "EXISTS (SELECT 1 FROM decisions WHERE id = NEW.id) "
        "OR (NEW.undoes_id IS NOT NULL AND EXISTS (SELECT 1 FROM decisions WHERE undoes_id = NEW.undoes_id)) "
        "OR (NEW.kind = 'resolution' AND NEW.value <> 'undo' AND EXISTS (SELECT 1 FROM decisions "
        f"WHERE {RESOLUTION_ROWS} AND record_id = NEW.record_id AND stage = NEW.stage "
        "AND coalesce(revises_id, 0) = coalesce(NEW.revises_id, 0)))"
    ),
    "audit_log": "EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)",
}


def _scalar(sql: str) -> int:
    return int(op.get_bind().execute(sa.text(sql)).scalar() or 0)


def _from_now_on(kept: int, max_id: int, rule: str) -> str | None:
    """The WHERE clause that exempts ``kept`` old rows breaking ``rule``, or None when none do."""
    if not kept:
        return None
    audit_log = sa.table(
        "audit_log",
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor"),
        sa.column("action"),
        sa.column("detail", sa.JSON()),
    )
    detail = {"rule": rule, "rows_before": kept, "enforced_from_decision_id": max_id + 1}
    op.bulk_insert(
        audit_log, [{"at": datetime.now(UTC), "actor": "migration 0004", "action": "schema_note", "detail": detail}]
    )
    return f"id > {max_id}"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # ALTER TABLE, not a batch rebuild: a rebuild drops the table its own new copy points at,
        # which foreign keys refuse once decisions exist (and would drop the triggers with it).
        op.execute(
            "ALTER TABLE decisions ADD COLUMN revises_id INTEGER "
            "CONSTRAINT fk_decisions_revises_id_decisions REFERENCES decisions (id)"
        )
    else:
        op.add_column("decisions", sa.Column("revises_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_decisions_revises_id_decisions", "decisions", "decisions", ["revises_id"], ["id"])
    _append_only_triggers(dialect)

    max_id = _scalar("SELECT coalesce(max(id), 0) FROM decisions")
    undo_where = _from_now_on(_scalar(DOUBLE_UNDOS), max_id, "one undo per decision")
    op.create_index(
        "uq_decisions_undoes_id",
        "decisions",
        ["undoes_id"],
        unique=True,
        sqlite_where=sa.text(undo_where) if undo_where else None,
        postgresql_where=sa.text(undo_where) if undo_where else None,
    )
    kept = _from_now_on(_scalar(DOUBLE_RESOLUTIONS), max_id, "one resolution per record and stage")
    where = RESOLUTION_ROWS + (f" AND {kept}" if kept else "")
    op.create_index(
        "uq_decisions_resolution_chain",
        "decisions",
        ["record_id", "stage", sa.text("coalesce(revises_id, 0)")],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )

    op.create_table(
        "leases",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stage IN ('title_abstract', 'full_text')", name=op.f("ck_leases_stage")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_leases_record_id_records"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["reviewers.id"], name=op.f("fk_leases_reviewer_id_reviewers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("record_id", "stage", "reviewer_id", name=op.f("pk_leases")),
    )


def _append_only_triggers(dialect: str) -> None:
    """Beside 0001's UPDATE and DELETE triggers: REPLACE and upserts (SQLite), TRUNCATE (PostgreSQL)."""
    for table in APPEND_ONLY:
        if dialect == "sqlite":
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN {SQLITE_NO_REPLACE[table]} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: this insert would replace a row'); END"
            )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION screening_append_only()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("leases")
    op.drop_index("uq_decisions_resolution_chain", table_name="decisions")
    op.drop_index("uq_decisions_undoes_id", table_name="decisions")
    for table in APPEND_ONLY:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("revises_id")
