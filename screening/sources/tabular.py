"""CSV, TSV and XLSX: Covidence and ASReview exports, labelled datasets, spreadsheets.

Columns are found by their header, normalised (case, spaces and punctuation
dropped), so "Published Year", "publication_year" and "PY" all give the year.
Label columns become :attr:`Citation.label`; Covidence "Exclusion reason: ..."
notes become :attr:`Citation.label_reason`. Locations are physical line numbers
(a quoted field may span several lines) or spreadsheet row numbers.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError
from zipfile import BadZipFile, ZipFile

from ..errors import ImportFormatError
from . import Citation
from .files import open_text

# field -> normalised header names, in order of preference
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "articletitle", "primarytitle", "documenttitle", "ti"),
    "abstract": ("abstract", "abstractnote", "ab"),
    "authors": ("authors", "author", "authorfullnames", "au"),
    "journal": ("journal", "sourcetitle", "secondarytitle", "journaltitle", "publicationtitle", "jt", "so"),
    "year": ("year", "publishedyear", "publicationyear", "pubyear", "py"),
    "volume": ("volume", "vl", "vi"),
    "issue": ("issue", "number", "ip"),
    "pages": ("pages", "pg"),
    "doi": ("doi",),
    "pmid": ("pmid", "pubmedid", "accessionnumber"),
    "mesh_terms": ("meshterms", "mesh", "mh"),
    "keywords": ("keywords", "authorkeywords", "kw"),
    "publication_types": ("publicationtypes", "publicationtype", "documenttype", "pt"),
    "language": ("language", "languageoforiginaldocument", "la"),
    "url": ("url", "link"),
    "record_id": ("recordid", "covidence", "sourcerecordid", "id"),
    "label": ("labelincluded", "included", "label", "asreviewlabel", "finalincluded", "sourcelabelincluded"),
    "notes": ("notes",),
    "tags": ("tags",),
    "source": ("source",),
}
LIST_FIELDS = ("authors", "mesh_terms", "keywords", "publication_types")
LABELS = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": None, "": None}  # ASReview writes -1 for unlabelled
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_PMID = re.compile(r"^\d{1,8}$")
_EXCLUSION = re.compile(r"Exclusion reason:\s*(.*?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_NORMALISE = re.compile(r"[^a-z0-9]")
MAX_FIELD = 2**31 - 1  # the csv module's default of 128 KiB is too small for some abstracts


def normalise_header(name: str) -> str:
    """'Published Year' -> 'publishedyear', 'Covidence #' -> 'covidence'."""
    return _NORMALISE.sub("", name.lower())


# OWASP's CSV injection rule: a cell starting with one of these runs as a formula in a spreadsheet
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _starts_formula(value: str) -> bool:
    """Any number of ``'`` and then a formula character."""
    return value.lstrip("'").startswith(FORMULA_START)


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet shows as text: prefixed with ``'`` when it would start a formula.

    A cell of quotes then a formula character gets one more quote too, so that
    :func:`spreadsheet_text` gives back exactly what was written, whatever it was.
    """
    return "'" + value if _starts_formula(value) else value


def spreadsheet_text(value: str) -> str:
    """The cell as it was before :func:`spreadsheet_safe`."""
    return value[1:] if value.startswith("'") and _starts_formula(value[1:]) else value


class UncachedFormula(str):
    """A spreadsheet cell holding a formula whose value was never saved (a script wrote it, no spreadsheet
    calculated it). It reads as empty, as the file holds no value for it, so that a formula filled down
    an unused column past the data adds no records; ``formula`` is kept for the error a used column gives."""

    formula: str

    def __new__(cls, formula: str) -> UncachedFormula:
        cell = super().__new__(cls, "")
        cell.formula = formula
        return cell


class Columns:
    """Where each field sits in a header row."""

    def __init__(self, header: list[str], path: str, where: str) -> None:
        self.header = header
        positions: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            positions.setdefault(normalise_header(name or ""), []).append(index)
        self.index = {}
        for field, names in COLUMNS.items():
            found = next((n for n in names if n in positions), None)
            if found is None:
                continue
            if len(positions[found]) > 1:  # which of the two holds the field? refuse to guess
                shown = header[positions[found][0]]
                raise ImportFormatError(path, where, shown, _duplicate(header, positions[found]))
            self.index[field] = positions[found][0]
        if "title" not in self.index:
            raise ImportFormatError(path, where, "title", f"no title column in the header {[h for h in header if h]}")
        # the last named column: a row may stop after it (trailing empty header cells), not before
        self.width = max((i + 1 for i, name in enumerate(header) if (name or "").strip()), default=0)

    def check_width(self, row: list[str], path: str, where: str) -> None:
        """A CSV row with fewer cells than the header was cut short; with more, its columns have shifted."""
        if len(row) < self.width:
            missing = [name for name in self.header[len(row) : self.width] if (name or "").strip()]
            listed = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ImportFormatError(
                path,
                where,
                missing[0],
                f"{len(row)} fields where the header has {self.width} (missing {listed}); the row looks cut short",
            )
        extra = [cell for cell in row[len(self.header) :] if cell.strip()]
        if extra:
            raise ImportFormatError(
                path,
                where,
                None,
                f"{len(row)} fields where the header has {len(self.header)}, the extra ones not empty "
                f"({extra[0][:40]!r}); a separator or quote is probably missing",
            )

    def check_formulas(self, row: list[str], path: str, where: str) -> None:
        """A used cell that is a formula with no saved value is refused: its value cannot be known here."""
        for index in self.index.values():
            if index < len(row) and isinstance(row[index], UncachedFormula):
                raise ImportFormatError(
                    path,
                    where,
                    self.header[index],
                    f"a formula ({row[index].formula[:60]}) with no saved value; {_UNCACHED_ADVICE}",  # type: ignore[attr-defined]
                )

    def get(self, row: list[str], field: str) -> str:
        index = self.index.get(field)
        if index is None or index >= len(row):
            return ""
        return spreadsheet_text(row[index].strip())

    def name(self, field: str) -> str:
        return self.header[self.index[field]]


def _duplicate(header: list[str], found: list[int]) -> str:
    """Says which columns share the name (as the first of them spells it), as in "two columns are
    'Abstract' (columns 3 and 7)"."""
    count = {2: "two", 3: "three"}.get(len(found), str(len(found)))
    columns = ", ".join(str(i + 1) for i in found[:-1]) + f" and {found[-1] + 1}"
    return f"{count} columns are {header[found[0]]!r} (columns {columns}); rename or remove one"


