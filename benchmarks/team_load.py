"""Ten reviewers screening at once on one PostgreSQL project: throughput, time to the next record, nothing lost.

    .venv/bin/python benchmarks/team_load.py [--records 20000] [--reviewers 10] [--decisions 40] [--db URL]

Builds a project of N records (the real records of ../shared/datasets, repeated and marked
with their copy number; then VACUUM ANALYZE, as autovacuum would have run on a project
imported before screening starts) on a throwaway PostgreSQL server (``tests/pgserver.py``; or ``--db``,
an empty database), lists the reviewers with sign-in emails, and starts one real process per
reviewer. Each one signs in as its reviewer (``screening.access.sign_in``) and works through the
project as that identity, as the dashboard's Screen page does after a click: the decision
(``screening.decisions.decide``), then its warm ranker's refresh and ranking, then the next
record claimed for it (``screening.progress.claim_next``, which leases it so no other reviewer
gets it). The hidden dataset labels answer. All start together (a barrier) and decide as fast
as they can (far harder than people reading abstracts), or after ``--think-ms`` of reading each
record.

Reported: decisions per second over the run (all reviewers together), the median and 95th
percentile of "decision clicked -> next record claimed" (write + ranking + claim) and of the
write alone, and the check that every decision a reviewer was told was recorded is in the
database exactly once, under that reviewer, and no record holds two decisions (single
screening) or more than two (dual). Each process keeps its own ranker (a server process keeps
one for all its sessions), so the ranking work here is ten times what one server does.
Target (issue 14): p95 <= 500 ms at 20,000 records. Results: benchmarks/results/team_load.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import time
from contextlib import ExitStack
from multiprocessing.managers import BaseManager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

RANK_WINDOW = 200  # as the dashboard's state.RANK_WINDOW
TARGET_P95_MS = 500.0
POLL_S = 5  # how often the main process checks that no reviewer process died
PRIORS = 5  # includes and as many excludes decided before the run, so every step refits the model


class RankingService:
    """The dashboard's warm ranker (``screening.dashboard.state.SharedRanker``, its lock included) for one project."""

    def __init__(self, url: str, seed: int = 0) -> None:
        from screening.dashboard.state import SharedRanker
        from screening.ranking.project import ProjectRanker
        from screening.store import open_store

        self.shared = SharedRanker(ProjectRanker(open_store(url), seed=seed))

    def ranked_ids(self) -> list[int]:
        """Refresh from the database, then the best ``RANK_WINDOW`` record ids."""
        return self.shared.ranked_ids(RANK_WINDOW)

    def ids_and_order(self) -> list[int]:
        """The live record ids the model ranks, in the order of its features (the hidden labels' order)."""
        return [int(i) for i in self.shared.ranker.ids]


class RankingServer(BaseManager):
    """One process holding one ``RankingService``: every reviewer process asks it, as the sessions of one
    Streamlit server share one ranker (a thread per connection, the ranker's lock between them)."""


RankingServer.register("RankingService", RankingService)


