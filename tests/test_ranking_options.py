"""The ranking options chosen by cross-validation (issue 16), on a real review.

Donners 2021 (258 records, 15 includes; copied into tests/fixtures/ranking) is screened part
way with its real labels; each option must change the fit the way it says, keep the ranking
a function of the labels and seed only, and still rank the hidden includes above chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from screening.ranking.active import ActiveLearner, LearnerConfig
from screening.ranking.datasets import priors, read_dataset
from screening.ranking.features import build_features
from screening.ranking.models import RelevanceClassifier
from screening.ranking.simulate import simulate_dataset


@pytest.fixture(scope="module")
def donners():
    return read_dataset(Path(__file__).parent / "fixtures" / "ranking" / "synergy_Donners_2021.csv.gz")


@pytest.fixture(scope="module")
def features(donners):
    return build_features(donners.texts, titles=donners.titles)


def _screened_part_way(donners, n_includes: int = 5, n_excludes: int = 60) -> dict[int, int]:
    """Real labels for the first includes and excludes in file order: a review part way through."""
    inc = np.flatnonzero(donners.labels == 1)[:n_includes]
    exc = np.flatnonzero(donners.labels == 0)[:n_excludes]
    return {int(i): 1 for i in inc} | {int(i): 0 for i in exc}


def _learner(features, config: LearnerConfig, labels: dict[int, int], seed: int = 0) -> ActiveLearner:
    learner = ActiveLearner.from_features(features, config=config, seed=seed)
    learner.set_labels(labels)
    learner.scores()
    return learner


def _mean_include_rank(learner: ActiveLearner, labels: np.ndarray) -> float:
    """Mean position (0 = first) of the hidden includes among the unlabeled records, as a share of the pool."""
    ranked = learner.ranked()
    return float(np.flatnonzero(labels[ranked] == 1).mean() / ranked.size)


@parametrize_with_checks(
    [RelevanceClassifier(balance_ratio=9.8, ratio_decay=0.5)],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": "class balancing sets its own weights",
        "check_sample_weight_equivalence_on_sparse_data": "class balancing sets its own weights",
    },
)
def test_decaying_ratio_keeps_the_estimator_contract(estimator, check) -> None:
    check(estimator)


def test_ratio_decay_spares_the_first_include_and_fades_with_more(donners, features) -> None:
    X = features.model_matrix
    one = _screened_part_way(donners, n_includes=1)
    rows = np.array(sorted(one))
    y = donners.labels[rows]
    fixed = RelevanceClassifier(balance_ratio=9.8).fit(X[rows], y)
    decayed = RelevanceClassifier(balance_ratio=9.8, ratio_decay=5.0).fit(X[rows], y)
    assert np.allclose(fixed.coef_, decayed.coef_)  # one include: the whole ratio either way

    many = _screened_part_way(donners, n_includes=10)
    rows = np.array(sorted(many))
    y = donners.labels[rows]
    decayed = RelevanceClassifier(balance_ratio=9.8, ratio_decay=1e6).fit(X[rows], y)
    plain = RelevanceClassifier(balance_ratio=1.0).fit(X[rows], y)
    fixed = RelevanceClassifier(balance_ratio=9.8).fit(X[rows], y)
    assert np.allclose(decayed.coef_, plain.coef_, atol=1e-4)  # faded to plain balancing
    assert not np.allclose(decayed.coef_, fixed.coef_, atol=1e-4)


def test_bad_ratio_decay_is_named(features) -> None:
    with pytest.raises(ValueError, match="ratio_decay"):
        RelevanceClassifier(ratio_decay=-1.0).fit(features.model_matrix[:4], [1, 0, 0, 0])


@pytest.mark.parametrize(
    "changes",
    [
        {"nb_weight": 0.5},
        {"logistic_weight": 0.5},
        {"nb_weight": 0.5, "logistic_weight": 0.5},
        {"word_weight": 0.5},
        {"temporary_excludes": 20},
        {"ratio_decay": 0.5},
    ],
)
def test_option_changes_the_ranking_and_still_finds_includes(donners, features, changes) -> None:
    labels = _screened_part_way(donners)
    plain = _learner(features, LearnerConfig(), labels)
    other = _learner(features, LearnerConfig(**changes), labels)
    again = _learner(features, LearnerConfig(**changes), labels)
    assert np.array_equal(other.ranked(), again.ranked())  # a function of labels and seed
    assert not np.allclose(other.scores(), plain.scores())
    assert _mean_include_rank(other, donners.labels) < 0.3  # chance is 0.5


def test_side_models_are_fitted_on_their_matrix(donners, features) -> None:
    config = LearnerConfig(nb_weight=0.5, logistic_weight=0.5, word_weight=0.5)
    learner = _learner(features, config, _screened_part_way(donners))
    assert set(learner.side_models_) == {"nb", "logistic", "words", "phrases"}  # phrases: on by default
    for name, (_, model) in learner.side_models_.items():
        matrix = {"words": features.matrix, "phrases": features.phrase_matrix}.get(name, features.model_matrix)
        assert model.n_features_in_ == matrix.shape[1]
    assert features.model_matrix.shape[1] > features.matrix.shape[1]  # the words model reads no n-grams
    assert set(LearnerConfig().side_models(0)) == {"phrases"}  # the others are off unless weighted
    assert LearnerConfig(phrase_weight=0.0).side_models(0) == {}


def test_temporary_excludes_come_from_the_unscreened_pool(donners, features) -> None:
    labels = _screened_part_way(donners)
    learner = _learner(features, LearnerConfig(temporary_excludes=30), labels)
    drawn = learner._temporary_excludes()
    assert drawn.size == 30
    assert not set(drawn.tolist()) & set(labels)
    # fewer unscreened records than asked for: every one of them, once
    almost_all = {i: int(donners.labels[i]) for i in range(donners.n_records - 10)}
    learner = _learner(features, LearnerConfig(temporary_excludes=30), almost_all)
    assert sorted(learner._temporary_excludes().tolist()) == list(range(donners.n_records - 10, donners.n_records))


def test_simulation_with_options_finds_every_include(donners) -> None:
    config = LearnerConfig(nb_weight=0.5, temporary_excludes=20, ratio_decay=0.5)
    run = simulate_dataset(donners, seed=0, learner=config)
    assert run.labels_in_order.sum() == donners.n_included
    assert tuple(run.order[:2].tolist()) == priors(donners.labels, 0)
    assert len(set(run.order.tolist())) == len(run.order)


def test_word_bigrams_add_a_block_to_the_model_matrix_only(donners, features) -> None:
    from screening.ranking.features import FeatureConfig, TextFeatures

    config = FeatureConfig(word_bigrams=True)
    with_pairs = build_features(donners.texts, config, titles=donners.titles)
    # the similarity matrix and the word vocabulary are untouched; the classifier gets more columns
    assert (with_pairs.matrix != features.matrix).nnz == 0
    assert with_pairs.vocabulary == features.vocabulary
    assert with_pairs.model_matrix.shape[1] > features.model_matrix.shape[1]
    assert np.allclose(sp_row_norms(with_pairs.model_matrix), 1.0, atol=1e-5)
    assert FeatureConfig().word_bigrams is False  # off by default
    # a lighter block: the same columns, less of each row's length in them
    lighter = build_features(donners.texts, FeatureConfig(word_bigrams=True, bigram_weight=0.5), titles=donners.titles)
    assert lighter.model_matrix.shape == with_pairs.model_matrix.shape
    tail = slice(features.model_matrix.shape[1], None)
    assert sp_row_norms(lighter.model_matrix[:, tail]).mean() < sp_row_norms(with_pairs.model_matrix[:, tail]).mean()
    # the feature cache keeps the bigram counts
    again = TextFeatures.from_bytes(with_pairs.to_bytes(), config)
    assert (again.model_matrix != with_pairs.model_matrix).nnz == 0
    # and a learner on them still ranks the hidden includes above chance
    labels = _screened_part_way(donners)
    learner = ActiveLearner.from_features(with_pairs, seed=0)
    learner.set_labels(labels)
    assert _mean_include_rank(learner, donners.labels) < 0.5


def sp_row_norms(m) -> np.ndarray:
    return np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())


def test_phrase_matrix_holds_words_and_bigrams_without_character_ngrams(donners, features) -> None:
    from screening.ranking.features import FeatureConfig, TextFeatures

    off = FeatureConfig(phrases="off")
    assert build_features(donners.texts, off, titles=donners.titles).phrase_matrix is None
    config = FeatureConfig(phrases="stacked")
    with_phrases = build_features(donners.texts, config, titles=donners.titles)
    # the similarity and model matrices are those of the default features
    assert (with_phrases.matrix != features.matrix).nnz == 0
    assert (with_phrases.model_matrix != features.model_matrix).nnz == 0
    pairs = build_features(donners.texts, FeatureConfig(word_bigrams=True), titles=donners.titles)
    n_words, n_chars = features.matrix.shape[1], features.model_matrix.shape[1] - features.matrix.shape[1]
    phrases = with_phrases.phrase_matrix
    # words (+title) then the same bigram columns as the model matrix with bigrams, no n-grams
    assert phrases.shape[1] == pairs.model_matrix.shape[1] - n_chars
    assert np.allclose(sp_row_norms(phrases), 1.0, atol=1e-5)
    words_part = phrases[:, :n_words].toarray()
    scale = np.linalg.norm(words_part, axis=1, keepdims=True)
    assert np.allclose(words_part, features.matrix.toarray() * scale, atol=1e-5)  # same direction
    # a word pair is a column of its own, which the word columns alone cannot tell apart
    assert phrases[:, n_words:].nnz > 0
    again = TextFeatures.from_bytes(with_phrases.to_bytes(), config)
    assert (again.phrase_matrix != phrases).nnz == 0
    assert "phrases" not in off.to_dict()  # caches of the settings before phrases keep their keys


def test_joint_phrase_matrix_is_elas_u4s_tfidf_of_words_and_bigrams(donners, features) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from screening.errors import ConfigError
    from screening.ranking.features import FeatureConfig, TextFeatures

    config = FeatureConfig(phrases="joint")
    joint = build_features(donners.texts, config, titles=donners.titles)
    assert (joint.model_matrix != features.model_matrix).nnz == 0  # the classifier's own matrix is unchanged
    expected = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95, dtype=np.float32)
    reference = expected.fit_transform(donners.texts)
    got = joint.phrase_matrix
    # the same columns in another order: same shape, same non-zeros, same cosine between any two records
    assert got.shape == reference.shape and got.nnz == reference.nnz
    assert np.allclose((got @ got.T).toarray(), (reference @ reference.T).toarray(), atol=1e-5)
    assert (TextFeatures.from_bytes(joint.to_bytes(), config).phrase_matrix != got).nnz == 0
    # the stacked matrix still prunes its bigrams at bigram_min_df (2), the joint one keeps them all
    stacked = build_features(donners.texts, FeatureConfig(phrases="stacked"), titles=donners.titles)
    assert stacked.phrase_matrix.shape[1] - features.matrix.shape[1] < got.shape[1] - features.words.shape[1]
    with pytest.raises(ConfigError, match="phrases: must be one of off, stacked, joint"):
        FeatureConfig(phrases="yes")


def test_phrase_model_fits_on_the_phrase_matrix_and_needs_it(donners, features) -> None:
    from screening.errors import ConfigError
    from screening.ranking.features import FeatureConfig

    with_phrases = build_features(donners.texts, FeatureConfig(phrases="stacked"), titles=donners.titles)
    config = LearnerConfig(phrase_weight=1.0, phrase_C=0.11)
    with pytest.raises(ConfigError, match=r'phrase_matrix.*FeatureConfig\(phrases="joint"\)'):
        ActiveLearner(features.matrix, model_matrix=features.model_matrix, config=config)
    labels = _screened_part_way(donners)

    def fitted(cfg: LearnerConfig) -> ActiveLearner:
        learner = ActiveLearner(
            with_phrases.matrix,
            model_matrix=with_phrases.model_matrix,
            phrase_matrix=with_phrases.phrase_matrix,
            config=cfg,
            seed=0,
        )
        learner.set_labels(labels)
        learner.scores()
        return learner

    learner = fitted(config)
    weight, model = learner.side_models_["phrases"]
    assert weight == 1.0 and model.C == 0.11
    assert model.n_features_in_ == with_phrases.phrase_matrix.shape[1]
    plain = fitted(LearnerConfig())
    assert not np.allclose(learner.scores(), plain.scores())
    assert np.array_equal(learner.ranked(), fitted(config).ranked())
    assert _mean_include_rank(learner, donners.labels) < 0.3  # chance is 0.5


def test_bigram_counts_are_countvectorizers_in_another_column_order(donners) -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    from screening.ranking.features import count_bigrams

    for min_df in (1, 2):
        got = count_bigrams(donners.texts, min_df)
        reference = CountVectorizer(ngram_range=(2, 2), min_df=min_df).fit_transform(donners.texts)
        assert got.shape == reference.shape and got.nnz == reference.nnz
        assert np.array_equal((got @ got.T).toarray(), (reference @ reference.T).toarray())
        assert np.array_equal(np.sort(got.sum(axis=0).A1), np.sort(reference.sum(axis=0).A1))
    # a pair never spans two records; too few words or records give no bigram at all
    assert count_bigrams(["alpha beta", "gamma delta"]).shape == (2, 2)
    assert count_bigrams(["one", "", "x y"]) is None
    assert count_bigrams(["alpha beta", "gamma delta"], min_df=2) is None


def test_adaptive_fusion_weighs_each_part_by_the_pairs_it_ranked_right_since_the_last_fit(donners, features) -> None:
    from sklearn.metrics import roc_auc_score

    first = _screened_part_way(donners)
    learner = _learner(features, LearnerConfig(adaptive_fusion=10.0), first)
    earlier = {name: values.copy() for name, values in learner._fit_parts.items()}
    batch = [int(i) for i in learner.ranked(40)]  # the next 40 records, screened with real labels
    learner.set_labels({i: int(donners.labels[i]) for i in batch})
    scores = learner.scores()
    y = donners.labels[batch] == 1
    assert 0 < y.sum() < len(batch)  # both kinds in the batch: the weights have evidence
    auc = {name: roc_auc_score(y, values[batch]) for name, values in earlier.items()}
    assert learner._pairs == int(y.sum() * (~y).sum())
    config = LearnerConfig()
    base = {"svm": 1.0, "phrases": config.phrase_weight, "neighbour": config.neighbour_weight}
    weight = {name: w * np.exp(10.0 * (auc[name] - auc["svm"])) for name, w in base.items()}
    fixed = _learner(features, LearnerConfig(), {**first, **{i: int(donners.labels[i]) for i in batch}})
    parts = fixed._fit_parts  # the same fits' z-scores, from a learner with fixed weights
    expected = sum(weight[name] * parts[name] for name in base)
    assert np.allclose(scores, expected)
    assert not np.allclose(scores, fixed.scores())
