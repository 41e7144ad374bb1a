"""Screening decisions on a real project: stages, modes, undo, conflicts, blind mode, audit, append-only.

Records are 16 real citations of the Cohen 2006 Estrogens review (6 included by the
published review, 10 excluded), in tests/fixtures/prisma/estrogens_16.csv.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DatabaseError

from screening import decisions as d
from screening.agreement import agreement, cohen_kappa
from screening.errors import AlreadyDecided, ConfigError, DecisionError, RecordNotFound
from screening.ingest import add_citations, new_source
from screening.reviewers import add_reason, add_reviewer, get_mode, list_reasons, list_reviewers, set_mode
from screening.schema import AuditEvent, Decision, Record
from screening.sources import Citation
from screening.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "prisma" / "estrogens_16.csv"


def _citations(path: Path, *, with_labels: bool = False) -> tuple[list[Citation], list[int]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = [int(r["label_included"]) for r in rows]
    citations = [
        Citation(
            title=r["title"],
            abstract=r["abstract"],
            pmid=r["pmid"] or None,
            doi=r["doi"] or None,
            source_record_id=r["record_id"],
            label=int(r["label_included"]) if with_labels else None,
        )
        for r in rows
    ]
    return citations, labels


@pytest.fixture
def project(store: Store) -> tuple[Store, list[int], list[int]]:
    """16 real records from one database, three reviewers, two full-text reasons."""
    citations, labels = _citations(FIXTURE)
    with store.begin() as s:
        source = new_source(s, name="PubMed")
        ids = add_citations(s, source, citations).record_ids
    add_reviewer(store, "alice")
    add_reviewer(store, "bob")
    add_reviewer(store, "carol", role="adjudicator")
    add_reason(store, "Wrong population")
    add_reason(store, "Wrong study design")
    return store, ids, labels


def _decision_rows(store: Store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count(Decision.id))) or 0


def _labels(store: Store, stage: str = "title_abstract") -> dict[int, str]:
    with store.read() as s:
        return d.current_labels(s, stage)


def _make_duplicate(store: Store, duplicate: int, canonical: int) -> None:
    """What deduplication does: point a record at its group's canonical record."""
    with store.begin() as s:
        s.execute(update(Record).where(Record.id == duplicate).values(canonical_id=canonical))


# -- single screening, undo, history -----------------------------------------------
def test_single_mode_latest_decision_is_final_and_maybe_is_undecided(project) -> None:
    store, ids, _ = project
    d.decide(store, ids[0], "include", reviewer="alice")
    d.decide(store, ids[1], "maybe", reviewer="alice")
    d.decide(store, ids[2], "exclude", reviewer="alice", reason="not about estrogen", note="animal study")
    with pytest.raises(AlreadyDecided, match="already decided at title_abstract: exclude by alice") as refused:
        d.decide(store, ids[2], "include", reviewer="bob")  # single mode: one decision per record
    assert refused.value.decided_by == ("alice",)
    d.decide(store, ids[2], "include", reviewer="bob", revise=True)  # a revision replaces it
    assert _labels(store) == {ids[0]: "include", ids[1]: "maybe", ids[2]: "include"}
    status = d.record_status(store, ids[1])
    assert status.title_abstract.status == d.MAYBE and status.title_abstract.final is None


def test_undo_cancels_the_reviewers_latest_decision_and_walks_back(project) -> None:
    store, ids, _ = project
    first = d.decide(store, ids[0], "include", reviewer="alice")
    second = d.decide(store, ids[0], "exclude", reviewer="alice", revise=True)
    assert second.revises_id == first.id
    assert _labels(store)[ids[0]] == "exclude"
    d.decide(store, ids[1], "include", reviewer="bob")
    undone = d.undo(store, reviewer="alice")
    assert (undone.value, undone.undoes_id, undone.record_id) == ("undo", second.id, ids[0])
    assert _labels(store)[ids[0]] == "include"  # undoing the revision brings the first decision back
    d.undo(store, reviewer="alice")
    assert ids[0] not in _labels(store)
    assert _labels(store) == {ids[1]: "include"}  # bob's decision untouched
    with pytest.raises(DecisionError, match="'alice' has no decision left to undo"):
        d.undo(store, reviewer="alice")
    history = d.history(store, ids[0])
    # include; the revision (undo of it + exclude); undo of the exclude + the include restored; undo of that
    assert [e.value for e in history] == ["include", "undo", "exclude", "undo", "include", "undo"]
    assert history[0].id == first.id and history[1].undoes_id == first.id and history[2].id == second.id
    assert history[1].revises_id == first.id  # the revision's undo, marked as such
    assert history[2].undone_by == history[3].id and history[4].undone_by == history[5].id
    assert history[4].note == f"decision {first.id} restored: the revision that replaced it was undone"


