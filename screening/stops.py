"""Ending title/abstract screening early, when a stopping rule says the target recall is reached.

:func:`stage_evidence` turns a stage's screening state into what a rule reads (see
:mod:`screening.stopping`): the labels in the order records were first screened by a
person, and the size of the pool. A record still undecided in that order (``maybe``, a
conflict, or awaiting a second vote) counts as an include when any live vote on it is an
include or a maybe: the rule then errs towards reading on. Records excluded by an earlier
stop count as unscreened, so a second stop (after a living-review update) is judged on
everything the stops left unread.

:func:`stop_stage` writes one ``stops`` row with the rule, its parameters and its numbers,
and an automation exclude (``Decision.stop_id``) for every record no one has screened yet,
in one transaction. PRISMA 2020 counts those as "records marked as ineligible by
automation tools". Records imported later have no decision, so they are open again, and
only they are. A person may still screen a stopped record: their decision replaces the
automation exclude (``decide(..., revise=True)``). :func:`undo_stop` takes a stop back
with undo rows for its excludes that still stand.

Only title/abstract screening stops early: PRISMA 2020 has automation exclusions at record
screening only, and a report sought is read in full.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text, union
from sqlalchemy.orm import Session

from . import access
from .errors import ConfigError, DecisionError
from .reviewers import ReviewerInfo, check_stage, reviewer_by_name, reviewer_names
from .schema import Decision, Record, Setting, Stage, Stop, utcnow
from .snapshot import UNSCREENED, StageSnapshot, read_stage
from .stopping import DEFAULT_RULE, StoppingRule, StopVerdict, make_rule
from .store import Store, audit, serialize

INCLUSIVE_VOTES = ("include", "maybe")
STOPPING_SETTING = "stopping"  # the rule, target and confidence a project stops by


@dataclass(frozen=True)
class StopSettings:
    """The rule a project stops by, with its target recall and confidence."""

    rule: str = DEFAULT_RULE
    target: float = 0.95
    confidence: float = 0.95

    def make(self) -> StoppingRule:
        return make_rule(self.rule, target=self.target, confidence=self.confidence)

    def as_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`screening.stops.check_verdict` and :func:`screening.stops.stop_stage`."""
        return {"rule": self.rule, "target": self.target, "confidence": self.confidence}

    @property
    def claim(self) -> str:
        return f"≥ {self.target:.0%} recall with {self.confidence:.0%} confidence"


def stop_settings(store: Store) -> StopSettings:
    """The project's ``stopping`` setting, or the defaults (anything unusable in it falls back to them)."""
    with store.read() as s:
        return read_stop_settings(s)


def read_stop_settings(session: Session) -> StopSettings:
    """:func:`stop_settings` inside an open transaction (with the evidence it is checked against)."""
    row = session.get(Setting, STOPPING_SETTING)
    value = (row.value if row is not None else None) or {}
    default = StopSettings()
    try:
        chosen = StopSettings(
            rule=str(value.get("rule", default.rule)),
            target=float(value.get("target", default.target)),
            confidence=float(value.get("confidence", default.confidence)),
        )
        chosen.make()
    except (ConfigError, TypeError, ValueError, AttributeError):
        return default
    return chosen


def save_stop_settings(
    store: Store, *, rule: str, target: float, confidence: float, actor: str | None = None
) -> StopSettings:
    """Set the rule, target and confidence the project stops by; refused (ConfigError) if the rule refuses them."""
    chosen = StopSettings(rule=rule, target=float(target), confidence=float(confidence))
    chosen.make()
    store.set_setting(STOPPING_SETTING, chosen.as_kwargs(), actor=actor)
    return chosen


@dataclass(frozen=True)
class StageEvidence:
    """What a stopping rule reads of one stage, and which records a stop would exclude."""

    stage: Stage
    labels: np.ndarray  # 1 include / 0 exclude, in the order records were first screened
    pool: int  # screened + unscreened + excluded by earlier stops
    unscreened: int  # live groups no decision touches: what a stop excludes
    pending: int  # screened groups without a final decision (counted as includes when a vote leans that way)
    stopped: int  # groups excluded by earlier stops that still stand

    @property
    def screened(self) -> int:
        return int(self.labels.size)


