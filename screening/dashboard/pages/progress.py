"""Progress: decisions over time, relevant records found against records screened, model status, records left,
and any record's details, where its title/abstract decision can be made or changed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from screening.dashboard import state
from screening.dashboard.text import record_card
from screening.decisions import decide, record_status, visible_decisions
from screening.errors import ScreeningError
from screening.progress import decisions_over_time, recall_curve, records_left
from screening.queries import status
from screening.schema import Stage

store = state.current_store()
ranker = state.current_ranker()
CHANGE_FLASH = "details_flash"


def on_change_decision(record_id: int, reviewer: str) -> None:
    """Decide the record, or change the decision already made on it (a revision: undo plus new decision)."""
    value = st.session_state.get("details_value") or "include"
    reason = (st.session_state.get("details_reason") or "").strip() or None
    try:
        result = decide(store, record_id, value, reviewer=reviewer, stage=state.STAGE, reason=reason, revise=True)
    except ScreeningError as e:
        st.session_state[CHANGE_FLASH] = ("error", str(e))
        return
    verb = "changed to" if result.revises_id else "marked"
    st.session_state[CHANGE_FLASH] = ("success", f"Record {result.record_id} {verb} {value} (as {reviewer}).")
    st.session_state["details_reason"] = ""


def change_decision(record_id: int, reviewer: str) -> None:
    st.caption("Decide this record at title/abstract, or change the decision it has (kept in the audit trail).")
    left, right = st.columns([1, 2])
    left.radio("Decision", ("include", "exclude", "maybe"), key="details_value", horizontal=True)
    right.text_input("Reason (optional)", key="details_reason")
    st.button("Record decision", key="details_change", on_click=on_change_decision, args=(record_id, reviewer))
    if flash := st.session_state.pop(CHANGE_FLASH, None):
        getattr(st, flash[0])(flash[1])


st.header("Progress")
report = status(store)
stage_counts = report.stages.get(state.STAGE, {})
cols = st.columns(4)
cols[0].metric("Unique records", report.unique)
cols[1].metric("Records left (title/abstract)", records_left(store, stage=state.STAGE))
cols[2].metric("Included", stage_counts.get("include", 0))
cols[3].metric("Excluded", stage_counts.get("exclude", 0))

st.subheader("Decisions over time")
days = pd.DataFrame([d.__dict__ for d in decisions_over_time(store, state.STAGE)])
if days.empty:
    st.info("No screening decisions yet.")
else:
    st.bar_chart(days.pivot_table(index="day", columns="value", values="n", aggfunc="sum", fill_value=0))
    st.dataframe(days, hide_index=True)

st.subheader("Relevant records found")
curve = pd.DataFrame([p.__dict__ for p in recall_curve(store, state.STAGE)])
if len(curve) > 1:
    st.line_chart(curve, x="screened", y="relevant")
    st.caption(
        f"{int(curve['relevant'].iloc[-1])} relevant found in {int(curve['screened'].iloc[-1])} screened, "
        "in the order they were screened."
    )
else:
    st.info("The curve appears after the first decisions.")

st.subheader("Model")
info = ranker.status()
st.dataframe([{"setting": k, "value": str(v)} for k, v in info.items()], hide_index=True)
state.embeddings_control(store)

st.subheader("Record details")
record_id = st.number_input("Record id", min_value=1, step=1, value=None, key="details_record")
if record_id is not None:
    reviewer = state.current_reviewer()  # what is shown of others' decisions depends on who asks (blind mode)
    status_now = record_status(store, int(record_id))
    st.html(record_card(store, status_now.record_id))
    if status_now.record_id != status_now.requested_record_id:
        st.caption(f"Record {record_id} is a duplicate of record {status_now.record_id}.")
    st.write(
        f"Title/abstract: {status_now.title_abstract.status} {status_now.title_abstract.value or ''} · "
        f"Full text: {status_now.full_text.status} {status_now.full_text.value or ''}"
    )
    for stage in Stage:
        seen = visible_decisions(store, status_now.record_id, viewer=reviewer, stage=stage)
        if seen:
            st.dataframe([e.as_dict() for e in seen], hide_index=True)
    change_decision(status_now.record_id, reviewer)
