"""Full text: for each report sought, record whether it was retrieved, then include or exclude it with a reason."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from screening.dashboard import state
from screening.dashboard.text import record_card, short_title
from screening.decisions import decide, set_retrieval, visible_decisions
from screening.errors import ScreeningError
from screening.progress import FullTextItem, full_text_queue
from screening.reviewers import list_reasons
from screening.schema import Stage

STAGE = Stage.FULL_TEXT
OPEN_KEY = "ft_open"  # the report open in the page

store = state.current_store()
reviewer = state.current_reviewer()

st.header("Full text")
queue = full_text_queue(store)
if not queue:
    st.info("No report sought yet: records included at title/abstract appear here.")
    st.stop()


def done(item: FullTextItem) -> bool:
    """Nothing left to do for the report: decided, or not retrieved (PRISMA counts it so; nothing to assess)."""
    return item.status == "decided" or item.retrieval == "not_retrieved"


todo = st.toggle("Only reports not yet decided", value=True, key="ft_todo")
rows = [q for q in queue if not todo or not done(q)]
if not rows:
    st.success("Every report sought has a full-text decision, or was not retrieved.")
    st.stop()
st.dataframe(
    [
        {
            "record": q.record_id,
            "title": q.title,
            "retrieved": q.retrieval or "",
            "status": q.status,
            "decision": q.value or "",
            "reason": q.reason or "",
        }
        for q in rows
    ],
    hide_index=True,
)
by_id = {q.record_id: q for q in rows}
# No widget key: a keyed select box keeps its value when its options change (a report settled, the
# toggle flipped) while the browser shows the option at the old index, so the card and the box named
# different reports. The report open is remembered instead, and a new list draws a new box on it.
ids = list(by_id)
shown = st.session_state.get(OPEN_KEY)
record_id = st.selectbox(
    "Report",
    ids,
    index=ids.index(shown) if shown in by_id else 0,
    format_func=lambda r: f"{r}: {by_id[r].title[:90]}",
)
st.session_state[OPEN_KEY] = record_id
item = by_id[record_id]
title = short_title(item.title, record_id)
st.html(record_card(store, record_id))
seen = visible_decisions(store, record_id, viewer=reviewer, stage=STAGE)
if seen:
    st.dataframe(
        [{"reviewer": e.reviewer, "decision": e.value, "reason": e.reason, "note": e.note} for e in seen],
        hide_index=True,
    )


def act(action: Callable[[], object], message: str) -> None:
    """Run one library call; show its error, or rerun to show the new state."""
    try:
        action()
    except ScreeningError as e:
        st.error(str(e))
        return
    st.toast(message)
    st.rerun()


left, right = st.columns(2)
with left.form("retrieval_form"):
    st.markdown("**Retrieval**")
    got = st.radio("Full text retrieved?", ["yes", "no"], horizontal=True, key="ft_retrieved")
    if st.form_submit_button("Save retrieval"):
        act(
            lambda: set_retrieval(store, record_id, got == "yes", reviewer=reviewer),
            f"{title}: full text {'retrieved' if got == 'yes' else 'not retrieved'}.",
        )
with right.form("eligibility_form"):
    st.markdown("**Eligibility**" + ("" if item.retrieval == "retrieved" else " (record the retrieval first)"))
    value = st.radio("Decision", ["include", "exclude"], horizontal=True, key="ft_value")
    reason = st.selectbox("Reason (needed to exclude)", [None, *list_reasons(store, STAGE)], key="ft_reason")
    note = st.text_input("Note (optional)", key="ft_note") or None
    if st.form_submit_button("Save decision"):
        act(
            lambda: decide(
                store,
                record_id,
                value,
                reviewer=reviewer,
                stage=STAGE,
                reason=reason if value == "exclude" else None,
                note=note,
            ),
            f"{title}: {value} at full text.",
        )
