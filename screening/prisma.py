"""PRISMA 2020 flow counts, computed from the store, checked, and written as CSV or JSON.

Every record row is one record identified by the source that delivered it (its
first ``record_sources`` link). Then, in this order, each record lands in exactly
one box:

1. a duplicate (``canonical_id`` set): *duplicate records*;
2. retracted, or deleted from its source (PubMed DeleteCitation): *records
   removed for other reasons*;
3. excluded at title/abstract by an automation tool (final decision of kind
   ``automation``, such as the excludes a stop of the stage writes for the records it
   left unscreened: :mod:`screening.stops`): *records marked as ineligible by automation
   tools*; the stops' rules are named in the JSON and in the diagram;
4. otherwise it is for screening: *records screened* once it has a final
   include or exclude at title/abstract; *records excluded* if exclude;
   *reports sought* if include. Full text: *not retrieved*, or *assessed*,
   then *excluded* with its one reason, or *included*.

Sources of kind website, organisation and citation feed the "other methods"
column (their duplicates and removals are not boxes of that column, so they are
left out of it); every other kind (database, register, other) the databases and
registers column. A study is one included report: ``new_studies = new_reports``.

Each count is computed on its own, so the identities below catch unfinished
work (undecided records, reports without a retrieval decision) as well as bugs,
and :func:`check_identities` refuses to let such numbers be drawn.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import ConfigError, ScreeningError
from .reviewers import list_reasons
from .schema import Record, RecordSource, Source, Stage
from .snapshot import Outcome, read_project
from .stops import StopInfo, list_stops
from .store import Store

OTHER_KINDS = ("website", "organisation", "citation")
UNKNOWN_SOURCE = "Unknown source"
TEMPLATE_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")


class PrismaIdentityError(ScreeningError):
    """The PRISMA counts do not add up; the numbers are not fit to report."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__("PRISMA counts do not add up:\n  " + "\n  ".join(failures))


@dataclass
class Flow:
    """One column of the diagram, from reports sought to included."""

    sought: int = 0
    not_retrieved: int = 0
    assessed: int = 0
    excluded: list[tuple[str, int]] = field(default_factory=list)
    included: int = 0
    retrieval_pending: int = 0  # sought, no retrieval decision yet
    full_text_pending: int = 0  # assessed, no final full-text decision yet

    @property
    def excluded_total(self) -> int:
        return sum(n for _, n in self.excluded)


@dataclass
class PrismaCounts:
    """The numbers of a PRISMA 2020 flow diagram for a new review."""

    databases: list[tuple[str, int]] = field(default_factory=list)
    registers: list[tuple[str, int]] = field(default_factory=list)
    websites: int = 0
    organisations: int = 0
    citations: int = 0
    duplicates: int = 0
    excluded_automatic: int = 0
    excluded_other: int = 0
    records_screened: int = 0
    records_excluded: int = 0
    screening_pending: int = 0  # reached screening, no final include/exclude yet
    stops: list[StopInfo] = field(default_factory=list)  # title/abstract stops behind excluded_automatic
    dbr: Flow = field(default_factory=Flow)
    other: Flow = field(default_factory=Flow)
    # drawn while work is unfinished: the identities hold with the work still awaited counted in
    provisional: bool = False

    @property
    def awaiting(self) -> dict[str, int]:
        """The unfinished work, by the step it awaits (what a provisional diagram shows)."""
        return {
            "screening": self.screening_pending,
            "retrieval": self.dbr.retrieval_pending + self.other.retrieval_pending,
            "full_text": self.dbr.full_text_pending + self.other.full_text_pending,
        }

    @property
    def finished(self) -> bool:
        return not any(self.awaiting.values())

    @property
    def database_results(self) -> int:
        return sum(n for _, n in self.databases)

    @property
    def register_results(self) -> int:
        return sum(n for _, n in self.registers)

    @property
    def identified(self) -> int:
        """Records identified from databases and registers."""
        return self.database_results + self.register_results

    @property
    def other_identified(self) -> int:
        return self.websites + self.organisations + self.citations

    @property
    def has_other_methods(self) -> bool:
        return bool(self.other_identified or self.other.sought)

    @property
    def new_studies(self) -> int:
        return self.dbr.included + self.other.included

    @property
    def new_reports(self) -> int:
        return self.new_studies


