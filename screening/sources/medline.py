"""MEDLINE text: PubMed's "Save > PubMed format" (``.nbib``, ``.txt``) and Ovid's MEDLINE export.

Records are parsed with ``Bio.Medline.parse``, which streams; this module feeds it
lines through a checker that knows each line's number, so a record's location is
"record N, line L" and a line that is neither a tag line nor a continuation is an
:class:`~screening.errors.ImportFormatError` naming its line.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from Bio import Medline

from ..errors import ImportFormatError
from . import Citation
from .files import open_text

# "PMID- 123", "TI  - ...", "FAU - ...": a tag of 2-4 capitals, padded to 4, then "- "
_TAG_LINE = re.compile(r"^[A-Z][A-Z0-9]{1,3} {0,2}-( |$)")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_DOI_ID = re.compile(r"(10\.\S+)\s*\[doi\]")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"


class _Lines:
    """Lines for Bio.Medline, checked, with the line where each record starts."""

    def __init__(self, lines: Iterator[str], path: str) -> None:
        self._lines = lines
        self.path = path
        self.starts: deque[int] = deque()

    def __iter__(self) -> Iterator[str]:
        in_record = False
        for number, line in enumerate(self._lines, start=1):
            if not line.strip():
                in_record = False
                yield "\n"
                continue
            if line.startswith("      "):
                if not in_record:
                    raise ImportFormatError(self.path, f"line {number}", None, "continuation line outside a record")
            elif not _TAG_LINE.match(line):
                raise ImportFormatError(
                    self.path, f"line {number}", None, f"not a MEDLINE tag line: {line.strip()[:60]!r}"
                )
            elif not in_record:
                in_record = True
                self.starts.append(number)
            yield line


def _first(record: dict, *keys: str) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value and value.strip():
            return value.strip()
    return None


def _doi(record: dict) -> str | None:
    """The DOI of "AID - 10.1186/... [doi]" or "LID - 10.1186/... [doi]" (Bio joins LID lines)."""
    for value in [*record.get("AID", []), record.get("LID", "")]:
        match = _DOI_ID.search(value)
        if match:
            return match.group(1)
    return None


def _year(record: dict, path: str, where: str) -> int | None:
    dp = _first(record, "DP", "YR")
    if dp is None:
        return None
    match = _YEAR.search(dp)
    if match is None:
        raise ImportFormatError(path, where, "DP", f"no year in publication date {dp!r}")
    return int(match.group(1))


def _mesh(record: dict) -> list[str]:
    """Descriptors; '*' kept where the descriptor itself is a major topic ("*Pain/therapy")."""
    return [term.split("/", 1)[0].strip() for term in record.get("MH", []) if term.strip()]


def citation_from_medline(record: dict, path: str, where: str) -> Citation:
    """One Bio.Medline record as a Citation."""
    pmid = _first(record, "PMID")
    types = list(record.get("PT", []))
    extra: dict = {}
    if "Retraction of Publication" in types:
        extra["retraction_notice"] = True
    retracted = "Retracted Publication" in types or any(k == "RIN" for k in record)
    return Citation(
        title=_first(record, "TI", "BTI") or "",
        abstract=" ".join((record.get("AB") or "").split()),
        authors=[a.strip() for a in record.get("FAU") or record.get("AU") or []],
        journal=_first(record, "JT", "TA") or "",
        year=_year(record, path, where),
        volume=_first(record, "VI"),
        issue=_first(record, "IP"),
        pages=_first(record, "PG"),
        pmid=pmid,
        doi=_doi(record),
        mesh_terms=_mesh(record),
        keywords=[k.strip() for k in record.get("OT", [])],
        publication_types=types,
        language=_first(record, "LA"),
        url=PUBMED_URL.format(pmid) if pmid else None,
        retracted=retracted,
        source_record_id=pmid,
        extra=extra,
        location=where,
    )


def read_medline(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a MEDLINE-format text file, one record at a time."""
    path = Path(path)
    with open_text(path) as handle:
        lines = _Lines(handle, str(path))
        for number, record in enumerate(Medline.parse(iter(lines)), start=1):
            where = f"record {number}, line {lines.starts.popleft()}"
            if not _first(record, "PMID", "TI"):
                raise ImportFormatError(str(path), where, "PMID", "record has neither PMID nor TI")
            yield citation_from_medline(record, str(path), where)
