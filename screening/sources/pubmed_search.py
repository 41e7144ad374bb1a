"""A complete, resumable PubMed search with a PRISMA-S search log.

One search is one ``sources`` row (method ``search``). Its ``parameters`` JSON holds
the plan: the date slices (each under esearch's 9,999 ceiling), their WebEnv and
query_key, and how far each has been fetched. Every efetch batch is committed in one
transaction together with its records, its raw XML (gzipped, a ``source_batches`` row)
and the progress of the plan, so a search killed at any moment resumes where it
stopped, losing and duplicating nothing.

Completeness is checked twice: each batch against the number of records asked for
(by the client), and the whole search against the PMIDs esearch listed; PMIDs that
the history-based fetch missed (the database changed, a batch came back short) are
fetched by id at the end. If the union of the slices' PMIDs still differs from the
Count PubMed reported, the search completes with a warning in its log entry rather
than failing: the log then shows both numbers.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import access
from ..dedupe import dedupe
from ..errors import ConfigError, SourceError
from ..ingest import add_citations, new_source
from ..schema import Record, RecordSource, Source, SourceBatch, utcnow
from ..store import Store, audit
from . import collecting_notices
from .pubmed import (
    ESEARCH_CEILING,
    MAX_BATCH,
    EsearchResult,
    EutilsClient,
    FetchedBatch,
    HistoryExpired,
    mask_email,
    mask_key,
    parse_esearch,
)

__all__ = [
    "DATETYPES",
    "SearchLogEntry",
    "SearchOutcome",
    "new_record_ids",
    "resume_search",
    "search_log",
    "search_pubmed",
    "unfinished_search",
]

SOURCE_NAME = "PubMed"
DATETYPES = ("edat", "pdat", "mdat")
EARLIEST = date(1800, 1, 1)
FUTURE_YEARS = 2  # publication dates run ahead of today
MAX_RESEARCHES = 3  # per slice and run, when the history expires
_DATE = re.compile(r"^(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?$")

Progress = Callable[[int, int], None]


@dataclass
class SearchOutcome:
    """What a search run did, for the CLI and the dashboard."""

    source_id: int
    query: str
    count_reported: int
    count_retrieved: int
    count_new: int
    slices: int
    batches: int
    resumed: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchLogEntry:
    """One row of the PRISMA-S search log."""

    source_id: int
    database: str
    query: str
    run_at: str
    finished_at: str | None
    status: str
    count_reported: int | None
    count_retrieved: int
    count_new: int
    tool_version: str | None
    limits: str
    warnings: list[str]


# -- dates ----------------------------------------------------------------------


def parse_date(value: str, *, end: bool, option: str) -> date:
    """YYYY, YYYY/MM or YYYY/MM/DD (``-`` also accepted); ``end`` picks the last day of the span."""
    m = _DATE.match(value.strip())
    if not m:
        raise ConfigError(f"{option}: {value!r} is not a date like 2020, 2020/06 or 2020/06/30")
    year, month, day = int(m[1]), int(m[2] or (12 if end else 1)), m[3]
    try:
        if day is not None:
            return date(year, month, int(day))
        if not end:
            return date(year, month, 1)
        first_next = date(year + month // 12, month % 12 + 1, 1)
        return first_next - timedelta(days=1)
    except ValueError as e:
        raise ConfigError(f"{option}: {value!r} is not a real date ({e})") from e


def eutils_date(d: date) -> str:
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"


def _date_window(mindate: str | None, maxdate: str | None) -> tuple[date, date]:
    lo = parse_date(mindate, end=False, option="--mindate") if mindate else EARLIEST
    latest = date(date.today().year + FUTURE_YEARS, 12, 31)
    hi = parse_date(maxdate, end=True, option="--maxdate") if maxdate else latest
    if lo > hi:
        raise ConfigError(f"--mindate {mindate!r} is after --maxdate {maxdate!r}")
    return lo, hi


# -- slicing ----------------------------------------------------------------------


def plan_slices(client: EutilsClient, query: str, params: dict[str, Any], total: int) -> list[dict[str, Any]]:
    """Date ranges each holding at most ESEARCH_CEILING records, found by halving."""
    if total <= ESEARCH_CEILING:
        return [{"mindate": params["mindate"], "maxdate": params["maxdate"], "count": total, "next": 0, "done": False}]
    lo, hi = _date_window(params["mindate"], params["maxdate"])
    out: list[dict[str, Any]] = []
    stack = [(lo, hi, total)]
    while stack:
        a, b, count = stack.pop()
        if count == 0:
            continue
        if count <= ESEARCH_CEILING:
            out.append({"mindate": eutils_date(a), "maxdate": eutils_date(b), "count": count, "next": 0, "done": False})
            continue
        if a == b:
            raise SourceError(
                f"PubMed lists {count} records for {eutils_date(a)} ({params['datetype']}) alone, more than "
                f"esearch can return ({ESEARCH_CEILING}); narrow the query"
            )
        mid = a + (b - a) // 2
        right = _count(client, query, mid + timedelta(days=1), b, params["datetype"])
        left = _count(client, query, a, mid, params["datetype"])
        stack += [(mid + timedelta(days=1), b, right), (a, mid, left)]
    return out


def _count(client: EutilsClient, query: str, a: date, b: date, datetype: str) -> int:
    return client.esearch(
        query, mindate=eutils_date(a), maxdate=eutils_date(b), datetype=datetype, usehistory=False
    ).count


# -- persistence helpers -------------------------------------------------------------


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _save_params(source: Source, params: dict[str, Any]) -> None:
    """Assign a fresh dict so SQLAlchemy sees the JSON change."""
    source.parameters = {**params, "slices": [dict(s) for s in params["slices"]]}


def _fetched_pmids(session: Session, source_id: int) -> set[str]:
    rows = session.scalars(select(SourceBatch.info).where(SourceBatch.source_id == source_id))
    return {p for info in rows if info.get("kind") != "esearch" for p in info.get("pmids", [])}


def _listed_pmids(session: Session, source_id: int) -> set[str]:
    """Every PMID the slices' esearch answers listed (their raw XML is kept)."""
    out: set[str] = set()
    rows = session.execute(select(SourceBatch.info, SourceBatch.payload).where(SourceBatch.source_id == source_id))
    for info, payload in rows:
        if info.get("kind") == "esearch":
            out.update(parse_esearch(gzip.decompress(payload)).ids)
    return out


