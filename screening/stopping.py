"""When is it safe to stop screening: stopping rules that read a stage's screening sequence.

A rule reads the labels in the order records were screened (1 = include, 0 = exclude; the
order of :meth:`screening.snapshot.StageSnapshot.sequence`) and the size of the pool, and
returns a :class:`StopVerdict`.

:class:`Buscar` is the published rule of Callaghan & Müller-Hansen (2020, "Statistical
stopping criteria for automated screening in systematic reviews", Systematic Reviews 9:273).
Its null hypothesis is "recall is below the target". For each window of the most recently
screened records, it treats the window plus every unscreened record as one urn from which
the window was drawn at random, and asks how likely it is to draw as few includes as the
window holds if enough includes were left to keep recall below the target (a
hypergeometric lower tail). The p-value is the smallest over the windows; the rule says
stop when it is below 1 - confidence.

**Its guarantee rests on an assumption**: that the records in the window were no more likely
to be included than the unscreened ones, which holds for a random order and is conservative
for a ranking that puts likely includes first (the unscreened records are then *less*
likely to be included than the window). It is not a guarantee against a ranking that
screens a subtopic first and leaves another untouched.

:class:`PoissonDecay` (this project's design, the default) trades that weak assumption for a
stronger one to stop sooner: that includes turn up along the screening order as an
inhomogeneous Poisson process whose rate decays like ``A * (position + 0.75 * pool) ** -d``
(any ``d ≥ 0``, so a flat rate, a random order, is one of the models). It fits the model to
the whole sequence and bounds the includes still unscreened; see its docstring.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import ConfigError

BISECTION_STEPS = 40


@dataclass(frozen=True)
class StopVerdict:
    """What a rule says after ``screened`` of ``pool`` records, ``found`` of them includes."""

    rule: str
    target: float
    confidence: float
    pool: int
    screened: int
    found: int
    p_value: float  # of "recall < target"
    recall_lower_bound: float  # recall is at least this, with the confidence asked
    stop: bool
    more_needed: int | None  # excludes in a row before it can say stop; None: not even if all were read
    estimated_recall: float = 0.0  # found / (found + its estimate of includes unscreened); 0: none found or no estimate

    @property
    def reason(self) -> str:
        """One line for a reviewer, with the rule's numbers."""
        claim = f"recall ≥ {self.target:.0%} with {self.confidence:.0%} confidence"
        numbers = f"p = {self.p_value:.3g}; recall ≥ {self.recall_lower_bound:.1%} at {self.confidence:.0%}"
        if self.stop:
            return f"{claim}: you can stop ({self.rule}: {numbers})"
        if self.found == 0:
            return f"no include found yet: {self.rule} cannot say stop before the first include"
        more = "" if self.more_needed is None else f"; about {self.more_needed} more excludes in a row would do"
        return f"not yet {claim} ({self.rule}: {numbers}{more})"


def _check(target: float, confidence: float) -> None:
    if not 0 < target < 1:
        raise ConfigError(f"--target: {target} is not between 0 and 1 (exclusive)")
    if not 0 < confidence < 1:
        raise ConfigError(f"--confidence: {confidence} is not between 0 and 1 (exclusive)")


def _labels(labels: Sequence[int] | np.ndarray, pool: int) -> np.ndarray:
    values = np.asarray(labels, dtype=np.int64)
    if values.ndim != 1 or not np.isin(values, (0, 1)).all():
        raise ConfigError("labels: one 0 (exclude) or 1 (include) per screened record, in screening order")
    if pool < values.size:
        raise ConfigError(f"pool: {pool} records, fewer than the {values.size} screened")
    return values