_UNCACHED_ADVICE = "open and save the workbook in a spreadsheet, or paste the values"


def _check_header_formulas(row: list[str], path: str, where: str) -> None:
    """A header cell that is a formula with no saved value hides a column's name, which may be one
    the reader uses (it would be read as a blank row, and the next row taken for the header)."""
    index = next((i for i, cell in enumerate(row) if isinstance(cell, UncachedFormula)), None)
    if index is not None:
        from openpyxl.utils import get_column_letter

        formula = row[index].formula[:60]  # type: ignore[attr-defined]
        problem = f"a formula ({formula}) in the header, column {get_column_letter(index + 1)}, with no saved value"
        raise ImportFormatError(path, where, None, f"{problem}; {_UNCACHED_ADVICE}")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _label(value: str, columns: Columns, path: str, where: str) -> int | None:
    key = value.strip().lower()
    if key in ("true", "false"):
        key = "1" if key == "true" else "0"
    if key not in LABELS:
        raise ImportFormatError(path, where, columns.name("label"), f"label {value!r} is not 1, 0 or blank")
    return LABELS[key]


def _year(value: str, columns: Columns, path: str, where: str) -> int | None:
    if not value:
        return None
    match = _YEAR.search(value)
    if match is None:
        raise ImportFormatError(path, where, columns.name("year"), f"no year in {value!r}")
    return int(match.group(1))


def _citation(row: list[str], columns: Columns, path: str, where: str) -> Citation:
    get = columns.get
    pmid = get(row, "pmid")
    notes, tags = get(row, "notes"), get(row, "tags")
    extra = {k: v for k, v in (("notes", notes), ("tags", tags), ("source", get(row, "source"))) if v}
    reason = _EXCLUSION.search(notes) if notes else None
    lists = {field: _split(get(row, field)) for field in LIST_FIELDS}
    return Citation(
        title=get(row, "title"),
        abstract=get(row, "abstract"),
        journal=get(row, "journal"),
        year=_year(get(row, "year"), columns, path, where),
        volume=get(row, "volume") or None,
        issue=get(row, "issue") or None,
        pages=get(row, "pages") or None,
        pmid=pmid if _PMID.match(pmid) else None,
        doi=get(row, "doi") or None,
        language=get(row, "language") or None,
        url=get(row, "url") or None,
        source_record_id=get(row, "record_id").lstrip("#") or None,
        label=_label(get(row, "label"), columns, path, where) if "label" in columns.index else None,
        label_reason=(reason.group(1) or None) if reason else None,
        extra=extra,
        location=where,
        **lists,
    )


def _from_rows(rows: Iterable[tuple[int, list[str]]], path: str, unit: str) -> Iterator[Citation]:
    """Citations from (line or row number, cells) pairs, the first non-empty one the header.

    A CSV row must be as wide as the header (spreadsheets pad their rows; a text row that
    is shorter was cut, and would lose its label and PMID).
    """
    columns: Columns | None = None
    for number, row in rows:
        where = f"{unit} {number}"
        # before the blank test, as an uncached formula reads as an empty cell
        if columns is None:
            _check_header_formulas(row, path, where)
        else:
            columns.check_formulas(row, path, where)
        if not any(cell.strip() for cell in row):
            continue
        if columns is None:
            columns = Columns(row, path, where)
            continue
        if unit == "line":
            columns.check_width(row, path, where)
        yield _citation(row, columns, path, where)


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the physical line each starts on (quoted fields may hold line breaks)."""
    csv.field_size_limit(MAX_FIELD)
    with open_text(path, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        start = 1
        try:
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except csv.Error as e:
            raise ImportFormatError(str(path), f"line {start}", None, f"malformed CSV: {e}") from e


def read_csv(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a comma-separated file (UTF-8 with or without BOM, cp1252 or Latin-1)."""
    return _from_rows(_csv_rows(Path(path), ","), str(path), "line")


