"""PubMed through NCBI E-utilities: a polite, patient HTTP client.

``EutilsClient`` speaks esearch and efetch with Biopython's Entrez conventions
(``db``, ``term``, ``usehistory``, ``WebEnv``, ``query_key``, ``retstart``, ``retmax``,
``tool``, ``email``, ``api_key``) over a ``requests`` session, because ``Bio.Entrez``
has no timeout, no back-off on 429/5xx and no base-URL setting. Each client:

- waits between requests so it sends at most 3 per second (10 with an API key);
- gives every request an explicit timeout (``DEFAULT_TIMEOUT``);
- retries, with exponential back-off and jitter and honouring ``Retry-After``, on
  429, 5xx, connection errors, timeouts, truncated or invalid XML, ``<ERROR>``
  bodies, and efetch batches holding fewer records than asked for.

Errors (all :class:`~screening.errors.SourceError`)::

    SourceError                 a request failed after every retry, or was refused
    └── HistoryExpired          NCBI no longer knows the WebEnv/query_key: search again

The search itself (slicing, batches, resume, search log) is in
:mod:`screening.sources.pubmed_search`; its public functions are re-exported here.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import requests
from lxml import etree

from .. import __version__
from ..errors import ConfigError, ImportFormatError, SourceError
from . import Citation
from .pubmed_xml import parse_pubmed_xml

if TYPE_CHECKING:
    from ..store import Store

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
DEFAULT_TOOL = "screening"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_TIMEOUT = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF = 1.0  # seconds before the first retry; doubles each time
MAX_BACKOFF = 120.0
MAX_RETRY_AFTER = 600.0
RATE_WITHOUT_KEY = 3.0  # requests per second, NCBI's rule
RATE_WITH_KEY = 10.0
MAX_BATCH = 500  # records per efetch
ESEARCH_CEILING = 9_999  # esearch returns at most this many ids of one query
POST_ABOVE_IDS = 200  # efetch by id switches to POST for longer id lists
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

EMAIL_ENV = "NCBI_EMAIL"
API_KEY_ENV = "NCBI_API_KEY"
EUTILS_URL_ENV = "SCREENING_EUTILS_URL"
EMAIL_SETTING = "ncbi_email"
API_KEY_SETTING = "ncbi_api_key"
EUTILS_URL_SETTING = "eutils_url"

_ERROR = re.compile(rb"<ERROR>(.*?)</ERROR>", re.DOTALL)
_HISTORY_GONE = re.compile(r"unable to obtain query|cannot retrieve (history|query)|webenv|query.?key", re.I)
T = TypeVar("T")


class HistoryExpired(SourceError):
    """NCBI no longer holds the search history (WebEnv/query_key); run the search again."""


class _Retryable(Exception):
    """A failure worth another try; ``retry_after`` is the server's wish, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None, partial: Any = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.partial = partial


# -- secrets -------------------------------------------------------------------


def mask_email(email: str | None) -> str:
    """``a***@example.org``: enough to recognise, not enough to harvest."""
    if not email:
        return "(none)"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else f"{local[:1]}***"


def mask_key(key: str | None) -> str:
    """``abcd…``: the first four characters of an API key."""
    return f"{key[:4]}…" if key else "(none)"


@dataclass(frozen=True)
class EutilsConfig:
    """Where to send requests and who is asking; resolved from options, env, then settings."""

    base_url: str = DEFAULT_EUTILS_URL
    email: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        masked = f"email={mask_email(self.email)!r}, api_key={mask_key(self.api_key)!r}"
        return f"EutilsConfig(base_url={self.base_url!r}, {masked})"


