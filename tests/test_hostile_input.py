"""Messy real files (issue 13): no study lost, no field garbled, round trips that keep every field.

Each case is a small file under tests/fixtures/hostile/, cut from real records, with the
outcome a reviewer would expect.
"""

from __future__ import annotations

from pathlib import Path

from screening.dedupe import dedupe
from screening.export import write_ris
from screening.ingest import import_file
from screening.queries import export_rows
from screening.sources.files import read_file
from screening.store import init_project

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
# two articles of one issue of Statistics in Medicine (synergy_Smid_2020, records 271 and 1599), whose Wiley
# SICI DOIs are the same up to the "<": cut there, they were one DOI and merged as exact duplicates
SICI = (
    "10.1002/1097-0258(20010215)20:3<435::aid-sim804>3.0.co;2-e",
    "10.1002/1097-0258(20010215)20:3<453::aid-sim803>3.0.co;2-l",
)


def test_sici_dois_are_read_whole_and_two_articles_stay_two(tmp_path: Path) -> None:
    assert tuple(c.doi.lower() for c in read_file(HOSTILE / "sici_dois.ris")) == SICI
    with init_project(tmp_path / "p.db", name="SICI") as store:
        import_file(store, HOSTILE / "sici_dois.ris", source_name="Wiley")
        dedupe(store)
        rows = list(export_rows(store))
        assert tuple(row["doi"] for row in rows) == SICI  # two records, each with its own DOI
        write_ris(rows, tmp_path / "out.ris")
    assert tuple(c.doi.lower() for c in read_file(tmp_path / "out.ris")) == SICI  # and back again


# OWASP's CSV injection cases, on the titles of real records (the Cohen 2006 Estrogens review)
FORMULAS = ('=HYPERLINK("http://x")', "+1 ", "-2 ", "@SUM(A1) ", "\tTabbed ", "'=quoted ", "''+twice ")


def test_csv_exports_are_safe_in_spreadsheets_and_round_trip(tmp_path: Path) -> None:
    import csv
    import gzip

    from screening.ingest import add_citations, new_source
    from screening.sources import Citation

    with gzip.open(Path(__file__).parent / "fixtures" / "prisma" / "cohen2006_Estrogens.csv.gz", "rt") as f:
        real = [row["title"] for _, row in zip(range(len(FORMULAS)), csv.DictReader(f), strict=False)]
    titles = [start + title for start, title in zip(FORMULAS, real, strict=True)]
    with init_project(tmp_path / "a.db", name="formulas") as store:
        with store.begin() as s:
            add_citations(
                s, new_source(s, name="PubMed"), [Citation(title=t, journal="=cmd|' /C calc'!A0") for t in titles]
            )
        from screening.export import write_csv

        write_csv(export_rows(store), tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]  # nothing a spreadsheet would run
    assert "'" + titles[0] in cells and "'''+twice " + real[6] in cells
    back = list(read_file(tmp_path / "out.csv"))
    assert [c.title for c in back] == titles  # lossless, the tab included
    assert {c.journal for c in back} == {"=cmd|' /C calc'!A0"}


# what a title or abstract may hold that BibTeX reads as syntax: lone and unbalanced braces among them
BIBTEX_HOSTILE = ("A lone { brace", "Closing } first { then", "50% & $5 #1 a_b ~c ^d \\ e", "{{{", "}")


def _unescape(value: str) -> str:
    """Our BibTeX escapes undone (the test's own inverse of screening.export's table)."""
    from screening.export import _BIBTEX_SPECIAL

    for plain, escaped in sorted(_BIBTEX_SPECIAL.items(), key=lambda kv: -len(kv[1])):
        value = value.replace(escaped, plain)
    return value


def test_bibtex_exports_read_back_whole_in_pybtex_and_bibtexparser(tmp_path: Path) -> None:
    import bibtexparser
    from pybtex.database import parse_file

    from screening.export import write_bibtex
    from screening.ingest import add_citations, new_source
    from screening.sources import Citation

    records = list(read_file(HOSTILE / "sici_dois.ris"))  # real records, then the hostile text around them
    citations = [
        Citation(title=f"{text} {records[i % 2].title}", abstract=f"{records[i % 2].abstract} {text}", journal="J")
        for i, text in enumerate(BIBTEX_HOSTILE)
    ]
    with init_project(tmp_path / "b.db", name="bibtex") as store:
        with store.begin() as s:
            add_citations(s, new_source(s, name="PubMed"), citations)
        rows = list(export_rows(store))
    assert write_bibtex(rows, tmp_path / "out.bib") == len(BIBTEX_HOSTILE)
    by_pybtex = parse_file(str(tmp_path / "out.bib"), "bibtex").entries
    by_parser = bibtexparser.parse_file(str(tmp_path / "out.bib"))
    assert not by_parser.failed_blocks
    assert sorted(by_pybtex) == sorted(e.key for e in by_parser.entries) == sorted(f"rec{r['id']}" for r in rows)
    for row in rows:
        key = f"rec{row['id']}"
        assert _unescape(by_pybtex[key].fields["title"]) == row["title"]
        assert _unescape(by_parser.entries_dict[key]["abstract"]) == row["abstract"]
