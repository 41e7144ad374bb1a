"""Record text as safe HTML: escaped first, then keyword highlights wrapped in ``<mark>``.

Titles and abstracts come from other people's files. They are shown with ``st.html``
(no markdown pass), and every piece of record text goes through ``html.escape``, so a
title holding ``<script>``, ``**bold**`` or ``[x](javascript:...)`` shows as those
characters and never runs or renders. The project's inclusion criteria are shown the
same way, and the colours of the Screen page's decision buttons are set here too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from ..store import Store

KEYWORDS_SETTING = "keywords"
CARD_FIELDS = ("id", "title", "abstract", "authors", "journal", "year", "pmid", "doi", "mesh_terms")
KINDS = ("include", "exclude")
TITLE_LIMIT = 80  # characters of a title named in a message
# Include green, Exclude red, Maybe left as Streamlit's neutral secondary button
DECISION_COLOURS = {"include": ("#1e7b34", "#176029"), "exclude": ("#c62828", "#a31f1f")}  # (fill, hover)
STALE_HIDDEN = ("decide_", "screen_pick_")  # widget keys of one record's decision controls
STYLE = """<style>
mark.kw-include { background: #c8f7c5; padding: 0 2px; }
mark.kw-exclude { background: #f9c9c9; padding: 0 2px; }
.record-title { font-size: 1.35rem; font-weight: 600; margin: 0 0 .3rem 0; }
.record-meta { color: #555; margin-bottom: .4rem; }
.record-abstract { line-height: 1.55; white-space: pre-wrap; }
.record-mesh { color: #444; font-size: .9rem; }
</style>"""


def clean_keywords(value: object) -> dict[str, list[str]]:
    """The ``keywords`` setting as {"include": [...], "exclude": [...]}, ignoring blanks and odd shapes."""
    value = value if isinstance(value, Mapping) else {}
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        words = value.get(kind) or []
        if isinstance(words, str):
            words = words.split(",")
        out[kind] = sorted({str(w).strip() for w in words if str(w).strip()}, key=str.lower)
    return out


def parse_keyword_lines(text: str) -> list[str]:
    """Keywords typed one per line or comma-separated."""
    return sorted({w.strip() for w in re.split(r"[\n,]", text) if w.strip()}, key=str.lower)


def keyword_pattern(keywords: Mapping[str, Iterable[str]]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One case-insensitive whole-word regex for all keywords (longest first), and word -> kind."""
    kinds: dict[str, str] = {}
    for kind in KINDS:
        for word in keywords.get(kind, []):
            kinds.setdefault(word.lower(), kind)
    if not kinds:
        return None, kinds
    words = sorted(kinds, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE), kinds


def highlight(text: str | None, keywords: Mapping[str, Iterable[str]]) -> str:
    """``text`` as escaped HTML with each keyword in ``<mark class="kw-include|kw-exclude">``.

    Matches are found in the raw text and each piece is escaped on its own, so a
    keyword can never match inside an HTML entity.
    """
    text = text or ""
    pattern, kinds = keyword_pattern(keywords)
    if pattern is None:
        return html.escape(text)
    parts: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        parts.append(html.escape(text[last : m.start()]))
        kind = kinds[m.group(0).lower()]
        parts.append(f'<mark class="kw-{kind}">{html.escape(m.group(0))}</mark>')
        last = m.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def record_links(pmid: str | None, doi: str | None) -> str:
    """PubMed and DOI links as HTML, with the identifiers quoted into the URL."""
    links = []
    if pmid and str(pmid).strip().isdigit():
        links.append(f'<a href="https://pubmed.ncbi.nlm.nih.gov/{pmid.strip()}/" target="_blank">PubMed {pmid}</a>')
    if doi and doi.strip():
        url = "https://doi.org/" + quote(doi.strip(), safe="/:;()._-")
        links.append(f'<a href="{html.escape(url)}" target="_blank">DOI {html.escape(doi.strip())}</a>')
    return " · ".join(links)


def authors_line(authors: list[str] | None, limit: int = 12) -> str:
    authors = authors or []
    shown = ", ".join(authors[:limit])
    return shown + (f", … ({len(authors)} authors)" if len(authors) > limit else "")


def record_html(record: Mapping[str, object], keywords: Mapping[str, Iterable[str]]) -> str:
    """The whole record card as safe HTML: title, journal and year, authors, links, abstract, MeSH."""
    title = highlight(str(record.get("title") or "(no title)"), keywords)
    meta = " · ".join(html.escape(str(v)) for v in (record.get("journal"), record.get("year")) if v not in (None, ""))
    authors = html.escape(authors_line(list(record.get("authors") or [])))  # type: ignore[arg-type]
    abstract = highlight(str(record.get("abstract") or "(no abstract)"), keywords)
    mesh_terms = list(record.get("mesh_terms") or [])  # type: ignore[arg-type]
    mesh = highlight("; ".join(str(m) for m in mesh_terms), keywords) if mesh_terms else ""
    links = record_links(record.get("pmid"), record.get("doi"))  # type: ignore[arg-type]
    return (
        f"{STYLE}<div class='record'>"
        f"<div class='record-title' id='record-title'>{title}</div>"
        f"<div class='record-meta'>{meta}</div>"
        f"<div class='record-meta'>{authors}</div>"
        f"<div class='record-meta'>{links}</div>"
        f"<div class='record-abstract'>{abstract}</div>"
        + (f"<p class='record-mesh'><b>MeSH:</b> {mesh}</p>" if mesh else "")
        + "</div>"
    )


def short_title(title: str | None, record_id: int, limit: int = TITLE_LIMIT) -> str:
    """A record's title in quotes for a message, cut at ``limit`` characters; "record N" when it has none."""
    title = " ".join(str(title or "").split())
    if not title:
        return f"record {record_id}"
    return f"“{title[:limit].rstrip()}…”" if len(title) > limit else f"“{title}”"


def criteria_html(criteria: str) -> str:
    """The project's inclusion criteria as a safe HTML panel (line breaks kept)."""
    return (
        "<style>.criteria { border-left: 4px solid #1e7b34; padding: .2rem .8rem; }"
        ".criteria-head { font-weight: 600; margin-bottom: .3rem; }"
        ".criteria-text { white-space: pre-wrap; line-height: 1.5; font-size: .95rem; }</style>"
        "<div class='criteria' id='criteria'><div class='criteria-head'>Inclusion criteria</div>"
        f"<div class='criteria-text'>{html.escape(criteria.strip())}</div></div>"
    )


def decision_bar_css(colours: Mapping[str, tuple[str, str]] = DECISION_COLOURS) -> str:
    """CSS colouring the decision buttons by their widget keys (``decide_<value>_<record id>``).

    Streamlit gives each keyed widget's container the class ``st-key-<key>``; the rule
    matches the start of the key, so it holds for every record.
    """
    rules = []
    for value, (fill, hover) in colours.items():
        button = f"[class*='st-key-decide_{value}_'] button"
        rules.append(f"{button} {{ background-color: {fill}; border-color: {fill}; color: #fff; }}")
        rules.append(
            f"{button}:hover, {button}:focus {{ background-color: {hover}; border-color: {hover}; color: #fff; }}"
        )
    # While Streamlit redraws, the previous run's elements linger marked data-stale: the previous
    # record's buttons and reasons are hidden (and unclickable) at once rather than faded out
    stale = ", ".join(
        f"[data-stale='true']{inner}[class*='st-key-{key}']" for key in STALE_HIDDEN for inner in ("", " ")
    )
    rules.append(f"{stale} {{ visibility: hidden; pointer-events: none; }}")
    return "<style>" + "\n".join(rules) + "</style>"


def record_fields(store: Store, record_id: int) -> dict[str, object]:
    """The fields a record card shows, read from the store."""
    record = store.get_record(record_id)
    return {name: getattr(record, name) for name in CARD_FIELDS}


def record_card(store: Store, record_id: int) -> str:
    """A record as safe HTML, highlighted with the project's keywords."""
    return record_html(record_fields(store, record_id), clean_keywords(store.get_setting(KEYWORDS_SETTING)))
