"""A sentence-transformers model run by ONNX Runtime: exported once, locally, then torch-free.

Why: the bundled model read by PyTorch costs seconds to import and more per record than the
rest of the ranker together. Exported to ONNX and quantised to int8 (weights per channel,
activations dynamically), it reads records faster, needs only ``onnxruntime`` and
``tokenizers`` at run time, and its vectors agree with the PyTorch ones to a cosine of about
0.99 (docs/ranking.md, "Sixth round").

The export follows what sentence-transformers' own ONNX backend produces (the transformer
with mean pooling in the graph, one ``sentence_embedding`` output, dynamic batch and length)
but uses ``torch.onnx.export`` directly: that backend needs ``optimum-onnx``, whose
``transformers`` range excludes the one sentence-transformers 6 needs. It runs once per model
and machine and is kept in the user's cache folder (``SCREENING_CACHE_DIR``, else
``$XDG_CACHE_HOME/screening``, else ``~/.cache/screening``), written under a temporary name
and renamed, so an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingDependency
from .embeddings import PRECISIONS

# the precisions an export is made in (EmbeddingConfig's "auto" means int8)
ONNX_PRECISIONS = tuple(p for p in PRECISIONS["onnx"] if p != "auto")
EXPORT_HINT = "the one-time ONNX export needs torch and transformers (pip install -r requirements-embeddings.txt)"
RUNTIME_HINT = "the ONNX backend needs onnxruntime and tokenizers (pip install -r requirements-embeddings.txt)"
OUTPUT = "sentence_embedding"


def cache_dir() -> Path:
    """Where exported models are kept: ``SCREENING_CACHE_DIR``, else the XDG cache folder."""
    explicit = os.environ.get("SCREENING_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "screening"


def _model_key(model_dir: Path) -> str:
    """Names an export by the model's own files (their names, sizes and config), not its path."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(model_dir)}:{path.stat().st_size}".encode())
    digest.update((model_dir / "config.json").read_bytes() if (model_dir / "config.json").is_file() else b"")
    return digest.hexdigest()[:16]


def _check_mean_pooling(model_dir: Path) -> None:
    """The exported graph pools by the mask-weighted mean, as the bundled model does."""
    modules = json.loads((model_dir / "modules.json").read_text())
    pooling = [m for m in modules if m.get("type", "").endswith("Pooling")]
    if len(pooling) != 1:
        raise ConfigError(f"embeddings: {model_dir} has no single pooling module; use backend 'torch'")
    config = json.loads((model_dir / pooling[0]["path"] / "config.json").read_text())
    others = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    if not config.get("pooling_mode_mean_tokens") or any(config.get(key) for key in others):
        raise ConfigError(f"embeddings: the ONNX backend supports mean pooling only ({model_dir}); use backend 'torch'")


def exported_path(model_dir: Path, precision: str) -> Path:
    """The file the export of ``model_dir`` at ``precision`` is (or will be) kept in."""
    if precision not in ONNX_PRECISIONS:
        raise ConfigError(f"precision: the ONNX backend takes one of {', '.join(ONNX_PRECISIONS)}, got {precision!r}")
    return cache_dir() / "onnx" / f"{model_dir.name}-{_model_key(model_dir)}" / f"model-{precision}.onnx"


def _export_float32(model_dir: Path, out: Path) -> None:
    """Trace the transformer plus mean pooling to ``out`` (the graph takes the inputs the model takes)."""
    import inspect

    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise MissingDependency(f"embeddings: {EXPORT_HINT}") from e

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the CLI shows its own progress
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            hidden = self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state
            mask = inputs[1].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    example = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {OUTPUT: {0: "batch"}}
    # the tracer warns about Python conditions in the attention code; they hold for any batch and length
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled(),
            tuple(example if name != "token_type_ids" else torch.zeros_like(example) for name in names),
            str(out),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantiser warns on the root logger; keep that out of the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def export_model(model_dir: Path, precision: str = "int8") -> Path:
    """The ONNX export of a sentence-transformers folder, made once and then reused."""
    target = exported_path(model_dir, precision)
    if target.is_file():
        return target
    _check_mean_pooling(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        plain = Path(work) / "model-float32.onnx"
        _export_float32(model_dir, plain)
        result = plain
        if precision == "int8":
            try:
                from onnxruntime.quantization import QuantType, quantize_dynamic
            except ImportError as e:
                raise MissingDependency(f"embeddings: {RUNTIME_HINT}") from e
            result = Path(work) / "model-int8.onnx"
            # per-channel weight scales: per-tensor ones leave vectors at a cosine of 0.89-0.95.
            # (It advises pre-processing the graph first; without it the vectors agree with PyTorch to 0.993.)
            with _quiet_root_logger():
                quantize_dynamic(plain, result, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(result, target)  # atomic: another process sees the whole file or none
    return target


class OnnxSentenceModel:
    """Tokenises with the model's own ``tokenizer.json`` and runs the exported graph."""

    def __init__(self, model_dir: Path, *, precision: str = "int8", max_tokens: int = 256, threads: int = 0) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingDependency(f"embeddings: {RUNTIME_HINT}") from e
        path = export_model(model_dir, precision)
        # int8 quantises each batch's activations with one scale for the whole batch, so a record's
        # vector would depend on the records batched with it (cosine down to 0.984): int8 reads
        # one record at a time, so its vector depends on its text alone, on one thread per record
        # and as many records at once as there are cores (1.35x the speed of one record on two
        # threads, measured on 2 cores).
        self.one_at_a_time = precision == "int8"
        self.workers = threads or _cores()
        options = onnxruntime.SessionOptions()
        # threads 0: ONNX Runtime's own choice (the physical cores) for batches
        options.intra_op_num_threads = 1 if self.one_at_a_time else threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(min(max_tokens, _model_max_tokens(model_dir)))

    def _run(self, encodings: list) -> np.ndarray:
        """The pooled vectors of one batch, padded to its longest record."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self.session.run([OUTPUT], {name: feed[name] for name in self.inputs})[0]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Mean-pooled vectors (not normalised), batched by length so little is padding."""
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(encodings), self.dimension), dtype=np.float32)
        if self.one_at_a_time:
            batches = [[i] for i in range(len(encodings))]
        else:
            order = np.argsort([len(e.ids) for e in encodings], kind="stable")
            batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

        def run(rows) -> np.ndarray:
            return self._run([encodings[i] for i in rows])

        if self.one_at_a_time and self.workers > 1 and len(batches) > 1:
            # ONNX Runtime releases the GIL in run(): the records really are read in parallel
            with ThreadPoolExecutor(self.workers) as pool:
                results = list(pool.map(run, batches))
        else:
            results = [run(rows) for rows in batches]
        for rows, vectors in zip(batches, results, strict=True):
            out[rows] = vectors
        return out


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _model_max_tokens(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length") or 512)
    return 512
