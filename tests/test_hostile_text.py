"""Bad MEDLINE text and RIS (issue 13): a file cut short, and tags in the wrong case.

Each file under tests/fixtures/hostile/ (``medline_*``, ``ris_*``) is cut from real records:
PubMed exports in ../shared/pubmed/medline, the Scopus and Web of Science RIS fixtures. Each is
imported whole, refused naming the line and field, or imported with a notice saying what was done.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from Bio import Medline

from screening.errors import ImportFormatError
from screening.queries import export_rows
from screening.sources import Citation, collecting_notices
from screening.sources.files import read_file
from screening.store import init_project

FIXTURES = Path(__file__).parent / "fixtures"
HOSTILE = FIXTURES / "hostile"


def _read(path: Path) -> tuple[list[Citation], list[str]]:
    """The citations of a file, and the notices given while reading it."""
    with collecting_notices() as notes:
        citations = list(read_file(path))
    return citations, [str(n) for n in notes]


def _fields(citation: Citation) -> dict:
    """Everything but where in its file the record was."""
    return {k: v for k, v in dataclasses.asdict(citation).items() if k != "location"}


# ---- MEDLINE: a file cut short -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # two PubMed records, the second cut at a line's end in its abstract: record 1 is not imported either
        (
            "medline_cut_mid_record.nbib",
            "record 2, line 67: field 'SO': the file ends at line 85, inside this record "
            "(it has no SO line, which every PubMed record ends with); the file looks cut short",
        ),
        # cut mid-way through an abstract line, no final newline
        ("medline_cut_mid_line.nbib", "record 1, line 2: field 'SO': the file ends at line 18, inside this record"),
        # cut one letter into a tag ("M" of "MH  - ")
        ("medline_cut_in_tag.nbib", "line 35: the file ends mid-line, inside record 1 (from line 2), at 'M'"),
    ],
)
def test_medline_cut_short_is_refused(name: str, message: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        _read(HOSTILE / name)
    assert str(caught.value).startswith(f"{HOSTILE / name}: {message}")


def test_medline_cut_short_imports_nothing(tmp_path: Path) -> None:
    from screening.ingest import import_file

    with init_project(tmp_path / "p.db", name="cut") as store:
        with pytest.raises(ImportFormatError, match="looks cut short"):
            import_file(store, HOSTILE / "medline_cut_mid_record.nbib", source_name="PubMed")
        assert list(export_rows(store)) == []


def test_medline_without_final_newline_imports_whole(shared: Path) -> None:
    """A whole record saved without its last newline is not mistaken for a cut one."""
    (whole,), notes = _read(shared / "pubmed/medline/pubmed_result3.txt")
    (read,), notes = _read(HOSTILE / "medline_no_final_newline.nbib")
    assert _fields(read) == _fields(whole) and not notes


@pytest.mark.parametrize("name", ["pubmed_result1.txt", "pubmed_result2.txt"])
def test_every_cut_of_the_last_record_is_refused_or_loses_nothing(shared: Path, tmp_path: Path, name: str) -> None:
    """Cut at every byte of the last record: refused, or (a cut inside SO, which no field is read from) whole."""
    text = (shared / "pubmed/medline" / name).read_text()
    whole = [_fields(c) for c in _read(shared / "pubmed/medline" / name)[0]]
    last = text.rindex("PMID- ")
    cut = tmp_path / "cut.nbib"
    outcomes = set()
    for end in range(last + 1, len(text)):
        cut.write_text(text[:end])
        try:
            citations, _ = _read(cut)
        except ImportFormatError as e:
            assert "cut short" in str(e)
            outcomes.add("refused")
        else:
            assert [_fields(c) for c in citations] == whole, text[:end][-80:]
            assert text[:end].splitlines()[-1].startswith("SO  -")
            outcomes.add("whole")
    assert outcomes == {"refused", "whole"}


def _without_pmid(text: str) -> str:
    """Real PubMed records with the PMID line taken out: records that do not start the PubMed way (as Ovid's)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("PMID- "))


def test_medline_cut_is_seen_in_records_not_in_pubmed_order(shared: Path, tmp_path: Path) -> None:
    text = _without_pmid((shared / "pubmed/medline/pubmed_result2.txt").read_text())
    path = tmp_path / "other.nbib"
    path.write_text(text)
    assert len(_read(path)[0]) == 4  # whole, it imports
    path.write_text(text[: text.rindex("SO  - ")])  # the last record lacks the SO every earlier one has
    with pytest.raises(ImportFormatError, match=r"record 4, line \d+: field 'SO': .*which every earlier record has"):
        _read(path)


def test_a_lone_record_without_so_is_cut_only_when_it_ends_mid_line(shared: Path, tmp_path: Path) -> None:
    """With nothing to compare to, a record that does not start the PubMed way is trusted, unless cut mid-line."""
    text = _without_pmid((shared / "pubmed/medline/pubmed_result1.txt").read_text())
    path = tmp_path / "one.nbib"
    path.write_text(text[: text.index("SO  - ")])
    (citation,), _ = _read(path)
    assert citation.title == "The Bio* toolkits--a brief overview."
    path.write_text(text[: text.index("SO  - ") - 3])
    with pytest.raises(ImportFormatError, match=r"record 1, line 2: field 'SO': .*its last line has no newline"):
        _read(path)


# ---- MEDLINE: tags PubMed would not write -----------------------------------------------------


def test_bio_medline_would_drop_a_lowercase_tag_silently(shared: Path) -> None:
    """Why a lowercase MEDLINE tag is refused: Bio files it under "ab", which nothing reads."""
    lines = (HOSTILE / "medline_lowercase_tag.nbib").read_text().splitlines(keepends=True)
    (record,) = Medline.parse(lines)
    assert "AB" not in record and record["ab"][0].startswith("Bioinformatics research")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("medline_lowercase_tag.nbib", "line 15: field 'ab': lowercase tag in 'ab  - Bioinformatics research"),
        # Bio reads the tag from columns 1-4 and the text from column 7: "TI - x" would lose both
        ("medline_misaligned_tag.nbib", "line 13: field 'TI': malformed tag line 'TI - The Bio* toolkits"),
    ],
)
def test_medline_tag_lines_pubmed_would_not_write_are_refused(name: str, message: str) -> None:
    with pytest.raises(ImportFormatError, match="^" + str(HOSTILE / name) + ": ") as caught:
        _read(HOSTILE / name)
    assert message in str(caught.value)