def read_tsv(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from a tab-separated file."""
    return _from_rows(_csv_rows(Path(path), "\t"), str(path), "line")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _open_workbook(path: Path, *, values: bool) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return load_workbook(path, read_only=True, data_only=values)
    except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError) as e:
        raise ImportFormatError(str(path), None, None, f"not a readable .xlsx workbook: {e}") from e


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Rows of saved values, read beside a pass over the same sheet's XML (both streaming) that finds
    the formula cells whose value was never saved (:class:`UncachedFormula`), which openpyxl reads as
    empty; a formula that saved an empty text is not one of them."""
    book = _open_workbook(path, values=True)
    try:
        sheet = book.worksheets[0]
        with ZipFile(path) as archive, archive.open(sheet._worksheet_path) as source:
            uncached = _uncached_formulas(source)
            pending = _next_uncached(uncached, path)
            for number, values in enumerate(_values(sheet, path), start=1):
                cells = [_cell(v) for v in values]
                while pending is not None and pending[0] < number:
                    pending = _next_uncached(uncached, path)
                if pending is not None and pending[0] == number:
                    cells = _mark_uncached(cells, pending[1])
                yield number, cells
    finally:
        book.close()


def _values(sheet: Any, path: Path) -> Iterator[tuple[Any, ...]]:
    """openpyxl's rows, its errors on a malformed sheet (a number cell that is text) made ours."""
    try:
        yield from sheet.iter_rows(values_only=True)
    except (ParseError, ValueError, KeyError) as e:
        raise ImportFormatError(str(path), None, None, f"not a readable .xlsx workbook: {e}") from e


def _saved(cell: Any, value_tag: str) -> bool:
    """Whether a formula cell holds its result. Excel and LibreOffice save an empty text result as
    ``t="str"`` and an empty ``<v>``; openpyxl saves a formula with an empty ``<v>`` and no type."""
    value = cell.find(value_tag)
    return value is not None and (bool(value.text) or cell.get("t") == "str")


def _uncached_formulas(source: IO[bytes]) -> Iterator[tuple[int, dict[int, str]]]:
    """(row number, {0-based column: formula}) for each row with formulas whose value was never saved."""
    from openpyxl.formula.translate import Translator
    from openpyxl.utils.cell import coordinate_to_tuple
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # defusedxml's when installed, as openpyxl's own

    row_tag, cell_tag = f"{{{SHEET_MAIN_NS}}}row", f"{{{SHEET_MAIN_NS}}}c"
    formula_tag, value_tag = f"{{{SHEET_MAIN_NS}}}f", f"{{{SHEET_MAIN_NS}}}v"
    shared: dict[str, Translator] = {}  # a shared formula's text is in its first cell only
    number = 0
    for _, element in iterparse(source):
        if element.tag != row_tag:
            continue
        number = int(float(element.get("r", number + 1)))
        found: dict[int, str] = {}
        column = 0
        for cell in element.iter(cell_tag):
            coordinate = cell.get("r")
            column = coordinate_to_tuple(coordinate)[1] if coordinate else column + 1
            formula = cell.find(formula_tag)
            if formula is None:
                continue
            text = "=" + (formula.text or "")
            if formula.get("t") == "shared" and coordinate:
                key = formula.get("si", "")
                if formula.text:
                    shared[key] = Translator(text, coordinate)
                elif key in shared:
                    text = shared[key].translate_formula(coordinate)
            if not _saved(cell, value_tag):
                found[column - 1] = text
        element.clear()
        if found:
            yield number, found


def _next_uncached(uncached: Iterator[tuple[int, dict[int, str]]], path: Path) -> tuple[int, dict[int, str]] | None:
    try:
        return next(uncached, None)
    except (ParseError, ValueError, KeyError) as e:  # defusedxml's refusals are ValueErrors
        raise ImportFormatError(str(path), None, None, f"not a readable .xlsx workbook: {e}") from e


def _mark_uncached(cells: list[str], formulas: dict[int, str]) -> list[str]:
    for column, formula in formulas.items():
        cells.extend([""] * (column + 1 - len(cells)))
        cells[column] = UncachedFormula(formula)
    return cells


def read_xlsx(path: str | os.PathLike[str]) -> Iterator[Citation]:
    """Citations from the first sheet of an Excel workbook."""
    return _from_rows(_xlsx_rows(Path(path)), str(path), "row")
