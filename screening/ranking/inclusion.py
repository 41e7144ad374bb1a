"""A prior learned across published reviews: what systematic reviews include, whatever the topic.

Before the first include the ranker knows only the topic text. Yet what reviews include has
something in common whatever the topic (trials and measured outcomes rather than letters and
comments, say), and the words that say so recur from one review to the next.
:class:`InclusionPrior` is a logistic regression on the word
TF-IDF of labeled reviews, include against exclude, each review weighted equally and its
includes and excludes balanced within it. Only words found in at least ``min_reviews`` of the
training reviews are kept, so the words of any one topic cannot carry it.

Its z-scored score is added to the topic's cosine before the first include
(:func:`screening.ranking.query.cold_start_scores`). The tool ships one fitted on the 21
reviews of the benchmark suite (``inclusion_prior.json.gz`` beside this file, made by
``screening build-prior``); leave-one-review-out measurements are in docs/ranking.md (tenth
round). A team can fit one on its own labeled reviews and point a project at it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from ..errors import ConfigError
from .datasets import LabeledDataset
from .features import TextFeatures

FORMAT = "screening-inclusion-prior/1"
DEFAULT_FILE = "inclusion_prior.json.gz"


@dataclass(frozen=True)
class InclusionPrior:
    """Word weights of a fitted prior; score texts with :meth:`score_texts` or :meth:`score_counts`."""

    words: tuple[str, ...]
    idf: np.ndarray
    coef: np.ndarray
    trained_on: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        reviews: Sequence[LabeledDataset],
        *,
        min_df: int = 5,
        max_df: float = 0.5,
        min_reviews: int = 5,
        C: float = 1.0,
    ) -> InclusionPrior:
        """Fit on labeled reviews (each needs an include and an exclude); parameters as in the module doc."""
        if not C > 0:
            raise ConfigError(f"C: must be above 0, got {C}")
        if len(reviews) < min_reviews:
            raise ConfigError(f"reviews: {len(reviews)} given, need at least min_reviews={min_reviews}")
        for review in reviews:
            if not 0 < review.n_included < review.n_records:
                raise ConfigError(f"{review.name}: needs both includes and excludes to train a prior")
        texts = [t for review in reviews for t in review.texts]
        vocabulary = _shared_words(reviews, texts, min_df, max_df, min_reviews)
        if not vocabulary:
            raise ConfigError(f"reviews: no word is in {min_reviews} reviews and {min_df} records")
        vectorizer = TfidfVectorizer(vocabulary=vocabulary, sublinear_tf=True)
        X = vectorizer.fit_transform(texts)
        y = np.concatenate([review.labels for review in reviews])
        model = LogisticRegression(C=C, max_iter=2000)
        model.fit(X, y, sample_weight=_review_weights(reviews) * len(y))
        params = {"min_df": min_df, "max_df": max_df, "min_reviews": min_reviews, "C": C}
        names = tuple(review.name for review in reviews)
        return cls(tuple(vocabulary), vectorizer.idf_.astype(np.float64), model.coef_.ravel(), names, params)

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """The prior's score of each text (higher: more like what reviews include)."""
        counts = CountVectorizer(vocabulary=list(self.words)).transform(texts)
        return self._score(sp.csr_matrix(counts, dtype=np.float64))

    def score_counts(self, counts: sp.spmatrix, words: Sequence[str]) -> np.ndarray:
        """The same from a (record x word) count matrix whose columns are ``words``: a project's
        cached word counts (:class:`screening.ranking.features.TokenCounts`), with no second pass over the text."""
        column = pd.Index(self.words).get_indexer(pd.Index(words))
        known = np.flatnonzero(column >= 0)
        picked = sp.csr_matrix(counts, dtype=np.float64)[:, known].tocoo()
        mapped = sp.csr_matrix(
            (picked.data, (picked.row, column[known][picked.col])), shape=(counts.shape[0], len(self.words))
        )
        return self._score(mapped)

    def score_features(self, features: TextFeatures) -> np.ndarray:
        """The score of every record of a project's features, from their cached word counts."""
        counts = features.counts
        return self.score_counts(counts.text @ counts.word_map, counts.words)

    def _score(self, counts: sp.csr_matrix) -> np.ndarray:
        counts.sum_duplicates()
        counts.data = np.log(counts.data) + 1.0  # sublinear TF, as fitted
        counts.data *= self.idf[counts.indices]
        inplace_csr_row_normalize_l2(counts)
        return np.asarray(counts @ self.coef, dtype=np.float64).ravel()

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "trained_on": list(self.trained_on),
            "params": self.params,
            "words": list(self.words),
            "idf": [round(float(v), 6) for v in self.idf],
            "coef": [round(float(v), 6) for v in self.coef],
        }

    @classmethod
    def from_dict(cls, payload: dict, source: str = "prior") -> InclusionPrior:
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ConfigError(f"{source}: not an inclusion prior (format must be {FORMAT!r})")
        try:
            words, idf, coef = payload["words"], payload["idf"], payload["coef"]
        except KeyError as e:
            raise ConfigError(f"{source}: missing field {e.args[0]!r}") from None
        if not (len(words) == len(idf) == len(coef)) or not words:
            raise ConfigError(f"{source}: words, idf and coef must be non-empty and of one length")
        return cls(
            tuple(str(w) for w in words),
            np.asarray(idf, dtype=np.float64),
            np.asarray(coef, dtype=np.float64),
            tuple(payload.get("trained_on", ())),
            dict(payload.get("params", {})),
        )

    def save(self, path: str | Path) -> None:
        """Write gzip'd JSON (no pickle: a prior from elsewhere is data, not code)."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        with gzip.open(partial, "wt", encoding="utf-8") as out:
            json.dump(self.to_dict(), out)
        partial.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> InclusionPrior:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                payload = json.load(f)
        except (OSError, EOFError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read an inclusion prior: {e}") from e
        return cls.from_dict(payload, str(path))


@lru_cache(maxsize=1)
def default_prior() -> InclusionPrior:
    """The prior shipped with the tool (fitted on the benchmark suite's 21 reviews)."""
    with resources.as_file(resources.files(__package__) / DEFAULT_FILE) as path:
        return InclusionPrior.load(path)


def _shared_words(
    reviews: Sequence[LabeledDataset], texts: list[str], min_df: int, max_df: float, min_reviews: int
) -> list[str]:
    """Words in ``min_df`` records and at most ``max_df`` of them, found in ``min_reviews`` reviews."""
    counter = CountVectorizer(min_df=min_df, max_df=max_df, binary=True)
    X = sp.csr_matrix(counter.fit_transform(texts))
    bounds = np.cumsum([0, *(review.n_records for review in reviews)])
    found_in = sum((X[a:b].getnnz(axis=0) > 0).astype(np.int64) for a, b in pairwise(bounds))
    names = counter.get_feature_names_out()
    return [str(w) for w in names[np.flatnonzero(found_in >= min_reviews)]]


def _review_weights(reviews: Sequence[LabeledDataset]) -> np.ndarray:
    """Each review weighs 1 in all, half on its includes and half on its excludes (the fit
    multiplies these by the record count, the scale at which ``C`` was measured)."""
    parts = []
    for review in reviews:
        included = review.labels == 1
        parts.append(np.where(included, 0.5 / included.sum(), 0.5 / (~included).sum()))
    return np.concatenate(parts)
