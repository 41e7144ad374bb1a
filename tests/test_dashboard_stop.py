"""Stopping early from the dashboard, through Streamlit's AppTest, on a real project.

The project holds the 310 records of Cohen et al.'s Antihistamines review (16 includes).
Alice screens every include first, then excludes: after 100 excludes the default rule cannot
yet vouch for 95% recall with 95% confidence; after 280 it can (checked with ``check_verdict``
so the tests say which side of the line they stand on).
"""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from test_dashboard import PAGES, open_app, shown_record

from screening.decisions import decide
from screening.ingest import add_citations, new_source
from screening.progress import records_left
from screening.reviewers import add_reviewer, set_mode
from screening.schema import Record
from screening.sources import Citation
from screening.stop_curve import bound_curve, lower_bound, stop_point
from screening.stopping import DEFAULT_RULE, buscar_p_value, first_stop, make_rule
from screening.stops import check_verdict, stop_settings, stops
from screening.store import DB_ENV, init_project, open_store

DATASET = Path(__file__).resolve().parent / "fixtures" / "ranking" / "cohen2006_Antihistamines.csv.gz"
NOT_YET = 100  # excludes after the includes: the rule does not say stop yet
ENOUGH = 280  # excludes after the includes: the rule says stop


def build(path: Path, excludes: int) -> None:
    with gzip.open(DATASET, "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with init_project(path, name="Antihistamines", query="antihistamines allergic rhinitis urticaria") as store:
        add_reviewer(store, "alice")
        with store.begin() as s:
            citations = [Citation(title=r["title"], abstract=r["abstract"]) for r in rows]
            add_citations(s, new_source(s, name="PubMed"), citations)
        with store.read() as s:
            ids = list(s.scalars(select(Record.id).order_by(Record.id)))
        assert len(ids) == len(rows) == 310
        includes = [i for i, r in zip(ids, rows, strict=True) if r["label_included"] == "1"]
        others = [i for i, r in zip(ids, rows, strict=True) if r["label_included"] != "1"]
        for record_id in includes:
            decide(store, record_id, "include", reviewer="alice")
        for record_id in others[:excludes]:
            decide(store, record_id, "exclude", reviewer="alice")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("stop")
    paths = {n: folder / f"antihistamines_{n}.db" for n in (NOT_YET, ENOUGH)}
    for n, path in paths.items():
        build(path, n)
    with open_store(paths[NOT_YET]) as store:
        assert not check_verdict(store)[1].stop
    with open_store(paths[ENOUGH]) as store:
        assert check_verdict(store)[1].stop
    return paths


def project(built: dict[int, Path], excludes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "review.db"
    shutil.copy(built[excludes], path)
    monkeypatch.setenv(DB_ENV, str(path))
    return path


@pytest.fixture
def not_yet(built: dict[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return project(built, NOT_YET, tmp_path, monkeypatch)


@pytest.fixture
def enough(built: dict[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return project(built, ENOUGH, tmp_path, monkeypatch)


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


# -- the curve's numbers ------------------------------------------------------------------------------
def largest_rejected_target(labels: np.ndarray, pool: int, alpha: float) -> float:
    """The definition, by bisection over the target: the largest recall Buscar's test rejects at ``alpha``."""
    if labels.sum() == 0 or buscar_p_value(labels, pool, 1e-6) >= alpha:
        return 0.0
    low, high = 1e-6, 1.0 - 1e-9
    for _ in range(40):  # p grows with the target
        middle = (low + high) / 2
        low, high = (middle, high) if buscar_p_value(labels, pool, middle) < alpha else (low, middle)
    return low


def test_lower_bound_is_buscars_and_the_stop_point_is_first_stop() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        pool = int(rng.integers(30, 300))
        labels = (rng.random(pool) < np.exp(-np.arange(pool) / 40) * 0.6).astype(int)[: int(rng.integers(1, pool))]
        rule = make_rule("buscar", target=0.9, confidence=0.9)
        bound = lower_bound(rule, labels, pool)
        assert bound == pytest.approx(largest_rejected_target(labels, pool, 0.1), abs=1e-6)
        assert bound == rule.verdict(labels, pool).recall_lower_bound  # the curve and the verdict agree
    labels = np.r_[np.ones(16, int), np.zeros(290, int)]
    rule = make_rule("buscar")
    curve = bound_curve(labels, 310, rule)
    assert len(curve) == 80 and curve[-1].screened == 306 and curve[-1].found == 16
    assert all(0 <= p.lower_bound <= 1 for p in curve) and curve[-1].lower_bound >= 0.95
    assert stop_point(rule, labels, 310, curve) == first_stop(rule, labels, 310) == 296
    assert bound_curve(labels, 310, make_rule("excludes-in-a-row")) == []


# -- Screen -------------------------------------------------------------------------------------------
def test_screen_shows_not_yet_and_no_stop_button(not_yet: Path) -> None:
    at = open_app("alice")
    assert any("not yet recall ≥ 95% with 95% confidence" in t for t in texts(at.info)), texts(at.info)
    assert any(f"16 includes in {16 + NOT_YET} screened of 310" in t for t in texts(at.caption))
    with open_store(not_yet) as store:
        estimated = check_verdict(store)[1].estimated_recall
    assert any(f"estimated recall {estimated:.1%}" in t for t in texts(at.caption))
    assert "screen_stop" not in keys(at)
    before = shown_record(at)
    at.button(key=f"decide_exclude_{before}").click().run()  # the verdict follows every decision
    assert any(f"{17 + NOT_YET} screened of 310" in t for t in texts(at.caption))
    assert "screen_stop" not in keys(at)


def test_screen_stops_after_confirmation(enough: Path) -> None:
    at = open_app("alice")
    assert any("recall ≥ 95% with 95% confidence: you can stop" in t for t in texts(at.success)), texts(at.success)
    at.button(key="screen_stop").click().run()
    assert "screen_stop_yes" in keys(at) and any("14 records nobody has screened" in t for t in texts(at.warning))
    with open_store(enough) as store:
        assert stops(store) == []  # nothing is written before the confirmation
    at.button(key="screen_stop_cancel").click().run()
    assert "screen_stop_yes" not in keys(at) and "screen_stop" in keys(at)
    at.button(key="screen_stop").click().run()
    at.button(key="screen_stop_yes").click().run()
    assert not at.exception, at.exception
    with open_store(enough) as store:
        [stop] = stops(store)
        assert stop.active and not stop.forced and stop.records == 14 and stop.reviewer == "alice"
        assert records_left(store) == 0
    assert any("Title/abstract screening stopped (stop #" in t for t in texts(at.success))
    assert any("stopped early" in t and f"stopped by {DEFAULT_RULE}" in t for t in texts(at.info))
    assert any("Nothing left for you to screen" in t for t in texts(at.success))
    assert "screen_stop" not in keys(at)


def test_dual_mode_only_an_adjudicator_may_stop(enough: Path) -> None:
    with open_store(enough) as store:
        add_reviewer(store, "bob")
        add_reviewer(store, "carol", role="adjudicator")
        set_mode(store, "title_abstract", "dual")
    for name, allowed in (("alice", False), ("bob", False), ("carol", True)):
        at = open_app(name)
        assert any("you can stop" in t for t in texts(at.success)), name
        assert ("screen_stop" in keys(at)) is allowed, name
        if not allowed:
            assert any("an adjudicator ends the stage" in t for t in texts(at.caption))
    at.button(key="screen_stop").click().run()
    at.button(key="screen_stop_yes").click().run()
    with open_store(enough) as store:
        [stop] = stops(store)
        assert stop.reviewer == "carol"
    # alice's votes await a second vote: the flash says so
    assert any("296 screened records still need a vote or a resolution" in t for t in texts(at.success))


# -- Progress -----------------------------------------------------------------------------------------
def test_progress_draws_the_bound_and_the_stop_point(enough: Path) -> None:
    at = open_app("alice", "progress")
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any('"recall at least"' in spec and '"type": "rule"' in spec for spec in specs), "no bound chart"
    assert any("it may stop once the orange line reaches the dashed target (95%)" in t for t in texts(at.caption))
    stop_at = first_stop(make_rule(), [1] * 16 + [0] * ENOUGH, 310)
    assert stop_at is not None and stop_at < 16 + ENOUGH
    assert any(f"first said stop after {stop_at} records" in t for t in texts(at.caption))
    assert any("you can stop" in t for t in texts(at.success))
    assert "force_stop" not in keys(at)  # the rule says stop: the Screen page stops


def test_progress_force_stop_needs_a_note_and_is_marked_forced_then_undo(not_yet: Path) -> None:
    at = open_app("alice", "progress")
    needed = make_rule().more_needed([1] * 16 + [0] * NOT_YET, 310)
    assert any(f"where it would stop after {needed} more excludes in a row" in t for t in texts(at.caption))
    at.button(key="force_stop").click().run()
    assert any("needs a note" in t for t in texts(at.error))
    with open_store(not_yet) as store:
        assert stops(store) == []
    at.text_area(key="force_note").input("deadline; the last 100 were all off topic").run()
    at.button(key="force_stop").click().run()
    assert not at.exception, at.exception
    with open_store(not_yet) as store:
        [stop] = stops(store)
        assert stop.forced and stop.note == "deadline; the last 100 were all off topic"
        assert stop.records == 294 - NOT_YET
        assert records_left(store) == 0
    assert any("forced stop (the rule did not say stop)" in t for t in texts(at.warning))
    at.button(key="undo_stop").click().run()
    assert "undo_stop_yes" in keys(at)
    at.button(key="undo_stop_yes").click().run()
    assert not at.exception, at.exception
    assert any(f"{294 - NOT_YET} records are open for screening again" in t for t in texts(at.success))
    with open_store(not_yet) as store:
        [stop] = stops(store)
        assert not stop.active and records_left(store) == 294 - NOT_YET
    at.switch_page(f"{PAGES}/screen.py").run()
    assert "screen_stop" not in keys(at) and shown_record(at)


def test_progress_sets_the_rule_and_the_screen_follows(not_yet: Path) -> None:
    at = open_app("alice", "progress")
    at.number_input(key="stop_target").set_value(80).run()
    at.button(key="stop_settings_save").click().run()
    assert any(f"{DEFAULT_RULE}, ≥ 80% recall with 95% confidence" in t for t in texts(at.success))
    with open_store(not_yet) as store:
        assert stop_settings(store).target == pytest.approx(0.8)
    at.switch_page(f"{PAGES}/screen.py").run()
    assert any("recall ≥ 80% with 95% confidence: you can stop" in t for t in texts(at.success))
    assert "screen_stop" in keys(at)


def test_progress_tells_a_plain_reviewer_in_dual_mode_who_stops(not_yet: Path) -> None:
    with open_store(not_yet) as store:
        set_mode(store, "title_abstract", "dual")
    at = open_app("alice", "progress")
    assert any("only an adjudicator" in t for t in texts(at.caption))
    assert not {"force_stop", "undo_stop", "stop_settings_save"} & keys(at)
