"""The screening commands through the real CLI, on a real project file with 16 real records."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.ingest import add_citations, new_source
from screening.sources import Citation
from screening.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "prisma" / "estrogens_16.csv"
runner = CliRunner()


def run(*args: object, ok: bool = True) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return result.output


@pytest.fixture
def db(store: Store, db_path: Path) -> Path:
    with FIXTURE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with store.begin() as s:
        source = new_source(s, name="PubMed")
        add_citations(s, source, [Citation(title=r["title"], pmid=r["pmid"] or None) for r in rows])
    run("reviewers", "add", "alice", "--db", db_path)
    run("reviewers", "add", "bob", "--db", db_path)
    run("reviewers", "add", "carol", "--db", db_path, "--role", "adjudicator")
    return db_path


def test_setup_commands(db: Path) -> None:
    assert run("reviewers", "list", "--db", db).split() == [
        "alice",
        "reviewer",
        "bob",
        "reviewer",
        "carol",
        "adjudicator",
    ]
    run("reasons", "add", "Wrong population", "--db", db)
    run("reasons", "add", "Wrong study design", "--db", db)
    assert run("reasons", "list", "--db", db).splitlines() == ["1. Wrong population", "2. Wrong study design"]
    assert "title_abstract: dual blind" in run("mode", "set", "title_abstract", "dual", "--blind", "--db", db)
    assert run("mode", "show", "--db", db).splitlines() == ["title_abstract: dual blind", "full_text: single"]
    out = run("mode", "set", "full_text", "single", "--blind", "--db", db, ok=False)
    assert "blind mode needs dual screening" in out


def test_decide_undo_conflicts_resolve_history(db: Path) -> None:
    run("mode", "set", "title_abstract", "dual", "--db", db)
    assert "#1: alice include record 1 at title_abstract" in run(
        "decide", 1, "include", "--db", db, "--reviewer", "alice"
    )
    run("decide", 1, "exclude", "--db", db, "--reviewer", "bob", "--reason", "editorial", "--note", "no data")
    run("decide", 2, "include", "--db", db, "--reviewer", "alice")
    assert "bob undid decision" not in run("decide", 2, "include", "--db", db, "--reviewer", "bob")
    assert "bob undid decision 4 on record 2" in run("undo", "--db", db, "--reviewer", "bob")
    conflicts = json.loads(run("conflicts", "--db", db, "--format", "json"))
    assert conflicts == [
        {"record_id": 1, "title": conflicts[0]["title"], "votes": "alice: include; bob: exclude (editorial)"}
    ]
    out = run("resolve", 1, "exclude", "--db", db, "--reviewer", "alice", ok=False)
    assert "already screened record 1" in out
    assert "resolved #6: carol exclude record 1" in run("resolve", 1, "exclude", "--db", db, "--reviewer", "carol")
    assert "0 conflicts" in run("conflicts", "--db", db)
    history = json.loads(run("history", 1, "--db", db, "--format", "json"))
    assert [(e["reviewer"], e["kind"], e["value"]) for e in history["decisions"]] == [
        ("alice", "screen", "include"),
        ("bob", "screen", "exclude"),
        ("carol", "resolution", "exclude"),
    ]
    assert history["decisions"][1]["note"] == "no data"


def test_history_exports_to_a_csv_file(db: Path, tmp_path: Path) -> None:
    run("decide", 3, "maybe", "--db", db, "--reviewer", "alice")
    refused = CliRunner().invoke(app, ["decide", "3", "include", "--db", str(db), "--reviewer", "alice"])
    assert refused.exit_code == 1 and "already decided 'maybe'" in refused.output and "--revise" in refused.output
    run("decide", 3, "include", "--db", db, "--reviewer", "alice", "--revise")
    out = tmp_path / "history.csv"
    run("history", 3, "--db", db, "--format", "csv", "--out", out)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["value"] for r in rows] == ["maybe", "undo", "include"]
    assert rows[2]["revises_id"] == rows[0]["id"] == rows[1]["undoes_id"]
    assert list(rows[0]) == [
        "id",
        "record_id",
        "stage",
        "value",
        "kind",
        "reviewer",
        "reason",
        "note",
        "created_at",
        "undoes_id",
        "revises_id",
        "undone_by",
    ]
    assert "title/abstract: decided include" in run("history", 3, "--db", db)


def test_full_text_and_prisma(db: Path, tmp_path: Path) -> None:
    run("reasons", "add", "Wrong population", "--db", db)
    for rid in range(1, 17):
        run("decide", rid, "include" if rid <= 3 else "exclude", "--db", db, "--reviewer", "alice")
    out = run("prisma", "--db", db, "--format", "svg", "--out", tmp_path / "early.svg", ok=False)
    assert "PRISMA counts do not add up" in out and "reports sought without a retrieval decision" in out
    assert not (tmp_path / "early.svg").exists()
    run("fulltext", 1, "--retrieved", "yes", "--db", db, "--reviewer", "alice")
    run("fulltext", 2, "--retrieved", "yes", "--db", db, "--reviewer", "alice")
    run("fulltext", 3, "--retrieved", "no", "--db", db, "--reviewer", "alice")
    assert "--retrieved: 'maybe' is not yes or no" in run(
        "fulltext", 2, "--retrieved", "maybe", "--db", db, "--reviewer", "alice", ok=False
    )
    out = run("decide", 2, "exclude", "--db", db, "--reviewer", "alice", "--stage", "full_text", ok=False)
    assert "needs exactly one reason" in out
    run("decide", 1, "include", "--db", db, "--reviewer", "alice", "--stage", "full_text")
    run(
        "decide",
        2,
        "exclude",
        "--db",
        db,
        "--reviewer",
        "alice",
        "--stage",
        "full_text",
        "--reason",
        "Wrong population",
    )
    values = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(run("prisma", "--db", db)))}
    assert (values["records_screened"], values["records_excluded"], values["dbr_sought_reports"]) == ("16", "13", "3")
    assert (values["dbr_notretrieved_reports"], values["dbr_excluded"], values["new_studies"]) == (
        "1",
        "Wrong population, 1",
        "1",
    )
    data = json.loads(run("prisma", "--db", db, "--format", "json"))
    assert data["dbr"]["assessed"] == 2
    for suffix in ("svg", "png", "csv", "json"):
        run("prisma", "--db", db, "--out", tmp_path / f"prisma.{suffix}")
        assert (tmp_path / f"prisma.{suffix}").stat().st_size > 0
    assert "(n = 16)" in (tmp_path / "prisma.svg").read_text(encoding="utf-8")
    assert "'pdf' is not one of csv, json, svg, png" in run("prisma", "--db", db, "--format", "pdf", ok=False)


def test_agreement_command(db: Path) -> None:
    run("mode", "set", "title_abstract", "dual", "--db", db)
    for rid in range(1, 11):
        run("decide", rid, "include" if rid <= 4 else "exclude", "--db", db, "--reviewer", "alice")
        run("decide", rid, "include" if rid <= 5 else "exclude", "--db", db, "--reviewer", "bob")
    out = run("agreement", "--db", db)
    assert "alice" in out and "90.0" in out and "0.800" in out  # 9/10 agree; chance 0.5: kappa 0.8


def test_errors_are_one_line_messages(db: Path) -> None:
    out = run("decide", 999, "include", "--db", db, "--reviewer", "alice", ok=False)
    assert "no record with id 999" in out
    out = run("decide", 1, "include", "--db", db, "--reviewer", "zoe", ok=False)
    assert "no reviewer named 'zoe'" in out
    assert "no decision left to undo" in run("undo", "--db", db, "--reviewer", "alice", ok=False)


def test_history_as_a_blind_reviewer_hides_the_other_vote(db: Path) -> None:
    run("mode", "set", "title_abstract", "dual", "--blind", "--db", db)
    run("decide", 4, "exclude", "--db", db, "--reviewer", "alice")
    assert json.loads(run("history", 4, "--db", db, "--format", "json", "--as", "bob"))["decisions"] == []
    run("decide", 4, "exclude", "--db", db, "--reviewer", "bob")
    seen = json.loads(run("history", 4, "--db", db, "--format", "json", "--as", "bob"))["decisions"]
    assert [e["reviewer"] for e in seen] == ["alice", "bob"]
