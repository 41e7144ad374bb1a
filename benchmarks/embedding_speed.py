"""Reading speed and agreement of the sentence-embedding backends, on real records.

    .venv/bin/python benchmarks/embedding_speed.py [--dataset ../shared/datasets/cohen2006_BetaBlockers.csv.gz]
        [--records 1000] [--out embedding_speed]

For each backend (PyTorch float32 through sentence-transformers, ONNX Runtime float32 and
int8), in a fresh model cache: the one-time export (ONNX only), the model load, and the time
to embed the first ``--records`` records of the dataset (title + abstract, 256 word pieces),
as records per second; then each backend's vectors against PyTorch float32 (cosine, median
and lowest) and the share of each record's 10 nearest neighbours they keep. Writes
``benchmarks/results/<out>.md``. Run it on a quiet machine: it measures seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from screening.ranking.datasets import read_dataset
from screening.ranking.embeddings import BUNDLED_MODEL, EmbeddingConfig, SentenceEmbedder, model_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_asreview import markdown  # the benchmarks' one table writer, beside this file

HERE = Path(__file__).resolve().parent
BACKENDS = {
    "torch float32": EmbeddingConfig(backend="torch", precision="float32"),
    "onnx float32": EmbeddingConfig(backend="onnx", precision="float32"),
    "onnx int8 (default)": EmbeddingConfig(backend="onnx", precision="int8"),
}


def neighbours(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def measure(config: EmbeddingConfig, texts: list[str]) -> tuple[dict, np.ndarray]:
    row: dict[str, object] = {"export_s": 0.0}
    if config.backend == "onnx":
        from screening.ranking.onnx_model import export_model

        started = time.perf_counter()
        export_model(model_path(BUNDLED_MODEL), config.precision)
        row["export_s"] = time.perf_counter() - started
    embedder = SentenceEmbedder(config)
    started = time.perf_counter()
    embedder.encode(texts[:1])  # loads the model (imports included)
    row["load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    seconds = time.perf_counter() - started
    row["embed_s"] = seconds
    row["records_per_s"] = len(texts) / seconds
    return row, vectors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = HERE.parent.parent / "shared" / "datasets" / "cohen2006_BetaBlockers.csv.gz"
    parser.add_argument("--dataset", default=str(default))
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--out", default="embedding_speed")
    args = parser.parse_args(argv)

    data = read_dataset(args.dataset)
    texts = [t.strip() for t in data.texts if t.strip()][: args.records]
    rows, vectors = {}, {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SCREENING_CACHE_DIR"] = cache  # every export measured from nothing
        for name, config in BACKENDS.items():
            rows[name], vectors[name] = measure(config, texts)
            print(f"{name}: {rows[name]['records_per_s']:.1f} records/s", file=sys.stderr, flush=True)
    reference = vectors["torch float32"]
    near = neighbours(reference)
    for name, v in vectors.items():
        cos = (v * reference).sum(axis=1)
        rows[name]["cosine_median"] = float(np.median(cos))
        rows[name]["cosine_min"] = float(cos.min())
        kept = [len(set(a) & set(b)) / near.shape[1] for a, b in zip(neighbours(v), near, strict=True)]
        rows[name]["neighbours_kept"] = float(np.mean(kept))
        rows[name]["speed_vs_torch"] = rows[name]["records_per_s"] / rows["torch float32"]["records_per_s"]
    import pandas as pd

    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "backend"
    text = "\n".join(
        [
            f"# Sentence-embedding backends: {len(texts)} records of {data.name}, {os.cpu_count()} CPUs",
            "",
            "Command: `python benchmarks/embedding_speed.py "
            + " ".join(argv if argv is not None else sys.argv[1:])
            + "`",
            "",
            markdown(table),
            "",
            "cosine and neighbours_kept: against torch float32 (neighbours: each record's 10 nearest).",
        ]
    )
    out = HERE / "results" / f"{args.out}.md"
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
