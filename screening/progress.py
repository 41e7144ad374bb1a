"""Views of screening progress, and the queue that gives each reviewer their next record.

What a reviewer should screen next, whether a record still needs their vote, decisions
over time, the recall curve in decision order, and the records left: each reads one
:class:`~screening.snapshot.StageSnapshot` in one transaction.

:func:`claim_next` is the one write here: it gives a reviewer the best-ranked record that
still needs their vote and that no one else has on screen, and holds it for them with a
short lease, so two reviewers screening at once are shown different records. The lease
only steers what is shown; the decision itself is checked again when it is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .decisions import canonical_record, group_members
from .reviewers import check_stage, reviewer_by_name, reviewer_names
from .schema import Decision, Lease, Record, Stage, utcnow
from .snapshot import OPEN_STATUSES, SCREEN_VALUES, StageSnapshot, read_project, read_stage
from .store import Store, serialize

__all__ = ["OPEN_STATUSES"]
LEASE_SECONDS = 120  # how long a record stays reserved for the reviewer it is shown to, renewed on every draw


@dataclass(frozen=True)
class DayCount:
    """Decisions made on one day by one reviewer, with one value."""

    day: str
    reviewer: str
    value: str
    n: int


@dataclass(frozen=True)
class CurvePoint:
    """After ``screened`` records (in decision order), ``relevant`` of them are finally included."""

    screened: int
    relevant: int


def _live_ids(session: Session) -> set[int]:
    query = select(Record.id).where(Record.canonical_id.is_(None), Record.deleted_from_source.is_(False))
    return set(session.scalars(query))


def voted_by(store: Store, reviewer: str, stage: str = Stage.TITLE_ABSTRACT) -> set[int]:
    """Canonical ids of the records on which ``reviewer`` has a live vote at ``stage``."""
    with store.read() as s:
        who = reviewer_by_name(s, reviewer)
        return set(read_stage(s, stage).votes_of(who.id))


def needs_vote(store: Store, record_id: int, *, reviewer: str, stage: str = Stage.TITLE_ABSTRACT) -> bool:
    """True if ``reviewer`` should still screen this record.

    Single mode: nobody has decided it (a 'maybe' counts as decided). Dual mode: it is
    unscreened or awaiting a second vote, and that vote is not this reviewer's.
    """
    check_stage(stage)
    with store.read() as s:
        who = reviewer_by_name(s, reviewer)
        record = s.get(Record, int(record_id))
        if record is None or record.deleted_from_source:
            return False
        group = canonical_record(s, record.id).id
        return read_stage(s, stage, group_members(s, group)).is_open(group, who.id)


def next_for_reviewer(
    store: Store, ranked_ids: Iterable[int], *, reviewer: str, stage: str = Stage.TITLE_ABSTRACT
) -> int | None:
    """The first of ``ranked_ids`` (best first) that ``reviewer`` still needs to screen (no lease taken)."""
    with store.read() as s:
        who = reviewer_by_name(s, reviewer)
        snap = read_stage(s, stage)
        live = _live_ids(s)
        return next((int(r) for r in ranked_ids if int(r) in live and snap.is_open(int(r), who.id)), None)


def records_left(
    store: Store,
    *,
    reviewer: str | None = None,
    stage: str = Stage.TITLE_ABSTRACT,
    live_ids: Collection[int] | None = None,
) -> int:
    """Live canonical records still open at ``stage`` (for ``reviewer``: those still needing their vote).

    ``live_ids``, the live canonical ids, saves a scan of the records table when the caller
    already holds them (the dashboard's ranker does).
    """
    check_stage(stage)
    with store.read() as s:
        who = reviewer_by_name(s, reviewer).id if reviewer else None
        snap = read_stage(s, stage)
        return snap.open_count(live_ids if live_ids is not None else _live_ids(s), who)


def screened_count(store: Store, *, reviewer: str, stage: str = Stage.TITLE_ABSTRACT) -> int:
    """How many records ``reviewer`` has a live vote on at ``stage``."""
    return len(voted_by(store, reviewer, stage))


# -- the queue --------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """What the Screen page draws: the reviewer's next record (None: nothing left) and its counts.

    ``screened`` and ``left`` come from the same snapshot the record was checked against.
    ``held_by_others`` counts open records skipped because another reviewer has them on screen.
    """

    record_id: int | None
    screened: int
    left: int
    held_by_others: int = 0


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _active_leases(session: Session, stage: str, now: datetime) -> dict[int, set[int]]:
    """Record id -> reviewers holding it on screen; expired leases are removed on the way."""
    held: dict[int, set[int]] = {}
    expired = []
    for lease in session.scalars(select(Lease).where(Lease.stage == str(stage))):
        if _as_utc(lease.expires_at) <= now:
            expired.append(lease)
        else:
            held.setdefault(lease.record_id, set()).add(lease.reviewer_id)
    for lease in expired:
        session.delete(lease)
    return held


def _hold(session: Session, record_id: int | None, stage: str, reviewer_id: int, until: datetime) -> None:
    """The reviewer holds at most one record per stage: this one, until ``until``."""
    session.execute(delete(Lease).where(Lease.stage == str(stage), Lease.reviewer_id == reviewer_id))
    if record_id is not None:
        session.add(Lease(record_id=record_id, stage=str(stage), reviewer_id=reviewer_id, expires_at=until))


def claim_next(
    store: Store,
    ranked_ids: Iterable[int],
    *,
    reviewer: str,
    stage: str = Stage.TITLE_ABSTRACT,
    prefer: int | None = None,
    live_ids: Collection[int] | None = None,
    lease_seconds: float = LEASE_SECONDS,
    now: datetime | None = None,
) -> Claim:
    """Give ``reviewer`` their next record and hold it for them, in one write transaction.

    The record is ``prefer`` (say, the one an undo brought back) if it still needs this
    reviewer, else the first of ``ranked_ids`` that does and that no one else holds (in dual
    mode a record is held only once the votes it still needs are all spoken for). A record
    the reviewer already holds stays theirs. Nothing available in ``ranked_ids``: a record
    id of None, and the caller may try a longer ranking.
    """
    check_stage(stage)
    now = _as_utc(now or utcnow())
    with store.begin() as s:
        serialize(s, f"screening queue {stage}")  # claims one after the other: each sees the others' leases
        who = reviewer_by_name(s, reviewer)
        # Leases before decisions: a decision and the release of its lease commit together, so a
        # lease gone by now means its decision is in the snapshot read next (PostgreSQL reads
        # each statement at READ COMMITTED).
        held = _active_leases(s, stage, now)
        snap = read_stage(s, stage)
        live = live_ids if live_ids is not None else _live_ids(s)
        skipped = 0

        def available(group: int) -> bool:
            nonlocal skipped
            if group not in live or not snap.is_open(group, who.id):
                return False
            others = held.get(group, set()) - {who.id}
            if len(others) >= snap.votes_needed(group):
                skipped += 1
                return False
            return True

        candidates = ([int(prefer)] if prefer is not None else []) + [int(r) for r in ranked_ids]
        chosen = next((group for group in candidates if available(group)), None)
        _hold(s, chosen, stage, who.id, now + timedelta(seconds=lease_seconds))
        return Claim(
            record_id=chosen,
            screened=len(snap.votes_of(who.id)),
            left=snap.open_count(live, who.id),
            held_by_others=skipped,
        )


def release(store: Store, *, reviewer: str, stage: str = Stage.TITLE_ABSTRACT) -> None:
    """The reviewer leaves the Screen page (or signs out): their record is free for others at once."""
    with store.begin() as s:
        who = reviewer_by_name(s, reviewer)
        _hold(s, None, stage, who.id, utcnow())


# -- history views ----------------------------------------------------------------------
def _live_vote_ids(snap: StageSnapshot) -> set[int]:
    return {vote.id for by in snap.votes.values() for vote in by.values()}


def decisions_over_time(store: Store, stage: str = Stage.TITLE_ABSTRACT) -> list[DayCount]:
    """Live screening votes per day, reviewer and value, oldest day first."""
    check_stage(stage)
    with store.read() as s:
        live = _live_vote_ids(read_stage(s, stage))
        rows = s.execute(
            select(Decision.id, Decision.created_at, Decision.reviewer_id, Decision.value).where(
                Decision.stage == str(stage), Decision.kind == "screen", Decision.value.in_(SCREEN_VALUES)
            )
        ).all()
        names = reviewer_names(s)
    counts = Counter(
        (created.date().isoformat(), names.get(rid, str(rid)), value)
        for did, created, rid, value in rows
        if did in live
    )
    return [DayCount(day, who, value, n) for (day, who, value), n in sorted(counts.items())]


def recall_curve(store: Store, stage: str = Stage.TITLE_ABSTRACT) -> list[CurvePoint]:
    """Relevant records found against records screened, in the order they were first screened.

    A record counts as screened at its first live vote and as relevant if its final
    label at ``stage`` is include; imported labels are not screening and are left out.
    """
    check_stage(stage)
    with store.read() as s:
        sequence = read_stage(s, stage).sequence()
    points = [CurvePoint(0, 0)]
    relevant = 0
    for n, (_, value) in enumerate(sequence, start=1):
        relevant += value == "include"
        points.append(CurvePoint(n, relevant))
    return points


@dataclass(frozen=True)
class FullTextItem:
    """A report sought (final include at title/abstract) and where it stands at full text."""

    record_id: int
    title: str
    retrieval: str | None
    status: str
    value: str | None
    reason: str | None


def full_text_queue(store: Store) -> list[FullTextItem]:
    """Every report sought, by record id, with its retrieval and full-text outcome."""
    with store.read() as s:
        state = read_project(s)
        sought = sorted(rid for rid, o in state.title_abstract.outcomes.items() if o.final == "include")
        titles = {rid: title for rid, title in s.execute(select(Record.id, Record.title).where(Record.id.in_(sought)))}
    ft = state.full_text
    return [
        FullTextItem(
            record_id=rid,
            title=titles.get(rid) or "",
            retrieval=ft.retrieval.get(rid),
            status=ft.outcome(rid).status,
            value=ft.outcome(rid).value,
            reason=ft.outcome(rid).reason,
        )
        for rid in sought
    ]
