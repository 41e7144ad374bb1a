"""Progress: decisions over time, relevant records found against records screened, model status, records left,
and any record's details, where its title/abstract decision can be made or changed.

Stopping early: the recall curve drawn with the stopping rule's lower bound on recall along
the screening order (``screening.stop_curve``) and the point where the rule says stop; the
stage's stops (undone ones marked); and, for reviewers whose role allows it, undoing a stop,
a forced stop (with a note, recorded as forced: no statistical guarantee), and the rule's
target and confidence (the project's ``stopping`` setting).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from screening.dashboard import state
from screening.dashboard.text import record_card
from screening.decisions import decide, record_status, visible_decisions
from screening.errors import ScreeningError
from screening.progress import decisions_over_time, recall_curve, records_left
from screening.queries import status
from screening.reviewers import get_mode, reviewer_by_name
from screening.schema import Stage
from screening.stop_curve import BoundPoint, bound_curve, stop_point
from screening.stopping import RULES, StopVerdict
from screening.stops import (
    StageEvidence,
    StopSettings,
    may_stop,
    save_stop_settings,
    stage_evidence,
    stop_settings,
    stop_stage,
    stops,
    undo_stop,
)

store = state.current_store()
ranker = state.current_ranker()
CHANGE_FLASH = "details_flash"
STOP_FLASH = "progress_stop_flash"
UNDO_CONFIRM = "progress_undo_confirm"  # the stop id whose undo the reviewer is asked to confirm
DRAW_BOUND = "progress_draw_bound"
AUTO_BOUND = 2000  # up to this many screened the bound is drawn at once; beyond, on request (it takes a while)


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


@st.cache_data(max_entries=8, show_spinner="Computing the rule's lower bound along the screening order…")
def rule_curve(labels: np.ndarray, pool: int, settings: StopSettings) -> tuple[list[BoundPoint], int | None]:
    rule = settings.make()
    bound = bound_curve(labels, pool, rule)
    return bound, stop_point(rule, labels, pool, bound)


def stop_chart(
    curve: pd.DataFrame,
    bound: list[BoundPoint] | None,
    stopped_at: int | None,
    verdict: StopVerdict,
    settings: StopSettings,
) -> alt.VConcatChart | alt.LayerChart:
    """Top: relevant found; below: recall at least (the rule's bound) with the target; a rule where it says stop."""
    x = alt.X("screened:Q", title="records screened", scale=alt.Scale(domain=[0, max(verdict.pool, 1)]))
    found = alt.Chart(curve).mark_line().encode(x=x, y=alt.Y("relevant:Q", title="relevant found"))
    marks = []
    if stopped_at is not None:
        marks.append({"screened": stopped_at, "label": f"the rule says stop ({stopped_at})", "dash": "solid"})
    elif verdict.more_needed is not None and not verdict.stop:
        at = verdict.screened + verdict.more_needed
        marks.append(
            {"screened": at, "label": f"stop after {verdict.more_needed} more excludes in a row", "dash": "dashed"}
        )
    layers = [found]
    if marks:
        frame = pd.DataFrame(marks)
        dash = [6, 4] if marks[0]["dash"] == "dashed" else [1, 0]
        layers.append(alt.Chart(frame).mark_rule(color="#2e7d32", strokeDash=dash).encode(x="screened:Q"))
        layers.append(
            alt.Chart(frame)
            .mark_text(align="left", dx=4, dy=-6, color="#2e7d32")
            .encode(x="screened:Q", y=alt.value(8), text="label:N")
        )
    top = alt.layer(*layers).properties(height=260)
    if not bound:
        return top
    frame = pd.DataFrame([{"screened": p.screened, "recall at least": p.lower_bound} for p in bound])
    y = alt.Y(
        "recall at least:Q", title=f"recall at least ({settings.confidence:.0%} conf.)", axis=alt.Axis(format="%")
    )
    low = [
        alt.Chart(frame).mark_line(color="#ef6c00").encode(x=x, y=y.scale(domain=[0, 1])),
        alt.Chart(pd.DataFrame({"target": [settings.target]})).mark_rule(strokeDash=[4, 4]).encode(y="target:Q"),
    ]
    if marks:
        low.append(alt.Chart(pd.DataFrame(marks)).mark_rule(color="#2e7d32", strokeDash=dash).encode(x="screened:Q"))
    return alt.vconcat(top, alt.layer(*low).properties(height=160))


def curve_caption(
    curve: pd.DataFrame,
    evidence: StageEvidence,
    verdict: StopVerdict,
    settings: StopSettings,
    drawn: bool,
    stopped_at: int | None,
) -> str:
    text = (
        f"{int(curve['relevant'].iloc[-1])} relevant found in {int(curve['screened'].iloc[-1])} screened "
        f"of {evidence.pool}, in the order they were screened."
    )
    if drawn:
        text += (
            f" Below: the recall {settings.rule} vouches for with {settings.confidence:.0%} confidence after each "
            f"number screened; it may stop once the orange line reaches the dashed target ({settings.target:.0%})."
        )
    if stopped_at is not None:
        text += f" Along this order it first said stop after {stopped_at} records."
    elif verdict.more_needed is not None and not verdict.stop:
        text += f" The dashed green line: where it would stop after {verdict.more_needed} more excludes in a row."
    if not settings.make().guarantee:
        text += f" {settings.rule} is a heuristic without a statistical claim: there is no lower bound to draw."
    return text


def _stop_flash(kind: str, message: str) -> None:
    st.session_state[STOP_FLASH] = (kind, message)


def on_undo_stop(stop_id: int, reviewer: str) -> None:
    st.session_state.pop(UNDO_CONFIRM, None)
    try:
        info = undo_stop(store, reviewer=reviewer, stage=state.STAGE, stop_id=stop_id)
    except ScreeningError as e:
        _stop_flash("error", str(e))
        return
    _stop_flash("success", f"Stop #{stop_id} undone: {info.records} records are open for screening again.")


def on_force_stop(reviewer: str, settings: StopSettings) -> None:
    note = (st.session_state.get("force_note") or "").strip()
    if not note:
        _stop_flash("error", "A forced stop needs a note: why screening ends although the rule does not say stop.")
        return
    try:
        result = stop_stage(store, reviewer=reviewer, stage=state.STAGE, force=True, note=note, **settings.as_kwargs())
    except ScreeningError as e:
        _stop_flash("error", str(e))
        return
    st.session_state["force_note"] = ""
    message = f"Stop #{result.stop.id}: {result.stop.describe()}."
    if result.still_open:
        message += f" {result.still_open} screened records still need a vote or a resolution."
    _stop_flash("warning" if result.stop.forced else "success", message)


def on_save_settings(reviewer: str) -> None:
    try:
        chosen = save_stop_settings(
            store,
            rule=st.session_state["stop_rule"],
            target=st.session_state["stop_target"] / 100,
            confidence=st.session_state["stop_confidence"] / 100,
            actor=reviewer,
        )
    except ScreeningError as e:
        _stop_flash("error", str(e))
        return
    _stop_flash("success", f"Stopping rule: {chosen.rule}, {chosen.claim}.")


def stop_table() -> None:
    rows = stops(store, state.STAGE)
    if not rows:
        st.caption("No stop at title/abstract yet.")
        return
    st.dataframe(
        [
            {
                "stop": f"#{r.id}",
                "state": "active" if r.active else f"undone (#{r.undone_by})",
                "forced": r.forced,
                "records not screened": r.records,
                "by": r.reviewer,
                "when": r.created_at.strftime("%Y-%m-%d %H:%M"),
                "what": r.describe(),
            }
            for r in rows
        ],
        hide_index=True,
    )


def stopping_section(evidence: StageEvidence, verdict: StopVerdict | None, settings: StopSettings) -> None:
    """The rule's verdict, the stops, and what an allowed reviewer may do: undo, force, set the rule."""
    st.subheader("Stopping early")
    if flash := st.session_state.pop(STOP_FLASH, None):
        getattr(st, flash[0])(flash[1])
    if verdict is not None:
        (st.success if verdict.stop else st.info)(verdict.reason)
    stop_table()
    reviewer = st.session_state.get(state.REVIEWER_KEY)
    if not reviewer:
        st.caption("Sign in to stop screening or undo a stop.")
        return
    with store.read() as s:
        allowed = may_stop(reviewer_by_name(s, reviewer), get_mode(s, state.STAGE).dual)
    if not allowed:
        st.caption("In dual screening only an adjudicator stops screening or undoes a stop.")
        return
    active = stops(store, state.STAGE, active_only=True)
    if active:
        latest = active[-1]
        if st.session_state.get(UNDO_CONFIRM) != latest.id:
            st.button(
                f"Undo stop #{latest.id}…",
                key="undo_stop",
                on_click=lambda: st.session_state.update({UNDO_CONFIRM: latest.id}),
            )
        else:
            st.warning(
                f"Undoing stop #{latest.id} takes back its automation excludes that still stand: those records "
                "are open for screening again. Records screened since keep their decisions."
            )
            yes, no = st.columns(2)
            yes.button(
                f"Yes, undo stop #{latest.id}",
                key="undo_stop_yes",
                type="primary",
                on_click=on_undo_stop,
                args=(latest.id, reviewer),
            )
            no.button("Cancel", key="undo_stop_cancel", on_click=lambda: st.session_state.pop(UNDO_CONFIRM, None))
    if evidence.unscreened and verdict is not None and verdict.stop:
        st.caption("The rule says stop: stop screening from the Screen page.")
    elif evidence.unscreened:
        with st.expander("Force stop… (without the statistical guarantee)"):
            st.markdown(
                f"The rule does **not** say stop: {settings.claim} is not shown. A forced stop excludes the "
                f"{evidence.unscreened} records nobody has screened all the same; it is recorded and "
                "reported (PRISMA, audit trail) as a **forced stop, without the rule's guarantee**, with your note."
            )
            st.text_area("Why stop now (required)", key="force_note")
            st.button(
                "Force stop title/abstract screening",
                key="force_stop",
                type="primary",
                on_click=on_force_stop,
                args=(reviewer, settings),
            )
    with st.expander("Stopping rule"):
        names = list(RULES)
        st.selectbox("Rule", names, index=names.index(settings.rule), key="stop_rule")
        st.number_input("Target recall (%)", 50, 99, round(settings.target * 100), key="stop_target")
        st.number_input("Confidence (%)", 50, 99, round(settings.confidence * 100), key="stop_confidence")
        st.button("Save stopping rule", key="stop_settings_save", on_click=on_save_settings, args=(reviewer,))


st.header("Progress")
report = status(store)
stage_counts = report.stages.get(state.STAGE, {})
cols = st.columns(4)
cols[0].metric(
    "Unique records",
    report.unique,
    help=f"Every imported record once: {report.records:,} imported, {report.duplicates:,} merged as duplicates.",
)
cols[1].metric(
    "Records left (title/abstract)",
    records_left(store, stage=state.STAGE),
    help="Unique records that still need a title/abstract decision from anyone (a vote, or a second vote in dual "
    "mode, or a resolution).",
)
cols[2].metric("Included", stage_counts.get("include", 0), help="Title/abstract outcome include (agreed or resolved).")
cols[3].metric(
    "Excluded", stage_counts.get("exclude", 0), help="Title/abstract outcome exclude by reviewers (not by a stop)."
)
st.caption(
    "These count unique records after deduplication. The PRISMA page's 'records screened' is smaller by the records "
    "removed before screening (retracted or withdrawn, or excluded by a stopping rule as automation)."
)

st.subheader("Decisions over time")
days = pd.DataFrame([d.__dict__ for d in decisions_over_time(store, state.STAGE)])
if days.empty:
    st.info("No screening decisions yet.")
else:
    st.bar_chart(days.pivot_table(index="day", columns="value", values="n", aggfunc="sum", fill_value=0))
    st.dataframe(days, hide_index=True)

st.subheader("Relevant records found, and when to stop")
settings = stop_settings(store)
with store.read() as session:
    evidence = stage_evidence(session, state.STAGE)
curve = pd.DataFrame([p.__dict__ for p in recall_curve(store, state.STAGE)])
verdict = state.stop_verdict(evidence.labels, evidence.pool, settings) if evidence.screened else None
if len(curve) > 1 and verdict is not None:
    bound, stopped_at = None, None
    if settings.make().guarantee and (evidence.screened <= AUTO_BOUND or st.session_state.get(DRAW_BOUND)):
        bound, stopped_at = rule_curve(evidence.labels, evidence.pool, settings)
    st.altair_chart(stop_chart(curve, bound, stopped_at, verdict, settings), width="stretch")
    st.caption(curve_caption(curve, evidence, verdict, settings, bound is not None, stopped_at))
    if bound is None and settings.make().guarantee:
        st.button(
            "Draw the rule's lower bound",
            key="progress_draw_bound",
            on_click=lambda: st.session_state.update({DRAW_BOUND: True}),
            help=f"{evidence.screened} records screened: the bound takes a while to compute at this size.",
        )
else:
    st.info("The curve appears after the first decisions.")

stopping_section(evidence, verdict, settings)

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
