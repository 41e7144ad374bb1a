"""Where records come from: file importers and the PubMed E-utilities client.

Every reader yields :class:`Citation` objects, one per bibliographic record, in
file order, streaming, so that a 100,000-record file never sits in memory whole.
A malformed file raises :class:`screening.errors.ImportFormatError` naming the
file, the line or record, and the field.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# the bibliographic fields a citation and a project record share, in export order
BIBLIOGRAPHIC_FIELDS = (
    "title",
    "abstract",
    "authors",
    "journal",
    "year",
    "volume",
    "issue",
    "pages",
    "pmid",
    "doi",
    "mesh_terms",
    "keywords",
    "publication_types",
    "language",
    "url",
)


@dataclass
class Citation:
    """One record as read from a source, before it enters the store."""

    title: str = ""
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    journal: str = ""
    year: int | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    pmid: str | None = None
    doi: str | None = None
    mesh_terms: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    language: str | None = None
    url: str | None = None
    retracted: bool = False
    # a PubMed DeleteCitation entry: the PMID is withdrawn, there is no record to add
    deleted: bool = False
    # the record's id in its source (Covidence #, record_id, accession number)
    source_record_id: str | None = None
    # a prior screening label from the file: 1 include, 0 exclude, None unlabelled
    label: int | None = None
    # an exclusion reason carried by the file (e.g. Covidence "Notes"), if any
    label_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # where in the file the record starts, for error messages ("line 12", "record 3")
    location: str | None = None


@dataclass(frozen=True)
class ImportNotice:
    """Something a reader changed or dropped on the way in, which the reviewer must be told.

    Like :class:`~screening.errors.ImportFormatError` it names the file, where in it,
    and the field; unlike an error, the import goes on.
    """

    path: str
    where: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.path, *(p for p in (self.where, self.field and f"field {self.field!r}") if p)]
        return f"{': '.join(parts)}: {self.message}"


class ImportNoticeWarning(UserWarning):
    """An :class:`ImportNotice` given outside :func:`collecting_notices` (a reader used on its own)."""


_NOTICES: ContextVar[list[ImportNotice] | None] = ContextVar("import_notices", default=None)


def notice(path: str, where: str | None, field: str | None, message: str) -> None:
    """Tell the import in progress what was changed or dropped (a Python warning when none is).

    A context variable rather than a return value, so that every reader keeps
    yielding plain citations, and two imports on two dashboard threads never mix
    their notices.
    """
    item = ImportNotice(str(path), where, field, message)
    collected = _NOTICES.get()
    if collected is None:
        warnings.warn(str(item), ImportNoticeWarning, stacklevel=2)
    else:
        collected.append(item)


@contextmanager
def collecting_notices() -> Iterator[list[ImportNotice]]:
    """The notices given while the block runs (including by generators it drives), in order."""
    collected: list[ImportNotice] = []
    token = _NOTICES.set(collected)
    try:
        yield collected
    finally:
        _NOTICES.reset(token)
