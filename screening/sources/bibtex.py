"""BibTeX (``.bib``): Zotero, JabRef, Mendeley and Google Scholar exports, and this package's own.

bibtexparser (v2) parses a whole string and keeps the line of every entry and
field. To keep memory flat, the file is cut into pieces of whole entries, at lines
that start an entry while the braces before them are balanced (BibTeX counts every
brace, escaped or not, so a cut there never falls inside a value), and each piece is
parsed alone; ``@string`` macros carry over from piece to piece.

LaTeX is undone by :func:`latex_to_text`, not by bibtexparser's
``LatexDecodingMiddleware``: pylatexenc drops ``\\textbraceleft{}``, reads
``\\textasciicircum{}`` as "ˆ" and ``--`` as "–", so this package's own exports
(see ``screening.export.bibtex_escape``) would not come back as they were written.
"""

from __future__ import annotations

import copy
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.model import (
    Block,
    DuplicateBlockKeyBlock,
    DuplicateFieldKeyBlock,
    Entry,
    ImplicitComment,
    ParsingFailedBlock,
    String,
)

from ..errors import ImportFormatError
from . import Citation
from .files import open_text
from .ris import DOI_PATTERN

# entries parsed at once: large enough that bibtexparser's per-call cost vanishes, small enough to stay light
PIECE_ENTRIES = 500
# the custom fields this package's writer adds for what BibTeX has no field for
MESH_FIELD = "mesh"
TYPE_FIELD = "pubtype"
VERBATIM_FIELDS = frozenset({"doi", "url"})  # biblatex reads these verbatim: no ties, braces are text

_ENTRY_START = re.compile(r"^\s*@")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_PAGE_DASH = re.compile(r"-{2,}")
# text outside entries that is a lost entry, not a comment: "article{key," (no "@") or "title = {"
_LOST_ENTRY = re.compile(r"^\s*[A-Za-z]+\s*[{(]\s*[^\s,={}]+\s*,|\b[A-Za-z]+\s*=\s*[{\"]", re.MULTILINE)
_URL_MACRO = re.compile(r"^\\url\{(.*)\}$", re.DOTALL)
_LATEX_MARK = re.compile(r"[\\{}~]")  # a value without these is plain text

# -- LaTeX to Unicode ------------------------------------------------------------------

