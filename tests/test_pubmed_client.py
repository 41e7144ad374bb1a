"""The E-utilities client against the fake server: retries, back-off, rate limit, secrets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from eutils_server import NO_HITS_MARK, EutilsServer, Fault

from screening.errors import ConfigError, SourceError
from screening.sources.pubmed import (
    DEFAULT_EUTILS_URL,
    EutilsClient,
    HistoryExpired,
    RateLimiter,
    mask_email,
    mask_key,
    parse_esearch,
    resolve_config,
)
from screening.store import Store

EMAIL = "reviewer@example.org"


class RecordingSleep:
    """Really sleeps, and remembers how long it was asked to."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.calls.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def server() -> EutilsServer:
    with EutilsServer() as srv:
        yield srv


def make_client(server: EutilsServer, **kwargs: object) -> EutilsClient:
    options = {"base_url": server.url, "email": EMAIL, "backoff": 0.01, "max_backoff": 0.05, "rate": 1000.0}
    options.update(kwargs)
    return EutilsClient(**options)  # type: ignore[arg-type]


def test_parse_real_esearch_answers(fixtures: Path) -> None:
    history = parse_esearch((fixtures / "eutils/esearch2.xml").read_bytes())
    assert history.count == 42249
    assert history.webenv == "MCID_6927d6e7fee3e90f880ec190"
    assert history.query_key == "1"
    assert len(history.ids) == 100
    empty = parse_esearch((fixtures / "eutils/esearch8.xml").read_bytes())
    assert (empty.count, empty.ids, empty.webenv) == (0, [], None)


def test_esearch_sends_entrez_parameters(server: EutilsServer) -> None:
    with make_client(server, api_key="k3y-0123456789") as client:
        result = client.esearch("psilocybin AND pain", retmax=5)
    assert result.count == 604 and len(result.ids) == 5 and result.webenv and result.query_key == "1"
    sent = server.of("esearch")[0].params
    assert sent["tool"] == "screening" and sent["email"] == EMAIL and sent["api_key"] == "k3y-0123456789"
    assert sent["usehistory"] == "y" and sent["db"] == "pubmed"


def test_zero_hits(server: EutilsServer) -> None:
    with make_client(server) as client:
        assert client.esearch(f"{NO_HITS_MARK}[ti]").count == 0


def test_429_waits_at_least_retry_after(server: EutilsServer) -> None:
    server.plan("esearch", 1, Fault("status", status=429, retry_after=1))
    sleep = RecordingSleep()
    with make_client(server, sleep=sleep) as client:
        assert client.esearch("pain").count == 604
    assert client.retries == 1
    assert max(sleep.calls) >= 1.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(server: EutilsServer, status: int) -> None:
    server.plan("esearch", 1, Fault("status", status=status))
    server.plan("esearch", 2, Fault("status", status=status))
    with make_client(server) as client:
        assert client.esearch("pain").count == 604
    assert client.retries == 2


def test_gives_up_after_max_retries(server: EutilsServer) -> None:
    for n in range(1, 4):
        server.plan("esearch", n, Fault("status", status=503))
    with make_client(server, max_retries=2) as client, pytest.raises(SourceError, match=r"after 3 attempts.*HTTP 503"):
        client.esearch("pain")


def test_backoff_grows_exponentially_with_jitter() -> None:
    client = EutilsClient(email=EMAIL, backoff=1.0, max_backoff=100.0, rng=random.Random(0))
    delays = [client._delay(n, None) for n in range(5)]
    for n, d in enumerate(delays):
        assert 2**n / 2 <= d <= 2**n
    assert client._delay(0, 30.0) >= 30.0  # Retry-After wins over a shorter back-off


def test_history_expiry_is_its_own_error(server: EutilsServer) -> None:
    with make_client(server) as client:
        found = client.esearch("pain")
        server.expire_histories()
        with pytest.raises(HistoryExpired, match="Unable to obtain query #1"):
            client.efetch_history(found.webenv, found.query_key, retstart=0, retmax=10, expected=10)


def test_efetch_by_id_posts_long_lists(server: EutilsServer) -> None:
    ids = sorted(server.pmids())[:300]
    with make_client(server) as client:
        batch = client.efetch_ids(ids)
    assert sorted(c.pmid for c in batch.citations) == ids
    assert server.of("efetch")[0].method == "POST"


def test_rate_limiter_spaces_requests() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(3.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == pytest.approx([1 / 3] * 3)
    now[0] += 5  # idle: no wait
    limiter.wait()
    assert len(slept) == 3


def test_rate_follows_the_api_key() -> None:
    assert EutilsClient(email=EMAIL).rate == 3.0
    assert EutilsClient(email=EMAIL, api_key="abcd1234").rate == 10.0


def test_secrets_are_masked() -> None:
    assert mask_email("alice.smith@example.org") == "a***@example.org"
    assert mask_key("0123456789abcdef") == "0123…"
    client = EutilsClient(email="alice.smith@example.org", api_key="0123456789abcdef")
    assert "alice.smith" not in repr(client) and "456789" not in repr(client)


def test_config_precedence_option_env_setting(store: Store) -> None:
    store.set_setting("ncbi_email", "setting@example.org")
    store.set_setting("eutils_url", "http://mirror.example.org/eutils")
    env = {"NCBI_EMAIL": "env@example.org", "NCBI_API_KEY": "envkey"}
    assert resolve_config(store, env={}).email == "setting@example.org"
    assert resolve_config(store, env=env).email == "env@example.org"
    config = resolve_config(store, email="opt@example.org", api_key="optkey", env=env)
    assert (config.email, config.api_key) == ("opt@example.org", "optkey")
    assert config.base_url == "http://mirror.example.org/eutils/"
    assert "optkey" not in repr(config)
    assert resolve_config(None, env={"NCBI_EMAIL": "a@b.org"}).base_url == DEFAULT_EUTILS_URL


def test_config_needs_an_email_and_a_url(store: Store) -> None:
    with pytest.raises(ConfigError, match="NCBI_EMAIL"):
        resolve_config(store, env={})
    with pytest.raises(ConfigError, match="--eutils-url"):
        resolve_config(store, email=EMAIL, eutils_url="ftp://x", env={})


def test_errors_never_show_the_key_or_the_email(server: EutilsServer) -> None:
    server.plan("esearch", 1, Fault("status", status=400))
    with (
        make_client(server, email="alice.smith@example.org", api_key="SECRET0123456789") as client,
        pytest.raises(SourceError) as raised,
    ):
        client.esearch("pain")
    assert '"api-key":"SECR…"' in str(raised.value)  # NCBI echoes the key; we mask it
    assert "SECRET0123456789" not in str(raised.value) and "alice.smith" not in str(raised.value)