def test_undo_can_be_limited_to_a_stage(project) -> None:
    store, ids, _ = project
    d.decide(store, ids[0], "include", reviewer="alice")
    d.set_retrieval(store, ids[0], True, reviewer="alice")
    d.decide(store, ids[1], "exclude", reviewer="alice")
    result = d.undo(store, reviewer="alice", stage="full_text")
    assert result.stage == "full_text" and d.record_status(store, ids[0]).retrieval is None
    assert _labels(store) == {ids[0]: "include", ids[1]: "exclude"}


def test_decisions_are_append_only_in_the_database(project) -> None:
    store, ids, _ = project
    result = d.decide(store, ids[0], "include", reviewer="alice")
    with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
        s.execute(update(Decision).where(Decision.id == result.id).values(value="exclude"))
    with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
        s.execute(delete(Decision).where(Decision.id == result.id))
    with pytest.raises(DatabaseError, match="append-only"), store.begin() as s:
        row = s.get(Decision, result.id)
        row.value = "exclude"
    assert [e.value for e in d.history(store, ids[0])] == ["include"]


def test_every_decision_writes_an_audit_event(project) -> None:
    store, ids, _ = project
    result = d.decide(store, ids[3], "exclude", reviewer="bob", reason="review article")
    d.undo(store, reviewer="bob")
    with store.read() as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.detail).order_by(AuditEvent.id)).all()
    decide_event, undo_event = events[-2], events[-1]
    assert decide_event.action == "decide" and decide_event.actor == "bob"
    assert decide_event.detail["decision_id"] == result.id and decide_event.detail["reason"] == "review article"
    assert undo_event.action == "undo" and undo_event.detail["undoes_id"] == result.id


def test_bad_input_is_refused_and_writes_nothing(project) -> None:
    store, ids, _ = project
    before = _decision_rows(store)
    with pytest.raises(DecisionError, match=r"no reviewer named 'mallory'.*registered: alice, bob, carol"):
        d.decide(store, ids[0], "include", reviewer="mallory")
    with pytest.raises(DecisionError, match="'yes' is not one of include, exclude, maybe"):
        d.decide(store, ids[0], "yes", reviewer="alice")
    with pytest.raises(ConfigError, match="--stage: 'abstract'"):
        d.decide(store, ids[0], "include", reviewer="alice", stage="abstract")
    with pytest.raises(RecordNotFound, match="no record with id 99999"):
        d.decide(store, 99999, "include", reviewer="alice")
    assert _decision_rows(store) == before


# -- duplicates ------------------------------------------------------------------------
def test_a_decision_on_a_duplicate_applies_to_its_canonical_record(project) -> None:
    store, ids, _ = project
    _make_duplicate(store, ids[5], ids[4])
    result = d.decide(store, ids[5], "include", reviewer="alice")
    assert result.redirected and (result.record_id, result.requested_record_id) == (ids[4], ids[5])
    assert _labels(store) == {ids[4]: "include"}
    status = d.record_status(store, ids[5])
    assert status.record_id == ids[4] and status.duplicate_ids == [ids[5]]
    assert [e.record_id for e in d.history(store, ids[5])] == [ids[4]]


def test_prior_labels_of_duplicates_count_for_the_group(store: Store) -> None:
    citations, labels = _citations(FIXTURE, with_labels=True)
    with store.begin() as s:
        ids = add_citations(s, new_source(s, name="PubMed"), citations).record_ids
    included = [i for i, label in zip(ids, labels, strict=True) if label]
    _make_duplicate(store, included[1], included[0])
    result = _labels(store)
    assert included[1] not in result and result[included[0]] == "include"
    assert sorted(v for v in result.values()) == ["exclude"] * 10 + ["include"] * 5
    # the imported label is a decision: a reviewer changes it with a revision, never by accident
    add_reviewer(store, "alice")
    with pytest.raises(AlreadyDecided, match="include by import \\(imported label\\)"):
        d.decide(store, included[1], "exclude", reviewer="alice")  # through the duplicate, to the group
    d.decide(store, included[1], "exclude", reviewer="alice", revise=True)
    assert _labels(store)[included[0]] == "exclude"


