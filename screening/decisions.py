"""Screening decisions: append-only, per stage and reviewer, with conflicts, revisions and undo.

A decision is one row in ``decisions`` and is never changed: undo is a row with
``value='undo'`` pointing at the decision it cancels, and a *revision* (changing a
decision already made) is an undo of the earlier decision plus the new decision,
written in one transaction. How rows add up to a record's standing lives in
:mod:`screening.snapshot`.

Every write checks the state it depends on inside its own transaction (see
:mod:`screening.store`), so two reviewers cannot both decide a record in single mode,
undo one decision twice, or resolve one conflict twice:

* single mode: one decision per record. A decision on a record already decided (by
  anyone, an imported label included) is refused with who decided it, unless the call
  says ``revise=True``;
* dual mode: one vote per reviewer, two per record; a reviewer revises only their own vote,
  and a disagreement goes to a third reviewer (:func:`resolve`).

Decisions on a duplicate record apply to its canonical record (the group's id). Full text
is only for reports sought (records included at title/abstract); a full-text include or
exclude needs the report to have been retrieved, and a full-text exclusion needs exactly
one configured reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access
from .errors import AlreadyDecided, DecisionError, RecordNotFound
from .reviewers import (
    ReviewerInfo,
    check_stage,
    list_reasons,
    match_reason,
    reviewer_by_name,
    reviewer_names,
)
from .schema import Decision, Lease, Record, Reviewer, Stage, utcnow
from .snapshot import (
    AWAITING,
    CONFLICT,
    DECIDED,
    MAYBE,
    RETRIEVAL_VALUES,
    SCREEN_VALUES,
    UNSCREENED,
    Outcome,
    StageSnapshot,
    read_stage,
)
from .store import Store, audit, guard_decisions, lock_rows

__all__ = [
    "AWAITING",
    "CONFLICT",
    "DECIDED",
    "MAYBE",
    "RETRIEVAL_VALUES",
    "SCREEN_VALUES",
    "UNSCREENED",
    "Outcome",
]
KINDS = ("screen", "prior", "resolution", "automation")


@dataclass(frozen=True)
class DecisionResult:
    """One decision row as written, and which record it applies to."""

    id: int
    record_id: int
    requested_record_id: int
    reviewer: str
    stage: str
    value: str
    kind: str
    reason: str | None
    note: str | None
    created_at: datetime
    undoes_id: int | None = None
    revises_id: int | None = None

    @property
    def redirected(self) -> bool:
        """True when the requested record is a duplicate and the decision went to its canonical record."""
        return self.record_id != self.requested_record_id


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a record's decision history, with whether it was undone later."""

    id: int
    record_id: int
    stage: str
    value: str
    kind: str
    reviewer: str
    reason: str | None
    note: str | None
    created_at: datetime
    undoes_id: int | None
    revises_id: int | None
    undone_by: int | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass(frozen=True)
class ConflictInfo:
    record_id: int
    title: str
    votes: dict[str, tuple[str, str | None]]


@dataclass(frozen=True)
class RecordStatus:
    record_id: int
    requested_record_id: int
    duplicate_ids: list[int]
    title: str
    title_abstract: Outcome
    full_text: Outcome
    retrieval: str | None

    @property
    def sought(self) -> bool:
        return self.title_abstract.final == "include"


# -- reading state ---------------------------------------------------------------
def collect_stage(session: Session, stage: str, record_ids: list[int] | None = None) -> StageSnapshot:
    """The stage's read model in this transaction (see :func:`screening.snapshot.read_stage`)."""
    return read_stage(session, stage, record_ids)


def stage_outcomes(session: Session, stage: str, data: StageSnapshot | None = None) -> dict[int, Outcome]:
    """Every record group's outcome at ``stage`` (groups no decision touches are absent)."""
    return (data if data is not None else read_stage(session, stage)).outcomes


def retrievals(session: Session) -> dict[int, str]:
    """Canonical record id -> 'retrieved' or 'not_retrieved' (latest effective)."""
    return read_stage(session, Stage.FULL_TEXT).retrieval


def current_labels(session: Session, stage: str = Stage.TITLE_ABSTRACT) -> dict[int, str]:
    """Canonical record id -> final 'include' | 'exclude' | 'maybe' at ``stage``.

    Records awaiting a second reviewer, in conflict, or never screened are absent.
    """
    return read_stage(session, stage).labels()


