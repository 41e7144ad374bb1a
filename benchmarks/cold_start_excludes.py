"""Before the first include: does learning from the excludes bring it sooner?

    .venv/bin/python benchmarks/cold_start_excludes.py [--shared ../shared] [--seeds 0-2] [--limit 400]
        [--out benchmarks/results/cold_start_excludes.md]

The same projects as ``cold_start.py`` (each review of the suite with only its one-line
``topic`` as topic text, no label), now screened: the reviewer reads the best-ranked record,
it is excluded unless it is an include, and the order is recomputed, until the first include
(or ``--limit`` records). Reported: the number of records read to reach it, per review (mean
of the tie-break ``--seeds``), under each way of using the excludes so far:

- ``static``: the prior alone (what the ranker does: excludes change nothing until an include);
- ``centroid w``: the prior minus ``w`` × cosine to the centroid of the excludes (Rocchio's
  negative feedback);
- ``max w``: the prior minus ``w`` × the highest cosine to any exclude (pushes away the
  neighbours of each exclude);
- ``svm w``: AutoTAR's synthetic include: the SVM of the ranker fitted on the topic text as the
  one include against the excludes, added with weight ``w`` to the prior (both as z-scores).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from screening.ranking.datasets import dataset_name, default_suite, parse_seeds, read_dataset
from screening.ranking.features import TextFeatures, build_features, clean_query
from screening.ranking.models import RelevanceClassifier
from screening.ranking.query import cold_start_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_asreview import markdown  # the benchmarks' one table writer, beside this file

HERE = Path(__file__).resolve().parent
# name -> weight; the scorers below
SETTINGS = [("static", 0.0)] + [(m, w) for m in ("centroid", "max") for w in (0.25, 0.5, 1.0)]
SETTINGS += [("svm", w) for w in (0.5, 1.0, 2.0)]

Scorer = Callable[[list[int], int], np.ndarray]


def _z(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


def scorer(mode: str, weight: float, features: TextFeatures, prior: np.ndarray, topic: str, seed: int) -> Scorer:
    """A function of (excludes so far, the newest exclude) -> scores of every record."""
    words = features.words.tocsr()
    nearest = np.zeros(words.shape[0])
    synthetic = features.embed(clean_query(topic))

    def score(excludes: list[int], newest: int) -> np.ndarray:
        if mode == "centroid":
            centroid = np.asarray(words[excludes].mean(axis=0)).ravel()
            centroid /= max(np.linalg.norm(centroid), 1e-12)
            return prior - weight * (words @ centroid)
        if mode == "max":
            np.maximum(nearest, (words @ words[newest].T).toarray().ravel(), out=nearest)
            return prior - weight * nearest
        if mode == "svm":
            rows = sp.vstack([synthetic, words[excludes]]).tocsr()
            target = np.r_[1, np.zeros(len(excludes), dtype=int)]
            model = RelevanceClassifier(C=0.2, random_state=seed).fit(rows, target)
            return _z(prior) + weight * _z(model.decision_function(words))
        return prior

    return score


def records_to_first_include(labels: np.ndarray, prior: np.ndarray, score: Scorer, seed: int, limit: int) -> int:
    """Read best-first, excluding non-includes and re-scoring, until the first include; the count read."""
    tie = np.random.default_rng(seed).random(labels.size) * 1e-9  # a seeded tie-break, as the ranker's
    current = prior + tie
    seen = np.zeros(labels.size, dtype=bool)
    excludes: list[int] = []
    for read in range(1, limit + 1):
        row = int(np.argmax(np.where(seen, -np.inf, current)))
        seen[row] = True
        if labels[row] == 1:
            return read
        excludes.append(row)
        current = score(excludes, row) + tie
    return limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(HERE.parent.parent / "shared"))
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--out", default=str(HERE / "results" / "cold_start_excludes.md"))
    args = parser.parse_args()
    shared = Path(args.shared)
    topics = pd.read_csv(shared / "datasets" / "MANIFEST.csv").set_index("name")["topic"]
    rows = []
    for path in default_suite(shared / "datasets"):
        name = dataset_name(path)
        data = read_dataset(path)
        features = build_features(data.texts, None, titles=data.titles)
        prior = cold_start_scores(features, [topics[name]], None, lambda: None)
        for seed in parse_seeds(args.seeds):
            for mode, weight in SETTINGS:
                score = scorer(mode, weight, features, prior, topics[name], seed)
                read = records_to_first_include(data.labels, prior, score, seed, args.limit)
                rows.append({"dataset": name, "setting": f"{mode} {weight:g}" if weight else mode, "read": read})
    table = pd.DataFrame(rows).groupby(["dataset", "setting"])["read"].mean().unstack("setting")
    table = table[[f"{m} {w:g}" if w else m for m, w in SETTINGS]]
    summary = pd.DataFrame(
        {
            "median": table.median().round(1),
            "first include within 10": (table <= 10).sum().astype(int),
            "geometric mean": np.exp(np.log(table).mean()).round(1),
            "reviews sooner than static": (table.lt(table["static"], axis=0)).sum().astype(int),
            "reviews later than static": (table.gt(table["static"], axis=0)).sum().astype(int),
        }
    )
    text = "\n".join(
        [
            "# Before the first include: records read to reach it, learning from the excludes or not",
            "",
            f"Command: `python benchmarks/cold_start_excludes.py --seeds {args.seeds} --limit {args.limit}` "
            f"({len(table)} reviews, topic line only; mean over tie-break seeds).",
            "",
            markdown(summary),
            "",
            markdown(table.map(lambda v: f"{v:.1f}")),
        ]
    )
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
