"""The active-learning loop: learn each label as it is revealed and pick the next record.

``ActiveLearner`` holds the feature matrix of every record, the labels seen so far and a
fitted model. It is the one code path used by the simulation, the CLI and the dashboard
(which keeps it warm between decisions). Before any include is known it ranks by similarity
to the project's topic text (cold start); with includes but no exclude, by similarity to the
includes; with both, by the classifier.

Refitting after every label is exact but costs one fit per record. ``refit_share`` makes
simulations cheap: the learner still offers one record at a time, and refits after each of
the first labels, after the first include, after any label is removed, and otherwise once
the labels added since the last fit reach ``refit_share`` of those known then (with
``refit_on_include`` also after every include). ``refit_share=0`` refits after every label,
as ``ProjectRanker`` does in a project.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import MultinomialNB

from ..errors import ConfigError
from .features import TextFeatures, zscore
from .models import RelevanceClassifier

STRATEGIES = ("relevance", "uncertainty", "mixed")
NB_ALPHA = 0.1  # additive smoothing of the naive Bayes side model, on TF-IDF values


@dataclass(frozen=True)
class LearnerConfig:
    """Saved settings of a ranking run: JSON-friendly, stored with results.

    The defaults were chosen by leave-one-review-out cross-validation over the 21-review suite
    (``benchmarks/cross_validate.py``, docs/ranking.md "Fourth", "Eighth" and "Eleventh round"): a
    linear SVM (C=0.2, includes weighted 9.8 times the balanced weight, as ASReview's elas_u4)
    on word and character 4-gram features, fused at weight 0.75 with a second SVM (C=0.11) on
    words and word bigrams (elas_u4's own features), plus the nearest-include similarity on the
    word features. The other options below are off by default: none did better under
    cross-validation.
    """

    loss: str = "squared_hinge"
    C: float = 0.2
    pos_weight: str | float = "balanced"
    balance_ratio: float = 9.8
    strategy: str = "relevance"
    random_share: float = 0.0
    # Refit once the labels added since the last fit reach this share of those known then
    # (0 = after every label); with ``refit_on_include`` also after every new include.
    refit_share: float = 0.1
    refit_on_include: bool = False
    # Weight of "most similar known include" (max cosine) beside the classifier, both as
    # z-scores: finds the neighbours of an unusual include that the linear model averages away.
    neighbour_weight: float = 0.5
    # Weight of a second SVM, on sentence embeddings, beside the first (z-scores); used only
    # when the learner is given embeddings (opt-in: ``with_embeddings``).
    embedding_weight: float = 0.0
    # Let the include weight's extra factor fade as includes accumulate (RelevanceClassifier).
    ratio_decay: float = 0.0
    # AutoTAR's trick: this many random unscreened records join each fit as excludes (drawn
    # afresh at every fit from the seed and the number of labels); 0 = off.
    temporary_excludes: int = 0
    # Weights of differently biased models beside the SVM (z-scores, summed): multinomial
    # naive Bayes and logistic regression (C = ``logistic_C``), both on the model matrix, and
    # a second SVM on the word (+title) matrix alone, without character n-grams.
    nb_weight: float = 0.0
    logistic_weight: float = 0.0
    logistic_C: float = 1.0
    word_weight: float = 0.0
    # Weight of a second SVM (C = ``phrase_C``) on the phrase matrix (words and word bigrams,
    # no character n-grams: ``FeatureConfig.phrases``), fused with the first as z-scores: the two
    # models err on different records, so the fusion falls less far behind on any one review.
    phrase_weight: float = 0.75
    phrase_C: float = 0.11
    # Let the review's own labels reweight the fusion: each part beside the SVM is weighted by
    # exp(adaptive_fusion * (its AUC - the SVM's)), both AUCs counted over the records labeled
    # between fits (include-exclude pairs labeled in the same batch, scored by the earlier fit);
    # 0 = the fixed weights above.
    adaptive_fusion: float = 0.0

    @classmethod
    def with_embeddings(cls, **changes: object) -> LearnerConfig:
        """The settings measured best with sentence embeddings (docs/ranking.md, third and sixth
        rounds): without the phrase model, which was not measured beside the embeddings."""
        return cls(**{"embedding_weight": 0.3, "neighbour_weight": 1.0, "phrase_weight": 0.0, **changes})

    def model(self, seed: int) -> RelevanceClassifier:
        return RelevanceClassifier(
            loss=self.loss,
            C=self.C,
            pos_weight=self.pos_weight,
            balance_ratio=self.balance_ratio,
            ratio_decay=self.ratio_decay,
            random_state=seed,
        )

    def side_models(self, seed: int) -> dict[str, tuple[float, BaseEstimator]]:
        """The models scored beside the SVM, by name: (weight, unfitted estimator).

        "words" learns on the word matrix, "phrases" on the phrase matrix, the others on the
        model matrix.
        """
        models: dict[str, tuple[float, BaseEstimator]] = {}
        if self.word_weight > 0:
            models["words"] = (self.word_weight, self.model(seed))
        if self.phrase_weight > 0:
            models["phrases"] = (self.phrase_weight, self.model(seed).set_params(C=self.phrase_C))
        if self.nb_weight > 0:
            models["nb"] = (self.nb_weight, MultinomialNB(alpha=NB_ALPHA, fit_prior=False))
        if self.logistic_weight > 0:
            logistic = RelevanceClassifier(
                loss="logistic",
                C=self.logistic_C,
                pos_weight=self.pos_weight,
                balance_ratio=self.balance_ratio,
                ratio_decay=self.ratio_decay,
                random_state=seed,
            )
            models["logistic"] = (self.logistic_weight, logistic)
        return models

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_strategy(strategy: str, random_share: float) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not 0.0 <= random_share <= 1.0:
        raise ConfigError(f"random_share: must be between 0 and 1, got {random_share!r}")


def _decision(model: BaseEstimator, X) -> np.ndarray:
    """A fitted binary model's include score: ``decision_function``, or the log-odds of naive Bayes."""
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    joint = model.predict_joint_log_proba(X)
    return joint[:, 1] - joint[:, 0]


class ActiveLearner:
    """Ranks the unlabeled rows of ``matrix`` and learns from every label.

    ``matrix`` (rows L2-normalised) measures similarity: the includes' centroid and each
    record's nearest include. The classifier learns on ``model_matrix`` when given (the same
    rows with more columns, e.g. character n-grams), else on ``matrix``. ``embeddings`` (one
    dense row per record) feed a second classifier when ``config.embedding_weight > 0``. ``prior_scores``
    (e.g. similarity to the search query) rank records while no include is known. Ties are
    broken by a permutation drawn from ``seed``, never by row order.
    """

    UNLABELED, EXCLUDE, INCLUDE, SEEN = -1, 0, 1, 2

    def __init__(
        self,
        matrix: sp.csr_matrix,
        *,
        config: LearnerConfig | None = None,
        prior_scores: np.ndarray | None = None,
        seed: int = 0,
        model_matrix: sp.csr_matrix | None = None,
        embeddings: np.ndarray | None = None,
        phrase_matrix: sp.csr_matrix | None = None,
    ) -> None:
        self.config = config or LearnerConfig()
        check_strategy(self.config.strategy, self.config.random_share)
        self.matrix = sp.csr_matrix(matrix)
        n = self.matrix.shape[0]
        self.model_matrix = self.matrix if model_matrix is None else sp.csr_matrix(model_matrix)
        if self.model_matrix.shape[0] != n:
            raise ConfigError(f"model_matrix: has {self.model_matrix.shape[0]} rows for {n} records")
        self.phrase_matrix = None if phrase_matrix is None else sp.csr_matrix(phrase_matrix)
        if self.config.phrase_weight > 0 and (self.phrase_matrix is None or self.phrase_matrix.shape[0] != n):
            got = "none" if self.phrase_matrix is None else f"{self.phrase_matrix.shape[0]} rows"
            raise ConfigError(
                f"phrase_matrix: phrase_weight > 0 needs one row per record ({n}), got {got}; "
                'build the features with FeatureConfig(phrases="joint") or phrases="stacked"'
            )
        if embeddings is not None and len(embeddings) != n:
            raise ConfigError(f"embeddings: has {len(embeddings)} rows for {n} records")
        self.embeddings = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if prior_scores is not None and len(prior_scores) != n:
            raise ConfigError(f"prior_scores: has {len(prior_scores)} values for {n} records")
        self.prior_scores = prior_scores
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._tiebreak = self._rng.permutation(n)
        # -1 unlabeled (in the pool), 0 exclude, 1 include, 2 seen but undecided ('maybe')
        self.labels = np.full(n, self.UNLABELED, dtype=np.int8)
        self.model_ = clone(self.config.model(seed))
        self.embedding_model_ = clone(self.config.model(seed))
        self.side_models_ = {name: (w, clone(m)) for name, (w, m) in self.config.side_models(seed).items()}
        self.n_fits = 0
        self._nearest_of: set[int] = set()
        self._nearest = np.zeros(self.matrix.shape[0], dtype=np.float64)
        self._labeled_at_fit = -1
        self._scores: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._stale = True
        # evidence of each fused part, for adaptive_fusion: the last fit's z-scores and pool,
        # and the include-exclude pairs each part has ranked right since
        self._fit_parts: dict[str, np.ndarray] | None = None
        self._fit_pool: np.ndarray | None = None
        self._pairs_right: dict[str, float] = {}
        self._pairs = 0

    @classmethod
    def from_features(cls, features: TextFeatures, **kwargs: object) -> ActiveLearner:
        """A learner on every matrix of ``features``: similarity, classifier and phrase matrices."""
        return cls(features.matrix, model_matrix=features.model_matrix, phrase_matrix=features.phrase_matrix, **kwargs)

    # -- labels --------------------------------------------------------------
    def set_label(self, index: int, value: int | None) -> None:
        """Record the label of row ``index``: 1 include, 0 exclude, 2 seen (maybe), -1 or None forget."""
        new = self.UNLABELED if value is None else int(value)
        if new not in (self.UNLABELED, self.EXCLUDE, self.INCLUDE, self.SEEN):
            raise ConfigError(f"value: a label is -1, 0, 1, 2 or None, got {value!r}")
        old = int(self.labels[index])
        if old == new:
            return
        self.labels[index] = new
        if self._changes_model(new, old) or self._due_for_refit():
            self._stale = True

    def _changes_model(self, new: int, old: int) -> bool:
        """Labels that must refit at once: a removed label, and an include (or only the first)."""
        if new == self.UNLABELED or old in (self.INCLUDE, self.EXCLUDE):
            return True
        if new == self.INCLUDE:
            return self.config.refit_on_include or int((self.labels == self.INCLUDE).sum()) == 1
        return False

    def set_labels(self, labels: dict[int, int]) -> None:
        for index, value in labels.items():
            self.set_label(index, value)

    def _due_for_refit(self) -> bool:
        n_labeled = int(((self.labels == self.INCLUDE) | (self.labels == self.EXCLUDE)).sum())
        if self._labeled_at_fit < 0:
            return True
        step = max(1, math.floor(self.config.refit_share * self._labeled_at_fit))
        return n_labeled - self._labeled_at_fit >= step

    # -- scores --------------------------------------------------------------
    def scores(self) -> np.ndarray:
        """Relevance score of every row (labeled ones included), refitting if due."""
        if self._stale or self._scores is None:
            # the features are our own TF-IDF (and embeddings): finite by construction, so
            # scikit-learn's scan of all 20,000 rows for NaN on every refit is skipped
            with config_context(assume_finite=True):
                self._scores = self._compute_scores()
            self._order = None
            self._stale = False
        return self._scores

    def _compute_scores(self) -> np.ndarray:
        pos = np.flatnonzero(self.labels == self.INCLUDE)
        neg = np.flatnonzero(self.labels == self.EXCLUDE)
        self._labeled_at_fit = int(pos.size + neg.size)
        if pos.size and neg.size:
            rows = np.concatenate([pos, neg, self._temporary_excludes()])
            y = (self.labels[rows] == self.INCLUDE).astype(np.int8)  # temporary excludes: 0
            self.model_.fit(self.model_matrix[rows], y)
            self.n_fits += 1
            parts = {"svm": (1.0, self.model_.decision_function(self.model_matrix))}
            for name, (weight, model) in self.side_models_.items():
                X = {"words": self.matrix, "phrases": self.phrase_matrix}.get(name, self.model_matrix)
                model.fit(X[rows], y)
                parts[name] = (weight, _decision(model, X))
            if self.embeddings is not None and self.config.embedding_weight > 0:
                self.embedding_model_.fit(self.embeddings[rows], y)
                parts["embeddings"] = (
                    self.config.embedding_weight,
                    self.embedding_model_.decision_function(self.embeddings),
                )
            if self.config.neighbour_weight > 0:
                parts["neighbour"] = (self.config.neighbour_weight, self._nearest_include(pos))
            if len(parts) == 1:
                return parts["svm"][1]
            z = {name: zscore(values) for name, (_, values) in parts.items()}
            weights = {name: weight for name, (weight, _) in parts.items()}
            if self.config.adaptive_fusion > 0:
                weights = self._adapted_weights(weights)
            self._fit_parts, self._fit_pool = z, self.labels == self.UNLABELED
            return z["svm"] + sum(weights[name] * z[name] for name in parts if name != "svm")
        if pos.size:
            centroid = np.asarray(self.matrix[pos].mean(axis=0)).ravel()
            return np.asarray(self.matrix @ centroid).ravel()
        if self.prior_scores is not None:
            return np.asarray(self.prior_scores, dtype=np.float64)
        raise ConfigError("no include yet and no topic text to rank by: set the project's query, criteria or keywords")

    def _adapted_weights(self, weights: dict[str, float]) -> dict[str, float]:
        """Fusion weights after the evidence of the labels made since the last fit.

        Each part's include-exclude pairs ranked right are counted on the rows unlabeled at
        the last fit and labeled since, with that fit's scores: the records every part was
        judged on alike. The counts add up over the review.
        """
        previous, pool = self._fit_parts, self._fit_pool
        if previous is not None and pool is not None:
            batch = pool & ((self.labels == self.INCLUDE) | (self.labels == self.EXCLUDE))
            y = self.labels[batch] == self.INCLUDE
            n_pos, n_neg = int(y.sum()), int((~y).sum())
            if n_pos and n_neg:
                for name, values in previous.items():
                    right = roc_auc_score(y, values[batch]) * n_pos * n_neg
                    self._pairs_right[name] = self._pairs_right.get(name, 0.0) + right
                self._pairs += n_pos * n_neg
        if not self._pairs:
            return weights
        auc = {name: self._pairs_right.get(name, 0.0) / self._pairs for name in weights}
        strength = self.config.adaptive_fusion
        return {
            name: weight if name == "svm" else weight * math.exp(strength * (auc[name] - auc["svm"]))
            for name, weight in weights.items()
        }

    def _temporary_excludes(self) -> np.ndarray:
        """``config.temporary_excludes`` random unscreened rows, the same for the same labels and seed."""
        k = self.config.temporary_excludes
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        pool = np.flatnonzero(self.labels == self.UNLABELED)
        rng = np.random.default_rng([self.seed, self._labeled_at_fit])
        return np.sort(rng.choice(pool, size=min(k, pool.size), replace=False))

    def _nearest_include(self, pos: np.ndarray) -> np.ndarray:
        """Max cosine of every row to any include; updated with only the new includes when it can."""
        known = self._nearest_of
        if not known.issubset(pos.tolist()):
            known, self._nearest = set(), np.zeros(self.matrix.shape[0], dtype=np.float64)
        for row in pos:
            if int(row) not in known:
                np.maximum(
                    self._nearest,
                    np.asarray(self.matrix @ self.matrix[int(row)].T.toarray()).ravel(),
                    out=self._nearest,
                )
        self._nearest_of = set(pos.tolist())
        return self._nearest

    def ranked(self, limit: int | None = None) -> np.ndarray:
        """Unlabeled rows in the order the strategy would offer them (ties in seeded random order).

        For ``mixed``, each position is a random pool record with probability ``random_share``;
        the draws come from a generator seeded afresh, so the list is the same on every call.
        """
        pool_order = self._pool_order()
        cfg = self.config
        if cfg.strategy == "mixed" and cfg.random_share > 0 and pool_order.size:
            rng = np.random.default_rng([self.seed, int((self.labels >= 0).sum())])
            random_pick = rng.random(pool_order.size) < cfg.random_share
            shuffled = rng.permutation(pool_order)
            out, used = [], np.zeros(self.labels.size, dtype=bool)
            best, rand = iter(pool_order), iter(shuffled)
            for pick in random_pick:
                source = rand if pick else best
                row = next(r for r in source if not used[r])
                used[row] = True
                out.append(row)
            pool_order = np.asarray(out, dtype=np.int64)
        return pool_order if limit is None else pool_order[:limit]

    def _pool_order(self) -> np.ndarray:
        scores = self.scores()
        pool = np.flatnonzero(self.labels == self.UNLABELED)
        if self.config.strategy == "uncertainty" and self._has_both_classes():
            return pool[np.lexsort((self._tiebreak[pool], np.abs(scores[pool])))]
        order = self._full_order()
        return order[self.labels[order] == self.UNLABELED]

    def _has_both_classes(self) -> bool:
        return bool((self.labels == self.INCLUDE).any() and (self.labels == self.EXCLUDE).any())

    def _full_order(self) -> np.ndarray:
        scores = self.scores()
        if self._order is None:
            self._order = np.lexsort((self._tiebreak, -scores))
            self._cursor = 0
        return self._order

    def next(self) -> int | None:
        """The row to screen next under the configured strategy; None when all are labeled."""
        if not (self.labels == self.UNLABELED).any():
            return None
        cfg = self.config
        if cfg.strategy == "mixed" and cfg.random_share > 0 and self._rng.random() < cfg.random_share:
            return int(self._rng.choice(np.flatnonzero(self.labels == self.UNLABELED)))
        if cfg.strategy == "uncertainty" and self._has_both_classes():
            return int(self._pool_order()[0])
        order = self._full_order()
        while self.labels[order[self._cursor]] != self.UNLABELED:
            self._cursor += 1
        return int(order[self._cursor])
