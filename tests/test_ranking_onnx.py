"""The ONNX Runtime backend of the sentence embeddings: the bundled model really exported,
quantised and run, compared with the same model on PyTorch, on real records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_ranking_embeddings import CountingEmbedder  # the real embedder, counting what it embeds
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError
from screening.ingest import import_file
from screening.ranking.datasets import read_dataset
from screening.ranking.embeddings import BUNDLED_MODEL, EmbeddingConfig, SentenceEmbedder, model_path
from screening.ranking.onnx_model import cache_dir, export_model, exported_path
from screening.ranking.project import (
    EMBEDDER_SETTING,
    EMBEDDINGS_SETTING,
    LEGACY_EMBEDDER,
    ProjectRanker,
    live_record_ids,
    load_embeddings,
    project_embedder,
)
from screening.store import Store, init_project

pytest.importorskip("onnxruntime", reason="the ONNX backend needs requirements-embeddings.txt")
pytest.importorskip("sentence_transformers", reason="the comparison needs requirements-embeddings.txt")

FIXTURE = Path(__file__).parent / "fixtures" / "ranking" / "cohen2006_Antihistamines.csv.gz"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [t.strip() for t in read_dataset(FIXTURE).texts]


@pytest.fixture(scope="module")
def torch_vectors(texts: list[str]) -> np.ndarray:
    return SentenceEmbedder(EmbeddingConfig(backend="torch", precision="float32")).encode(texts)


@pytest.fixture(scope="module")
def int8_vectors(texts: list[str]) -> np.ndarray:
    return SentenceEmbedder().encode(texts)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_the_default_backend_is_onnx_int8_and_agrees_with_pytorch(texts, torch_vectors, int8_vectors) -> None:
    assert SentenceEmbedder().config.backend == "onnx"
    assert int8_vectors.shape == torch_vectors.shape == (310, 384) and int8_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8_vectors, axis=1), 1.0, atol=1e-5)
    # int8 weights move every vector a little (measured here: median 0.993, lowest 0.967), never far
    cos = _cosines(int8_vectors, torch_vectors)
    assert np.median(cos) >= 0.99 and cos.min() >= 0.95

    # ... and leave each record's nearest neighbours mostly where PyTorch puts them
    def top5(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -1)
        return np.argsort(-sims, axis=1)[:, :5]

    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(top5(int8_vectors), top5(torch_vectors), strict=True)]
    assert np.mean(overlap) >= 0.8
    # float32 through ONNX Runtime is the same model: the exported graph, pooling included, is exact
    float32 = SentenceEmbedder(EmbeddingConfig(precision="float32")).encode(texts[:40])
    assert _cosines(float32, torch_vectors[:40]).min() >= 0.9999


def test_a_record_gets_the_same_int8_vector_alone_or_in_a_batch(texts, int8_vectors) -> None:
    # int8 quantises activations per batch, so records are read one at a time: vectors depend on
    # their own text only, whatever else is embedded with them (a project embeds in chunks)
    alone = SentenceEmbedder().encode([texts[7], "", texts[200]])
    assert np.allclose(alone[0], int8_vectors[7], atol=1e-6) and np.allclose(alone[2], int8_vectors[200], atol=1e-6)
    assert not alone[1].any()


def test_the_export_is_made_once_in_the_cache_folder(int8_vectors, model_cache: Path) -> None:
    model = model_path(BUNDLED_MODEL)
    path = export_model(model, "int8")
    assert cache_dir() == model_cache and path == exported_path(model, "int8")
    assert path.is_relative_to(model_cache) and path.stat().st_size > 10_000_000
    before = path.stat().st_mtime_ns
    assert export_model(model, "int8") == path and path.stat().st_mtime_ns == before  # reused, not redone
    # written under a temporary name and renamed: nothing but finished models is left
    assert all(p.is_file() and p.suffix == ".onnx" for p in path.parent.iterdir())


def test_once_exported_the_model_runs_without_torch(int8_vectors, texts) -> None:
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None; sys.modules['transformers'] = None  # importing either now fails\n"
        "from screening.ranking.embeddings import SentenceEmbedder\n"
        f"v = SentenceEmbedder().encode({json.dumps(texts[:3])})\n"
        "print(json.dumps(v.tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert np.allclose(np.array(json.loads(done.stdout)), int8_vectors[:3], atol=1e-6)


def test_models_the_onnx_graph_cannot_reproduce_are_refused(tmp_path: Path, model_cache: Path) -> None:
    bundled = model_path(BUNDLED_MODEL)
    cls_pooled = tmp_path / "cls-model"
    shutil.copytree(bundled, cls_pooled, copy_function=os.symlink)
    pooling = cls_pooled / "1_Pooling" / "config.json"
    settings = json.loads(pooling.read_text()) | {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    pooling.unlink()
    pooling.write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match=r"mean pooling only.*backend 'torch'"):
        SentenceEmbedder(EmbeddingConfig(model=str(cls_pooled))).encode(["a record"])
    assert not exported_path(cls_pooled, "int8").parent.exists()  # nothing half-made in the cache


def test_bad_backend_settings_name_the_field(db_path: Path) -> None:
    with pytest.raises(ConfigError, match="backend: must be one of onnx, torch"):
        EmbeddingConfig(backend="tensorflow")
    with pytest.raises(ConfigError, match="precision: the onnx backend takes one of auto, int8, float32"):
        EmbeddingConfig(precision="bfloat16")
    with pytest.raises(ConfigError, match="precision: the torch backend"):
        EmbeddingConfig(backend="torch", precision="int8")
    with pytest.raises(ConfigError, match="unknown saved settings colour"):
        EmbeddingConfig.from_dict({"model": BUNDLED_MODEL, "colour": "red"})
    init_project(db_path, name="x").close()
    result = CliRunner().invoke(app, ["embed", "--db", str(db_path), "--backend", "tensorflow"])
    assert result.exit_code != 0 and "backend: must be one of onnx, torch" in result.output


def _project(db: Path, tmp_path: Path) -> Store:
    csv = tmp_path / "antihistamines.csv"
    pd.read_csv(FIXTURE).drop(columns=["label_included"]).to_csv(csv, index=False)
    store = init_project(db, name="Antihistamines", query="loratadine seasonal allergic rhinitis")
    import_file(store, csv, source_name="PubMed")
    return store


def test_a_project_keeps_reading_with_the_embedder_its_vectors_came_from(db_path: Path, tmp_path: Path) -> None:
    store = _project(db_path, tmp_path)
    ids = live_record_ids(store)
    # a project embedded before the ONNX backend: vectors from PyTorch, the setting only True
    load_embeddings(store, ids, SentenceEmbedder(LEGACY_EMBEDDER))
    store.set_setting(EMBEDDINGS_SETTING, True)
    assert store.get_setting(EMBEDDER_SETTING) is None
    assert project_embedder(store).config == LEGACY_EMBEDDER
    counting = CountingEmbedder(project_embedder(store).config)
    assert load_embeddings(store, ids, counting).shape == (310, 384) and counting.embedded == 0  # kept, not redone
    assert ProjectRanker(store).embedder.config.backend == "torch"
    # embedding again through the CLI moves it to the default backend and says so in the project
    result = CliRunner().invoke(app, ["embed", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "310 records embedded (all-MiniLM-L6-v2, onnx)" in result.output
    assert store.get_setting(EMBEDDER_SETTING) == EmbeddingConfig().to_dict()
    ranker = ProjectRanker(store)
    assert ranker.embedder.config == EmbeddingConfig() and ranker.learner.embeddings.shape == (310, 384)
    counting = CountingEmbedder(project_embedder(store).config)
    load_embeddings(store, ids, counting)
    assert counting.embedded == 0
    store.close()
