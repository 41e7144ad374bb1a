"""Conflicts: dual-screening disagreements, resolved by a reviewer who did not vote on the record."""

from __future__ import annotations

import streamlit as st

from screening.dashboard import state
from screening.dashboard.text import record_card
from screening.decisions import conflicts, resolve, visible_decisions
from screening.errors import ScreeningError
from screening.reviewers import check_stage, get_mode, list_reasons
from screening.schema import Stage

STAGES = {Stage.TITLE_ABSTRACT: "Title/abstract", Stage.FULL_TEXT: "Full text"}

store = state.current_store()
reviewer = state.current_reviewer()

st.header("Conflicts")
stage = st.radio("Stage", list(STAGES), format_func=STAGES.get, horizontal=True, key="conflict_stage")
check_stage(stage)
mode = get_mode(store, stage)
st.caption(f"Mode at this stage: {mode.mode}{', blind' if mode.blind else ''}.")
found = conflicts(store, stage)
if not found:
    st.success("No conflicts at this stage.")
    st.stop()

st.dataframe(
    [
        {
            "record": c.record_id,
            "title": c.title,
            "votes": "; ".join(f"{who}: {v}" + (f" ({r})" if r else "") for who, (v, r) in c.votes.items()),
        }
        for c in found
    ],
    hide_index=True,
)
by_id = {c.record_id: c for c in found}
record_id = st.selectbox(
    "Record to resolve", list(by_id), format_func=lambda r: f"{r}: {by_id[r].title[:90]}", key="conflict_record"
)
st.html(record_card(store, record_id))
st.caption("Decisions you may see on this record")
st.dataframe(
    [
        {"reviewer": e.reviewer, "decision": e.value, "reason": e.reason, "note": e.note, "kind": e.kind}
        for e in visible_decisions(store, record_id, viewer=reviewer, stage=stage)
    ],
    hide_index=True,
)
with st.form("resolve_form"):
    value = st.radio("Resolution", ["include", "exclude"], horizontal=True, key="resolve_value")
    reasons = list_reasons(store, stage)
    if stage == Stage.FULL_TEXT:
        reason = st.selectbox("Reason (needed for a full-text exclusion)", [None, *reasons], key="resolve_reason")
    else:
        reason = st.text_input("Reason (optional)", key="resolve_reason") or None
    note = st.text_input("Note (optional)", key="resolve_note") or None
    if st.form_submit_button(f"Resolve as {reviewer}"):
        try:
            resolve(store, record_id, value, reviewer=reviewer, stage=stage, reason=reason, note=note)
        except ScreeningError as e:
            st.error(str(e))
        else:
            st.success(f"Record {record_id} resolved: {value}.")
            st.rerun()
