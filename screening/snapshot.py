"""One read model of a stage's screening state, read once per transaction.

Every page, command and check asks the same object where records stand: the outcome of
each record group, what is open for a reviewer, each reviewer's votes, the conflicts, the
labels that train the ranker and the order in which records were screened (what the
stopping rules read). :func:`read_stage` builds it from one narrow query of the
``decisions`` table and one of the duplicate links; inside a write transaction it is what
the write is checked against.

The rules, in one place (:func:`judge`):

* each reviewer's *vote* is their latest decision that is not undone;
* a ``resolution`` (by a third reviewer, after a conflict) is final;
* otherwise the stage's mode decides: ``single`` takes the latest vote, ``dual`` needs
  two reviewers who agree (at full text, on the exclusion reason too);
* with no deciding votes, an imported label (kind ``prior``) or an automation tool's
  decision (kind ``automation``) stands.

``maybe`` is a decision that leaves the record undecided. Decisions on a duplicate apply
to its group, named by the canonical record's id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .reviewers import ScreeningMode, check_stage, get_mode
from .schema import Decision, Record, Stage

SCREEN_VALUES = ("include", "exclude", "maybe")
RETRIEVAL_VALUES = ("retrieved", "not_retrieved")

# statuses of a record at one stage
DECIDED = "decided"  # include or exclude is final
MAYBE = "maybe"  # the final word is 'maybe': still undecided
CONFLICT = "conflict"  # dual mode, reviewers disagree, no resolution yet
AWAITING = "awaiting"  # dual mode, one vote in, a second is needed
UNSCREENED = "unscreened"
OPEN_STATUSES = (UNSCREENED, AWAITING)  # a record in one of these may still take a new vote


class Vote(NamedTuple):
    """A live decision row: its id, value and reason."""

    id: int
    value: str
    reason: str | None


class Fallback(NamedTuple):
    """The latest live imported label or automation decision of a record (``stop_id``: written by that stop)."""

    id: int
    value: str
    reason: str | None
    kind: str
    stop_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """Where a record stands at one stage, and the decision row that put it there."""

    status: str
    value: str | None = None
    reason: str | None = None
    kind: str | None = None
    decision_id: int | None = None

    @property
    def final(self) -> str | None:
        """'include' or 'exclude' when decided, else None."""
        return self.value if self.status == DECIDED else None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


NOT_SCREENED = Outcome(UNSCREENED)


def judge(
    votes: dict[int, Vote] | None,
    resolution: Vote | None,
    fallback: Fallback | None,
    dual: bool,
    full_text: bool,
) -> Outcome:
    """The outcome of one record; the one place the screening rules live."""
    if resolution is not None:
        value = resolution.value
        return Outcome(MAYBE if value == "maybe" else DECIDED, value, resolution.reason, "resolution", resolution.id)
    if votes and (not dual or len(votes) >= 2):
        if dual:
            keys = {(v.value, v.reason if full_text and v.value == "exclude" else None) for v in votes.values()}
            if len(keys) > 1:
                return Outcome(CONFLICT)
        latest = max(votes.values())
        return Outcome(MAYBE if latest.value == "maybe" else DECIDED, latest.value, latest.reason, "screen", latest.id)
    if fallback is not None:
        status = MAYBE if fallback.value == "maybe" else DECIDED
        return Outcome(status, fallback.value, fallback.reason, fallback.kind, fallback.id)
    return Outcome(AWAITING) if votes else NOT_SCREENED


@dataclass
class StageSnapshot:
    """The effective decisions of every record group at one stage, and what follows from them."""

    stage: Stage
    mode: ScreeningMode
    votes: dict[int, dict[int, Vote]] = field(default_factory=dict)  # group -> reviewer id -> vote
    resolution: dict[int, Vote] = field(default_factory=dict)
    fallback: dict[int, Fallback] = field(default_factory=dict)
    retrieval: dict[int, str] = field(default_factory=dict)
    canonical: dict[int, int] = field(default_factory=dict)  # duplicate id -> canonical id
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.outcomes:
            self.outcomes = self._judge_all()

    def _judge_all(self) -> dict[int, Outcome]:
        dual, full_text = self.mode.dual, self.stage == Stage.FULL_TEXT
        votes, resolution, fallback = self.votes, self.resolution, self.fallback
        return {
            group: judge(votes.get(group), resolution.get(group), fallback.get(group), dual, full_text)
            for group in votes.keys() | resolution.keys() | fallback.keys()
        }

    # -- one record ---------------------------------------------------------------
    def group_of(self, record_id: int) -> int:
        return self.canonical.get(record_id, record_id)

    def outcome(self, group: int) -> Outcome:
        """The group's outcome (unscreened when no decision touches it)."""
        return self.outcomes.get(group, NOT_SCREENED)

    def vote_of(self, group: int, reviewer_id: int) -> Vote | None:
        return self.votes.get(group, {}).get(reviewer_id)

    def votes_needed(self, group: int) -> int:
        """How many more votes the record takes: single mode 1 until decided; dual 2 less those in."""
        status = self.outcome(group).status
        if status == UNSCREENED:
            return 2 if self.mode.dual else 1
        if status == AWAITING and self.mode.dual:
            return max(0, 2 - len(self.votes.get(group, {})))
        return 0

    def is_open(self, group: int, reviewer_id: int | None = None) -> bool:
        """True if the record still takes a vote (from ``reviewer_id``: one they have not given)."""
        if reviewer_id is not None and reviewer_id in self.votes.get(group, {}):
            return False
        return self.votes_needed(group) > 0

    # -- the whole stage ------------------------------------------------------------
    def groups(self) -> set[int]:
        """Groups that any decision touches."""
        return self.outcomes.keys() | self.retrieval.keys()

    def open_count(self, live_ids: Collection[int], reviewer_id: int | None = None) -> int:
        """How many of ``live_ids`` are still open (for ``reviewer_id``: still need their vote).

        Counted as all live records minus the touched ones that are closed, so the cost grows
        with the decisions made rather than with the records.
        """
        closed = sum(1 for group in self.outcomes if group in live_ids and not self.is_open(group, reviewer_id))
        return len(live_ids) - closed

    def votes_of(self, reviewer_id: int) -> dict[int, str]:
        """Group -> value of every live vote of one reviewer."""
        return {group: by[reviewer_id].value for group, by in self.votes.items() if reviewer_id in by}

    def conflicts(self) -> list[int]:
        return sorted(group for group, o in self.outcomes.items() if o.status == CONFLICT)

    def labels(self) -> dict[int, str]:
        """Group -> final 'include' | 'exclude' | 'maybe'."""
        return {group: o.value for group, o in self.outcomes.items() if o.status in (DECIDED, MAYBE) and o.value}

    def training_labels(self) -> dict[int, str]:
        """What the ranker learns from: :meth:`labels`, with 'seen' for an automation tool's decision.

        Like a maybe, such a record is out of the ranking but teaches nothing: the excludes a
        stop of the stage wrote are no evidence about what is relevant.
        """
        return {
            group: "seen" if self.outcomes[group].kind == "automation" else value
            for group, value in self.labels().items()
        }

    def stopped(self) -> dict[int, int]:
        """Group -> stop id, for the groups whose outcome is the exclude a stop of the stage wrote."""
        return {
            group: self.fallback[group].stop_id
            for group, o in self.outcomes.items()
            if o.kind == "automation" and group in self.fallback and self.fallback[group].stop_id is not None
        }

    def sequence(self) -> list[tuple[int, str | None]]:
        """(group, final value or None) in the order the records were first screened by a person.

        A record counts from its earliest live vote; imported labels and automation are not
        screening and are left out. This is the order the stopping rules and the recall curve read.
        """
        first = {group: min(v.id for v in by.values()) for group, by in self.votes.items() if by}
        for group, vote in self.resolution.items():  # a resolution without live votes (votes undone)
            first.setdefault(group, vote.id)
        return [(group, self.outcome(group).value) for group in sorted(first, key=first.get)]


