"""History: the signed-in reviewer's own current decisions, filtered, and each one changeable.

The list is ``screening.queries.reviewer_decisions`` (only this reviewer's decisions that
are not undone or revised, so blind dual screening shows nothing of anyone else), narrowed
by value, stage and a search of title and abstract; the counts above it are
``screening.queries.reviewer_decision_counts``, with the maybe pile one click away. A change
is a revision through ``screening.decisions.decide(..., revise=True)``, written in the
button's callback: an undo of the earlier decision plus the new one, both kept.
"""

from __future__ import annotations

import streamlit as st

from screening.dashboard import state
from screening.decisions import decide
from screening.errors import ScreeningError
from screening.queries import REVIEWER_DECISIONS_LIMIT, ReviewerDecision, reviewer_decision_counts, reviewer_decisions
from screening.reviewers import list_reasons
from screening.schema import Stage
from screening.snapshot import SCREEN_VALUES

ALL = "all"
VALUE_KEY = "history_value"
STAGE_KEY = "history_stage"
TEXT_KEY = "history_text"
PICK_KEY = "history_open"  # the decision open in the change form
PICK_LABEL = "Decision to change"
FLASH_KEY = "history_flash"
STAGE_LABELS = {ALL: "Both stages", Stage.TITLE_ABSTRACT.value: "Title/abstract", Stage.FULL_TEXT.value: "Full text"}

store = state.current_store()
reviewer = state.current_reviewer()


def _quoted(title: str, record_id: int) -> str:
    title = title.strip()
    return f"“{title[:80]}…”" if len(title) > 80 else f"“{title}”" if title else f"record {record_id}"


def _entry_key(entry: ReviewerDecision) -> str:
    """A decision's place (record group and stage): it stays the same when the decision is revised."""
    return f"{entry.record_id}:{entry.stage}"


def on_show_maybes() -> None:
    st.session_state[VALUE_KEY] = "maybe"


def on_change(entry: ReviewerDecision) -> None:
    """Revise the decision to what the form says; the library checks it again in its own transaction."""
    value = st.session_state.get("history_new_value")
    if entry.stage == Stage.FULL_TEXT:
        reason = st.session_state.get("history_reason_ft") if value == "exclude" else None
    else:
        reason = (st.session_state.get("history_reason") or "").strip() or None
    note = (st.session_state.get("history_note") or "").strip() or None
    title = _quoted(entry.title, entry.record_id)
    where = STAGE_LABELS[entry.stage].lower()
    if value == entry.value and (reason or None) == (entry.reason or None) and note is None:
        st.session_state[FLASH_KEY] = ("info", f"{title} is already {value} at {where}: nothing recorded.")
        return
    try:
        decide(
            store,
            entry.record_id,
            value,
            reviewer=reviewer,
            stage=entry.stage,
            reason=reason,
            note=note,
            kind=entry.kind,
            revise=True,
        )
    except ScreeningError as e:
        st.session_state[FLASH_KEY] = ("error", f"{title}: {e}")
        return
    st.session_state["history_reason"] = ""
    st.session_state["history_note"] = ""
    st.session_state[FLASH_KEY] = (
        "success",
        f"{title} changed from {entry.value} to {value} at {where} (as {reviewer}).",
    )


def filters() -> tuple[str | None, str | None, str]:
    """Value, stage and search text from the widgets (None: any)."""
    st.session_state.setdefault(VALUE_KEY, ALL)
    left, middle, right = st.columns([2, 2, 3])
    stage = middle.radio("Stage", list(STAGE_LABELS), format_func=STAGE_LABELS.get, key=STAGE_KEY, horizontal=True)
    text = right.text_input("Search title and abstract", key=TEXT_KEY).strip()
    stage = None if stage == ALL else stage
    counts = reviewer_decision_counts(store, reviewer, stage=stage, text=text or None)
    left.radio(
        "Decision",
        [ALL, *SCREEN_VALUES],
        format_func=lambda v: f"all ({sum(counts.values())})" if v == ALL else f"{v} ({counts[v]})",
        key=VALUE_KEY,
        horizontal=True,
    )
    if counts["maybe"] and st.session_state[VALUE_KEY] != "maybe":
        st.warning(
            f"You have {counts['maybe']} maybe decision(s): a maybe leaves the record undecided "
            "(and the PRISMA counts open) until you include or exclude it."
        )
        st.button("Show my maybes", key="history_show_maybes", on_click=on_show_maybes)
    value = st.session_state[VALUE_KEY]
    return (None if value == ALL else value), stage, text


def decision_table(entries: list[ReviewerDecision]) -> None:
    st.dataframe(
        [
            {
                "record": e.record_id,
                "title": e.title,
                "stage": STAGE_LABELS[e.stage],
                "decision": e.value + (" (resolution)" if e.kind == "resolution" else ""),
                "reason": e.reason or "",
                "note": e.note or "",
                "when": e.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for e in entries
        ],
        hide_index=True,
    )


def change_form(entry: ReviewerDecision) -> None:
    """The new value (and reason: one from the list to exclude at full text), then the revision."""
    st.subheader(f"Change your decision on {_quoted(entry.title, entry.record_id)}")
    st.caption(
        f"Record {entry.record_id} · {STAGE_LABELS[entry.stage]} · now {entry.value}"
        + (f" ({entry.reason})" if entry.reason else "")
        + f" · decided {entry.created_at.strftime('%Y-%m-%d %H:%M')}"
    )
    with st.form("history_change_form"):
        st.radio("New decision", SCREEN_VALUES, key="history_new_value", horizontal=True)
        if entry.stage == Stage.FULL_TEXT:
            st.selectbox(
                "Reason (needed to exclude)", [None, *list_reasons(store, Stage.FULL_TEXT)], key="history_reason_ft"
            )
        else:
            st.text_input("Reason (optional)", key="history_reason")
        st.text_input("Note (optional)", key="history_note")
        st.form_submit_button(
            "Change decision",
            type="primary",
            on_click=on_change,
            args=(entry,),
            help="Writes an undo of your earlier decision and the new one; both stay in the audit trail.",
        )


st.header("Your decisions")
if flash := st.session_state.pop(FLASH_KEY, None):
    getattr(st, flash[0])(flash[1])
value, stage, text = filters()
entries = reviewer_decisions(store, reviewer, stage=stage, value=value, text=text or None)
if not entries:
    st.info("None of your decisions match these filters." if value or stage or text else "You have no decisions yet.")
    st.stop()
if len(entries) >= REVIEWER_DECISIONS_LIMIT:
    st.caption(f"Showing your latest {REVIEWER_DECISIONS_LIMIT}: narrow the list with the filters or the search.")
decision_table(entries)
by_key = {_entry_key(e): e for e in entries}
# No widget key: a keyed select box keeps its value when the list reorders (a changed decision moves
# to the top) while the browser shows the option at the old position, so the box and the form could
# name different decisions. The decision open is remembered instead and given as the box's index.
keys = list(by_key)
open_key = st.session_state.get(PICK_KEY)
pick = st.selectbox(
    PICK_LABEL,
    keys,
    index=keys.index(open_key) if open_key in by_key else 0,
    format_func=lambda k: (
        f"{by_key[k].title[:90] or 'record ' + str(by_key[k].record_id)} "
        f"({STAGE_LABELS[by_key[k].stage]}: {by_key[k].value})"
    ),
)
st.session_state[PICK_KEY] = pick
change_form(by_key[pick])
