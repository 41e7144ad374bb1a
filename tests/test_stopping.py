"""The buscar stopping rule (Callaghan & Müller-Hansen 2020): p-values against hand-computed hypergeometric
cases, never a stop before the first include, and its promised validity on random screening orders."""

from __future__ import annotations

from math import comb, floor

import numpy as np
import pytest

from screening.errors import ConfigError
from screening.stopping import Buscar, buscar_p_value


def _window_p(labels: list[int], pool: int, target: float, n: int) -> float:
    """P(X <= k) for the last ``n`` screened, by counting (math.comb), as the paper defines it."""
    found, k = sum(labels), sum(labels[len(labels) - n :])
    urn = pool - len(labels) + n
    least = floor(found / target - found) + 1 + k
    if least > urn:
        return 0.0
    return sum(comb(least, i) * comb(urn - least, n - i) for i in range(k + 1)) / comb(urn, n)


def _brute_force(labels: list[int], pool: int, target: float) -> float:
    return min(_window_p(labels, pool, target, n) for n in range(1, len(labels) + 1))


def test_p_value_by_hand_when_it_is_too_early() -> None:
    labels = [1] * 5 + [0] * 20  # 25 of 100 screened, 5 includes, then 20 excludes
    # the smallest p is the 20 excludes: 1 include must be left under H0 (floor(5/0.95 - 5) + 1 = 1),
    # the urn is those 20 plus 75 unscreened, and P(no include in 20 draws) = 75/95
    assert buscar_p_value(labels, 100, 0.95) == pytest.approx(75 / 95, rel=1e-12)
    assert buscar_p_value(labels, 100, 0.95) == pytest.approx(_brute_force(labels, 100, 0.95), rel=1e-12)
    assert not Buscar().verdict(labels, 100).stop and not Buscar().should_stop(labels, 100)


def test_p_value_by_hand_when_it_can_stop() -> None:
    labels = [1] * 50 + [0] * 50 + [0] * 800  # 900 of 1,000 screened, the last 850 excludes
    # under H0 at least floor(50/0.95 - 50) + 1 = 3 includes are in the urn of the 850 and the 100 unscreened
    by_hand = (100 * 99 * 98) / (950 * 949 * 948)
    assert buscar_p_value(labels, 1000, 0.95) == pytest.approx(by_hand, rel=1e-9)
    assert buscar_p_value(labels, 1000, 0.95) == pytest.approx(_brute_force(labels, 1000, 0.95), rel=1e-9)
    verdict = Buscar(target=0.95, confidence=0.95).verdict(labels, 1000)
    assert verdict.stop and verdict.p_value < 0.05 and verdict.more_needed == 0
    assert verdict.recall_lower_bound >= 0.95 and "you can stop" in verdict.reason


@pytest.mark.parametrize("seed", range(5))
def test_p_values_match_counting_on_mixed_sequences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = [int(x) for x in rng.random(60) < np.linspace(0.5, 0.02, 60)]
    for target in (0.8, 0.9, 0.95):
        assert buscar_p_value(labels, 150, target) == pytest.approx(_brute_force(labels, 150, target), rel=1e-9)


def test_never_says_stop_before_the_first_include() -> None:
    for screened in (1, 50, 99):
        verdict = Buscar().verdict([0] * screened, 100)
        assert not verdict.stop and verdict.found == 0 and verdict.recall_lower_bound == 0.0
        assert verdict.more_needed is None and "no include found yet" in verdict.reason
        assert not Buscar().should_stop([0] * screened, 100)


def test_more_needed_is_the_exact_number_of_excludes_before_stop() -> None:
    labels = [1] * 30 + [0] * 40
    rule = Buscar(target=0.9, confidence=0.95)
    verdict = rule.verdict(labels, 2000)
    assert not verdict.stop and verdict.more_needed is not None
    assert rule.verdict(labels + [0] * verdict.more_needed, 2000).stop
    assert not rule.verdict(labels + [0] * (verdict.more_needed - 1), 2000).stop


def test_the_lower_bound_is_the_largest_target_it_would_stop_at() -> None:
    labels = [1] * 40 + [0] * 300
    bound = Buscar(confidence=0.95).verdict(labels, 800).recall_lower_bound
    assert 0 < bound < 1
    assert Buscar(target=bound - 0.001).verdict(labels, 800).stop
    assert not Buscar(target=min(bound + 0.001, 0.999)).verdict(labels, 800).stop


@pytest.mark.parametrize("target", [0.9, 0.95])
def test_on_random_orders_recall_at_stop_reaches_the_target_at_the_promised_rate(target: float) -> None:
    """The rule's promise for records screened in random order: recall ≥ target in ≥ 95% of runs."""
    pool, relevant, runs, step = 400, 20, 300, 5
    rule = Buscar(target=target, confidence=0.95)
    reached = 0
    for seed in range(runs):
        order = np.zeros(pool, dtype=np.int64)
        order[np.random.default_rng(seed).choice(pool, relevant, replace=False)] = 1
        stop_at = next(n for n in range(step, pool + 1, step) if rule.should_stop(order[:n], pool))
        reached += order[:stop_at].sum() / relevant >= target
    # 95% promised; 300 runs: a valid rule falls below 93% with probability under 5%
    assert reached / runs >= 0.93


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--target"):
        Buscar(target=1.0)
    with pytest.raises(ConfigError, match="--confidence"):
        Buscar(confidence=0)
    with pytest.raises(ConfigError, match="labels"):
        Buscar().verdict([1, 2], 10)
    with pytest.raises(ConfigError, match="pool"):
        Buscar().verdict([1, 0, 0], 2)
