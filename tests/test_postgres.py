"""The same project code on a real PostgreSQL server, started by the tests on a free local port.

The server is the session fixture ``pg_server`` of ``tests/conftest.py`` (``tests/pgserver.py``);
each test gets a fresh database of its own (``pg_url``). Skipped, with the reason, where
PostgreSQL's server binaries or the psycopg2 driver are missing (``.ci/run`` installs them).

* The library on PostgreSQL: the migrations (with PostgreSQL's own append-only triggers), an
  import of real records, deduplication, decisions with undo, and the PRISMA counts.
* The README's walkthrough ("A review from start to finish"), command by command through the
  real ``screening`` executable, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from eutils_server import EutilsServer
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from screening.decisions import current_labels, decide, history, set_retrieval, undo
from screening.dedupe import dedupe
from screening.errors import AlreadyDecided
from screening.ingest import import_file
from screening.prisma import prisma_counts
from screening.ranking.project import rank_unscreened
from screening.reviewers import add_reviewer
from screening.stopping import DEFAULT_RULE, first_stop, make_rule
from screening.stops import check_verdict, stage_evidence
from screening.store import init_project, open_store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_whole_review_runs_on_postgresql(pg_url: str, fixtures: Path) -> None:
    with init_project(pg_url, name="Estrogens on PostgreSQL") as store:
        for name, source in (("cohen2006_Estrogens.csv.gz", "PubMed"), ("synergy_Nelson_2002.csv.gz", "OpenAlex")):
            import_file(store, fixtures / "dedupe" / name, source_name=source)
        result = dedupe(store)
        assert store.counts().records == 734
        assert result.duplicates >= 355
        add_reviewer(store, "alice")
        first = store.counts().unique
        with store.read() as s:
            before = current_labels(s)
        with pytest.raises(AlreadyDecided, match="imported label"):
            decide(store, 1, "maybe", reviewer="alice")  # record 1 has an imported label
        decide(store, 1, "maybe", reviewer="alice", revise=True)
        with store.read() as s:
            assert current_labels(s)[1] == "maybe"
        undo(store, reviewer="alice")
        with store.read() as s:
            assert current_labels(s) == before  # undoing the revision brought the imported label back
        counts = prisma_counts(store)
        assert counts.database_results == 734
        assert counts.duplicates == result.duplicates
        assert counts.records_screened == first
    # reopening runs no migration twice, and the database enforces append-only decisions
    with open_store(pg_url) as again:
        assert again.get_setting("name") == "Estrogens on PostgreSQL"
        with pytest.raises(DatabaseError, match="append-only"), again.begin() as s:
            s.execute(text("UPDATE decisions SET value = 'exclude'"))
        with pytest.raises(DatabaseError, match="append-only"), again.begin() as s:
            s.execute(text("DELETE FROM audit_log"))


# -- the README's walkthrough through the CLI ---------------------------------------------------------
README = ROOT / "README.md"
WALKTHROUGH = "## A review from start to finish"
README_RECORD = "42"  # the record id the README's example decisions use; the test puts a real one in its place
# the files the README imports -> real exports of the same kind
IMPORT_FILES = {"embase.ris": FIXTURES / "import" / "embase.ris"}
CLI_TIMEOUT_S = 300
RANK_ROW = re.compile(r"^\W*(\d+)\s*\W\s*(\d+)\s*\W\s*(-?\d+\.\d+)\s*\W", re.MULTILINE)  # rank │ record │ score │


def readme_walkthrough() -> tuple[dict[str, str], list[list[str]]]:
    """The variables the README's walkthrough exports, and its commands (argv after ``screening``)."""
    readme = README.read_text(encoding="utf-8")
    assert WALKTHROUGH in readme, f"README.md has no section {WALKTHROUGH!r}"
    section = readme.split(WALKTHROUGH, 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    env: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])
        else:
            assert words[0] == "screening", f"README walkthrough: not a screening command: {line}"
            commands.append(words[1:])
    return env, commands


def screening_command() -> list[str]:
    """The installed ``screening`` executable beside this Python, as the README runs it."""
    script = Path(sys.executable).parent / "screening"
    return [str(script)] if script.exists() else [sys.executable, "-m", "screening"]


