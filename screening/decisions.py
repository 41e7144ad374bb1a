"""Screening decisions: append-only, per stage and reviewer, with conflicts and undo.

A decision is one row in ``decisions`` and is never changed: a change of mind is a
new row, and undo is a row with ``value='undo'`` pointing at the decision it
cancels. The state of a record is computed from its rows:

* each reviewer's *vote* is their latest decision that was not undone;
* a ``resolution`` (by a third reviewer, after a conflict) is final;
* otherwise the stage's mode decides: ``single`` takes the latest vote, ``dual``
  needs two reviewers who agree (a disagreement is a conflict);
* with no votes, an imported label (kind ``prior``) or an automation tool's
  decision (kind ``automation``) stands as a single-screening decision.

``maybe`` counts as undecided. Decisions on a duplicate record apply to its
canonical record (the group's id). Full text is only for reports sought (records
included at title/abstract); a full-text include or exclude needs the report to
have been retrieved, and a full-text exclusion needs exactly one configured reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from .errors import DecisionError, RecordNotFound
from .reviewers import (
    ReviewerInfo,
    ScreeningMode,
    check_stage,
    get_mode,
    list_reasons,
    match_reason,
    reviewer_by_name,
    reviewer_names,
)
from .schema import Decision, Record, Reviewer, utcnow
from .store import Store, audit

SCREEN_VALUES = ("include", "exclude", "maybe")
RETRIEVAL_VALUES = ("retrieved", "not_retrieved")
KINDS = ("screen", "prior", "resolution", "automation")

# statuses of a record at one stage
DECIDED = "decided"  # include or exclude is final
MAYBE = "maybe"  # the final word is 'maybe': still undecided
CONFLICT = "conflict"  # dual mode, reviewers disagree, no resolution yet
AWAITING = "awaiting"  # dual mode, one vote in, a second is needed
UNSCREENED = "unscreened"


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
    undone_by: int | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass
class StageState:
    """The effective decisions on one record (group) at one stage."""

    votes: dict[int, tuple[int, str, str | None]] = field(default_factory=dict)  # reviewer -> (id, value, reason)
    resolution: tuple[str, str | None] | None = None
    fallback: tuple[str, str | None, str] | None = None  # latest prior/automation: value, reason, kind
    retrieval: str | None = None


@dataclass
class StageData:
    """The effective decisions of every record group at one stage, column by column (fast to build)."""

    stage: str
    votes: dict[int, dict[int, tuple[int, str, str | None]]] = field(default_factory=dict)
    resolution: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    fallback: dict[int, tuple[str, str | None, str]] = field(default_factory=dict)
    retrieval: dict[int, str] = field(default_factory=dict)

    def groups(self) -> set[int]:
        return self.votes.keys() | self.resolution.keys() | self.fallback.keys() | self.retrieval.keys()

    def state(self, group: int) -> StageState | None:
        if not any(group in d for d in (self.votes, self.resolution, self.fallback, self.retrieval)):
            return None
        return StageState(
            votes=self.votes.get(group, {}),
            resolution=self.resolution.get(group),
            fallback=self.fallback.get(group),
            retrieval=self.retrieval.get(group),
        )


@dataclass(frozen=True)
class Outcome:
    """Where a record stands at one stage."""

    status: str
    value: str | None = None
    reason: str | None = None
    kind: str | None = None

    @property
    def final(self) -> str | None:
        """'include' or 'exclude' when decided, else None."""
        return self.value if self.status == DECIDED else None


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
def _canonical_map(session: Session) -> dict[int, int]:
    """Duplicate record id -> canonical id (usually a small table)."""
    query = select(Record.id, Record.canonical_id).where(Record.canonical_id.is_not(None))
    return {rid: canonical for rid, canonical in session.execute(query)}


def _fetch_plain(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
    """Rows as plain DB-API tuples, for the hot path where building row objects costs more than the query.

    Only for queries of integer and string columns with trusted bound values (stage names, ids).
    """
    connection = session.connection()
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def collect_stage(session: Session, stage: str, record_ids: Iterable[int] | None = None) -> StageData:
    """Effective decisions per canonical record at ``stage``: one narrow query, one pass.

    Rows are read in id order, so later rows replace earlier ones: each reviewer's
    vote is their latest decision that no undo row points at.
    """
    undone = select(Decision.undoes_id).where(Decision.undoes_id.is_not(None)).scalar_subquery()
    query = (
        select(Decision.record_id, Decision.id, Decision.reviewer_id, Decision.value, Decision.kind, Decision.reason)
        .where(Decision.stage == stage, Decision.undoes_id.is_(None), Decision.id.not_in(undone))
        .order_by(Decision.id)
    )
    if record_ids is not None:
        query = query.where(Decision.record_id.in_(list(record_ids)))
    rows = _fetch_plain(session, query)
    canonical = _canonical_map(session)
    data = StageData(stage)
    votes, resolution, fallback, retrieval = data.votes, data.resolution, data.fallback, data.retrieval
    for record_id, did, reviewer, value, kind, reason in rows:
        group = canonical.get(record_id, record_id)
        if kind == "screen":
            if value in RETRIEVAL_VALUES:
                retrieval[group] = value
                continue
            by_reviewer = votes.get(group)
            if by_reviewer is None:
                votes[group] = {reviewer: (did, value, reason)}
            else:
                by_reviewer[reviewer] = (did, value, reason)
        elif kind == "resolution":
            resolution[group] = (value, reason)
        else:
            fallback[group] = (value, reason, kind)
    return data


def _judge(
    votes: dict[int, tuple[int, str, str | None]] | None,
    resolution: tuple[str, str | None] | None,
    fallback: tuple[str, str | None, str] | None,
    dual: bool,
    full_text: bool,
) -> tuple[str, str | None, str | None, str | None]:
    """(status, value, reason, kind) of one record; the one place the screening rules live."""
    if resolution is not None:
        value, reason = resolution
        return (MAYBE if value == "maybe" else DECIDED, value, reason, "resolution")
    if votes and (not dual or len(votes) >= 2):
        if dual:
            keys = {(v, r if full_text and v == "exclude" else None) for _, v, r in votes.values()}
            if len(keys) > 1:
                return (CONFLICT, None, None, None)
        _, value, reason = max(votes.values())
        return (MAYBE if value == "maybe" else DECIDED, value, reason, "screen")
    if fallback is not None:
        value, reason, kind = fallback
        return (MAYBE if value == "maybe" else DECIDED, value, reason, kind)
    return (AWAITING if votes else UNSCREENED, None, None, None)


def outcome(state: StageState | None, mode: ScreeningMode) -> Outcome:
    """The record's standing at a stage under ``mode``.

    A resolution is final; else ``single`` takes the latest vote and ``dual`` needs
    two reviewers who agree (at full text, on the exclusion reason too); with no
    deciding votes, an imported label or automation decision stands.
    """
    if state is None:
        return Outcome(UNSCREENED)
    return Outcome(*_judge(state.votes, state.resolution, state.fallback, mode.dual, mode.stage == "full_text"))


def _judged(
    session: Session, stage: str, data: StageData | None = None
) -> Iterator[tuple[int, tuple[str, str | None, str | None, str | None]]]:
    data = data if data is not None else collect_stage(session, stage)
    dual = get_mode(session, stage).dual
    full_text = stage == "full_text"
    votes, resolution, fallback = data.votes, data.resolution, data.fallback
    for group in votes.keys() | resolution.keys() | fallback.keys():
        yield group, _judge(votes.get(group), resolution.get(group), fallback.get(group), dual, full_text)


def stage_outcomes(session: Session, stage: str, data: StageData | None = None) -> dict[int, Outcome]:
    """Every record's outcome at ``stage`` (records with no screening decisions are absent).

    Pass ``data`` from :func:`collect_stage` to reuse a read already made.
    """
    return {group: Outcome(*judged) for group, judged in _judged(session, stage, data)}


def retrievals(session: Session) -> dict[int, str]:
    """Canonical record id -> 'retrieved' or 'not_retrieved' (latest effective)."""
    return collect_stage(session, "full_text").retrieval


def current_labels(session: Session, stage: str = "title_abstract") -> dict[int, str]:
    """Canonical record id -> final 'include' | 'exclude' | 'maybe' at ``stage``.

    Records awaiting a second reviewer, in conflict, or never screened are absent.
    """
    check_stage(stage)
    return {group: judged[1] for group, judged in _judged(session, stage) if judged[0] in (DECIDED, MAYBE)}


# -- records and groups ---------------------------------------------------------
def _canonical(session: Session, record_id: int) -> Record:
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


def _members(session: Session, canonical_id: int) -> list[int]:
    """The canonical record and its duplicates."""
    return list(
        session.scalars(
            select(Record.id)
            .where(or_(Record.id == canonical_id, Record.canonical_id == canonical_id))
            .order_by(Record.id)
        )
    )


def _state(session: Session, canonical_id: int, stage: str) -> StageState | None:
    return collect_stage(session, stage, _members(session, canonical_id)).state(canonical_id)


def _describe(o: Outcome) -> str:
    if o.status == DECIDED:
        return o.value or ""
    return o.status


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
    action: str = "decide",
) -> DecisionResult:
    row = Decision(
        record_id=record.id,
        reviewer_id=reviewer.id,
        stage=stage,
        value=value,
        kind=kind,
        reason=reason,
        note=note,
        undoes_id=undoes_id,
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    detail = {"decision_id": row.id, "record_id": record.id, "stage": stage, "value": value, "kind": kind}
    if requested != record.id:
        detail["requested_record_id"] = requested
    if reason:
        detail["reason"] = reason
    if undoes_id is not None:
        detail["undoes_id"] = undoes_id
    audit(session, action, detail, actor=reviewer.name)
    return DecisionResult(
        id=row.id,
        record_id=record.id,
        requested_record_id=requested,
        reviewer=reviewer.name,
        stage=stage,
        value=value,
        kind=kind,
        reason=reason,
        note=note,
        created_at=row.created_at,
        undoes_id=undoes_id,
    )


def _clean_reason(session: Session, stage: str, value: str, reason: str | None) -> str | None:
    reason = " ".join(reason.split()) if reason else None
    if stage == "title_abstract":
        return reason
    if value == "exclude":
        if not reason:
            allowed = "; ".join(repr(t) for t in list_reasons(session, "full_text"))
            raise DecisionError(
                "--reason: a full-text exclusion needs exactly one reason from the project's list"
                + (f": {allowed}" if allowed else " (none configured: 'screening reasons add TEXT')")
            )
        return match_reason(session, stage, reason)
    if reason:
        raise DecisionError(f"--reason: a full-text {value!r} takes no exclusion reason (got {reason!r})")
    return None


def _check_full_text(session: Session, record: Record) -> StageState | None:
    """Full text is only for reports sought: records included at title/abstract."""
    ta = outcome(_state(session, record.id, "title_abstract"), get_mode(session, "title_abstract"))
    if ta.final != "include":
        raise DecisionError(
            f"record {record.id} is not a report sought for full text: its title/abstract status is "
            f"{_describe(ta)!r}; only records included at title/abstract go to full text"
        )
    return _state(session, record.id, "full_text")


def _check_value(value: str) -> str:
    if value not in SCREEN_VALUES:
        raise DecisionError(f"decision: {value!r} is not one of {', '.join(SCREEN_VALUES)}")
    return value


def decide(
    store: Store,
    record_id: int,
    value: str,
    *,
    reviewer: str,
    stage: str = "title_abstract",
    reason: str | None = None,
    note: str | None = None,
    kind: str = "screen",
    now: datetime | None = None,
) -> DecisionResult:
    """Record one reviewer's include/exclude/maybe on a record, as a new row."""
    check_stage(stage)
    _check_value(value)
    if kind not in KINDS:
        raise DecisionError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "resolution":
        return resolve(store, record_id, value, reviewer=reviewer, stage=stage, reason=reason, note=note, now=now)
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer)
        record = _canonical(s, record_id)
        if stage == "full_text":
            state = _check_full_text(s, record)
            if (state.retrieval if state else None) != "retrieved":
                raise DecisionError(
                    f"record {record.id}: the full-text report must be retrieved before a full-text decision; "
                    f"record it with 'screening fulltext {record.id} --retrieved yes --reviewer NAME'"
                )
        clean = _clean_reason(s, stage, value, reason)
        return _write(
            s, record, int(record_id), who, stage=stage, value=value, kind=kind, reason=clean, note=note, now=now
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
    now: datetime | None = None,
) -> DecisionResult:
    """A third reviewer settles a conflict; the decision is kept as a resolution."""
    check_stage(stage)
    _check_value(value)
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer)
        record = _canonical(s, record_id)
        state = _state(s, record.id, stage)
        current = outcome(state, get_mode(s, stage))
        if current.status != CONFLICT:
            raise DecisionError(
                f"record {record.id} has no conflict to resolve at {stage} (status: {_describe(current)!r})"
            )
        if state is not None and who.id in state.votes:
            raise DecisionError(
                f"--reviewer: {who.name!r} already screened record {record.id} at {stage}; "
                "a conflict is resolved by a third reviewer"
            )
        clean = _clean_reason(s, stage, value, reason)
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
        who = reviewer_by_name(s, reviewer)
        record = _canonical(s, record_id)
        _check_full_text(s, record)
        value = "retrieved" if retrieved else "not_retrieved"
        return _write(
            s,
            record,
            int(record_id),
            who,
            stage="full_text",
            value=value,
            kind="screen",
            reason=None,
            note=note,
            now=now,
            action="retrieval",
        )


