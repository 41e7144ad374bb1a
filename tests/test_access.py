"""Roles and the signed-in identity, enforced in the library (``screening.access``), on real projects.

Every test runs on a SQLite file and on a database of the throwaway PostgreSQL server.
The identity is what the dashboard uses when sign-in is configured: ``store.acting_as``
of the reviewer an identity provider's user maps to (``access.sign_in``). A store with no
identity is the local administrator (the CLI), for whom nothing changes.
"""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from screening import access
from screening import decisions as d
from screening.cli import app
from screening.dedupe import dedupe
from screening.errors import AccessError, ConfigError, DecisionError
from screening.ingest import add_citations, import_file, new_source
from screening.migrations import alembic_config
from screening.progress import claim_next
from screening.queries import export_rows, reviewer_decisions
from screening.ranking.project import set_embeddings
from screening.reviewers import add_reason, add_reviewer, list_reviewers, set_mode, update_reviewer
from screening.schema import AuditEvent, Decision, Reviewer
from screening.server import backup, streamlit_command
from screening.setup import ProjectSetup, read_setup, save_setup
from screening.sources import Citation
from screening.stops import save_stop_settings, stop_stage, undo_stop
from screening.store import Store, init_project, make_engine, open_store, resolve_url

FIXTURES = Path(__file__).parent / "fixtures"
ESTROGENS = FIXTURES / "prisma" / "estrogens_16.csv"


def _citations() -> list[Citation]:
    with ESTROGENS.open(encoding="utf-8", newline="") as f:
        return [Citation(title=r["title"], abstract=r["abstract"], pmid=r["pmid"] or None) for r in csv.DictReader(f)]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "team.db")


@pytest.fixture
def team(db: str) -> tuple[Store, list[int]]:
    """16 real records; an owner, two reviewers and an adjudicator, each with a sign-in."""
    store = init_project(db, name="Team review", query="estrogens")
    with store.begin() as s:
        ids = add_citations(s, new_source(s, name="PubMed"), _citations()).record_ids
    add_reviewer(store, "olga", role="owner", email="Olga@Lab.example")
    add_reviewer(store, "rui", email="rui@lab.example")
    add_reviewer(store, "sam", email="sam@lab.example")
    add_reviewer(store, "ada", role="adjudicator", subject="provider|ada")
    add_reason(store, "Wrong population")
    yield store, ids
    store.close()


def as_(store: Store, email: str | None = None, subject: str | None = None) -> Store:
    return store.acting_as(access.sign_in(store, email=email, email_verified=True, subject=subject))


def refused(store: Store) -> list[dict]:
    with store.read() as s:
        return list(s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "access_refused")))


def decision_count(store: Store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count(Decision.id)))


# -- sign-in ---------------------------------------------------------------------------------------------------
def test_sign_in_maps_a_verified_email_whatever_its_case_or_the_subject(team) -> None:
    store, _ = team
    olga = access.sign_in(store, email="OLGA@lab.EXAMPLE ", email_verified=True)
    assert (olga.name, olga.role, olga.email) == ("olga", "owner", "olga@lab.example")
    assert access.sign_in(store, subject="provider|ada", email="whatever@x.example").name == "ada"
    assert refused(store) == []


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"email": "eve@elsewhere.example", "email_verified": True}, "is not on this project's list"),
        ({"email": "rui@lab.example", "email_verified": False}, "not verified by the provider"),
        ({"subject": "provider|nobody"}, "is not on this project's list"),
        ({}, "without email or subject"),
    ],
)
def test_an_identity_not_on_the_list_or_unverified_is_refused_and_logged(team, claims: dict, why: str) -> None:
    store, _ = team
    with pytest.raises(AccessError, match=why):
        access.sign_in(store, **claims)
    [logged] = refused(store)
    assert logged["doing"] == "sign in" and logged["claimed"]["email"] == claims.get("email")


