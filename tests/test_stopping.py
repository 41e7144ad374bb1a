"""The stopping rules: buscar (Callaghan & Müller-Hansen 2020) against hand-computed hypergeometric cases,
and PoissonDecay against a brute-force profile likelihood; for both, never a stop before the first include,
their promised validity on random screening orders, and verdicts whose fields agree."""

from __future__ import annotations

from math import comb, floor

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm, poisson

from screening.errors import ConfigError
from screening.stopping import (
    DECAY_OFFSET,
    DECAY_SHAPES,
    DEFAULT_RULE,
    RULES,
    Buscar,
    PoissonDecay,
    StoppingRule,
    buscar_p_value,
    decay_remaining_bound,
    decay_tail,
    first_stop,
    make_rule,
)


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


# --- PoissonDecay: the decaying-rate point-process rule (the default) ---------------------------


def _random_order(pool: int, relevant: int, seed: int) -> np.ndarray:
    order = np.zeros(pool, dtype=np.int64)
    order[np.random.default_rng(seed).choice(pool, relevant, replace=False)] = 1
    return order


def test_decay_never_says_stop_before_the_first_include() -> None:
    for screened in (1, 50, 99, 100):
        verdict = PoissonDecay().verdict([0] * screened, 100)
        assert not verdict.stop and verdict.found == 0 and verdict.recall_lower_bound == 0.0
        assert verdict.p_value == 1.0 and verdict.estimated_recall == 0.0
        assert verdict.more_needed is None and "no include found yet" in verdict.reason
        assert not PoissonDecay().should_stop([0] * screened, 100)
        assert PoissonDecay().more_needed([0] * screened, 100) is None


def test_decay_says_stop_when_every_record_is_read() -> None:
    verdict = PoissonDecay().verdict([1, 0, 0, 1] + [0] * 6, 10)
    assert verdict.stop and verdict.recall_lower_bound == 1.0 and verdict.estimated_recall == 1.0


@pytest.mark.parametrize("target", [0.9, 0.95])
def test_decay_on_random_orders_reaches_the_target_at_the_promised_rate(target: float) -> None:
    """A random order has a flat include rate (d = 0, inside the model): recall ≥ target in ≥ 95% of runs."""
    rule = PoissonDecay(target=target, confidence=0.95)
    sizes = [(400, 20), (1000, 10), (300, 60), (600, 30)]  # pool, includes
    runs = reached = 0
    for pool, relevant in sizes:
        for seed in range(80):
            order = _random_order(pool, relevant, 10_000 * pool + seed)
            stop_at = first_stop(rule, order, pool)
            stop_at = pool if stop_at is None else stop_at
            reached += order[:stop_at].sum() / relevant >= target
            runs += 1
    # 320 runs: a rule valid at 95% falls below 93% with probability under 5%
    assert reached / runs >= 0.93


def _profile_upper_by_brute_force(values: np.ndarray, pool: int, alpha: float) -> float:
    """The profile-likelihood upper bound of decay_tail, by a fine grid over A for every shape d."""
    n, found = values.size, int(values.sum())
    position = np.arange(1, pool + 1) + DECAY_OFFSET * pool
    x = np.flatnonzero(values)
    best, uppers = -np.inf, []
    for d in DECAY_SHAPES:
        w = position**-d
        inside, after, fit = w[:n].sum(), w[n:].sum(), np.log(w[x]).sum()
        a = np.linspace(1e-9, 40 * found / inside, 400_001)
        loglik = found * np.log(a) + fit - a * inside
        best = max(best, loglik.max())
        uppers.append((a, loglik, after))
    crit = norm.ppf(1 - alpha) ** 2 / 2
    return max((a[loglik >= best - crit] * after).max(initial=0.0) for a, loglik, after in uppers)


