"""Screen: one record at a time, in ranked order, with keyboard shortcuts.

The decision is written by ``screening.decisions.decide`` in the button's callback,
which runs (and commits) before the page is drawn again; the next record is then
picked from the refreshed ranking and checked against the database right before it is
drawn, and again right before a decision on it is written, so two tabs never decide
the same record twice for one reviewer.
"""

from __future__ import annotations

import streamlit as st

from screening.dashboard import state
from screening.dashboard.shortcuts import keyboard_shortcuts
from screening.dashboard.text import (
    KEYWORDS_SETTING,
    clean_keywords,
    parse_keyword_lines,
    record_fields,
    record_html,
)
from screening.decisions import decide, undo, visible_decisions
from screening.errors import ScreeningError
from screening.progress import needs_vote, next_for_reviewer, records_left, screened_count

STAGE = state.STAGE
BUTTONS = (
    ("include", "Include", "i", "primary"),
    ("exclude", "Exclude", "e", "secondary"),
    ("maybe", "Maybe", "m", "secondary"),
)
SHOWN_KEY = "screen_record"  # the record on screen, so undo can bring it back
NEXT_KEY = "screen_prefer"  # a record to show next if it still needs this reviewer (after undo)
FLASH_KEY = "screen_flash"

store = state.current_store()
reviewer = state.current_reviewer()
ranker = state.current_ranker()


def _flash(kind: str, message: str) -> None:
    st.session_state[FLASH_KEY] = (kind, message)


def on_decide(record_id: int, value: str) -> None:
    """Write the decision on the record the reviewer saw, unless it no longer needs their vote."""
    if not needs_vote(store, record_id, reviewer=reviewer, stage=STAGE):
        _flash("warning", f"Record {record_id} was already decided (in another tab?): nothing recorded.")
        return
    reason = st.session_state.get("screen_reason", "").strip() or None
    note = st.session_state.get("screen_note", "").strip() or None
    try:
        result = decide(store, record_id, value, reviewer=reviewer, stage=STAGE, reason=reason, note=note)
    except ScreeningError as e:
        _flash("error", str(e))
        return
    st.session_state["screen_reason"] = ""
    st.session_state["screen_note"] = ""
    _flash("success", f"Record {result.record_id}: {value} (as {reviewer}).")


def on_undo() -> None:
    try:
        result = undo(store, reviewer=reviewer, stage=STAGE)
    except ScreeningError as e:
        _flash("error", str(e))
        return
    st.session_state[NEXT_KEY] = result.record_id
    _flash("info", f"Undone: your last decision on record {result.record_id}.")


def pick_record() -> int | None:
    """The record undo brought back if it still needs this reviewer, else the best ranked one that does."""
    preferred = st.session_state.pop(NEXT_KEY, None)
    if preferred is not None and needs_vote(store, preferred, reviewer=reviewer, stage=STAGE):
        return int(preferred)
    ranked = ranker.ranked_ids()
    found = next_for_reviewer(store, ranked, reviewer=reviewer, stage=STAGE)
    if found is None and len(ranked) >= state.RANK_WINDOW:
        found = next_for_reviewer(store, ranker.ranked_ids(limit=None), reviewer=reviewer, stage=STAGE)
    return found


def keyword_editor(keywords: dict[str, list[str]]) -> None:
    with st.expander("Highlight keywords"), st.form("keywords_form"):
        include = st.text_area("Include keywords (one per line)", "\n".join(keywords["include"]), key="kw_include")
        exclude = st.text_area("Exclude keywords (one per line)", "\n".join(keywords["exclude"]), key="kw_exclude")
        if st.form_submit_button("Save keywords"):
            value = {"include": parse_keyword_lines(include), "exclude": parse_keyword_lines(exclude)}
            store.set_setting(KEYWORDS_SETTING, value, actor=reviewer)
            st.rerun()


def decision_controls(record_id: int) -> None:
    cols = st.columns(4)
    for col, (value, label, key, kind) in zip(cols, BUTTONS, strict=False):
        col.button(
            f"{label} ({key.upper()})",
            key=f"decide_{value}_{record_id}",  # a click always belongs to the record drawn with the button
            type=kind,
            use_container_width=True,
            on_click=on_decide,
            args=(record_id, value),
        )
    cols[3].button("Undo (U)", key="undo", use_container_width=True, on_click=on_undo)
    left, right = st.columns(2)
    left.text_input("Reason (optional)", key="screen_reason")
    right.text_input("Note (optional)", key="screen_note")
    keyboard_shortcuts({"i": "decide_include_", "e": "decide_exclude_", "m": "decide_maybe_", "u": "undo"})


def earlier_decisions(record_id: int) -> None:
    """What this reviewer may see of earlier decisions on the record (blind mode hides others' votes)."""
    seen = visible_decisions(store, record_id, viewer=reviewer, stage=STAGE)
    if seen:
        st.caption("Earlier decisions on this record")
        st.dataframe(
            [
                {
                    "reviewer": e.reviewer,
                    "decision": e.value,
                    "reason": e.reason,
                    "note": e.note,
                    "when": e.created_at.strftime("%Y-%m-%d %H:%M"),
                    "undone": e.undone_by is not None,
                }
                for e in seen
            ],
            hide_index=True,
        )


st.header("Screen titles and abstracts")
if flash := st.session_state.pop(FLASH_KEY, None):
    getattr(st, flash[0])(flash[1])
counter = st.empty()
record_id = pick_record()
st.session_state[SHOWN_KEY] = record_id
if record_id is None:
    st.success("Nothing left for you to screen at title/abstract.")
    st.button("Undo (U)", key="undo", on_click=on_undo)
    keyboard_shortcuts({"u": "undo"})
else:
    keywords = clean_keywords(store.get_setting(KEYWORDS_SETTING))
    st.html(record_html(record_fields(store, record_id), keywords))
    st.caption(f"Record {record_id}")
    decision_controls(record_id)
    earlier_decisions(record_id)
    keyword_editor(keywords)
done = screened_count(store, reviewer=reviewer, stage=STAGE)
left = records_left(store, reviewer=reviewer, stage=STAGE, live_ids=ranker.live_ids())
counter.markdown(f"**{done}** screened by you · **{left}** left")