def test_the_system_reviewer_and_a_removed_reviewer_cannot_sign_in(team) -> None:
    store, _ = team
    update_reviewer(store, "rui", active=False)
    with pytest.raises(AccessError, match="no longer on this project's list"):
        access.sign_in(store, email="rui@lab.example", email_verified=True)
    with store.begin() as s:
        s.add(Reviewer(name="import", role="system", email="import@lab.example"))
    with pytest.raises(AccessError, match="is not on"):
        access.sign_in(store, email="import@lab.example", email_verified=True)


# -- the reviewer list ----------------------------------------------------------------------------------------
def test_emails_are_unique_whatever_their_case_and_roles_checked(team) -> None:
    store, _ = team
    with pytest.raises(ConfigError, match="already the sign-in of reviewer 'rui'"):
        add_reviewer(store, "rui2", email="RUI@lab.example")
    with pytest.raises(ConfigError, match="--role: 'boss'"):
        add_reviewer(store, "x", role="boss")
    with pytest.raises(ConfigError, match="not an email"):
        add_reviewer(store, "x", email="not an email")
    with store.begin() as s:  # the database holds the rule too
        s.add(Reviewer(name="y", role="owner"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), store.begin() as s:
        s.add(Reviewer(name="z", email="sam@lab.example"))


def test_removing_access_keeps_decisions_and_stops_the_next_action(team) -> None:
    store, ids = team
    rui = as_(store, "rui@lab.example")
    d.decide(rui, ids[0], "include", reviewer="rui")
    update_reviewer(store, "rui", active=False)  # while rui is signed in
    with pytest.raises(AccessError, match="no longer has access"):
        d.decide(rui, ids[1], "exclude", reviewer="rui")
    with pytest.raises(DecisionError, match="no longer has access"):  # the CLI cannot decide as rui either
        d.decide(store, ids[1], "exclude", reviewer="rui")
    assert [r.name for r in list_reviewers(store) if not r.active] == ["rui"]
    assert [(e.reviewer, e.value) for e in d.history(store, ids[0])] == [("rui", "include")]
    update_reviewer(store, "rui", active=True)
    d.decide(rui, ids[1], "exclude", reviewer="rui")


def test_the_last_owner_stays(team) -> None:
    store, _ = team
    with pytest.raises(ConfigError, match="last owner"):
        update_reviewer(store, "olga", role="reviewer")
    update_reviewer(store, "sam", role="owner")
    update_reviewer(store, "olga", role="reviewer", email="olga@new.example")
    assert access.sign_in(store, email="olga@new.example", email_verified=True).role == "reviewer"


# -- only owners change the project ----------------------------------------------------------------------------
def test_only_owners_change_settings_imports_searches_modes_stopping_and_the_list(team, tmp_path: Path) -> None:
    store, _ = team
    extra = tmp_path / "extra.csv"
    extra.write_text("title,abstract\nA new trial of estrogens,An abstract\n", encoding="utf-8")
    owner_jobs = {
        "settings": lambda s: save_setup(s, ProjectSetup(name="Renamed", query="estrogens")),
        "setting": lambda s: s.set_setting("keywords", {"include": ["estrogen"], "exclude": []}),
        "mode": lambda s: set_mode(s, "title_abstract", "dual", blind=True),
        "stopping": lambda s: save_stop_settings(s, rule="buscar", target=0.95, confidence=0.95),
        "reason": lambda s: add_reason(s, "Wrong comparator"),
        "reviewer": lambda s: add_reviewer(s, "tom", email="tom@lab.example"),
        "role": lambda s: update_reviewer(s, "sam", role="adjudicator"),
        "import": lambda s: import_file(s, extra, source_name="Embase"),
        "dedupe": lambda s: dedupe(s),
        "embeddings": lambda s: set_embeddings(s, False),
    }
    for who in (as_(store, "rui@lab.example"), as_(store, subject="provider|ada")):
        for job, run in owner_jobs.items():
            with pytest.raises(AccessError, match=r"cannot .* that takes owner"):
                run(who)
            assert refused(store)[-1]["reviewer"] == who.identity.name, job
    assert read_setup(store).name == "Team review" and store.counts().sources == 1
    assert len(refused(store)) == 2 * len(owner_jobs)
    olga = as_(store, "olga@lab.example")
    for run in owner_jobs.values():
        run(olga)
    assert read_setup(store).name == "Renamed" and store.counts().sources == 2
    with store.read() as s:  # every write carries the signed-in identity, whatever actor the caller named
        [(actor, detail)] = s.execute(
            select(AuditEvent.actor, AuditEvent.detail)
            .where(AuditEvent.action == "setting", AuditEvent.detail["key"].as_string() == "name")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).all()
    assert actor == "olga" and detail["signed_in_as"] == "olga@lab.example"
    assert "tom" in [r.name for r in list_reviewers(store)]


# -- decisions only as yourself ---------------------------------------------------------------------------------
def test_a_decision_is_never_recorded_under_another_reviewers_name(team) -> None:
    store, ids = team
    rui, olga = as_(store, "rui@lab.example"), as_(store, "olga@lab.example")
    for who, other in ((rui, "sam"), (rui, "olga"), (olga, "rui")):  # an owner is no exception
        with pytest.raises(AccessError, match=f"cannot .* as '{other}'"):
            d.decide(who, ids[0], "include", reviewer=other)
        with pytest.raises(AccessError):
            d.undo(who, reviewer=other)
        with pytest.raises(AccessError):
            claim_next(who, ids, reviewer=other)
        with pytest.raises(AccessError):
            d.set_retrieval(who, ids[0], True, reviewer=other)
    with pytest.raises(AccessError, match="kind 'prior'"):
        d.decide(rui, ids[0], "include", reviewer="rui", kind="prior")
    assert decision_count(store) == 0
    assert len(refused(store)) == 13
    d.decide(rui, ids[0], "include", reviewer="rui")
    d.decide(store, ids[1], "exclude", reviewer="sam")  # the administrator (CLI) decides for anyone, as before
    with store.read() as s:
        rows = s.execute(select(Decision.record_id, Reviewer.name).join(Reviewer).order_by(Decision.id)).all()
    assert [tuple(r) for r in rows] == [(ids[0], "rui"), (ids[1], "sam")]


def test_adjudicators_and_owners_resolve_conflicts_reviewers_do_not(team) -> None:
    store, ids = team
    set_mode(store, "title_abstract", "dual")
    for record in ids[:2]:
        d.decide(as_(store, "rui@lab.example"), record, "include", reviewer="rui")
        d.decide(as_(store, "sam@lab.example"), record, "exclude", reviewer="sam")
    add_reviewer(store, "uma", email="uma@lab.example")
    with pytest.raises(AccessError, match="cannot resolve a conflict: that takes owner or adjudicator"):
        d.resolve(as_(store, "uma@lab.example"), ids[0], "include", reviewer="uma", stage="title_abstract")
    d.resolve(as_(store, subject="provider|ada"), ids[0], "include", reviewer="ada", stage="title_abstract")
    d.resolve(as_(store, "olga@lab.example"), ids[1], "exclude", reviewer="olga", stage="title_abstract")
    assert d.conflicts(store) == []


def test_a_signed_in_reviewer_cannot_stop_screening_an_owner_can(team) -> None:
    store, _ = team
    with pytest.raises(AccessError, match="cannot stop screening: that takes owner or adjudicator"):
        stop_stage(as_(store, "rui@lab.example"), reviewer="rui", force=True, note="enough")
    stopped = stop_stage(as_(store, "olga@lab.example"), reviewer="olga", force=True, note="enough")
    assert stopped.stop.reviewer == "olga"
    with pytest.raises(AccessError):
        undo_stop(as_(store, "rui@lab.example"), reviewer="rui")
    undo_stop(as_(store, subject="provider|ada"), reviewer="ada")


# -- blind mode on every read ----------------------------------------------------------------------------------
def test_blind_mode_holds_for_a_reviewer_on_every_read(team) -> None:
    store, ids = team
    set_mode(store, "title_abstract", "dual", blind=True)
    rui, sam = as_(store, "rui@lab.example"), as_(store, "sam@lab.example")
    d.decide(rui, ids[0], "include", reviewer="rui")  # one vote: blind holds
    d.decide(rui, ids[1], "include", reviewer="rui")
    d.decide(sam, ids[1], "include", reviewer="sam")  # two votes: blind lifts
    assert d.visible_decisions(sam, ids[0], viewer="sam") == []
    assert d.history(sam, ids[0]) == []
    assert [e.reviewer for e in d.history(rui, ids[0])] == ["rui"]
    assert {e.reviewer for e in d.history(sam, ids[1])} == {"rui", "sam"}
    assert [e.reviewer for e in d.history(store, ids[0])] == ["rui"]  # the administrator sees all
    with pytest.raises(AccessError):
        d.visible_decisions(sam, ids[0], viewer="rui")
    with pytest.raises(AccessError):
        reviewer_decisions(sam, "rui")
    assert [r.record_id for r in reviewer_decisions(sam, "sam")] == [ids[1]]
    rows = {row["id"]: row for row in export_rows(sam)}  # exports carry only final decisions
    assert rows[ids[0]]["decision"] is None and rows[ids[1]]["decision"] == "include"


# -- the CLI stays the administrator's tool --------------------------------------------------------------------
def test_the_cli_manages_roles_sign_ins_and_access(db: str) -> None:
    init_project(db, name="CLI review").close()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == 0, result.output
        return result.output

    assert "Added reviewer olga (owner, signs in as olga@lab.example)" in run(
        "reviewers", "add", "olga", "--role", "owner", "--email", "Olga@Lab.example"
    )
    run("reviewers", "add", "rui", "--email", "rui@lab.example")
    assert "rui: adjudicator, rui@lab.example, access removed" in run(
        "reviewers", "update", "rui", "--role", "adjudicator", "--remove"
    )
    assert [line.split() for line in run("reviewers", "list").splitlines()] == [
        ["olga", "owner", "olga@lab.example"],
        ["rui", "adjudicator", "rui@lab.example", "access", "removed"],
    ]
    assert "active" in run("reviewers", "update", "rui", "--restore", "--email", "")
    assert run("reviewers", "list").splitlines()[1].split() == ["rui", "adjudicator"]
    result = runner.invoke(app, ["reviewers", "update", "olga", "--role", "reviewer", "--db", db])
    assert result.exit_code == 1 and "last owner" in result.output


def test_serve_runs_the_exact_streamlit_line(db: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", db, "--port", "8600", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        *streamlit_command(db, port=8600)[:4],
        str(Path(__file__).resolve().parent.parent / "app.py"),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        "8600",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--runner.postScriptGC",
        "false",
        "--",
        "--db",
        db,
    ]


# -- migration and backup --------------------------------------------------------------------------------------
def test_migration_0007_keeps_an_older_projects_reviewers_and_decisions(db: str) -> None:
    engine = make_engine(resolve_url(db))
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        conn.execute(
            text("INSERT INTO reviewers (id, name, role, created_at) VALUES (1, 'alice', 'reviewer', :at)"),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    engine.dispose()
    with open_store(db) as store:
        [alice] = list_reviewers(store)
        assert (alice.name, alice.role, alice.email, alice.active) == ("alice", "reviewer", None, True)
        update_reviewer(store, "alice", role="owner", email="alice@lab.example")
        assert access.sign_in(store, email="ALICE@lab.example", email_verified=True).role == "owner"


def test_backup_copies_a_sqlite_project_in_use_and_names_pg_dump_for_postgresql(db: str, tmp_path: Path) -> None:
    store = init_project(db, name="Backed up")
    add_reviewer(store, "olga", role="owner", email="olga@lab.example")
    if not store.is_sqlite:
        with pytest.raises(ConfigError, match="pg_dump"):
            backup(db, tmp_path / "copy.db")
        return
    with store.begin() as s:
        add_citations(s, new_source(s, name="PubMed"), _citations()[:3])
    with store.read() as s:  # a reader is in the project while the copy is made
        s.scalar(select(func.count(Decision.id)))
        target = backup(db, tmp_path / "copy.db")
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 3
    with open_store(target) as copy:
        assert [r.email for r in list_reviewers(copy)] == ["olga@lab.example"]
    with pytest.raises(ConfigError, match="exists already"):
        backup(db, target)
    store.close()