# -- counting --------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    id: int
    canonical_id: int | None
    removed: bool
    source_id: int | None


def _records(session: Session) -> list[_Row]:
    first_source = (
        select(RecordSource.record_id, func.min(RecordSource.source_id).label("source_id"))
        .group_by(RecordSource.record_id)
        .subquery()
    )
    rows = session.execute(
        select(Record.id, Record.canonical_id, Record.retracted, Record.deleted_from_source, first_source.c.source_id)
        .outerjoin(first_source, first_source.c.record_id == Record.id)
        .order_by(Record.id)
    )
    return [_Row(rid, canon, bool(retracted or deleted), src) for rid, canon, retracted, deleted, src in rows]


def _ordered(counter: Counter[str], order: list[str]) -> list[tuple[str, int]]:
    """Counts in the configured order, then any others by name; zero counts left out."""
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(counter, key=lambda k: (rank.get(k, len(rank)), k))
    return [(name, counter[name]) for name in names if counter[name]]


def _full_text(flow: Flow, retrieval: str | None, ft: Outcome | None, reasons: Counter[str]) -> None:
    flow.sought += 1
    if retrieval is None:
        flow.retrieval_pending += 1
    elif retrieval == "not_retrieved":
        flow.not_retrieved += 1
    else:
        flow.assessed += 1
        final = ft.final if ft is not None else None
        if final == "include":
            flow.included += 1
        elif final == "exclude":
            reasons[(ft.reason if ft else None) or "No reason given"] += 1
        else:
            flow.full_text_pending += 1


def prisma_counts(store: Store) -> PrismaCounts:
    """Compute every PRISMA 2020 count from the project, in one read."""
    with store.read() as s:
        sources = {sid: (name, kind) for sid, name, kind in s.execute(select(Source.id, Source.name, Source.kind))}
        records = _records(s)
        state = read_project(s)
        reason_order = list_reasons(s, Stage.FULL_TEXT)
        stops = list_stops(s, Stage.TITLE_ABSTRACT, active_only=True)
    ta, ft, retrieved = state.title_abstract.outcomes, state.full_text.outcomes, state.full_text.retrieval
    counts = PrismaCounts(stops=stops)
    identified: dict[str, Counter[str]] = {"database": Counter(), "register": Counter()}
    other_counts: Counter[str] = Counter()
    reasons = {"dbr": Counter(), "other": Counter()}
    for row in records:
        name, kind = sources.get(row.source_id, (UNKNOWN_SOURCE, "other"))
        stream = "other" if kind in OTHER_KINDS else "dbr"
        if stream == "other":
            other_counts[kind] += 1
        else:
            identified["register" if kind == "register" else "database"][name] += 1
        if row.canonical_id is not None:
            counts.duplicates += stream == "dbr"
            continue
        if row.removed:
            counts.excluded_other += stream == "dbr"
            continue
        outcome = ta.get(row.id)
        if outcome is not None and outcome.kind == "automation" and outcome.final == "exclude":
            counts.excluded_automatic += stream == "dbr"
            continue
        final = outcome.final if outcome is not None else None
        if stream == "dbr":
            counts.records_screened += final is not None
            counts.records_excluded += final == "exclude"
            counts.screening_pending += final is None
        if final == "include":
            flow = counts.dbr if stream == "dbr" else counts.other
            _full_text(flow, retrieved.get(row.id), ft.get(row.id), reasons[stream])
    counts.databases = sorted(identified["database"].items())
    counts.registers = sorted(identified["register"].items())
    counts.websites, counts.organisations, counts.citations = (other_counts[k] for k in OTHER_KINDS)
    counts.dbr.excluded = _ordered(reasons["dbr"], reason_order)
    counts.other.excluded = _ordered(reasons["other"], reason_order)
    return counts


# -- identities --------------------------------------------------------------------
def _identity(name: str, left: int, right: int, formula: str, note: str = "") -> str | None:
    if left == right:
        return None
    return f"{name}: {left} != {formula} = {right}{note}"


def _pending(n: int, what: str) -> str:
    return f" ({n} {what})" if n else ""


