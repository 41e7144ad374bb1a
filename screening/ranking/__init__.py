"""Relevance ranking with active learning.

features.py   word and character n-gram TF-IDF of a project's records, query similarity
              for cold start
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

from .active import STRATEGIES, ActiveLearner, LearnerConfig
from .embeddings import EmbeddingConfig, SentenceEmbedder
from .features import FeatureConfig, build_features, query_similarity
from .metrics import RunMetrics, run_metrics
from .models import RelevanceClassifier
from .project import ProjectRanker, next_record, rank_unscreened

__all__ = [
    "STRATEGIES",
    "ActiveLearner",
    "EmbeddingConfig",
    "FeatureConfig",
    "LearnerConfig",
    "ProjectRanker",
    "RelevanceClassifier",
    "RunMetrics",
    "SentenceEmbedder",
    "build_features",
    "next_record",
    "query_similarity",
    "rank_unscreened",
    "run_metrics",
]