def resolve_config(
    store: Store | None = None,
    *,
    email: str | None = None,
    api_key: str | None = None,
    eutils_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> EutilsConfig:
    """Each value from its option, else its environment variable, else the project setting."""
    env = os.environ if env is None else env

    def pick(option: str | None, var: str, setting: str) -> str | None:
        for value in (option, env.get(var), store.get_setting(setting) if store is not None else None):
            if value and str(value).strip():
                return str(value).strip()
        return None

    url = pick(eutils_url, EUTILS_URL_ENV, EUTILS_URL_SETTING) or DEFAULT_EUTILS_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--eutils-url: {url!r} is not an http(s) URL")
    email_value = pick(email, EMAIL_ENV, EMAIL_SETTING)
    if not email_value or "@" not in email_value:
        raise ConfigError(
            f"NCBI asks every E-utilities user for a contact email: pass --email, set {EMAIL_ENV}, "
            f"or store the project setting {EMAIL_SETTING!r}"
            + (f" (got {mask_email(email_value)!r})" if email_value else "")
        )
    return EutilsConfig(
        base_url=url if url.endswith("/") else url + "/",
        email=email_value,
        api_key=pick(api_key, API_KEY_ENV, API_KEY_SETTING),
    )


# -- rate limiting ---------------------------------------------------------------


class RateLimiter:
    """Spaces request starts at least ``1/rate`` seconds apart (per client, thread-safe)."""

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if rate <= 0:
            raise ConfigError(f"rate: must be positive requests per second, got {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


# -- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class EsearchResult:
    """One esearch answer: the count, the ids it listed, and the history handle."""

    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    translation: str
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class FetchedBatch:
    """One efetch answer: the raw XML (the audit trail) and its parsed citations."""

    raw: bytes = field(repr=False)
    citations: list[Citation]
    expected: int
    attempts: int = 1

    @property
    def short(self) -> bool:
        """Fewer records than asked for, even after every retry."""
        return len(self.citations) < self.expected


def error_messages(data: bytes) -> list[str]:
    """The texts of top-level ``<ERROR>`` elements an E-utilities answer carries."""
    return [m.decode("utf-8", "replace").strip() for m in _ERROR.findall(data[:8192])]


def _check_errors(data: bytes, endpoint: str) -> None:
    messages = error_messages(data)
    if not messages:
        return
    text = "; ".join(messages)
    if _HISTORY_GONE.search(text):
        raise HistoryExpired(f"{endpoint}: NCBI search history expired: {text}")
    raise _Retryable(f"{endpoint}: NCBI answered with an error: {text}")


def parse_esearch(data: bytes, *, origin: str = "esearch") -> EsearchResult:
    """Count, ids, WebEnv and QueryKey of an esearch answer; ``ImportFormatError`` if malformed."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise ImportFormatError(origin, f"line {e.lineno}", None, f"invalid XML: {e.msg}") from e
    if root.tag != "eSearchResult":
        raise ImportFormatError(origin, None, None, f"not an esearch answer: the root element is <{root.tag}>")
    count = root.findtext("Count")
    if count is None or not count.strip().isdigit():
        raise ImportFormatError(origin, None, "Count", f"missing or not a number: {count!r}")
    return EsearchResult(
        count=int(count),
        ids=[str(i).strip() for i in root.xpath("IdList/Id/text()")],
        webenv=root.findtext("WebEnv"),
        query_key=root.findtext("QueryKey"),
        translation=root.findtext("QueryTranslation") or "",
        raw=data,
    )


# -- the client --------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class EutilsClient:
    """A configured E-utilities session. Use as a context manager; it closes its HTTP session."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_EUTILS_URL,
        email: str | None = None,
        api_key: str | None = None,
        tool: str = DEFAULT_TOOL,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        rate: float | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"max_retries: must be 0 or more, got {max_retries!r}")
        if backoff < 0:
            raise ConfigError(f"backoff: must be 0 or more seconds, got {backoff!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.email = email
        self.api_key = api_key
        self.tool = tool
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rate = rate or (RATE_WITH_KEY if api_key else RATE_WITHOUT_KEY)
        self._own_session = session is None
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"{tool}/{__version__} (python-requests)")
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.limiter = RateLimiter(self.rate, clock=clock, sleep=sleep)
        self.requests_sent = 0
        self.retries = 0

    @classmethod
    def from_config(cls, config: EutilsConfig, **kwargs: Any) -> EutilsClient:
        return cls(base_url=config.base_url, email=config.email, api_key=config.api_key, **kwargs)

    def __repr__(self) -> str:
        return (
            f"EutilsClient(base_url={self.base_url!r}, email={mask_email(self.email)!r}, "
            f"api_key={mask_key(self.api_key)!r}, rate={self.rate:g}/s)"
        )

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> EutilsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------
    def _params(self, params: Mapping[str, Any]) -> dict[str, str]:
        out = {"tool": self.tool}
        if self.email:
            out["email"] = self.email
        if self.api_key:
            out["api_key"] = self.api_key
        out.update({k: str(v) for k, v in params.items() if v is not None})
        return out

    def scrub(self, text: str) -> str:
        """``text`` with this client's email and API key masked (NCBI echoes keys in errors)."""
        for secret, masked in ((self.api_key, mask_key(self.api_key)), (self.email, mask_email(self.email))):
            if secret:
                text = text.replace(secret, masked).replace(quote(secret), masked)
        return text

    def _send(self, endpoint: str, params: Mapping[str, Any], *, post: bool) -> bytes:
        """One HTTP exchange; transient failures become ``_Retryable``."""
        url = f"{self.base_url}{endpoint}.fcgi"
        self.limiter.wait()
        self.requests_sent += 1
        try:
            if post:
                response = self.session.post(url, data=self._params(params), timeout=self.timeout)
            else:
                response = self.session.get(url, params=self._params(params), timeout=self.timeout)
            body = response.content
        except requests.Timeout as e:
            raise _Retryable(f"{endpoint}: no answer within the timeout ({self.timeout}s)") from e
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise _Retryable(f"{endpoint}: connection failed: {type(e).__name__}") from e
        except requests.RequestException as e:
            raise SourceError(self.scrub(f"{endpoint}: request failed: {e}")) from e
        status = response.status_code
        if status in RETRY_STATUSES:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise _Retryable(f"{endpoint}: HTTP {status}", retry_after=wait)
        if status >= 400:
            _check_errors(body, endpoint)
            text = body[:300].decode("utf-8", "replace")
            raise SourceError(self.scrub(f"{endpoint}: HTTP {status} from {url}: {text}"))
        return body

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with equal jitter, never shorter than Retry-After."""
        base = min(self.max_backoff, self.backoff * 2**attempt)
        delay = base / 2 + self._rng.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def call(
        self, endpoint: str, params: Mapping[str, Any], validate: Callable[[bytes], T], *, post: bool = False
    ) -> tuple[T, int]:
        """Send until ``validate`` accepts the body; returns (its result, attempts made).

        ``validate`` raises ``_Retryable`` or ``ImportFormatError`` for a bad body. When
        the last retry still fails with a partial result attached, that result is returned.
        """
        last: _Retryable | ImportFormatError | None = None
        partial: Any = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
                self._sleep(self._delay(attempt - 1, getattr(last, "retry_after", None)))
            try:
                body = self._send(endpoint, params, post=post)
                _check_errors(body, endpoint)
                return validate(body), attempt + 1
            except (_Retryable, ImportFormatError) as e:
                last = e
                partial = getattr(e, "partial", None) or partial
        if partial is not None:
            return partial, self.max_retries + 1
        raise SourceError(self.scrub(f"{endpoint} failed after {self.max_retries + 1} attempts: {last}")) from last

    # -- E-utilities -----------------------------------------------------------
    def esearch(
        self,
        term: str,
        *,
        db: str = "pubmed",
        mindate: str | None = None,
        maxdate: str | None = None,
        datetype: str | None = None,
        retmax: int = 0,
        usehistory: bool = True,
    ) -> EsearchResult:
        """Run a query; with ``usehistory`` NCBI keeps the result set for efetch."""
        params = {
            "db": db,
            "term": term,
            "retmax": retmax,
            "usehistory": "y" if usehistory else None,
            "mindate": mindate,
            "maxdate": maxdate,
            "datetype": datetype if (mindate or maxdate) else None,
        }
        result, _ = self.call("esearch", params, lambda body: parse_esearch(body), post=len(term) > 1500)
        return result

    def efetch_history(
        self, webenv: str, query_key: str, *, retstart: int, retmax: int, expected: int, db: str = "pubmed"
    ) -> FetchedBatch:
        """Records ``retstart``.. of a stored search, checked against ``expected``."""
        if not 0 < retmax <= MAX_BATCH:
            raise ConfigError(f"retmax: must be 1..{MAX_BATCH}, got {retmax!r}")
        params = {
            "db": db,
            "WebEnv": webenv,
            "query_key": query_key,
            "retstart": retstart,
            "retmax": retmax,
            "retmode": "xml",
        }
        origin = f"efetch retstart={retstart}"
        return self._fetch(params, expected, origin, post=False)

    def efetch_ids(self, ids: list[str], *, db: str = "pubmed") -> FetchedBatch:
        """Records by PMID (at most ``MAX_BATCH``), checked against the number asked for."""
        if not 0 < len(ids) <= MAX_BATCH:
            raise ConfigError(f"ids: give 1..{MAX_BATCH} PMIDs, got {len(ids)}")
        params = {"db": db, "id": ",".join(ids), "retmode": "xml"}
        return self._fetch(params, len(ids), f"efetch of {len(ids)} PMIDs", post=len(ids) > POST_ABOVE_IDS)

    def _fetch(self, params: dict[str, Any], expected: int, origin: str, *, post: bool) -> FetchedBatch:
        def validate(body: bytes) -> FetchedBatch:
            batch = FetchedBatch(raw=body, citations=parse_pubmed_xml(body, origin=origin), expected=expected)
            if batch.short:
                raise _Retryable(f"{origin}: {len(batch.citations)} records, asked for {expected}", partial=batch)
            return batch

        batch, attempts = self.call("efetch", params, validate, post=post)
        return FetchedBatch(raw=batch.raw, citations=batch.citations, expected=expected, attempts=attempts)


def __getattr__(name: str) -> Any:
    """Re-export the search functions, which live in ``pubmed_search`` (it imports this module)."""
    from . import pubmed_search

    if name in pubmed_search.__all__:
        return getattr(pubmed_search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
