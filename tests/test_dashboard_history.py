"""The History page and ``screening.queries.reviewer_decisions``, on real SQLite projects.

A reviewer's maybe can be found again and changed: the page lists the signed-in reviewer's
own current decisions (never anyone else's), filtered by value, stage and a text search,
and a change is a revision written under that reviewer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import decide_on_screen, decisions, demo, demo_db, open_app, shown_record, small  # noqa: F401 - fixtures

from screening.decisions import decide, record_status, set_retrieval, undo
from screening.errors import ConfigError
from screening.queries import reviewer_decision_counts, reviewer_decisions
from screening.reviewers import add_reviewer, set_mode
from screening.store import open_store

CHANGE = "FormSubmitter:history_change_form-Change decision"


def title_of(db: Path, record_id: int) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT title FROM records WHERE id = ?", (record_id,)).fetchone()[0]


def pick_box(at: AppTest):
    """The "Decision to change" box (unkeyed: the page remembers the decision open, see history.py)."""
    [box] = [b for b in at.selectbox if b.label == "Decision to change"]
    return box


def listed(at: AppTest) -> list[int]:
    """Record ids in the History table."""
    return at.dataframe[0].value["record"].tolist()


# -- the library -----------------------------------------------------------------------------------
def test_reviewer_decisions_lists_only_current_decisions_of_that_reviewer(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        decide(store, 1, "maybe", reviewer="alice")
        decide(store, 2, "include", reviewer="alice")
        decide(store, 3, "exclude", reviewer="alice", reason="animal study")
        decide(store, 4, "include", reviewer="bob")
        decide(store, 1, "include", reviewer="alice", revise=True)  # the maybe is revised: not listed
        decide(store, 5, "maybe", reviewer="alice")
        undo(store, reviewer="alice")  # the maybe on 5 is undone: not listed
        set_retrieval(store, 2, True, reviewer="alice")
        decide(store, 2, "exclude", reviewer="alice", stage="full_text", reason="wrong population")

        mine = reviewer_decisions(store, "alice")
        assert [(e.record_id, e.stage, e.value) for e in mine] == [
            (2, "full_text", "exclude"),
            (1, "title_abstract", "include"),
            (3, "title_abstract", "exclude"),
            (2, "title_abstract", "include"),
        ]
        assert mine[0].reason == "Wrong population" and mine[0].kind == "screen"
        assert mine[1].title == title_of(small, 1)
        assert [e.record_id for e in reviewer_decisions(store, "bob")] == [4]
        assert [e.record_id for e in reviewer_decisions(store, "alice", stage="title_abstract", value="include")] == [
            1,
            2,
        ]
        assert [e.stage for e in reviewer_decisions(store, "alice", stage="full_text")] == ["full_text"]
        assert reviewer_decisions(store, "alice", value="maybe") == []
        assert reviewer_decisions(store, "alice", limit=1) == mine[:1]

        word = title_of(small, 3).split()[0]  # text search over title and abstract, case ignored
        found = reviewer_decisions(store, "alice", text=word.upper())
        assert 3 in [e.record_id for e in found]
        assert all(word.lower() in e.title.lower() for e in found if e.record_id == 3)
        assert reviewer_decisions(store, "alice", text="no such words anywhere 100%") == []

        assert reviewer_decision_counts(store, "alice") == {"include": 2, "exclude": 2, "maybe": 0}
        assert reviewer_decision_counts(store, "alice", stage="full_text") == {"include": 0, "exclude": 1, "maybe": 0}


def test_reviewer_decisions_refuses_bad_filters(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        with pytest.raises(ConfigError, match="'undo' is not one of"):
            reviewer_decisions(store, "alice", value="undo")
        with pytest.raises(ConfigError, match="limit"):
            reviewer_decisions(store, "alice", limit=0)
        with pytest.raises(ConfigError):
            reviewer_decisions(store, "alice", stage="abstract")


def test_reviewer_decisions_follows_a_record_into_its_duplicate_group(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        decide(store, 6, "maybe", reviewer="alice")
    with sqlite3.connect(small) as con:  # record 6 turns out to duplicate record 7
        con.execute("UPDATE records SET canonical_id = 7 WHERE id = 6")
    with open_store(small) as store:
        (entry,) = reviewer_decisions(store, "alice")
        assert (entry.record_id, entry.decided_record_id, entry.title) == (7, 6, title_of(small, 7))


# -- the page --------------------------------------------------------------------------------------
def test_history_asks_for_a_reviewer_first(small: Path) -> None:  # noqa: F811
    at = open_app(page="history")
    assert any("Sign in" in i.value for i in at.info)
    assert not at.dataframe


def test_a_maybe_from_screen_is_found_on_history_and_changed_to_include(demo: Path) -> None:  # noqa: F811
    at = open_app("alice")
    maybe = shown_record(at)
    decide_on_screen(at, "maybe")
    other = shown_record(at)
    decide_on_screen(at, "exclude")
    with open_store(demo) as store:
        decide(store, 9, "include", reviewer="bob")  # bob's decision is not alice's history

    at.switch_page("screening/dashboard/pages/history.py").run()
    assert not at.exception, at.exception
    assert sorted(listed(at)) == sorted([maybe, other])
    assert "1 maybe" in at.warning[0].value
    at.button(key="history_show_maybes").click().run()  # the maybe pile, one click away
    assert at.radio(key="history_value").value == "maybe"
    assert listed(at) == [maybe]
    assert pick_box(at).value == f"{maybe}:title_abstract"
    at.radio(key="history_new_value").set_value("include")
    at.button(key=CHANGE).click().run()
    assert not at.exception, at.exception
    title = title_of(demo, maybe)
    success = at.success[0].value
    assert title[:60] in success and "from maybe to include" in success

    with open_store(demo) as store:
        status = record_status(store, maybe)
        assert (status.title_abstract.status, status.title_abstract.value) == ("decided", "include")
        assert reviewer_decision_counts(store, "alice") == {"include": 1, "exclude": 1, "maybe": 0}
    rows = [r for r in decisions(demo) if r[0] == maybe]
    assert [(r[1], r[3]) for r in rows] == [("alice", "maybe"), ("alice", "undo"), ("alice", "include")]
    with sqlite3.connect(demo) as con:  # the new decision names the maybe it revises
        revises, undone = con.execute(
            "SELECT d.revises_id, u.id FROM decisions d JOIN decisions u ON u.undoes_id = d.revises_id "
            "WHERE d.record_id = ? AND d.value = 'include'",
            (maybe,),
        ).fetchone()
    assert revises is not None and undone is not None
    assert not at.dataframe or maybe not in listed(at)  # no maybe left under the maybe filter
    at.radio(key="history_value").set_value("all").run()
    assert sorted(listed(at)) == sorted([maybe, other])
    assert 9 not in listed(at)


def test_history_filters_by_text_and_stage(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        for rid, value in ((1, "include"), (2, "exclude"), (3, "maybe")):
            decide(store, rid, value, reviewer="alice")
        set_retrieval(store, 1, True, reviewer="alice")
        decide(store, 1, "exclude", reviewer="alice", stage="full_text", reason="Wrong population")
    at = open_app("alice", "history")
    assert sorted(listed(at)) == [1, 1, 2, 3]
    at.radio(key="history_stage").set_value("full_text").run()
    assert listed(at) == [1]
    assert at.dataframe[0].value["reason"].tolist() == ["Wrong population"]
    at.radio(key="history_stage").set_value("title_abstract").run()
    assert sorted(listed(at)) == [1, 2, 3]
    word = title_of(small, 2).split()[0]
    at.text_input(key="history_text").input(word).run()
    assert 2 in listed(at) and all(word.lower() in t.lower() for t in at.dataframe[0].value["title"])
    at.text_input(key="history_text").input("nothing matches this").run()
    assert not at.dataframe and "None of your decisions match" in at.info[0].value


def test_a_full_text_exclude_needs_a_reason_then_is_changed(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        decide(store, 1, "include", reviewer="alice")
        set_retrieval(store, 1, True, reviewer="alice")
        decide(store, 1, "include", reviewer="alice", stage="full_text")
    at = open_app("alice", "history")
    at.radio(key="history_stage").set_value("full_text").run()
    at.radio(key="history_new_value").set_value("exclude")
    at.button(key=CHANGE).click().run()
    assert "needs exactly one reason" in at.error[0].value and title_of(small, 1)[:40] in at.error[0].value
    at.radio(key="history_new_value").set_value("exclude")
    at.selectbox(key="history_reason_ft").select("Wrong study design")
    at.button(key=CHANGE).click().run()
    assert "from include to exclude" in at.success[0].value
    with open_store(small) as store:
        ft = record_status(store, 1).full_text
    assert (ft.value, ft.reason) == ("exclude", "Wrong study design")


def test_blind_dual_history_shows_nothing_of_the_other_reviewer(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        set_mode(store, "title_abstract", "dual", blind=True)
        decide(store, 1, "include", reviewer="alice")
        decide(store, 1, "exclude", reviewer="bob", reason="bob's secret reason")
        decide(store, 2, "maybe", reviewer="bob")
    at = open_app("alice", "history")
    assert listed(at) == [1]
    shown = at.dataframe[0].value
    assert shown["decision"].tolist() == ["include"] and shown["reason"].tolist() == [""]
    assert not any("bob" in str(m.value) for m in [*at.markdown, *at.caption, *at.warning])
    at.radio(key="history_value").set_value("maybe").run()
    assert not at.dataframe  # bob's maybe is his own


def test_an_adjudicators_resolution_is_listed_and_changed_as_a_resolution(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        add_reviewer(store, "carol", role="adjudicator")
        set_mode(store, "title_abstract", "dual")
        decide(store, 1, "include", reviewer="alice")
        decide(store, 1, "exclude", reviewer="bob")
        decide(store, 1, "maybe", reviewer="carol", kind="resolution")
        (entry,) = reviewer_decisions(store, "carol")
        assert (entry.record_id, entry.value, entry.kind) == (1, "maybe", "resolution")
        assert [e.value for e in reviewer_decisions(store, "alice")] == ["include"]  # her vote still stands
    at = open_app("carol", "history")
    assert at.dataframe[0].value["decision"].tolist() == ["maybe (resolution)"]
    at.radio(key="history_new_value").set_value("exclude")
    at.button(key=CHANGE).click().run()
    assert "from maybe to exclude" in at.success[0].value
    assert decisions(small)[-2:] == [
        (1, "carol", "title_abstract", "undo", "resolution", None, "undo of decision 3 (maybe) by a revision", 3),
        (1, "carol", "title_abstract", "exclude", "resolution", None, None, None),
    ]
