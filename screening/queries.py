"""Read-only views of a project shared by the CLI, the dashboard and exports.

One row per unique record: a duplicate group is listed once, under its canonical
record's id, with every source that delivered any of its members.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from .dedupe import describe_source, pending_sources
from .errors import ConfigError
from .reviewers import check_stage, reviewer_by_name
from .schema import Decision, DuplicatePair, Record, RecordSource, Source, Stage
from .snapshot import MAYBE, SCREEN_VALUES, Outcome, ProjectSnapshot, read_project
from .sources import BIBLIOGRAPHIC_FIELDS
from .stops import list_stops
from .store import Store

EXPORT_SELECTIONS = ("all", "included", "excluded", "undecided")
RECORD_FIELDS = BIBLIOGRAPHIC_FIELDS


def _group_sources(session: Session) -> dict[int, list[str]]:
    """Canonical id -> names of every source of the group, in source order, once each."""
    rows = session.execute(
        select(func.coalesce(Record.canonical_id, Record.id), Source.id, Source.name)
        .join(RecordSource, RecordSource.record_id == Record.id)
        .join(Source, Source.id == RecordSource.source_id)
        .order_by(Source.id)
    )
    out: dict[int, list[str]] = defaultdict(list)
    for gid, _sid, name in rows:
        if name not in out[gid]:
            out[gid].append(name)
    return out


def _final_state(project: ProjectSnapshot) -> dict[int, tuple[str, str | None]]:
    """Canonical id -> (decision, reason): full text where decided there, else title/abstract."""
    state: dict[int, tuple[str, str | None]] = {}
    for stage in Stage:
        for gid, outcome in project.stage(stage).outcomes.items():
            if outcome.final:
                state[gid] = (outcome.final, outcome.reason)
            elif outcome.status == MAYBE and stage == Stage.TITLE_ABSTRACT:
                state[gid] = ("maybe", None)
    return state


def _selected(what: str, decision: str | None) -> bool:
    if what == "all":
        return True
    if what == "included":
        return decision == "include"
    if what == "excluded":
        return decision == "exclude"
    return decision not in ("include", "exclude")


def export_rows(store: Store, what: str = "all") -> Iterator[dict[str, Any]]:
    """Rows for ``screening export``: one per unique record, with its sources and decision.

    ``included`` means included at the last stage it reached (title/abstract, or
    full text once decided there); ``excluded`` likewise; ``undecided`` is the rest.
    """
    if what not in EXPORT_SELECTIONS:
        raise ConfigError(f"--what: {what!r} is not one of {', '.join(EXPORT_SELECTIONS)}")
    with store.read() as session:
        sources = _group_sources(session)
        state = _final_state(read_project(session))
        records = session.scalars(select(Record).where(Record.canonical_id.is_(None)).order_by(Record.id))
        for record in records:
            decision, reason = state.get(record.id, (None, None))
            if not _selected(what, decision):
                continue
            row = {"id": record.id, **{name: getattr(record, name) for name in RECORD_FIELDS}}
            row.update(sources=sources.get(record.id, []), decision=decision, reason=reason)
            yield row


@dataclass
class SourceLine:
    id: int
    name: str
    kind: str
    method: str
    detail: str
    run_at: str
    status: str
    count_reported: int | None
    retrieved: int
    unique: int


@dataclass
class StatusReport:
    """What ``screening status`` prints: counts by source, stage and decision."""

    name: str
    records: int
    unique: int
    duplicates: int
    uncertain_pairs: int
    sources: list[SourceLine] = field(default_factory=list)
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)  # the stops in force, one line each
    # sources whose records deduplication has not taken in: the counts above hold duplicates still
    undeduplicated: list[str] = field(default_factory=list)


AUTOMATED = "excluded by automation"


def _status_key(o: Outcome) -> str:
    if o.final == "exclude" and o.kind == "automation":
        return AUTOMATED
    return o.value if o.final or o.status == MAYBE else o.status


def status(store: Store) -> StatusReport:
    """Counts by source, by stage and by decision, for the CLI and the dashboard."""
    counts = store.counts()
    with store.read() as session:
        uncertain = session.scalar(select(func.count(DuplicatePair.id)).where(DuplicatePair.status == "uncertain"))
        lines = []
        for src in session.scalars(select(Source).order_by(Source.id)):
            unique = session.scalar(
                select(func.count(RecordSource.id))
                .join(Record, Record.id == RecordSource.record_id)
                .where(RecordSource.source_id == src.id, Record.canonical_id.is_(None))
            )
            lines.append(
                SourceLine(
                    id=src.id,
                    name=src.name,
                    kind=src.kind,
                    method=src.method,
                    detail=src.query or src.file_name or "",
                    run_at=src.run_at.strftime("%Y-%m-%d %H:%M") if src.run_at else "",
                    status=src.status,
                    count_reported=src.count_reported,
                    retrieved=src.count_retrieved,
                    unique=unique or 0,
                )
            )
        project = read_project(session)
        stages: dict[str, dict[str, int]] = {}
        for stage in Stage:
            outcomes = project.stage(stage).outcomes.values()
            tally = Counter(_status_key(o) for o in outcomes)
            stages[stage.value] = dict(sorted(tally.items()))
        stages[Stage.FULL_TEXT].update(Counter(project.full_text.retrieval.values()))
        screened = sum(v for k, v in stages[Stage.TITLE_ABSTRACT].items() if k in ("include", "exclude", AUTOMATED))
        stages[Stage.TITLE_ABSTRACT]["undecided"] = counts.unique - screened
        stops = [f"{stop.stage}: stop #{stop.id}, {stop.describe()}" for stop in list_stops(session, active_only=True)]
        pending = [describe_source(src) for src in pending_sources(session)]
    return StatusReport(
        name=str(store.get_setting("name", "")),
        records=counts.records,
        unique=counts.unique,
        duplicates=counts.duplicates,
        uncertain_pairs=uncertain or 0,
        sources=lines,
        stages=stages,
        stops=stops,
        undeduplicated=pending,
    )


# -- one reviewer's decisions ---------------------------------------------------------
REVIEWER_DECISIONS_LIMIT = 500  # rows returned at once: the filters narrow the rest down


@dataclass(frozen=True)
class ReviewerDecision:
    """One reviewer's current decision on a record group at one stage, with the group's title."""

    id: int
    record_id: int  # the group's canonical record: what a revision is written on
    decided_record_id: int  # the record the decision was made on (a duplicate's id, before a merge)
    title: str
    stage: str
    value: str
    kind: str  # 'screen', or 'resolution' for an adjudicator's settling of a conflict
    reason: str | None
    note: str | None
    created_at: datetime


def _current_decisions(reviewer_id: int, stage: str | None, text: str | None) -> Select[Any]:
    """The reviewer's live votes and resolutions, one per record group, stage and kind (the latest).

    A decision counts when no undo row names it; of several live ones on one group (decisions
    on records merged since), the latest is the vote, as in :func:`screening.snapshot.read_stage`.
    """
    undo = aliased(Decision)
    decided = aliased(Record)
    group = func.coalesce(decided.canonical_id, decided.id)
    query = (
        select(
            Decision.id,
            group.label("record_id"),
            Decision.record_id.label("decided_record_id"),
            Decision.stage,
            Decision.value,
            Decision.kind,
            Decision.reason,
            Decision.note,
            Decision.created_at,
            func.row_number()
            .over(partition_by=(group, Decision.stage, Decision.kind), order_by=Decision.id.desc())
            .label("latest"),
        )
        .join(decided, decided.id == Decision.record_id)
        .where(
            Decision.reviewer_id == reviewer_id,
            Decision.kind.in_(("screen", "resolution")),
            Decision.value.in_(SCREEN_VALUES),
            ~select(undo.id).where(undo.undoes_id == Decision.id).exists(),
        )
    )
    if stage is not None:
        query = query.where(Decision.stage == str(check_stage(stage)))
    current = query.subquery()
    shown = aliased(Record)
    rows = select(current, shown.title).join(shown, shown.id == current.c.record_id).where(current.c.latest == 1)
    if text and text.strip():
        needle = text.strip()
        rows = rows.where(
            or_(shown.title.icontains(needle, autoescape=True), shown.abstract.icontains(needle, autoescape=True))
        )
    return rows


def reviewer_decisions(
    store: Store,
    reviewer: str,
    *,
    stage: str | None = None,
    value: str | None = None,
    text: str | None = None,
    limit: int | None = REVIEWER_DECISIONS_LIMIT,
) -> list[ReviewerDecision]:
    """``reviewer``'s current decisions (not undone, not revised), newest first, with each record's title.

    Only their own: in blind dual screening nothing of the other reviewers is read. ``stage``
    and ``value`` ('include', 'exclude' or 'maybe') narrow the list, and ``text`` matches the
    record's title or abstract (case ignored); all three are filtered in the database.
    """
    if value is not None and value not in SCREEN_VALUES:
        raise ConfigError(f"value: {value!r} is not one of {', '.join(SCREEN_VALUES)}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit: {limit!r} must be at least 1")
    with store.read() as session:
        who = reviewer_by_name(session, reviewer)
        rows = _current_decisions(who.id, stage, text)
        if value is not None:
            rows = rows.where(rows.selected_columns.value == value)
        rows = rows.order_by(rows.selected_columns.id.desc()).limit(limit)
        return [
            ReviewerDecision(
                id=row.id,
                record_id=row.record_id,
                decided_record_id=row.decided_record_id,
                title=row.title or "",
                stage=row.stage,
                value=row.value,
                kind=row.kind,
                reason=row.reason,
                note=row.note,
                created_at=row.created_at,
            )
            for row in session.execute(rows)
        ]


def reviewer_decision_counts(
    store: Store, reviewer: str, *, stage: str | None = None, text: str | None = None
) -> dict[str, int]:
    """How many current decisions ``reviewer`` has of each value ('include', 'exclude', 'maybe': all present)."""
    with store.read() as session:
        who = reviewer_by_name(session, reviewer)
        tally = _current_decisions(who.id, stage, text).subquery()
        counts = dict(session.execute(select(tally.c.value, func.count()).group_by(tally.c.value)).all())
    return {v: int(counts.get(v, 0)) for v in SCREEN_VALUES}


# -- finding records ------------------------------------------------------------------------------------
FIND_LIMIT = 20
_PMID = re.compile(r"^(?:pmid:?\s*)?(\d{1,9})$", re.IGNORECASE)
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)?(10\.\S+/\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class FoundRecord:
    """A record matching a search, with the searching reviewer's own current vote on it (never anyone else's)."""

    record_id: int
    title: str
    journal: str
    year: int | None
    pmid: str | None
    doi: str | None
    retracted: bool
    my_vote: str | None


def _find_condition(text: str) -> Any:
    """A PMID or DOI matches exactly; other text matches records whose title or abstract holds every word."""
    text = " ".join(text.split())
    if match := _PMID.match(text):
        return Record.pmid == match.group(1)
    if match := _DOI.match(text):
        return func.lower(Record.doi) == match.group(1).lower()
    words = [w for w in text.split() if len(w) > 1] or [text]
    return and_(
        *(or_(Record.title.icontains(w, autoescape=True), Record.abstract.icontains(w, autoescape=True)) for w in words)
    )


def find_records(
    store: Store, text: str, *, reviewer: str, stage: str = Stage.TITLE_ABSTRACT, limit: int = FIND_LIMIT
) -> list[FoundRecord]:
    """Unique records matching ``text`` (a PMID, a DOI, or words of the title or abstract), best known first.

    For marking known includes before screening starts: each comes with the reviewer's own
    current vote at ``stage``, so blind dual screening reveals nothing of the others. A
    duplicate found by its PMID or DOI is shown as its group's canonical record.
    """
    if not (text or "").strip():
        return []
    if limit < 1:
        raise ConfigError(f"limit: {limit!r} must be at least 1")
    with store.read() as session:
        who = reviewer_by_name(session, reviewer)
        group = func.coalesce(Record.canonical_id, Record.id)
        ids = select(group).where(_find_condition(text)).distinct().limit(limit).subquery()
        shown = aliased(Record)
        rows = session.execute(
            select(shown.id, shown.title, shown.journal, shown.year, shown.pmid, shown.doi, shown.retracted)
            .where(shown.id.in_(select(ids)))
            .order_by(shown.year.desc().nulls_last(), shown.id)
        ).all()
        votes = {
            row.record_id: row.value
            for row in session.execute(_current_decisions(who.id, stage, None))
            if row.kind == "screen" and row.record_id in {r.id for r in rows}
        }
        return [
            FoundRecord(r.id, r.title or "", r.journal or "", r.year, r.pmid, r.doi, bool(r.retracted), votes.get(r.id))
            for r in rows
        ]