@dataclass(frozen=True)
class StopInfo:
    """One stop of a stage, as the audit trail and PRISMA report it."""

    id: int
    stage: str
    reviewer: str
    rule: str
    target: float
    confidence: float
    forced: bool
    note: str | None
    numbers: dict[str, Any]
    records: int
    created_at: datetime
    undone_by: int | None = None

    @property
    def active(self) -> bool:
        return self.undone_by is None

    def describe(self) -> str:
        """One line for a report: the rule, the claim, who and when, and whether it was forced."""
        claim = f"{self.target:.0%} recall with {self.confidence:.0%} confidence"
        when = self.created_at.strftime("%Y-%m-%d")
        head = f"forced stop (the rule did not say stop): {self.note}" if self.forced else f"stopped by {self.rule}"
        return f"{head}; target {claim}; {self.records} records not screened; by {self.reviewer}, {when}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass(frozen=True)
class StopResult:
    """What :func:`stop_stage` did: the stop written and the rule's verdict it rests on."""

    stop: StopInfo
    verdict: StopVerdict
    still_open: int  # screened records still awaiting a vote or a resolution


def _live_groups(session: Session) -> list[int]:
    """Canonical records that reach screening (not retracted, not deleted from their source)."""
    query = select(Record.id).where(
        Record.canonical_id.is_(None), Record.retracted.is_(False), Record.deleted_from_source.is_(False)
    )
    return list(session.scalars(query.order_by(Record.id)))


def _removed_and_live(session: Session) -> tuple[set[int], int]:
    """The canonical records removed before screening (retracted or deleted: few), and how many others there are.

    What the evidence needs without reading every record (the Screen page asks after every
    decision): each part is an index search.
    """
    flagged = union(
        select(Record.id).where(Record.retracted.is_(True)),
        select(Record.id).where(Record.deleted_from_source.is_(True)),
    )
    ids = list(session.scalars(flagged))
    gone = (
        set(session.scalars(select(Record.id).where(Record.id.in_(ids), Record.canonical_id.is_(None))))
        if ids
        else set()
    )
    total = session.scalar(select(func.count(Record.id)).where(Record.canonical_id.is_(None))) or 0
    return gone, int(total) - len(gone)


def unscreened_groups(session: Session, snap: StageSnapshot) -> list[int]:
    """The live groups no decision touches at the stage: what a stop excludes."""
    return [g for g in _live_groups(session) if snap.outcome(g).status == UNSCREENED]


def _leans_include(snap: StageSnapshot, group: int, value: str | None) -> int:
    if value in ("include", "exclude"):
        return int(value == "include")
    return int(any(v.value in INCLUSIVE_VOTES for v in snap.votes.get(group, {}).values()) or value == "maybe")


def stage_evidence(
    session: Session, stage: str = Stage.TITLE_ABSTRACT, snap: StageSnapshot | None = None
) -> StageEvidence:
    """The stage's screening sequence and pool, read in this transaction."""
    stage = Stage(check_stage(stage))
    snap = snap if snap is not None else read_stage(session, stage)
    removed, live = _removed_and_live(session)
    sequence = [(g, v) for g, v in snap.sequence() if g not in removed]
    labels = np.array([_leans_include(snap, g, v) for g, v in sequence], dtype=np.int64)
    pending = sum(1 for _, v in sequence if v not in ("include", "exclude"))
    stopped = sum(1 for g in snap.stopped() if g not in removed)
    touched = sum(1 for g in snap.outcomes if g not in removed)  # every live group a decision touches
    unscreened = live - touched
    return StageEvidence(stage, labels, labels.size + unscreened + stopped, unscreened, pending, stopped)


def verdict_for(evidence: StageEvidence, rule: StoppingRule) -> StopVerdict:
    """The rule's verdict on the evidence."""
    return rule.verdict(evidence.labels, evidence.pool)


def check_verdict(
    store: Store,
    *,
    stage: str = Stage.TITLE_ABSTRACT,
    rule: str = DEFAULT_RULE,
    target: float = 0.95,
    confidence: float = 0.95,
) -> tuple[StageEvidence, StopVerdict]:
    """What the rule says now (read only): the Screen page asks after every decision."""
    chosen = make_rule(rule, target=target, confidence=confidence)
    with store.read() as s:
        evidence = stage_evidence(s, stage)
    return evidence, verdict_for(evidence, chosen)


STOPPERS = (access.OWNER, access.ADJUDICATOR)  # who ends a stage when signed in (the administrator: may_stop)


