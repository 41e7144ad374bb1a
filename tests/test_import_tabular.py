"""CSV, TSV and XLSX: real Covidence and ASReview-style exports, and labelled datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook

from screening.errors import ImportFormatError
from screening.sources.files import read_file
from screening.sources.tabular import normalise_header, read_csv, read_tsv, read_xlsx

COVIDENCE = {
    "covidence_2026-06/review_772559_20260618032707.csv": 4,
    "covidence_2026-06/review_772559_excluded_csv_20260618041846.csv": 2,
    "covidence_2026-06/review_772559_included_csv_20260618032642.csv": 19,
    "covidence_2026-06/review_772559_select_csv_20260618032634.csv": 116,
    "covidence_2026-08/review_772559_excluded_csv_20260827000233.csv": 11,
    "covidence_2026-08/review_772559_included_csv_20260827000230.csv": 95,
    "covidence_2026-08/review_772559_screen_csv_20260827000205.csv": 1270,
}


@pytest.mark.parametrize(("name", "count"), sorted(COVIDENCE.items()))
def test_full_covidence_exports(shared: Path, name: str, count: int) -> None:
    citations = list(read_csv(shared / "psychedelics" / name))
    assert len(citations) == count
    assert all(c.title and c.source_record_id and c.source_record_id.isdigit() for c in citations)


def test_covidence_screen_pool_records_40911_to_40930(shared: Path) -> None:
    """The August 2026 pool lost a carriage return in these records; they must still import."""
    path = shared / "psychedelics/covidence_2026-08/review_772559_screen_csv_20260827000205.csv"
    by_id = {c.source_record_id: c for c in read_csv(path)}
    odd = [by_id[i] for i in ("40911", "40919", "40921", "40927", "40930")]
    assert odd[0].title == "Statistical comparison of mass spectra for identification of amphetamine-type stimulants"
    assert odd[0].authors == ["Bodnar Willard, M.A.", "McGuffin, V.L.", "Smith, R.W."]
    assert odd[0].location == "line 991"
    assert (odd[3].journal, odd[3].volume, odd[3].issue, odd[3].pages) == ("Medicinski Glasnik", "18", "1", "1-6")


def test_covidence_piece_fields(fixtures: Path) -> None:
    citations = list(read_csv(fixtures / "import/covidence_screen_piece.csv"))
    assert [c.source_record_id for c in citations] == [
        "28398",
        "28588",
        "28681",
        "28696",
        "28702",
        "40911",
        "40919",
        "40921",
        "40927",
        "40930",
    ]
    first = citations[0]
    assert first.title.startswith("LSD microdosing in major depressive disorder")
    assert first.authors[:2] == ["Daldegan-Bueno D", "Donegan CJ"]  # "A; B; C" split on ';'
    assert (first.journal, first.year, first.doi) == ("Neuropharmacology", 2026, "10.1016/j.neuropharm.2025.110762")
    assert first.extra == {"tags": "Possible RCT"}
    assert first.pmid is None  # Covidence's Accession Number here is a WOS id or empty
    assert [c.location for c in citations[:3]] == ["line 2", "line 3", "line 4"]


def test_covidence_excluded_notes_become_reasons(fixtures: Path) -> None:
    old = list(read_csv(fixtures / "import/covidence_excluded_2026-06.csv"))
    assert [c.label_reason for c in old] == ["Animal studies (non-human research)", "Not an RCT"]
    assert old[0].extra["notes"] == "Exclusion reason: Animal studies (non-human research);"
    new = list(read_csv(fixtures / "import/covidence_excluded_2026-08_piece.csv"))
    assert [c.label_reason for c in new] == ["Not an RCT", "Not an RCT", "Not an RCT", "no psychedelic administered"]
    assert all(c.label is None for c in old + new)


def test_quoted_field_with_line_break(fixtures: Path) -> None:
    citations = list(read_csv(fixtures / "import/covidence_select_multiline.csv"))
    assert [c.source_record_id for c in citations] == ["28636", "28646", "28659"]
    assert [c.location for c in citations] == ["line 2", "line 3", "line 5"]  # physical lines
    assert citations[1].year == 1970


def test_bom_and_latin1(fixtures: Path) -> None:
    bom = list(read_csv(fixtures / "import/covidence_bom.csv"))
    assert bom[0].title.startswith("LSD microdosing")  # the BOM is not part of the first header
    latin = list(read_csv(fixtures / "import/covidence_latin1.csv"))
    utf8 = {c.source_record_id: c for c in bom}
    assert latin[0].source_record_id == "28681" and latin[0].authors == utf8["28681"].authors
    assert "ä" in latin[0].title + " ".join(latin[0].authors) + latin[0].abstract
    assert latin[1].abstract == utf8["28708"].abstract


def test_labels(fixtures: Path) -> None:
    citations = list(read_csv(fixtures / "import/psychedelic_pain_piece.csv"))  # source_label_included
    assert [c.label for c in citations] == [0, 0, 0, 1, None, None]
    assert citations[3].pmid == "40917239" and citations[3].source_record_id == "30267"
    assert citations[0].extra == {"source": "asreview_Bannach-Brown_2019"}


def test_dataset_labels(shared: Path) -> None:
    citations = list(read_file(shared / "datasets/cohen2006_Estrogens.csv.gz"))
    assert len(citations) == 368
    assert sum(c.label == 1 for c in citations) == 80 and sum(c.label == 0 for c in citations) == 288


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_bad_label_names_line_and_column(fixtures: Path, tmp_path: Path) -> None:
    rows = _rows(fixtures / "import/psychedelic_pain_piece.csv")
    column = rows[0].index("source_label_included")
    rows[3][column] = "maybe"
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(ImportFormatError, match=r"bad.csv: line 4: field 'source_label_included': label 'maybe'"):
        list(read_csv(bad))


def test_no_title_column(fixtures: Path, tmp_path: Path) -> None:
    rows = _rows(fixtures / "import/covidence_excluded_2026-06.csv")
    rows[0][0] = "Heading"
    bad = tmp_path / "notitle.csv"
    with bad.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(
        ImportFormatError,
        match=r"notitle.csv: line 1: field 'title': no title column in the "
        r"header \['Heading', 'Authors'",
    ):
        list(read_csv(bad))


def test_tsv(fixtures: Path, tmp_path: Path) -> None:
    rows = _rows(fixtures / "import/covidence_screen_piece.csv")
    path = tmp_path / "pool.tsv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows(rows)
    from_tsv = list(read_tsv(path))
    from_csv = list(read_csv(fixtures / "import/covidence_screen_piece.csv"))
    assert from_tsv == from_csv


def test_xlsx_asreview_style(fixtures: Path, tmp_path: Path) -> None:
    """An ASReview-style workbook: record_id, title, abstract, included, with numbers as numbers."""
    source = list(read_csv(fixtures / "import/psychedelic_pain_piece.csv"))
    book = Workbook()
    sheet = book.active
    sheet.append(["record_id", "title", "abstract", "publication_year", "doi", "included"])
    for i, c in enumerate(source, start=1):
        sheet.append([i, c.title, c.abstract, 2020 + i, c.doi, c.label])
    path = tmp_path / "asreview.xlsx"
    book.save(path)
    citations = list(read_xlsx(path))
    assert [c.title for c in citations] == [c.title for c in source]
    assert [c.label for c in citations] == [0, 0, 0, 1, None, None]
    assert [c.year for c in citations] == [2021, 2022, 2023, 2024, 2025, 2026]
    assert citations[0].source_record_id == "1" and citations[0].location == "row 2"
    assert list(read_file(path)) == citations


def test_header_normalisation() -> None:
    assert normalise_header("Published Year") == normalise_header("published_year") == "publishedyear"
    assert normalise_header("Covidence #") == "covidence"
    assert normalise_header("PubMed ID") == "pubmedid"


def test_corrupt_xlsx(fixtures: Path, tmp_path: Path) -> None:
    bad = tmp_path / "export.xlsx"
    bad.write_bytes((fixtures / "import/covidence_bom.csv").read_bytes())
    with pytest.raises(ImportFormatError, match=r"export\.xlsx: not a readable \.xlsx workbook"):
        list(read_xlsx(bad))
