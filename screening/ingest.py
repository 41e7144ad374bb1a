"""Put citations into a project: one transaction per import, provenance kept.

Every citation read from a file or a search becomes one ``records`` row linked to
its ``sources`` row, even when it duplicates a record already there: deduplication
(``screening.dedupe``) groups them afterwards and never deletes, so PRISMA can
count what each database returned.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from . import __version__, access
from .dedupe import normalize_doi, title_key
from .errors import AlreadyImported, ConfigError, ImportFormatError
from .schema import SOURCE_KINDS, Decision, Record, RecordSource, Reviewer, Source, Stage, utcnow
from .sources import Citation, ImportNotice, collecting_notices, notice
from .store import Store, audit

CHUNK = 2000
AUDITED_NOTICES = 100  # the audit log keeps the first ones; the count says how many there were
PRIOR_REVIEWER = "import"


@dataclass
class AddResult:
    """What one call to :func:`add_citations` wrote."""

    record_ids: list[int] = field(default_factory=list)
    skipped_existing: int = 0
    deleted_pmids: list[str] = field(default_factory=list)
    labels: int = 0


@dataclass
class ImportResult:
    source_id: int
    file_name: str | None
    count: int
    labels: int
    deleted: int
    skipped_existing: int = 0
    # what the readers changed or dropped on the way in (a line read as cp1252, a field cut short)
    notices: list[ImportNotice] = field(default_factory=list)


PMID = re.compile(r"^(?:pmid:?\s*)?(\d{1,10})$", re.IGNORECASE)


def _pmid(value: str | None) -> str | None:
    """A PMID is digits; anything else ("n/a", a DOI in the wrong column) is not one."""
    match = PMID.match((value or "").strip())
    return match.group(1) if match else None


# The most a field keeps. Real abstracts are under 10,000 characters and real titles under 1,000; a
# field far beyond that is a broken export (a whole file in one cell), and it would cost the ranking
# gigabytes. A longer field is cut, and the import says which record and field.
FIELD_CAPS = {"title": 10_000, "abstract": 1_000_000}
TEXT_CAP = 10_000  # journal, volume, pages, language, url and each name, term or keyword of a list
LIST_CAP = 10_000  # items of a list field (a physics paper may list 3,000 authors)
TEXT_FIELDS = ("title", "abstract", "journal", "volume", "issue", "pages", "language", "url")
LIST_FIELDS = ("authors", "mesh_terms", "keywords", "publication_types")


def _dirty(value: str | None, cap: int) -> bool:
    """Whether a text needs :func:`_clean_text`: the check every field of every record pays, so kept cheap."""
    return bool(value) and (len(value) > cap or "\x00" in value)


def _clean_text(value: str, cap: int, say: Callable[[str], None]) -> str:
    """No NUL characters (PostgreSQL refuses them; they are never text), at most ``cap`` characters."""
    if "\x00" in value:
        say(f"{value.count(chr(0))} NUL character(s) removed")
        value = value.replace("\x00", "")
    if len(value) > cap:
        say(f"{len(value):,} characters cut to the first {cap:,}")
        value = value[:cap]
    return value


def clean_citation(c: Citation, origin: str) -> Citation:
    """The citation with NUL characters removed and fields cut to :data:`FIELD_CAPS`, each change a notice."""

    def sayer(name: str) -> Callable[[str], None]:
        where = c.location or (f"PMID {c.pmid}" if c.pmid else None)
        title = (c.title or "").replace("\x00", "")[:60]
        return lambda message: notice(origin, where, name, f"{message} ({title!r})")

    for name in TEXT_FIELDS:
        cap = FIELD_CAPS.get(name, TEXT_CAP)
        if _dirty(value := getattr(c, name), cap):
            setattr(c, name, _clean_text(value, cap, sayer(name)))
    for name in LIST_FIELDS:
        items = getattr(c, name)
        if len(items) > LIST_CAP:
            sayer(name)(f"{len(items):,} items cut to the first {LIST_CAP:,}")
            setattr(c, name, items := items[:LIST_CAP])
        if any(_dirty(i, TEXT_CAP) for i in items):
            say = sayer(name)
            setattr(c, name, [_clean_text(i, TEXT_CAP, say) if _dirty(i, TEXT_CAP) else i for i in items])
    return c


def citation_row(c: Citation) -> dict[str, Any]:
    """The ``records`` columns for one citation, normalised for matching."""
    extra = dict(c.extra)
    pmid = _pmid(c.pmid)
    if c.pmid and pmid is None:
        extra["pmid_as_given"] = c.pmid
    return {
        "pmid": pmid,
        "doi": normalize_doi(c.doi),
        "title": c.title or "",
        "abstract": c.abstract or "",
        "authors": list(c.authors),
        "journal": c.journal or "",
        "year": c.year,
        "volume": c.volume,
        "issue": c.issue,
        "pages": c.pages,
        "mesh_terms": list(c.mesh_terms),
        "keywords": list(c.keywords),
        "publication_types": list(c.publication_types),
        "language": c.language,
        "url": c.url,
        "retracted": bool(c.retracted),
        "deleted_from_source": False,
        "extra": extra,
        "title_key": title_key(c.title)[:400],
        "created_at": utcnow(),
    }


def _chunks(items: Iterable[Citation], size: int) -> Iterator[list[Citation]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _prior_reviewer_id(session: Session) -> int:
    rid = session.scalar(select(Reviewer.id).where(Reviewer.name == PRIOR_REVIEWER))
    if rid is None:
        reviewer = Reviewer(name=PRIOR_REVIEWER, role="system")
        session.add(reviewer)
        session.flush()
        rid = reviewer.id
    return rid


def _existing_pmids(session: Session, pmids: list[str]) -> set[str]:
    if not pmids:
        return set()
    return set(session.scalars(select(Record.pmid).where(Record.pmid.in_(pmids))))


def _mark_deleted(session: Session, pmids: list[str]) -> None:
    if pmids:
        session.execute(update(Record).where(Record.pmid.in_(pmids)).values(deleted_from_source=True))


def _insert_records(session: Session, source: Source, rows: list[dict[str, Any]]) -> list[int]:
    """Insert record rows and return their ids, in order.

    PostgreSQL returns the ids of a multi-row INSERT cheaply. SQLite would fall back
    to one statement per row for ordered RETURNING, so there the ids are assigned
    here, under the write lock that the no-op UPDATE takes for this transaction.
    """
    if session.get_bind().dialect.name != "sqlite":
        return list(session.scalars(insert(Record).returning(Record.id, sort_by_parameter_order=True), rows))
    session.execute(update(Source).where(Source.id == source.id).values(count_retrieved=Source.count_retrieved))
    first = (session.scalar(select(func.max(Record.id))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    for rid, row in zip(ids, rows, strict=True):
        row["id"] = rid
    session.execute(insert(Record), rows)
    return ids


def add_citations(
    session: Session,
    source: Source,
    citations: Iterable[Citation],
    *,
    skip_existing_pmids: bool = False,
    start_position: int = 0,
    origin: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> AddResult:
    """Insert citations for ``source`` inside the caller's transaction.

    Labels become prior title/abstract decisions by the ``import`` reviewer.
    DeleteCitation entries mark existing records with that PMID as withdrawn.
    With ``skip_existing_pmids`` (a living-review update), a PMID already in the
    project is not added again. ``origin`` names the file in notices (default: the source's).
    """
    origin = origin or source.file_name or source.name
    result = AddResult()
    position = start_position
    prior_reviewer: int | None = None
    for chunk in _chunks(citations, CHUNK):
        deleted = [c.pmid for c in chunk if c.deleted and c.pmid]
        result.deleted_pmids.extend(deleted)
        _mark_deleted(session, deleted)
        keep = [c for c in chunk if not c.deleted]
        if skip_existing_pmids:
            seen = _existing_pmids(session, [c.pmid for c in keep if c.pmid])
            result.skipped_existing += sum(1 for c in keep if c.pmid in seen)
            keep = [c for c in keep if c.pmid not in seen]
        if not keep:
            continue
        ids = _insert_records(session, source, [citation_row(clean_citation(c, origin)) for c in keep])
        links = []
        for offset, (rid, c) in enumerate(zip(ids, keep, strict=True)):
            links.append(
                {
                    "record_id": rid,
                    "source_id": source.id,
                    "source_record_id": c.source_record_id,
                    "position": position + offset,
                }
            )
        position += len(keep)
        session.execute(insert(RecordSource), links)
        labelled = [(rid, c) for rid, c in zip(ids, keep, strict=True) if c.label is not None]
        if labelled:
            prior_reviewer = prior_reviewer or _prior_reviewer_id(session)
            session.execute(
                insert(Decision),
                [
                    {
                        "record_id": rid,
                        "reviewer_id": prior_reviewer,
                        "stage": Stage.TITLE_ABSTRACT.value,
                        "value": "include" if c.label else "exclude",
                        "kind": "prior",
                        "reason": None if c.label else c.label_reason,
                        "note": f"label from {source.file_name or source.name}",
                        "created_at": utcnow(),
                    }
                    for rid, c in labelled
                ],
            )
            result.labels += len(labelled)
        result.record_ids.extend(ids)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return result


def new_source(
    session: Session,
    *,
    name: str,
    kind: str = "database",
    method: str = "import",
    query: str | None = None,
    file_name: str | None = None,
    file_format: str | None = None,
    count_reported: int | None = None,
    run_at: datetime | None = None,
    status: str = "complete",
    parameters: dict[str, Any] | None = None,
) -> Source:
    """A ``sources`` row, flushed so it has an id (an owner's, when signed in: every import and search makes one)."""
    access.require_owner(session, "import records or run a search")
    if not name or not name.strip():
        raise ConfigError("--source: a source needs a name, such as 'PubMed' or 'Embase'")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"--kind: {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    source = Source(
        name=name.strip(),
        kind=kind,
        method=method,
        query=query,
        file_name=file_name,
        file_format=file_format,
        count_reported=count_reported,
        run_at=run_at or utcnow(),
        status=status,
        tool_version=__version__,
        parameters=parameters or {},
    )
    session.add(source)
    session.flush()
    return source


def content_sha256(path: Path) -> str:
    """The SHA-256 of the file's content, decompressed: ``x.ris`` and ``x.ris.gz`` are the same import."""
    from .sources.files import open_binary

    digest = hashlib.sha256()
    try:
        with open_binary(path) as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except (OSError, EOFError) as e:
        raise ImportFormatError(str(path), None, None, f"cannot read: {e}") from e
    return digest.hexdigest()


def _refuse_reimport(session: Session, path: Path, sha256: str) -> None:
    """Importing a file twice doubles its records and its labels; say when it was imported first."""
    earlier = session.scalars(select(Source).where(Source.content_sha256 == sha256).order_by(Source.id)).first()
    if earlier is not None:
        when = earlier.run_at.strftime("%Y-%m-%d %H:%M") if earlier.run_at else "earlier"
        raise AlreadyImported(
            f"{path}: this content was imported already, as source {earlier.id} ({earlier.name}, "
            f"{earlier.file_name or 'a file'}, {when}, {earlier.count_retrieved} records); "
            "pass --again to import it once more"
        )


FILE_LABELS = {"include": 1, "exclude": 0}


def _labelled(citations: Iterable[Citation], label: int) -> Iterator[Citation]:
    """The citations, each without a label of its own given ``label``."""
    for c in citations:
        if c.label is None and not c.deleted:
            c.label = label
        yield c


def import_file(
    store: Store,
    path: str | os.PathLike[str],
    *,
    source_name: str,
    kind: str = "database",
    fmt: str | None = None,
    query: str | None = None,
    actor: str | None = None,
    again: bool = False,
    label: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file as one transaction: all of it, or nothing and a clear error.

    A file whose content was imported before is refused unless ``again``. What the
    readers changed on the way in (see :class:`ImportNotice`) comes back in
    ``notices`` and goes into the audit log. ``label`` ("include" or "exclude") labels
    every record the file does not label itself: a file of known includes (the studies
    the review must find) gives the ranker its best start.
    """
    from .sources.files import detect_format, read_file_parallel

    access.require_owner(store, "import records")
    if label not in (None, *FILE_LABELS):
        raise ConfigError(f"--label: {label!r} is not one of {', '.join(FILE_LABELS)}")
    path = Path(path)
    fmt = fmt or detect_format(path)
    sha256 = content_sha256(path)
    with store.begin() as session, collecting_notices() as notices:
        if not again:
            _refuse_reimport(session, path, sha256)
        source = new_source(session, name=source_name, kind=kind, query=query, file_name=path.name, file_format=fmt)
        source.content_sha256 = sha256
        citations = read_file_parallel(path, fmt)
        if label is not None:
            citations = _labelled(citations, FILE_LABELS[label])
        added = add_citations(session, source, citations, origin=str(path), on_chunk=on_chunk)
        if not added.record_ids and not added.deleted_pmids:  # an empty export is a mistake, not a source
            raise ImportFormatError(str(path), None, None, f"no records in this {fmt} file (empty, or a header only)")
        source.count_retrieved = len(added.record_ids)
        source.count_new = len(added.record_ids)
        source.finished_at = utcnow()
        audit(
            session,
            "import",
            {
                "source_id": source.id,
                "file": path.name,
                "format": fmt,
                "sha256": sha256,
                "again": again,
                "label": label,
                "records": len(added.record_ids),
                "labels": added.labels,
                "deleted_pmids": len(added.deleted_pmids),
                "notices": [str(n) for n in notices[:AUDITED_NOTICES]],
                "notice_count": len(notices),
            },
            actor=actor,
        )
        return ImportResult(
            source_id=source.id,
            file_name=path.name,
            count=len(added.record_ids),
            labels=added.labels,
            deleted=len(added.deleted_pmids),
            notices=list(notices),
        )