def worker(
    url: str, name: str, email: str, hidden_path: str, n: int, think_s: float, ranking, start, results, seed: int
) -> None:
    """One reviewer: sign in, then read (``think_s``), decide, rank, claim the next record, ``n`` times.

    ``ranking`` is the shared ranker's proxy, or None for a ranker of this process's own.
    """
    from screening.access import sign_in
    from screening.decisions import decide
    from screening.errors import AlreadyDecided
    from screening.progress import claim_next
    from screening.store import open_store

    hidden = np.load(hidden_path)
    store = open_store(url)
    me = store.acting_as(sign_in(store, email=email, email_verified=True))
    if ranking is None:
        ranking = RankingService(url, seed=seed)
    order = ranking.ids_and_order()
    live = frozenset(order)
    label_of = dict(zip(order, hidden.tolist(), strict=True))
    ranked = ranking.ranked_ids()
    start.wait()
    began = time.perf_counter()
    record = claim_next(me, ranked, reviewer=name, live_ids=live).record_id
    done, waits, writes, ranks, lost_races = [], [], [], [], 0
    for _ in range(n):
        if record is None:
            break
        value = "include" if label_of[record] else "exclude"
        if think_s:
            time.sleep(think_s)  # reading the abstract
        t0 = time.perf_counter()
        try:
            decide(me, record, value, reviewer=name)
            done.append((record, value))
        except AlreadyDecided:  # would mean two reviewers were given one record: counted, reported
            lost_races += 1
        t1 = time.perf_counter()
        ranked = ranking.ranked_ids()
        t_ranked = time.perf_counter()
        record = claim_next(me, ranked, reviewer=name, live_ids=live).record_id
        t2 = time.perf_counter()
        writes.append(t1 - t0)
        ranks.append(t_ranked - t1)
        waits.append(t2 - t0)
    results.put({"name": name, "done": done, "waits": waits, "writes": writes, "ranks": ranks, "lost": lost_races,
                 "began": began, "ended": time.perf_counter()})  # fmt: skip
    store.close()


def build(url: str, n: int, reviewers: int, datasets: Path, mode: str) -> np.ndarray:
    from ranking_latency import build_project

    from screening.decisions import decide
    from screening.ranking.project import live_record_ids
    from screening.reviewers import add_reviewer, set_mode
    from screening.store import open_store

    hidden = build_project(url, n, datasets)
    with open_store(url) as store:
        add_reviewer(store, "lead", role="owner", email="lead@lab.example")
        for i in range(reviewers):
            add_reviewer(store, f"r{i:02d}", email=f"r{i:02d}@lab.example")
        ids = live_record_ids(store)
        rng = np.random.default_rng(0)
        for value, label in (("include", 1), ("exclude", 0)):
            for rid in rng.choice(ids[hidden == label], PRIORS, replace=False):
                decide(store, int(rid), value, reviewer="lead")
        if mode == "dual":
            set_mode(store, "title_abstract", "dual")
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does to a project imported days before
    return hidden


def check(url: str, outcomes: list[dict], mode: str) -> dict[str, int]:
    """Every decision a reviewer was told was recorded is there once, under them; no record over-decided."""
    from sqlalchemy import func, select

    from screening.schema import Decision, Reviewer
    from screening.store import open_store

    told = {(o["name"], rid, value) for o in outcomes for rid, value in o["done"]}
    with open_store(url) as store, store.read() as s:
        rows = s.execute(
            select(Reviewer.name, Decision.record_id, Decision.value)
            .join(Reviewer, Reviewer.id == Decision.reviewer_id)
            .where(Decision.kind == "screen", Reviewer.name != "lead")
        ).all()
        per_record = s.execute(
            select(Decision.record_id, func.count())
            .where(Decision.kind == "screen", Decision.value != "undo")
            .group_by(Decision.record_id)
        ).all()
    in_db = [tuple(r) for r in rows]
    most = 1 if mode == "single" else 2
    return {
        "told": len(told),
        "in_database": len(in_db),
        "lost": len(told - set(in_db)),
        "doubled": len(in_db) - len(set(in_db)) + sum(1 for _, c in per_record if c > most),
        "unexpected": len(set(in_db) - told),
        "lost_races": sum(o["lost"] for o in outcomes),
    }


