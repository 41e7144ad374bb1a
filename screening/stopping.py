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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.stats import hypergeom

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


def buscar_p_value(labels: Sequence[int] | np.ndarray, pool: int, target: float = 0.95) -> float:
    """The p-value of "recall < ``target``" after screening ``labels`` (in order) out of ``pool`` records.

    For the last ``n`` records screened (every ``n``), with ``k`` includes among them and
    ``r`` includes found in all: the urn is those ``n`` plus the ``pool - screened`` unscreened
    records; under the null hypothesis it holds at least ``floor(r / target - r) + 1 + k``
    includes; the window's p is P(X ≤ k) for ``n`` draws from it. The p-value is the smallest.
    """
    values = _labels(labels, pool)
    screened = values.size
    if screened == 0:
        return 1.0
    found = int(values.sum())
    window = np.arange(1, screened + 1)
    in_window = np.cumsum(values[::-1])  # includes among the last n screened
    urn = pool - screened + window
    least = np.floor(found / target - found) + 1 + in_window  # includes the urn holds under H0
    p = np.zeros(screened)
    possible = least <= urn  # otherwise H0 cannot hold for that window: p = 0
    p[possible] = hypergeom.cdf(in_window[possible], urn[possible], least[possible], window[possible])
    return float(p.min())


def _recall_lower_bound(values: np.ndarray, pool: int, alpha: float) -> float:
    """The largest target recall whose null hypothesis the sequence rejects at ``alpha`` (bisection)."""
    if values.sum() == 0:
        return 0.0
    if buscar_p_value(values, pool, 1e-6) >= alpha:
        return 0.0
    low, high = 1e-6, 1.0 - 1e-9
    for _ in range(BISECTION_STEPS):  # p grows with the target
        middle = (low + high) / 2
        low, high = (middle, high) if buscar_p_value(values, pool, middle) < alpha else (low, middle)
    return low


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


@dataclass(frozen=True)
class Buscar:
    """Callaghan & Müller-Hansen's stopping rule, as published (see the module docstring for its assumption)."""

    target: float = 0.95
    confidence: float = 0.95
    name: str = "buscar"
    guarantee: bool = True

    def __post_init__(self) -> None:
        _check(self.target, self.confidence)

    def _stops(self, values: np.ndarray, pool: int) -> bool:
        # never before the first include: there is nothing to estimate recall from
        return bool(values.sum()) and buscar_p_value(values, pool, self.target) < 1 - self.confidence

    def should_stop(self, labels: Sequence[int] | np.ndarray, pool: int) -> bool:
        """The decision alone (one p-value)."""
        return self._stops(_labels(labels, pool), pool)

    def more_needed(self, labels: Sequence[int] | np.ndarray, pool: int) -> int | None:
        """Excludes in a row, read next, before it says stop; None: not even if every record were read."""
        values = _labels(labels, pool)
        return excludes_to_stop(values, pool, lambda v: self._stops(v, pool))

    def verdict(self, labels: Sequence[int] | np.ndarray, pool: int) -> StopVerdict:
        """Whether to stop after ``labels`` (screening order) out of ``pool`` records, and why, with its numbers."""
        values = _labels(labels, pool)
        alpha = 1 - self.confidence
        found = int(values.sum())
        p = buscar_p_value(values, pool, self.target)
        stop = found > 0 and p < alpha
        return StopVerdict(
            rule=self.name,
            target=self.target,
            confidence=self.confidence,
            pool=pool,
            screened=int(values.size),
            found=found,
            p_value=p,
            recall_lower_bound=_recall_lower_bound(values, pool, alpha),
            stop=stop,
            more_needed=0 if stop else self.more_needed(values, pool),
        )


@dataclass(frozen=True)
class ExcludesInARow:
    """ASReview's heuristic: stop after ``run`` excludes in a row. **No guarantee**: it ignores the pool size.

    ``target`` and ``confidence`` are carried only so that it can sit in the same tables.
    """

    target: float = 0.95
    confidence: float = 0.95
    run: int = 100
    name: str = "excludes-in-a-row"
    guarantee: bool = False

    def __post_init__(self) -> None:
        _check(self.target, self.confidence)
        if self.run < 1:
            raise ConfigError(f"run: {self.run} excludes in a row; give at least 1")

    def _streak(self, values: np.ndarray) -> int:
        ones = np.flatnonzero(values)
        return int(values.size - 1 - ones[-1]) if ones.size else int(values.size)

    def should_stop(self, labels: Sequence[int] | np.ndarray, pool: int) -> bool:
        """At least one include, then ``run`` excludes in a row (or nothing left to read)."""
        values = _labels(labels, pool)
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
        return StopVerdict(
            rule=self.name,
            target=self.target,
            confidence=self.confidence,
            pool=pool,
            screened=int(values.size),
            found=int(values.sum()),
            p_value=1.0,
            recall_lower_bound=0.0,
            stop=stop,
            more_needed=0 if stop else self.more_needed(values, pool),
        )


RULES: dict[str, Callable[..., StoppingRule]] = {"buscar": Buscar, "excludes-in-a-row": ExcludesInARow}
DEFAULT_RULE = "buscar"


def make_rule(name: str = DEFAULT_RULE, *, target: float = 0.95, confidence: float = 0.95) -> StoppingRule:
    """The rule called ``name`` (a key of :data:`RULES`) at this target recall and confidence."""
    if name not in RULES:
        raise ConfigError(f"--stop-rule: {name!r} is not a rule; choose one of {', '.join(RULES)}")
    return RULES[name](target=target, confidence=confidence)