# -- records and groups ---------------------------------------------------------
def canonical_record(session: Session, record_id: int) -> Record:
    record = session.get(Record, int(record_id))
    if record is None:
        raise RecordNotFound(f"RECORD: no record with id {record_id} in this project")
    seen = {record.id}
    while record.canonical_id is not None:
        record = session.get(Record, record.canonical_id)
        if record is None or record.id in seen:
            raise RecordNotFound(f"RECORD: record {record_id} points at a missing canonical record")
        seen.add(record.id)
    return record


def group_members(session: Session, canonical_id: int) -> list[int]:
    """The ids of a canonical record and its duplicates."""
    return list(
        session.scalars(
            select(Record.id)
            .where(or_(Record.id == canonical_id, Record.canonical_id == canonical_id))
            .order_by(Record.id)
        )
    )


def _group_state(session: Session, canonical_id: int, stage: str) -> StageSnapshot:
    """The read model of one record group: what a write on it is checked against."""
    return read_stage(session, stage, group_members(session, canonical_id))


def _locked_group(session: Session, record_id: int) -> Record:
    """The canonical record of ``record_id``, locked against other writers until the transaction ends."""
    guard_decisions(session)
    record = canonical_record(session, record_id)
    lock_rows(session, select(Record.id).where(Record.id == record.id))
    session.refresh(record)
    if record.canonical_id is not None:  # merged while we waited for the lock
        return _locked_group(session, record.canonical_id)
    return record


def _describe(o: Outcome) -> str:
    if o.status == DECIDED:
        return o.value or ""
    return o.status


def _decided_by(session: Session, decision_id: int) -> tuple[str, str]:
    """(reviewer name, 'YYYY-MM-DD HH:MM UTC') of one decision row, for messages."""
    row = session.execute(
        select(Reviewer.name, Decision.created_at)
        .select_from(Decision)
        .outerjoin(Reviewer, Reviewer.id == Decision.reviewer_id)
        .where(Decision.id == decision_id)
    ).one()
    return row[0] or "unknown", row[1].strftime("%Y-%m-%d %H:%M UTC")


