"""Relevance ranking with active learning.

features.py   word and character n-gram TF-IDF of a project's records, query similarity
              for cold start
inclusion.py  InclusionPrior: what reviews include whatever the topic, learned across
              labeled reviews; with the topic text, the order before the first include
models.py     RelevanceClassifier (scikit-learn estimator)
active.py     ActiveLearner: learns each label, picks the next record (relevance,
              uncertainty or mixed with a random share)
project.py    ProjectRanker / rank_unscreened / next_record: the above on a project,
              with features cached in the database
simulate.py   simulated screening of labeled datasets (../shared/BENCHMARK.md)
metrics.py    WSS@95, WSS@100, recall@10% ...
datasets.py   reading labeled datasets, the default suite and its halves, priors
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that a CLI command or a page that does not rank does not load
# scikit-learn (about 1.5 s): ``from screening.ranking import ProjectRanker`` works as before.
_EXPORTS = {
    "STRATEGIES": "active",
    "ActiveLearner": "active",
    "LearnerConfig": "active",
    "EmbeddingConfig": "embeddings",
    "SentenceEmbedder": "embeddings",
    "FeatureConfig": "features",
    "build_features": "features",
    "query_similarity": "features",
    "RunMetrics": "metrics",
    "run_metrics": "metrics",
    "RelevanceClassifier": "models",
    "ProjectRanker": "project",
    "next_record": "project",
    "rank_unscreened": "project",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
