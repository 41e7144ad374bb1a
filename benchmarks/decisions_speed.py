"""Speed of reading screening state on a large project: current_labels, conflicts, agreement, PRISMA.

Builds a project of N real titles (the 24 shared datasets, replicated to N), then
writes dual-screening decisions for every record: two reviewers, 1 in 12
disagreeing, 1 in 40 undone and redone, conflicts resolved by a third reviewer,
full text for every included record. Decision rows are bulk-inserted (setup, not
the thing measured). Then times each read, best and median of ``--repeat`` runs.

    .venv/bin/python benchmarks/decisions_speed.py --records 20000

Prints a table; results also go to benchmarks/results/decisions_speed.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screening.agreement import agreement  # noqa: E402
from screening.decisions import conflicts, current_labels  # noqa: E402
from screening.ingest import add_citations, new_source  # noqa: E402
from screening.prisma import prisma_counts  # noqa: E402
from screening.reviewers import add_reason, add_reviewer, set_mode  # noqa: E402
from screening.schema import Decision, utcnow  # noqa: E402
from screening.sources import Citation  # noqa: E402
from screening.store import Store, init_project  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results"


def titles(n: int) -> Iterator[tuple[str, int]]:
    """Real titles and labels, cycling through the shared datasets until n."""
    files = sorted(DATASETS.glob("*.csv.gz"))
    produced = 0
    while True:
        for path in files:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    yield row["title"] or "untitled", int(row["label_included"] or 0)
                    produced += 1
                    if produced >= n:
                        return


def build(store: Store, n: int) -> dict[str, int]:
    for name in ("alice", "bob"):
        add_reviewer(store, name)
    add_reviewer(store, "carol", role="adjudicator")
    add_reason(store, "Wrong population")
    add_reason(store, "Wrong design")
    set_mode(store, "title_abstract", "dual", blind=True)
    labels = []
    with store.begin() as s:
        source = new_source(s, name="PubMed")
        cits = []
        for i, (title, label) in enumerate(titles(n)):
            cits.append(Citation(title=title, source_record_id=str(i)))
            labels.append(label)
        ids = add_citations(s, source, cits).record_ids
    rows: list[dict[str, Any]] = []
    next_id = 1

    def add(rid: int, reviewer: int, stage: str, value: str, kind: str = "screen", **extra: Any) -> int:
        nonlocal next_id
        row = {
            "id": next_id,
            "record_id": rid,
            "reviewer_id": reviewer,
            "stage": stage,
            "value": value,
            "kind": kind,
            "created_at": utcnow(),
            **extra,
        }
        rows.append(row)
        next_id += 1
        return row["id"]

    alice, bob, carol = 1, 2, 3
    for i, (rid, label) in enumerate(zip(ids, labels, strict=True)):
        value = "include" if label else "exclude"
        other = ("exclude" if label else "include") if i % 12 == 0 else value
        first = add(rid, alice, "title_abstract", value)
        if i % 40 == 0:
            add(rid, alice, "title_abstract", "undo", undoes_id=first)
            add(rid, alice, "title_abstract", value)
        add(rid, bob, "title_abstract", other)
        if other != value and i % 24 == 0:
            add(rid, carol, "title_abstract", value, kind="resolution")
        if label and (other == value or i % 24 == 0):
            add(rid, alice, "full_text", "retrieved")
            add(rid, alice, "full_text", "include")
    with store.begin() as s:
        s.execute(insert(Decision), rows)
    return {"records": len(ids), "decisions": len(rows)}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float, Any]:
    """Best and median wall time, and best CPU time of this process (fairer on a shared, busy machine)."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return min(wall), statistics.median(wall), min(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = init_project(Path(tmp) / "bench.db", name="bench")
        size = build(store, args.records)

        def labels() -> dict[int, str]:
            with store.read() as s:
                return current_labels(s, "title_abstract")

        cases = {
            "current_labels(title_abstract)": labels,
            "conflicts(title_abstract)": lambda: conflicts(store, "title_abstract"),
            "agreement(title_abstract)": lambda: agreement(store, "title_abstract"),
            "prisma_counts": lambda: prisma_counts(store),
        }
        results = {}
        for name, fn in cases.items():
            best, median, cpu, out = timed(fn, args.repeat)
            results[name] = {
                "best_ms": round(best, 1),
                "median_ms": round(median, 1),
                "best_cpu_ms": round(cpu, 1),
                "result_size": len(out) if hasattr(out, "__len__") else None,
            }
        store.close()
    print(
        f"{size['records']:,} records, {size['decisions']:,} decisions "
        f"({platform.processor() or platform.machine()}, Python {platform.python_version()})"
    )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'call':36} {'best ms':>9} {'median ms':>10} {'best CPU ms':>12} {'items':>7}")
    for name, r in results.items():
        print(f"{name:36} {r['best_ms']:>9} {r['median_ms']:>10} {r['best_cpu_ms']:>12} {r['result_size'] or '':>7}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "decisions_speed.json").write_text(json.dumps({**size, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
