"""Ranking inside a real SQLite project: cold start, labels from decisions, the feature cache."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from screening.cli import app
from screening.decisions import decide
from screening.errors import ConfigError
from screening.ingest import import_file
from screening.ranking.project import CACHE_KEY, INCLUSION_PRIOR_SETTING, ProjectRanker, next_record, rank_unscreened
from screening.reviewers import add_reviewer
from screening.schema import CacheEntry, Record
from screening.store import Store, init_project


@pytest.fixture
def unlabeled_csv(fixtures: Path, tmp_path: Path) -> Path:
    """Antihistamines records without their labels: a project before any screening."""
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz")
    path = tmp_path / "antihistamines.csv"
    frame.drop(columns=["label_included"]).to_csv(path, index=False)
    return path


def _project(db: Path, csv: Path, **topic: str) -> Store:
    store = init_project(db, name="Antihistamines", **topic)
    import_file(store, csv, source_name="PubMed")
    return store


def _title_of(store: Store, record_id: int) -> str:
    return store.get_record(record_id).title


def test_cold_start_puts_a_query_match_first(db_path: Path, unlabeled_csv: Path) -> None:
    store = _project(db_path, unlabeled_csv, query="docetaxel cisplatin non-small cell lung cancer")
    ranked = rank_unscreened(store)
    assert len(ranked) == 310
    assert "docetaxel" in _title_of(store, ranked[0][0]).lower()
    assert ranked[0][1] > ranked[-1][1]
    store.close()


def test_cold_start_uses_criteria_and_keywords(db_path: Path, unlabeled_csv: Path) -> None:
    criteria = "Trials of fexofenadine or loratadine in seasonal allergic rhinitis"
    store = _project(db_path, unlabeled_csv, criteria=criteria)
    top = [_title_of(store, rid).lower() for rid, _ in rank_unscreened(store, limit=3)]
    assert any("rhinitis" in t for t in top)
    store.set_setting("criteria", "")
    store.set_setting("keywords", ["urticaria"])
    first = rank_unscreened(store, limit=1)[0][0]
    assert "urticaria" in _title_of(store, first).lower()
    store.close()


def test_cold_start_reads_the_include_keywords_and_not_the_exclude_ones(db_path: Path, unlabeled_csv: Path) -> None:
    store = _project(db_path, unlabeled_csv)
    store.set_setting("keywords", {"include": ["urticaria"], "exclude": ["rhinitis"]})  # the highlight setting
    top = [_title_of(store, rid).lower() for rid, _ in rank_unscreened(store, limit=5)]
    assert "urticaria" in top[0] and not any("rhinitis" in t and "urticaria" not in t for t in top)
    store.close()


def test_no_topic_and_no_include_is_an_error(db_path: Path, unlabeled_csv: Path) -> None:
    store = _project(db_path, unlabeled_csv)
    with pytest.raises(ConfigError, match="query"):
        next_record(store)
    store.close()


def test_labels_from_decisions_drive_the_ranking(db_path: Path, fixtures: Path) -> None:
    """Imported labels become prior decisions; those records leave the pool and train the model."""
    labeled = fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz"
    frame = pd.read_csv(labeled)
    subset = db_path.parent / "part.csv"
    # a real mix: half the records keep their labels, half are unscreened
    part = frame.copy()
    part["label_included"] = [v if i % 2 == 0 else "" for i, v in enumerate(frame["label_included"])]
    part.to_csv(subset, index=False)
    store = _project(db_path, subset)
    ranked = rank_unscreened(store)
    assert len(ranked) == 155
    with store.read() as s:
        titles = dict(s.execute(select(Record.id, Record.title)).all())
    hidden_labels = dict(zip(frame["title"].fillna(""), frame["label_included"], strict=True))
    top = [hidden_labels[titles[rid]] for rid, _ in ranked[:20]]
    assert sum(top) >= 4  # 8 includes hide among 155 unscreened: the model finds them early

    add_reviewer(store, "ana")
    ranker = ProjectRanker(store)
    first = ranker.next_record()
    assert first == ranked[0][0]
    decide(store, first, "exclude", reviewer="ana")
    ranker.refresh()
    assert ranker.next_record() != first
    assert first not in {r.record_id for r in ranker.ranking()}
    decide(store, ranked[5][0], "maybe", reviewer="ana")
    ranker.refresh()
    assert ranked[5][0] not in {r.record_id for r in ranker.ranking()}
    store.close()


def test_ranking_is_reproducible_with_a_seed(db_path: Path, unlabeled_csv: Path) -> None:
    store = _project(db_path, unlabeled_csv, query="loratadine")
    assert rank_unscreened(store, seed=3) == rank_unscreened(store, seed=3)
    mixed_a = rank_unscreened(store, strategy="mixed", random_share=0.5, seed=3)
    mixed_b = rank_unscreened(store, strategy="mixed", random_share=0.5, seed=3)
    assert mixed_a == mixed_b
    assert sorted(r for r, _ in mixed_a) == sorted(r for r, _ in rank_unscreened(store))
    store.close()


def test_bad_strategy_names_the_option(db_path: Path, unlabeled_csv: Path) -> None:
    store = _project(db_path, unlabeled_csv, query="loratadine")
    with pytest.raises(ConfigError, match="strategy"):
        rank_unscreened(store, strategy="best")
    with pytest.raises(ConfigError, match="random_share"):
        rank_unscreened(store, strategy="mixed", random_share=2.0)
    store.close()


def test_features_are_cached_until_records_change(db_path: Path, unlabeled_csv: Path, tmp_path: Path) -> None:
    store = _project(db_path, unlabeled_csv, query="loratadine")
    built = rank_unscreened(store)
    with store.read() as s:
        first = s.get(CacheEntry, CACHE_KEY)
        fingerprint, created = first.fingerprint, first.created_at
    assert rank_unscreened(store) == built  # read back from the cache: the same ranking
    with store.read() as s:
        again = s.get(CacheEntry, CACHE_KEY)
        assert (again.fingerprint, again.created_at) == (fingerprint, created)
    extra = tmp_path / "one.csv"
    extra.write_text("title,abstract\nLoratadine in chronic urticaria,A new trial.\n")
    ranker = ProjectRanker(store)
    import_file(store, extra, source_name="Embase")
    ranker.refresh()
    assert len(ranker.ranking()) == 311
    with store.read() as s:
        assert s.get(CacheEntry, CACHE_KEY).fingerprint != fingerprint
    store.close()


def test_rank_command_prints_scores(db_path: Path, unlabeled_csv: Path) -> None:
    _project(db_path, unlabeled_csv, query="docetaxel cisplatin lung cancer").close()
    result = CliRunner().invoke(app, ["rank", "--db", str(db_path), "-n", "3"])
    assert result.exit_code == 0, result.output
    assert "score" in result.output and "Docetaxel" in result.output


def test_a_file_of_known_includes_labels_them_and_gives_the_ranker_its_start(
    db_path: Path, fixtures: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz")
    includes = frame[frame.label_included == 1]
    known, rest = includes.head(3), frame.drop(includes.head(3).index)
    known.drop(columns=["label_included"]).to_csv(tmp_path / "known.csv", index=False)
    rest.drop(columns=["label_included"]).to_csv(tmp_path / "rest.csv", index=False)
    store = _project(db_path, tmp_path / "rest.csv", query="antihistamines")
    # the shipped inclusion prior was fitted on this very review: its cold start would be in-sample
    store.set_setting(INCLUSION_PRIOR_SETTING, False)
    cold = {int(rid) for rid, _ in rank_unscreened(store, limit=20)}
    result = CliRunner().invoke(
        app, ["import", str(tmp_path / "known.csv"), "--db", str(db_path), "--source", "Known", "--label", "include"]
    )
    assert result.exit_code == 0 and "3 labels as prior decisions" in result.output, result.output
    from screening.decisions import record_status

    known_ids = range(len(rest) + 1, len(rest) + 4)
    assert all(record_status(store, rid).title_abstract.value == "include" for rid in known_ids)
    titles = dict(zip(frame.title, frame.label_included, strict=True))
    warm = [_title_of(store, rid) for rid, _ in rank_unscreened(store, limit=20)]
    cold_hits = sum(titles.get(_title_of(store, rid), 0) for rid in cold)
    assert sum(titles.get(t, 0) for t in warm) > cold_hits  # the known includes pull the others up
    bad = CliRunner().invoke(
        app, ["import", str(tmp_path / "known.csv"), "--db", str(db_path), "--source", "K", "--label", "maybe"]
    )
    assert bad.exit_code == 1 and "--label: 'maybe' is not one of include, exclude" in bad.output
    store.close()


def test_reviewers_asking_at_once_share_one_refresh_that_has_read_all_their_decisions(
    db_path: Path, unlabeled_csv: Path
) -> None:
    """The dashboard's warm ranker under a queue of reviewers: one refit serves them all, none sees a stale list."""
    import threading

    from screening.dashboard.state import SharedRanker

    store = _project(db_path, unlabeled_csv, query="loratadine")
    shared = SharedRanker(ProjectRanker(store))
    first = shared.ranked_ids(limit=None)
    names = [f"r{i}" for i in range(6)]
    for name in names:
        add_reviewer(store, name)
    refreshes = []
    refresh = shared.ranker.refresh
    shared.ranker.refresh = lambda: (refreshes.append(1), refresh())[1]

    results: dict[str, list[int]] = {}
    asking = {name: threading.Event() for name in names}

    def reviewer(name: str, record_id: int) -> None:
        decide(store, record_id, "exclude", reviewer=name)
        asking[name].set()
        results[name] = shared.ranked_ids(limit=None)

    decided = dict(zip(names, first[: len(names)], strict=True))
    with shared.lock:  # a refit in progress: every reviewer decides, then queues for the ranking
        threads = [threading.Thread(target=reviewer, args=(n, r)) for n, r in decided.items()]
        for t in threads:
            t.start()
        for event in asking.values():
            assert event.wait(30)
        threading.Event().wait(0.3)  # let the last of them reach the lock
    for t in threads:
        t.join(30)

    assert len(refreshes) <= 2  # not one refit per reviewer
    for name, ranked in results.items():
        assert not set(decided.values()) & set(ranked), name  # every decision made before asking is out
        assert set(ranked) == set(first) - set(decided.values())
    store.close()
