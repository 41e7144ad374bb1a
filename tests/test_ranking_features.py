"""Feature matrices derived from token counts equal scikit-learn's own vectorizers, and survive the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from screening.errors import ConfigError
from screening.ranking.datasets import read_dataset
from screening.ranking.features import FeatureConfig, TextFeatures, build_features, query_similarity


@pytest.fixture
def donners(shared: Path):
    return read_dataset(shared / "datasets" / "synergy_Donners_2021.csv.gz")


def _gram(m: sp.spmatrix) -> np.ndarray:
    """Row-by-row dot products: the same for two matrices whose columns differ only in order."""
    return (m @ m.T).toarray()


def _reference(texts, titles, config: FeatureConfig) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    words = TfidfVectorizer(max_df=config.max_df, sublinear_tf=True).fit_transform(texts)
    title = TfidfVectorizer(max_df=config.max_df, sublinear_tf=True).fit_transform(titles)
    matrix = normalize(sp.hstack([words, title * config.title_weight], format="csr"))
    chars = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(config.char_min_n, config.char_max_n),
        sublinear_tf=True,
        min_df=config.char_min_df,
        max_df=config.char_max_df,
    ).fit_transform(texts)
    return matrix, normalize(sp.hstack([matrix, chars], format="csr"))


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(char_min_n=3, char_max_n=5, char_max_df=0.95)])
def test_matrices_equal_scikit_learn_vectorizers(donners, config: FeatureConfig) -> None:
    features = build_features(donners.texts, config, titles=donners.titles)
    matrix, model_matrix = _reference(donners.texts, donners.titles, config)
    assert features.matrix.shape == matrix.shape
    assert features.model_matrix.shape == model_matrix.shape
    assert np.abs(_gram(features.matrix) - _gram(matrix)).max() < 1e-5
    assert np.abs(_gram(features.model_matrix) - _gram(model_matrix)).max() < 1e-5
    words = TfidfVectorizer(max_df=config.max_df, sublinear_tf=True).fit(donners.texts)
    assert set(features.vocabulary) == set(words.vocabulary_)


def test_token_counts_equal_countvectorizer_on_whitespace_tokens(donners) -> None:
    """One split per text gives the counts scikit-learn gives, with the same vocabulary order;
    title tokens the texts never hold are dropped; tabs, non-breaking and other Unicode spaces split."""
    from sklearn.feature_extraction.text import CountVectorizer

    from screening.ranking.features import count_tokens

    texts = [*donners.texts[:80], "Ketamine\tinfusion\u00a0for CRPS\u2003pain", "", "  MDMA  "]
    titles = [*donners.titles[:80], "ketamine ZZ-unseen-token", None, "mdma"]
    vec = CountVectorizer(tokenizer=str.split, token_pattern=None, lowercase=True)
    expected = vec.fit_transform(texts)
    counts = count_tokens(texts, titles)
    assert counts.text.shape == expected.shape
    assert abs(counts.text - expected).max() == 0
    assert abs(counts.title - vec.transform([t or "" for t in titles])).max() == 0
    with pytest.raises(ConfigError, match="no words"):
        count_tokens(["", "   "])


def test_cache_round_trip_gives_the_same_matrices(donners) -> None:
    features = build_features(donners.texts, titles=donners.titles)
    loaded = TextFeatures.from_bytes(features.to_bytes(), FeatureConfig())
    assert abs(loaded.matrix - features.matrix).max() == 0
    assert abs(loaded.model_matrix - features.model_matrix).max() == 0
    assert loaded.vocabulary == features.vocabulary
    with pytest.raises(ConfigError, match="other settings"):
        TextFeatures.from_bytes(features.to_bytes(), FeatureConfig(char_min_n=3))


def test_without_char_ngrams_the_model_sees_the_word_matrix(donners) -> None:
    features = build_features(donners.texts, FeatureConfig(char_min_n=0), titles=donners.titles)
    assert features.model_matrix is features.matrix
    loaded = TextFeatures.from_bytes(features.to_bytes(), FeatureConfig(char_min_n=0))
    assert abs(loaded.model_matrix - features.model_matrix).max() == 0


def test_query_similarity_uses_words_only(donners) -> None:
    features = build_features(donners.texts, titles=donners.titles)
    sims = query_similarity(features, ["bispecific antibody ACE910 AND factor[tiab]"])
    assert sims.shape == (donners.n_records,)
    assert "ACE910" in donners.titles[int(np.argmax(sims))]
    assert query_similarity(features, ["zzzzqx"]) is None


def test_no_words_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="texts"):
        build_features(["", "  "])
    with pytest.raises(ConfigError, match="texts"):
        build_features([])


def test_tiny_projects_still_get_features() -> None:
    """One or two records: max_df prunes every word and n-gram, so all words are kept instead."""
    one = build_features(["Ketamine for chronic pain"], titles=["Ketamine for chronic pain"])
    assert one.matrix.shape == (1, 4) and one.model_matrix is one.matrix
    two = build_features(["ketamine pain", "ketamine rats"], titles=["ketamine", "ketamine"])
    assert set(two.vocabulary) == {"pain", "rats"}
    assert two.model_matrix.shape[0] == 2


def test_topic_sentence_keeps_the_words_of_a_boolean_query() -> None:
    from screening.ranking.features import topic_sentence

    query = '(psilocybin[tiab] OR LSD*) AND "cluster headache"[MeSH Terms] NOT rats'
    assert topic_sentence([query, "", "Adults with chronic pain"]) == (
        "psilocybin LSD cluster headache rats. Adults with chronic pain"
    )
    assert topic_sentence(["", "AND OR"]) == ""
