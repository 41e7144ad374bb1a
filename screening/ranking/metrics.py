"""Screening metrics from ``../shared/BENCHMARK.md``, computed from labels in screening order.

Both this project's simulation and the ASReview benchmark score their runs with these
functions, so the numbers in one table are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

RECALL_TARGET = 0.95
RECALL_AT_SHARE = 0.10
WSS_OFFSET = 0.05  # sampling at 95% recall would save 5% by itself


@dataclass(frozen=True)
class RunMetrics:
    """The per-run numbers of BENCHMARK.md; ``seconds`` is filled in by whoever timed the run."""

    N: int
    R: int
    n95: int
    wss95: float
    wss100: float
    recall10: float
    wss95_opt: float


def records_to_find(labels_in_order: Sequence[int] | np.ndarray, target: int) -> int:
    """How many records were screened when the count of includes first reached ``target``."""
    found = np.cumsum(np.asarray(labels_in_order, dtype=np.int64))
    hits = np.flatnonzero(found >= target)
    if hits.size == 0:
        raise ConfigError(f"labels_in_order: only {int(found[-1]) if found.size else 0} includes, need {target}")
    return int(hits[0]) + 1


def run_metrics(labels_in_order: Sequence[int] | np.ndarray, *, n_records: int, n_included: int) -> RunMetrics:
    """Score one run.

    ``labels_in_order`` are the labels in the order the records were screened (priors
    first); it may stop after the last include, as the simulation does.
    """
    if n_included < 1:
        raise ConfigError(f"n_included: a run needs at least one included record, got {n_included}")
    if n_records < len(labels_in_order):
        raise ConfigError(f"n_records: {n_records} is fewer than the {len(labels_in_order)} labels given")
    y = np.asarray(labels_in_order, dtype=np.int64)
    if int(y.sum()) != n_included:
        raise ConfigError(f"labels_in_order: holds {int(y.sum())} includes, but n_included is {n_included}")
    target95 = math.ceil(RECALL_TARGET * n_included)
    n95 = records_to_find(y, target95)
    n100 = records_to_find(y, n_included)
    first = round(RECALL_AT_SHARE * n_records)
    return RunMetrics(
        N=n_records,
        R=n_included,
        n95=n95,
        wss95=(n_records - n95) / n_records - WSS_OFFSET,
        wss100=(n_records - n100) / n_records,
        recall10=float(y[:first].sum()) / n_included,
        wss95_opt=(n_records - target95) / n_records - WSS_OFFSET,
    )
