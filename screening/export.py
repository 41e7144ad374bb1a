"""Export writers: CSV, RIS and BibTeX.

A row is a dict with the keys ``id`` (project record id), ``title``, ``abstract``,
``authors`` (list), ``journal``, ``year``, ``volume``, ``issue``, ``pages``,
``pmid``, ``doi``, ``mesh_terms``, ``keywords``, ``publication_types`` (lists),
``language``, ``url``, ``sources`` (list of source names), ``decision`` and
``reason``. All three re-import through :mod:`screening.sources` with every
bibliographic field intact (the RIS file carries MeSH terms, publication types and
the PMID in ``N1`` notes that the RIS reader knows; the BibTeX file in ``mesh`` and
``pubtype`` fields that BibTeX styles ignore), except that RIS and BibTeX values
are one line: whitespace runs become one space. Writers stream: rows may be a generator.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import rispy

from .sources import BIBLIOGRAPHIC_FIELDS
from .sources.bibtex import MESH_FIELD as BIBTEX_MESH
from .sources.bibtex import TYPE_FIELD as BIBTEX_TYPE
from .sources.ris import NOTE_MESH, NOTE_PMID, NOTE_TYPE
from .sources.tabular import spreadsheet_safe

Row = Mapping[str, Any]

CSV_COLUMNS = ("id", *BIBLIOGRAPHIC_FIELDS, "sources", "decision", "reason")
LIST_SEPARATOR = "; "
_SPACE = re.compile(r"\s+")


def _text(value: Any) -> str:
    """One line of text: RIS and BibTeX values cannot hold line breaks."""
    return "" if value is None else _SPACE.sub(" ", str(value)).strip()


def _list(row: Row, key: str) -> list[str]:
    return [_text(v) for v in row.get(key) or [] if _text(v)]


def write_csv(rows: Iterable[Row], path: str | os.PathLike[str]) -> int:
    """A UTF-8 CSV, ``id`` first, lists joined with '; '. Returns the number of rows.

    Safe to open in a spreadsheet: a text cell that would start a formula (``= + - @``, tab,
    CR) is written with a ``'`` before it (OWASP's rule); importing the file strips it again.
    """
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            cells = []
            for key in CSV_COLUMNS:
                value = row.get(key)
                if isinstance(value, list | tuple):
                    value = LIST_SEPARATOR.join(_list(row, key))
                cells.append("" if value is None else spreadsheet_safe(value) if isinstance(value, str) else value)
            writer.writerow(cells)
            count += 1
    return count


class _RisWriter(rispy.RisWriter):
    """rispy's writer without its "1." line before each record."""

    def set_header(self, count: int) -> str:
        return ""


def _pages(pages: str) -> tuple[str, str]:
    start, _, end = pages.partition("-")
    return start, end


def ris_reference(row: Row) -> dict[str, Any]:
    """The rispy dict for one row: standard tags, plus N1 notes for what RIS has no tag for."""
    ref: dict[str, Any] = {"type_of_reference": "JOUR", "id": _text(row.get("id"))}
    single = {
        "title": "title",
        "abstract": "abstract",
        "secondary_title": "journal",
        "year": "year",
        "volume": "volume",
        "number": "issue",
        "doi": "doi",
        "accession_number": "pmid",
        "language": "language",
    }
    for rispy_key, key in single.items():
        if _text(row.get(key)):
            ref[rispy_key] = _text(row.get(key))
    authors = _list(row, "authors")
    if authors:
        ref["authors"] = authors
    pages = _text(row.get("pages"))
    if pages:
        ref["start_page"], end = _pages(pages)
        if end:
            ref["end_page"] = end
    if _list(row, "keywords"):
        ref["keywords"] = _list(row, "keywords")
    if _text(row.get("url")):
        ref["urls"] = [_text(row.get("url"))]
    notes = [f"{NOTE_PMID}{_text(row['pmid'])}"] if _text(row.get("pmid")) else []
    notes += [f"{NOTE_MESH}{term}" for term in _list(row, "mesh_terms")]
    notes += [f"{NOTE_TYPE}{kind}" for kind in _list(row, "publication_types")]
    if _list(row, "sources"):
        notes.append(f"Sources: {LIST_SEPARATOR.join(_list(row, 'sources'))}")
    if _text(row.get("decision")):
        notes.append(f"Screening decision: {_text(row.get('decision'))}")
    if _text(row.get("reason")):
        notes.append(f"Exclusion reason: {_text(row.get('reason'))}")
    if notes:
        ref["notes"] = notes
    return ref


