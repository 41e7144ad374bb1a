"""Relevance classifiers following the scikit-learn estimator contract.

``RelevanceClassifier`` is the default: a linear model on TF-IDF features with the few
included records weighted up, so that one or two includes among hundreds of excludes
already move the ranking.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


class RelevanceClassifier(ClassifierMixin, BaseEstimator):
    """Linear relevance model for screening: higher ``decision_function`` = more likely included.

    Parameters
    ----------
    loss : {"squared_hinge", "logistic"}
        Linear SVM (liblinear) or logistic regression.
    C : float
        Inverse regularisation strength.
    pos_weight : "balanced", "sqrt" or float
        Weight of an included record relative to an excluded one: "balanced" is
        n_exclude / n_include (both classes weigh the same in total), "sqrt" its square
        root, a number a fixed weight. It is then multiplied by ``balance_ratio``.
    balance_ratio : float
        Extra factor on the include weight (ASReview's elas_u4 uses 9.8 on "balanced").
        Weights are rescaled to sum to the number of records, so ``C`` keeps its meaning.
    ratio_decay : float
        Lets ``balance_ratio`` fade as includes accumulate: the factor used is
        ``1 + (balance_ratio - 1) / (1 + ratio_decay * (n_include - 1))``, so the first include
        gets all of it and many includes tend to plain ``pos_weight``. 0 (default) keeps it fixed.
    random_state : int, RandomState or None
        Passed to the solver.
    """

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's declared constraints)
        "loss": [StrOptions({"squared_hinge", "logistic"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "pos_weight": [StrOptions({"balanced", "sqrt"}), Interval(Real, 0, None, closed="neither")],
        "balance_ratio": [Interval(Real, 0, None, closed="neither")],
        "ratio_decay": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        loss: str = "squared_hinge",
        C: float = 0.11,
        pos_weight: str | float = "balanced",
        balance_ratio: float = 1.0,
        ratio_decay: float = 0.0,
        max_iter: int = 1000,
        random_state: int | None = 0,
    ) -> None:
        self.loss = loss
        self.C = C
        self.pos_weight = pos_weight
        self.balance_ratio = balance_ratio
        self.ratio_decay = ratio_decay
        self.max_iter = max_iter
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # include / exclude only
        tags.input_tags.sparse = True
        return tags

    def _sample_weight(self, y_enc: np.ndarray) -> np.ndarray:
        n_pos = int(y_enc.sum())
        ratio = (y_enc.size - n_pos) / n_pos
        if self.pos_weight == "balanced":
            w = ratio
        elif self.pos_weight == "sqrt":
            w = np.sqrt(ratio)
        else:
            w = float(self.pos_weight)
        extra = 1.0 + (self.balance_ratio - 1.0) / (1.0 + self.ratio_decay * (n_pos - 1))
        weights = np.where(y_enc == 1, w * extra, 1.0)
        return weights * (y_enc.size / weights.sum())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on the labeled records; ``y`` must hold exactly two classes."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size != 2:
            raise ValueError(
                f"y: RelevanceClassifier needs two classes, got {self.classes_.size} class "
                f"{self.classes_.tolist()}. Only binary classification is supported."
            )
        weights = self._sample_weight(y_enc)
        if self.loss == "logistic":
            model = LogisticRegression(
                C=self.C,
                solver="liblinear",
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        else:
            model = LinearSVC(
                C=self.C,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        # Columns that are zero in every training row get zero weight anyway; leaving them
        # out gives the same model, much faster (liblinear's cost grows with the column count).
        X = sp.csr_matrix(X)
        used = np.flatnonzero(np.bincount(X.indices, minlength=X.shape[1]))  # np.unique, ~100x faster
        model.fit(X[:, used], y_enc, sample_weight=weights)
        self.coef_ = np.zeros(X.shape[1], dtype=X.dtype)
        self.coef_[used] = model.coef_.ravel()
        self.intercept_ = float(model.intercept_[0])
        self.n_iter_ = int(np.max(model.n_iter_))
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """Scores squashed through a logistic; a ranking aid, not a calibrated probability."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
