"""Cold start on real reviews: how soon the first includes come when nothing is labelled yet.

    .venv/bin/python benchmarks/cold_start.py [--shared ../shared] [--seeds 0-2] [--random-seeds 0-9]
        [--embeddings] [--no-inclusion] [--out benchmarks/results/cold_start.md]

For every review of the suite (BENCHMARK.md: 21 datasets), a project whose only topic text is the
review's one-line ``topic`` from ``datasets/MANIFEST.csv``, and no label. Its order is the one the
ranker shows before the first include: the prior of :func:`screening.ranking.query.cold_start_scores`
(the same call ``ProjectRanker`` makes), ties broken by ``ActiveLearner``'s seeded permutation. It is
the prior's order only: in a project the model takes over once an include and an exclude are known.

- ``first``: the rank (from 1) of the first include; ``@20``, ``@50``: includes in the first 20 / 50;
- ``r10``: recall at 10% of the records (``round(0.1 * N)``), as in BENCHMARK.md;
- ``rand``: the same for a random order, the mean over ``--random-seeds``.

A topic line is not a Boolean query, so these numbers are the TF-IDF cosine prior; with
``--embeddings`` also the prior of a project with sentence embeddings, the cosine of each record's
vector to the topic line's (:func:`screening.ranking.embeddings.topic_similarity`; the vectors are
kept in ``benchmarks/work/embeddings``, shared with ``cross_validate.py``). Each is also measured
with the inclusion prior beside it (what a project does by default), leave one review out: for
each review an :class:`~screening.ranking.inclusion.InclusionPrior` fitted on the other 20, never
the shipped one, which has seen every review of the suite. The demo
(``data/demo``) has a real PubMed query but no labels; for it the script counts the records in the
first 20 / 40 that match every concept block, under the cosine prior and under the block prior.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from screening.errors import ConfigError
from screening.ranking.active import ActiveLearner
from screening.ranking.datasets import dataset_name, default_suite, parse_seeds, read_dataset
from screening.ranking.embeddings import EmbeddingConfig, SentenceEmbedder, topic_similarity
from screening.ranking.features import TextFeatures, build_features
from screening.ranking.inclusion import InclusionPrior
from screening.ranking.query import RecordIndex, cold_start_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validate import review_embeddings  # the vectors kept for cross-validation, beside this file

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass
class Stats:
    first: float
    at20: float
    at50: float
    recall10: float


def order_stats(labels: np.ndarray, order: np.ndarray) -> Stats:
    """The cold-start metrics of one screening order (positions into ``labels``)."""
    found = labels[order]
    hits = np.flatnonzero(found)
    cut = round(0.10 * len(labels))
    return Stats(
        first=float(hits[0] + 1) if hits.size else float("nan"),
        at20=float(found[:20].sum()),
        at50=float(found[:50].sum()),
        recall10=float(found[:cut].sum() / max(found.sum(), 1)),
    )


def mean_stats(runs: list[Stats]) -> Stats:
    return Stats(*(float(np.mean([getattr(r, f) for r in runs])) for f in ("first", "at20", "at50", "recall10")))


def prior_order(features: TextFeatures, prior: np.ndarray | None, seed: int) -> np.ndarray | None:
    """The order ``ActiveLearner`` offers before any label (None when there is nothing to rank by)."""
    learner = ActiveLearner.from_features(features, prior_scores=prior, seed=seed)
    try:
        return learner.ranked()
    except ConfigError:
        return None


PRIORS = (
    "TF-IDF cosine",
    "TF-IDF cosine + inclusion prior",
    "sentence embeddings",
    "sentence embeddings + inclusion prior",
)


def prior_stats(features: TextFeatures, labels: np.ndarray, prior: np.ndarray | None, seeds: list[int]) -> Stats | None:
    """The mean metrics of the prior's order over the tie-break ``seeds`` (None: nothing to rank by)."""
    orders = [prior_order(features, prior, s) for s in seeds]
    return mean_stats([order_stats(labels, o) for o in orders]) if orders[0] is not None else None


def review_row(
    path: Path,
    topic: str,
    seeds: list[int],
    random_seeds: list[int],
    embedder: SentenceEmbedder | None = None,
    others: InclusionPrior | None = None,
) -> dict:
    """One review's metrics under each prior; ``others`` is the inclusion prior fitted without it."""
    data = read_dataset(path)
    features = build_features(data.texts, titles=data.titles)
    index = lambda: RecordIndex(features, text_of=lambda rows: [data.texts[i] for i in rows])  # noqa: E731
    inclusion = others.score_features(features) if others is not None else None
    semantics = {PRIORS[0]: None}
    if embedder is not None:
        vectors, _ = review_embeddings(data, embedder.config)
        semantics[PRIORS[2]] = topic_similarity(vectors, embedder, [topic])
    tool = {}
    for name, semantic in semantics.items():
        prior = cold_start_scores(features, [topic], None, index, semantic)
        tool[name] = prior_stats(features, data.labels, prior, seeds)
        if inclusion is not None:
            prior = cold_start_scores(features, [topic], None, index, semantic, inclusion)
            tool[f"{name} + inclusion prior"] = prior_stats(features, data.labels, prior, seeds)
    rand = mean_stats(
        [order_stats(data.labels, np.random.default_rng(s).permutation(data.n_records)) for s in random_seeds]
    )
    tool = {name: tool[name] for name in PRIORS if name in tool}
    return {"dataset": dataset_name(path), "N": data.n_records, "R": data.n_included, "tool": tool, "rand": rand}


