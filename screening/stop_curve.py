"""What the dashboard draws of a stopping rule: its settings, and its recall lower bound along the screening order.

:func:`bound_curve` asks the rule, at evenly spaced points of a stage's screening order
(the labels of :func:`screening.stops.stage_evidence`), how much recall it can vouch for
with its confidence after that many records, and :func:`stop_point` where along the
order it first said stop. Together they draw the Progress page's chart: the includes
found, the lower bound on recall, and the point where the rule says stop.

For Buscar the bound is the rule's own (``screening.stopping.buscar_lower_bound``), found
exactly by a search over whole numbers of missed includes, about ``log2(pool)`` p-values a point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .stopping import Buscar, StoppingRule, buscar_lower_bound, first_stop

FIRST_STOP_LIMIT = 1000  # up to this many screened, the stop point is first_stop's (exact); beyond, the grid's


@dataclass(frozen=True)
class BoundPoint:
    """After ``screened`` records, ``found`` includes; recall is at least ``lower_bound`` with the rule's confidence."""

    screened: int
    found: int
    lower_bound: float

    @property
    def most_includes(self) -> float | None:
        """The most includes the pool could hold, at the rule's confidence (None: no bound yet)."""
        return self.found / self.lower_bound if self.lower_bound > 0 else None


def lower_bound(rule: StoppingRule, labels: Sequence[int] | np.ndarray, pool: int) -> float:
    """The rule's recall lower bound after ``labels``; 0 for a rule without a guarantee."""
    values = np.asarray(labels, dtype=np.int64)
    if not rule.guarantee:
        return 0.0
    if isinstance(rule, Buscar):
        return buscar_lower_bound(values, pool, rule.confidence)
    return float(rule.verdict(values, pool).recall_lower_bound)


def curve_points(screened: int, points: int = 80) -> list[int]:
    """At most ``points`` evenly spaced numbers screened, from the first record to the last."""
    if screened <= 0:
        return []
    return sorted({int(n) for n in np.linspace(1, screened, num=min(points, screened)).round()})


def bound_curve(
    labels: Sequence[int] | np.ndarray, pool: int, rule: StoppingRule, points: int = 80
) -> list[BoundPoint]:
    """The rule's recall lower bound at evenly spaced points of the screening order (empty: a rule without a claim)."""
    values = np.asarray(labels, dtype=np.int64)
    if not rule.guarantee:
        return []
    found = np.cumsum(values)
    return [
        BoundPoint(n, int(found[n - 1]), lower_bound(rule, values[:n], pool)) for n in curve_points(values.size, points)
    ]


def stop_point(
    rule: StoppingRule, labels: Sequence[int] | np.ndarray, pool: int, curve: Sequence[BoundPoint] = ()
) -> int | None:
    """Records screened when the rule first said stop along this order (None: it has not).

    Exact (:func:`screening.stopping.first_stop`) up to :data:`FIRST_STOP_LIMIT` records
    screened; beyond, the first point of ``curve`` whose bound reaches the target, narrowed
    down from the point before it (it may then miss a stop undone by a later include).
    """
    values = np.asarray(labels, dtype=np.int64)
    if values.size <= FIRST_STOP_LIMIT:
        return first_stop(rule, values, pool)
    hit = next((i for i, p in enumerate(curve) if p.lower_bound >= rule.target), None)
    if hit is None:
        return None
    low = curve[hit - 1].screened + 1 if hit > 0 else 1
    high = curve[hit].screened
    if not rule.should_stop(values[:high], pool):
        return high  # the bound's bisection and the rule's test disagree at the last digit: the point is close
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if rule.should_stop(values[:middle], pool) else (middle + 1, high)
    return low


__all__ = ["BoundPoint", "bound_curve", "curve_points", "lower_bound", "stop_point"]
