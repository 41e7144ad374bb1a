"""The open project, the page and the reviewer survive a reload: they are in the URL (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import APP, PAGES, TIMEOUT, demo, demo_db, small  # noqa: F401 - fixtures

from screening.dashboard.state import keep_in_url
from screening.store import DB_ENV


def _load(query: dict[str, str]) -> AppTest:
    """A fresh browser session (a reload, or a bookmark opened) on the given URL query."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_reload_opens_the_same_project_and_reviewer(small: Path, demo: Path) -> None:  # noqa: F811
    # $SCREENING_DB (the server's default) is the demo: the small project is one the reviewer opened
    at = _load({})
    at.sidebar.text_input(key="db").set_value(str(small)).run()
    at.sidebar.selectbox(key="reviewer").select("alice").run()
    assert at.query_params.get("project") == str(small) and at.query_params.get("reviewer") == "alice"
    again = _load(dict(at.query_params))  # what the browser sends on reload
    assert next(c.value for c in again.sidebar.caption) == "Small review"
    assert again.sidebar.selectbox(key="reviewer").value == "alice"
    default = _load({})
    assert "project" not in default.query_params  # the default project keeps the URL short


def test_an_unknown_reviewer_in_the_url_signs_no_one_in(small: Path) -> None:  # noqa: F811
    at = _load({"reviewer": "mallory"})
    assert at.sidebar.selectbox(key="reviewer").value is None and "reviewer" not in at.query_params


def test_a_database_password_never_goes_into_the_address_bar() -> None:
    params: dict[str, str] = {}
    keep_in_url(params, "project", "postgresql+psycopg2://alice:secret@db.lab/review")
    assert params == {}
    keep_in_url(params, "project", "postgresql+psycopg2://db.lab/review")
    assert params == {"project": "postgresql+psycopg2://db.lab/review"}
    keep_in_url(params, "project", None)
    assert params == {}


@pytest.mark.parametrize("page", ["progress", "prisma"])
def test_a_page_opened_from_the_url_path_keeps_the_project(small: Path, page: str, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv(DB_ENV)
    at = _load({"project": str(small)})
    at.switch_page(f"{PAGES}/{page}.py").run()
    assert not at.exception and next(c.value for c in at.sidebar.caption) == "Small review"
    assert at.query_params.get("project") == str(small)
