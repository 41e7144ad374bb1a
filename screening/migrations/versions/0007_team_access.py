"""Team access: a reviewer's sign-in identity and the owner role.

``reviewers.email`` (kept lower-case, unique: an identity provider's verified email matches it
whatever its case) and ``reviewers.subject`` (the provider's ``sub`` claim, unique) tie a
reviewer to an OpenID Connect identity; ``reviewers.active`` is false for a reviewer whose
access was removed (their decisions stay, they can no longer sign in or decide). The role
check admits ``owner`` (settings, imports, searches, modes, stopping, the reviewer list).

SQLite cannot alter a CHECK constraint, and rebuilding ``reviewers`` would mean dropping a
table that decisions point at (RESTRICT). Widening a CHECK does not change how rows are
stored, so SQLite's documented way is used instead: the table's SQL in ``sqlite_master`` is
edited in this transaction and the schema version bumped.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('reviewer', 'adjudicator', 'system')"
NEW_ROLES = "role IN ('owner', 'reviewer', 'adjudicator', 'system')"


def _set_role_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_reviewers_role"), "reviewers", type_="check")
        op.create_check_constraint("role", "reviewers", new)
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'reviewers'", (old, new)
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'reviewers'").scalar()
    if new not in sql:
        raise RuntimeError(f"migration 0007: the reviewers table's role check is not {old!r}: {sql}")


def upgrade() -> None:
    op.add_column("reviewers", sa.Column("email", sa.String(length=320), nullable=True))
    op.add_column("reviewers", sa.Column("subject", sa.String(length=255), nullable=True))
    op.add_column("reviewers", sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_index("uq_reviewers_email", "reviewers", ["email"], unique=True)
    op.create_index("uq_reviewers_subject", "reviewers", ["subject"], unique=True)
    _set_role_check(OLD_ROLES, NEW_ROLES)


def downgrade() -> None:
    op.execute("UPDATE reviewers SET role = 'reviewer' WHERE role = 'owner'")
    _set_role_check(NEW_ROLES, OLD_ROLES)
    op.drop_index("uq_reviewers_subject", table_name="reviewers")
    op.drop_index("uq_reviewers_email", table_name="reviewers")
    for column in ("active", "subject", "email"):  # SQLite drops a column in place (3.35+): no rebuild
        op.drop_column("reviewers", column)