def check_identities(counts: PrismaCounts) -> None:
    """Raise PrismaIdentityError listing every PRISMA identity that fails, with its numbers.

    For provisional counts the work still awaited is counted in (screened + awaiting =
    identified - removed, ...): the flow must still account for every record.
    """
    c, d = counts, counts.dbr
    extra = c.provisional
    checks = [
        _identity(
            "records screened",
            c.records_screened + c.screening_pending * extra,
            c.identified - c.duplicates - c.excluded_automatic - c.excluded_other,
            f"identified {c.identified} - duplicates {c.duplicates} - automation {c.excluded_automatic}"
            f" - other {c.excluded_other}",
            _pending(c.screening_pending, "records still undecided at title/abstract: maybe, conflict or unscreened"),
        ),
        _identity(
            "reports sought",
            d.sought,
            c.records_screened - c.records_excluded,
            f"screened {c.records_screened} - excluded {c.records_excluded}",
        ),
    ]
    for label, flow in (("", d), ("other methods: ", c.other)):
        checks.append(
            _identity(
                f"{label}reports assessed",
                flow.assessed + flow.retrieval_pending * extra,
                flow.sought - flow.not_retrieved,
                f"sought {flow.sought} - not retrieved {flow.not_retrieved}",
                _pending(flow.retrieval_pending, "reports sought without a retrieval decision"),
            )
        )
        checks.append(
            _identity(
                f"{label}reports included",
                flow.included + flow.full_text_pending * extra,
                flow.assessed - flow.excluded_total,
                f"assessed {flow.assessed} - excluded {flow.excluded_total}",
                _pending(flow.full_text_pending, "reports assessed without a final full-text decision"),
            )
        )
    failures = [msg for msg in checks if msg]
    if failures:
        raise PrismaIdentityError(failures)


# -- CSV (the PRISMA2020 R package / Shiny app template) and JSON --------------------
def _name(text: str) -> str:
    """A name safe inside the template's 'Name, n; Name, n' lists: no commas or semicolons."""
    return re.sub(r"\s*[,;]\s*", " - ", text).strip()


def _pairs(items: list[tuple[str, int]]) -> str:
    """The template's list form; '0' when empty, which the R package reads as no entries."""
    return "; ".join(f"{_name(name)}, {n}" for name, n in items) if items else "0"


def _identification(c: PrismaCounts) -> dict[str, Any]:
    """The identification and screening counts both outputs share, by the template's names."""
    return {
        "database_results": c.database_results,
        "register_results": c.register_results,
        "website_results": c.websites,
        "organisation_results": c.organisations,
        "citations_results": c.citations,
        "duplicates": c.duplicates,
        "excluded_automatic": c.excluded_automatic,
        "excluded_other": c.excluded_other,
        "records_screened": c.records_screened,
        "records_excluded": c.records_excluded,
        "new_studies": c.new_studies,
        "new_reports": c.new_reports,
        "total_studies": c.new_studies,
        "total_reports": c.new_reports,
    }


def template_values(counts: PrismaCounts) -> dict[str, str]:
    """The ``n`` column, keyed by the template's ``data`` column."""
    c = counts
    values: dict[str, Any] = {
        **_identification(c),
        "previous_studies": 0,
        "previous_reports": 0,
        "database_specific_results": _pairs(c.databases),
        "register_specific_results": _pairs(c.registers),
        "dbr_sought_reports": c.dbr.sought,
        "dbr_notretrieved_reports": c.dbr.not_retrieved,
        "other_sought_reports": c.other.sought,
        "other_notretrieved_reports": c.other.not_retrieved,
        "dbr_assessed": c.dbr.assessed,
        "dbr_excluded": _pairs(c.dbr.excluded),
        "other_assessed": c.other.assessed,
        "other_excluded": _pairs(c.other.excluded),
    }
    return {k: str(v) for k, v in values.items()}


def default_template() -> Path:
    """The PRISMA2020 package's template, shipped with this package."""
    return Path(str(resources.files("screening") / "data" / "PRISMA2020_template.csv"))


def read_template(path: str | Path | None = None) -> list[list[str]]:
    """The template's rows, header first, checked for the columns the R package reads."""
    path = Path(path) if path is not None else default_template()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--template: cannot read {path}: {e.strerror}") from e
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != TEMPLATE_COLUMNS:
        raise ConfigError(f"--template: {path} line 1: expected columns {', '.join(TEMPLATE_COLUMNS)}")
    return rows


