"""Decisions that cannot race: real processes, each with its own connections, on SQLite and PostgreSQL.

Each test starts 2 to 5 worker processes (tests/race_workers.py) that meet at a barrier
before every act, so their transactions overlap as closely as the machine allows, then
checks what the database holds: no record decided twice in single mode, no decision
undone twice, no conflict resolved twice, and every refused act told so.
"""

from __future__ import annotations

import csv
import gzip
import multiprocessing
import queue
import subprocess
import sys
import time
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import race_workers
from sqlalchemy import func, select

from screening.decisions import conflicts, decide
from screening.ingest import add_citations, new_source
from screening.reviewers import add_reviewer, set_mode
from screening.schema import Decision, Record
from screening.sources import Citation
from screening.store import Store, init_project, open_store

ROOT = Path(__file__).resolve().parent.parent
DEDUPE = Path(__file__).resolve().parent / "fixtures" / "dedupe" / "cohen2006_Estrogens.csv.gz"
SPAWN = multiprocessing.get_context("spawn")
JOIN_TIMEOUT_S = 240


def _project(db: str, reviewers: list[str], *, n: int = 40) -> list[int]:
    """``n`` real records of the Cohen 2006 Estrogens review (labels left out) and reviewers; the record ids."""
    with gzip.open(DEDUPE, "rt", encoding="utf-8", newline="") as f:
        rows = [row for _, row in zip(range(n), csv.DictReader(f), strict=False)]
    citations = [Citation(title=r["title"], abstract=r["abstract"], pmid=r["pmid"] or None) for r in rows]
    with init_project(db, name="Race", query="estrogen") as store:
        with store.begin() as s:
            add_citations(s, new_source(s, name="PubMed"), citations)
        for name in reviewers:
            add_reviewer(store, name, role="adjudicator" if name.startswith("adj") else "reviewer")
        with store.read() as s:
            return list(s.scalars(select(Record.id).where(Record.canonical_id.is_(None)).order_by(Record.id)))


@contextmanager
def _no_main_module() -> Iterator[None]:
    """Spawned children re-run the parent's ``__main__``; after a Streamlit AppTest that is app.py. Give them none."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _race(target, jobs: list[tuple]) -> list[list]:
    """Run one process per job (``target(db, reviewer, ..., barrier, out)``); each one's results."""
    barrier, out = SPAWN.Barrier(len(jobs)), SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*job, barrier, out)) for job in jobs]
    with _no_main_module():
        for p in procs:
            p.start()
    results: list[list] = []
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while len(results) < len(procs):  # fail at once when a worker died instead of waiting out the timeout
        try:
            results.append(out.get(timeout=1)[1])
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead and time.monotonic() < deadline, f"worker exit codes {[p.exitcode for p in procs]}"
    for p in procs:
        p.join(JOIN_TIMEOUT_S)
        assert p.exitcode == 0
    return results


def _live_votes(store: Store) -> Counter[int]:
    """Record id -> live screening votes at title/abstract."""
    with store.read() as s:
        undone = set(s.scalars(select(Decision.undoes_id).where(Decision.undoes_id.is_not(None))))
        rows = s.execute(
            select(Decision.id, Decision.record_id).where(
                Decision.kind == "screen", Decision.value.in_(("include", "exclude", "maybe"))
            )
        ).all()
    return Counter(rid for did, rid in rows if did not in undone)


@pytest.mark.parametrize("n", [2, 5])
def test_single_mode_reviewers_deciding_at_once_leave_one_decision_per_record(any_db: str, n: int) -> None:
    names = [f"r{i}" for i in range(n)]
    records = _project(any_db, names)[:15]
    values = ["include", "exclude"]
    results = _race(race_workers.decide_each, [(any_db, name, records, values[i % 2]) for i, name in enumerate(names)])
    outcomes = Counter(outcome for rows in results for _, outcome in rows)
    assert outcomes == {"ok": len(records), "refused": len(records) * (n - 1)}  # each record: one wins, the rest told
    with open_store(any_db) as store:
        assert _live_votes(store) == Counter({r: 1 for r in records})  # no doubled, no contradictory decision
        assert conflicts(store) == []


def test_two_cli_processes_deciding_one_record_store_one_decision(any_db: str) -> None:
    records = _project(any_db, ["alice", "bob"])[:6]
    for record in records:
        commands = [
            [sys.executable, "-m", "screening", "decide", str(record), value, "--db", any_db, "--reviewer", who]
            for who, value in (("alice", "include"), ("bob", "exclude"))
        ]
        procs = [
            subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands
        ]
        done = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
        assert sorted(code for code, _, _ in done) == [0, 1]
        (loser,) = [err for code, _, err in done if code == 1]
        winner = "alice" if done[0][0] == 0 else "bob"
        assert f"by {winner}" in loser and "--revise" in loser and loser.count("\n") == 1  # one line, names who
    with open_store(any_db) as store:
        assert _live_votes(store) == Counter({r: 1 for r in records})


