"""Time from a screening decision to the next record, in a real SQLite project.

    .venv/bin/python benchmarks/ranking_latency.py --records 20000 200000 [--decisions 50]

Builds a project of N records by repeating the real records of ../shared/datasets (each
copy marked with its copy number, so no two texts are identical), records ``--priors``
includes and as many excludes, then plays a reviewer:
it records decisions with ``screening.decisions.decide`` and after each one asks the warm
``ProjectRanker`` (what the dashboard keeps in ``st.cache_resource``) for the next record.
The hidden dataset labels answer. Prints the median and 95th percentile of
"decision written -> next record known" (``refresh()`` + ``next_record()``); the
decision's own write is timed apart. Targets: median <= 200 ms at 20,000 records,
<= 1 s at 200,000. Results go to benchmarks/results/ranking_latency.csv.

``--embeddings`` ranks with the sentence-embedding SVM too (``screening embed``): the first
load then embeds every record (its time is ``first_load_s``) and later loads read them from
the project; results go to ranking_latency_embeddings.csv.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from screening.decisions import decide
from screening.ingest import add_citations, new_source
from screening.ranking.datasets import default_suite, read_dataset
from screening.ranking.project import ProjectRanker
from screening.reviewers import add_reviewer
from screening.sources import Citation
from screening.store import init_project

HERE = Path(__file__).resolve().parent
TARGETS_MS = {20_000: 200.0, 200_000: 1000.0}


def corpus(folder: Path) -> tuple[list[str], list[str], np.ndarray]:
    titles, abstracts, labels = [], [], []
    for path in default_suite(folder):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        titles += frame["title"].tolist()
        abstracts += frame["abstract"].tolist()
        labels.append(read_dataset(path).labels)
    return titles, abstracts, np.concatenate(labels)


def build_project(db: Path, n: int, folder: Path) -> np.ndarray:
    """A project of ``n`` records; returns the hidden label of each record, in id order."""
    titles, abstracts, labels = corpus(folder)
    rows = np.arange(n) % len(titles)
    copies = np.arange(n) // len(titles)
    store = init_project(db, name=f"latency {n}", query="randomized controlled trial efficacy")
    citations = (
        Citation(title=f"{titles[r]} (copy {c})" if c else titles[r], abstract=abstracts[r])
        for r, c in zip(rows, copies, strict=True)
    )
    with store.begin() as s:
        add_citations(s, new_source(s, name="replicated datasets"), citations)
    store.close()
    return labels[rows]


def measure(
    db: Path, hidden: np.ndarray, n_decisions: int, seed: int, n_priors: int, embeddings: bool = False
) -> dict[str, float]:
    from screening.store import open_store

    store = open_store(db)
    add_reviewer(store, "bench")
    started = time.perf_counter()
    ranker = ProjectRanker(store, seed=seed, embeddings=embeddings)
    first_load = time.perf_counter() - started
    started = time.perf_counter()
    ProjectRanker(store, seed=seed, embeddings=embeddings)
    cached_load = time.perf_counter() - started
    ids = ranker.ids
    label_of = dict(zip(ids.tolist(), hidden.tolist(), strict=True))
    # a review under way: a few includes and excludes known, so every step refits the model
    rng = np.random.default_rng(seed)
    for value, n in (("include", n_priors), ("exclude", n_priors)):
        for rid in rng.choice(ids[hidden == (value == "include")], n, replace=False):
            decide(store, int(rid), value, reviewer="bench")
    ranker.refresh()
    waits, writes, found = [], [], 0
    record = ranker.next_record()
    for _ in range(n_decisions):
        t0 = time.perf_counter()
        found += label_of[record]
        decide(store, record, "include" if label_of[record] else "exclude", reviewer="bench")
        t1 = time.perf_counter()
        ranker.refresh()
        record = ranker.next_record()
        t2 = time.perf_counter()
        writes.append(t1 - t0)
        waits.append(t2 - t1)
    store.close()
    ms = np.asarray(waits) * 1000
    return {
        "records": len(ids),
        "decisions": n_decisions,
        "includes_found": found,
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "write_median_ms": float(np.median(writes) * 1000),
        "first_load_s": first_load,
        "cached_load_s": cached_load,
        "fits": ranker.learner.n_fits,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--datasets", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--priors", type=int, default=5, help="includes and excludes decided before timing")
    parser.add_argument("--embeddings", action="store_true", help="rank with the sentence-embedding SVM too")
    args = parser.parse_args(argv)
    rows = []
    for n in args.records:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "latency.db"
            t = time.perf_counter()
            hidden = build_project(db, n, args.datasets)
            build_s = time.perf_counter() - t
            row = measure(db, hidden, args.decisions, args.seed, args.priors, args.embeddings)
            row["build_project_s"] = build_s
            row["target_ms"] = TARGETS_MS.get(n, float("nan"))
            rows.append(row)
            print(pd.DataFrame([row]).round(1).to_string(index=False), flush=True)
    table = pd.DataFrame(rows).round(1)
    (HERE / "results").mkdir(exist_ok=True)
    name = "ranking_latency_embeddings.csv" if args.embeddings else "ranking_latency.csv"
    table.to_csv(HERE / "results" / name, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
