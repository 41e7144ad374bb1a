"""Ranking inside a project: features cached in the database, labels from the decisions.

``ProjectRanker`` is what the CLI and the dashboard hold: it loads the features of the
project's canonical records from the ``cache`` table (token counts, from which the TF-IDF
matrices follow; rebuilt only when the set of records changed), reads the current
title/abstract decisions, and keeps the fitted learner warm, so that after a decision only
the new labels are applied and the model refitted.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import access
from ..ingest import FIELD_CAPS
from ..schema import CacheEntry, Record, Source, Stage
from ..snapshot import read_stage
from ..store import Store
from .active import ActiveLearner, LearnerConfig, check_strategy
from .embeddings import EmbeddingConfig, SentenceEmbedder, record_texts, topic_similarity
from .features import FeatureConfig, TextFeatures, build_features
from .inclusion import InclusionPrior, default_prior
from .query import BooleanQuery, RecordIndex, cold_start_scores, concept_query

CACHE_KEY = "ranking.features"
EMBEDDINGS_KEY = "ranking.embeddings"
# Project setting: rank with sentence embeddings beside TF-IDF (``screening embed`` turns it on).
EMBEDDINGS_SETTING = "ranking.embeddings"
# The embedder's settings the stored vectors were made with, so every later load (dashboard,
# CLI, another reviewer) reads new records with the same model and backend.
EMBEDDER_SETTING = "ranking.embedder"
# Project setting: the prior learned across reviews used before the first include. Absent: the
# one shipped with the tool; False: none; a dict: a prior of the team's own (``screening prior``).
INCLUSION_PRIOR_SETTING = "ranking.inclusion_prior"
# Projects embedded before the setting above existed used sentence-transformers on PyTorch.
LEGACY_EMBEDDER = EmbeddingConfig(backend="torch")
TOPIC_SETTINGS = ("query", "criteria", "keywords")
LABEL_VALUES = {"include": 1, "exclude": 0}


def _live_records():
    """The records screening sees: canonical, neither withdrawn from PubMed nor retracted (PRISMA's "removed")."""
    return Record.canonical_id.is_(None) & Record.deleted_from_source.is_(False) & Record.retracted.is_(False)


def _capped_text() -> tuple:
    """Title and abstract, cut in the database to the import's caps: a project imported before the caps
    existed, with a 50 MB field, ranks in bounded memory too."""
    return (
        func.substr(Record.title, 1, FIELD_CAPS["title"]).label("title"),
        func.substr(Record.abstract, 1, FIELD_CAPS["abstract"]).label("abstract"),
    )


def _records_signature(session: Session) -> str:
    """A cheap check for "records were added, merged or withdrawn", from indexes only.

    Merges change the canonical set; additions and withdrawals come with an import, which
    adds a source. The exact fingerprint (:func:`_fingerprint`) is checked when features load.
    """
    count, top, total = session.execute(
        select(func.count(Record.id), func.max(Record.id), func.coalesce(func.sum(Record.id), 0)).where(
            Record.canonical_id.is_(None)
        )
    ).one()
    sources, last_source = session.execute(select(func.count(Source.id), func.max(Source.id))).one()
    return f"{count}:{top}:{int(total)}:{sources}:{last_source}"


def _fingerprint(ids: np.ndarray, config: FeatureConfig) -> str:
    digest = hashlib.sha256(ids.astype("<i8").tobytes())
    digest.update(repr(sorted(config.to_dict().items())).encode())
    return f"{ids.size}:{int(ids.max()) if ids.size else 0}:{digest.hexdigest()[:32]}"


def _live_ids(session: Session) -> np.ndarray:
    return np.fromiter(session.scalars(select(Record.id).where(_live_records()).order_by(Record.id)), dtype=np.int64)


def live_record_ids(store: Store) -> np.ndarray:
    """Ids of the records that are ranked: canonical, not withdrawn, in id order."""
    with store.read() as s:
        return _live_ids(s)


def _put_cache(store: Store, key: str, fingerprint: str, payload: bytes) -> None:
    """Insert or replace one ``cache`` entry, in its own transaction.

    Two processes that open a project at once (two servers, the CLI beside the dashboard)
    may both build the entry: the one that commits second finds the key taken, and keeps
    the entry the first one wrote (a cache entry is checked by its fingerprint when read).
    """
    try:
        with store.begin() as s:
            entry = s.get(CacheEntry, key)
            if entry is None:
                s.add(CacheEntry(key=key, fingerprint=fingerprint, payload=payload))
            else:
                entry.fingerprint, entry.payload = fingerprint, payload
    except IntegrityError:
        return


def load_features(store: Store, config: FeatureConfig | None = None) -> tuple[np.ndarray, TextFeatures]:
    """Record ids (canonical, not withdrawn, by id) and their features, from the cache when current."""
    config = config or FeatureConfig()
    with store.read() as s:
        ids = _live_ids(s)
        fingerprint = _fingerprint(ids, config)
        entry = s.get(CacheEntry, CACHE_KEY)
        if entry is not None and entry.fingerprint == fingerprint:
            return ids, TextFeatures.from_bytes(entry.payload, config)
        rows = s.execute(select(*_capped_text()).where(_live_records()).order_by(Record.id)).all()
    features = build_features([f"{t or ''} {a or ''}" for t, a in rows], config, titles=[t or "" for t, _ in rows])
    _put_cache(store, CACHE_KEY, fingerprint, features.to_bytes())
    return ids, features


def _embedding_fingerprint(config: EmbeddingConfig) -> str:
    """The settings that change the vectors (not the batch size)."""
    settings = (config.model, config.max_tokens, config.precision)
    if config.backend != "torch":  # (torch vectors keep the fingerprint they were saved under)
        settings = (*settings, config.backend)
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:32]


