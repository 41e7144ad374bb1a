"""MEDLINE text: PubMed's "Save > PubMed format" (``.nbib``, ``.txt``) and Ovid's MEDLINE export.

Records are parsed with ``Bio.Medline.parse``, which streams; this module feeds it
lines through a checker that knows each line's number, so a record's location is
"record N, line L" and a line that is neither a tag line nor a continuation is an
:class:`~screening.errors.ImportFormatError` naming its line.

A tag line is a tag of 2-4 capitals padded to four columns, then ``"- "``
("PMID- ", "FAU - ", "TI  - "): Bio reads the tag from columns 1-4 and the value
from column 7, so a line spaced otherwise ("TI - x") would lose its tag and the
start of its text, and is refused. A lowercase tag ("ab  - ") is refused too:
PubMed and Ovid write capitals only, and Bio would file the line under a key
nothing reads, dropping the abstract without a word.

A file cut short (a download that stopped, a copy that ran out of space) ends
inside its last record, which must not be imported as if whole. The rule, which
relies only on what every real export has: the last record is cut when it has
no ``SO`` (source) line and

* it is a PubMed record (its first tag is ``PMID``): PubMed ends every record
  with ``SO``, books included; or
* every earlier record in the file has ``SO`` (Ovid writes it, not last); or
* the file does not end with a newline, so its last line stops mid-way.

A cut inside the ``SO`` line itself is not seen, and loses nothing: no field of
a citation is read from ``SO``. A last line that is not a tag line and has no
newline is reported as the file ending mid-line rather than as a bad line.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from Bio import Medline

from ..errors import ImportFormatError
from . import Citation
from .files import open_text

# "PMID- 123", "TI  - ...", "FAU - ...": a tag of 2-4 capitals, padded to 4 columns, then "- "
_TAG_LINE = re.compile(r"^(?=.{4}-)([A-Z][A-Z0-9]{1,3}) {0,2}-( |$)")
# a tag in any case, spaced any way ("ab  - x", "TI - x"): meant as a tag, but Bio would misread it
_TAG_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,3}) {0,3}-( |$)")
# the tag PubMed ends every record with, and Ovid writes in every record
SOURCE_TAG = "SO"
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_DOI_ID = re.compile(r"(10\.\S+)\s*\[doi\]")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"


@dataclass
class _Shape:
    """What a record's lines showed: where it starts and ends, and its tags in order."""

    number: int
    start: int
    end: int = 0
    tags: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"record {self.number}, line {self.start}"


class _Lines:
    """Lines for Bio.Medline, checked, with the shape of each record as it starts."""

    def __init__(self, lines: Iterator[str], path: str) -> None:
        self._lines = lines
        self.path = path
        self.shapes: deque[_Shape] = deque()
        self.ends_mid_line = False  # the last line has no newline

    def __iter__(self) -> Iterator[str]:
        shape: _Shape | None = None
        records = 0
        for number, line in enumerate(self._lines, start=1):
            self.ends_mid_line = bool(line.strip()) and not line.endswith("\n")
            if not line.strip():
                shape = None
                yield "\n"
                continue
            if line.startswith("      "):
                if shape is None:
                    raise ImportFormatError(self.path, f"line {number}", None, "continuation line outside a record")
            else:
                tag = self._tag(line, number, shape)
                if shape is None:
                    records += 1
                    shape = _Shape(records, number)
                    self.shapes.append(shape)
                shape.tags.append(tag)
            shape.end = number
            yield line

    def _tag(self, line: str, number: int, shape: _Shape | None) -> str:
        """The tag of a tag line; any other line is an error naming it."""
        match = _TAG_LINE.match(line)
        if match:
            return match.group(1)
        text = line.strip()[:60]
        if self.ends_mid_line:
            inside = f", inside record {shape.number} (from line {shape.start})" if shape else ""
            problem = f"the file ends mid-line{inside}, at {text!r}; it looks cut short"
            raise ImportFormatError(self.path, f"line {number}", None, problem)
        like = _TAG_LIKE.match(line)
        if like and _TAG_LINE.match(line[:4].upper() + line[4:]):
            tag = like.group(1)
            problem = f"lowercase tag in {text!r}; MEDLINE tags are capitals ({tag.upper()!r}), as PubMed writes them"
            raise ImportFormatError(self.path, f"line {number}", tag, problem)
        if like:
            problem = f"malformed tag line {text!r}: the tag must be padded to 4 columns, then '- '"
            raise ImportFormatError(self.path, f"line {number}", like.group(1), problem)
        raise ImportFormatError(self.path, f"line {number}", None, f"not a MEDLINE tag line: {text!r}")


def _check_whole(last: _Shape, earlier_have_source: bool, ends_mid_line: bool, path: str) -> None:
    """Refuse a last record the file was cut inside of (the rule is in the module docstring)."""
    if SOURCE_TAG in last.tags:
        return
    if last.tags[0] == "PMID":
        why = f"it has no {SOURCE_TAG} line, which every PubMed record ends with"
    elif earlier_have_source:
        why = f"it has no {SOURCE_TAG} line, which every earlier record has"
    elif ends_mid_line:
        why = f"it has no {SOURCE_TAG} line and its last line has no newline"
    else:
        return
    problem = f"the file ends at line {last.end}, inside this record ({why}); the file looks cut short"
    raise ImportFormatError(path, last.where, SOURCE_TAG, problem)


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


def _citation(record: dict, shape: _Shape, path: str) -> Citation:
    """The record as a Citation; one with neither PMID nor TI could not be told from any other."""
    if not _first(record, "PMID", "TI"):
        raise ImportFormatError(path, shape.where, "PMID", "record has neither PMID nor TI")
    return citation_from_medline(record, path, shape.where)


def read_medline(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a MEDLINE-format text file, one record at a time.

    Each record is held until the next one starts, so that the last one, alone,
    can be checked for a cut.
    """
    path = Path(path)
    with open_text(path) as handle:
        lines = _Lines(handle, str(path))
        held: tuple[dict, _Shape] | None = None
        earlier_have_source = True
        for record in Medline.parse(iter(lines)):
            if held is not None:
                yield _citation(*held, str(path))
                earlier_have_source &= SOURCE_TAG in held[1].tags
            held = (record, lines.shapes.popleft())
        if held is not None:
            _check_whole(held[1], earlier_have_source and held[1].number > 1, lines.ends_mid_line, str(path))
            yield _citation(*held, str(path))
