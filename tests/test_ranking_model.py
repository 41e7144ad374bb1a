"""The relevance classifier keeps the scikit-learn estimator contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from screening.ranking.models import RelevanceClassifier


def _expected_failures(estimator) -> dict[str, str]:
    return {
        "check_sample_weight_equivalence_on_dense_data": "class balancing sets its own weights",
        "check_sample_weight_equivalence_on_sparse_data": "class balancing sets its own weights",
    }


@parametrize_with_checks(
    [RelevanceClassifier(), RelevanceClassifier(loss="logistic", C=1.0, pos_weight="sqrt")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_contract(estimator, check) -> None:
    check(estimator)


def test_one_include_moves_the_ranking() -> None:
    X = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=float))
    y = np.array([1, 0, 0, 0, 0])
    model = RelevanceClassifier().fit(X, y)
    scores = model.decision_function(X)
    assert np.argmax(scores) == 0
    assert scores[3] > scores[1]  # shares a word with the include


def test_bad_parameter_is_named() -> None:
    X = sp.csr_matrix(np.eye(4))
    with pytest.raises(ValueError, match="C"):
        RelevanceClassifier(C=-1.0).fit(X, [1, 0, 0, 0])
    with pytest.raises(ValueError, match="two classes"):
        RelevanceClassifier().fit(X, [0, 0, 0, 0])