def write_ris(rows: Iterable[Row], path: str | os.PathLike[str]) -> int:
    """A RIS file (UTF-8). Returns the number of records written."""
    writer = _RisWriter()
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            writer.format_lines(f, [ris_reference(row)])
            f.write("\n")
            count += 1
    return count


_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    # not \{ and \}: BibTeX counts those braces too, so a lone one unbalances the entry
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_RE = re.compile("|".join(re.escape(c) for c in _BIBTEX_SPECIAL))
_INITIALS_NAME = re.compile(r"^(.+?) ([A-Z]{1,4})$")  # MEDLINE "Casbon JA"
_AND = re.compile(r"\sand\s", re.IGNORECASE)  # BibTeX's name separator, in any case
_LIST_SPECIAL = (",", ";")  # what separates list items, so an item holding one is braced
# DOI and URL are verbatim fields to biblatex (and to \url): written as they are unless that would break the file
_VERBATIM_UNSAFE = re.compile(r"[{}\\]")


def bibtex_escape(value: Any) -> str:
    """Text safe inside a braced BibTeX field: LaTeX specials escaped, braces balanced."""
    return _BIBTEX_RE.sub(lambda m: _BIBTEX_SPECIAL[m.group(0)], _text(value))


def _bibtex_verbatim(value: Any) -> str:
    """A DOI or URL as written (``_`` or ``%`` escaped would break the link), escaped only if it holds ``{ } \\``."""
    text = _text(value)
    return bibtex_escape(text) if _VERBATIM_UNSAFE.search(text) else text


def _bibtex_author(name: str) -> str:
    """'Last, First' as it is; 'Last FM' -> 'Last, FM'; a group name, or one holding " and ", braced whole."""
    if _AND.search(name):
        return "{" + bibtex_escape(name) + "}"
    if "," in name:
        return bibtex_escape(name)
    match = _INITIALS_NAME.match(name)
    if match:
        return f"{bibtex_escape(match.group(1))}, {match.group(2)}"
    return "{" + bibtex_escape(name) + "}"


def _bibtex_list(items: list[str]) -> str:
    """Items joined with ", "; one that holds a comma or semicolon braced, so it is read back whole."""
    escaped = (bibtex_escape(item) for item in items)
    return ", ".join("{" + e + "}" if any(c in e for c in _LIST_SPECIAL) else e for e in escaped)


def bibtex_entry(row: Row) -> str:
    """One ``@article`` (or ``@misc`` without a journal) keyed ``rec<id>``."""
    fields: list[tuple[str, str]] = []
    if _list(row, "authors"):
        fields.append(("author", " and ".join(_bibtex_author(a) for a in _list(row, "authors"))))
    for name, key in (
        ("title", "title"),
        ("journal", "journal"),
        ("year", "year"),
        ("volume", "volume"),
        ("number", "issue"),
    ):
        if _text(row.get(key)):
            fields.append((name, bibtex_escape(row.get(key))))
    if _text(row.get("pages")):
        fields.append(("pages", bibtex_escape(row.get("pages")).replace("-", "--")))
    for name in ("doi", "pmid", "url", "language", "abstract"):
        if _text(row.get(name)):
            value = _bibtex_verbatim(row.get(name)) if name in ("doi", "url") else bibtex_escape(row.get(name))
            fields.append((name, value))
    for name, key in (("keywords", "keywords"), (BIBTEX_MESH, "mesh_terms"), (BIBTEX_TYPE, "publication_types")):
        if _list(row, key):
            fields.append((name, _bibtex_list(_list(row, key))))
    kind = "article" if _text(row.get("journal")) else "misc"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{rec{_text(row.get('id'))},\n{body}\n}}\n"


def write_bibtex(rows: Iterable[Row], path: str | os.PathLike[str]) -> int:
    """A BibTeX file (UTF-8). Returns the number of entries written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(bibtex_entry(row))
            f.write("\n")
            count += 1
    return count


EXPORT_FORMATS: dict[str, Callable[[Iterable[Row], str | os.PathLike[str]], int]] = {
    "csv": write_csv,
    "ris": write_ris,
    "bibtex": write_bibtex,
}
