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
    pos_weight : "balanced" or float
        Weight of an included record relative to an excluded one. "balanced" gives both
        classes the same total weight; a number >1 up-weights includes by that factor of
        the balanced weight's square root (a milder boost when includes are very rare).
    random_state : int, RandomState or None
        Passed to the solver.
    """

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's declared constraints)
        "loss": [StrOptions({"squared_hinge", "logistic"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "pos_weight": [StrOptions({"balanced", "sqrt"}), Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        loss: str = "squared_hinge",
        C: float = 0.1,
        pos_weight: str | float = "balanced",
        max_iter: int = 1000,
        random_state: int | None = 0,
    ) -> None:
        self.loss = loss
        self.C = C
        self.pos_weight = pos_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def _class_weight(self, y: np.ndarray) -> dict[int, float]:
        n_pos = max(int((y == self.classes_[1]).sum()), 1)
        n_neg = max(int((y == self.classes_[0]).sum()), 1)
        ratio = n_neg / n_pos
        if self.pos_weight == "balanced":
            w = ratio
        elif self.pos_weight == "sqrt":
            w = np.sqrt(ratio)
        else:
            w = float(self.pos_weight)
        return {0: 1.0, 1: w}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):  # noqa: ANN001 (scikit-learn signature)
        """Fit on the labeled records; ``y`` must hold exactly two classes."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size != 2:
            raise ValueError(f"y: RelevanceClassifier needs two classes, got {self.classes_.tolist()}")
        weights = self._class_weight(np.where(y_enc == 1, self.classes_[1], self.classes_[0]))
        if self.loss == "logistic":
            model = LogisticRegression(
                C=self.C,
                class_weight=weights,
                solver="liblinear",
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        else:
            model = LinearSVC(
                C=self.C,
                class_weight=weights,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        # Columns that are zero in every training row get zero weight anyway; leaving them
        # out gives the same model, much faster (liblinear's cost grows with the column count).
        X = sp.csr_matrix(X)
        used = np.unique(X.indices)
        model.fit(X[:, used], y_enc)
        self.coef_ = np.zeros(X.shape[1], dtype=X.dtype)
        self.coef_[used] = model.coef_.ravel()
        self.intercept_ = float(model.intercept_[0])
        return self

    def decision_function(self, X) -> np.ndarray:  # noqa: ANN001
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, X) -> np.ndarray:  # noqa: ANN001
        """Scores squashed through a logistic; a ranking aid, not a calibrated probability."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:  # noqa: ANN001
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