def _linked_count(session: Session, source_id: int) -> int:
    return session.scalar(select(func.count(RecordSource.id)).where(RecordSource.source_id == source_id)) or 0


class _Run:
    """One pass over a search's plan; every write is its own transaction."""

    def __init__(self, store: Store, client: EutilsClient, source_id: int, on_progress: Progress | None) -> None:
        self.store = store
        self.client = client
        self.source_id = source_id
        self.on_progress = on_progress
        self.batches = 0
        with store.read() as s:
            source = s.get(Source, source_id)
            self.query = source.query or ""
            self.total = source.count_reported or 0
            self.params = dict(source.parameters)
            self.fetched = _fetched_pmids(s, source_id)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(len(self.fetched), self.total)

    def _update(self, session: Session, **columns: Any) -> Source:
        source = session.get(Source, self.source_id)
        _save_params(source, self.params)
        for k, v in columns.items():
            setattr(source, k, v)
        return source

    def plan(self) -> None:
        if "slices" in self.params:
            return
        slices = plan_slices(self.client, self.query, self.params, self.total)
        self.params["slices"] = slices
        with self.store.begin() as s:
            self._update(s)

    def research(self, index: int) -> None:
        """esearch one slice with history; keep its raw answer (the PMIDs it lists)."""
        sl = self.params["slices"][index]
        result: EsearchResult = self.client.esearch(
            self.query,
            mindate=sl["mindate"],
            maxdate=sl["maxdate"],
            datetype=self.params["datetype"],
            retmax=ESEARCH_CEILING,
        )
        sl.update(count=result.count, webenv=result.webenv, query_key=result.query_key)
        sl["searches"] = sl.get("searches", 0) + 1
        self.params["translation"] = result.translation
        with self.store.begin() as s:
            s.add(
                SourceBatch(
                    source_id=self.source_id,
                    retstart=0,
                    count=len(result.ids),
                    payload=_gzip(result.raw),
                    info={"kind": "esearch", "slice": index, "count": result.count, "webenv": result.webenv},
                )
            )
            self._update(s)

    def store_batch(self, batch: FetchedBatch, info: dict[str, Any]) -> None:
        """Records, raw XML and plan progress: one transaction."""
        pmids = [c.pmid for c in batch.citations if c.pmid]
        with self.store.begin() as s, collecting_notices() as notices:
            source = s.get(Source, self.source_id)
            added = add_citations(
                s, source, batch.citations, skip_existing_pmids=True, start_position=_linked_count(s, self.source_id)
            )
            s.add(
                SourceBatch(
                    source_id=self.source_id,
                    retstart=info.get("retstart", 0),
                    count=len(batch.citations),
                    payload=_gzip(batch.raw),
                    info={
                        **info,
                        "pmids": pmids,
                        "expected": batch.expected,
                        "short": batch.short,
                        "attempts": batch.attempts,
                        "added": len(added.record_ids),
                        "notices": [str(n) for n in notices],  # a field cut short, NUL characters removed
                    },
                )
            )
            self.params["batches_done"] = self.params.get("batches_done", 0) + 1
            self._update(
                s,
                count_retrieved=len(self.fetched | set(pmids)),
                count_new=(source.count_new or 0) + len(added.record_ids),
            )
        self.batches += 1
        self.fetched |= set(pmids)
        self._progress()

    def fetch_slice(self, index: int) -> None:
        sl = self.params["slices"][index]
        if not sl.get("webenv"):
            self.research(index)
        researched = 0
        while sl["next"] < sl["count"]:
            retstart = sl["next"]
            size = min(self.params["batch_size"], sl["count"] - retstart)
            try:
                batch = self.client.efetch_history(
                    sl["webenv"], sl["query_key"], retstart=retstart, retmax=size, expected=size
                )
            except HistoryExpired:
                researched += 1
                if researched > MAX_RESEARCHES:
                    raise
                self.research(index)  # the same date range again; positions are kept
                continue
            sl["next"] = retstart + size
            sl["done"] = sl["next"] >= sl["count"]
            self.store_batch(batch, {"kind": "efetch", "slice": index, "retstart": retstart, "webenv": sl["webenv"]})
        if not sl.get("done"):
            sl["done"] = True
            with self.store.begin() as s:
                self._update(s)

    def top_up(self) -> list[str]:
        """Fetch by PMID whatever esearch listed but the batches did not bring; return what is still missing."""
        with self.store.read() as s:
            listed = _listed_pmids(s, self.source_id)
            missing = sorted(listed - self.fetched, key=int)
        for start in range(0, len(missing), MAX_BATCH):
            ids = missing[start : start + MAX_BATCH]
            self.store_batch(self.client.efetch_ids(ids), {"kind": "efetch_ids", "retstart": start})
        return sorted(listed - self.fetched, key=int)

    def run(self) -> list[str]:
        self._progress()
        self.plan()
        for index in range(len(self.params["slices"])):
            if not self.params["slices"][index].get("done"):
                self.fetch_slice(index)
        return self.top_up()


