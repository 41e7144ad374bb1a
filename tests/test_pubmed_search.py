"""Whole PubMed searches against the fake server: every fault ends with exactly the right PMIDs."""

from __future__ import annotations

import gzip
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from eutils_server import Article, EutilsServer, Fault, load_corpus, synthetic_corpus
from sqlalchemy import select

from screening.errors import ConfigError, SourceError
from screening.schema import AuditEvent, Record, Source, SourceBatch
from screening.sources.pubmed import ESEARCH_CEILING, EutilsClient
from screening.sources.pubmed_search import (
    new_record_ids,
    resume_search,
    search_log,
    search_pubmed,
)
from screening.store import Store

EMAIL = "reviewer@example.org"
QUERY = "(psilocybin OR MDMA OR LSD OR ketamine) AND chronic pain"


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    return load_corpus()


@pytest.fixture
def server(corpus: list[Article]) -> EutilsServer:
    with EutilsServer(list(corpus)) as srv:
        yield srv


def make_client(server: EutilsServer, **kwargs: object) -> EutilsClient:
    options = {
        "base_url": server.url,
        "email": EMAIL,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "rate": 1000.0,
        "timeout": (2.0, 1.0),
    }
    options.update(kwargs)
    return EutilsClient(**options)  # type: ignore[arg-type]


def stored_pmids(store: Store) -> list[str]:
    with store.read() as s:
        return list(s.scalars(select(Record.pmid)))


def assert_exactly(store: Store, expected: set[str]) -> None:
    pmids = stored_pmids(store)
    duplicated = [p for p, n in Counter(pmids).items() if n > 1]
    assert not duplicated, f"PMIDs stored twice: {duplicated[:10]}"
    assert set(pmids) == expected


def run(store: Store, server: EutilsServer, **kwargs: object):
    client_options = {k: kwargs.pop(k) for k in ("max_retries",) if k in kwargs}
    with make_client(server, **client_options) as client:
        return search_pubmed(store, client, QUERY, batch_size=kwargs.pop("batch_size", 200), **kwargs)


def test_clean_search_stores_everything_with_its_trail(store: Store, server: EutilsServer) -> None:
    outcome = run(store, server)
    assert_exactly(store, server.pmids())
    assert (outcome.count_reported, outcome.count_retrieved, outcome.count_new) == (604, 604, 604)
    assert outcome.batches == 4 and not outcome.warnings
    assert all(int(r.params["retmax"]) <= 500 for r in server.of("efetch"))
    with store.read() as s:
        batches = s.scalars(select(SourceBatch).where(SourceBatch.source_id == outcome.source_id)).all()
        source = s.get(Source, outcome.source_id)
    raw = [gzip.decompress(b.payload) for b in batches if b.info["kind"] == "efetch"]
    assert sum(x.count(b"<PubmedArticle>") for x in raw) == 604
    assert source.status == "complete" and source.finished_at is not None and source.tool_version
    assert source.parameters["slices"][0]["done"] and source.parameters["batches_done"] == 4
    (entry,) = search_log(store)
    assert (entry.database, entry.query, entry.count_reported, entry.count_retrieved) == ("PubMed", QUERY, 604, 604)


