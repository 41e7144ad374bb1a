"""The inclusion prior: fitted across real reviews, scored from a project's cached counts, saved as data,
and chosen per project from the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError
from screening.ingest import import_file
from screening.ranking.datasets import LabeledDataset, read_dataset
from screening.ranking.features import build_features, query_similarity
from screening.ranking.inclusion import FORMAT, InclusionPrior, _review_weights, default_prior
from screening.ranking.project import INCLUSION_PRIOR_SETTING, ProjectRanker, topic_text
from screening.schema import AuditEvent
from screening.store import init_project

runner = CliRunner()
REVIEWS = ("cohen2006_Antihistamines", "synergy_Donners_2021")


@pytest.fixture(scope="module")
def reviews() -> list[LabeledDataset]:
    folder = Path(__file__).resolve().parent / "fixtures" / "ranking"
    return [read_dataset(folder / f"{name}.csv.gz") for name in REVIEWS]


def test_the_shipped_prior_was_fitted_on_the_benchmark_suite() -> None:
    prior = default_prior()
    assert len(prior.trained_on) == 21 and set(REVIEWS) <= set(prior.trained_on)
    assert prior.params["min_reviews"] == 5
    assert len(prior.words) == len(prior.idf) == len(prior.coef) > 1000
    weights = dict(zip(prior.words, prior.coef, strict=True))
    # words of trials weigh for inclusion; letters and comments against
    assert weights["randomized"] > 0 and weights["placebo"] > 0 and weights["blind"] > 0
    assert weights["letter"] < 0 and weights["comment"] < 0


def test_scores_from_a_projects_counts_equal_scores_from_the_text(reviews: list[LabeledDataset]) -> None:
    texts = [*reviews[0].texts, "", "Placebo\u00a0controlled\ttrial of LORATADINE, 10 mg/day"]
    features = build_features(texts)
    prior = default_prior()
    from_counts = prior.score_features(features)
    assert np.allclose(from_counts, prior.score_texts(texts), rtol=0, atol=1e-9)
    assert from_counts[len(reviews[0].texts)] == 0.0  # an empty text scores nothing


def test_fit_keeps_only_words_of_several_reviews_and_weighs_reviews_equally(reviews: list[LabeledDataset]) -> None:
    prior = InclusionPrior.fit(reviews, min_reviews=2)
    assert prior.trained_on == REVIEWS
    in_both = [set(build_features(r.texts).counts.words) for r in reviews]
    assert set(prior.words) <= in_both[0] & in_both[1]
    weights = _review_weights(reviews)
    start = 0
    for review in reviews:
        part, start = weights[start : start + review.n_records], start + review.n_records
        assert part[review.labels == 1].sum() == pytest.approx(0.5)
        assert part[review.labels == 0].sum() == pytest.approx(0.5)
    for review in reviews:  # fitted on them, it ranks their includes above their excludes
        scores = prior.score_texts(review.texts)
        assert scores[review.labels == 1].mean() > scores[review.labels == 0].mean()


def test_fit_refuses_reviews_it_cannot_learn_from(reviews: list[LabeledDataset]) -> None:
    no_includes = LabeledDataset("nothing_in", reviews[0].texts, np.zeros(reviews[0].n_records, dtype=np.int8))
    with pytest.raises(ConfigError, match="nothing_in: needs both includes and excludes"):
        InclusionPrior.fit([reviews[1], no_includes], min_reviews=2)
    with pytest.raises(ConfigError, match="need at least min_reviews=5"):
        InclusionPrior.fit(reviews)
    with pytest.raises(ConfigError, match="C: must be above 0"):
        InclusionPrior.fit(reviews, min_reviews=2, C=0.0)


def test_a_saved_prior_loads_the_same_and_a_bad_file_is_named(reviews: list[LabeledDataset], tmp_path: Path) -> None:
    prior = InclusionPrior.fit(reviews, min_reviews=2)
    path = tmp_path / "prior.json.gz"
    prior.save(path)
    loaded = InclusionPrior.load(path)
    assert loaded.words == prior.words and loaded.trained_on == prior.trained_on
    assert np.allclose(loaded.score_texts(reviews[1].texts), prior.score_texts(reviews[1].texts), atol=1e-5)
    assert not list(tmp_path.glob("*.partial"))

    plain = tmp_path / "plain.json"
    plain.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"plain\.json: cannot read an inclusion prior"):
        InclusionPrior.load(plain)
    for name, payload, message in (
        ("other.json.gz", {"format": "something-else"}, "not an inclusion prior"),
        ("field.json.gz", {"format": FORMAT, "words": ["a"], "idf": [1.0]}, "missing field 'coef'"),
        ("short.json.gz", {"format": FORMAT, "words": ["a", "b"], "idf": [1.0], "coef": [0.1]}, "words, idf and coef"),
    ):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as f:
            json.dump(payload, f)
        with pytest.raises(ConfigError, match=f"{name}: {message}"):
            InclusionPrior.load(tmp_path / name)


def test_cli_builds_a_prior_and_a_project_chooses_it(reviews: list[LabeledDataset], tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parent / "fixtures" / "ranking"
    files = [str(folder / f"{name}.csv.gz") for name in REVIEWS]
    out = tmp_path / "ours.json.gz"
    result = runner.invoke(app, ["build-prior", *files, "--out", str(out), "--min-reviews", "2"])
    assert result.exit_code == 0, result.output
    assert "from 2 reviews" in result.output and out.exists()

    db = tmp_path / "project.db"
    store = init_project(db, name="A", criteria="loratadine for seasonal allergic rhinitis")
    csv = tmp_path / "records.csv"
    pd.read_csv(files[0]).head(60).drop(columns=["label_included"]).to_csv(csv, index=False)
    import_file(store, csv, source_name="PubMed")
    default_scores = ProjectRanker(store).learner.prior_scores

    shown = runner.invoke(app, ["prior", "--db", str(db)])
    assert shown.exit_code == 0 and "Inclusion prior: default" in shown.output, shown.output
    chosen = runner.invoke(app, ["prior", "--db", str(db), "--use", str(out), "--reviewer", "ana"])
    assert chosen.exit_code == 0 and "Inclusion prior: own" in chosen.output, chosen.output
    assert REVIEWS[1] in chosen.output
    own_scores = ProjectRanker(store).learner.prior_scores
    assert not np.allclose(own_scores, default_scores)
    with store.read() as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event.actor == "ana" and event.detail["key"] == INCLUSION_PRIOR_SETTING

    off = runner.invoke(app, ["prior", "--db", str(db), "--use", "off"])
    assert off.exit_code == 0 and "off" in off.output
    ranker = ProjectRanker(store)
    assert np.array_equal(ranker.learner.prior_scores, query_similarity(ranker.features, topic_text(store)))
    back = runner.invoke(app, ["prior", "--db", str(db), "--use", "default"])
    assert back.exit_code == 0 and "Inclusion prior: default" in back.output
    assert np.array_equal(ProjectRanker(store).learner.prior_scores, default_scores)

    missing = runner.invoke(app, ["prior", "--db", str(db), "--use", str(tmp_path / "nope.json.gz")])
    assert missing.exit_code != 0 and "nope.json.gz" in missing.output
    assert np.array_equal(ProjectRanker(store).learner.prior_scores, default_scores)  # nothing changed
    store.close()
