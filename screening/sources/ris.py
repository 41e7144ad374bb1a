"""RIS exports of Embase, Scopus, Web of Science, Ovid, EndNote and Zotero.

rispy parses a whole file at once and keeps no line numbers, so this module splits
the file into records itself, streaming, checking each line as it goes (a tag
outside a record, a record without ``ER``, an unknown tag), then hands each
record's lines to ``rispy.RisParser``. The vendors disagree on tags; the
``_first`` chains below list, for each field, the tags that carry it.

RIS tags are capitals, but hand-edited files and some tools write them in
lowercase ("ab  - ..."). Such a line, spaced exactly as a tag line and naming a
known tag once upper-cased, is read as that tag (and handed to rispy
upper-cased), with one notice per file; left as text it would be glued onto the
field above it, an abstract into the title. Once a file has shown a lowercase
tag, its other lowercase tag-like lines are checked as tags are (bad spacing,
unknown tag); in a file that has not, they may be prose ("an - admittedly"), and
stay text as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rispy

from ..errors import ImportFormatError
from . import Citation, notice
from .files import open_text

# rispy's tag line: two characters (a letter first), two spaces, a hyphen; capitals, or see _Tags
_TAG_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9])  -(?: |$)")
# looks like a tag line but is spaced wrongly ("TI - x", "AU   - x"): a broken file, not text
_BAD_TAG_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9])(?: | {3,})-(?: |$)")
# tags the vendors use beyond rispy's mapping (Ovid CT/M2/U1-U5, EndNote J1/Y3/BT/ED, ...)
OVID_TAGS = frozenset({"CT", "M2", "U1", "U2", "U3", "U4", "U5"})
ENDNOTE_TAGS = frozenset(
    {"J1", "Y3", "BT", "ED", "CP", "H1", "H2", "LK", "L3", "RT", "A5", "A6", "PP", "SV", "OL", "AV"}
)
VENDOR_TAGS = OVID_TAGS | ENDNOTE_TAGS
KNOWN_TAGS = frozenset(rispy.TAG_KEY_MAPPING) | VENDOR_TAGS
# repeated by Ovid and Embase: "M3  - Journal Article" / "M3  - Review", "DB  - Embase" / "DB  - Medline"
LIST_TAGS = [*rispy.LIST_TYPE_TAGS, "M3", "DB"]
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
DOI_PATTERN = re.compile(r"\b(10\.\d{4,9}/[^\s;,\"<>]+)", re.IGNORECASE)  # a DOI inside free text
# the DO field holds a DOI and nothing else: all of it is the DOI, "<", ">" and ";" included, as in
# Wiley's SICI DOIs (10.1002/1097-4679(196807)24:3<316::AID-JCLP2270240310>3.0.CO;2-G)
_DOI_FIELD = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)?(10\.\d{4,9}/\S+)", re.IGNORECASE)
_PMID_NOTE = re.compile(r"^(?:PMID|PubMed ID)\s*:\s*(\d{1,9})\s*$", re.IGNORECASE)
_PMID = re.compile(r"^\d{1,8}$")
_OVID_QUALIFIER = re.compile(r"\s*\[[^\]]*\]")
# notes this package's RIS writer adds, so that its exports re-import whole
NOTE_MESH = "MeSH: "
NOTE_TYPE = "Publication type: "
NOTE_PMID = "PMID: "
NOTE_PREFIXES = (NOTE_MESH, NOTE_TYPE, NOTE_PMID)


class _Tags:
    """Reads the tag of each line of one file, capitals or (known tags) lowercase, and remembers the lowercase."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lowercase: dict[str, int] = {}  # each lowercase spelling, and the first line it is on

    def tag(self, line: str, number: int) -> str | None:
        """The line's tag, upper-cased; None for a line of text."""
        match = _TAG_LINE.match(line)
        written = match.group(1) if match else None
        if written is None:
            self._check_spacing(line, number)
            return None
        if written.isupper():
            return written
        if written.upper() not in KNOWN_TAGS and not self.lowercase:
            return None  # "xx  - ..." in a file that writes capitals: text, as it always was
        self.lowercase.setdefault(written, number)
        return written.upper()

    def _check_spacing(self, line: str, number: int) -> None:
        bad = _BAD_TAG_LINE.match(line)
        if bad and (bad.group(1).isupper() or (self.lowercase and bad.group(1).upper() in KNOWN_TAGS)):
            raise ImportFormatError(self.path, f"line {number}", bad.group(1), f"malformed tag line {line[:40]!r}")

    def tell(self) -> None:
        """One notice for the file, naming the first lowercase line and every spelling read."""
        if self.lowercase:
            first, line = next(iter(self.lowercase.items()))  # in the order first seen
            message = f"lowercase RIS tags read as tags ({', '.join(self.lowercase)})"
            notice(self.path, f"line {line}", first, message)


