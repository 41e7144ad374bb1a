"""The Setup page, through Streamlit's AppTest, on a new empty project: everything a review needs before screening."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import PAGES, open_app

from screening.ranking.project import topic_text
from screening.reviewers import get_mode, list_reasons, list_reviewers
from screening.setup import ProjectSetup, read_setup
from screening.store import DB_ENV, init_project, open_store

QUERY = "(ketamine OR esketamine) AND (chronic pain OR fibromyalgia)"
CRITERIA = "Adults with chronic pain given ketamine; any pain outcome."


@pytest.fixture
def new_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project just created: a name, nothing else (no reviewer, query, reason or mode)."""
    path = tmp_path / "new.db"
    init_project(path, name="New review").close()
    monkeypatch.setenv(DB_ENV, str(path))
    return path


def signed_in_on_setup(name: str = "alice") -> AppTest:
    """The app on the new project, ``name`` added and signed in from the sidebar, on the Setup page."""
    at = open_app()
    at.sidebar.text_input(key="new_reviewer").input(name)
    at.sidebar.button(key="add_reviewer").click().run()
    at.switch_page(f"{PAGES}/setup.py").run()
    assert not at.exception, at.exception
    return at


def test_setup_asks_for_a_reviewer_first(new_project: Path) -> None:
    at = open_app(page="setup")
    assert any("Sign in" in i.value for i in at.info)
    assert "setup_name" not in [w.key for w in at.text_input]


def test_setup_page_configures_a_new_project(new_project: Path) -> None:
    at = signed_in_on_setup()
    assert at.text_input(key="setup_name").value == "New review"
    assert at.text_area(key="setup_query").value == ""

    at.text_input(key="setup_name").input("Ketamine for chronic pain")  # form widgets: sent on submit
    at.text_area(key="setup_query").input(QUERY)
    at.text_area(key="setup_criteria").input(CRITERIA)
    at.text_area(key="setup_include").input("ketamine\nfibromyalgia, Ketamine")
    at.text_area(key="setup_exclude").input("rats\nmice")
    at.button(key="FormSubmitter:setup_form-Save").click().run()
    assert not at.exception, at.exception
    assert any("Saved name, query, criteria, keywords" in s.value for s in at.success)
    assert at.text_area(key="setup_include").value == "ketamine\nfibromyalgia"  # drawn again from what was saved

    at.text_input(key="reason_new_full_text").input("Wrong population")
    at.button(key="reason_add_full_text").click().run()
    assert at.text_input(key="reason_new_full_text").value == ""
    assert any(t.value == "1. Wrong population" for t in at.text)

    at.radio(key="mode_full_text").set_value("dual")
    at.checkbox(key="blind_full_text").check()
    at.button(key="FormSubmitter:mode_form_full_text-Save mode").click().run()

    at.text_input(key="setup_reviewer_name").input("carol")
    at.selectbox(key="setup_reviewer_role").select("adjudicator")
    at.button(key="setup_reviewer_add").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    with open_store(new_project) as store:
        assert read_setup(store) == ProjectSetup(
            name="Ketamine for chronic pain",
            query=QUERY,
            criteria=CRITERIA,
            include_keywords=("ketamine", "fibromyalgia"),
            exclude_keywords=("rats", "mice"),
        )
        assert list_reasons(store, "full_text") == ["Wrong population"]
        assert list_reasons(store, "title_abstract") == []
        full_text = get_mode(store, "full_text")
        assert (full_text.mode, full_text.blind) == ("dual", True)
        assert get_mode(store, "title_abstract").mode == "single"
        assert [(r.name, r.role) for r in list_reviewers(store) if r.role != "system"] == [
            ("alice", "reviewer"),
            ("carol", "adjudicator"),
        ]
        assert QUERY in topic_text(store)  # the ranking's cold start reads the new query
        assert "ketamine fibromyalgia" in topic_text(store)
    assert at.sidebar.caption[0].value == "Ketamine for chronic pain"


def test_refused_changes_are_messages_and_write_nothing(new_project: Path) -> None:
    at = signed_in_on_setup()
    at.text_input(key="setup_name").input("  ")
    at.text_area(key="setup_query").input(QUERY)
    at.button(key="FormSubmitter:setup_form-Save").click().run()
    assert any("name: must not be empty" in e.value for e in at.error)
    assert at.text_area(key="setup_query").value == QUERY  # what was typed is kept, to fix

    at.checkbox(key="blind_title_abstract").check()  # blind needs dual
    at.button(key="FormSubmitter:mode_form_title_abstract-Save mode").click().run()
    assert any("blind mode needs dual" in e.value for e in at.error)

    for _ in range(2):
        at.text_input(key="reason_new_full_text").input("Wrong population")
        at.button(key="reason_add_full_text").click().run()
    assert any("already in the full_text list" in e.value for e in at.error)

    at.text_input(key="setup_reviewer_name").input("alice")
    at.button(key="setup_reviewer_add").click().run()
    assert any("already exists" in e.value for e in at.error)
    assert not at.exception, at.exception

    with open_store(new_project) as store:
        assert read_setup(store) == ProjectSetup(name="New review")
        assert get_mode(store, "title_abstract").blind is False
        assert list_reasons(store, "full_text") == ["Wrong population"]


def test_a_change_saved_elsewhere_while_the_form_is_open_is_kept_or_the_clash_named(new_project: Path) -> None:
    at = signed_in_on_setup()
    with open_store(new_project) as store:  # another owner (or the CLI) saves the query meanwhile
        store.set_setting("query", QUERY, actor="bob")
    at.text_area(key="setup_criteria").input(CRITERIA)  # this form still shows the empty query
    at.button(key="FormSubmitter:setup_form-Save").click().run()
    assert any("Saved criteria." in s.value for s in at.success), [s.value for s in at.success]
    with open_store(new_project) as store:
        assert (read_setup(store).query, read_setup(store).criteria) == (QUERY, CRITERIA)  # bob's query kept

    with open_store(new_project) as store:
        store.set_setting("query", "ketamine", actor="bob")
    at.text_area(key="setup_query").input("esketamine")  # the form, drawn after the save, showed QUERY
    at.button(key="FormSubmitter:setup_form-Save").click().run()
    assert any("query changed since this form was drawn" in e.value for e in at.error)
    with open_store(new_project) as store:
        assert read_setup(store).query == "ketamine"
