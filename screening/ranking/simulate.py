"""Simulated screening on labeled datasets, exactly as ``../shared/BENCHMARK.md`` describes.

The learner sees the two prior labels, then asks for one record at a time; only the label of
the record it asked for is revealed. The run stops when every included record is found, or,
with a stopping rule, when the rule says stop (see :func:`simulate_dataset`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..stopping import StoppingRule
from .active import ActiveLearner, LearnerConfig
from .datasets import LabeledDataset, priors, read_dataset
from .embeddings import SentenceEmbedder
from .features import FeatureConfig, TextFeatures, build_features
from .metrics import RECALL_AT_SHARE, RECALL_TARGET, WSS_OFFSET, records_to_find, run_metrics

RESULT_COLUMNS = ["dataset", "seed", "N", "R", "n95", "wss95", "wss100", "recall10", "wss95_opt", "seconds"]
STOP_COLUMNS = ["stop_rule", "stop_n", "stop_recall"]  # added after RESULT_COLUMNS when the runs had a rule
TRACE_COLUMNS = ["dataset", "seed", "position", "record_id", "label"]


@dataclass(frozen=True)
class SimulationResult:
    dataset: str
    seed: int
    order: np.ndarray  # row positions in screening order, priors first
    labels_in_order: np.ndarray
    seconds: float
    n_fits: int
    stop_rule: str | None = None  # the rule the run stopped by; None: it ran to the last include
    stop_n: int | None = None  # records screened when the rule said stop; N when it never did

    def stop_recall(self, data: LabeledDataset) -> float | None:
        """The share of the dataset's includes found when the rule said stop (None without a rule)."""
        if self.stop_rule is None:
            return None
        return float(self.labels_in_order[: self.stop_n].sum()) / data.n_included

    def row(self, data: LabeledDataset) -> dict[str, object]:
        """BENCHMARK.md's numbers, then the stop columns if the run had a rule.

        A run that stopped by its rule before 95% (or 100%) recall never reached ``n95`` and
        ``wss95`` (or ``wss100``), nor ``recall10`` if it stopped before 10% of the records:
        those are NaN, not guessed.
        """
        metrics = _reached_metrics(self.labels_in_order, n_records=data.n_records, n_included=data.n_included)
        row: dict[str, object] = {"dataset": self.dataset, "seed": self.seed, **metrics, "seconds": self.seconds}
        if self.stop_rule is not None:
            row |= {"stop_rule": self.stop_rule, "stop_n": self.stop_n, "stop_recall": self.stop_recall(data)}
        return row


def _reached_metrics(labels_in_order: np.ndarray, *, n_records: int, n_included: int) -> dict[str, float]:
    """:func:`run_metrics` for a run that found every include; for one that stopped before, NaN where it fell short."""
    y = np.asarray(labels_in_order, dtype=np.int64)
    if int(y.sum()) == n_included:
        return asdict(run_metrics(y, n_records=n_records, n_included=n_included))
    target95 = math.ceil(RECALL_TARGET * n_included)
    n95 = records_to_find(y, target95) if y.sum() >= target95 else math.nan
    first = round(RECALL_AT_SHARE * n_records)
    return {
        "N": n_records,
        "R": n_included,
        "n95": n95,
        "wss95": (n_records - n95) / n_records - WSS_OFFSET,  # NaN stays NaN
        "wss100": math.nan,
        "recall10": float(y[:first].sum()) / n_included if y.size >= first else math.nan,
        "wss95_opt": (n_records - target95) / n_records - WSS_OFFSET,
    }


def _stop_at(rule: StoppingRule | None, labels: list[int], pool: int) -> int | None:
    """How many records will have been screened when ``rule`` says stop, if only excludes come next."""
    if rule is None:
        return None
    needed = rule.more_needed(labels, pool)
    return None if needed is None else len(labels) + needed