# -- writing ---------------------------------------------------------------------
def _write(
    session: Session,
    record: Record,
    requested: int,
    reviewer: ReviewerInfo,
    *,
    stage: str,
    value: str,
    kind: str,
    reason: str | None,
    note: str | None,
    now: datetime | None,
    undoes_id: int | None = None,
    revises_id: int | None = None,
    action: str = "decide",
) -> DecisionResult:
    row = Decision(
        record_id=record.id,
        reviewer_id=reviewer.id,
        stage=str(stage),
        value=value,
        kind=kind,
        reason=reason,
        note=note,
        undoes_id=undoes_id,
        revises_id=revises_id,
        created_at=now or utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:  # a unique rule in the database: someone else wrote first
        raise DecisionError(
            f"record {record.id}: another reviewer changed it at the same moment ({_rule(e)}); nothing recorded"
        ) from e
    detail: dict[str, Any] = {
        "decision_id": row.id,
        "record_id": record.id,
        "stage": str(stage),
        "value": value,
        "kind": kind,
    }
    if requested != record.id:
        detail["requested_record_id"] = requested
    if reason:
        detail["reason"] = reason
    if undoes_id is not None:
        detail["undoes_id"] = undoes_id
    if revises_id is not None:
        detail["revises_id"] = revises_id
    audit(session, action, detail, actor=reviewer.name)
    return DecisionResult(
        id=row.id,
        record_id=record.id,
        requested_record_id=requested,
        reviewer=reviewer.name,
        stage=str(stage),
        value=value,
        kind=kind,
        reason=reason,
        note=note,
        created_at=row.created_at,
        undoes_id=undoes_id,
        revises_id=revises_id,
    )


def _rule(error: IntegrityError) -> str:
    text = str(error.orig)
    if "undoes_id" in text:
        return "that decision is undone already"
    if "resolution" in text:
        return "it is resolved already"
    return text.splitlines()[0]


def _undo_row(
    session: Session, record: Record, who: ReviewerInfo, target: Decision | Any, *, now: datetime | None, revision: bool
) -> DecisionResult:
    """An undo row for ``target``; ``revision`` marks it as written by a revision (undoing that brings it back)."""
    return _write(
        session,
        record,
        record.id,
        who,
        stage=target.stage,
        value="undo",
        kind=target.kind,
        reason=None,
        note=f"undo of decision {target.id} ({target.value})" + (" by a revision" if revision else ""),
        now=now,
        undoes_id=target.id,
        revises_id=target.id if revision else None,
        action="undo",
    )


def _clean_reason(session: Session, stage: str, value: str, reason: str | None) -> str | None:
    reason = " ".join(reason.split()) if reason else None
    if stage == Stage.TITLE_ABSTRACT:
        return reason
    if value == "exclude":
        if not reason:
            allowed = "; ".join(repr(t) for t in list_reasons(session, Stage.FULL_TEXT))
            raise DecisionError(
                "--reason: a full-text exclusion needs exactly one reason from the project's list"
                + (f": {allowed}" if allowed else " (none configured: 'screening reasons add TEXT')")
            )
        return match_reason(session, stage, reason)
    if reason:
        raise DecisionError(f"--reason: a full-text {value!r} takes no exclusion reason (got {reason!r})")
    return None


def _check_full_text(session: Session, record: Record) -> StageSnapshot:
    """Full text is only for reports sought: records included at title/abstract."""
    ta = _group_state(session, record.id, Stage.TITLE_ABSTRACT).outcome(record.id)
    if ta.final != "include":
        raise DecisionError(
            f"record {record.id} is not a report sought for full text: its title/abstract status is "
            f"{_describe(ta)!r}; only records included at title/abstract go to full text"
        )
    return _group_state(session, record.id, Stage.FULL_TEXT)


def _check_value(value: str) -> str:
    if value not in SCREEN_VALUES:
        raise DecisionError(f"decision: {value!r} is not one of {', '.join(SCREEN_VALUES)}")
    return value


def _release_lease(session: Session, record_id: int, stage: str, reviewer_id: int) -> None:
    """The record is decided: it leaves the reviewer's screen."""
    session.query(Lease).filter(
        Lease.record_id == record_id, Lease.stage == str(stage), Lease.reviewer_id == reviewer_id
    ).delete(synchronize_session=False)


def _closed_message(session: Session, snap: StageSnapshot, record: Record, who: ReviewerInfo) -> AlreadyDecided:
    """Why ``who`` cannot simply decide this record, naming who decided it and how to change it."""
    group, stage = record.id, snap.stage
    current = snap.outcome(group)
    mine = snap.vote_of(group, who.id)
    if mine is not None:
        _, when = _decided_by(session, mine.id)
        return AlreadyDecided(
            f"record {group}: you ({who.name}) already decided {mine.value!r} at {stage} ({when}); "
            "nothing recorded. To change it, decide again with --revise",
            record_id=group,
            decided_by=(who.name,),
            value=mine.value,
        )
    if current.kind == "resolution":
        name, when = _decided_by(session, current.decision_id)
        return AlreadyDecided(
            f"record {group} was resolved at {stage} by {name} ({current.value}, {when}); nothing recorded. "
            f"An adjudicator changes it with 'screening resolve {group} VALUE --stage {stage} --revise'",
            record_id=group,
            decided_by=(name,),
            value=current.value,
        )
    voters = snap.votes.get(group, {})
    if snap.mode.dual and len(voters) >= 2:
        names = reviewer_names(session)
        votes = ", ".join(f"{names.get(r, r)}: {v.value}" for r, v in sorted(voters.items()))
        return AlreadyDecided(
            f"record {group} already has the two votes dual screening needs at {stage} ({votes}); nothing "
            "recorded. A disagreement goes to an adjudicator ('screening conflicts')",
            record_id=group,
            decided_by=tuple(names.get(r, str(r)) for r in sorted(voters)),
            value=current.value,
        )
    name, when = _decided_by(session, current.decision_id) if current.decision_id else ("someone", "")
    how = " (imported label)" if current.kind == "prior" else " (automation)" if current.kind == "automation" else ""
    return AlreadyDecided(
        f"record {group} is already decided at {stage}: {current.value} by {name}{how}"
        + (f", {when}" if when else "")
        + "; nothing recorded. To change it, decide again with --revise",
        record_id=group,
        decided_by=(name,),
        value=current.value,
    )


def _revision_target(snap: StageSnapshot, group: int, who: ReviewerInfo) -> int | None:
    """The decision a revision by ``who`` replaces, or None when ``who`` may not revise this record."""
    mine = snap.vote_of(group, who.id)
    if mine is not None:
        return mine.id
    current = snap.outcome(group)
    if current.kind == "resolution":
        return None  # changed through resolve(..., revise=True)
    if snap.mode.dual and len(snap.votes.get(group, {})) >= 2:
        return None  # another reviewer's vote in dual screening is theirs to change
    return current.decision_id


def _person(who: Reviewer, doing: str) -> Reviewer:
    """The reviewer, if a person: the system reviewer (imported labels) never votes, resolves or undoes."""
    if who.role == "system":
        raise DecisionError(f"--reviewer: {who.name!r} is the system reviewer of imported labels; {doing} as a person")
    return who


def decide(
    store: Store,
    record_id: int,
    value: str,
    *,
    reviewer: str,
    stage: str = Stage.TITLE_ABSTRACT,
    reason: str | None = None,
    note: str | None = None,
    kind: str = "screen",
    revise: bool = False,
    now: datetime | None = None,
) -> DecisionResult:
    """Record one reviewer's include/exclude/maybe on a record, as a new row.

    The record must still take this reviewer's decision, checked in the same transaction
    as the write: otherwise :class:`AlreadyDecided` names who decided it. ``revise=True``
    changes the decision instead, as an undo of it plus the new decision.
    """
    stage = Stage(check_stage(stage))
    _check_value(value)
    if kind not in KINDS:
        raise DecisionError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "resolution":
        return resolve(
            store, record_id, value, reviewer=reviewer, stage=stage, reason=reason, note=note, revise=revise, now=now
        )
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer, "record a decision")
        if kind in ("screen", "resolution"):
            _person(who, "screen")
        else:
            access.require_owner(s, f"record a decision of kind {kind!r}")
        record = _locked_group(s, record_id)
        if stage == Stage.FULL_TEXT:
            snap = _check_full_text(s, record)
            if snap.retrieval.get(record.id) != "retrieved":
                raise DecisionError(
                    f"record {record.id}: the full-text report must be retrieved before a full-text decision; "
                    f"record it with 'screening fulltext {record.id} --retrieved yes --reviewer NAME'"
                )
        else:
            snap = _group_state(s, record.id, stage)
        clean = _clean_reason(s, stage, value, reason)
        write = dict(stage=stage, value=value, kind=kind, reason=clean, note=note, now=now)
        _release_lease(s, record.id, stage, who.id)
        if kind != "screen" or snap.is_open(record.id, who.id):
            return _write(s, record, int(record_id), who, **write)
        target_id = _revision_target(snap, record.id, who)
        if not revise or target_id is None:
            raise _closed_message(s, snap, record, who)
        _undo_row(s, record, who, s.get(Decision, target_id), now=now, revision=True)
        return _write(s, record, int(record_id), who, revises_id=target_id, action="revise", **write)