def fetch_plain(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
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


def canonical_map(session: Session) -> dict[int, int]:
    """Duplicate record id -> canonical id (usually a small table)."""
    query = select(Record.id, Record.canonical_id).where(Record.canonical_id.is_not(None))
    return dict(fetch_plain(session, query))


def read_stage(
    session: Session,
    stage: str,
    record_ids: Iterable[int] | None = None,
    *,
    canonical: dict[int, int] | None = None,
) -> StageSnapshot:
    """The stage's state in this transaction (only ``record_ids``' rows when given: one group's check).

    Rows are read in id order, so later rows replace earlier ones: each reviewer's vote is
    their latest live decision. ``canonical`` (from :func:`canonical_map`) saves reading the
    duplicate links again when the caller has them.
    """
    stage = Stage(check_stage(stage))
    query = (
        select(
            Decision.record_id,
            Decision.id,
            Decision.reviewer_id,
            Decision.value,
            Decision.kind,
            Decision.reason,
            Decision.undoes_id,
            Decision.stop_id,
        )
        .where(Decision.stage == stage.value)
        .order_by(Decision.id)
    )
    if record_ids is not None:
        query = query.where(Decision.record_id.in_([int(r) for r in record_ids]))
    rows = fetch_plain(session, query)
    undone = {row[6] for row in rows if row[6] is not None}
    canonical = canonical if canonical is not None else canonical_map(session)
    votes: dict[int, dict[int, Vote]] = {}
    resolution: dict[int, Vote] = {}
    fallback: dict[int, Fallback] = {}
    retrieval: dict[int, str] = {}
    for record_id, did, reviewer, value, kind, reason, undoes, stop_id in rows:
        if undoes is not None or did in undone:
            continue
        group = canonical.get(record_id, record_id)
        if kind == "screen":
            if value in RETRIEVAL_VALUES:
                retrieval[group] = value
            else:
                votes.setdefault(group, {})[reviewer] = Vote(did, value, reason)
        elif kind == "resolution":
            resolution[group] = Vote(did, value, reason)
        else:
            fallback[group] = Fallback(did, value, reason, kind, stop_id)
    return StageSnapshot(
        stage=stage,
        mode=get_mode(session, stage),
        votes=votes,
        resolution=resolution,
        fallback=fallback,
        retrieval=retrieval,
        canonical=canonical,
    )


@dataclass
class ProjectSnapshot:
    """Both stages, read in one transaction: what PRISMA, exports and status report from."""

    title_abstract: StageSnapshot
    full_text: StageSnapshot

    def stage(self, stage: str) -> StageSnapshot:
        return self.full_text if Stage(stage) == Stage.FULL_TEXT else self.title_abstract


def read_project(session: Session) -> ProjectSnapshot:
    canonical = canonical_map(session)  # one read of the duplicate links for both stages
    return ProjectSnapshot(*(read_stage(session, stage, canonical=canonical) for stage in Stage))
