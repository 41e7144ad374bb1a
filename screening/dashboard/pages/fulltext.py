"""Full text: for each report sought, record whether it was retrieved, then include or exclude it with a reason."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from screening.dashboard import state
from screening.dashboard.text import record_card
from screening.decisions import decide, set_retrieval, visible_decisions
from screening.errors import ScreeningError
from screening.progress import full_text_queue
from screening.reviewers import list_reasons
from screening.schema import Stage

STAGE = Stage.FULL_TEXT

store = state.current_store()
reviewer = state.current_reviewer()

st.header("Full text")
queue = full_text_queue(store)
if not queue:
    st.info("No report sought yet: records included at title/abstract appear here.")
    st.stop()

todo = st.toggle("Only reports not yet decided", value=True, key="ft_todo")
rows = [q for q in queue if not todo or q.status != "decided"]
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
if not rows:
    st.success("Every report sought has a full-text decision.")
    st.stop()
by_id = {q.record_id: q for q in rows}
record_id = st.selectbox("Report", list(by_id), format_func=lambda r: f"{r}: {by_id[r].title[:90]}", key="ft_record")
item = by_id[record_id]
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
            f"Record {record_id}: retrieval saved.",
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
            f"Record {record_id}: {value} at full text.",
        )