def undo(store: Store, *, reviewer: str, stage: str | None = None, now: datetime | None = None) -> DecisionResult:
    """Cancel ``reviewer``'s latest decision that is not yet undone (optionally at one stage)."""
    if stage is not None:
        check_stage(stage)
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer)
        undone = select(Decision.undoes_id).where(Decision.undoes_id.is_not(None))
        query = (
            select(Decision)
            .where(Decision.reviewer_id == who.id, Decision.value != "undo", Decision.id.not_in(undone))
            .order_by(Decision.id.desc())
            .limit(1)
        )
        if stage is not None:
            query = query.where(Decision.stage == stage)
        target = s.scalar(query)
        if target is None:
            where = f" at {stage}" if stage else ""
            raise DecisionError(f"--reviewer: {who.name!r} has no decision{where} left to undo")
        record = s.get(Record, target.record_id)
        assert record is not None
        return _write(
            s,
            record,
            record.id,
            who,
            stage=target.stage,
            value="undo",
            kind=target.kind,
            reason=None,
            note=f"undo of decision {target.id} ({target.value})",
            now=now,
            undoes_id=target.id,
            action="undo",
        )


# -- history, status, conflicts -------------------------------------------------
def _entries(session: Session, canonical_id: int, stage: str | None = None) -> list[HistoryEntry]:
    query = (
        select(Decision, Reviewer.name)
        .outerjoin(Reviewer, Reviewer.id == Decision.reviewer_id)
        .where(Decision.record_id.in_(_members(session, canonical_id)))
        .order_by(Decision.id)
    )
    if stage is not None:
        query = query.where(Decision.stage == stage)
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
            undone_by=undone_by.get(d.id),
        )
        for d, name in rows
    ]