def may_stop(who: ReviewerInfo, dual: bool) -> bool:
    """Who may end a stage: anyone who screens in single mode; in dual mode, an adjudicator or an owner."""
    if who.role == "system":
        return False
    return who.role in ("adjudicator", "owner") or not dual


def _numbers(verdict: StopVerdict, evidence: StageEvidence) -> dict[str, Any]:
    return {
        "p_value": verdict.p_value,
        "recall_lower_bound": verdict.recall_lower_bound,
        "estimated_recall": getattr(verdict, "estimated_recall", None),
        "screened": verdict.screened,
        "found": verdict.found,
        "pool": verdict.pool,
        "more_needed": verdict.more_needed,
        "said_stop": verdict.stop,
        "pending": evidence.pending,
        "stopped_before": evidence.stopped,
    }


def _reason(rule: StoppingRule, forced: bool) -> str:
    claim = f"{rule.target:.0%} recall with {rule.confidence:.0%} confidence"
    return f"stopped early by {rule.name} ({claim})" + ("; forced stop, the rule did not say stop" if forced else "")


def _info(row: Stop, reviewer: str, undone_by: int | None = None) -> StopInfo:
    return StopInfo(
        id=row.id,
        stage=row.stage,
        reviewer=reviewer,
        rule=row.rule,
        target=row.target,
        confidence=row.confidence,
        forced=row.forced,
        note=row.note,
        numbers=dict(row.numbers or {}),
        records=row.records,
        created_at=row.created_at,
        undone_by=undone_by,
    )


def _automation_rows(session: Session, stop: Stop, rows: list[dict[str, Any]]) -> None:
    """Write one automation decision per entry of ``rows`` (its record and own fields) on behalf of ``stop``."""
    if rows:
        common = {"reviewer_id": stop.reviewer_id, "stage": stop.stage, "kind": "automation", "stop_id": stop.id}
        session.execute(insert(Decision), [{**common, "created_at": stop.created_at, **row} for row in rows])


def _lock_decisions(session: Session, stage: Stage) -> None:
    """One stop or undo of a stop at a time, and no decision written while it reads and writes.

    SQLite's write transaction already excludes every other writer; on PostgreSQL the table
    lock makes concurrent decisions wait until the stop commits (and then see it).
    """
    serialize(session, f"stop:{stage}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE decisions IN SHARE ROW EXCLUSIVE MODE"))


def stop_stage(
    store: Store,
    *,
    reviewer: str,
    stage: str = Stage.TITLE_ABSTRACT,
    rule: str = DEFAULT_RULE,
    target: float = 0.95,
    confidence: float = 0.95,
    force: bool = False,
    note: str | None = None,
    now: datetime | None = None,
) -> StopResult:
    """End the stage early if the rule says stop (or ``force``, with a ``note``), in one transaction.

    Refused, with the rule's numbers, when the rule does not say stop and ``force`` is not
    given. Every live record no one has screened gets an automation exclude naming the stop.
    """
    stage = Stage(check_stage(stage))
    if stage != Stage.TITLE_ABSTRACT:
        raise DecisionError(
            "--stage: only title/abstract screening stops early; PRISMA 2020 has automation exclusions at "
            "record screening only, and every report sought is assessed in full"
        )
    note = " ".join(note.split()) if note else None
    if force and not note:
        raise DecisionError("--force needs --note TEXT: why the stage stops although the rule does not say so")
    chosen = make_rule(rule, target=target, confidence=confidence)
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer, "stop screening")
        access.require_role(s, STOPPERS, "stop screening")
        _lock_decisions(s, stage)
        snap = read_stage(s, stage)
        if not may_stop(who, snap.mode.dual):
            raise DecisionError(
                f"--reviewer: {who.name!r} ({who.role}) may not stop {stage}: in dual screening an adjudicator does"
            )
        evidence = stage_evidence(s, stage, snap)
        unscreened = unscreened_groups(s, snap)
        if not unscreened:
            raise DecisionError(f"nothing to stop at {stage}: every record has a decision")
        verdict = verdict_for(evidence, chosen)
        if not verdict.stop and not force:
            raise DecisionError(
                f"not stopped: {verdict.reason}. Screen on, or stop anyway with --force --note TEXT "
                "(recorded as a forced stop)"
            )
        forced = not verdict.stop
        row = Stop(
            stage=str(stage),
            reviewer_id=who.id,
            rule=chosen.name,
            target=chosen.target,
            confidence=chosen.confidence,
            forced=forced,
            note=note,
            numbers=_numbers(verdict, evidence),
            records=len(unscreened),
            created_at=now or utcnow(),
        )
        s.add(row)
        s.flush()
        reason = _reason(chosen, forced)
        excludes = [{"record_id": g, "value": "exclude", "reason": reason, "note": note} for g in unscreened]
        _automation_rows(s, row, excludes)
        detail = {"stop_id": row.id, "stage": str(stage), "rule": chosen.name, "target": chosen.target}
        detail |= {"confidence": chosen.confidence, "forced": forced, "note": note, "records": row.records}
        audit(s, "stop", detail | {"numbers": row.numbers}, actor=who.name)
        return StopResult(_info(row, who.name), verdict, evidence.pending)