# control words that stand for one character; this package's writer uses the first five
_SYMBOL_WORDS = {
    "textbackslash": "\\",
    "textbraceleft": "{",
    "textbraceright": "}",
    "textasciitilde": "~",
    "textasciicircum": "^",
    "textunderscore": "_",
    "textbar": "|",
    "textless": "<",
    "textgreater": ">",
    "textendash": "–",
    "textemdash": "—",
    "textquoteleft": "‘",
    "textquoteright": "’",
    "textquotedblleft": "“",
    "textquotedblright": "”",
    "textdegree": "°",
    "textregistered": "®",
    "texttrademark": "™",
    "textcopyright": "©",
    "textperiodcentered": "·",
    "S": "§",
    "P": "¶",
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
# accents, as combining marks: control symbols (\'e) and control words (\v{c})
_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
# formatting that wraps text: the command goes, its argument stays
_FORMAT_WORDS = frozenset(
    {"textbf", "textit", "emph", "textsc", "textrm", "textsf", "texttt", "textup", "textmd", "textnormal"}
    | {"textsuperscript", "textsubscript", "mbox", "url", "mathrm", "mathit", "mathbf", "protect", "relax"}
)
_ESCAPED = {"&": "&", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ", "\\": " "}
_SILENT = {"-": "", "/": "", ",": " ", ";": " ", "!": ""}  # \- hyphenation, \/ italic correction, thin spaces
_LETTER = r"(?:\\[ij](?![A-Za-z])|[A-Za-z])"
_TOKEN = re.compile(
    rf"\\(?P<sym>['`^\"~=.])\s*(?:\{{\s*(?P<sarg>{_LETTER})\s*\}}|(?P<sbare>{_LETTER}))"  # \'e  \'{e}  \"{\i}
    rf"|\\(?P<word>[A-Za-z]+)(?P<after>\{{\}}|\s*)"  # \textbackslash{}  \ss  \v{c} (argument read below)
    r"|\\(?P<esc>[&%$#_{} \\\-/,;!])"  # \&  \%  \_  \{  \\
    r"|(?P<brace>[{}])"
    r"|(?P<tie>~)"
)
_WORD_ARG = re.compile(rf"\s*(?:\{{\s*(?P<arg>{_LETTER})\s*\}}|(?P<bare>{_LETTER}))")


def _accented(letter: str, accent: str) -> str:
    base = {"\\i": "i", "\\j": "j"}.get(letter, letter)
    return unicodedata.normalize("NFC", base + _ACCENTS[accent])


class _Decoder:
    """One pass over a value: each LaTeX token replaced by its text, all else kept as written."""

    def __init__(self, value: str, verbatim: bool) -> None:
        self.value = value
        self.verbatim = verbatim
        self.out: list[str] = []

    def run(self) -> str:
        pos = 0
        while (match := _TOKEN.search(self.value, pos)) is not None:
            self.out.append(self.value[pos : match.start()])
            pos = self._token(match)
        self.out.append(self.value[pos:])
        return "".join(self.out)

    def _token(self, m: re.Match[str]) -> int:
        """Write the token's text; return where reading goes on."""
        if m["sym"]:
            self.out.append(_accented(m["sarg"] or m["sbare"], m["sym"]))
        elif m["word"]:
            return self._word(m)
        elif m["esc"] is not None:
            self.out.append(_ESCAPED.get(m["esc"]) or _SILENT[m["esc"]])
        elif m["brace"]:
            self.out.append(m["brace"] if self.verbatim else "")  # grouping braces, as {RNA} or {\"o}
        else:
            self.out.append("~" if self.verbatim else " ")  # a tie is a space
        return m.end()

    def _word(self, m: re.Match[str]) -> int:
        word = m["word"]
        if word in _ACCENTS:
            arg = _WORD_ARG.match(self.value, m.end("word"))
            if arg is not None:
                self.out.append(_accented(arg["arg"] or arg["bare"], word))
                return arg.end()
        if word in _SYMBOL_WORDS:
            self.out.append(_SYMBOL_WORDS[word])
            return m.end()
        if word in _FORMAT_WORDS:
            return m.end()
        self.out.append(m[0])  # a command we do not know (\alpha): kept as written, not lost
        return m.end()


def latex_to_text(value: str, *, verbatim: bool = False) -> str:
    """A BibTeX value as plain Unicode text, whitespace collapsed as BibTeX does.

    Exact inverse of ``screening.export.bibtex_escape``; accents (``{\\"o}``, ``\\'e``,
    ``\\v{c}``) become letters; grouping braces go. ``verbatim`` (DOI, URL) keeps
    ``~`` and braces as text, as biblatex reads those fields.
    """
    if not _LATEX_MARK.search(value):  # most values: nothing to undo
        return " ".join(value.split())
    if verbatim:
        wrapped = _URL_MACRO.match(value.strip())
        value = wrapped.group(1) if wrapped else value
    return " ".join(_Decoder(value, verbatim).run().split())


# -- splitting values ----------------------------------------------------------------


def _depth_zero(value: str) -> Iterator[int]:
    """Positions outside every brace, counting braces as BibTeX does (escaped ones too); ``\\x`` skipped."""
    depth, pos = 0, 0
    while pos < len(value):
        char = value[pos]
        if char == "\\" and pos + 1 < len(value):
            depth += (value[pos + 1] == "{") - (value[pos + 1] == "}")
            pos += 2
            continue
        depth += (char == "{") - (char == "}")
        if depth == 0 and char != "}":
            yield pos
        pos += 1


def _top_level_split(value: str, separator: re.Pattern[str]) -> list[str]:
    """``value`` cut at each ``separator`` outside braces (a braced part is one item, as BibTeX reads it)."""
    if "{" not in value and "\\" not in value:  # the common case, in C: every position is outside braces
        return [p.strip() for p in separator.split(value) if p.strip()]
    parts, start = [], 0
    for pos in _depth_zero(value):
        if pos < start:
            continue
        match = separator.match(value, pos)
        if match is not None and match.end() > pos:
            parts.append(value[start:pos])
            start = match.end()
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_COMMA = re.compile(",")
_LIST_SEPARATOR = re.compile(r"\s*[,;]\s*")
_SPACES = re.compile(r"\s+")


def _is_braced(raw: str) -> bool:
    """The whole name is one braced group: a corporate name ("{Movement Disorder Group}")."""
    return raw.startswith("{") and raw.endswith("}") and next(_depth_zero(raw), None) is None


def _author(raw: str) -> str:
    """One BibTeX name as "Last, First"; "First von Last" turned round; a braced name kept whole."""
    words = _top_level_split(raw, _SPACES)
    if _is_braced(raw) or len(_top_level_split(raw, _COMMA)) > 1 or len(words) < 2:
        return latex_to_text(raw)
    von = next((i for i in range(1, len(words) - 1) if words[i][:1].islower()), len(words) - 1)
    return latex_to_text(f"{' '.join(words[von:])}, {' '.join(words[:von])}")


def authors(raw: str) -> list[str]:
    """The ``author`` field, split at each top-level " and "; "and others" (et al.) dropped."""
    names = [_author(n) for n in _top_level_split(raw, _AND) if n.lower() != "others"]
    return [n for n in names if n]


def list_items(raw: str) -> list[str]:
    """A list field (keywords, MeSH), split at top-level commas and semicolons; braced items kept whole."""
    return [item for item in (latex_to_text(p) for p in _top_level_split(raw, _LIST_SEPARATOR)) if item]


# -- reading the file in pieces --------------------------------------------------------


def _pieces(path: Path) -> Iterator[tuple[int, str]]:
    """(first line number, text) of runs of about PIECE_ENTRIES whole entries."""
    lines: list[str] = []
    first = depth = entries = 0
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if _ENTRY_START.match(line) and depth == 0:
                if entries >= PIECE_ENTRIES:
                    yield first, "".join(lines)
                    lines, entries = [], 0
                entries += 1
            if not lines:
                first = number
            lines.append(line)
            depth = max(depth + line.count("{") - line.count("}"), 0)
    if lines:
        yield first, "".join(lines)


def _parse(text: str, strings: list[String]) -> list[Block]:
    """The blocks of one piece, in order, ``@string`` macros of earlier pieces in force."""
    seeds = [copy.deepcopy(s) for s in strings]
    seen = {id(s) for s in seeds}
    library = bibtexparser.parse_string(text, library=Library(seeds))
    return [b for b in library.blocks if id(b) not in seen]


class _Reader:
    """Blocks to citations, checking what bibtexparser lets through: nothing is dropped unsaid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, int] = {}  # entry key -> line, across pieces
        self.strings: list[String] = []
        self.count = 0

    def fail(self, line: int, field: str | None, problem: str) -> ImportFormatError:
        return ImportFormatError(str(self.path), f"line {line}", field, problem)

    def citations(self) -> Iterator[Citation]:
        for first, text in _pieces(self.path):
            for block in _parse(text, self.strings):
                line = first + (block.start_line or 0)
                if isinstance(block, ParsingFailedBlock):
                    raise self._failure(block, line, first, text)
                if isinstance(block, String):
                    self.strings.append(block)
                elif isinstance(block, ImplicitComment):
                    self._check_comment(block, line)
                elif isinstance(block, Entry):
                    yield self._entry(block, line)

    def _failure(self, block: ParsingFailedBlock, line: int, first: int, text: str) -> ImportFormatError:
        if isinstance(block, DuplicateBlockKeyBlock):
            if isinstance(block.ignore_error_block, String):
                return self.fail(line, None, f"@string {block.key!r} defined twice")
            earlier = self.keys.get(block.key)  # the first was read already, perhaps in an earlier piece
            where = f" (first at line {earlier})" if earlier is not None else ""
            return self.fail(line, None, f"entry key {block.key!r} used twice{where}")
        if isinstance(block, DuplicateFieldKeyBlock):
            fields = ", ".join(sorted(block.duplicate_keys))
            return self.fail(line, fields, "field given twice in one entry")
        reason = getattr(block.error, "abort_reason", None) or str(block.error) or type(block.error).__name__
        end = getattr(block.error, "end_index", None)  # an index into "\n" + text, where the parser gave up
        stopped = first + ("\n" + text)[: end + 1].count("\n") - 1 if end is not None else None
        at = f" (parsing stopped at line {stopped})" if stopped is not None and stopped != line else ""
        return self.fail(line, None, f"malformed entry{at}: {' '.join(reason.split())}")

    def _check_comment(self, block: ImplicitComment, line: int) -> None:
        """Text between entries is a comment to BibTeX, but an entry that lost its "@" is a lost study."""
        match = _LOST_ENTRY.search(block.comment)
        if match is not None:
            at = line + block.comment.count("\n", 0, match.start())
            raise self.fail(at, None, f"text outside any entry looks like part of one: {match.group(0).strip()!r}")

    def _fields(self, entry: Entry, line: int) -> dict[str, tuple[str, int]]:
        """Field name (lower case) -> (value, line); a name given twice in any case is an error."""
        fields: dict[str, tuple[str, int]] = {}
        for field in entry.fields:
            name = field.key.strip().lower()
            at = line + (field.start_line - (entry.start_line or 0)) if field.start_line is not None else line
            if not name:
                raise self.fail(at, None, f"a field without a name in entry {entry.key!r}")
            if name in fields:
                raise self.fail(at, name, f"field given twice in entry {entry.key!r}")
            fields[name] = (str(field.value), at)
        return fields

    def _entry(self, entry: Entry, line: int) -> Citation:
        self.count += 1
        key = entry.key.strip()
        if key in self.keys:
            raise self.fail(line, None, f"entry key {key!r} used twice (first at line {self.keys[key]})")
        self.keys[key] = line
        return citation_from_bibtex(entry, self._fields(entry, line), str(self.path), self.count, line)


def _value(fields: dict[str, tuple[str, int]], *names: str) -> str | None:
    """The first of ``names`` present and not empty, decoded."""
    for name in names:
        if name in fields:
            text = latex_to_text(fields[name][0], verbatim=name in VERBATIM_FIELDS)
            if text:
                return text
    return None


def _year(fields: dict[str, tuple[str, int]], path: str) -> int | None:
    """``year``, else the year of biblatex's ``date`` ("2019-05-02"); a year with no year in it is an error."""
    for name in ("year", "date"):
        value = _value(fields, name)
        if value:
            match = _YEAR.search(value)
            if match is None:
                raise ImportFormatError(path, f"line {fields[name][1]}", name, f"no year in {value!r}")
            return int(match.group(1))
    return None


def _pmid(fields: dict[str, tuple[str, int]]) -> str | None:
    """``pmid``, else biblatex's ``eprint`` when ``eprinttype`` says PubMed."""
    pmid = _value(fields, "pmid")
    if pmid is None and (_value(fields, "eprinttype") or "").lower() in ("pubmed", "pmid"):
        pmid = _value(fields, "eprint")
    return pmid


def _doi(fields: dict[str, tuple[str, int]]) -> str | None:
    doi = _value(fields, "doi")
    if doi is None:
        match = DOI_PATTERN.search(_value(fields, "url") or "")
        doi = match.group(1) if match else None
    return doi


def _raw(fields: dict[str, tuple[str, int]], name: str) -> str:
    return fields[name][0] if name in fields else ""


def citation_from_bibtex(
    entry: Entry, fields: dict[str, tuple[str, int]], path: str, number: int, line: int
) -> Citation:
    """One parsed entry as a Citation (``fields``: lower-case name -> (raw value, line))."""
    pages = _value(fields, "pages")
    extra: dict[str, Any] = {"entry_type": entry.entry_type.lower()}
    note = _value(fields, "note")
    if note:
        extra["notes"] = [note]
    return Citation(
        title=_value(fields, "title") or "",
        abstract=_value(fields, "abstract") or "",
        authors=authors(_raw(fields, "author")),
        journal=_value(fields, "journal", "journaltitle", "booktitle") or "",
        year=_year(fields, path),
        volume=_value(fields, "volume"),
        issue=_value(fields, "number", "issue"),
        pages=_PAGE_DASH.sub("-", pages) if pages else None,
        pmid=_pmid(fields),
        doi=_doi(fields),
        mesh_terms=list_items(_raw(fields, MESH_FIELD)),
        keywords=list_items(_raw(fields, "keywords")),
        publication_types=list_items(_raw(fields, TYPE_FIELD)),
        language=_value(fields, "language", "langid"),
        url=_value(fields, "url"),
        source_record_id=entry.key.strip() or None,
        extra=extra,
        location=f"entry {number}, line {line}",
    )


def read_bibtex(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a BibTeX file, one entry at a time; ``@string`` macros resolved."""
    return _Reader(Path(path)).citations()
