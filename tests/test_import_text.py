"""MEDLINE text and RIS: real PubMed exports, and RIS fixtures written from real records."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.errors import ImportFormatError
from screening.sources.files import detect_format
from screening.sources.medline import read_medline
from screening.sources.pubmed_xml import read_pubmed_xml
from screening.sources.ris import read_ris


def test_medline_result2(shared: Path) -> None:
    citations = list(read_medline(shared / "pubmed/medline/pubmed_result2.txt"))
    assert [c.pmid for c in citations] == ["16403221", "16377612", "14871861", "14630660"]
    assert [c.location for c in citations] == [
        "record 1, line 2",
        "record 2, line 67",
        "record 3, line 127",
        "record 4, line 192",
    ]
    first = citations[0]
    assert first.title == "A high level interface to SCOP and ASTRAL implemented in python."
    assert first.abstract.startswith("BACKGROUND: Benchmarking algorithms in structural bioinformatics")
    assert " RESULTS: We have designed a set of python modules" in first.abstract
    assert "  " not in first.abstract  # continuation lines joined
    assert first.authors == ["Casbon, James A", "Crooks, Gavin E", "Saqi, Mansoor A S"]  # FAU
    assert (first.year, first.volume, first.pages) == (2006, "7", "10")
    assert first.doi == "10.1186/1471-2105-7-10"  # AID "... [doi]", not the [pii]
    assert first.journal == "BMC bioinformatics"
    assert first.language == "eng"
    assert first.publication_types == ["Evaluation Studies", "Journal Article"]
    # "Information Storage and Retrieval/*methods": descriptor kept, unstarred (the qualifier is major)
    assert first.mesh_terms[:3] == [
        "*Database Management Systems",
        "*Databases, Protein",
        "Information Storage and Retrieval",
    ]
    assert citations[2].authors[0] == "de Hoon, M J L"


@pytest.mark.parametrize("name", ["pubmed_result1.txt", "pubmed_result2.txt", "pubmed_result3.txt"])
def test_every_medline_text_file_parses(shared: Path, name: str) -> None:
    citations = list(read_medline(shared / "pubmed/medline" / name))
    assert citations and all(c.pmid and c.title and c.year and c.authors for c in citations)


def test_medline_text_and_xml_agree(shared: Path) -> None:
    """The same article (PMID 23039619) read from MEDLINE text and from PubMed XML."""
    (text,) = read_medline(shared / "pubmed/medline/pubmed_result3.txt")
    assert text.pmid == "23039619" and text.doi == "10.1118/1.4748329" and text.year == 2012
    assert text.title == "Effects of different parameters in the fast scanning method for HIFU treatment."
    assert text.mesh_terms[:2] == ["Blood Circulation", "High-Intensity Focused Ultrasound Ablation"]
    (one,) = read_medline(shared / "pubmed/medline/pubmed_result1.txt")
    assert one.mesh_terms[0] == "*Computational Biology"


def test_medline_garbage_line_names_its_line(shared: Path, tmp_path: Path) -> None:
    lines = (shared / "pubmed/medline/pubmed_result2.txt").read_text().splitlines(keepends=True)
    lines.insert(70, "this line is not MEDLINE\n")
    bad = tmp_path / "bad.nbib"
    bad.write_text("".join(lines))
    with pytest.raises(ImportFormatError, match=r"bad.nbib: line 71: not a MEDLINE tag line"):
        list(read_medline(bad))


# ---- RIS ---------------------------------------------------------------------------------


def test_embase_ris(fixtures: Path) -> None:
    first, second = read_ris(fixtures / "import/embase.ris")
    assert first.title == "Back Pain: Differential Diagnosis and Management"  # T1
    assert first.authors == ["Gibbs D.", "McGahan B.G.", "Ropper A.E.", "Xu D.S."]  # A1
    assert first.abstract.startswith("Back pain is a common condition")  # N2
    assert (first.journal, first.year, first.volume, first.issue, first.pages) == (
        "Neurologic Clinics",
        2023,
        "41",
        "1",
        "61-76",
    )  # JF, Y1 "2023//"
    assert first.doi == "10.1016/j.ncl.2022.07.002"
    assert first.keywords[:2] == ["back pain", "cognitive behavioral therapy"]
    assert first.publication_types == ["Review"]  # M3
    assert first.language == "English"
    assert first.extra["database"] == "Embase; Medline"
    assert first.pmid is None
    assert second.doi == "10.7861/clinmedicine.1-3-188"  # a DOI only in N1
    assert second.location == "record 2, line 28"


def test_ovid_medline_ris(fixtures: Path) -> None:
    first, second = read_ris(fixtures / "import/ovid_medline.ris")
    assert first.pmid == "36400559"  # AN of a MEDLINE record
    assert first.doi == "10.1016/j.ncl.2022.07.002"  # DO holds a dx.doi.org URL
    assert first.abstract.endswith("A biopsychosocial approach to back pain provides the best clinical framework.")
    # Ovid MEDLINE puts MeSH headings in KW
    assert first.mesh_terms == ["Humans", "*Low Back Pain", "*Cognitive Behavioral Therapy"]
    assert first.keywords == []
    assert first.publication_types == ["Journal Article", "Review"]
    assert first.year == 2023 and first.journal == "Neurologic clinics"
    assert (second.pmid, second.year, second.pages) == ("2930949", 1985, "259-65")


def test_scopus_ris(fixtures: Path) -> None:
    (c,) = read_ris(fixtures / "import/scopus.ris")
    assert c.title.startswith("Yield of community-based tuberculosis")  # TI
    assert c.authors[:2] == ["Malekinejad, M.", "Parriott, A."]  # AU
    assert (c.journal, c.year, c.volume, c.issue, c.pages) == ("PLoS ONE", 2017, "12", "8", "e0180707")
    assert c.doi == "10.1371/journal.pone.0180707"
    assert c.extra["notes"] == ["Export Date: 27 August 2026; Cited By: 31"]


def test_web_of_science_ris(fixtures: Path) -> None:
    first, second = read_ris(fixtures / "import/wos.ris")
    assert first.source_record_id == "WOS:A1994PN49000037"
    assert first.pmid is None  # a WoS accession number is not a PMID
    assert first.journal == "JOURNAL OF PHARMACOLOGY AND EXPERIMENTAL THERAPEUTICS"  # T2 before J2
    assert (first.year, first.pages) == (1994, "285-293")
    assert second.year == 2007  # "DA  - SEP" has no year; PY has
    assert second.doi == "10.1007/s00213-007-0785-0"


def _broken(fixtures: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (fixtures / "import/wos.ris").read_text()
    assert old in text
    path = tmp_path / "broken.ris"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("TY  - JOUR\nAU  - Brown", "AU  - Brown", r"broken.ris: line 16: field 'AU': a record must start with 'TY"),
        (
            "LA  - English\nER  - \n",
            "LA  - English\n",
            r"broken.ris: line 30: field 'ER': file ends inside the "
            r"record starting at line 16",
        ),
        ("VL  - 271", "ZZ  - 271", r"broken.ris: line 8: field 'ZZ': unknown RIS tag"),
        ("VL  - 271", "VL - 271", r"broken.ris: line 8: field 'VL': malformed tag line"),
        (
            "ER  - \n\nTY  - JOUR\nAU  - Brown",
            "\nTY  - JOUR\nAU  - Brown",
            r"broken.ris: line 15: field 'ER': the record starting at line 1 has no ER",
        ),
    ],
)
def test_broken_ris_names_file_line_and_tag(fixtures: Path, tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        list(read_ris(_broken(fixtures, tmp_path, old, new)))


def test_ris_continuation_lines_and_headers(tmp_path: Path, shared: Path) -> None:
    """EndNote-style '1.' headers between records and wrapped lines are fine."""
    (c,) = [c for c in read_pubmed_xml(shared / "pubmed/eutils/pubmed4.xml")]
    half = len(c.abstract) // 2
    path = tmp_path / "endnote.ris"
    path.write_text(
        f"1.\nTY  - JOUR\nTI  - {c.title}\nAB  - {c.abstract[:half]}\n{c.abstract[half:]}\n"
        f"PY  - {c.year}\nER  - \n\n2.\n"
    )
    (back,) = read_ris(path)
    assert back.title == c.title and back.year == c.year
    assert back.abstract.replace(" ", "") == c.abstract.replace(" ", "")


def test_utf16_ris_and_a_file_with_no_records(fixtures: Path, tmp_path: Path) -> None:
    """EndNote on Windows writes UTF-16 with a BOM; a file with no TY line is not silently empty."""
    utf16 = tmp_path / "endnote.ris"
    utf16.write_bytes((fixtures / "import/wos.ris").read_text(encoding="utf-8").encode("utf-16"))
    assert list(read_ris(utf16)) == list(read_ris(fixtures / "import/wos.ris"))
    assert detect_format(utf16.rename(tmp_path / "endnote.txt")) == "ris"
    notes = tmp_path / "notes.ris"
    notes.write_text("Search run 2026-08-27\nEmbase, 1,234 hits\n")
    with pytest.raises(ImportFormatError, match=r"notes\.ris: field 'TY': no RIS record in 2 lines"):
        list(read_ris(notes))