FAULTS = {
    "429 with Retry-After": [("efetch", 2, Fault("status", status=429, retry_after=0.2))],
    "500": [("efetch", 1, Fault("status", status=500))],
    "502": [("efetch", 2, Fault("status", status=502))],
    "503 on esearch and efetch": [
        ("esearch", 2, Fault("status", status=503)),
        ("efetch", 3, Fault("status", status=503)),
    ],
    "connection reset": [("efetch", 2, Fault("reset")), ("esearch", 1, Fault("reset"))],
    "slower than the timeout": [("efetch", 1, Fault("slow", delay=2.5))],
    "truncated XML": [("efetch", 3, Fault("truncate")), ("esearch", 2, Fault("truncate"))],
    "HTML page": [("efetch", 2, Fault("html"))],
    "<ERROR> body": [("efetch", 1, Fault("error")), ("esearch", 1, Fault("error"))],
    "short batch": [("efetch", 2, Fault("short"))],
    "history expired": [("efetch", 3, Fault("expire"))],
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_each_fault_still_gives_exactly_the_reported_pmids(
    store: Store, server: EutilsServer, faults: list[tuple[str, int, Fault]]
) -> None:
    for endpoint, nth, fault in faults:
        server.plan(endpoint, nth, fault)
    outcome = run(store, server)
    assert not server.faults, "every planned fault was triggered"
    assert_exactly(store, server.pmids())
    assert outcome.count_retrieved == outcome.count_reported == 604 and not outcome.warnings


def test_history_expiry_runs_the_search_again(store: Store, server: EutilsServer) -> None:
    server.plan("efetch", 2, Fault("expire"))
    run(store, server)
    assert len(server.of("esearch")) == 3  # count, slice, slice again
    assert_exactly(store, server.pmids())


def test_persistently_short_batch_is_topped_up_by_pmid(store: Store, server: EutilsServer) -> None:
    for n in range(2, 5):  # the 2nd batch is short on every attempt
        server.plan("efetch", n, Fault("short"))
    outcome = run(store, server, max_retries=2)
    by_id = [r for r in server.of("efetch") if "id" in r.params]
    assert len(by_id) == 1 and len(by_id[0].params["id"].split(",")) == 1
    assert_exactly(store, server.pmids())
    assert outcome.count_retrieved == 604 and not outcome.warnings


def test_date_limits_are_sent_and_honoured(store: Store, server: EutilsServer) -> None:
    outcome = run(store, server, mindate="2015/10", maxdate="2015/11", datetype="edat")
    expected = server.pmids(mindate="2015/10/01", maxdate="2015/11/30")
    assert outcome.count_reported == len(expected) == 160
    assert_exactly(store, expected)
    sent = server.of("esearch")[0].params
    assert (sent["mindate"], sent["maxdate"], sent["datetype"]) == ("2015/10/01", "2015/11/30", "edat")
    assert search_log(store)[0].limits == "edat 2015/10/01–2015/11/30"


def test_bad_dates_are_refused_before_any_request(store: Store, server: EutilsServer) -> None:
    with pytest.raises(ConfigError, match="--mindate: '2015-13'"):
        run(store, server, mindate="2015-13")
    with pytest.raises(ConfigError, match="--datetype"):
        run(store, server, datetype="xdat")
    assert not server.requests


def test_zero_hits_is_a_complete_empty_search(store: Store, server: EutilsServer) -> None:
    with make_client(server) as client:
        outcome = search_pubmed(store, client, "abcXYZ[ti]")
    assert (outcome.count_reported, outcome.count_retrieved, outcome.batches) == (0, 0, 0)
    assert search_log(store)[0].status == "complete"


def test_living_review_update_adds_only_new_pmids(store: Store, server: EutilsServer, corpus: list[Article]) -> None:
    oldest = sorted(corpus, key=lambda a: (a.edat, a.pmid))[:400]
    server.corpus = oldest
    first = run(store, server)
    server.corpus = list(corpus)  # PubMed has grown since
    second = run(store, server)
    assert_exactly(store, server.pmids())
    assert (first.count_retrieved, first.count_new) == (400, 400)
    assert (second.count_reported, second.count_retrieved, second.count_new) == (604, 604, 204)
    with store.read() as s:
        new = set(s.scalars(select(Record.pmid).where(Record.id.in_(new_record_ids(store, second.source_id)))))
    assert new == {a.pmid for a in corpus} - {a.pmid for a in oldest}
    assert [e.count_new for e in search_log(store)] == [400, 204]


def test_network_outage_fails_cleanly_then_resumes(store: Store, server: EutilsServer) -> None:
    for n in range(2, 5):  # the 2nd batch fails on all three attempts
        server.plan("efetch", n, Fault("status", status=503))
    with pytest.raises(SourceError, match="efetch failed after 3 attempts"):
        run(store, server, max_retries=2)
    (entry,) = search_log(store)
    assert entry.status == "failed" and entry.count_retrieved == 200
    with pytest.raises(ConfigError, match="--resume"):
        run(store, server)
    with make_client(server) as client:
        outcome = resume_search(store, client)
    assert outcome.resumed and outcome.count_retrieved == 604
    assert_exactly(store, server.pmids())
    assert [e.status for e in search_log(store)] == ["complete"]


def test_ctrl_c_then_resume(store: Store, server: EutilsServer) -> None:
    def interrupt(done: int, total: int) -> None:
        if done >= 400:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), make_client(server) as client:
        search_pubmed(store, client, QUERY, batch_size=200, on_progress=interrupt)
    assert len(stored_pmids(store)) == 400
    server.expire_histories()  # hours later: NCBI has forgotten the WebEnv
    seen: list[tuple[int, int]] = []
    with make_client(server) as client:
        outcome = resume_search(store, client, query=QUERY, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (400, 604) and seen[-1] == (604, 604)
    assert_exactly(store, server.pmids())
    assert outcome.count_retrieved == 604 and len(search_log(store)) == 1


def test_secrets_are_never_stored(store: Store, server: EutilsServer, db_path: Path) -> None:
    with make_client(server, email="alice.smith@example.org", api_key="SECRET0123456789") as client:
        search_pubmed(store, client, QUERY)
    with store.read() as s:
        params = s.scalars(select(Source.parameters)).one()
        events = s.scalars(select(AuditEvent.detail)).all()
    assert params["email"] == "a***@example.org" and params["api_key"] == "SECR…"
    store.close()
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    assert "SECRET0123456789" not in dump and "alice.smith" not in dump and "alice.smith" not in str(events)


def test_more_than_9999_records_are_sliced_by_date(store: Store, corpus: list[Article]) -> None:
    big = synthetic_corpus(corpus, copies=17)
    assert len(big) > ESEARCH_CEILING
    with EutilsServer(big) as server:
        with make_client(server) as client:
            outcome = search_pubmed(store, client, QUERY, deduplicate=False)  # dedupe is tested elsewhere
        assert outcome.count_reported == len(big) and outcome.slices >= 2
        with store.read() as s:
            slices = s.scalars(select(Source.parameters)).one()["slices"]
        assert all(sl["count"] <= ESEARCH_CEILING for sl in slices)
        assert sum(sl["count"] for sl in slices) == len(big)
        listed = [r for r in server.of("esearch") if r.params.get("usehistory") == "y"]
        assert all(int(r.params["retmax"]) <= ESEARCH_CEILING for r in listed)
        assert_exactly(store, {a.pmid for a in big})
        assert outcome.count_retrieved == len(big) and not outcome.warnings