# -- dual screening, blind mode, conflicts, resolution ------------------------------------
def test_dual_mode_needs_two_agreeing_reviewers(project) -> None:
    store, ids, _ = project
    set_mode(store, "title_abstract", "dual")
    d.decide(store, ids[0], "include", reviewer="alice")
    assert _labels(store) == {}
    assert d.record_status(store, ids[0]).title_abstract.status == d.AWAITING
    d.decide(store, ids[0], "include", reviewer="bob")
    assert _labels(store) == {ids[0]: "include"}
    # the record takes no third vote, and no second vote from the same reviewer unless revised
    with pytest.raises(AlreadyDecided, match="two votes dual screening needs"):
        d.decide(store, ids[0], "exclude", reviewer="carol")
    with pytest.raises(AlreadyDecided, match="you \\(bob\\) already decided 'include'"):
        d.decide(store, ids[0], "exclude", reviewer="bob")
    with pytest.raises(AlreadyDecided, match="two votes"):
        d.decide(store, ids[0], "exclude", reviewer="carol", revise=True)  # not carol's vote to change
    # a change of mind by one of them turns agreement into a conflict
    d.decide(store, ids[0], "exclude", reviewer="bob", revise=True)
    assert _labels(store) == {}
    assert [c.record_id for c in d.conflicts(store, "title_abstract")] == [ids[0]]


def test_conflicts_are_listed_and_resolved_by_a_third_reviewer(project) -> None:
    store, ids, labels = project
    set_mode(store, "title_abstract", "dual")
    for rid, label in zip(ids[:6], labels[:6], strict=True):
        value = "include" if label else "exclude"
        d.decide(store, rid, value, reviewer="alice")
        d.decide(store, rid, value if rid != ids[2] else "maybe", reviewer="bob")
    found = d.conflicts(store, "title_abstract")
    assert [c.record_id for c in found] == [ids[2]]
    expected = "include" if labels[2] else "exclude"
    assert found[0].votes == {"alice": (expected, None), "bob": ("maybe", None)}
    with pytest.raises(DecisionError, match="'alice' already screened record"):
        d.resolve(store, ids[2], "include", reviewer="alice", stage="title_abstract")
    with pytest.raises(DecisionError, match=f"record {ids[0]} has no conflict to resolve"):
        d.resolve(store, ids[0], "include", reviewer="carol", stage="title_abstract")
    result = d.resolve(store, ids[2], expected, reviewer="carol", stage="title_abstract", note="read the methods")
    assert result.kind == "resolution"
    assert d.conflicts(store, "title_abstract") == []
    assert _labels(store)[ids[2]] == expected
    assert d.record_status(store, ids[2]).title_abstract.kind == "resolution"
    assert [e.kind for e in d.history(store, ids[2])] == ["screen", "screen", "resolution"]


def test_blind_mode_hides_the_other_reviewers_decision_until_both_are_in(project) -> None:
    store, ids, _ = project
    set_mode(store, "title_abstract", "dual", blind=True)
    assert get_mode(store, "title_abstract").blind
    d.decide(store, ids[0], "include", reviewer="alice")
    assert [e.reviewer for e in d.visible_decisions(store, ids[0], viewer="alice")] == ["alice"]
    assert d.visible_decisions(store, ids[0], viewer="bob") == []
    d.decide(store, ids[0], "exclude", reviewer="bob")
    for viewer in ("alice", "bob", "carol"):
        seen = d.visible_decisions(store, ids[0], viewer=viewer)
        assert [(e.reviewer, e.value) for e in seen] == [("alice", "include"), ("bob", "exclude")]


def test_open_dual_mode_shows_everything(project) -> None:
    store, ids, _ = project
    set_mode(store, "title_abstract", "dual", blind=False)
    d.decide(store, ids[0], "include", reviewer="alice")
    assert [e.reviewer for e in d.visible_decisions(store, ids[0], viewer="bob")] == ["alice"]


def test_mode_and_setup_validation(project) -> None:
    store, _, _ = project
    with pytest.raises(ConfigError, match="blind mode needs dual"):
        set_mode(store, "title_abstract", "single", blind=True)
    with pytest.raises(ConfigError, match="'triple' is not one of single, dual"):
        set_mode(store, "full_text", "triple")
    with pytest.raises(ConfigError, match="reviewer 'alice' already exists"):
        add_reviewer(store, "alice")
    with pytest.raises(ConfigError, match="already in the full_text list"):
        add_reason(store, "wrong  POPULATION")
    assert [r.name for r in list_reviewers(store)] == ["alice", "bob", "carol"]
    assert list_reasons(store, "full_text") == ["Wrong population", "Wrong study design"]
    assert get_mode(store, "full_text").mode == "single"