def _read_embeddings(store: Store, fingerprint: str) -> dict[int, np.ndarray]:
    with store.read() as s:
        entry = s.get(CacheEntry, EMBEDDINGS_KEY)
        if entry is None or entry.fingerprint != fingerprint:
            return {}
        with np.load(io.BytesIO(entry.payload)) as saved:
            return dict(zip(saved["ids"].tolist(), saved["vectors"].astype(np.float32), strict=True))


def _write_embeddings(store: Store, fingerprint: str, known: dict[int, np.ndarray]) -> None:
    ids = np.fromiter(sorted(known), dtype=np.int64, count=len(known))
    vectors = np.stack([known[int(i)] for i in ids]) if ids.size else np.zeros((0, 0), np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, ids=ids, vectors=vectors.astype(np.float16))
    _put_cache(store, EMBEDDINGS_KEY, fingerprint, buffer.getvalue())


def load_embeddings(
    store: Store,
    ids: np.ndarray,
    embedder: SentenceEmbedder | None = None,
    *,
    chunk: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embeddings of the records ``ids``, in order: cached rows are reused, the rest computed.

    The cache is saved after every ``chunk`` new records, so an interrupted run resumes where
    it stopped. Vectors are stored as float16 (half the space; 3 decimals of a unit vector).
    ``progress(done, total)`` is told how many of the missing records are embedded so far.
    """
    embedder = embedder or SentenceEmbedder()
    fingerprint = _embedding_fingerprint(embedder.config)
    cached = _read_embeddings(store, fingerprint)
    wanted = {int(i) for i in ids}
    known = {rid: vec for rid, vec in cached.items() if rid in wanted}
    dropped = len(known) != len(cached)  # records merged or withdrawn since
    missing = [int(i) for i in ids if int(i) not in known]
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(missing))

    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        with store.read() as s:
            query = select(Record.id, *_capped_text()).where(Record.id.in_(part))
            rows = {rid: (title, abstract) for rid, title, abstract in s.execute(query)}
        texts = record_texts([rows[r][0] for r in part], [rows[r][1] for r in part])
        # rounded as they are stored, so a fresh and a cached load rank alike
        vectors = embedder.encode(texts, progress=advance).astype(np.float16).astype(np.float32)
        known.update(zip(part, vectors, strict=True))
        _write_embeddings(store, fingerprint, known)
    if dropped and not missing:  # (with new records the loop above wrote already)
        _write_embeddings(store, fingerprint, known)
    return np.stack([known[int(i)] for i in ids]) if len(ids) else np.zeros((0, 384), np.float32)


def set_embeddings(
    store: Store,
    enabled: bool,
    embedder: SentenceEmbedder | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Turn ranking with sentence embeddings on (embedding what is missing first) or off.

    Returns how many records have vectors. Turning off keeps the vectors for later.
    """
    access.require_owner(store, "change how the project ranks")  # before minutes of embedding, not after
    if not enabled:
        store.set_setting(EMBEDDINGS_SETTING, False)
        return 0
    embedder = embedder or project_embedder(store)  # turned on again: the vectors it already has
    vectors = load_embeddings(store, live_record_ids(store), embedder, progress=progress)
    store.set_setting(EMBEDDER_SETTING, embedder.config.to_dict())
    store.set_setting(EMBEDDINGS_SETTING, True)
    return len(vectors)


def project_embedder(store: Store) -> SentenceEmbedder:
    """The embedder this project's vectors were made with (``screening embed`` saved it)."""
    saved = store.get_setting(EMBEDDER_SETTING)
    if saved is None:
        return SentenceEmbedder(LEGACY_EMBEDDER if store.get_setting(EMBEDDINGS_SETTING, False) else None)
    return SentenceEmbedder(EmbeddingConfig.from_dict(saved))


def topic_text(store: Store) -> list[str]:
    """The project's query, criteria and include keywords, as text for cold start.

    The keywords setting is ``{"include": [...], "exclude": [...]}`` (the highlights): only the
    include words describe the topic; the exclude words (rat, mice, review) would pull toward
    exactly what the reviewer wants last.
    """
    texts = []
    for key in TOPIC_SETTINGS:
        value = store.get_setting(key)
        if isinstance(value, dict):
            value = value.get("include", [])
        if isinstance(value, list | tuple):
            value = " ".join(str(v) for v in value)
        if value:
            texts.append(str(value))
    return texts


def _record_index(store: Store, features: TextFeatures) -> RecordIndex:
    """Text (for phrase checks) and subject headings of the live records, in id order, for block matching."""
    columns = (*_capped_text(), Record.mesh_terms, Record.publication_types)
    with store.read() as s:
        rows = s.execute(select(*columns).where(_live_records()).order_by(Record.id)).all()
    texts = [f"{t or ''} {a or ''}" for t, a, _, _ in rows]
    subjects = ["; ".join([*(mesh or []), *(types or [])]) for _, _, mesh, types in rows]
    return RecordIndex(features, text_of=lambda found: [texts[i] for i in found], subjects=subjects)


def cold_start_prior(
    store: Store,
    features: TextFeatures,
    query: BooleanQuery | None = None,
    *,
    embeddings: np.ndarray | None = None,
    embedder: SentenceEmbedder | None = None,
    inclusion_prior: InclusionPrior | None = None,
) -> np.ndarray | None:
    """Scores before the model can learn: concept blocks of a Boolean query, else cosine to the topic text,
    with ``inclusion_prior`` (the project's is :func:`project_prior`) beside the cosine.

    With a query of two or more AND-ed blocks, a record matching every block ranks above one
    matching fewer, and the cosine orders records within a block count; otherwise the cosine alone.
    With ``embeddings`` (the records' vectors, in id order) and their ``embedder``, the cosine is
    that of the sentence embeddings, else of the TF-IDF words.
    """
    query = query or concept_query(store.get_setting("query"))
    texts = topic_text(store)
    semantic = None
    if embeddings is not None:
        raw = store.get_setting("query")
        # the model reads the query's wanted concepts, not its operators and NOT-ed terms
        wanted = [query.sentence() if query is not None and t == raw else t for t in texts]
        semantic = topic_similarity(embeddings, embedder or SentenceEmbedder(), wanted)
    inclusion = None if inclusion_prior is None else inclusion_prior.score_features(features)
    return cold_start_scores(features, texts, query, lambda: _record_index(store, features), semantic, inclusion)


def project_prior(store: Store) -> InclusionPrior | None:
    """The inclusion prior this project ranks with before its first include (None: turned off)."""
    saved = store.get_setting(INCLUSION_PRIOR_SETTING)
    if saved is False:
        return None
    if saved is None:
        return default_prior()
    return InclusionPrior.from_dict(saved, f"project setting {INCLUSION_PRIOR_SETTING!r}")


@dataclass(frozen=True)
class RankedRecord:
    record_id: int
    score: float


class ProjectRanker:
    """A warm ranker for one project. Call :meth:`refresh` after decisions; it is cheap."""

    def __init__(
        self,
        store: Store,
        *,
        strategy: str = "relevance",
        random_share: float = 0.0,
        seed: int = 0,
        learner: LearnerConfig | None = None,
        features: FeatureConfig | None = None,
        embeddings: bool | None = None,
        embedder: SentenceEmbedder | None = None,
    ) -> None:
        check_strategy(strategy, random_share)
        self.store = store
        self.seed = seed
        # Sentence embeddings when asked, else as the project's setting says (off by default).
        self.use_embeddings = bool(store.get_setting(EMBEDDINGS_SETTING, False) if embeddings is None else embeddings)
        self.embedder = embedder
        # In a project the model learns from every decision (the exact form of the
        # simulation's refit schedule): a refit costs little next to scoring every record.
        preset = LearnerConfig.with_embeddings if self.use_embeddings else LearnerConfig
        base = learner or preset(refit_share=0.0, refit_on_include=True)
        self.config = LearnerConfig(**{**base.to_dict(), "strategy": strategy, "random_share": random_share})
        self.feature_config = features or FeatureConfig()
        self._signature = ""
        self._load()

    def _load(self) -> None:
        self.ids, self.features = load_features(self.store, self.feature_config)
        self._row = {int(rid): i for i, rid in enumerate(self.ids)}
        if self.use_embeddings:
            self.embedder = self.embedder or project_embedder(self.store)
            self.embeddings = load_embeddings(self.store, self.ids, self.embedder)
        else:
            self.embeddings = None
        # what orders the records before the first include (None: the project turned it off)
        self.inclusion_prior = project_prior(self.store)
        prior = cold_start_prior(
            self.store,
            self.features,
            embeddings=self.embeddings,
            embedder=self.embedder,
            inclusion_prior=self.inclusion_prior,
        )
        self.learner = ActiveLearner.from_features(
            self.features,
            config=self.config,
            prior_scores=prior,
            seed=self.seed,
            embeddings=self.embeddings,
        )
        with self.store.read() as s:
            self._signature = _records_signature(s)
        self._apply_labels()
        self.learner.scores()  # fail now (ConfigError) if there is nothing to rank by

    def _apply_labels(self) -> None:
        with self.store.read() as s:
            labels = read_stage(s, Stage.TITLE_ABSTRACT).training_labels()
        wanted = np.full(len(self.ids), ActiveLearner.UNLABELED, dtype=np.int8)
        for rid, value in labels.items():
            row = self._row.get(rid)
            if row is not None:
                wanted[row] = LABEL_VALUES.get(value, ActiveLearner.SEEN)
        self.learner.set_labels({int(i): int(wanted[i]) for i in np.flatnonzero(wanted != self.learner.labels)})

    def refresh(self) -> None:
        """Pick up new decisions (and, if records were added or merged, new features)."""
        with self.store.read() as s:
            signature = _records_signature(s)
        if signature != self._signature:
            self._load()
        else:
            self._apply_labels()

    def ranking(self, limit: int | None = None) -> list[RankedRecord]:
        """Unscreened records in the order they should be screened, with their scores."""
        rows = self.learner.ranked(limit)
        scores = self.learner.scores()
        return [RankedRecord(int(self.ids[r]), float(scores[r])) for r in rows]

    def next_record(self) -> int | None:
        row = self.learner.next()
        return None if row is None else int(self.ids[row])


def rank_unscreened(
    store: Store,
    *,
    strategy: str = "relevance",
    random_share: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
) -> list[tuple[int, float]]:
    """(record id, score) of every canonical record without a title/abstract decision, best first."""
    ranker = ProjectRanker(store, strategy=strategy, random_share=random_share, seed=seed)
    return [(r.record_id, r.score) for r in ranker.ranking(limit)]


def next_record(store: Store, *, strategy: str = "relevance", random_share: float = 0.0, seed: int = 0) -> int | None:
    """The record to screen next, or None when every record has a decision."""
    return ProjectRanker(store, strategy=strategy, random_share=random_share, seed=seed).next_record()