# ---- RIS: lowercase tags ------------------------------------------------------------------------


def test_lowercase_ris_tags_are_read_as_tags_with_one_notice() -> None:
    """A Scopus record with PY and AB lowercased reads as the record itself; its abstract stays out of its title."""
    (wos, scopus), notes = _read(HOSTILE / "ris_lowercase_tags.ris")
    (original,), _ = _read(FIXTURES / "import/scopus.ris")
    assert _fields(scopus) == _fields(original)
    assert scopus.abstract.startswith("OBJECTIVE: To synthesize") and "OBJECTIVE" not in scopus.title
    assert scopus.year == 2017 and wos.year == 1994
    assert notes == [
        f"{HOSTILE / 'ris_lowercase_tags.ris'}: line 24: field 'py': lowercase RIS tags read as tags (py, ab)"
    ]


def test_a_record_all_in_lowercase_reads_as_the_original(tmp_path: Path) -> None:
    _, original = _read(FIXTURES / "import/wos.ris")[0]
    (read,), notes = _read(HOSTILE / "ris_lowercase_whole_record.ris")
    assert _fields(read) == _fields(original)
    (note,) = notes
    assert "line 1: field 'ty': lowercase RIS tags read as tags (ty, Au, au, ti, t2, da, py," in note
    twice = tmp_path / "twice.ris"
    twice.write_text((HOSTILE / "ris_lowercase_whole_record.ris").read_text() * 2)
    citations, notes = _read(twice)
    assert len(citations) == 2 and len(notes) == 1  # one notice a file, not a record


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ris_lowercase_bad_spacing.ris", "line 9: field 'py': malformed tag line 'py - 2007'"),
        ("ris_lowercase_unknown_tag.ris", "line 9: field 'zz': unknown RIS tag"),
    ],
)
def test_lowercase_ris_tags_are_checked_as_capitals_are(name: str, message: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        _read(HOSTILE / name)
    assert str(caught.value) == f"{HOSTILE / name}: {message}"


def test_lowercase_tag_lines_are_made_tags_only_when_known_and_spaced_as_tags(tmp_path: Path) -> None:
    """In a file written in capitals, prose that happens to look like a tag stays prose, as before."""
    lines = (FIXTURES / "import/scopus.ris").read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("AB  - ")) + 1
    lines[at:at] = ["an - admittedly small sample\n", "xx  - not a tag either\n"]
    path = tmp_path / "prose.ris"
    path.write_text("".join(lines))
    (citation,), notes = _read(path)
    assert citation.abstract.endswith("(US). an - admittedly small sample xx  - not a tag either")
    assert notes == []


@pytest.mark.parametrize("name", ["embase.ris", "ovid_medline.ris", "scopus.ris", "wos.ris"])
def test_vendor_ris_in_capitals_gives_no_notice(name: str) -> None:
    citations, notes = _read(FIXTURES / "import" / name)
    assert citations and notes == []
