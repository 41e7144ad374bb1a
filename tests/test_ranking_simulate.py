"""Simulation on real datasets (copied small into tests/fixtures/ranking)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError
from screening.ranking.active import ActiveLearner, LearnerConfig
from screening.ranking.datasets import priors, read_dataset
from screening.ranking.features import build_features
from screening.ranking.simulate import RESULT_COLUMNS, simulate_dataset


@pytest.fixture
def donners(fixtures: Path):
    return read_dataset(fixtures / "ranking" / "synergy_Donners_2021.csv.gz")


def test_same_seed_same_order(donners) -> None:
    a = simulate_dataset(donners, seed=1)
    b = simulate_dataset(donners, seed=1)
    assert np.array_equal(a.order, b.order)
    assert a.labels_in_order.sum() == donners.n_included
    assert len(set(a.order.tolist())) == len(a.order)  # no record screened twice


def test_priors_come_first(donners) -> None:
    run = simulate_dataset(donners, seed=2)
    assert tuple(run.order[:2].tolist()) == priors(donners.labels, 2)


def test_first_choice_ignores_hidden_labels(donners) -> None:
    """Permuting the labels of every record but the priors leaves the first choice unchanged."""
    first = simulate_dataset(donners, seed=0).order[2]
    inc, exc = priors(donners.labels, 0)
    hidden = np.setdiff1d(np.arange(donners.n_records), [inc, exc])
    rng = np.random.default_rng(123)
    for _ in range(3):
        labels = donners.labels.copy()
        labels[hidden] = rng.permutation(labels[hidden])
        shuffled = replace(donners, labels=labels)
        assert labels[inc] == 1 and labels[exc] == 0
        assert simulate_dataset(shuffled, seed=0, prior_records=(inc, exc)).order[2] == first


def test_learner_ranks_by_its_own_scores(donners) -> None:
    """The learner sees only the labels it is given: its ranking is a function of those."""
    features = build_features(donners.texts)
    inc, exc = priors(donners.labels, 0)
    learner = ActiveLearner.from_features(features, seed=0)
    learner.set_label(inc, 1)
    learner.set_label(exc, 0)
    ranked = learner.ranked()
    scores = learner.scores()
    assert set(ranked.tolist()) == set(range(donners.n_records)) - {inc, exc}
    assert np.all(np.diff(scores[ranked]) <= 0)
    assert learner.next() == ranked[0]


def test_simulate_command_writes_rows_and_plot(fixtures: Path, tmp_path: Path) -> None:
    data = fixtures / "ranking" / "synergy_Donners_2021.csv.gz"
    out, plot = tmp_path / "results.csv", tmp_path / "recall.png"
    result = CliRunner().invoke(app, ["simulate", str(data), "--seeds", "0,1", "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == RESULT_COLUMNS
    assert table["seed"].tolist() == [0, 1]
    assert (table["N"] == 258).all() and (table["R"] == 15).all()
    assert (table["wss95"] <= table["wss95_opt"] + 1e-12).all()
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_simulate_command_rejects_bad_seeds(fixtures: Path) -> None:
    data = fixtures / "ranking" / "synergy_Donners_2021.csv.gz"
    result = CliRunner().invoke(app, ["simulate", str(data), "--seeds", "0,x"])
    assert result.exit_code == 1
    assert "--seeds" in result.output


def test_simulate_command_names_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("record_id,title,abstract,label_included\n1,a,b,yes\n")
    result = CliRunner().invoke(app, ["simulate", str(bad)])
    assert result.exit_code == 1
    assert "label_included" in result.output and "row 2" in result.output


def test_uncertainty_offers_the_closest_to_the_boundary(donners) -> None:
    features = build_features(donners.texts)
    inc, exc = priors(donners.labels, 0)
    learner = ActiveLearner.from_features(features, config=LearnerConfig(strategy="uncertainty"), seed=0)
    learner.set_label(inc, 1)
    learner.set_label(exc, 0)
    ranked = learner.ranked()
    margins = np.abs(learner.scores()[ranked])
    assert np.all(np.diff(margins) >= 0)
    assert learner.next() == ranked[0]


def test_refit_schedule_and_maybe(donners) -> None:
    """The schedule refits on time; a 'maybe' leaves the pool but never trains the model."""
    features = build_features(donners.texts)
    learner = ActiveLearner.from_features(features, config=LearnerConfig(refit_share=0.5), seed=0)
    pos, neg = np.flatnonzero(donners.labels == 1), np.flatnonzero(donners.labels == 0)
    learner.set_labels({int(pos[0]): 1, **{int(r): 0 for r in neg[:19]}})
    learner.scores()
    fits = learner.n_fits
    for r in neg[19:27]:  # 8 new labels < 50% of 20: no refit yet
        learner.set_label(int(r), 0)
        learner.next()
    assert learner.n_fits == fits
    for r in neg[27:30]:  # now 11 >= 10
        learner.set_label(int(r), 0)
    learner.next()
    assert learner.n_fits == fits + 1
    maybe = int(learner.next())
    learner.set_label(maybe, ActiveLearner.SEEN)
    assert maybe not in learner.ranked().tolist()
    assert learner.next() != maybe


def test_classifier_learns_on_the_model_matrix(donners) -> None:
    """The SVM sees the character n-gram columns; similarity stays on the word matrix."""
    features = build_features(donners.texts, titles=donners.titles)
    assert features.model_matrix.shape[1] > features.matrix.shape[1]
    inc, exc = priors(donners.labels, 0)
    learner = ActiveLearner.from_features(features, seed=0)
    learner.set_labels({inc: 1, exc: 0})
    learner.scores()
    assert learner.model_.coef_.shape == (features.model_matrix.shape[1],)
    assert np.any(learner.model_.coef_[features.matrix.shape[1] :] != 0)
    with pytest.raises(ConfigError, match="model_matrix"):
        ActiveLearner(features.matrix, model_matrix=features.model_matrix[:10], phrase_matrix=features.phrase_matrix)