def undo_stop(
    store: Store,
    *,
    reviewer: str,
    stage: str = Stage.TITLE_ABSTRACT,
    stop_id: int | None = None,
    now: datetime | None = None,
) -> StopInfo:
    """Take back a stop (the latest at ``stage``, or ``stop_id``): its automation excludes that still stand are undone.

    Records that people screened since keep their decisions. Written as a new ``stops`` row
    naming the stop it undoes, and audited.
    """
    stage = Stage(check_stage(stage))
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer, "undo a stop")
        access.require_role(s, STOPPERS, "undo a stop")
        _lock_decisions(s, stage)
        if not may_stop(who, read_stage(s, stage, []).mode.dual):
            raise DecisionError(f"--reviewer: {who.name!r} ({who.role}) may not undo a stop of {stage}")
        undone = set(s.scalars(select(Stop.undoes_id).where(Stop.undoes_id.is_not(None))))
        query = select(Stop).where(Stop.stage == str(stage), Stop.undoes_id.is_(None))
        if stop_id is not None:
            query = query.where(Stop.id == int(stop_id))
        target = next((t for t in s.scalars(query.order_by(Stop.id.desc())) if t.id not in undone), None)
        if target is None:
            which = f" {stop_id}" if stop_id is not None else ""
            raise DecisionError(f"no stop{which} at {stage} left to undo")
        undone_decisions = select(Decision.undoes_id).where(Decision.undoes_id.is_not(None))
        standing = s.execute(
            select(Decision.id, Decision.record_id).where(
                Decision.stop_id == target.id, Decision.id.not_in(undone_decisions)
            )
        ).all()
        note = f"undo of stop {target.id}"
        undo_row = Stop(
            stage=str(stage),
            reviewer_id=who.id,
            rule=target.rule,
            target=target.target,
            confidence=target.confidence,
            forced=False,
            note=note,
            numbers={},
            records=len(standing),
            undoes_id=target.id,
            created_at=now or utcnow(),
        )
        s.add(undo_row)
        s.flush()
        undos = [{"record_id": r, "value": "undo", "undoes_id": d, "note": note} for d, r in standing]
        _automation_rows(s, undo_row, undos)
        detail = {"stop_id": undo_row.id, "undoes_stop_id": target.id, "stage": str(stage), "records": len(standing)}
        audit(s, "stop_undone", detail, actor=who.name)
        return _info(undo_row, who.name)


def list_stops(session: Session, stage: str | None = None, *, active_only: bool = False) -> list[StopInfo]:
    """The stops (not their undo rows), oldest first, each with the id of the row that undid it if any."""
    rows = list(session.scalars(select(Stop).order_by(Stop.id)))
    undone_by = {r.undoes_id: r.id for r in rows if r.undoes_id is not None}
    names = reviewer_names(session)
    stops = [
        _info(r, names.get(r.reviewer_id, str(r.reviewer_id)), undone_by.get(r.id))
        for r in rows
        if r.undoes_id is None and (stage is None or r.stage == str(stage))
    ]
    return [x for x in stops if x.active] if active_only else stops


def stops(store: Store, stage: str | None = None, *, active_only: bool = False) -> list[StopInfo]:
    """:func:`list_stops` in its own read transaction."""
    with store.read() as s:
        return list_stops(s, stage, active_only=active_only)


__all__ = [
    "STOPPING_SETTING",
    "StageEvidence",
    "StopInfo",
    "StopResult",
    "StopSettings",
    "check_verdict",
    "list_stops",
    "may_stop",
    "read_stop_settings",
    "save_stop_settings",
    "stage_evidence",
    "stop_settings",
    "stop_stage",
    "stops",
    "undo_stop",
    "unscreened_groups",
]
