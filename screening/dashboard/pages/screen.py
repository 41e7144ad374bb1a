"""Screen: one record at a time, in ranked order, with keyboard shortcuts.

The decision is written by ``screening.decisions.decide`` in the button's callback,
which runs (and commits) before the page is drawn again, and which checks in its own
transaction that the record still takes this reviewer's decision. The next record is
``screening.progress.claim_next``: the best-ranked record that still needs this reviewer
and that no other reviewer has on screen, held for them with a short lease. A click that
loses a race (someone decided the record a moment before) says so, offers to change that
decision instead, and shows the next record.

Under the counter, after every decision: what the project's stopping rule says now
(``screening.stops.stage_evidence`` and the rule's verdict, read once per rerun and
cached until the evidence changes). When it says stop, a reviewer whose role allows it
(``screening.stops.may_stop``) gets a button that, once confirmed, ends the stage with
``screening.stops.stop_stage``. A forced stop and undoing a stop live on the Progress page.
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
from screening.errors import AlreadyDecided, ScreeningError
from screening.progress import Claim, claim_next
from screening.reviewers import get_mode, reviewer_by_name
from screening.stopping import StopVerdict
from screening.stops import StopSettings, may_stop, stage_evidence, stop_settings, stop_stage, stops

STAGE = state.STAGE
BUTTONS = (
    ("include", "Include", "i", "primary"),
    ("exclude", "Exclude", "e", "secondary"),
    ("maybe", "Maybe", "m", "secondary"),
)
SHOWN_KEY = "screen_record"  # the record on screen, so undo can bring it back
NEXT_KEY = "screen_prefer"  # a record to show next if it still needs this reviewer (after undo)
FLASH_KEY = "screen_flash"
REVISE_KEY = "screen_revise"  # (record id, value, title) of a click that lost a race: offer to change it
STOP_CONFIRM_KEY = "screen_stop_confirm"  # the reviewer clicked "Stop screening…": ask once more

store = state.current_store()
reviewer = state.current_reviewer()
ranker = state.current_ranker()


def _flash(kind: str, message: str) -> None:
    st.session_state[FLASH_KEY] = (kind, message)


def _title(record_id: int) -> str:
    title = str(record_fields(store, record_id).get("title") or "").strip()
    return f"“{title[:80]}…”" if len(title) > 80 else f"“{title}”" if title else f"record {record_id}"


def _lost_race(error: AlreadyDecided, value: str, title: str) -> str:
    if error.decided_by == (reviewer,):
        return f"You already decided {title} ({error.value}), perhaps in another tab: your {value} was not recorded."
    who = " and ".join(error.decided_by) or "another reviewer"
    return f"{title} was decided a moment ago by {who} ({error.value}): your {value} was not recorded."


def on_decide(record_id: int, value: str, revise: bool = False) -> None:
    """Write the decision on the record the reviewer saw; the library refuses it if the record was decided since."""
    reason = st.session_state.get("screen_reason", "").strip() or None
    note = st.session_state.get("screen_note", "").strip() or None
    title = _title(record_id)
    st.session_state.pop(REVISE_KEY, None)
    try:
        result = decide(
            store, record_id, value, reviewer=reviewer, stage=STAGE, reason=reason, note=note, revise=revise
        )
    except AlreadyDecided as e:
        _flash("warning", _lost_race(e, value, title) + " Here is your next record.")
        st.session_state[REVISE_KEY] = (record_id, value, title)
        return
    except ScreeningError as e:
        _flash("error", str(e))
        return
    st.session_state["screen_reason"] = ""
    st.session_state["screen_note"] = ""
    verb = "changed to" if result.revises_id else "marked"
    _flash("success", f"{title} {verb} {value} (as {reviewer}).")


def revise_offer() -> None:
    """After a lost race: a button that changes the other decision to what this reviewer clicked."""
    offer = st.session_state.get(REVISE_KEY)
    if offer is None:
        return
    record_id, value, title = offer
    st.button(
        f"Change {title} to {value} anyway",
        key="screen_revise_button",
        on_click=on_decide,
        args=(record_id, value, True),
        help="Writes an undo of the earlier decision and your decision, both kept in the audit trail.",
    )


def on_undo() -> None:
    try:
        result = undo(store, reviewer=reviewer, stage=STAGE)
    except ScreeningError as e:
        _flash("error", str(e))
        return
    st.session_state[NEXT_KEY] = result.record_id
    _flash("info", f"Undone: your last decision on record {result.record_id}.")


def pick_record() -> Claim:
    """The record undo brought back if it still needs this reviewer, else the best ranked one no one else has open."""
    preferred = st.session_state.pop(NEXT_KEY, None)
    live = ranker.live_ids()
    ranked = ranker.ranked_ids()
    claim = claim_next(store, ranked, reviewer=reviewer, stage=STAGE, prefer=preferred, live_ids=live)
    if claim.record_id is None and len(ranked) >= state.RANK_WINDOW:
        claim = claim_next(store, ranker.ranked_ids(limit=None), reviewer=reviewer, stage=STAGE, live_ids=live)
    return claim


def verdict_numbers(verdict: StopVerdict) -> str:
    """The counts the verdict rests on, and the recall it estimates (the bound is in its reason)."""
    return (
        f"{verdict.found} includes in {verdict.screened} screened of {verdict.pool} · "
        f"estimated recall {verdict.estimated_recall:.1%}"
    )


def on_stop(settings: StopSettings) -> None:
    """End title/abstract screening by the rule; the library checks the rule again in its own transaction."""
    st.session_state.pop(STOP_CONFIRM_KEY, None)
    try:
        result = stop_stage(store, reviewer=reviewer, stage=STAGE, **settings.as_kwargs())
    except ScreeningError as e:
        _flash("error", str(e))
        return
    message = f"Title/abstract screening stopped (stop #{result.stop.id}): {result.stop.describe()}."
    if result.still_open:
        message += (
            f" {result.still_open} screened records still need a vote or a resolution (see Conflicts) "
            "before the PRISMA counts add up."
        )
    _flash("success", message)


def stop_controls(settings: StopSettings, unscreened: int) -> None:
    """ "Stop screening…", then a confirmation naming what the stop does."""
    if not st.session_state.get(STOP_CONFIRM_KEY):
        st.button(
            "Stop screening…",
            key="screen_stop",
            on_click=lambda: st.session_state.update({STOP_CONFIRM_KEY: True}),
            help="End title/abstract screening here; you are asked to confirm first.",
        )
        return
    st.warning(
        f"Stopping excludes the {unscreened} records nobody has screened, as records marked ineligible by an "
        f"automation tool (PRISMA 2020), naming {settings.rule} and its claim ({settings.claim}). "
        "Records imported later are open again; the stop can be undone on the Progress page."
    )
    yes, no = st.columns(2)
    yes.button(
        "Yes, stop title/abstract screening", key="screen_stop_yes", type="primary", on_click=on_stop, args=(settings,)
    )
    no.button("Cancel", key="screen_stop_cancel", on_click=lambda: st.session_state.pop(STOP_CONFIRM_KEY, None))


def stopping_box() -> None:
    """The stage's active stop if any, what the rule says now, and the stop button when it says stop."""
    for stop in stops(store, STAGE, active_only=True):
        st.info(f"Title/abstract screening was stopped early (stop #{stop.id}): {stop.describe()}.")
    settings = stop_settings(store)
    with store.read() as s:
        evidence = stage_evidence(s, STAGE)
        allowed = may_stop(reviewer_by_name(s, reviewer), get_mode(s, STAGE).dual)
    if evidence.screened == 0:
        return
    verdict = state.stop_verdict(evidence.labels, evidence.pool, settings)
    (st.success if verdict.stop else st.info)(
        verdict.reason, icon=":material/flag:" if verdict.stop else ":material/trending_up:"
    )
    st.caption(verdict_numbers(verdict))
    if not verdict.stop or not evidence.unscreened:
        st.session_state.pop(STOP_CONFIRM_KEY, None)
        return
    if allowed:
        stop_controls(settings, evidence.unscreened)
    else:
        st.caption("In dual screening an adjudicator ends the stage: ask one to stop it.")


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
revise_offer()
counter = st.empty()
stopping_box()
claim = pick_record()
record_id = claim.record_id
st.session_state[SHOWN_KEY] = record_id
if record_id is None:
    if claim.held_by_others:
        st.info(
            f"{claim.held_by_others} records still open are on other reviewers' screens; they come back here if left."
        )
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
counter.markdown(f"**{claim.screened}** screened by you · **{claim.left}** left")
