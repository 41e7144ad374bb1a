"""Setup: what the review is about and how it is screened, for a new project or a running one.

The topic (name, query, inclusion criteria, highlight keywords) is saved by
``screening.setup.save_setup``; exclusion reasons, screening modes and reviewers by
``screening.reviewers``: the same calls as ``screening configure``, ``screening reasons add``,
``screening mode set`` and ``screening reviewers add``. Every write runs in a widget's
callback, before the page is drawn again, so the page shows what the database now holds;
a refused change is shown as the library's message. Without sign-in anyone may change the
setup; on a team server (``[auth]``, docs/deployment.md) only owners open this page, and the
library refuses anyone else's change as well.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from screening.access import PERSON_ROLES
from screening.dashboard import state
from screening.errors import ScreeningError
from screening.ranking.project import TOPIC_SETTINGS
from screening.reviewers import MODES, add_reason, add_reviewer, get_mode, list_reasons, list_reviewers, set_mode
from screening.schema import STAGES
from screening.setup import ProjectSetup, clean_keyword_list, read_setup, save_setup

BASE_KEY = "setup_base"  # the topic as the form first showed it: an edit is what differs from it
STAGE_NAMES = {"title_abstract": "Title and abstract", "full_text": "Full text"}
PEOPLE_ROLES = sorted(PERSON_ROLES, key=("reviewer", "adjudicator", "owner").index)  # the default first

store = state.current_store()
reviewer = state.current_reviewer()


def run(message_key: str, action: Callable[[], str]) -> None:
    """Do one library call from a callback; keep its outcome (or its error) for the section to show."""
    try:
        st.session_state[message_key] = ("success", action())
    except ScreeningError as e:
        st.session_state[message_key] = ("error", str(e))


def show_message(message_key: str) -> None:
    if found := st.session_state.pop(message_key, None):
        kind, text = found
        (st.success if kind == "success" else st.error)(text)


# -- the topic ----------------------------------------------------------------------------------------
def on_save_topic() -> None:
    def save() -> str:
        changed = save_setup(
            store,
            ProjectSetup(
                name=st.session_state["setup_name"],
                query=st.session_state["setup_query"],
                criteria=st.session_state["setup_criteria"],
                include_keywords=clean_keyword_list(st.session_state["setup_include"]),
                exclude_keywords=clean_keyword_list(st.session_state["setup_exclude"]),
            ),
            base=st.session_state.get(BASE_KEY),
            actor=reviewer,
        )
        if set(changed) & set(TOPIC_SETTINGS):
            state.shared_ranker.clear()  # the warm ranker's cold start was built from the old topic
        for key in ("setup_name", "setup_query", "setup_criteria", "setup_include", "setup_exclude"):
            del st.session_state[key]  # drawn again from what was saved (cleaned)
        return f"Saved {', '.join(changed)}." if changed else "Nothing changed."

    run("setup_topic_message", save)


st.header("Setup")
st.caption(
    "What the review is about and how it is screened. Every change is audited; saving writes only what you "
    "changed, so what another owner saved meanwhile is kept."
)
topic = read_setup(store)
if "setup_name" not in st.session_state:  # the form is drawn afresh: what it shows is what an edit starts from
    st.session_state[BASE_KEY] = topic
st.subheader("Topic")
show_message("setup_topic_message")
with st.form("setup_form"):
    st.text_input("Review name", topic.name, key="setup_name")
    st.text_area("Search query", topic.query, key="setup_query", help="Also ranks the records before any decision.")
    st.text_area("Inclusion criteria", topic.criteria, key="setup_criteria", help="Also used by the first ranking.")
    left, right = st.columns(2)
    left.text_area(
        "Include keywords (one per line)",
        "\n".join(topic.include_keywords),
        key="setup_include",
        help="Highlighted in green on the Screen page; they also describe the topic for the first ranking.",
    )
    right.text_area(
        "Exclude keywords (one per line)",
        "\n".join(topic.exclude_keywords),
        key="setup_exclude",
        help="Highlighted in red on the Screen page.",
    )
    st.form_submit_button("Save", on_click=on_save_topic)


# -- exclusion reasons and screening modes, per stage --------------------------------------------------
def on_add_reason(stage: str) -> None:
    def add() -> str:
        text = st.session_state.get(f"reason_new_{stage}", "")
        position = add_reason(store, text, stage=stage, actor=reviewer)
        st.session_state[f"reason_new_{stage}"] = ""
        return f"Added reason {position}."

    run(f"reason_message_{stage}", add)


def on_save_mode(stage: str) -> None:
    def save() -> str:
        mode = set_mode(
            store,
            stage,
            st.session_state[f"mode_{stage}"],
            blind=st.session_state[f"blind_{stage}"],
            actor=reviewer,
        )
        return f"{STAGE_NAMES.get(stage, stage)}: {mode.mode}{', blind' if mode.blind else ''}."

    run(f"mode_message_{stage}", save)


st.subheader("Stages")
for stage, column in zip(STAGES, st.columns(len(STAGES)), strict=True):
    with column:
        st.markdown(f"**{STAGE_NAMES.get(stage, stage)}**")
        mode = get_mode(store, stage)
        show_message(f"mode_message_{stage}")
        with st.form(f"mode_form_{stage}"):
            st.radio("Screening", MODES, index=MODES.index(mode.mode), key=f"mode_{stage}", horizontal=True)
            st.checkbox("Blind (needs dual)", mode.blind, key=f"blind_{stage}")
            st.form_submit_button("Save mode", on_click=on_save_mode, args=(stage,))
        reasons = list_reasons(store, stage)
        st.markdown("Exclusion reasons" + ("" if reasons else ": none yet"))
        for i, text in enumerate(reasons, 1):
            st.text(f"{i}. {text}")  # as typed, never markdown
        show_message(f"reason_message_{stage}")
        st.text_input("New reason", key=f"reason_new_{stage}")
        st.button("Add reason", key=f"reason_add_{stage}", on_click=on_add_reason, args=(stage,))


# -- reviewers ------------------------------------------------------------------------------------------
def on_add_reviewer() -> None:
    def add() -> str:
        name = st.session_state.get("setup_reviewer_name", "")
        role, email = st.session_state["setup_reviewer_role"], st.session_state.get("setup_reviewer_email") or None
        added = add_reviewer(store, name, role=role, email=email, actor=reviewer)
        st.session_state["setup_reviewer_name"] = ""
        st.session_state["setup_reviewer_email"] = ""
        signs_in = f", signs in as {added.email}" if added.email else ""
        return f"Added {added.name} ({added.role}{signs_in})."

    run("setup_reviewer_message", add)


st.subheader("Reviewers")
people = [
    {"name": r.name, "role": r.role, "sign-in": r.email or r.subject or "", "access": "yes" if r.active else "removed"}
    for r in list_reviewers(store)
    if r.role != "system"
]
st.dataframe(people, hide_index=True)
show_message("setup_reviewer_message")
name_col, email_col, role_col = st.columns([2, 2, 1])
name_col.text_input("Name", key="setup_reviewer_name")
email_col.text_input("Sign-in email (team server)", key="setup_reviewer_email")
role_col.selectbox("Role", PEOPLE_ROLES, key="setup_reviewer_role")
st.button("Add reviewer", key="setup_reviewer_add", on_click=on_add_reviewer)