def screen_until_the_rule_says_stop(db: str | Path, done: int, included: int) -> int:
    """The screening the walkthrough leaves to the reader before it asks the stopping rule, through the library.

    Alice and Bob (dual mode) screen in ranked order, excluding every record but ``included``,
    which they both include, until the default rule (95% recall, 95% confidence) says stop.
    Returns how many records were screened here.
    """
    with open_store(db) as store:
        ranked = [rid for rid, _ in rank_unscreened(store)]
        assert done not in ranked and included in ranked
        with store.read() as s:
            evidence = stage_evidence(s)
        labels = [*evidence.labels, *(int(rid == included) for rid in ranked)]
        stop_at = first_stop(make_rule(), labels, evidence.pool)
        assert stop_at is not None and stop_at < len(labels), "the rule should say stop before the last record"
        for rid in ranked[: stop_at - evidence.screened]:
            value = "include" if rid == included else "exclude"
            for reviewer in ("alice", "bob"):
                decide(store, rid, value, reviewer=reviewer)
        assert check_verdict(store)[1].stop
    return stop_at - evidence.screened


def assess_the_full_text(db: str | Path, included: int) -> None:
    """Alice retrieves the included record's report and includes it at full text."""
    with open_store(db) as store:
        set_retrieval(store, included, True, reviewer="alice")
        decide(store, included, "include", stage="full_text", reviewer="alice")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_readme_walkthrough_runs_through_the_cli(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """Every command of the README's walkthrough, parsed from README.md, run as a subprocess in order.

    Only these are put in: the database (the README's ``review.db``, or a fresh PostgreSQL
    database), the fake E-utilities server ($SCREENING_EUTILS_URL), a real Embase RIS export for
    ``embase.ris``, and the best-ranked record of ``rank --top 5`` for the README's record 42.
    Before ``stops``, the test screens the records the walkthrough leaves to the reader, in ranked
    order, until the stopping rule says stop; before ``prisma`` it takes the second-ranked record
    through full text. Checked: the search's counts, the conflict listed and then resolved, each stored
    decision on the record, the PRISMA diagram and template CSV, and the export of the one included
    record.
    """
    readme_env, commands = readme_walkthrough()
    readme_db = readme_env["SCREENING_DB"]
    if backend == "postgresql":
        db = lib_db = request.getfixturevalue("pg_url")
    else:  # the README's own relative path, in the folder the commands run in
        db, lib_db = readme_db, tmp_path / readme_db
    names = [argv[0] for argv in commands]
    for step in ("init", "search", "import", "rank", "decide", "conflicts", "resolve", "stops", "stop", "prisma"):
        assert step in names, f"the README walkthrough no longer runs 'screening {step}'"
    assert names.index("rank") < names.index("decide")
    assert any(README_RECORD in argv for argv in commands), f"the README walkthrough no longer uses {README_RECORD}"

    picked: list[int] = []  # the record ids `rank --top 5` shows, best first
    outputs: dict[str, list[str]] = {}

    def fill(argv: list[str]) -> list[str]:
        words = []
        for word in argv:
            if word == readme_db:
                word = db
            elif word == README_RECORD:
                assert picked, f"the README uses record {README_RECORD} before 'screening rank' showed any"
                word = str(picked[0])
            elif argv[0] == "import" and word in IMPORT_FILES:
                word = str(IMPORT_FILES[word])
            words.append(word)
        return words

    def run(argv: list[str]) -> str:
        done = subprocess.run(
            [*screening_command(), *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
        )
        assert done.returncode == 0, f"screening {shlex.join(argv)} exited {done.returncode}:\n{done.stderr}"
        outputs.setdefault(argv[0], []).append(done.stdout)
        return done.stdout

    with EutilsServer() as server:
        env = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "SCREENING_EUTILS_URL")}
        env.update(readme_env, SCREENING_DB=db, SCREENING_EUTILS_URL=server.url, COLUMNS="200")
        rest, assessed = 0, False
        for argv in commands:
            if argv[0] in ("stops", "stop") and not rest:
                rest = screen_until_the_rule_says_stop(lib_db, picked[0], picked[1])
            if argv[0] == "prisma" and not assessed:
                assess_the_full_text(lib_db, picked[1])
                assessed = True
            out = run(fill(argv))
            if argv[0] == "rank":
                picked = [int(record) for _, record, _ in RANK_ROW.findall(out)]
                assert len(picked) == int(argv[argv.index("--top") + 1]) == len(set(picked)), out
            elif argv[0] == "resolve":  # the conflict the README made is listed, then settled
                assert f"│ {picked[0]} " in outputs["conflicts"][-1]
                assert "1 conflicts at title_abstract" in outputs["conflicts"][-1]
                assert json.loads(run(["conflicts", "--format", "json"])) == []
        assert server.of("esearch"), "the search never reached the E-utilities server"
        assert server.of("esearch")[0].params["term"] == commands[names.index("search")][1]
        run(["prisma", "--out", "prisma.csv"])  # the counts behind the diagram, as the PRISMA2020 template

    assert "PubMed reported 604, retrieved 604" in outputs["search"][0]
    assert re.search(r"embase\.ris: [1-9]\d* records from Embase", outputs["import"][0])
    assert "uncertain pairs" in outputs["dedupe"][0]
    assert "title_abstract: dual blind" in outputs["mode"][0]
    with open_store(lib_db) as store:
        assert store.get_setting("name") == "Psychedelics for chronic pain"
        unique = store.counts().unique
        steps = [(e.stage, e.reviewer, e.value, e.reason) for e in history(store, picked[0])]
        assert steps == [
            ("title_abstract", "alice", "include", None),
            ("title_abstract", "bob", "exclude", "animal study"),
            ("title_abstract", "carol", "include", None),
            ("full_text", "alice", "retrieved", None),
            ("full_text", "alice", "exclude", "Wrong population"),
        ]
        assert history(store, picked[0])[2].kind == "resolution"
    screened = 1 + rest  # README's record and the rest, by people; the stop excluded the others
    assert 0 < unique - screened < unique / 2
    assert "you can stop" in outputs["stops"][0]
    assert (
        f"stop #1: stopped by {DEFAULT_RULE}; target 95% recall with 95% confidence; {unique - screened} records"
        in (" ".join(outputs["stop"][0].split()))
    )

    with (tmp_path / "prisma.csv").open(encoding="utf-8", newline="") as f:
        prisma = {row["data"]: row["n"] for row in csv.DictReader(f) if row["n"]}
    assert int(prisma["records_screened"]) == screened
    assert int(prisma["excluded_automatic"]) == unique - screened
    assert int(prisma["records_excluded"]) == screened - 2
    assert (prisma["dbr_assessed"], prisma["dbr_excluded"], prisma["new_studies"]) == ("2", "Wrong population, 1", "1")
    svg = (tmp_path / "prisma.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "Wrong population (n = 1)" in svg
    assert f"(n = {screened - 2})" in svg  # records excluded at title/abstract
    assert f"stopped by {DEFAULT_RULE}" in svg

    assert "Wrote 1 records to included.ris" in outputs["export"][0]
    included = (tmp_path / "included.ris").read_text(encoding="utf-8")
    assert included.count("ER  -") == 1
    assert f"ID  - {picked[1]}\n" in included and f"ID  - {picked[0]}\n" not in included


def test_days_and_times_are_utc_whatever_the_servers_time_zone(pg_url: str, fixtures: Path) -> None:
    """A decision at 09:00 UTC on 2 November is a decision of 2 November, also on a server in Honolulu."""
    from datetime import UTC, datetime

    from screening.progress import decisions_over_time

    with init_project(pg_url, name="Time zones") as store, store.begin() as s:
        database = s.execute(text("SELECT current_database()")).scalar()
        s.execute(text(f"ALTER DATABASE \"{database}\" SET timezone TO 'Pacific/Honolulu'"))
    with open_store(pg_url) as store:
        with store.read() as s:
            assert s.execute(text("SELECT current_setting('TimeZone')")).scalar() == "UTC"
        import_file(store, fixtures / "dashboard" / "pain_small.csv", source_name="PubMed")
        add_reviewer(store, "alice")
        decide(store, 1, "include", reviewer="alice", now=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        assert [(d.day, d.n) for d in decisions_over_time(store)] == [("2026-11-02", 1)]
        assert history(store, 1)[0].created_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