def run(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    t = time.perf_counter()
    hidden = build(url, args.records, args.reviewers, args.datasets, args.mode)
    build_s = time.perf_counter() - t
    hidden_path = tmp / "hidden.npy"
    np.save(hidden_path, hidden)
    think = args.think_ms / 1000
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(args.reviewers), ctx.Queue()
    ranking = None
    if args.ranker == "shared":
        server = RankingServer(ctx=ctx)
        server.start()
        ranking = server.RankingService(url)
    procs = [
        ctx.Process(
            target=worker,
            args=(
                url,
                f"r{i:02d}",
                f"r{i:02d}@lab.example",
                str(hidden_path),
                args.decisions,
                think,
                ranking,
                start,
                results,
                i,
            ),
        )
        for i in range(args.reviewers)
    ]
    for p in procs:
        p.start()
    outcomes = []
    while len(outcomes) < len(procs):
        try:
            outcomes.append(results.get(timeout=POLL_S))
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:  # a reviewer process died (its traceback is above): stop the others, say so
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"{len(failed)} reviewer process(es) failed, exit codes {failed}") from None
    for p in procs:
        p.join()
    if ranking is not None:
        server.shutdown()
    waits = np.concatenate([o["waits"] for o in outcomes]) * 1000
    writes = np.concatenate([o["writes"] for o in outcomes]) * 1000
    ranks = np.concatenate([o["ranks"] for o in outcomes]) * 1000
    wall = max(o["ended"] for o in outcomes) - min(o["began"] for o in outcomes)
    verdict = check(url, outcomes, args.mode)
    return {
        "records": args.records,
        "reviewers": args.reviewers,
        "mode": args.mode,
        "think_ms": args.think_ms,
        "ranker": args.ranker,
        "decisions": int(waits.size),
        "decisions_per_s": waits.size / wall,
        "next_median_ms": float(np.median(waits)),
        "next_p95_ms": float(np.percentile(waits, 95)),
        "next_max_ms": float(waits.max()),
        "write_median_ms": float(np.median(writes)),
        "write_p95_ms": float(np.percentile(writes, 95)),
        "rank_median_ms": float(np.median(ranks)),
        "rank_p95_ms": float(np.percentile(ranks, 95)),
        "claim_median_ms": float(np.median(waits - writes - ranks)),
        **verdict,
        "build_s": build_s,
        "load_average_1min": os.getloadavg()[0],
    }


def markdown(row: dict[str, object]) -> str:
    """The result as a two-column markdown table (one line per measure)."""
    lines = ["| measure | value |", "|---|---|"]
    for key, value in row.items():
        lines.append(f"| {key} | {value:,.1f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=40, help="decisions per reviewer")
    parser.add_argument("--mode", choices=("single", "dual"), default="single")
    parser.add_argument(
        "--ranker",
        choices=("shared", "own"),
        default="shared",
        help="one ranker for all reviewers, as one dashboard server has (default), or one per reviewer process",
    )
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="time each reviewer reads a record before deciding (0: none)"
    )
    parser.add_argument("--db", help="an empty PostgreSQL database URL (default: a throwaway server)")
    parser.add_argument("--datasets", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "team_load.md")
    args = parser.parse_args(argv)
    import tempfile

    import pandas as pd
    import pgserver

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = args.db
        if url is None:
            server = stack.enter_context(pgserver.running_server())
            url = pgserver.create_database(server, pgserver.unique_name("team_load"))
        row = run(url, args, tmp)
    table = pd.DataFrame([row]).round(1)
    print(table.T.to_string(header=False), flush=True)
    ok = row["lost"] == row["doubled"] == row["unexpected"] == row["lost_races"] == 0
    args.out.parent.mkdir(exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        out.write(
            f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {row['reviewers']} reviewers, "
            f"{row['records']:,} records, {row['mode']} screening, PostgreSQL\n\n"
            f"`python benchmarks/team_load.py --records {row['records']} --reviewers {row['reviewers']} "
            f"--decisions {args.decisions} --mode {row['mode']} --think-ms {args.think_ms:g} "
            f"--ranker {args.ranker}`\n\n" + markdown(row) + f"\n\nNothing lost or doubled: {'yes' if ok else 'NO'}; "
            f"p95 decision -> next record {row['next_p95_ms']:.0f} ms (target {TARGET_P95_MS:.0f} ms).\n"
        )
    print(f"nothing lost or doubled: {ok}; written to {args.out}")


if __name__ == "__main__":
    main()
