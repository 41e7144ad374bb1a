"""The metric functions against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from screening.errors import ConfigError
from screening.ranking.datasets import priors
from screening.ranking.metrics import run_metrics


def test_small_case_by_hand() -> None:
    # N=20, R=4; includes found at screened positions 1, 3, 4 and 10.
    labels = [1, 0, 1, 1, 0, 0, 0, 0, 0, 1]
    m = run_metrics(labels, n_records=20, n_included=4)
    # ceil(0.95 * 4) = 4 includes needed -> n95 = 10
    assert m.n95 == 10
    assert m.wss95 == pytest.approx((20 - 10) / 20 - 0.05)  # 0.45
    assert m.wss100 == pytest.approx((20 - 10) / 20)  # 0.50
    # first round(0.1 * 20) = 2 records hold 1 of 4 includes
    assert m.recall10 == pytest.approx(0.25)
    assert m.wss95_opt == pytest.approx((20 - 4) / 20 - 0.05)  # 0.75


def test_n95_below_all_includes() -> None:
    # R=20: ceil(19.0) = 19, reached at the 19th include, before the 20th.
    labels = [1] * 19 + [0] * 5 + [1]
    m = run_metrics(labels, n_records=100, n_included=20)
    assert m.n95 == 19
    assert m.wss95 == pytest.approx(81 / 100 - 0.05)
    assert m.wss100 == pytest.approx((100 - 25) / 100)
    assert m.recall10 == pytest.approx(10 / 20)


def test_recall10_rounds_the_share() -> None:
    # N=25: round(2.5) = 2 (banker's rounding, as Python's round); R=2
    m = run_metrics([1, 0, 1], n_records=25, n_included=2)
    assert m.recall10 == pytest.approx(0.5)
    assert m.wss95 == pytest.approx((25 - 3) / 25 - 0.05)
    assert m.wss95_opt == pytest.approx((25 - math.ceil(1.9)) / 25 - 0.05)


def test_bad_input_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match="n_included"):
        run_metrics([1, 0], n_records=5, n_included=2)
    with pytest.raises(ConfigError, match="n_included"):
        run_metrics([0, 0], n_records=5, n_included=0)


def test_priors_follow_benchmark_md() -> None:
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 0])
    rng = np.random.default_rng(7)
    expected = (int(rng.choice(np.array([1, 4, 6]))), int(rng.choice(np.array([0, 2, 3, 5, 7]))))
    assert priors(labels, 7) == expected
