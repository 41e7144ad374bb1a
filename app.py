"""Streamlit dashboard entry point: `streamlit run app.py -- --db PROJECT`.

It only routes (``st.navigation`` of the pages in ``screening/dashboard/pages``) and
draws the widgets every page shares in the sidebar: the project picker and the
reviewer sign-in. Every number and every write goes through ``screening.*``.

With ``[auth]`` in ``.streamlit/secrets.toml`` it is a team server (docs/deployment.md):
a signed-out visitor gets only the sign-in page, the project is the server's ``--db``,
and the reviewer is the identity the provider signed in (``state.identify``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from screening.access import OWNER, Identity
from screening.dashboard import state
from screening.errors import AccessError, ConfigError, ScreeningError
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
        if state.missing_project_file(db):
            st.sidebar.caption("Or create it here, with New project above.")
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


def sign_in_page() -> None:
    """All a signed-out visitor sees on a team server: no project name, count, record or control."""
    st.title("Sign in")
    st.write("This screening server is for the reviewers of its project. Sign in with your institution's account.")
    st.button("Sign in", key="sign_in", type="primary", on_click=st.login)
    st.stop()


def on_sign_out() -> None:
    state.forget_identity()
    st.logout()


def refused_page(error: AccessError) -> None:
    """A signed-in identity that is not on the project's list: told so (the refusal is in the audit log)."""
    st.title("Not on this project")
    st.error(str(error))
    st.caption("The project's owner adds reviewers with 'screening reviewers add NAME --email E'.")
    st.button("Sign out", key="sign_out_refused", on_click=on_sign_out)
    st.stop()


def team_sidebar() -> Identity:
    """A team server (``[auth]`` configured): the server's own project, and the signed-in identity as reviewer.

    The project is the one ``--db`` names (never one typed in a page), and "Signed in as" is
    the identity provider's user, mapped to a reviewer by email or subject.
    """
    if not st.user.is_logged_in:
        state.forget_identity()
        sign_in_page()
    db = state.default_db()
    st.session_state[state.DB_KEY] = db
    try:
        identity = state.identify(state.project(db))
    except AccessError as e:
        refused_page(e)
    except ScreeningError as e:
        st.error(str(e))
        st.stop()
    st.sidebar.caption(state.current_store().get_setting("name") or "screening")
    st.sidebar.markdown(f"Signed in as **{identity.name}** ({identity.role})")
    st.sidebar.button("Sign out", key="sign_out", on_click=on_sign_out)
    return identity


def owners_only(title: str):
    """The page a non-owner gets at an owner's page's address: a refusal, not the page."""

    def refused() -> None:
        st.header(title)
        st.error(f"Only the project's owners open {title}: ask one of them for what you need.")

    refused.__name__ = f"refused_{title.lower().replace(' ', '_').replace('&', 'and')}"
    return refused


def navigation(owner: bool) -> dict[str, list]:
    """The pages; for a signed-in non-owner, Setup and Search & import are refusals (the library refuses too)."""

    def project_page(file: str, title: str, icon: str, url_path: str) -> st.Page:
        if owner:
            return st.Page(PAGES / file, title=title, icon=icon, url_path=url_path)
        return st.Page(owners_only(title), title=title, icon=icon, url_path=url_path)

    return {
        "Review": [
            st.Page(PAGES / "screen.py", title="Screen", icon=":material/task_alt:", default=True),
            st.Page(PAGES / "history.py", title="History", icon=":material/history:"),
            st.Page(PAGES / "progress.py", title="Progress", icon=":material/monitoring:"),
            st.Page(PAGES / "conflicts.py", title="Conflicts", icon=":material/call_split:"),
            st.Page(PAGES / "fulltext.py", title="Full text", icon=":material/description:"),
        ],
        "Project": [
            project_page("setup.py", "Setup", ":material/tune:", "setup"),
            project_page("search.py", "Search & import", ":material/search:", "search"),
            st.Page(PAGES / "prisma.py", title="PRISMA", icon=":material/account_tree:"),
            st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
        ],
    }


st.set_page_config(page_title="screening", layout="wide")
if state.auth_configured():
    is_owner = team_sidebar().role == OWNER
else:
    project_picker()
    reviewer_picker()
    is_owner = True
page = st.navigation(navigation(is_owner))
try:
    page.run()
except ScreeningError as e:  # library errors are messages at the edge, never tracebacks
    st.error(str(e))