def history(store: Store, record_id: int) -> list[HistoryEntry]:
    """Every decision on the record's group (it and its duplicates), oldest first."""
    with store.read() as s:
        return _entries(s, _canonical(s, record_id).id)


def visible_decisions(
    store: Store, record_id: int, *, viewer: str, stage: str = "title_abstract"
) -> list[HistoryEntry]:
    """What ``viewer`` may see of a record's decisions at ``stage``.

    In blind mode, other people's decisions stay hidden until two reviewers have
    voted on the record (or it was resolved).
    """
    check_stage(stage)
    with store.read() as s:
        who = reviewer_by_name(s, viewer)
        record = _canonical(s, record_id)
        entries = _entries(s, record.id, stage)
        mode = get_mode(s, stage)
        if not mode.blind:
            return entries
        state = _state(s, record.id, stage)
        if state is not None and (len(state.votes) >= 2 or state.resolution is not None):
            return entries
        return [e for e in entries if e.reviewer == who.name]


def record_status(store: Store, record_id: int) -> RecordStatus:
    """Where a record stands at both stages, with its duplicates."""
    with store.read() as s:
        record = _canonical(s, record_id)
        members = _members(s, record.id)
        ta = outcome(_state(s, record.id, "title_abstract"), get_mode(s, "title_abstract"))
        ft_state = _state(s, record.id, "full_text")
        return RecordStatus(
            record_id=record.id,
            requested_record_id=int(record_id),
            duplicate_ids=[m for m in members if m != record.id],
            title=record.title or "",
            title_abstract=ta,
            full_text=outcome(ft_state, get_mode(s, "full_text")),
            retrieval=ft_state.retrieval if ft_state else None,
        )


def conflicts(store: Store, stage: str = "title_abstract") -> list[ConflictInfo]:
    """Records where dual-screening reviewers disagree and no resolution exists yet."""
    check_stage(stage)
    with store.read() as s:
        data = collect_stage(s, stage)
        ids = [gid for gid, judged in _judged(s, stage, data) if judged[0] == CONFLICT]
        if not ids:
            return []
        names = reviewer_names(s)
        titles = {rid: title for rid, title in s.execute(select(Record.id, Record.title).where(Record.id.in_(ids)))}
        return [
            ConflictInfo(
                record_id=gid,
                title=titles.get(gid) or "",
                votes={names[r]: (v, reason) for r, (_, v, reason) in sorted(data.votes[gid].items())},
            )
            for gid in sorted(ids)
        ]
