"""Large files are parsed in a child process while the records are stored: same result, same errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from screening.errors import ImportFormatError
from screening.ingest import import_file
from screening.sources.files import PARALLEL_MIN_BYTES, read_file, read_file_parallel
from screening.store import Store


@pytest.fixture
def big_xml(tmp_path: Path, fixtures: Path) -> Path:
    """The 604 real MEDLINE citations, twice over with distinct PMIDs, uncompressed: over the threshold."""
    text = gzip.decompress((fixtures / "eutils" / "medline_604.xml.gz").read_bytes()).decode("utf-8")
    head, _, rest = text.partition("<PubmedArticle>")
    body, _, tail = ("<PubmedArticle>" + rest).rpartition("</PubmedArticleSet>")
    second = body.replace('<PMID Version="1">', '<PMID Version="1">9')
    path = tmp_path / "big.xml"
    path.write_text(head + body + second + "</PubmedArticleSet>" + tail, encoding="utf-8")
    assert path.stat().st_size > PARALLEL_MIN_BYTES
    return path


def test_parallel_reading_gives_the_same_citations(big_xml: Path) -> None:
    serial = list(read_file(big_xml))
    parallel = list(read_file_parallel(big_xml))
    assert len(parallel) == 1208
    assert parallel == serial


def test_a_broken_large_file_reports_where_and_imports_nothing(big_xml: Path, tmp_path: Path, store: Store) -> None:
    data = big_xml.read_bytes()
    broken = tmp_path / "broken.xml"
    broken.write_bytes(data[: len(data) * 3 // 4])  # cut mid-file, as a failed download would
    with pytest.raises(ImportFormatError) as err:
        import_file(store, broken, source_name="PubMed")
    assert err.value.path.endswith("broken.xml") and err.value.where.startswith("line ")
    assert store.counts().records == 0 and store.counts().sources == 0


def test_a_large_file_imports_fully(big_xml: Path, store: Store) -> None:
    result = import_file(store, big_xml, source_name="PubMed")
    assert result.count == 1208 == store.counts().records
