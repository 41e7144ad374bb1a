"""Labeled benchmark datasets (``record_id,title,abstract,label_included,...`` CSV, gzip or not)
and the priors of ``../shared/BENCHMARK.md``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, ImportFormatError

REQUIRED_COLUMNS = ("title", "abstract", "label_included")
# Same reviews built from two sources; BENCHMARK.md counts each once.
SUITE_EXCLUDED = frozenset({"synergy_Chou_2003", "synergy_Chou_2004", "synergy_Nelson_2002"})


@dataclass(frozen=True)
class LabeledDataset:
    name: str
    texts: list[str]
    labels: np.ndarray  # int8, 1 = included by the published review
    titles: list[str] | None = None
    record_ids: list[str] | None = None  # the file's record_id column, as written; None: not known

    @property
    def n_records(self) -> int:
        return len(self.texts)

    @property
    def n_included(self) -> int:
        return int(self.labels.sum())


def dataset_name(path: str | Path) -> str:
    return re.sub(r"\.csv(\.gz)?$", "", Path(path).name)


def read_dataset(path: str | Path) -> LabeledDataset:
    """Read one dataset; text is ``title + " " + abstract`` with missing parts empty.

    ``record_ids`` keeps the ``record_id`` column as written (text, so ``007`` stays ``007``);
    a file without one gets its row numbers, from 1 for the first record.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"title": str, "abstract": str, "record_id": str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ImportFormatError(str(path), None, None, f"cannot read as CSV: {e}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ImportFormatError(str(path), "header", missing[0], f"missing column (has {list(frame.columns)})")
    labels = pd.to_numeric(frame["label_included"], errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ImportFormatError(
            str(path),
            f"row {row + 2}",
            "label_included",
            f"must be 0 or 1, got {frame['label_included'].iloc[row]!r}",
        )
    texts = (frame["title"].fillna("") + " " + frame["abstract"].fillna("")).tolist()
    if "record_id" in frame.columns:
        record_ids = [str(value) for value in frame["record_id"].tolist()]
    else:
        record_ids = [str(row) for row in range(1, len(frame) + 1)]
    return LabeledDataset(
        dataset_name(path), texts, labels.to_numpy(dtype=np.int8), frame["title"].tolist(), record_ids
    )


def default_suite(folder: str | Path) -> list[Path]:
    """The 21-dataset suite: every dataset in ``folder`` but the three duplicated reviews."""
    folder = Path(folder)
    paths = sorted(p for p in folder.glob("*.csv*") if p.name != "MANIFEST.csv")
    if not paths:
        raise ConfigError(f"{folder}: no dataset CSV files")
    return [p for p in paths if dataset_name(p) not in SUITE_EXCLUDED]


def suite_halves(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split a suite by sorted name, alternating: even positions tune, odd positions confirm."""
    ordered = sorted(paths, key=dataset_name)
    return ordered[0::2], ordered[1::2]


def priors(labels: np.ndarray, seed: int) -> tuple[int, int]:
    """BENCHMARK.md priors: one included then one excluded position, from ``default_rng(seed)``."""
    included = np.flatnonzero(labels == 1)
    excluded = np.flatnonzero(labels == 0)
    if included.size == 0 or excluded.size == 0:
        raise ConfigError("labels: a simulation needs at least one included and one excluded record")
    rng = np.random.default_rng(seed)
    return int(rng.choice(included)), int(rng.choice(excluded))


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,1,2`` (or both: ``0-4,7``), as the benchmarks take their ``--seeds``."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high) + 1)) if high else [int(low)]
    return seeds