# -- public API ------------------------------------------------------------------------


def unfinished_search(store: Store, query: str | None = None) -> int | None:
    """The newest PubMed search that was interrupted or failed (of ``query``, if given)."""
    stmt = (
        select(Source.id)
        .where(Source.method == "search", Source.name == SOURCE_NAME, Source.status.in_(("running", "failed")))
        .order_by(Source.id.desc())
    )
    if query is not None:
        stmt = stmt.where(Source.query == query)
    with store.read() as s:
        return s.scalars(stmt).first()


def _search_parameters(
    client: EutilsClient, mindate: str | None, maxdate: str | None, datetype: str, batch_size: int
) -> dict[str, Any]:
    if datetype not in DATETYPES:
        raise ConfigError(f"--datetype: {datetype!r} is not one of {', '.join(DATETYPES)}")
    if not 0 < batch_size <= MAX_BATCH:
        raise ConfigError(f"batch_size: must be 1..{MAX_BATCH}, got {batch_size!r}")
    if mindate or maxdate:  # E-utilities needs both ends of a range
        lo, hi = _date_window(mindate, maxdate)
        mindate, maxdate = eutils_date(lo), eutils_date(hi)
    return {
        "db": "pubmed",
        "mindate": mindate,
        "maxdate": maxdate,
        "datetype": datetype,
        "batch_size": batch_size,
        "eutils_url": client.base_url,
        "email": mask_email(client.email),
        "api_key": mask_key(client.api_key),
        "batches_done": 0,
    }


