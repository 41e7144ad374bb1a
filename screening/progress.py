"""Read-only views of screening progress, for the dashboard and the CLI.

What a reviewer should screen next (and whether a record still needs their vote),
decisions over time, the recall curve in decision order, and the records left.
Every function reads the store in one transaction and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .decisions import AWAITING, UNSCREENED, collect_stage, outcome, stage_outcomes
from .errors import RecordNotFound
from .reviewers import check_stage, get_mode, reviewer_by_name
from .schema import Decision, Record
from .store import Store

OPEN_STATUSES = (UNSCREENED, AWAITING)  # a record in one of these may still take a new vote


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


def _group(session: Session, record_id: int) -> tuple[int, list[int]]:
    """(canonical id, ids of every member of its group) of ``record_id``."""
    record = session.get(Record, int(record_id))
    if record is None:
        raise RecordNotFound(f"no record with id {record_id} in this project")
    canonical = record.canonical_id or record.id
    members = session.scalars(
        select(Record.id).where(or_(Record.id == canonical, Record.canonical_id == canonical))
    ).all()
    return canonical, list(members)


def _live_votes(stage: str):
    """Screen decisions at ``stage`` that are votes: neither undo rows nor undone."""
    undone = select(Decision.undoes_id).where(Decision.undoes_id.is_not(None)).scalar_subquery()
    return (
        (Decision.stage == stage)
        & (Decision.kind == "screen")
        & Decision.undoes_id.is_(None)
        & Decision.id.not_in(undone)
        & Decision.value.in_(("include", "exclude", "maybe"))
    )


def voted_by(store: Store, reviewer: str, stage: str = "title_abstract") -> set[int]:
    """Canonical ids of the records on which ``reviewer`` has a live vote at ``stage``."""
    check_stage(stage)
    with store.read() as s:
        who = reviewer_by_name(s, reviewer)
        group = func.coalesce(Record.canonical_id, Record.id)
        query = (
            select(group)
            .select_from(Decision)
            .join(Record, Record.id == Decision.record_id)
            .where(_live_votes(stage), Decision.reviewer_id == who.id)
        )
        return set(s.scalars(query))


def needs_vote(store: Store, record_id: int, *, reviewer: str, stage: str = "title_abstract") -> bool:
    """True if ``reviewer`` should still screen this record: the check made right before drawing and writing.

    Single mode: nobody has decided it (a 'maybe' counts as seen). Dual mode: it is
    unscreened or awaiting a second vote, and that vote is not this reviewer's.
    """
    check_stage(stage)
    with store.read() as s:
        who = reviewer_by_name(s, reviewer)
        record = s.get(Record, int(record_id))
        if record is None or record.deleted_from_source:
            return False
        canonical, members = _group(s, record_id)
        state = collect_stage(s, stage, members).state(canonical)
        if state is not None and who.id in state.votes:
            return False
        mode = get_mode(s, stage)
        status = outcome(state, mode).status
        return status == UNSCREENED or (mode.dual and status == AWAITING)


def next_for_reviewer(
    store: Store, ranked_ids: Iterable[int], *, reviewer: str, stage: str = "title_abstract"
) -> int | None:
    """The first of ``ranked_ids`` (best first) that ``reviewer`` still needs to screen, checked in the database."""
    mine = voted_by(store, reviewer, stage)
    for record_id in ranked_ids:
        if record_id in mine:
            continue
        if needs_vote(store, record_id, reviewer=reviewer, stage=stage):
            return int(record_id)
    return None


def records_left(
    store: Store,
    *,
    reviewer: str | None = None,
    stage: str = "title_abstract",
    live_ids: Collection[int] | None = None,
) -> int:
    """Live canonical records still open at ``stage`` (for ``reviewer``: those still needing their vote).

    Counted as all live records minus the live ones whose decisions close them, so the cost
    grows with the decisions made. ``live_ids``, the live canonical ids, saves a scan of the
    records table when the caller already holds them (the dashboard's ranker does).
    """
    check_stage(stage)
    with store.read() as s:
        if live_ids is None:
            live_ids = set(
                s.scalars(select(Record.id).where(Record.canonical_id.is_(None), Record.deleted_from_source.is_(False)))
            )
        data = collect_stage(s, stage)
        judged = stage_outcomes(s, stage, data)
        dual = get_mode(s, stage).dual
        who = reviewer_by_name(s, reviewer).id if reviewer else None
    closed = 0
    for rid in data.groups():
        if rid not in live_ids:
            continue
        o = judged.get(rid)
        status = o.status if o is not None else UNSCREENED
        still_open = status == UNSCREENED or (dual and status == AWAITING)
        closed += not still_open or (who is not None and who in data.votes.get(rid, {}))
    return len(live_ids) - closed


def decisions_over_time(store: Store, stage: str = "title_abstract") -> list[DayCount]:
    """Live screening votes per day, reviewer and value, oldest day first."""
    from .reviewers import reviewer_names

    check_stage(stage)
    with store.read() as s:
        rows = s.execute(
            select(Decision.created_at, Decision.reviewer_id, Decision.value).where(_live_votes(stage))
        ).all()
        names = reviewer_names(s)
    counts = Counter((created.date().isoformat(), names.get(rid, str(rid)), value) for created, rid, value in rows)
    return [DayCount(day, who, value, n) for (day, who, value), n in sorted(counts.items())]


def recall_curve(store: Store, stage: str = "title_abstract") -> list[CurvePoint]:
    """Relevant records found against records screened, in the order they were first screened.

    A record counts as screened at its first live vote and as relevant if its final
    label at ``stage`` is include; imported labels are not screening and are left out.
    """
    check_stage(stage)
    with store.read() as s:
        group = func.coalesce(Record.canonical_id, Record.id)
        order = s.scalars(
            select(group)
            .select_from(Decision)
            .join(Record, Record.id == Decision.record_id)
            .where(_live_votes(stage))
            .order_by(Decision.id)
        ).all()
        final = stage_outcomes(s, stage)
    seen: set[int] = set()
    points = [CurvePoint(0, 0)]
    relevant = 0
    for rid in order:
        if rid in seen:
            continue
        seen.add(rid)
        o = final.get(rid)
        relevant += o is not None and o.final == "include"
        points.append(CurvePoint(len(seen), relevant))
    return points


def screened_count(store: Store, *, reviewer: str, stage: str = "title_abstract") -> int:
    """How many records ``reviewer`` has a live vote on at ``stage``."""
    return len(voted_by(store, reviewer, stage))


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
        sought = sorted(rid for rid, o in stage_outcomes(s, "title_abstract").items() if o.final == "include")
        data = collect_stage(s, "full_text")
        full = stage_outcomes(s, "full_text", data)
        titles = {rid: title for rid, title in s.execute(select(Record.id, Record.title).where(Record.id.in_(sought)))}
    return [
        FullTextItem(
            record_id=rid,
            title=titles.get(rid) or "",
            retrieval=data.retrieval.get(rid),
            status=full[rid].status if rid in full else UNSCREENED,
            value=full[rid].value if rid in full else None,
            reason=full[rid].reason if rid in full else None,
        )
        for rid in sought
    ]