def _resolution_chain_head(session: Session, members: list[int], stage: str) -> int | None:
    """The record's latest resolution row at ``stage``, live or undone: the next one names it."""
    return session.scalar(
        select(Decision.id)
        .where(
            Decision.record_id.in_(members),
            Decision.stage == str(stage),
            Decision.kind == "resolution",
            Decision.value != "undo",
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )


def resolve(
    store: Store,
    record_id: int,
    value: str,
    *,
    reviewer: str,
    stage: str,
    reason: str | None = None,
    note: str | None = None,
    revise: bool = False,
    now: datetime | None = None,
) -> DecisionResult:
    """A third reviewer settles a conflict; the decision is kept as a resolution.

    A record is resolved once: a second resolution is refused with who resolved it,
    unless ``revise=True`` (the earlier resolution is undone in the same transaction).
    The database holds the rule too: each resolution names the one before it, uniquely.
    """
    stage = Stage(check_stage(stage))
    _check_value(value)
    with store.begin() as s:
        who = _person(reviewer_by_name(s, reviewer, "resolve a conflict"), "resolve a conflict")
        access.require_role(s, access.RESOLVERS, "resolve a conflict")
        record = _locked_group(s, record_id)
        members = group_members(s, record.id)
        snap = read_stage(s, stage, members)
        current = snap.outcome(record.id)
        live = snap.resolution.get(record.id)
        if live is not None and not revise:
            name, when = _decided_by(s, live.id)
            raise AlreadyDecided(
                f"record {record.id} was already resolved at {stage} by {name} ({live.value}, {when}); "
                "nothing recorded. To change it, resolve again with --revise",
                record_id=record.id,
                decided_by=(name,),
                value=live.value,
            )
        if live is None and current.status != CONFLICT:
            raise DecisionError(
                f"record {record.id} has no conflict to resolve at {stage} (status: {_describe(current)!r})"
            )
        if who.id in snap.votes.get(record.id, {}):
            raise DecisionError(
                f"--reviewer: {who.name!r} already screened record {record.id} at {stage}; "
                "a conflict is resolved by a third reviewer"
            )
        clean = _clean_reason(s, stage, value, reason)
        previous = _resolution_chain_head(s, members, stage)
        if live is not None:
            _undo_row(s, record, who, s.get(Decision, live.id), now=now, revision=True)
        return _write(
            s,
            record,
            int(record_id),
            who,
            stage=stage,
            value=value,
            kind="resolution",
            reason=clean,
            note=note,
            now=now,
            revises_id=previous,
            action="resolve",
        )


def set_retrieval(
    store: Store,
    record_id: int,
    retrieved: bool,
    *,
    reviewer: str,
    note: str | None = None,
    now: datetime | None = None,
) -> DecisionResult:
    """Record whether the full-text report of a sought record was retrieved."""
    with store.begin() as s:
        who = _person(reviewer_by_name(s, reviewer, "record a retrieval"), "record a full-text retrieval")
        record = _locked_group(s, record_id)
        _check_full_text(s, record)
        value = "retrieved" if retrieved else "not_retrieved"
        return _write(
            s,
            record,
            int(record_id),
            who,
            stage=Stage.FULL_TEXT,
            value=value,
            kind="screen",
            reason=None,
            note=note,
            now=now,
            action="retrieval",
        )


def _undone_ids(session: Session) -> set[int]:
    return set(session.scalars(select(Decision.undoes_id).where(Decision.undoes_id.is_not(None))))


def _restore(
    session: Session, who: ReviewerInfo, revised: Decision, revision: Decision, *, now: datetime | None
) -> None:
    """Bring back a decision that ``revision`` replaced, as a copy: a decision is undone at most once.

    The copy names the undone revision as the decision it replaces (which keeps a restored
    resolution on the record's resolution chain).
    """
    row = Decision(
        revises_id=revision.id,
        record_id=revised.record_id,
        reviewer_id=revised.reviewer_id,
        stage=revised.stage,
        value=revised.value,
        kind=revised.kind,
        reason=revised.reason,
        stop_id=revised.stop_id,
        note=f"decision {revised.id} restored: the revision that replaced it was undone",
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    detail = {"decision_id": row.id, "record_id": row.record_id, "stage": row.stage, "value": row.value}
    audit(session, "restore", {**detail, "restores_id": revised.id}, actor=who.name)


def undo(
    store: Store,
    *,
    reviewer: str,
    stage: str | None = None,
    decision_id: int | None = None,
    now: datetime | None = None,
) -> DecisionResult:
    """Cancel ``reviewer``'s latest live decision (optionally at one stage, or exactly ``decision_id``).

    Undoing a revision brings back the decision it replaced (as a copy, in the same
    transaction). A decision is undone at most once: the database refuses a second undo row.
    """
    if stage is not None:
        stage = Stage(check_stage(stage))
    with store.begin() as s:
        who = _person(reviewer_by_name(s, reviewer, "undo a decision"), "undo")
        lock_rows(s, select(Reviewer.id).where(Reviewer.id == who.id))  # one undo of this reviewer at a time
        undone = _undone_ids(s)
        query = select(Decision).where(Decision.reviewer_id == who.id, Decision.value != "undo")
        if stage is not None:
            query = query.where(Decision.stage == str(stage))
        if decision_id is not None:
            query = query.where(Decision.id == int(decision_id))
        target = next((d for d in s.scalars(query.order_by(Decision.id.desc())) if d.id not in undone), None)
        if target is None:
            where = f" at {stage}" if stage else ""
            which = f" (decision {decision_id})" if decision_id is not None else ""
            raise DecisionError(f"--reviewer: {who.name!r} has no decision{where}{which} left to undo")
        _locked_group(s, target.record_id)
        result = _undo_row(s, s.get(Record, target.record_id), who, target, now=now, revision=False)
        revision_undo = target.revises_id is not None and s.scalar(
            select(Decision.id).where(Decision.undoes_id == target.revises_id, Decision.revises_id.is_not(None))
        )
        if revision_undo:  # a revision: bring back what it replaced
            _restore(s, who, s.get(Decision, target.revises_id), target, now=now)
        return result


# -- history, status, conflicts -------------------------------------------------
def _entries(session: Session, canonical_id: int, stage: str | None = None) -> list[HistoryEntry]:
    query = (
        select(Decision, Reviewer.name)
        .outerjoin(Reviewer, Reviewer.id == Decision.reviewer_id)
        .where(Decision.record_id.in_(group_members(session, canonical_id)))
        .order_by(Decision.id)
    )
    if stage is not None:
        query = query.where(Decision.stage == str(stage))
    rows = session.execute(query).all()
    undone_by = {d.undoes_id: d.id for d, _ in rows if d.undoes_id is not None}
    return [
        HistoryEntry(
            id=d.id,
            record_id=d.record_id,
            stage=d.stage,
            value=d.value,
            kind=d.kind,
            reviewer=name or "",
            reason=d.reason,
            note=d.note,
            created_at=d.created_at,
            undoes_id=d.undoes_id,
            revises_id=d.revises_id,
            undone_by=undone_by.get(d.id),
        )
        for d, name in rows
    ]


def history(store: Store, record_id: int) -> list[HistoryEntry]:
    """Every decision on the record's group (it and its duplicates), oldest first.

    For a signed-in identity (``screening.access``), what blind mode lets them see: see
    :func:`visible_decisions`.
    """
    with store.read() as s:
        record = canonical_record(s, record_id)
        entries = _entries(s, record.id)
        who = access.identity_of(s)
        if who is None:
            return entries
        hidden = {stage for stage in Stage if _blind_for(s, record.id, stage)}
        return [e for e in entries if e.stage not in hidden or e.reviewer == who.name]


def _blind_for(session: Session, canonical_id: int, stage: str) -> bool:
    """True while blind mode hides others' decisions on the record at ``stage`` (fewer than two votes, unresolved)."""
    snap = _group_state(session, canonical_id, stage)
    if not snap.mode.blind:
        return False
    return len(snap.votes.get(canonical_id, {})) < 2 and canonical_id not in snap.resolution


def visible_decisions(
    store: Store, record_id: int, *, viewer: str, stage: str = Stage.TITLE_ABSTRACT
) -> list[HistoryEntry]:
    """What ``viewer`` may see of a record's decisions at ``stage``.

    In blind mode, other people's decisions stay hidden until two reviewers have
    voted on the record (or it was resolved).
    """
    stage = Stage(check_stage(stage))
    with store.read() as s:
        who = reviewer_by_name(s, viewer, "see decisions")
        record = canonical_record(s, record_id)
        entries = _entries(s, record.id, stage)
        if not _blind_for(s, record.id, stage):
            return entries
        return [e for e in entries if e.reviewer == who.name]


def record_status(store: Store, record_id: int) -> RecordStatus:
    """Where a record stands at both stages, with its duplicates."""
    with store.read() as s:
        record = canonical_record(s, record_id)
        members = group_members(s, record.id)
        ta = read_stage(s, Stage.TITLE_ABSTRACT, members).outcome(record.id)
        ft = read_stage(s, Stage.FULL_TEXT, members)
        return RecordStatus(
            record_id=record.id,
            requested_record_id=int(record_id),
            duplicate_ids=[m for m in members if m != record.id],
            title=record.title or "",
            title_abstract=ta,
            full_text=ft.outcome(record.id),
            retrieval=ft.retrieval.get(record.id),
        )


def conflicts(store: Store, stage: str = Stage.TITLE_ABSTRACT) -> list[ConflictInfo]:
    """Records where dual-screening reviewers disagree and no resolution exists yet."""
    stage = Stage(check_stage(stage))
    with store.read() as s:
        snap = read_stage(s, stage)
        ids = snap.conflicts()
        if not ids:
            return []
        names = reviewer_names(s)
        titles = {rid: title for rid, title in s.execute(select(Record.id, Record.title).where(Record.id.in_(ids)))}
        return [
            ConflictInfo(
                record_id=gid,
                title=titles.get(gid) or "",
                votes={names[r]: (v.value, v.reason) for r, v in sorted(snap.votes[gid].items())},
            )
            for gid in ids
        ]