def search_pubmed(
    store: Store,
    client: EutilsClient,
    query: str,
    *,
    mindate: str | None = None,
    maxdate: str | None = None,
    datetype: str = "edat",
    batch_size: int = MAX_BATCH,
    on_progress: Progress | None = None,
    actor: str | None = None,
    deduplicate: bool = True,
) -> SearchOutcome:
    """Run ``query`` on PubMed and store every record it reports; a new search-log entry.

    Records whose PMID is already in the project are not added again (a living-review
    update adds only new PMIDs). Refuses to start while the same query has an
    unfinished search: finish that one with :func:`resume_search`. With ``deduplicate``
    the project is deduplicated at the end, so ``count_new`` counts only records new
    after deduplication.
    """
    access.require_owner(store, "run a search")
    if not query or not query.strip():
        raise ConfigError("QUERY: give a PubMed query, such as 'psilocybin AND chronic pain'")
    query = query.strip()
    params = _search_parameters(client, mindate, maxdate, datetype, batch_size)
    pending = unfinished_search(store, query)
    if pending is not None:
        raise ConfigError(
            f"search #{pending} of this query did not finish; run it again with --resume "
            "(or resume_search) so nothing is fetched twice"
        )
    total = client.esearch(
        query, mindate=params["mindate"], maxdate=params["maxdate"], datetype=datetype, usehistory=False
    ).count
    with store.begin() as s:
        source = new_source(
            s,
            name=SOURCE_NAME,
            kind="database",
            method="search",
            query=query,
            count_reported=total,
            status="running",
            parameters=params,
        )
        source_id = source.id
        audit(s, "search_start", {"source_id": source_id, "query": query, "count_reported": total}, actor=actor)
    return _execute(store, client, source_id, on_progress, actor=actor, resumed=False, deduplicate=deduplicate)


def resume_search(
    store: Store,
    client: EutilsClient,
    *,
    source_id: int | None = None,
    query: str | None = None,
    on_progress: Progress | None = None,
    actor: str | None = None,
    deduplicate: bool = True,
) -> SearchOutcome:
    """Finish an interrupted search (the newest one, or ``source_id``) where it stopped."""
    access.require_owner(store, "run a search")
    if source_id is None:
        source_id = unfinished_search(store, query)
        if source_id is None:
            what = f"of {query!r} " if query else ""
            raise ConfigError(f"--resume: no unfinished PubMed search {what}in this project")
    with store.begin() as s:
        source = s.get(Source, source_id)
        if source is None or source.method != "search" or source.name != SOURCE_NAME:
            raise ConfigError(f"--resume: search #{source_id} is not a PubMed search of this project")
        if source.status == "complete":
            raise ConfigError(f"--resume: search #{source_id} is already complete")
        source.status = "running"
        audit(s, "search_resume", {"source_id": source_id}, actor=actor)
    return _execute(store, client, source_id, on_progress, actor=actor, resumed=True, deduplicate=deduplicate)