def test_two_processes_undoing_at_once_never_undo_one_decision_twice(any_db: str) -> None:
    records = _project(any_db, ["alice"])[:12]
    with open_store(any_db) as store:
        for record in records:
            decide(store, record, "exclude", reviewer="alice")
    results = _race(race_workers.undo_times, [(any_db, "alice", 5), (any_db, "alice", 5)])
    undone = [target for rows in results for outcome, target in rows if outcome == "ok"]
    assert len(undone) == 10 and len(set(undone)) == 10  # ten undos, ten different decisions
    with open_store(any_db) as store, store.read() as s:
        per_decision = Counter(s.scalars(select(Decision.undoes_id).where(Decision.undoes_id.is_not(None))))
        assert max(per_decision.values()) == 1 and len(per_decision) == 10
    assert sum(_live_votes(store).values()) == 2


def test_two_adjudicators_resolving_at_once_resolve_each_conflict_once(any_db: str) -> None:
    records = _project(any_db, ["alice", "bob", "adj1", "adj2"])[:10]
    with open_store(any_db) as store:
        set_mode(store, "title_abstract", "dual")
        for record in records:
            decide(store, record, "include", reviewer="alice")
            decide(store, record, "exclude", reviewer="bob")
        assert [c.record_id for c in conflicts(store)] == records
    results = _race(
        race_workers.resolve_each, [(any_db, "adj1", records, "include"), (any_db, "adj2", records, "exclude")]
    )
    outcomes = Counter(outcome for rows in results for _, outcome in rows)
    assert outcomes == {"ok": len(records), "refused": len(records)}
    with open_store(any_db) as store, store.read() as s:
        resolutions = Counter(
            s.scalars(select(Decision.record_id).where(Decision.kind == "resolution", Decision.value != "undo"))
        )
        assert resolutions == Counter({r: 1 for r in records})
        assert conflicts(store) == []


@pytest.mark.parametrize("n", [2, 3, 5])
def test_reviewers_screening_the_queue_at_once_are_never_shown_the_same_record(any_db: str, n: int) -> None:
    names = [f"r{i}" for i in range(n)]
    records = _project(any_db, names)[:30]
    results = _race(race_workers.screen_queue, [(any_db, name, records) for name in names])
    decided = [record for rows in results for record, outcome in rows if outcome == "ok"]
    lost = [record for rows in results for record, outcome in rows if outcome != "ok"]
    assert lost == []  # every record a reviewer was given was still theirs to decide: no click lost a race
    assert sorted(decided) == records  # every record decided once, by one reviewer
    with open_store(any_db) as store, store.read() as s:
        assert _live_votes(store) == Counter({r: 1 for r in records})
        assert s.scalar(select(func.count()).select_from(Decision).where(Decision.value == "undo")) == 0


def test_a_stop_racing_decisions_leaves_each_record_decided_once(any_db: str) -> None:
    """Two reviewers decide while a third stops the stage: a decision either lands before the stop
    (and the stop leaves that record alone) or is refused after it; no record is both."""
    records = _project(any_db, ["alice", "bob", "adj"])
    rounds = 12
    jobs = [(any_db, "alice", records[0:rounds], "include"), (any_db, "bob", records[rounds : 2 * rounds], "exclude")]
    barrier, out = SPAWN.Barrier(3), SPAWN.Queue()
    procs = [SPAWN.Process(target=race_workers.decide_each, args=(*job, barrier, out)) for job in jobs]
    procs.append(SPAWN.Process(target=race_workers.stop_at, args=(any_db, "adj", rounds, 5, barrier, out)))
    with _no_main_module():
        for p in procs:
            p.start()
    results = dict(out.get(timeout=JOIN_TIMEOUT_S) for _ in procs)
    for p in procs:
        p.join(JOIN_TIMEOUT_S)
        assert p.exitcode == 0
    [(_, stopped)] = results["adj"]
    decided = [r for name in ("alice", "bob") for r, outcome in results[name] if outcome == "ok"]
    refused = [r for name in ("alice", "bob") for r, outcome in results[name] if outcome == "refused"]
    assert len(decided) + len(refused) == 2 * rounds and refused  # the stop came in the middle
    with open_store(any_db) as store:
        votes = _live_votes(store)
        with store.read() as s:
            automated = set(s.scalars(select(Decision.record_id).where(Decision.stop_id.is_not(None))))
    assert set(votes) == set(decided) and all(n == 1 for n in votes.values())
    assert not automated & set(votes)  # no record both screened and excluded by the stop
    assert automated | set(votes) == set(records) and len(automated) == stopped
