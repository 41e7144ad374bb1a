"""screening.progress: what a reviewer screens next and the progress numbers, on a real small project."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from screening.decisions import decide, resolve, undo
from screening.errors import DecisionError
from screening.ingest import import_file
from screening.progress import (
    CurvePoint,
    DayCount,
    decisions_over_time,
    full_text_queue,
    needs_vote,
    next_for_reviewer,
    recall_curve,
    records_left,
    screened_count,
    voted_by,
)
from screening.reviewers import add_reviewer, set_mode
from screening.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dashboard"
DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def project(store: Store) -> Store:
    import_file(store, FIXTURES / "pain_small.csv", source_name="Citation searching")
    for name in ("alice", "bob", "carol"):
        add_reviewer(store, name)
    return store


def test_single_mode_a_decided_or_maybe_record_needs_nobody(project: Store) -> None:
    decide(project, 1, "include", reviewer="alice")
    decide(project, 2, "maybe", reviewer="bob")
    assert not needs_vote(project, 1, reviewer="bob") and not needs_vote(project, 2, reviewer="alice")
    assert needs_vote(project, 3, reviewer="alice")
    assert next_for_reviewer(project, [1, 2, 3, 4], reviewer="bob") == 3
    assert records_left(project) == 6 and records_left(project, reviewer="alice") == 6
    undo(project, reviewer="alice")
    assert needs_vote(project, 1, reviewer="alice") and voted_by(project, "alice") == set()


def test_dual_mode_awaiting_records_go_to_the_other_reviewer_only(project: Store) -> None:
    set_mode(project, "title_abstract", "dual", blind=True)
    decide(project, 1, "include", reviewer="alice")
    assert not needs_vote(project, 1, reviewer="alice")
    assert needs_vote(project, 1, reviewer="bob")
    assert next_for_reviewer(project, [1, 2], reviewer="alice") == 2
    assert next_for_reviewer(project, [1, 2], reviewer="bob") == 1
    assert records_left(project) == 8 and records_left(project, reviewer="alice") == 7
    decide(project, 1, "exclude", reviewer="bob")  # a conflict: nobody screens it any more, carol resolves
    assert not needs_vote(project, 1, reviewer="carol")
    assert records_left(project) == 7
    resolve(project, 1, "include", reviewer="carol", stage="title_abstract")
    assert screened_count(project, reviewer="alice") == 1 and screened_count(project, reviewer="carol") == 0


def test_records_left_with_the_callers_live_ids_agrees(project: Store) -> None:
    decide(project, 4, "exclude", reviewer="alice")
    assert records_left(project, live_ids=set(range(1, 9))) == records_left(project) == 7


def test_missing_record_needs_nobody_and_unknown_reviewer_is_an_error(project: Store) -> None:
    assert not needs_vote(project, 999, reviewer="alice")
    with pytest.raises(DecisionError, match="no reviewer named 'nobody'"):
        needs_vote(project, 1, reviewer="nobody")
    with pytest.raises(DecisionError, match="nobody"):
        records_left(project, reviewer="nobody")


def test_decisions_over_time_and_recall_curve_follow_decision_order(project: Store) -> None:
    decide(project, 3, "exclude", reviewer="alice", now=DAY1)
    decide(project, 5, "include", reviewer="alice", now=DAY1)
    decide(project, 6, "include", reviewer="bob", now=DAY2)
    decide(project, 6, "exclude", reviewer="alice", revise=True, now=DAY2)  # single mode: a revision replaces it
    decide(project, 7, "include", reviewer="bob", now=DAY2)
    undo(project, reviewer="bob", now=DAY2)  # the include on 7 is gone
    assert decisions_over_time(project) == [
        DayCount("2026-11-02", "alice", "exclude", 1),
        DayCount("2026-11-02", "alice", "include", 1),
        DayCount("2026-11-03", "alice", "exclude", 1),
    ]
    assert recall_curve(project) == [CurvePoint(0, 0), CurvePoint(1, 0), CurvePoint(2, 1), CurvePoint(3, 1)]


def test_full_text_queue_lists_reports_sought(project: Store) -> None:
    decide(project, 2, "include", reviewer="alice")
    decide(project, 4, "exclude", reviewer="alice")
    queue = full_text_queue(project)
    assert [(q.record_id, q.retrieval, q.status) for q in queue] == [(2, None, "unscreened")]
    assert queue[0].title
