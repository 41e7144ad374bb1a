"""Screen: one record at a time, in ranked order, with keyboard shortcuts.

The decision bar (Include in green, Exclude in red, Maybe, Undo, and the stage's
exclusion reasons to pick with the number keys) is drawn above the record, so it stays
put whatever the length of the abstract; the parts above it each have a slot drawn on
every run, and the previous record's controls are hidden the moment a redraw starts.
The project's inclusion criteria sit in a column beside the record. Messages name the
record by its (shortened) title. The reason, note and picked reason are keyed by record,
so nothing typed for one record is recorded with another; Escape leaves a text box.
Above the record, "Find and mark known includes" searches the project (title words,
PMID, DOI) so a reviewer can include the studies they already know before screening.
The highlight keywords are the project's, set on the Setup page; the page draws nothing
it does not need for deciding, since every widget drawn costs time on each decision.

The decision is written by ``screening.decisions.decide`` in the button's callback,
which runs (and commits) before the page is drawn again, and which checks in its own
transaction that the record still takes this reviewer's decision. The next record is
``screening.progress.claim_next``: the best-ranked record that still needs this reviewer
and that no other reviewer has on screen, held for them with a short lease. A click that
loses a race (someone decided the record a moment before) says so, offers to change that
decision instead, and shows the next record.

Under the counter, after every decision: what the project's stopping rule says now
(``screening.stops.stage_evidence`` and the rule's verdict, read once per rerun and
cached until the evidence changes), filled into its slot once the next record is drawn.
When it says stop, a reviewer whose role allows it (``screening.stops.may_stop``) gets
a button that, once confirmed, ends the stage with ``screening.stops.stop_stage``. A
forced stop and undoing a stop live on the Progress page.
"""

from __future__ import annotations

import html

import streamlit as st

from screening.dashboard import state
from screening.dashboard.shortcuts import keyboard_shortcuts
from screening.dashboard.text import (
    KEYWORDS_SETTING,
    clean_keywords,
    criteria_html,
    decision_bar_css,
    record_fields,
    record_html,
    short_title,
)
from screening.decisions import decide, undo, visible_decisions
from screening.errors import AlreadyDecided, ScreeningError
from screening.progress import Claim, claim_next
from screening.queries import FoundRecord, find_records
from screening.reviewers import get_mode, list_reasons, reviewer_by_name
from screening.setup import CRITERIA_SETTING
from screening.stopping import StopVerdict
from screening.stops import StopSettings, list_stops, may_stop, read_stop_settings, stage_evidence, stop_stage

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
# The reason, note and picked exclusion reason are keyed by the record they are typed for,
# so a value that reaches the server late can never be recorded with another record
REASON_KEY, NOTE_KEY, PICK_KEY = "screen_reason_{}", "screen_note_{}", "screen_pick_{}"
REASON_KEYS = "123456789"  # number keys pick the stage's first nine exclusion reasons
FIND_KEY = "screen_find"
KNOWN_NOTE = "known include, marked from a search on the Screen page"
MAYBE_CAPTION = "Maybes are not learned: the ranking learns from includes and excludes only."

store = state.current_store()
reviewer = state.current_reviewer()
ranker = state.current_ranker()


def _flash(kind: str, message: str) -> None:
    st.session_state[FLASH_KEY] = (kind, message)


def _title(record_id: int) -> str:
    return short_title(str(record_fields(store, record_id).get("title") or ""), record_id)


def _lost_race(error: AlreadyDecided, value: str, title: str) -> str:
    if error.decided_by == (reviewer,):
        return f"You already decided {title} ({error.value}), perhaps in another tab: your {value} was not recorded."
    who = " and ".join(error.decided_by) or "another reviewer"
    return f"{title} was decided a moment ago by {who} ({error.value}): your {value} was not recorded."


def on_decide(record_id: int, value: str, revise: bool = False) -> None:
    """Write the decision on the record the reviewer saw; the library refuses it if the record was decided since.

    An exclude takes the reason picked beside it; a reason typed as well is kept in the note.
    """
    typed = (st.session_state.get(REASON_KEY.format(record_id)) or "").strip() or None
    note = (st.session_state.get(NOTE_KEY.format(record_id)) or "").strip() or None
    picked = st.session_state.get(PICK_KEY.format(record_id)) if value == "exclude" else None
    reason = picked or typed
    if picked and typed and typed != picked:
        note = "; ".join(filter(None, (typed, note)))
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
    verb = "changed to" if result.revises_id else "marked"
    why = f" ({reason})" if reason else ""
    _flash("success", f"{title} {verb} {value}{why} (as {reviewer}).")


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
    _flash("info", f"Undone: your last decision on {_title(result.record_id)}.")


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
    with store.read() as s:  # one snapshot: the stops, the rule, the evidence and the reviewer's role
        active = list_stops(s, STAGE, active_only=True)
        settings = read_stop_settings(s)
        evidence = stage_evidence(s, STAGE)
        allowed = may_stop(reviewer_by_name(s, reviewer), get_mode(s, STAGE).dual)
    for stop in active:
        st.info(f"Title/abstract screening was stopped early (stop #{stop.id}): {stop.describe()}.")
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


