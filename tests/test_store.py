"""The project store: real SQLite files, migrations, transactions, append-only rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from screening.errors import ConfigError, RecordNotFound, SchemaError, StoreError
from screening.ingest import add_citations, new_source
from screening.migrations import alembic_config, current_revision, head_revision
from screening.schema import AuditEvent, Decision, Record, Reviewer
from screening.sources import Citation
from screening.store import Store, init_project, make_engine, open_store, resolve_url


def test_new_project_is_a_wal_sqlite_file_at_the_newest_schema(store: Store, db_path: Path) -> None:
    assert db_path.exists()
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert current_revision(store.engine) == head_revision()
    with store.read() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert store.get_setting("name") == "Test review"
    assert store.get_setting("query") == "psilocybin AND pain"


def test_reopening_keeps_settings_and_logs_init(store: Store, db_path: Path) -> None:
    store.close()
    with open_store(db_path) as again:
        assert again.settings()["name"] == "Test review"
        with again.read() as s:
            actions = s.scalars(select(AuditEvent.action)).all()
    assert "init" in actions


def test_missing_file_is_not_created_silently(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such project"):
        open_store(tmp_path / "typo.db")
    assert not (tmp_path / "typo.db").exists()


def test_a_sqlite_file_that_is_not_a_project_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(SchemaError, match="not a screening project"):
        open_store(other)


def test_a_project_from_a_newer_version_is_refused(store: Store, db_path: Path) -> None:
    store.close()
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = '9999_future'")
    con.commit()
    with pytest.raises(SchemaError, match="newer than this version"):
        open_store(db_path)


def test_a_project_at_the_first_revision_opens_after_an_upgrade(db_path: Path) -> None:
    """A project made by the first release (schema revision 0001) opens with this version, data intact."""
    engine = make_engine(resolve_url(db_path))
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('name', '\"Old review\"')"))
        conn.execute(
            text(
                "INSERT INTO records (title, abstract, authors, journal, mesh_terms, keywords, publication_types, "
                "retracted, deleted_from_source, extra, title_key, created_at) VALUES ('Psilocybin and pain', '', "
                "'[]', '', '[]', '[]', '[]', 0, 0, '{}', 'psilocybin and pain', '2025-01-01 00:00:00')"
            )
        )
    engine.dispose()
    with open_store(db_path) as store:
        assert current_revision(store.engine) == head_revision()
        assert store.get_setting("name") == "Old review"
        assert store.get_record(1).title == "Psilocybin and pain"


def test_resolve_url_accepts_paths_urls_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url(tmp_path / "p.db") == f"sqlite:///{tmp_path / 'p.db'}"
    assert resolve_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    monkeypatch.setenv("SCREENING_DB", str(tmp_path / "env.db"))
    assert resolve_url(None).endswith("env.db")
    monkeypatch.delenv("SCREENING_DB")
    with pytest.raises(ConfigError, match="SCREENING_DB"):
        resolve_url(None)


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.begin() as s:
        add_citations(s, new_source(s, name="Embase"), [Citation(title="Ketamine for fibromyalgia")])
        raise RuntimeError("killed half-way")
    assert store.counts().records == 0
    assert store.counts().sources == 0


def test_decisions_and_audit_log_are_append_only_in_the_database(store: Store) -> None:
    with store.begin() as s:
        add_citations(s, new_source(s, name="PubMed"), [Citation(title="LSD for migraine", pmid="7", label=1)])
    with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
        s.execute(text("UPDATE decisions SET value = 'exclude'"))
    with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
        s.execute(text("DELETE FROM audit_log"))
    with store.read() as s:
        decision = s.scalars(select(Decision)).one()
        assert decision.value == "include" and decision.kind == "prior"
        assert s.get(Reviewer, decision.reviewer_id).name == "import"


def test_schema_rules_reject_bad_values(store: Store) -> None:
    with store.begin() as s:
        add_citations(s, new_source(s, name="PubMed"), [Citation(title="MDMA and pain", pmid="8")])
    with pytest.raises(DatabaseError), store.begin() as s:
        s.execute(
            text(
                "INSERT INTO decisions (record_id, stage, value, kind, created_at) "
                "VALUES (1, 'x', 'include', 'screen', '2026-01-01')"
            )
        )
    with pytest.raises(DatabaseError), store.begin() as s:
        s.execute(text("UPDATE records SET canonical_id = 999 WHERE id = 1"))


def test_get_record_names_the_missing_id(store: Store) -> None:
    with pytest.raises(RecordNotFound, match="42"):
        store.get_record(42)


def test_deleted_citations_mark_existing_records(store: Store) -> None:
    with store.begin() as s:
        add_citations(s, new_source(s, name="PubMed"), [Citation(title="A", pmid="11"), Citation(title="B", pmid="12")])
    with store.begin() as s:
        result = add_citations(s, new_source(s, name="PubMed update"), [Citation(pmid="11", deleted=True)])
    assert result.deleted_pmids == ["11"]
    with store.read() as s:
        flags = dict(s.execute(select(Record.pmid, Record.deleted_from_source)).all())
    assert flags == {"11": True, "12": False}


def test_init_on_an_existing_project_is_refused_and_keeps_it_as_it_was(db_path: Path) -> None:
    with init_project(db_path, name="First") as s1, s1.begin() as s:
        add_citations(s, new_source(s, name="PubMed"), [Citation(title="Ketamine infusion for CRPS", pmid="5")])
    with pytest.raises(StoreError, match=r"already a screening project \('First'\)"):
        init_project(db_path, name="Renamed")
    with open_store(db_path) as s2:
        assert s2.counts().records == 1
        assert s2.get_setting("name") == "First"  # not silently renamed


def test_init_on_another_applications_sqlite_file_is_refused_and_adds_no_table(tmp_path: Path) -> None:
    path = tmp_path / "zotero.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (itemID INTEGER PRIMARY KEY, key TEXT)")
        conn.execute("CREATE TABLE collections (collectionID INTEGER PRIMARY KEY)")
    with pytest.raises(
        SchemaError, match=r"not a screening project, and not empty \(it holds the tables collections, items\)"
    ):
        init_project(path, name="Review")
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"items", "collections"}


def test_the_migrations_build_exactly_the_schema_of_the_models(store: Store) -> None:
    """A model change without its migration (or the reverse) fails here, not on a user's project."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from screening.schema import Base

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_odd_identifiers_are_kept_aside_and_long_fields_kept_whole(store: Store) -> None:
    long_issue = "Supplement: " + "proceedings of the annual meeting " * 7  # a real Covidence export has such
    with store.begin() as s:
        add_citations(
            s,
            new_source(s, name="Embase"),
            [
                Citation(title="Ketamine for CRPS", pmid="PMID: 12345", doi="10.1/x", issue=long_issue),
                Citation(title="LSD and pain", pmid="n/a", doi="not-a-doi"),
            ],
        )
    with store.read() as s:
        rows = s.execute(select(Record.pmid, Record.doi, Record.extra, Record.issue).order_by(Record.id)).all()
    assert rows[0][:2] == ("12345", "10.1/x") and rows[0][3] == long_issue
    assert rows[1][0] is None and rows[1][1] is None and rows[1][2]["pmid_as_given"] == "n/a"
