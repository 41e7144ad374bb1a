"""PubMed XML: efetch responses (``PubmedArticleSet``) and MEDLINE baseline files.

The reader streams with ``lxml.etree.iterparse`` and clears each record once it is
read, so memory stays flat however large the file. It yields one
:class:`~screening.sources.Citation` per ``PubmedArticle``, bare ``MedlineCitation``
(older baseline files), ``PubmedBookArticle``, and one ``deleted=True`` citation
per PMID in a ``DeleteCitation`` block.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lxml import etree

from ..errors import ImportFormatError
from . import Citation
from .files import open_binary

# the roots PubMed and the MEDLINE baseline use; anything else (eInfoResult, html, ...) is not PubMed XML
ROOTS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedBookArticleSet"})
RECORD_TAGS = ("PubmedArticle", "MedlineCitation", "PubmedBookArticle", "DeleteCitation", "ERROR")
MATHML = "{http://www.w3.org/1998/Math/MathML}"
_AUTHOR_PARTS = ("Author", "LastName", "ForeName", "Initials", "CollectiveName")
_CITATION_PARTS = ("PMID", "Article", "MeshHeadingList", "KeywordList", "CommentsCorrectionsList")
_ARTICLE_PARTS = (
    "Journal",
    "ArticleTitle",
    "VernacularTitle",
    "Pagination",
    "Abstract",
    "AuthorList",
    "PublicationTypeList",
    "ArticleDate",
)
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")


def clean_text(elem: etree._Element | None) -> str:
    """All text under an element, inline markup (i, sup, MathML) dropped, whitespace collapsed.

    A MathML formula is indented markup: its tokens are joined without the layout
    whitespace (line breaks and indentation) between them, so an indented
    ``<mi>H</mi>`` then ``<mn>1</mn>`` reads "H1", not "H 1"; an ``<mtext> </mtext>`` stays.
    """
    if elem is None:
        return ""
    if len(elem) == 0:  # the common case: no markup inside
        return " ".join(elem.text.split()) if elem.text else ""
    for math in elem.iter(f"{MATHML}math"):
        tail = math.tail
        tokens = "".join(t.strip() if "\n" in t else t for t in math.itertext())
        math.clear()
        math.text, math.tail = tokens, tail
    return " ".join("".join(elem.itertext()).split())


def _children(elem: etree._Element | None, tags: tuple[str, ...] | None = None) -> dict[str, etree._Element]:
    """Direct children by tag (the last of each; repeated tags are read with iterchildren).

    Several times faster than ElementPath (``find``), which lxml runs in Python;
    with ``tags``, children not asked for are skipped in C.
    """
    if elem is None:
        return {}
    return {child.tag: child for child in elem.iterchildren(tags)} if tags else {c.tag: c for c in elem}


def _text(elem: etree._Element | None) -> str | None:
    if elem is None or not elem.text:
        return None
    return elem.text.strip() or None


def _year(text: str | None) -> int | None:
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None


def _abstract(abstract: etree._Element | None) -> str:
    """Abstract paragraphs joined, structured sections keeping their labels."""
    if abstract is None:
        return ""
    parts = []
    for node in abstract.iterchildren("AbstractText"):
        text = clean_text(node)
        label = node.get("Label")
        if label:
            text = f"{label}: {text}" if text else f"{label}:"
        if text:
            parts.append(text)
    return " ".join(parts)


def _add_name(names: list[str], last: str | None, first: str | None, collective: etree._Element | None) -> None:
    if last:
        names.append(f"{last}, {first}" if first else last)
    elif collective is not None and (name := clean_text(collective)):
        names.append(name)


def _authors(author_list: etree._Element | None) -> list[str]:
    """'Last, First' (or 'Last, Initials'), and collective names as they are.

    Walks only the name elements, filtered in C, so affiliations and identifiers
    (most of an author list) never become Python objects: twice as fast as
    looking at each author's children.
    """
    if author_list is None:
        return []
    names: list[str] = []
    last = first = initials = None
    collective = None
    for elem in author_list.iter(_AUTHOR_PARTS):
        tag = elem.tag
        if tag == "Author":  # a new author: the previous one is complete
            _add_name(names, last, first or initials, collective)
            last = first = initials = collective = None
        elif tag == "LastName":
            last = _text(elem)
        elif tag == "ForeName":
            first = _text(elem)
        elif tag == "Initials":
            initials = _text(elem)
        else:
            collective = elem
    _add_name(names, last, first or initials, collective)
    return names


def _ids(id_list: etree._Element | None) -> dict[str, str]:
    if id_list is None:
        return {}
    return {a.get("IdType", ""): (a.text or "").strip() for a in id_list.iterchildren("ArticleId")}


def _mesh(heading_list: etree._Element | None) -> list[str]:
    """Descriptor names; a leading '*' marks a major topic, as the MEDLINE format does."""
    if heading_list is None:
        return []
    terms = []
    for heading in heading_list.iterchildren("MeshHeading"):
        for name in heading.iterchildren("DescriptorName"):
            text = _text(name)
            if text:
                terms.append(f"*{text}" if name.get("MajorTopicYN") == "Y" else text)
    return terms


def _texts(parent: etree._Element | None, tag: str) -> list[str]:
    """Cleaned texts of the children with this tag (keywords, publication types)."""
    if parent is None:
        return []
    return [t for t in (clean_text(e) for e in parent.iterchildren(tag)) if t]


def _keywords(kids: dict[str, etree._Element], citation: etree._Element) -> list[str]:
    if "KeywordList" not in kids:
        return []
    return [k for keywords in citation.iterchildren("KeywordList") for k in _texts(keywords, "Keyword")]


def _pages(pagination: etree._Element | None) -> str | None:
    parts = _children(pagination)
    pages = _text(parts.get("MedlinePgn"))
    if pages:
        return pages
    start, end = _text(parts.get("StartPage")), _text(parts.get("EndPage"))
    if start:
        return f"{start}-{end}" if end else start
    return None


def _doi(article: etree._Element, ids: dict[str, str]) -> str | None:
    if ids.get("doi"):
        return ids["doi"]
    for location in article.iterchildren("ELocationID"):
        if location.get("EIdType") == "doi":
            return _text(location)
    return None


def _retracted(comments: etree._Element | None, types: list[str], extra: dict[str, Any]) -> bool:
    """True for a retracted article; a retraction notice is kept and flagged in ``extra``."""
    if "Retraction of Publication" in types:
        extra["retraction_notice"] = True
    if "Retracted Publication" in types:
        return True
    if comments is None:
        return False
    return any(c.get("RefType") == "RetractionIn" for c in comments.iterchildren("CommentsCorrections"))


def _pub_year(issue: dict[str, etree._Element], article: dict[str, etree._Element]) -> int | None:
    """PubDate/Year, else MedlineDate ("1998 Dec-1999 Jan" -> 1998), else ArticleDate."""
    date = _children(issue.get("PubDate"))
    year = _year(_text(date.get("Year"))) or _year(_text(date.get("MedlineDate")))
    if year is None and "ArticleDate" in article:
        year = _year(_text(_children(article["ArticleDate"]).get("Year")))
    return year


def _article_citation(citation: etree._Element, pubmed_data: etree._Element | None) -> Citation:
    """A journal article from its MedlineCitation (and PubmedData, when the file has it)."""
    kids = _children(citation, _CITATION_PARTS)
    pmid = _text(kids.get("PMID"))
    url = PUBMED_URL.format(pmid) if pmid else None
    if "Article" not in kids:
        return Citation(pmid=pmid, url=url, source_record_id=pmid)
    article = kids["Article"]
    parts = _children(article, _ARTICLE_PARTS)
    journal = _children(parts.get("Journal"), ("Title", "JournalIssue"))
    issue = _children(journal.get("JournalIssue"))
    ids = _ids(_children(pubmed_data).get("ArticleIdList")) if pubmed_data is not None else {}
    types = _texts(parts.get("PublicationTypeList"), "PublicationType")
    extra: dict[str, Any] = {}
    if ids.get("pmc"):
        extra["pmcid"] = ids["pmc"]
    retracted = _retracted(kids.get("CommentsCorrectionsList"), types, extra)
    return Citation(
        title=clean_text(parts.get("ArticleTitle")) or clean_text(parts.get("VernacularTitle")),
        abstract=_abstract(parts.get("Abstract")),
        authors=_authors(parts.get("AuthorList")),
        journal=clean_text(journal.get("Title")),
        year=_pub_year(issue, parts),
        volume=_text(issue.get("Volume")),
        issue=_text(issue.get("Issue")),
        pages=_pages(parts.get("Pagination")),
        pmid=pmid,
        doi=_doi(article, ids),
        mesh_terms=_mesh(kids.get("MeshHeadingList")),
        keywords=_keywords(kids, citation),
        publication_types=types,
        language=_text(next(article.iterchildren("Language"), None)),
        url=url,
        retracted=retracted,
        source_record_id=pmid,
        extra=extra,
    )


def _book_citation(record: etree._Element) -> Citation:
    """A PubmedBookArticle: a chapter (ArticleTitle, in BookTitle) or a whole book."""
    doc = _children(record).get("BookDocument")
    if doc is None:
        return Citation()
    parts = _children(doc)
    pmid = _text(parts.get("PMID"))
    book = _children(parts.get("Book"))
    book_title = clean_text(book.get("BookTitle"))
    chapter = clean_text(parts.get("ArticleTitle"))
    book_data = _children(_children(record).get("PubmedBookData"))
    ids = {**_ids(book_data.get("ArticleIdList")), **_ids(parts.get("ArticleIdList"))}
    extra: dict[str, Any] = {"book": True}
    if ids.get("bookaccession"):
        extra["bookaccession"] = ids["bookaccession"]
    return Citation(
        title=chapter or book_title,
        abstract=_abstract(parts.get("Abstract")),
        authors=_authors(parts.get("AuthorList")) or _authors(book.get("AuthorList")),
        journal=book_title if chapter else "",
        year=_year(_text(_children(book.get("PubDate")).get("Year"))),
        pmid=pmid,
        doi=ids.get("doi"),
        keywords=_keywords(parts, doc),
        publication_types=_texts(doc, "PublicationType"),
        language=_text(parts.get("Language")),
        url=PUBMED_URL.format(pmid) if pmid else None,
        source_record_id=pmid,
        extra=extra,
    )


def _citations(elem: etree._Element) -> list[Citation]:
    tag = elem.tag
    if tag == "PubmedArticle":
        kids = _children(elem)
        if "MedlineCitation" not in kids:
            return []
        return [_article_citation(kids["MedlineCitation"], kids.get("PubmedData"))]
    if tag == "MedlineCitation":
        return [_article_citation(elem, None)]
    if tag == "PubmedBookArticle":
        return [_book_citation(elem)]
    # DeleteCitation: the PMIDs withdrawn since the last file
    return [Citation(pmid=p.text.strip(), deleted=True) for p in elem.iterfind("PMID") if p.text]


def _iter_xml(source: IO[bytes], origin: str) -> Iterator[Citation]:
    """Stream citations from an open binary file, clearing each record once read."""
    context = etree.iterparse(
        source, events=("end",), tag=RECORD_TAGS, resolve_entities=False, no_network=True, huge_tree=True
    )
    number = 0
    try:
        for _event, elem in context:
            parent = elem.getparent()
            if elem.tag == "MedlineCitation" and parent is not None and parent.tag == "PubmedArticle":
                continue  # read with its PubmedArticle
            if elem.tag == "ERROR":
                raise ImportFormatError(origin, f"line {elem.sourceline}", None, f"PubMed error: {clean_text(elem)}")
            if number == 0:
                _check_root(elem.getroottree().getroot(), origin)
            number += 1
            where = f"record {number}, line {elem.sourceline}"
            for citation in _citations(elem):
                citation.location = where
                yield citation
            elem.clear(keep_tail=False)
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as e:
        line = e.lineno if e.lineno else None
        raise ImportFormatError(origin, f"line {line}" if line else None, None, f"invalid XML: {e.msg}") from e
    if number == 0:
        _check_root(context.root, origin)


def _check_root(root: etree._Element | None, origin: str) -> None:
    """PubMed XML or nothing: an eInfoResult, an HTML page or an empty document raise."""
    if root is None or root.tag not in ROOTS:
        found = f"<{root.tag}>" if root is not None else "no XML element"
        raise ImportFormatError(origin, None, None, f"not PubMed XML: the root element is {found}")


def read_pubmed_xml(path_or_file: str | os.PathLike[str] | IO[bytes]) -> Iterator[Citation]:
    """Citations from a PubMed XML file (``.xml`` or ``.xml.gz``) or an open binary file."""
    if hasattr(path_or_file, "read"):
        yield from _iter_xml(path_or_file, getattr(path_or_file, "name", "<stream>"))
        return
    path = Path(path_or_file)
    try:
        source = open_binary(path)
    except OSError as e:
        raise ImportFormatError(str(path), None, None, f"cannot open: {e.strerror or e}") from e
    with source:
        try:
            yield from _iter_xml(source, str(path))
        except (OSError, EOFError) as e:  # a corrupt or truncated .gz
            raise ImportFormatError(str(path), None, None, f"cannot read: {e}") from e


def parse_pubmed_xml(data: bytes, *, origin: str = "<response>") -> list[Citation]:
    """Citations from one efetch response body; an error body or an HTML page raises."""
    if not data or not data.strip():
        raise ImportFormatError(origin, None, None, "empty response")
    return list(_iter_xml(io.BytesIO(data), origin))
