"""Streamlit dashboard entry point: `streamlit run app.py -- --db PROJECT`.

It only routes (``st.navigation`` of the pages in ``screening/dashboard/pages``) and
draws the widgets every page shares in the sidebar: the project picker and the
reviewer sign-in. Every number and every write goes through ``screening.*``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from screening.dashboard import state
from screening.errors import ConfigError, ScreeningError
from screening.reviewers import add_reviewer, list_reviewers
from screening.store import init_project

PAGES = Path(__file__).resolve().parent / "screening" / "dashboard" / "pages"


def on_create_project() -> None:
    """Create a new project at the path or URL typed, then open it."""
    db = st.session_state.get("new_project_db", "").strip()
    name = st.session_state.get("new_project_name", "").strip()
    try:
        if not db or not name:
            raise ConfigError("new project: give both its file path (or database URL) and its name")
        init_project(db, name=name, actor=st.session_state.get(state.REVIEWER_KEY) or "dashboard").close()
    except ScreeningError as e:
        st.session_state["project_error"] = str(e)
        return
    st.session_state[state.DB_KEY] = db


def project_picker() -> None:
    """Open any project file or database URL, or create one; the default is --db, $SCREENING_DB or the demo.

    The open project is kept in the URL (``?project=``), so a reload, a bookmark or a shared
    link opens the same project (the page is in the URL's path already).
    """
    if state.DB_KEY not in st.session_state:
        st.session_state[state.DB_KEY] = state.db_from_url(st.query_params.to_dict()) or state.default_db()
    db = st.sidebar.text_input("Project (file path or database URL)", key=state.DB_KEY).strip()
    state.keep_in_url(st.query_params, state.PROJECT_PARAM, db if db != state.default_db() else None)
    with st.sidebar.expander("New project"):
        st.text_input("File path or database URL", key="new_project_db", placeholder="review.db")
        st.text_input("Review name", key="new_project_name")
        st.button("Create and open", key="create_project", on_click=on_create_project)
    if error := st.session_state.pop("project_error", None):
        st.sidebar.error(error)
    try:
        state.ensure_demo(db)
        store = state.project(db)
    except ScreeningError as e:
        st.sidebar.error(str(e))
        st.stop()
    st.sidebar.caption(store.get_setting("name") or db)


def on_add_reviewer() -> None:
    name = st.session_state.get("new_reviewer", "").strip()
    try:
        add_reviewer(state.current_store(), name, actor="dashboard")
    except ScreeningError as e:
        st.session_state["reviewer_error"] = str(e)
        return
    st.session_state[state.REVIEWER_KEY] = name
    st.session_state["new_reviewer"] = ""


def reviewer_picker() -> None:
    """Sign in as an existing reviewer, or add one; decisions are recorded only as that reviewer."""
    names = [r.name for r in list_reviewers(state.current_store()) if r.role != "system"]
    if st.session_state.get(state.REVIEWER_KEY) not in names:
        from_url = st.query_params.get(state.REVIEWER_PARAM)
        st.session_state[state.REVIEWER_KEY] = from_url if from_url in names else None
    st.sidebar.selectbox("Signed in as", names, key=state.REVIEWER_KEY, placeholder="Pick your name")
    state.keep_in_url(st.query_params, state.REVIEWER_PARAM, st.session_state.get(state.REVIEWER_KEY))
    with st.sidebar.expander("New reviewer", expanded=not names):
        st.text_input("Name", key="new_reviewer")
        st.button("Add and sign in", key="add_reviewer", on_click=on_add_reviewer)
    if error := st.session_state.pop("reviewer_error", None):
        st.sidebar.error(error)


st.set_page_config(page_title="screening", layout="wide")
project_picker()
reviewer_picker()
pages = {
    "Review": [
        st.Page(PAGES / "screen.py", title="Screen", icon=":material/task_alt:", default=True),
        st.Page(PAGES / "history.py", title="History", icon=":material/history:"),
        st.Page(PAGES / "progress.py", title="Progress", icon=":material/monitoring:"),
        st.Page(PAGES / "conflicts.py", title="Conflicts", icon=":material/call_split:"),
        st.Page(PAGES / "fulltext.py", title="Full text", icon=":material/description:"),
    ],
    "Project": [
        st.Page(PAGES / "setup.py", title="Setup", icon=":material/tune:"),
        st.Page(PAGES / "search.py", title="Search & import", icon=":material/search:"),
        st.Page(PAGES / "prisma.py", title="PRISMA", icon=":material/account_tree:"),
        st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
    ],
}
page = st.navigation(pages)
try:
    page.run()
except ScreeningError as e:  # library errors are messages at the edge, never tracebacks
    st.error(str(e))