def same_collection(a: Path, b: Path) -> bool:
    """Whether two datasets come from one collection (the name's prefix: cohen2006, synergy, ...)."""
    return dataset_name(a).split("_")[0] == dataset_name(b).split("_")[0]


def _cell(value: float, digits: int = 0) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def table(rows: list[dict], prior: str) -> str:
    lines = [
        "| dataset | N | R | first | rand first | @20 | rand @20 | @50 | rand @50 | r10 | rand r10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t, r = row["tool"][prior], row["rand"]
        if t is None:
            t = Stats(float("nan"), float("nan"), float("nan"), float("nan"))
        lines.append(
            f"| {row['dataset']} | {row['N']} | {row['R']} | {_cell(t.first)} | {_cell(r.first, 1)} | "
            f"{_cell(t.at20)} | {_cell(r.at20, 1)} | {_cell(t.at50)} | {_cell(r.at50, 1)} | "
            f"{_cell(t.recall10, 2)} | {_cell(r.recall10, 2)} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict], prior: str) -> str:
    tool = [r["tool"][prior] for r in rows if r["tool"][prior] is not None]
    rand = [r["rand"] for r in rows]
    firsts = [t.first for t in tool if t.first == t.first]
    top10 = sum(t.first <= 10 for t in tool)
    return "\n".join(
        [
            f"- reviews: {len(rows)} ({len(rows) - len(tool)} without a usable topic)",
            f"- median rank of the first include: {statistics.median(firsts):.0f} "
            f"(random order: {statistics.median(r.first for r in rand):.1f})",
            f"- first include in the top 10: {top10}/{len(tool)} reviews ({top10 / max(len(tool), 1):.0%}); "
            f"random: {sum(r.first <= 10 for r in rand)}/{len(rand)}",
            f"- mean includes in the first 20: {np.mean([t.at20 for t in tool]):.2f} "
            f"(random {np.mean([r.at20 for r in rand]):.2f}); first 50: {np.mean([t.at50 for t in tool]):.2f} "
            f"(random {np.mean([r.at50 for r in rand]):.2f})",
            f"- mean recall at 10%: {np.mean([t.recall10 for t in tool]):.3f} "
            f"(random {np.mean([r.recall10 for r in rand]):.3f})",
        ]
    )


def demo_section() -> str:
    """Records matching every concept block in the demo's first 20 / 40, cosine prior vs block prior."""
    from screening.demo import build_demo
    from screening.ranking.project import ProjectRanker, _record_index, topic_text
    from screening.ranking.query import block_matches, concept_query

    with tempfile.TemporaryDirectory() as tmp:
        store = build_demo(Path(tmp) / "demo.db")
        try:
            ranker = ProjectRanker(store)
            query = concept_query(store.get_setting("query"))
            index = _record_index(store, ranker.features)
            every = block_matches(query, index)[0].all(axis=1)
            cosine = cold_start_scores(ranker.features, topic_text(store), None, lambda: index)
            old = prior_order(ranker.features, cosine, 0)
            new = np.asarray([ranker._row[r.record_id] for r in ranker.ranking()])
        finally:
            store.close()
    lines = [
        f"Demo (`data/demo`, {len(every)} records, {int(every.sum())} match every block of its query):",
        "",
        "| prior | all blocks in first 20 | in first 40 | rank of the last all-block record |",
        "|---|---:|---:|---:|",
    ]
    for name, order in (("cosine (before)", old), ("blocks + cosine + inclusion prior (the project's order)", new)):
        last = int(np.flatnonzero(every[order]).max()) + 1
        lines.append(f"| {name} | {int(every[order[:20]].sum())} | {int(every[order[:40]].sum())} | {last} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--seeds", default="0-2", help="tie-break seeds of the prior order")
    parser.add_argument("--random-seeds", default="0-9")
    parser.add_argument(
        "--embeddings", action="store_true", help="also the prior of a project with sentence embeddings (ONNX int8)"
    )
    parser.add_argument(
        "--no-inclusion", action="store_true", help="skip the inclusion prior (21 fits, about 5 minutes)"
    )
    parser.add_argument(
        "--hold-out",
        choices=("review", "collection"),
        default="review",
        help="fit each review's inclusion prior without it (review) or without its whole collection, "
        "e.g. every Cohen 2006 review for a Cohen review (collection)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "cold_start.md")
    args = parser.parse_args()
    datasets = args.shared / "datasets"
    topics = pd.read_csv(datasets / "MANIFEST.csv").set_index("name")["topic"].to_dict()
    seeds, random_seeds = parse_seeds(args.seeds), parse_seeds(args.random_seeds)
    embedder = SentenceEmbedder(EmbeddingConfig(precision="int8")) if args.embeddings else None
    suite = default_suite(datasets)
    reviews = {p: read_dataset(p) for p in suite}
    rows = []
    for p in suite:
        kept = [reviews[q] for q in suite if q != p and not (args.hold_out == "collection" and same_collection(p, q))]
        others = None if args.no_inclusion else InclusionPrior.fit(kept)
        rows.append(review_row(p, topics[dataset_name(p)], seeds, random_seeds, embedder, others))
    sections = [f"# Cold start: topic line only, no labels ({date.today()})"]
    for prior in rows[0]["tool"]:  # the priors measured, in PRIORS order
        sections += [f"## Prior: {prior}", table(rows, prior), summary(rows, prior)]
    text = "\n\n".join([*sections, demo_section()])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
