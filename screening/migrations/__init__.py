"""Schema migrations (Alembic), run automatically when a project is opened.

A project made by an older version opens after an upgrade: ``upgrade`` brings it
to the newest revision. A project made by a newer version is refused rather than
damaged.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from ..errors import SchemaError

HERE = Path(__file__).parent


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


MIGRATION_LOCK = 7_361_204  # PostgreSQL advisory lock: one process migrates a project at a time


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema revision."""
    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaError(
            f"database schema revision {current!r} is newer than this version of screening; upgrade screening"
        )
    if current == script.get_current_head():
        return
    cfg = alembic_config()
    # Two processes may open an old project at once: the second waits for the first's lock
    # (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), then finds nothing left to do.
    with engine.connect() as conn, conn.execution_options(screening_write=True).begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        if MigrationContext.configure(conn).get_current_revision() == script.get_current_head():
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