def to_template_csv(counts: PrismaCounts, template_path: str | Path | None = None) -> str:
    """The template with its ``n`` column filled in: same rows, columns, order and quoting.

    Rows that hold no count (the title boxes) keep the template's value. The app
    draws from this file, so counts that do not add up raise PrismaIdentityError.
    """
    check_identities(counts)
    rows = read_template(template_path)
    values = template_values(counts)
    n_col = TEMPLATE_COLUMNS.index("n")
    box_col = TEMPLATE_COLUMNS.index("boxtext")
    automation_note = stops_note(counts)
    provisional_notes = awaiting_notes(counts)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        if row and row[0] in values:
            row = [*row[:n_col], values[row[0]], *row[n_col + 1 :]]
        if row and row[0] == "excluded_automatic" and automation_note:
            row = [*row[:box_col], f"{row[box_col]} ({automation_note})", *row[box_col + 1 :]]
        if row and row[0] in provisional_notes:
            row = [*row[:box_col], f"{row[box_col]} ({provisional_notes[row[0]]})", *row[box_col + 1 :]]
        writer.writerow(row)
    return out.getvalue()


PROVISIONAL = "PROVISIONAL"
# the box each kind of unfinished work belongs under, in the template and the diagram
AWAITING_BOXES = {"screening": "records_screened", "retrieval": "dbr_sought_reports", "full_text": "dbr_assessed"}
AWAITING_WORDS = {
    "screening": "awaiting screening",
    "retrieval": "awaiting a retrieval decision",
    "full_text": "awaiting a full-text decision",
}


def awaiting_notes(counts: PrismaCounts) -> dict[str, str]:
    """Box key -> "PROVISIONAL: 1,204 awaiting screening", for provisional counts with work awaited there."""
    if not counts.provisional:
        return {}
    return {
        AWAITING_BOXES[step]: f"{PROVISIONAL}: {n:,} {AWAITING_WORDS[step]}" for step, n in counts.awaiting.items() if n
    }


def stops_note(counts: PrismaCounts) -> str:
    """What the automation-tools count stands for, in a few words; '' without a stop.

    A forced stop says so first: the rule did not certify its recall.
    """
    parts = []
    for stop in counts.stops:
        claim = f"target {stop.target:.0%} recall at {stop.confidence:.0%} confidence"
        if stop.forced:
            parts.append(f"FORCED stop, the stopping rule {stop.rule} did not say stop ({claim}): {stop.note}")
        else:
            parts.append(f"screening stopped early by the stopping rule {stop.rule} ({claim})")
    return "; ".join(parts)


def _flow_json(flow: Flow) -> dict[str, Any]:
    return {
        "sought_reports": flow.sought,
        "notretrieved_reports": flow.not_retrieved,
        "assessed": flow.assessed,
        "excluded": [{"reason": r, "n": n} for r, n in flow.excluded],
        "excluded_total": flow.excluded_total,
        "included": flow.included,
        "retrieval_pending": flow.retrieval_pending,
        "full_text_pending": flow.full_text_pending,
    }


def to_json(counts: PrismaCounts) -> dict[str, Any]:
    """Every count, with the template's names where the template has one."""
    c = counts
    return {
        **_identification(c),
        "database_specific_results": [{"name": n, "n": k} for n, k in c.databases],
        "register_specific_results": [{"name": n, "n": k} for n, k in c.registers],
        "screening_pending": c.screening_pending,
        "provisional": c.provisional,
        "awaiting": c.awaiting,
        "excluded_automatic_note": stops_note(c),
        "stopping": [stop.as_dict() for stop in c.stops],
        "dbr": _flow_json(c.dbr),
        "other": _flow_json(c.other),
    }


def checked_counts(store: Store, *, provisional: bool = False) -> PrismaCounts:
    """Counts that add up, or PrismaIdentityError.

    With ``provisional``, the counts of unfinished work (marked so in every output, with
    what it awaits); a finished review's counts are never marked provisional.
    """
    counts = prisma_counts(store)
    counts.provisional = provisional and not counts.finished
    check_identities(counts)
    return counts
