"""Hostile CSV, TSV and XLSX (issue 13): duplicate column names, rows cut short or shifted, and
spreadsheet formulas with no saved value. Each is imported correctly or refused naming the file, the
line or row, and the field; none loses a study or a field silently. Record text is real (Cohen 2006,
estrogens)."""

from __future__ import annotations

import csv
import gzip
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook

from screening.errors import ImportFormatError
from screening.sources import Citation, collecting_notices
from screening.sources.files import read_file

ESTROGENS = Path(__file__).parent / "fixtures" / "prisma" / "cohen2006_Estrogens.csv.gz"
HEADER = ["record_id", "title", "abstract", "label_included", "doi", "pmid"]


def _records(count: int) -> list[list[str]]:
    """The first ``count`` real rows (record_id, title, abstract, label_included, doi, pmid)."""
    with gzip.open(ESTROGENS, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == HEADER
        return [row for _, row in zip(range(count), reader, strict=False)]


def _write(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def _read(path: Path) -> tuple[list[Citation], list[str]]:
    with collecting_notices() as notes:
        citations = list(read_file(path))
    return citations, [str(n) for n in notes]


def _refused(path: Path) -> str:
    with pytest.raises(ImportFormatError) as error:
        list(read_file(path))
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message[len(f"{path}: ") :]


# 1. duplicate column names


def test_two_columns_with_the_name_of_a_field_are_refused_naming_both(tmp_path: Path) -> None:
    rows = [[*HEADER, "Abstract"]] + [[*row, "translated"] for row in _records(3)]
    rows[0][2] = "Abstract"
    said = _refused(_write(tmp_path / "two.csv", rows))
    assert said == "line 1: field 'Abstract': two columns are 'Abstract' (columns 3 and 7); rename or remove one"


def test_names_spelt_apart_but_read_alike_are_duplicates_too(tmp_path: Path) -> None:
    rows = [["Title", "Published Year", "published_year"]] + [[row[1], "2001", "2002"] for row in _records(2)]
    said = _refused(_write(tmp_path / "years.csv", rows))
    assert said.startswith("line 1: field 'Published Year': two columns are 'Published Year' (columns 2 and 3)")


def test_the_header_line_is_the_first_non_blank_one(tmp_path: Path) -> None:
    rows = [[], ["", ""], ["title", "abstract", "title"], ["x", "y", "z"]]
    assert _refused(_write(tmp_path / "late.csv", rows)).startswith("line 3: field 'title': two columns are 'title'")


def test_duplicates_in_a_workbook_name_the_row(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["Title", "Abstract", "DOI", "doi"])
    book.active.append(["Oral micronized progesterone.", "", "10.1/a", "10.1/b"])
    book.save(tmp_path / "dois.xlsx")
    assert _refused(tmp_path / "dois.xlsx").startswith("row 1: field 'DOI': two columns are 'DOI' (columns 3 and 4)")


def test_three_columns_with_one_name_are_all_named(tmp_path: Path) -> None:
    rows = [["title", "Abstract", "abstract", "ABSTRACT"], ["Oral micronized progesterone.", "a", "b", "c"]]
    said = _refused(_write(tmp_path / "three.csv", rows))
    assert said.startswith("line 1: field 'Abstract': three columns are 'Abstract' (columns 2, 3 and 4)")


def test_duplicate_names_of_columns_not_read_are_fine(tmp_path: Path) -> None:
    records = _records(3)
    rows = [[*HEADER, "Reviewer", "Reviewer", "", ""]] + [[*row, "A", "B", "", ""] for row in records]
    citations, notes = _read(_write(tmp_path / "reviewers.csv", rows))
    assert [c.title for c in citations] == [row[1] for row in records] and notes == []
    assert [c.label for c in citations] == [int(row[3]) for row in records]


def test_preferred_names_still_choose_and_a_duplicate_unpreferred_one_is_not_read(tmp_path: Path) -> None:
    records = _records(2)
    rows = [["TI", "Article Title", "Title", "TI"]] + [["short", "long", row[1], "short"] for row in records]
    citations, notes = _read(_write(tmp_path / "titles.csv", rows))
    assert [c.title for c in citations] == [row[1] for row in records] and notes == []


# 2. rows cut short or shifted


def test_a_row_cut_short_is_refused_naming_its_line_and_the_missing_fields(tmp_path: Path) -> None:
    rows = [HEADER, *_records(4)]
    rows[3] = rows[3][:3]  # record_id, title, abstract: the label, DOI and PMID are gone
    said = _refused(_write(tmp_path / "cut.csv", rows))
    assert said == (
        "line 4: field 'label_included': 3 fields where the header has 6 "
        "(missing 'label_included', 'doi', 'pmid'); the row looks cut short"
    )


def test_the_line_is_where_the_row_starts_after_a_quoted_line_break(tmp_path: Path) -> None:
    records = _records(3)
    records[0][2] = records[0][2].replace(" ", "\n", 2)  # an abstract over three physical lines, quoted
    rows = [HEADER, *records]
    rows[3] = rows[3][:5]
    assert _refused(_write(tmp_path / "multiline.csv", rows)).startswith("line 6: field 'pmid': 5 fields")


def test_an_unquoted_line_break_splitting_a_record_is_refused_at_its_first_line(tmp_path: Path) -> None:
    record = _records(1)[0]
    head, tail = record[2][:200], record[2][200:]
    text = ",".join(HEADER) + "\n" + f"{record[0]},{record[1]},{head.replace(',', ' ')}\n{tail.replace(',', ' ')},"
    text += ",".join(record[3:]) + "\n"
    (tmp_path / "split.csv").write_text(text, encoding="utf-8")
    said = _refused(tmp_path / "split.csv")
    assert said.startswith("line 2: field 'label_included': 3 fields where the header has 6")


def test_a_row_with_text_past_the_header_is_refused(tmp_path: Path) -> None:
    rows = [HEADER, *_records(3)]
    title = rows[2][1]
    rows[2] = [rows[2][0], *title.split(" ", 1), *rows[2][2:]]  # an unquoted comma in the title
    said = _refused(_write(tmp_path / "shifted.csv", rows))
    assert said.startswith("line 3: 7 fields where the header has 6, the extra ones not empty")


def test_empty_cells_past_the_header_are_trailing_commas_and_fine(tmp_path: Path) -> None:
    records = _records(3)
    rows = [HEADER, *([*row, "", ""] for row in records)]
    citations, notes = _read(_write(tmp_path / "commas.csv", rows))
    assert [(c.title, c.pmid) for c in citations] == [(row[1], row[5]) for row in records] and notes == []


def test_a_row_may_stop_before_unnamed_header_cells(tmp_path: Path) -> None:
    records = _records(2)
    citations, notes = _read(_write(tmp_path / "unnamed.csv", [[*HEADER, "", ""], *records]))
    assert [c.pmid for c in citations] == [row[5] for row in records] and notes == []


def test_tsv_rows_are_checked_too(tmp_path: Path) -> None:
    rows = [HEADER, *_records(3)]
    rows[2] = rows[2][:4]
    assert _refused(_write(tmp_path / "cut.tsv", rows, "\t")).startswith("line 3: field 'doi': 4 fields")


def test_blank_lines_are_still_skipped(tmp_path: Path) -> None:
    records = _records(2)
    citations, _ = _read(_write(tmp_path / "blank.csv", [HEADER, records[0], [], [""], records[1]]))
    assert [c.title for c in citations] == [row[1] for row in records]


# 3. workbooks: short rows, and formulas with and without a saved value


def _patch_sheet(path: Path, change: Callable[[str], str]) -> Path:
    """The workbook with its first sheet's XML changed (for what openpyxl cannot write: saved values)."""
    patched = path.with_name("patched_" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = change(data.decode("utf-8")).encode("utf-8")
            target.writestr(item, data)
    return patched


def _book(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def test_workbook_rows_that_stop_early_are_read_whole(tmp_path: Path) -> None:
    """Without a <dimension>, openpyxl gives each row only up to its last cell: not a cut row."""
    records = _records(3)
    rows: list[list[object]] = [["title", "abstract", "doi", "included"]]
    rows += [[records[0][1], records[0][2], None, 1], [records[1][1]], [records[2][1], None, None, 0]]
    path = _patch_sheet(_book(tmp_path / "ragged.xlsx", rows), lambda xml: re.sub(r"<dimension[^>]*/>", "", xml))
    citations, notes = _read(path)
    assert [(c.title, c.label) for c in citations] == [(records[0][1], 1), (records[1][1], None), (records[2][1], 0)]
    assert citations[0].abstract == records[0][2] and notes == []


def test_a_formula_with_no_saved_value_in_a_column_read_is_refused(tmp_path: Path) -> None:
    record = _records(1)[0]
    first, rest = record[1].split(" ", 1)
    rows: list[list[object]] = [["Covidence #", "Title", "Abstract", "Start", "Rest"]]
    rows += [[1, "Oral micronized progesterone.", "", "", ""], [2, '=D3&" "&E3', record[2], first, rest]]
    said = _refused(_book(tmp_path / "computed.xlsx", rows))
    assert said == (
        """row 3: field 'Title': a formula (=D3&" "&E3) with no saved value; """
        "open and save the workbook in a spreadsheet, or paste the values"
    )


def test_a_row_of_nothing_but_unsaved_formulas_is_not_skipped_as_blank(tmp_path: Path) -> None:
    rows: list[list[object]] = [["title", "abstract", "a", "b"], ["Oral micronized progesterone.", "", "", ""]]
    rows.append(["=C3&D3", "=UPPER(C3)"])
    assert _refused(_book(tmp_path / "only.xlsx", rows)).startswith("row 3: field 'title': a formula (=C3&D3)")


def test_a_shared_formula_is_named_as_it_reads_in_its_own_cell(tmp_path: Path) -> None:
    records = _records(2)
    rows: list[list[object]] = [["a", "b", "title"]] + [
        [r[1][:10], r[1][10:], f"=A{i}&B{i}"] for i, r in enumerate(records, 2)
    ]
    path = _book(tmp_path / "shared.xlsx", rows)

    def shared(xml: str) -> str:  # as Excel saves a formula filled down: its text in the first cell only
        master = f'<c r="C2" t="str"><f t="shared" ref="C2:C3" si="0">A2&amp;B2</f><v>{records[0][1]}</v>'
        xml = xml.replace('<c r="C2"><f>A2&amp;B2</f><v></v>', master)
        return xml.replace("<f>A3&amp;B3</f>", '<f t="shared" si="0"/>')

    assert _refused(_patch_sheet(path, shared)).startswith("row 3: field 'title': a formula (=A3&B3) with no saved")


def test_formulas_in_columns_not_read_are_ignored_even_filled_down_past_the_data(tmp_path: Path) -> None:
    records = _records(3)
    rows: list[list[object]] = [["title", "abstract", "Words"]]
    rows += [[r[1], r[2], f'=LEN(A{i})-LEN(SUBSTITUTE(A{i}," ",""))+1'] for i, r in enumerate(records, 2)]
    rows += [[None, None, f"=LEN(A{i})"] for i in range(5, 30)]  # a helper column filled down the sheet
    citations, notes = _read(_book(tmp_path / "helper.xlsx", rows))
    assert [c.title for c in citations] == [row[1] for row in records] and notes == []


def test_a_formula_with_a_saved_value_reads_the_value(tmp_path: Path) -> None:
    records = _records(2)
    rows: list[list[object]] = [["title", "abstract", "year"]]
    rows += [["=B2", records[0][2], "=1999+1"], [records[1][1], records[1][2], 2001]]

    def saved(xml: str) -> str:  # the values a spreadsheet saves beside its formulas
        xml = xml.replace('<c r="A2"><f>B2</f><v></v>', f'<c r="A2" t="str"><f>B2</f><v>{records[0][1]}</v>')
        return xml.replace("<f>1999+1</f><v></v>", "<f>1999+1</f><v>2000</v>")

    citations, notes = _read(_patch_sheet(_book(tmp_path / "saved.xlsx", rows), saved))
    assert [(c.title, c.year) for c in citations] == [(records[0][1], 2000), (records[1][1], 2001)] and notes == []


def test_a_formula_that_saved_an_empty_text_is_an_empty_cell_not_a_refusal(tmp_path: Path) -> None:
    """Excel saves ``=IF(..., "", ...)`` as t="str" and an empty <v>: a value, the empty one."""
    records = _records(2)
    rows: list[list[object]] = [["title", "abstract", "notes"]]
    rows += [[r[1], r[2], f'=IF(LEN(A{i})>0,"","no title")'] for i, r in enumerate(records, 2)]
    path = _book(tmp_path / "empty.xlsx", rows)
    citations, notes = _read(_patch_sheet(path, lambda xml: re.sub(r'<c r="(C\d)"><f>', r'<c r="\1" t="str"><f>', xml)))
    assert [(c.title, c.extra) for c in citations] == [(row[1], {}) for row in records] and notes == []


def test_a_formula_with_no_saved_value_in_the_header_is_refused(tmp_path: Path) -> None:
    """Its name is unknown, and may be one the reader uses; read as blank, the next row would be the header."""
    rows: list[list[object]] = [["title", '="Abs"&"tract"'], ["Oral micronized progesterone.", "This review"]]
    assert _refused(_book(tmp_path / "header.xlsx", rows)).startswith(
        """row 1: a formula (="Abs"&"tract") in the header, column B, with no saved value"""
    )


def test_a_malformed_sheet_is_refused_not_a_traceback(tmp_path: Path) -> None:
    path = _book(tmp_path / "bad.xlsx", [["title", "year"], ["Oral micronized progesterone.", 2001]])
    bad = _patch_sheet(path, lambda xml: xml.replace("<v>2001</v>", "<v>two thousand and one</v>"))
    assert _refused(bad).startswith("not a readable .xlsx workbook")