def decision_bar(record_id: int) -> list[str]:
    """Include, Exclude, Maybe and Undo, drawn above the record; then the stage's exclusion reasons to pick.

    Returns the reasons offered, so the number keys can be bound to them.
    """
    reasons = list_reasons(store, STAGE)[: len(REASON_KEYS)]  # read first: the bar is drawn in one go
    st.html(decision_bar_css())
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
    cols[2].caption(MAYBE_CAPTION)
    if reasons:
        st.pills(
            f"Exclusion reason: pick one (keys 1–{len(reasons)}), then Exclude (E)",
            reasons,
            format_func=lambda reason: f"{reasons.index(reason) + 1} · {reason}",
            key=PICK_KEY.format(record_id),
            help="Recorded with Exclude; ignored by Include and Maybe. Click or press its number again to unpick.",
        )
    return reasons


def notes_fields(record_id: int, reasons: list[str]) -> None:
    """The free-text reason and note of this record, and the page's keys (Escape leaves a text box)."""
    left, right = st.columns(2)
    left.text_input("Reason (optional)", key=REASON_KEY.format(record_id))
    right.text_input("Note (optional)", key=NOTE_KEY.format(record_id))
    bindings = {"i": "decide_include_", "e": "decide_exclude_", "m": "decide_maybe_", "u": "undo"}
    prefix = PICK_KEY.format("")
    bindings.update({REASON_KEYS[n]: f"{prefix}#{n}" for n in range(len(reasons))})
    keyboard_shortcuts(bindings)


def on_mark_include(record_id: int, revise: bool) -> None:
    """Include a record found by search (a known include); a vote of this reviewer's on it is changed."""
    title = _title(record_id)
    try:
        decide(store, record_id, "include", reviewer=reviewer, stage=STAGE, note=KNOWN_NOTE, revise=revise)
    except ScreeningError as e:
        _flash("error", str(e))
        return
    _flash("success", f"{title} marked include as a known include (as {reviewer}); the ranking learns from it.")


def found_line(hit: FoundRecord) -> str:
    """A search hit as one safe line of HTML: title, then journal, year, PMID and the reviewer's own vote."""
    details = [hit.journal, str(hit.year or ""), f"PMID {hit.pmid}" if hit.pmid else "", f"record {hit.record_id}"]
    if hit.retracted:
        details.append("retracted")
    if hit.my_vote:
        details.append(f"your vote: {hit.my_vote}")
    meta = " · ".join(html.escape(d) for d in details if d)
    return f"<div><b>{html.escape(hit.title or '(no title)')}</b><br><small>{meta}</small></div>"


def find_box(expanded: bool) -> None:
    """Search the project by title words, PMID or DOI and mark the studies already known to belong as includes."""
    with st.expander("Find and mark known includes", expanded=expanded, icon=":material/search:"):
        text = st.text_input("Title or abstract words, a PMID or a DOI", key=FIND_KEY)
        if not text.strip():
            st.caption(
                "Studies you already know belong in the review are the ranking's best start: "
                "find each and mark it include."
            )
            return
        hits = find_records(store, text, reviewer=reviewer, stage=STAGE)
        if not hits:
            st.caption(f"No record matches {text.strip()!r}.")
            return
        for hit in hits:
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.html(found_line(hit))
            if hit.my_vote == "include":
                right.caption("Included")
                continue
            right.button(
                "Include" if hit.my_vote is None else "Change to include",
                key=f"known_include_{hit.record_id}",
                on_click=on_mark_include,
                args=(hit.record_id, hit.my_vote is not None),
                use_container_width=True,
            )


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
# Every part above the record sits in a slot of its own, drawn on every run, so the
# record and its buttons keep their place on the page whether or not there is a message
flash_slot, revise_slot, counter, stop_slot = st.empty(), st.container(), st.empty(), st.container()
find_slot = st.container()
if flash := st.session_state.pop(FLASH_KEY, None):
    getattr(flash_slot, flash[0])(flash[1])
with revise_slot:
    revise_offer()
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
    criteria = str(store.get_setting(CRITERIA_SETTING) or "").strip()
    main = st.container()
    if criteria:  # beside the record, so the reviewer reads them while deciding; nothing when there are none
        main, side = st.columns([3, 1], gap="medium")
        side.html(criteria_html(criteria))
    with main:
        reasons = decision_bar(record_id)
        st.html(record_html(record_fields(store, record_id), keywords))
        st.caption(f"Record {record_id}")
        notes_fields(record_id, reasons)
        earlier_decisions(record_id)
counter.markdown(f"**{claim.screened}** screened by you · **{claim.left}** left")
# The stopping rule's verdict and the search box fill their slots above the record once the
# record is drawn: the reviewer sees the next record without waiting for them
with stop_slot:
    stopping_box()
with find_slot:
    find_box(expanded=claim.screened == 0 or bool(st.session_state.get(FIND_KEY, "").strip()))
