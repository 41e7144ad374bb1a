"""Time a whole PubMed search of a >9,999-record result against the local fake E-utilities server.

The server (tests/eutils_server.py) serves the 604 real MEDLINE citations replicated
with distinct PMIDs and dates to 10,872 records, so the search must slice by date.
Runs: no faults; a fault (503, truncated XML, reset, <ERROR>, short batch) on every
5th efetch; and no faults with deduplication, as a real search ends.

    python benchmarks/pubmed_fetch.py [--copies 17] [--rate 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from eutils_server import EutilsServer, Fault, load_corpus, synthetic_corpus  # noqa: E402

from screening.sources.pubmed import EutilsClient  # noqa: E402
from screening.sources.pubmed_search import search_pubmed  # noqa: E402
from screening.store import init_project  # noqa: E402

FAULTS = [Fault("status", status=503), Fault("truncate"), Fault("reset"), Fault("error"), Fault("short")]


def run(corpus: list, *, faulty: bool, deduplicate: bool, rate: float) -> list:
    with tempfile.TemporaryDirectory() as tmp, EutilsServer(corpus) as server:
        store = init_project(Path(tmp) / "bench.db", name="bench")
        for i, n in enumerate(range(5, 40, 5) if faulty else ()):
            server.plan("efetch", n, FAULTS[i % len(FAULTS)])
        with EutilsClient(base_url=server.url, email="bench@example.org", rate=rate, backoff=0.2) as client:
            start = time.perf_counter()
            out = search_pubmed(store, client, "psilocybin", deduplicate=deduplicate)
            seconds = time.perf_counter() - start
        store.close()
    return [out.count_retrieved, out.slices, client.requests_sent, client.retries, f"{seconds:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=17, help="replicas of the 604-record corpus")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second (NCBI: 10 with a key)")
    args = parser.parse_args()
    corpus = synthetic_corpus(load_corpus(), copies=args.copies)
    print("| run | records | slices | requests | retries | seconds |\n|---|---:|---:|---:|---:|---:|")
    runs = (
        ("no faults", False, False),
        ("a fault every 5th efetch", True, False),
        ("no faults, then deduplication", False, True),
    )
    for label, faulty, dedupe in runs:
        row = [label, *run(corpus, faulty=faulty, deduplicate=dedupe, rate=args.rate)]
        print("| " + " | ".join(map(str, row)) + " |", flush=True)


if __name__ == "__main__":
    main()