def _records(lines: Iterator[str], path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where TY is, the record's lines through ER), checking structure."""
    tags = _Tags(path)
    start: int | None = None
    record: list[str] = []
    number = records = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n").lstrip("\ufeff")
        written, tag = line[:2], tags.tag(line, number)
        if tag is not None:
            line = tag + line[2:]  # rispy reads capitals only
        if start is None:
            if tag == "TY":
                start, record = number, [line]
            elif tag is not None:
                raise ImportFormatError(path, f"line {number}", written, "a record must start with 'TY  - '")
            continue  # blank lines and headers such as "1." between records
        if tag == "TY":
            raise ImportFormatError(path, f"line {number}", "ER", f"the record starting at line {start} has no ER")
        if tag is not None and tag not in KNOWN_TAGS:
            raise ImportFormatError(path, f"line {number}", written, "unknown RIS tag")
        record.append(line)
        if tag == "ER":
            records += 1
            yield start, record
            start, record = None, []
    if start is not None:
        raise ImportFormatError(
            path, f"line {number}", "ER", f"file ends inside the record starting at line {start} (no ER)"
        )
    if records == 0 and number > 0:
        raise ImportFormatError(path, None, "TY", f"no RIS record in {number} lines (no line starts 'TY  - ')")
    tags.tell()


def _values(ref: dict[str, Any], key: str) -> list[str]:
    """A field as a list of non-empty strings, whether rispy made it a string or a list."""
    if key.isupper() and len(key) == 2:  # a vendor tag rispy keeps under unknown_tag
        value: Any = ref.get("unknown_tag", {}).get(key, [])
    else:
        value = ref.get(key, [])
    items = value if isinstance(value, list) else [value]
    return [v.strip() for v in items if isinstance(v, str) and v.strip()]


def _first(ref: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        values = _values(ref, key)
        if values:
            return values[0]
    return None


def _year(ref: dict[str, Any], path: str, where: str) -> int | None:
    """PY or Y1 ("2019", "2019//", "2023 Feb"), else a year in DA (WoS writes "DA  - SEP")."""
    for key, tag in (("year", "PY"), ("publication_year", "Y1")):
        value = _first(ref, key)
        if value:
            match = _YEAR.search(value)
            if match is None:
                raise ImportFormatError(path, where, tag, f"no year in {value!r}")
            return int(match.group(1))
    match = _YEAR.search(_first(ref, "date") or "")
    return int(match.group(1)) if match else None


def _pages(ref: dict[str, Any]) -> str | None:
    """SP-EP, else Scopus's article number (C7, "e0180707")."""
    start, end = _first(ref, "start_page"), _first(ref, "end_page")
    if start and end and "-" not in start:
        return f"{start}-{end}"
    return start or end or _first(ref, "custom7")


def _doi(ref: dict[str, Any]) -> str | None:
    """The DO field whole; else the first DOI found in the notes, links or type of work."""
    for value in _values(ref, "doi"):
        match = _DOI_FIELD.match(value.strip()) or DOI_PATTERN.search(value)
        if match:
            return match.group(1).rstrip(".")
    for value in [*_values(ref, "notes"), *_values(ref, "urls"), *_values(ref, "type_of_work")]:
        match = DOI_PATTERN.search(value)
        if match:
            return match.group(1).rstrip(".")
    return None


def _pmid(ref: dict[str, Any], notes: list[str]) -> str | None:
    """The PMID: a "PMID: n" note, else the accession number of a MEDLINE/PubMed record."""
    for note in notes:
        match = _PMID_NOTE.match(note)
        if match:
            return match.group(1)
    accession = _first(ref, "accession_number")
    database = " ".join(_values(ref, "name_of_database") + _values(ref, "database_provider")).lower()
    is_medline = "medline" in database or "pubmed" in database or not database
    return accession if accession and is_medline and _PMID.match(accession) else None


def _notes(ref: dict[str, Any], prefix: str) -> list[str]:
    return [n[len(prefix) :].strip() for n in _values(ref, "notes") if n.startswith(prefix)]


def _publication_types(ref: dict[str, Any]) -> list[str]:
    """This package's "Publication type:" notes, else Scopus/Embase M3 ("Article", "Review")."""
    typed = _notes(ref, NOTE_TYPE)
    if typed:
        return typed
    return [v for v in _values(ref, "type_of_work") if not DOI_PATTERN.search(v)]


def _ovid_mesh(keywords: list[str]) -> list[str]:
    """Ovid MEDLINE's KW are MeSH headings: "*Low Back Pain/di [Diagnosis]" -> "*Low Back Pain"."""
    return [_OVID_QUALIFIER.sub("", k).split("/", 1)[0].strip() for k in keywords]


def citation_from_ris(ref: dict[str, Any], path: str, where: str) -> Citation:
    """One rispy record as a Citation."""
    notes = _values(ref, "notes")
    authors = _values(ref, "authors") + _values(ref, "first_authors") or _values(ref, "secondary_authors")
    extra: dict[str, Any] = {"type_of_reference": _first(ref, "type_of_reference")}
    database = "; ".join(_values(ref, "name_of_database"))
    if database:
        extra["database"] = database
    keywords, mesh = _values(ref, "keywords"), _notes(ref, NOTE_MESH)
    if "ovid" in database.lower() and "medline" in database.lower():
        keywords, mesh = [], _ovid_mesh(keywords)
    other_notes = [n for n in notes if not n.startswith(NOTE_PREFIXES)]
    if other_notes:
        extra["notes"] = other_notes
    return Citation(
        title=_first(ref, "title", "primary_title", "CT", "translated_title") or "",
        abstract=_first(ref, "abstract", "notes_abstract") or "",
        authors=authors,
        journal=_first(
            ref, "secondary_title", "alternate_title3", "journal_name", "alternate_title2", "alternate_title1", "J1"
        )
        or "",
        year=_year(ref, path, where),
        volume=_first(ref, "volume"),
        issue=_first(ref, "number"),
        pages=_pages(ref),
        pmid=_pmid(ref, notes),
        doi=_doi(ref),
        mesh_terms=mesh,
        keywords=keywords,
        publication_types=_publication_types(ref),
        language=_first(ref, "language"),
        url=next((u for u in _values(ref, "urls") if u.startswith("http")), None),
        source_record_id=_first(ref, "id", "accession_number"),
        extra=extra,
        location=where,
    )


def read_ris(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a RIS file, one record at a time."""
    path = Path(path)
    parser = rispy.RisParser(list_tags=LIST_TAGS)
    with open_text(path) as handle:
        for number, (start, lines) in enumerate(_records(handle, str(path)), start=1):
            (ref,) = parser.parse_lines(iter(lines))
            yield citation_from_ris(ref, str(path), f"record {number}, line {start}")