def _buscar_windows(values: np.ndarray, pool: int, target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buscar's candidate windows: (length, includes in it, its p)."""
    screened = values.size
    found = int(values.sum())
    ends = screened - 1 - np.flatnonzero(values)  # the window just short of each include
    window = np.unique(np.concatenate([ends[ends > 0], [screened]]))
    in_window = np.concatenate([[0], np.cumsum(values[::-1])])[window]  # includes among the last n screened
    urn = pool - screened + window
    least = np.floor(found / target - found) + 1 + in_window  # includes the urn holds under H0
    p = np.zeros(window.size)
    possible = least <= urn  # otherwise H0 cannot hold for that window: p = 0
    from scipy.stats import hypergeom  # here, not at the top: every CLI command imports this module

    p[possible] = hypergeom.cdf(in_window[possible], urn[possible], least[possible], window[possible])
    return window, in_window, p


def buscar_p_value(labels: Sequence[int] | np.ndarray, pool: int, target: float = 0.95) -> float:
    """The p-value of "recall < ``target``" after screening ``labels`` (in order) out of ``pool`` records.

    For the last ``n`` records screened (every ``n``), with ``k`` includes among them and
    ``r`` includes found in all: the urn is those ``n`` plus the ``pool - screened`` unscreened
    records; under the null hypothesis it holds at least ``floor(r / target - r) + 1 + k``
    includes; the window's p is P(X ≤ k) for ``n`` draws from it. The p-value is the smallest.

    Only the windows that reach back to just after an include (and the whole sequence) are
    computed: within a run of windows with the same ``k``, a longer one has the smaller p
    (P(X ≤ k) is the chance that the unscreened draws, from an urn diluted by one more exclude,
    hold at least as many includes as H0 needs), so the smallest p is among those, exactly.
    """
    values = _labels(labels, pool)
    if values.size == 0:
        return 1.0
    return float(_buscar_windows(values, pool, target)[2].min())


def buscar_estimated_recall(values: np.ndarray, pool: int, target: float) -> float:
    """Buscar's point estimate: found / (found + unscreened * the include rate of the window behind its p-value).

    The rate is ``(k + 1/2) / (n + 1)`` for that window (``k`` includes in its ``n`` records), so
    that a window of excludes alone does not claim that nothing is left. Under buscar's
    assumption the unscreened records are at most as likely to be includes as the window's,
    so this estimate leans low.
    """
    found = int(values.sum())
    if found == 0:
        return 0.0
    window, in_window, p = _buscar_windows(values, pool, target)
    best = int(np.argmin(p))
    left = (pool - values.size) * (in_window[best] + 0.5) / (window[best] + 1)
    return float(found / (found + left))


def buscar_lower_bound(values: np.ndarray, pool: int, confidence: float) -> float:
    """Buscar's recall lower bound, exactly: ``found / (found + m)``, ``m`` the most misses not ruled out.

    The largest target recall whose null hypothesis the sequence rejects at ``1 - confidence``:
    recall can only take the values ``found / (found + m)`` for whole ``m``, so a bisection over
    ``m`` (about log2(pool) p-values) finds it exactly.
    """
    found = int(values.sum())
    if found == 0:
        return 0.0
    alpha = 1 - confidence

    def rejects(missed: int) -> bool:  # "at least missed + 1 includes are still unscreened" is rejected
        return buscar_p_value(values, pool, found / (found + missed + 0.5)) < alpha

    high = pool - values.size  # more missed includes than unscreened records: impossible, always rejected
    if not rejects(high):
        return 0.0
    low = 0
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if rejects(middle) else (middle + 1, high)
    return found / (found + low)


def excludes_to_stop(values: np.ndarray, pool: int, stops: Callable[[np.ndarray], bool]) -> int | None:
    """The fewest excludes in a row, read next, after which ``stops`` says stop (None: not even after all).

    A bisection: it assumes that a rule which says stop after ``m`` excludes in a row also
    says stop after more, which holds for every rule here (each exclude is evidence for stopping).
    """
    left = pool - values.size
    if not stops(np.concatenate([values, np.zeros(left, np.int64)])):
        return None
    low, high = 0, left
    while low < high:
        middle = (low + high) // 2
        extended = np.concatenate([values, np.zeros(middle, np.int64)])
        low, high = (low, middle) if stops(extended) else (middle + 1, high)
    return low


class StoppingRule(Protocol):
    """What every rule offers: the verdict with its numbers, the bare decision, and the excludes still needed."""

    name: str
    target: float
    confidence: float
    guarantee: bool  # False: a heuristic, shown beside the rules with a guarantee, never instead of them

    def should_stop(self, labels: Sequence[int] | np.ndarray, pool: int) -> bool: ...

    def more_needed(self, labels: Sequence[int] | np.ndarray, pool: int) -> int | None: ...

    def verdict(self, labels: Sequence[int] | np.ndarray, pool: int) -> StopVerdict: ...


def first_stop(rule: StoppingRule, labels: Sequence[int] | np.ndarray, pool: int) -> int | None:
    """The number of records screened when ``rule`` first says stop along a whole screening order.

    A simulation's question. It asks the rule once after the priors and once after each
    include, how many excludes in a row it still needs, instead of once per record.
    """
    values = _labels(labels, pool)
    includes = np.flatnonzero(values)
    checkpoints = [min(2, values.size), *(int(i) + 1 for i in includes if i + 1 > 2)]
    for start, end in zip(checkpoints, [*checkpoints[1:], values.size + 1], strict=True):
        needed = rule.more_needed(values[:start], pool)
        if needed is not None and start + needed < end:  # reached before the next include
            return start + needed
    return None


class _Rule:
    """What the rules share: parameters checked on creation, and ``should_stop`` / ``more_needed``
    from one ``_stops(values, pool)`` (monotone in the excludes added, see :func:`excludes_to_stop`)."""

    name: str
    target: float
    confidence: float

    def __post_init__(self) -> None:
        _check(self.target, self.confidence)

    def _verdict(
        self, values: np.ndarray, pool: int, *, p_value: float, lower_bound: float, stop: bool, estimate: float = 0.0
    ) -> StopVerdict:
        """The verdict with the numbers every rule reports the same way."""
        return StopVerdict(
            rule=self.name,
            target=self.target,
            confidence=self.confidence,
            pool=pool,
            screened=int(values.size),
            found=int(values.sum()),
            p_value=p_value,
            recall_lower_bound=lower_bound,
            stop=stop,
            more_needed=0 if stop else self.more_needed(values, pool),
            estimated_recall=estimate,
        )

    def _stops(self, values: np.ndarray, pool: int) -> bool:
        raise NotImplementedError

    def should_stop(self, labels: Sequence[int] | np.ndarray, pool: int) -> bool:
        """The decision alone."""
        return self._stops(_labels(labels, pool), pool)

    def more_needed(self, labels: Sequence[int] | np.ndarray, pool: int) -> int | None:
        """Excludes in a row, read next, before it says stop; None: not even if every record were read."""
        values = _labels(labels, pool)
        return excludes_to_stop(values, pool, lambda v: self._stops(v, pool))


@dataclass(frozen=True)
class Buscar(_Rule):
    """Callaghan & Müller-Hansen's stopping rule, as published (see the module docstring for its assumption)."""

    target: float = 0.95
    confidence: float = 0.95
    name: str = "buscar"
    guarantee: bool = True

    def _stops(self, values: np.ndarray, pool: int) -> bool:
        # never before the first include: there is nothing to estimate recall from
        return bool(values.sum()) and buscar_p_value(values, pool, self.target) < 1 - self.confidence

    def verdict(self, labels: Sequence[int] | np.ndarray, pool: int) -> StopVerdict:
        """Whether to stop after ``labels`` (screening order) out of ``pool`` records, and why, with its numbers."""
        values = _labels(labels, pool)
        alpha = 1 - self.confidence
        found = int(values.sum())
        p = buscar_p_value(values, pool, self.target)
        stop = found > 0 and p < alpha
        return self._verdict(
            values,
            pool,
            p_value=p,
            lower_bound=buscar_lower_bound(values, pool, self.confidence),
            stop=stop,
            estimate=buscar_estimated_recall(values, pool, self.target),
        )


@dataclass(frozen=True)
class ExcludesInARow(_Rule):
    """ASReview's heuristic: stop after ``run`` excludes in a row. **No guarantee**: it ignores the pool size.

    ``target`` and ``confidence`` are carried only so that it can sit in the same tables.
    """

    target: float = 0.95
    confidence: float = 0.95
    run: int = 100
    name: str = "excludes-in-a-row"
    guarantee: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.run < 1:
            raise ConfigError(f"run: {self.run} excludes in a row; give at least 1")

    def _streak(self, values: np.ndarray) -> int:
        ones = np.flatnonzero(values)
        return int(values.size - 1 - ones[-1]) if ones.size else int(values.size)

    def _stops(self, values: np.ndarray, pool: int) -> bool:
        """At least one include, then ``run`` excludes in a row (or nothing left to read)."""
        return bool(values.sum()) and (self._streak(values) >= self.run or values.size == pool)

    def more_needed(self, labels: Sequence[int] | np.ndarray, pool: int) -> int | None:
        """Excludes in a row, read next, before it says stop."""
        values = _labels(labels, pool)
        if not values.sum():
            return None
        return min(max(self.run - self._streak(values), 0), pool - values.size)

    def verdict(self, labels: Sequence[int] | np.ndarray, pool: int) -> StopVerdict:
        """Its decision; p-value 1 and lower bound 0, because it has no statistical claim to make."""
        values = _labels(labels, pool)
        stop = self.should_stop(values, pool)
        return self._verdict(values, pool, p_value=1.0, lower_bound=0.0, stop=stop)


DECAY_SHAPES = np.concatenate([np.linspace(0.0, 3.0, 31), np.linspace(3.5, 12.0, 18)])  # the d of PoissonDecay
# the rate's scale, a share of the pool: A * (position + DECAY_OFFSET * pool) ** -d (chosen on the tuning half)
DECAY_OFFSET = 0.75


@functools.lru_cache(maxsize=8)
def _decay_table(pool: int) -> tuple[np.ndarray, np.ndarray]:
    """For each shape ``d``: log of the rate shape at positions 1..pool, and its running sums (0 first)."""
    position = np.arange(1, pool + 1, dtype=float) + DECAY_OFFSET * pool
    log_shape = -DECAY_SHAPES[:, None] * np.log(position)[None, :]
    sums = np.zeros((DECAY_SHAPES.size, pool + 1))
    np.cumsum(np.exp(log_shape), axis=1, out=sums[:, 1:])
    return log_shape, sums


def decay_tail(values: np.ndarray, pool: int, alpha: float) -> tuple[float, float]:
    """Includes expected among the unscreened under :class:`PoissonDecay`'s model: (estimate, upper bound).

    The rate at position ``i`` is ``A * w_d(i)``, ``w_d(i) = (i + 0.75 pool) ** -d``. With ``r``
    includes at positions ``x`` among the first ``n``, the log-likelihood is
    ``r log A + sum log w_d(x) - A W_d`` (``W_d`` the sum of ``w_d`` over 1..n), at its best
    ``A = r / W_d``; the unscreened hold ``A * T_d`` on average (``T_d`` the sum over n+1..pool).
    The estimate is the maximum-likelihood one; the upper bound is the largest ``A * T_d`` over
    every ``(A, d)`` whose log-likelihood is within ``z(1 - alpha)^2 / 2`` of the best (a profile
    likelihood bound, one-sided, asymptotic: Wilks), solved in closed form by Lambert's W.
    """
    from scipy.special import lambertw
    from scipy.stats import norm

    n, found = values.size, int(values.sum())
    log_shape, sums = _decay_table(pool)
    inside, after = sums[:, n], sums[:, pool] - sums[:, n]
    if found == 0:
        return 0.0, float(np.max(norm.ppf(1 - alpha) ** 2 / 2 * after / inside))
    fit = log_shape[:, np.flatnonzero(values)].sum(axis=1)
    best = found * np.log(found / inside) - found + fit  # the log-likelihood at A = r / W_d
    top = int(np.argmax(best))
    estimate = found * after[top] / inside[top]
    # r log u - u >= g with u = A W_d: the largest u is r v, v = -W_{-1}(-exp(g / r - log r))
    g = best[top] - norm.ppf(1 - alpha) ** 2 / 2 + found * np.log(inside) - fit
    h = g / found - math.log(found)
    inside_set = h <= -1  # the shapes whose best A is close enough to the best fit
    v = np.zeros_like(h)
    v[inside_set] = -lambertw(-np.exp(h[inside_set]), -1).real
    upper = np.where(inside_set, found * v * after / inside, 0.0)
    return float(estimate), float(max(upper.max(), estimate))


def decay_remaining_bound(values: np.ndarray, pool: int, alpha: float) -> int:
    """At most this many includes are unscreened, with confidence ``1 - alpha`` under the decay model.

    Bonferroni: half of ``alpha`` for the bound on the expected number (:func:`decay_tail`),
    half for the Poisson count around it (its ``1 - alpha / 2`` quantile). Never more than the
    records left: each holds at most one include (the Poisson model does not know that).
    """
    left = pool - values.size
    if left == 0:
        return 0
    _, upper = decay_tail(values, pool, alpha / 2)
    if not np.isfinite(upper) or upper >= left:
        return left
    from scipy.stats import poisson

    return min(int(poisson.ppf(1 - alpha / 2, upper)), left)


@dataclass(frozen=True)
class PoissonDecay(_Rule):
    """Stop when an upper confidence bound on the includes left, under a decaying-rate model, allows the target.

    **Its guarantee rests on an assumption**, stronger than buscar's: includes turn up along
    the screening order as an inhomogeneous Poisson process with rate ``A * (i + 0.75 pool) ** -d``
    at position ``i`` (``A > 0``, ``0 ≤ d ≤ 12``: from flat, a random order, to a rate that falls
    by orders of magnitude along the pool), in the spirit of Stevenson & Bin-Hezam's point-process
    stopping methods (2023). The model is fitted to the whole sequence; :func:`decay_tail` bounds
    the expected includes unscreened (profile likelihood at ``alpha / 2``, asymptotic), the Poisson
    quantile at ``1 - alpha / 2`` bounds the count (:func:`decay_remaining_bound`), and the rule
    says stop when ``found / (found + that bound)`` reaches the target. A ranking that finds a
    cluster of includes early and leaves a second cluster far down the order breaks the model:
    the fit sees the rate fall and extrapolates it (on the benchmark: cohen2006_Opioids, whose
    last two includes come after ~70% of the pool). The offset, ``0.75 * pool``, was chosen on
    the tuning half of the benchmark suite (``suite_halves``; 0.1 to 1.0 of the pool tried): the
    most valid there, at both targets, and then the one saving most; the confirmation half
    judged it (``benchmarks/results/stopping.md``).

    ``verdict``'s p-value is the smallest ``1 - confidence`` at which the rule would say stop (a
    bisection), so p < 1 - confidence exactly when it says stop; it is a p-value of "recall <
    target" under the model. Its recall lower bound is ``found / (found + bound on the includes
    left)``; its estimate uses the maximum-likelihood expected number left.
    """

    target: float = 0.95
    confidence: float = 0.95
    name: str = "poisson-decay"
    guarantee: bool = True

    def _bound(self, values: np.ndarray, pool: int, alpha: float) -> float:
        found = int(values.sum())
        return found / (found + decay_remaining_bound(values, pool, alpha)) if found else 0.0

    def _stops(self, values: np.ndarray, pool: int, alpha: float | None = None) -> bool:
        # never before the first include: there is nothing to fit the rate to
        alpha = 1 - self.confidence if alpha is None else alpha
        return bool(values.sum()) and self._bound(values, pool, alpha) >= self.target

    def _p_value(self, values: np.ndarray, pool: int, stop: bool) -> float:
        """The smallest alpha at which it says stop (the rule is monotone in alpha), by bisection in log alpha."""
        alpha = 1 - self.confidence
        if not values.sum() or not self._stops(values, pool, 1 - 1e-9):
            return 1.0
        if self._stops(values, pool, 1e-15):
            return 1e-15 if stop else alpha
        low, high = math.log(1e-15), math.log(1 - 1e-9)  # low: no stop, high: stop
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            low, high = (low, middle) if self._stops(values, pool, math.exp(middle)) else (middle, high)
        p = math.exp(high)
        # the bisection's last step can land on the wrong side of alpha itself; the decision is exact
        return min(p, alpha * (1 - 1e-9)) if stop else max(p, alpha)

    def verdict(self, labels: Sequence[int] | np.ndarray, pool: int) -> StopVerdict:
        """Whether to stop after ``labels`` (screening order) out of ``pool`` records, and why, with its numbers."""
        values = _labels(labels, pool)
        alpha = 1 - self.confidence
        found = int(values.sum())
        stop = self._stops(values, pool)
        estimate = 0.0
        if found:
            left = pool - values.size
            expected = min(decay_tail(values, pool, alpha / 2)[0], left) if left else 0.0
            estimate = found / (found + expected)
        return self._verdict(
            values,
            pool,
            p_value=self._p_value(values, pool, stop),
            lower_bound=self._bound(values, pool, alpha),
            stop=stop,
            estimate=estimate,
        )


RULES: dict[str, Callable[..., StoppingRule]] = {
    "buscar": Buscar,
    "excludes-in-a-row": ExcludesInARow,
    "poisson-decay": PoissonDecay,
}
DEFAULT_RULE = "poisson-decay"  # valid on the benchmark at 90% and 95% (benchmarks/results/stopping.md)


def make_rule(name: str = DEFAULT_RULE, *, target: float = 0.95, confidence: float = 0.95) -> StoppingRule:
    """The rule called ``name`` (a key of :data:`RULES`) at this target recall and confidence."""
    if name not in RULES:
        raise ConfigError(f"--stop-rule: {name!r} is not a rule; choose one of {', '.join(RULES)}")
    return RULES[name](target=target, confidence=confidence)
