"""Decisions and the audit log are append-only against every statement, on SQLite and PostgreSQL.

UPDATE and DELETE were refused before; these cover the statements that rewrite a row by
other means: SQLite's INSERT OR REPLACE and REPLACE (whose implicit delete fires no trigger
unless recursive_triggers is on, which another program need not set), upserts, MERGE and
PostgreSQL's TRUNCATE. Also: an old project that already holds two undos of one decision
(written by racing processes before this version) upgrades, keeps them, and refuses a new one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from screening import decisions as d
from screening.ingest import add_citations, new_source
from screening.migrations import alembic_config
from screening.reviewers import add_reviewer
from screening.schema import AuditEvent, Decision
from screening.sources import Citation
from screening.store import Store, init_project, make_engine, open_store, resolve_url

TITLES = ("Psilocybin for cluster headache", "Ketamine infusions in fibromyalgia", "LSD microdosing and pain")


def _seed(store: Store) -> list[int]:
    with store.begin() as s:
        ids = add_citations(s, new_source(s, name="PubMed"), [Citation(title=t) for t in TITLES]).record_ids
    add_reviewer(store, "alice")
    add_reviewer(store, "bob")
    return ids


def _rows(store: Store) -> list[tuple]:
    with store.read() as s:
        return [tuple(r) for r in s.execute(text("SELECT id, record_id, value, undoes_id FROM decisions ORDER BY id"))]


COLUMNS = "(id, record_id, reviewer_id, stage, value, kind, reason, note, undoes_id, created_at)"
ROW = "(:id, :rid, 1, 'title_abstract', 'exclude', 'screen', NULL, NULL, NULL, {now})"
UNDO_ROW = "({new_id}, :rid, 2, 'title_abstract', 'undo', 'screen', NULL, NULL, :id, CURRENT_TIMESTAMP)"
SQLITE_ROW, PG_ROW = ROW.format(now="CURRENT_TIMESTAMP"), ROW.format(now="now()")
REWRITES = {
    "sqlite": [
        f"INSERT OR REPLACE INTO decisions {COLUMNS} VALUES {SQLITE_ROW}",
        f"REPLACE INTO decisions {COLUMNS} VALUES {SQLITE_ROW}",
        f"INSERT INTO decisions {COLUMNS} VALUES {SQLITE_ROW} ON CONFLICT (id) DO UPDATE SET value = 'exclude'",
        # an undo that would replace the existing undo of the same decision (the one-undo index)
        f"INSERT OR REPLACE INTO decisions {COLUMNS} VALUES {UNDO_ROW.format(new_id='NULL')}",
        "INSERT OR REPLACE INTO audit_log (id, at, actor, action, detail) "
        "VALUES (1, CURRENT_TIMESTAMP, 'x', 'x', '{}')",
        "UPDATE OR REPLACE decisions SET value = 'exclude' WHERE id = :id",
    ],
    "postgresql": [
        f"INSERT INTO decisions {COLUMNS} VALUES {PG_ROW} ON CONFLICT (id) DO UPDATE SET value = 'exclude'",
        "INSERT INTO audit_log (id, at, actor, action, detail) VALUES (1, now(), 'x', 'x', '{}') "
        "ON CONFLICT (id) DO UPDATE SET actor = 'x'",
        f"INSERT INTO decisions {COLUMNS} VALUES {UNDO_ROW.format(new_id='DEFAULT')} "
        "ON CONFLICT (undoes_id) DO UPDATE SET note = 'x'",
        "MERGE INTO decisions AS d USING (SELECT CAST(:id AS INTEGER) AS id) AS s ON d.id = s.id "
        "WHEN MATCHED THEN DELETE",
        "TRUNCATE decisions CASCADE",
        "TRUNCATE audit_log",
    ],
}


def _backend(db: str) -> str:
    return "postgresql" if db.startswith("postgresql") else "sqlite"


@pytest.mark.parametrize("statement", range(6))
def test_no_statement_rewrites_a_decision_or_an_audit_event(any_db: str, statement: int) -> None:
    statements = REWRITES[_backend(any_db)]
    with init_project(any_db, name="Append-only") as store:
        ids = _seed(store)
        first = d.decide(store, ids[0], "include", reviewer="alice")
        d.undo(store, reviewer="alice")
        before, events = _rows(store), _events(store)
        with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
            s.execute(text(statements[statement]), {"id": first.id, "rid": ids[0]})
        assert _rows(store) == before and _events(store) == events


def _events(store: Store) -> list[tuple]:
    with store.read() as s:
        return [tuple(r) for r in s.execute(select(AuditEvent.id, AuditEvent.action, AuditEvent.actor))]


def test_another_program_cannot_replace_a_decision_either(tmp_path: Path) -> None:
    """The sqlite3 shell or a script: no recursive_triggers, no foreign keys; the project's own triggers still hold."""
    path = tmp_path / "project.db"
    with init_project(path, name="Append-only") as store:
        ids = _seed(store)
        first = d.decide(store, ids[0], "include", reviewer="alice")
        d.undo(store, reviewer="alice")
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA recursive_triggers").fetchone() == (0,)
        for statement in REWRITES["sqlite"]:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(statement.replace(":id", str(first.id)).replace(":rid", str(ids[0])))
            con.rollback()
        assert con.execute("SELECT value FROM decisions ORDER BY id").fetchall() == [("include",), ("undo",)]
    finally:
        con.close()