@pytest.mark.parametrize("seed", range(3))
def test_decay_upper_bound_matches_a_brute_force_profile_likelihood(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = (rng.random(300) < np.linspace(0.4, 0.02, 300)).astype(np.int64)
    estimate, upper = decay_tail(values, 1000, 0.025)
    assert upper == pytest.approx(_profile_upper_by_brute_force(values, 1000, 0.025), rel=1e-3)
    assert 0 < estimate < upper


def test_decay_bound_by_hand_when_the_rate_does_not_fall() -> None:
    # 6 includes, all in the second half of 100 screened: no shape d > 0 fits better than a flat
    # rate, so the bound is the flat one, the classical Poisson profile bound: u * T / W with
    # T / W = 200 unscreened / 100 screened, and u > 6 solving 6 log u - u = 6 log 6 - 6 - z^2 / 2
    values = np.zeros(100, dtype=np.int64)
    values[[49, 59, 69, 79, 89, 99]] = 1
    pool, alpha = 300, 0.025
    crit = norm.ppf(1 - alpha) ** 2 / 2
    u = brentq(lambda u: 6 * np.log(u) - u - (6 * np.log(6) - 6 - crit), 6, 100)
    estimate, upper = decay_tail(values, pool, alpha)
    assert estimate == pytest.approx(6 * 200 / 100, rel=1e-12)
    assert upper == pytest.approx(u * 200 / 100, rel=1e-9)
    assert decay_remaining_bound(values, pool, 2 * alpha) == poisson.ppf(1 - alpha, upper)


def test_decay_verdict_fields_agree() -> None:
    rng = np.random.default_rng(7)
    decaying = (rng.random(3000) < 0.5 * np.exp(-np.arange(3000) / 150)).astype(np.int64)
    decaying[0] = 1
    rule = PoissonDecay(target=0.95, confidence=0.95)
    seen_stop = seen_go = False
    for screened in (20, 100, 300, 600, 900, 1200, 2000, 3000):
        verdict = rule.verdict(decaying[:screened], 3000)
        seen_stop, seen_go = seen_stop or verdict.stop, seen_go or not verdict.stop
        assert verdict.stop == (verdict.p_value < 0.05) == (verdict.more_needed == 0)
        assert verdict.stop == (verdict.recall_lower_bound >= 0.95) == rule.should_stop(decaying[:screened], 3000)
        # the bound counts whole includes (a Poisson quantile), the estimate expected ones: either can be higher
        assert 0 < verdict.recall_lower_bound <= 1 and 0 < verdict.estimated_recall <= 1
        assert verdict.found == decaying[:screened].sum() and verdict.screened == screened
    assert seen_stop and seen_go


@pytest.mark.parametrize("rule", [PoissonDecay(), Buscar()], ids=["poisson-decay", "buscar"])
def test_every_verdict_is_finite_and_consistent_from_the_first_record(rule: StoppingRule) -> None:
    """Including one include among the first records of a pool (the dashboard's curve starts there), where the
    decay model's bound on the includes left exceeds the records left: it is capped at them."""
    rng = np.random.default_rng(11)
    cases = [([1], 310), ([1, 1], 310), ([1] + [0] * 5, 3000), ([0, 1], 2)]
    for _ in range(150):
        pool = int(rng.integers(2, 400))
        cases.append(((rng.random(int(rng.integers(1, pool + 1))) < rng.uniform(0.01, 0.9)).astype(int), pool))
    for labels, pool in cases:
        verdict = rule.verdict(labels, pool)
        assert np.isfinite(verdict.p_value) and 0 <= verdict.p_value <= 1
        assert 0 <= verdict.recall_lower_bound <= 1 and 0 <= verdict.estimated_recall <= 1
        assert verdict.stop == (verdict.p_value < 0.05) == (verdict.more_needed == 0)
        found = int(np.sum(labels))
        if found:  # recall cannot be below what the records left allow
            assert verdict.recall_lower_bound >= found / (found + pool - len(labels)) - 1e-8


def test_decay_more_needed_is_the_exact_number_of_excludes_before_stop() -> None:
    labels = [1] * 10 + [0, 1] * 10 + [0] * 60
    rule = PoissonDecay(target=0.9, confidence=0.95)
    needed = rule.verdict(labels, 2000).more_needed
    assert needed is not None and needed > 0
    assert rule.verdict(labels + [0] * needed, 2000).stop
    assert not rule.verdict(labels + [0] * (needed - 1), 2000).stop


def test_decay_p_value_is_the_smallest_alpha_that_stops() -> None:
    labels = [1] * 10 + [0, 1] * 10 + [0] * 400
    p = PoissonDecay().verdict(labels, 2000).p_value
    assert 1e-6 < p < 1
    assert PoissonDecay(confidence=1 - p * 1.01).should_stop(labels, 2000)
    assert not PoissonDecay(confidence=1 - p * 0.99).should_stop(labels, 2000)


def test_decay_saves_work_over_buscar_on_a_decaying_order() -> None:
    """Not a guarantee, the reason for the rule: when the rate falls along the order, it stops sooner."""
    rng = np.random.default_rng(3)
    order = (rng.random(2000) < 0.6 * np.exp(-np.arange(2000) / 120)).astype(np.int64)
    order[0] = 1
    decay, buscar = first_stop(PoissonDecay(), order, 2000), first_stop(Buscar(), order, 2000)
    assert decay is not None and buscar is not None and decay < buscar


def test_buscar_estimated_recall_by_hand() -> None:
    labels = [1] * 5 + [0] * 20  # the p-value's window is the 20 excludes: rate (0 + 1/2) / 21
    verdict = Buscar().verdict(labels, 100)
    assert verdict.estimated_recall == pytest.approx(5 / (5 + 75 * 0.5 / 21), rel=1e-12)
    assert Buscar().verdict([0] * 10, 100).estimated_recall == 0.0


def test_the_registry_and_the_default() -> None:
    assert set(RULES) >= {"buscar", "excludes-in-a-row", "poisson-decay"}
    rule = make_rule(DEFAULT_RULE, target=0.9, confidence=0.9)
    assert rule.guarantee and rule.target == 0.9 and rule.confidence == 0.9
    with pytest.raises(ConfigError, match="--target"):
        PoissonDecay(target=1.0)