def _execute(
    store: Store,
    client: EutilsClient,
    source_id: int,
    on_progress: Progress | None,
    *,
    actor: str | None,
    resumed: bool,
    deduplicate: bool,
) -> SearchOutcome:
    run = _Run(store, client, source_id, on_progress)
    try:
        missing = run.run()
    except SourceError as e:
        with store.begin() as s:
            run.params["error"] = str(e)
            run._update(s, status="failed")
            audit(s, "search_failed", {"source_id": source_id, "error": str(e)}, actor=actor)
        raise
    return _finish(store, run, missing, actor=actor, resumed=resumed, deduplicate=deduplicate)


def _finish(
    store: Store, run: _Run, missing: list[str], *, actor: str | None, resumed: bool, deduplicate: bool
) -> SearchOutcome:
    """Check the whole search against PubMed's count, close the log entry, deduplicate."""
    with store.read() as s:
        listed = _listed_pmids(s, run.source_id)
    warnings = list(run.params.get("warnings", []))
    if missing:
        warnings.append(f"{len(missing)} PMIDs listed by esearch could not be fetched: {', '.join(missing[:20])}")
    if len(listed) != run.total:
        warnings.append(f"PubMed reported {run.total} records but its date slices listed {len(listed)}")
    run.params["warnings"] = warnings
    run.params.pop("error", None)
    with store.begin() as s:
        source = run._update(s, status="complete", finished_at=utcnow(), count_retrieved=len(run.fetched))
        audit(
            s,
            "search",
            {
                "source_id": run.source_id,
                "query": run.query,
                "count_reported": run.total,
                "count_retrieved": len(run.fetched),
                "warnings": warnings,
            },
            actor=actor,
        )
    if deduplicate:
        dedupe(store, actor=actor)  # so count_new means "new after deduplication"
    with store.begin() as s:
        source = s.get(Source, run.source_id)
        source.count_new = len(new_record_ids_in(s, run.source_id))
        return SearchOutcome(
            source_id=run.source_id,
            query=run.query,
            count_reported=run.total,
            count_retrieved=source.count_retrieved,
            count_new=source.count_new,
            slices=len(run.params["slices"]),
            batches=run.params.get("batches_done", 0),
            resumed=resumed,
            warnings=warnings,
        )


def new_record_ids_in(session: Session, source_id: int) -> list[int]:
    stmt = (
        select(Record.id)
        .join(RecordSource, RecordSource.record_id == Record.id)
        .where(RecordSource.source_id == source_id, Record.canonical_id.is_(None))
        .order_by(RecordSource.position, Record.id)
    )
    return list(session.scalars(stmt))


def new_record_ids(store: Store, source_id: int) -> list[int]:
    """Records this search brought into the project: the ones new for screening.

    A PMID already present is not linked to the search, and a record that deduplication
    found to be a copy of an older one (from another database) is not new either.
    """
    with store.read() as s:
        return new_record_ids_in(s, source_id)


def _limits(params: dict[str, Any]) -> str:
    if params.get("mindate") or params.get("maxdate"):
        return f"{params.get('datetype', 'edat')} {params.get('mindate')}–{params.get('maxdate')}"
    return ""


def search_log(store: Store) -> list[SearchLogEntry]:
    """Every PubMed search of the project, oldest first: what PRISMA-S asks a review to report."""
    with store.read() as s:
        rows = s.scalars(
            select(Source).where(Source.method == "search", Source.name == SOURCE_NAME).order_by(Source.id)
        ).all()
        return [
            SearchLogEntry(
                source_id=r.id,
                database=str((r.parameters or {}).get("db", "pubmed")).capitalize().replace("Pubmed", "PubMed"),
                query=r.query or "",
                run_at=r.run_at.isoformat(timespec="seconds"),
                finished_at=r.finished_at.isoformat(timespec="seconds") if r.finished_at else None,
                status=r.status,
                count_reported=r.count_reported,
                count_retrieved=r.count_retrieved,
                count_new=r.count_new,
                tool_version=r.tool_version,
                limits=_limits(r.parameters or {}),
                warnings=list((r.parameters or {}).get("warnings", [])),
            )
            for r in rows
        ]