def simulate_dataset(
    data: LabeledDataset,
    *,
    seed: int,
    learner: LearnerConfig | None = None,
    features: FeatureConfig | None = None,
    prior_records: tuple[int, int] | None = None,
    embeddings: np.ndarray | None = None,
    stop_rule: StoppingRule | None = None,
    text_features: TextFeatures | None = None,
) -> SimulationResult:
    """One simulated run; ``seconds`` covers feature extraction and every fit.

    Without ``stop_rule`` the run ends when the last include is found (BENCHMARK.md); with
    it, when the rule says stop (checked after the priors and after each include, for the
    excludes in a row it still needs), or when every record is screened. The result's
    ``stop_n`` is then the number screened: where the rule said stop, or N if it never did
    (the same as :func:`screening.stopping.first_stop` along the run's labels, or N).

    ``prior_records`` (an included and an excluded row) replaces BENCHMARK.md's seeded priors.
    ``embeddings`` (computed beforehand, their time not counted here) feed the second SVM.
    ``text_features`` (built beforehand from ``data``, e.g. once for many runs; their time not
    counted here) replace building them from ``features``.
    """
    start = time.perf_counter()
    prior_inc, prior_exc = prior_records or priors(data.labels, seed)
    feats = text_features or build_features(data.texts, features, titles=data.titles)
    model = ActiveLearner.from_features(feats, config=learner, seed=seed, embeddings=embeddings)
    model.set_label(prior_inc, 1)
    model.set_label(prior_exc, 0)
    order = [prior_inc, prior_exc]
    found, total = 1, data.n_included
    labels = [1, 0]
    stop_at = _stop_at(stop_rule, labels, data.n_records)
    while (found < total) if stop_rule is None else (stop_at is None or len(order) < stop_at):
        row = model.next()
        if row is None:  # every record is screened
            break
        label = int(data.labels[row])  # revealed only now, for the record asked for
        model.set_label(row, label)
        order.append(row)
        labels.append(label)
        found += label
        if label and stop_rule is not None:
            stop_at = _stop_at(stop_rule, labels, data.n_records)
    seconds = time.perf_counter() - start
    positions = np.asarray(order, dtype=np.int64)
    stop = {} if stop_rule is None else {"stop_rule": stop_rule.name, "stop_n": len(order)}
    return SimulationResult(
        data.name, seed, positions, data.labels[positions].astype(np.int8), seconds, model.n_fits, **stop
    )


def simulate_files(
    paths: Iterable[str | Path],
    seeds: Iterable[int],
    *,
    learner: LearnerConfig | None = None,
    features: FeatureConfig | None = None,
    embedder: SentenceEmbedder | None = None,
    on_run: Callable[[SimulationResult], None] | None = None,
    stop_rule: StoppingRule | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, int], SimulationResult]]:
    """Every (dataset, seed) run: one row each in BENCHMARK.md's columns, and the raw runs.

    With ``embedder``, each dataset is embedded once, as a project keeps its embeddings, and
    the time it took is added to the ``seconds`` of the dataset's first run. ``on_run`` is
    told of each run as it finishes (progress for long suites).

    With ``stop_rule``, each run ends when the rule says stop (see :func:`simulate_dataset`);
    the rows gain :data:`STOP_COLUMNS`, and the metrics a run never reached are NaN (``n95``
    is then a nullable integer column).
    """
    rows, runs = [], {}
    seeds = list(seeds)
    for path in paths:
        data = read_dataset(path)
        embeddings, embed_seconds = None, 0.0
        if embedder is not None:
            started = time.perf_counter()
            embeddings = embedder.encode([text.strip() for text in data.texts])
            embed_seconds = time.perf_counter() - started
        for seed in seeds:
            result = simulate_dataset(
                data, seed=seed, learner=learner, features=features, embeddings=embeddings, stop_rule=stop_rule
            )
            if embed_seconds:
                result = replace(result, seconds=result.seconds + embed_seconds)
                embed_seconds = 0.0
            rows.append(result.row(data))
            runs[(data.name, seed)] = result
            if on_run is not None:
                on_run(result)
    if stop_rule is None:
        return pd.DataFrame(rows, columns=RESULT_COLUMNS), runs
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS + STOP_COLUMNS)
    table["n95"] = table["n95"].astype("Int64")  # an empty cell, not 25.0, where a run never reached 95%
    return table, runs


def trace_frame(
    runs: Mapping[tuple[str, int], SimulationResult], datasets: Mapping[str, LabeledDataset]
) -> pd.DataFrame:
    """Every run's screening order, one row per record screened: :data:`TRACE_COLUMNS`.

    ``position`` 1 is the included prior and 2 the excluded one; ``record_id`` is the
    dataset's ``record_id`` (its row number from 1 if it has none) and ``label`` its label.
    ``datasets`` maps each run's dataset name to the dataset it ran on.
    """
    parts = []
    for (name, seed), run in runs.items():
        data = datasets[name]
        ids = data.record_ids if data.record_ids is not None else [str(i) for i in range(1, data.n_records + 1)]
        n = len(run.order)
        parts.append(
            pd.DataFrame(
                {
                    "dataset": [name] * n,
                    "seed": np.full(n, seed, dtype=np.int64),
                    "position": np.arange(1, n + 1),
                    "record_id": [ids[i] for i in run.order],
                    "label": run.labels_in_order.astype(np.int64),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=TRACE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[TRACE_COLUMNS]


def plot_recall(
    runs: dict[tuple[str, int], SimulationResult], sizes: dict[str, tuple[int, int]], out: str | Path
) -> None:
    """Recall curves (share of includes found against share of records screened), one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    for (name, seed), run in sorted(runs.items()):
        n, r = sizes[name]
        found = np.concatenate([[0], np.cumsum(run.labels_in_order)]) / r
        screened = np.arange(found.size) / n
        ax.plot(screened, found, lw=1, alpha=0.8, label=f"{name} s{seed}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random")
    ax.axhline(0.95, color="grey", lw=0.5)
    ax.set(xlabel="share of records screened", ylabel="recall", xlim=(0, 1), ylim=(0, 1.01), title="Recall curves")
    if len(runs) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