# -- full text ------------------------------------------------------------------------------
def test_full_text_only_for_sought_and_retrieved_reports_with_one_listed_reason(project) -> None:
    store, ids, _ = project
    d.decide(store, ids[0], "exclude", reviewer="alice")
    d.decide(store, ids[1], "include", reviewer="alice")
    with pytest.raises(DecisionError, match=f"record {ids[0]} is not a report sought.*'exclude'"):
        d.set_retrieval(store, ids[0], True, reviewer="alice")
    with pytest.raises(DecisionError, match="must be retrieved before a full-text decision"):
        d.decide(store, ids[1], "include", reviewer="alice", stage="full_text")
    d.set_retrieval(store, ids[1], True, reviewer="alice")
    with pytest.raises(DecisionError, match=r"needs exactly one reason.*'Wrong population'; 'Wrong study design'"):
        d.decide(store, ids[1], "exclude", reviewer="alice", stage="full_text")
    with pytest.raises(DecisionError, match="'Wrong dose' is not a full_text exclusion reason; allowed:"):
        d.decide(store, ids[1], "exclude", reviewer="alice", stage="full_text", reason="Wrong dose")
    with pytest.raises(DecisionError, match="takes no exclusion reason"):
        d.decide(store, ids[1], "include", reviewer="alice", stage="full_text", reason="Wrong population")
    result = d.decide(store, ids[1], "exclude", reviewer="alice", stage="full_text", reason="wrong study DESIGN")
    assert result.reason == "Wrong study design"  # stored as configured
    assert _labels(store, "full_text") == {ids[1]: "exclude"}
    assert d.record_status(store, ids[1]).full_text.reason == "Wrong study design"


def test_full_text_not_retrieved_blocks_assessment(project) -> None:
    store, ids, _ = project
    d.decide(store, ids[0], "include", reviewer="alice")
    d.set_retrieval(store, ids[0], False, reviewer="alice")
    assert d.record_status(store, ids[0]).retrieval == "not_retrieved"
    with pytest.raises(DecisionError, match="must be retrieved"):
        d.decide(store, ids[0], "include", reviewer="alice", stage="full_text")


def test_dual_full_text_must_agree_on_the_reason(project) -> None:
    store, ids, _ = project
    set_mode(store, "full_text", "dual")
    d.decide(store, ids[0], "include", reviewer="alice")
    d.set_retrieval(store, ids[0], True, reviewer="alice")
    d.decide(store, ids[0], "exclude", reviewer="alice", stage="full_text", reason="Wrong population")
    d.decide(store, ids[0], "exclude", reviewer="bob", stage="full_text", reason="Wrong study design")
    assert [c.record_id for c in d.conflicts(store, "full_text")] == [ids[0]]
    with pytest.raises(DecisionError, match="needs exactly one reason"):
        d.resolve(store, ids[0], "exclude", reviewer="carol", stage="full_text")
    d.resolve(store, ids[0], "exclude", reviewer="carol", stage="full_text", reason="Wrong population")
    assert d.record_status(store, ids[0]).full_text.reason == "Wrong population"


# -- agreement --------------------------------------------------------------------------------
def test_kappa_matches_scikit_learn(project) -> None:
    from sklearn.metrics import cohen_kappa_score

    store, ids, labels = project
    set_mode(store, "title_abstract", "dual")
    alice = ["include" if label else "exclude" for label in labels]
    # bob disagrees on three real records and is unsure about one
    bob = list(alice)
    for i in (1, 4, 9):
        bob[i] = "exclude" if bob[i] == "include" else "include"
    bob[12] = "maybe"
    for rid, a, b in zip(ids, alice, bob, strict=True):
        d.decide(store, rid, a, reviewer="alice")
        d.decide(store, rid, b, reviewer="bob")
    (pair,) = agreement(store, "title_abstract")
    kept = [(a, b) for a, b in zip(alice, bob, strict=True) if b != "maybe"]
    assert (pair.reviewer_a, pair.reviewer_b, pair.n, pair.maybe) == ("alice", "bob", 15, 1)
    assert pair.agree == 12 and pair.percent == pytest.approx(80.0)
    expected = cohen_kappa_score([a for a, _ in kept], [b for _, b in kept])
    assert pair.kappa == pytest.approx(expected)
    assert cohen_kappa([("include", "include")] * 3) is None  # undefined: chance agreement is 1