def test_one_undo_per_decision_and_one_resolution_chain_hold_in_the_database(any_db: str) -> None:
    """Written around the library, straight into the table: the unique indexes refuse the second row."""
    with init_project(any_db, name="Rules") as store:
        ids = _seed(store)
        first = d.decide(store, ids[0], "include", reviewer="alice")
        d.undo(store, reviewer="alice")
        with pytest.raises(DatabaseError), store.begin() as s:
            s.add(Decision(record_id=ids[0], reviewer_id=2, value="undo", kind="screen", undoes_id=first.id))
        with store.begin() as s:
            s.add(Decision(record_id=ids[1], reviewer_id=2, value="include", kind="resolution"))
        with pytest.raises(DatabaseError), store.begin() as s:
            s.add(Decision(record_id=ids[1], reviewer_id=1, value="exclude", kind="resolution"))
        with store.read() as s:
            assert s.scalar(select(func.count()).select_from(Decision).where(Decision.kind == "resolution")) == 1


def test_an_old_project_with_double_undos_upgrades_keeps_them_and_refuses_new_ones(any_db: str) -> None:
    url = resolve_url(any_db)
    engine = make_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:  # a project as version 0003 made it
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('name', '\"Old review\"')"))
        conn.execute(
            text("INSERT INTO reviewers (name, role, created_at) VALUES ('alice', 'reviewer', CURRENT_TIMESTAMP)")
        )
        conn.execute(
            text(
                "INSERT INTO records (title, abstract, authors, journal, mesh_terms, keywords, publication_types, "
                "retracted, deleted_from_source, extra, title_key, created_at) VALUES ('Ketamine for migraine', '', "
                "'[]', '', '[]', '[]', '[]', false, false, '{}', 'ketamine for migraine', CURRENT_TIMESTAMP)"
            )
        )
        insert = (
            "INSERT INTO decisions (record_id, reviewer_id, stage, value, kind, undoes_id, created_at) "
            "VALUES (1, 1, 'title_abstract', :value, 'screen', :undoes, CURRENT_TIMESTAMP)"
        )
        conn.execute(text(insert), {"value": "include", "undoes": None})
        for _ in range(2):  # two racing undo commands of the old version
            conn.execute(text(insert), {"value": "undo", "undoes": 1})
    engine.dispose()
    with open_store(any_db) as store:
        with store.read() as s:
            note = s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "schema_note"))
            assert note == {"rule": "one undo per decision", "rows_before": 1, "enforced_from_decision_id": 4}
            assert s.scalar(select(func.count()).select_from(Decision)) == 3  # nothing deleted
        d.decide(store, 1, "exclude", reviewer="alice")
        latest = d.undo(store, reviewer="alice")
        with pytest.raises(DatabaseError), store.begin() as s:
            s.add(Decision(record_id=1, reviewer_id=1, value="undo", kind="screen", undoes_id=latest.undoes_id))
