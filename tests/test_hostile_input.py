"""Messy real files (issue 13): no study lost, no field garbled, round trips that keep every field.

Each case is a small file under tests/fixtures/hostile/, cut from real records, with the
outcome a reviewer would expect.
"""

from __future__ import annotations

from pathlib import Path

from screening.dedupe import dedupe, judge_pair
from screening.export import write_ris
from screening.ingest import import_file
from screening.queries import export_rows
from screening.sources.files import read_file
from screening.store import init_project

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
# two articles of one issue of Statistics in Medicine (synergy_Smid_2020, records 271 and 1599), whose Wiley
# SICI DOIs are the same up to the "<": cut there, they were one DOI and merged as exact duplicates
SICI = (
    "10.1002/1097-0258(20010215)20:3<435::aid-sim804>3.0.co;2-e",
    "10.1002/1097-0258(20010215)20:3<453::aid-sim803>3.0.co;2-l",
)


def test_sici_dois_are_read_whole_and_two_articles_stay_two(tmp_path: Path) -> None:
    assert tuple(c.doi.lower() for c in read_file(HOSTILE / "sici_dois.ris")) == SICI
    with init_project(tmp_path / "p.db", name="SICI") as store:
        import_file(store, HOSTILE / "sici_dois.ris", source_name="Wiley")
        dedupe(store)
        rows = list(export_rows(store))
        assert tuple(row["doi"] for row in rows) == SICI  # two records, each with its own DOI
        write_ris(rows, tmp_path / "out.ris")
    assert tuple(c.doi.lower() for c in read_file(tmp_path / "out.ris")) == SICI  # and back again


# OWASP's CSV injection cases, on the titles of real records (the Cohen 2006 Estrogens review)
FORMULAS = ('=HYPERLINK("http://x")', "+1 ", "-2 ", "@SUM(A1) ", "\tTabbed ", "'=quoted ", "''+twice ")


def test_csv_exports_are_safe_in_spreadsheets_and_round_trip(tmp_path: Path) -> None:
    import csv
    import gzip

    from screening.ingest import add_citations, new_source
    from screening.sources import Citation

    with gzip.open(Path(__file__).parent / "fixtures" / "prisma" / "cohen2006_Estrogens.csv.gz", "rt") as f:
        real = [row["title"] for _, row in zip(range(len(FORMULAS)), csv.DictReader(f), strict=False)]
    titles = [start + title for start, title in zip(FORMULAS, real, strict=True)]
    with init_project(tmp_path / "a.db", name="formulas") as store:
        with store.begin() as s:
            add_citations(
                s, new_source(s, name="PubMed"), [Citation(title=t, journal="=cmd|' /C calc'!A0") for t in titles]
            )
        from screening.export import write_csv

        write_csv(export_rows(store), tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]  # nothing a spreadsheet would run
    assert "'" + titles[0] in cells and "'''+twice " + real[6] in cells
    back = list(read_file(tmp_path / "out.csv"))
    assert [c.title for c in back] == titles  # lossless, the tab included
    assert {c.journal for c in back} == {"=cmd|' /C calc'!A0"}


# what a title or abstract may hold that BibTeX reads as syntax: lone and unbalanced braces among them
BIBTEX_HOSTILE = ("A lone { brace", "Closing } first { then", "50% & $5 #1 a_b ~c ^d \\ e", "{{{", "}")


def _unescape(value: str) -> str:
    """Our BibTeX escapes undone (the test's own inverse of screening.export's table)."""
    from screening.export import _BIBTEX_SPECIAL

    for plain, escaped in sorted(_BIBTEX_SPECIAL.items(), key=lambda kv: -len(kv[1])):
        value = value.replace(escaped, plain)
    return value


def test_bibtex_exports_read_back_whole_in_pybtex_and_bibtexparser(tmp_path: Path) -> None:
    import bibtexparser
    from pybtex.database import parse_file

    from screening.export import write_bibtex
    from screening.ingest import add_citations, new_source
    from screening.sources import Citation

    records = list(read_file(HOSTILE / "sici_dois.ris"))  # real records, then the hostile text around them
    citations = [
        Citation(title=f"{text} {records[i % 2].title}", abstract=f"{records[i % 2].abstract} {text}", journal="J")
        for i, text in enumerate(BIBTEX_HOSTILE)
    ]
    with init_project(tmp_path / "b.db", name="bibtex") as store:
        with store.begin() as s:
            add_citations(s, new_source(s, name="PubMed"), citations)
        rows = list(export_rows(store))
    assert write_bibtex(rows, tmp_path / "out.bib") == len(BIBTEX_HOSTILE)
    by_pybtex = parse_file(str(tmp_path / "out.bib"), "bibtex").entries
    by_parser = bibtexparser.parse_file(str(tmp_path / "out.bib"))
    assert not by_parser.failed_blocks
    assert sorted(by_pybtex) == sorted(e.key for e in by_parser.entries) == sorted(f"rec{r['id']}" for r in rows)
    for row in rows:
        key = f"rec{row['id']}"
        assert _unescape(by_pybtex[key].fields["title"]) == row["title"]
        assert _unescape(by_parser.entries_dict[key]["abstract"]) == row["abstract"]


def _twins(tmp_path: Path):
    """The Estrogens review from PubMed and from OpenAlex, deduplicated for real; the store and its merged pairs."""
    from screening.schema import DuplicatePair

    fixtures = Path(__file__).parent / "fixtures" / "dedupe"
    store = init_project(tmp_path / "twins.db", name="twins")
    import_file(store, fixtures / "cohen2006_Estrogens.csv.gz", source_name="PubMed")
    import_file(store, fixtures / "synergy_Nelson_2002.csv.gz", source_name="OpenAlex")
    dedupe(store)
    from sqlalchemy import select

    with store.read() as s:
        pairs = list(s.scalars(select(DuplicatePair).where(DuplicatePair.status == "merged")))
    return store, pairs


def _group(store, record_id: int) -> int:
    from screening.schema import Record

    with store.read() as s:
        record = s.get(Record, record_id)
        return record.canonical_id or record.id


def test_judging_a_merged_pair_distinct_splits_it_for_good(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from screening import decisions as d
    from screening.cli import app
    from screening.prisma import prisma_counts
    from screening.reviewers import add_reviewer

    store, pairs = _twins(tmp_path)
    groups = {}
    for p in pairs:
        groups.setdefault(_group(store, p.record_id), []).append(p)
    pair = next(ps[0] for ps in groups.values() if len(ps) == 1)  # a twin pair, nothing else in its group
    canonical, other = sorted((pair.record_id, pair.other_id))
    add_reviewer(store, "alice")
    d.decide(store, canonical, "include", reviewer="alice", revise=True)  # over the imported label
    duplicates = prisma_counts(store).duplicates
    result = CliRunner().invoke(
        app, ["dedupe", "--db", str(tmp_path / "twins.db"), "--different", str(pair.id), "--reviewer", "ana"]
    )
    assert result.exit_code == 0, result.output
    assert _group(store, canonical) == canonical and _group(store, other) == other  # two groups now
    assert d.record_status(store, canonical).title_abstract.value == "include"  # the decision stays with its group
    assert d.record_status(store, other).title_abstract.kind == "prior"  # the twin keeps its own imported label
    assert prisma_counts(store).duplicates == duplicates - 1
    dedupe(store)  # the same DOI and title: a re-run keeps them apart for good
    assert _group(store, other) == other
    result = CliRunner().invoke(app, ["dedupe", "--db", str(tmp_path / "twins.db"), "--same", str(pair.id)])
    assert result.exit_code == 0 and _group(store, other) == canonical  # and a change of mind joins them again
    again = CliRunner().invoke(app, ["dedupe", "--db", str(tmp_path / "twins.db"), "--same", str(pair.id)])
    assert again.exit_code == 0  # judging a merged pair the same is no error


def test_splitting_a_chain_regroups_the_rest_and_refuses_a_cycle(tmp_path: Path) -> None:
    """Three records of one study: 1 and 2 share a PMID, 2 and 3 a DOI. Judging 1~2 distinct leaves 2~3 a group;
    with a third link 1~3 (a reviewer's earlier --same), 1 and 2 stay joined through 3: refused, naming the links."""
    import pytest
    from sqlalchemy import select

    from screening.errors import DedupeError
    from screening.ingest import add_citations, new_source
    from screening.schema import DuplicatePair
    from screening.sources import Citation

    def project(name: str) -> tuple:
        store = init_project(tmp_path / f"{name}.db", name=name)
        sources = (("PubMed", {"pmid": "9"}), ("Embase", {"pmid": "9", "doi": "10.1/x"}), ("Scopus", {"doi": "10.1/x"}))
        for source, fields in sources:
            with store.begin() as s:
                add_citations(s, new_source(s, name=source), [Citation(title="Ketamine for migraine", **fields)])
        dedupe(store)
        with store.read() as s:
            merged = {frozenset((p.record_id, p.other_id)): p.id for p in s.scalars(select(DuplicatePair))}
        assert set(merged) == {frozenset((1, 2)), frozenset((2, 3))} and _group(store, 3) == 1
        return store, merged

    store, merged = project("chain")
    judge_pair(store, merged[frozenset((1, 2))], duplicate=False)
    assert (_group(store, 1), _group(store, 2), _group(store, 3)) == (1, 2, 2)
    dedupe(store)  # the shared PMID does not join 1 and 2 again
    assert (_group(store, 1), _group(store, 2), _group(store, 3)) == (1, 2, 2)

    store, merged = project("cycle")
    with store.begin() as s:
        s.add(DuplicatePair(record_id=1, other_id=3, method="fuzzy", score=0.9, status="merged", decided_by="ana"))
    with pytest.raises(DedupeError, match=r"also joined through other merged pairs \(1~3, 2~3\)"):
        judge_pair(store, merged[frozenset((1, 2))], duplicate=False)
    assert _group(store, 2) == 1  # nothing changed


def _cli(*args: str) -> tuple[int, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "screening", *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def test_databases_that_cannot_be_opened_are_one_line_errors(tmp_path: Path) -> None:
    import importlib.util

    (tmp_path / "notes.db").write_text("not a database\n", encoding="utf-8")
    (tmp_path / "folder.db").mkdir()
    cases = {
        "bogus://x": "no such database backend",
        str(tmp_path / "notes.db"): "file is not a database",
        str(tmp_path / "folder.db"): "unable to open database file",
        "postgresql+psycopg2://alice:secret@127.0.0.1:1/review": "Connection refused",
    }
    if importlib.util.find_spec("pg8000") is None:  # a driver this venv does not have
        cases["postgresql+pg8000://alice:secret@127.0.0.1/review"] = "driver is not installed (no module pg8000)"
    for db, says in cases.items():
        code, err = _cli("status", "--db", db)
        assert code == 1 and says in err and err.count("\n") == 1, (db, err)
        assert "Traceback" not in err and "secret" not in err  # and no password on screen


def test_ids_too_large_for_the_database_are_usage_errors(tmp_path: Path) -> None:
    with init_project(tmp_path / "p.db", name="ids"):
        pass
    too_big = str(2**63)
    for args in (
        ("history", too_big),
        ("dedupe", "--different", too_big),
        ("undo", "--reviewer", "x", "--decision", too_big),
    ):
        code, err = _cli(*args, "--db", str(tmp_path / "p.db"))
        assert code == 2 and "Invalid value" in err and "9223372036854775807" in err, (args, err)
        assert "Traceback" not in err


def test_an_empty_file_of_any_format_is_refused_and_adds_no_source(tmp_path: Path) -> None:
    import pytest

    from screening.errors import ImportFormatError

    files = {"empty.csv": "", "empty.ris": "", "empty.nbib": "", "header.csv": "title,abstract\n", "empty.tsv": ""}
    with init_project(tmp_path / "p.db", name="empty") as store:
        for name, text in files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
            with pytest.raises(ImportFormatError, match=f"{name}.*(no records in this|does not start like|unknown)"):
                import_file(store, tmp_path / name, source_name="Embase")
        assert store.counts().sources == 0 and store.counts().records == 0


ESTROGENS = Path(__file__).parent / "fixtures" / "prisma" / "cohen2006_Estrogens.csv.gz"


def _estrogens(rows: int) -> list[list[str]]:
    """The header and the first ``rows`` records of a real labelled review (Cohen 2006, Estrogens)."""
    import csv
    import gzip

    with gzip.open(ESTROGENS, "rt", encoding="utf-8", newline="") as f:
        return [row for _, row in zip(range(rows + 1), csv.reader(f), strict=False)]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_a_file_imported_twice_is_refused_naming_the_first_import_unless_again(tmp_path: Path) -> None:
    import gzip

    import pytest

    from screening.errors import AlreadyImported

    first = _write_csv(tmp_path / "embase.csv", _estrogens(30))
    (tmp_path / "copy.csv.gz").write_bytes(gzip.compress(first.read_bytes()))  # the same content, renamed and gzipped
    with init_project(tmp_path / "p.db", name="twice") as store:
        import_file(store, first, source_name="Embase")
        before = store.counts()
        for again in (first, tmp_path / "copy.csv.gz"):
            with pytest.raises(
                AlreadyImported, match=r"imported already, as source 1 \(Embase, embase.csv, .*30 records\)"
            ):
                import_file(store, again, source_name="Embase")
        assert store.counts() == before  # no source, no record, no prior decision added
        code, err = _cli("import", str(first), "--db", str(tmp_path / "p.db"), "--source", "Embase")
        assert code == 1 and "pass --again" in err and "Traceback" not in err
        code, _ = _cli("import", str(first), "--db", str(tmp_path / "p.db"), "--source", "Embase", "--again")
        assert code == 0 and store.counts().sources == 2 and store.counts().records == 60


KILL_IN_DEDUPE = """
import os, signal, sys
import screening.dedupe as dd
from screening.ingest import import_file
from screening.store import open_store

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # as a power cut or an OOM kill would, mid-transaction

store = open_store(sys.argv[1])
import_file(store, sys.argv[2], source_name="OpenAlex")
dd._fill_canonical = killed
dd.dedupe(store)
"""


def test_a_kill_during_the_dedupe_after_an_import_is_reported_then_finished_by_the_next_command(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    fixtures = Path(__file__).parent / "fixtures" / "dedupe"
    db = tmp_path / "p.db"
    with init_project(db, name="killed") as store:
        import_file(store, fixtures / "cohen2006_Estrogens.csv.gz", source_name="PubMed")
        dedupe(store)
    child = subprocess.run(
        [sys.executable, "-c", KILL_IN_DEDUPE, str(db), str(fixtures / "synergy_Nelson_2002.csv.gz")], timeout=120
    )
    assert child.returncode == -9
    with init_project(tmp_path / "whole.db", name="whole") as whole:  # the same imports, deduplicated in full
        import_file(whole, fixtures / "cohen2006_Estrogens.csv.gz", source_name="PubMed")
        import_file(whole, fixtures / "synergy_Nelson_2002.csv.gz", source_name="OpenAlex")
        dedupe(whole)
        expected = whole.counts()
    from screening.store import open_store

    with open_store(db) as store:
        assert store.counts().records == expected.records and store.counts().duplicates == 0  # imported, not deduped
    status = subprocess.run(
        [sys.executable, "-m", "screening", "status", "--db", str(db)], capture_output=True, text=True, timeout=120
    )
    assert "Not deduplicated yet: source 2 (OpenAlex, synergy_Nelson_2002.csv.gz)" in status.stdout
    code, err = _cli("rank", "--top", "1", "--db", str(db))
    assert code == 0 and "Finished the deduplication owed since the import of source 2 (OpenAlex" in err
    with open_store(db) as store:
        assert store.counts() == expected
    status = subprocess.run(
        [sys.executable, "-m", "screening", "status", "--db", str(db)], capture_output=True, text=True, timeout=120
    )
    assert "Not deduplicated" not in status.stdout


def test_a_stray_latin1_byte_garbles_nothing_but_its_own_line_and_is_reported(tmp_path: Path) -> None:
    from screening.sources import collecting_notices

    rows = _estrogens(6)
    rows[2][1] = "Français: " + rows[2][1]  # UTF-8, as the rest of the file
    rows[4][1] = "Caf\udce9 " + rows[4][1]  # one stray Latin-1 byte (0xE9) on line 5
    data = "\r\n".join(",".join(f'"{cell}"' for cell in row) for row in rows).encode("utf-8", "surrogateescape")
    (tmp_path / "mixed.csv").write_bytes(b"\xef\xbb\xbf" + data + b"\r\n")  # with a BOM, honoured
    with collecting_notices() as notes:
        titles = [c.title for c in read_file(tmp_path / "mixed.csv")]
    assert titles[1].startswith("Français: ") and titles[3].startswith("Café ")
    assert next(c.source_record_id for c in read_file(tmp_path / "mixed.csv")) == "1"  # no BOM in the header
    assert [str(n) for n in notes] == [
        f"{tmp_path / 'mixed.csv'}: line 5: 1 line is not valid UTF-8 and read as Windows-1252 (cp1252); "
        "check the accented letters there"
    ]
    with init_project(tmp_path / "p.db", name="mixed") as store:
        result = import_file(store, tmp_path / "mixed.csv", source_name="Embase")
        assert [n.where for n in result.notices] == ["line 5"]


def test_utf16_without_a_bom_is_detected(tmp_path: Path) -> None:
    rows = _estrogens(3)
    rows[1][1] = "Müller κ " + rows[1][1]
    text = "\r\n".join(",".join(f'"{cell}"' for cell in row) for row in rows) + "\r\n"
    for codec in ("utf-16-le", "utf-16-be"):
        (tmp_path / f"{codec}.csv").write_bytes(text.encode(codec))
        assert [c.title for c in read_file(tmp_path / f"{codec}.csv")] == [row[1] for row in rows[1:]]


def test_nul_characters_are_removed_and_said(tmp_path: Path) -> None:
    rows = _estrogens(3)
    rows[2][1] = rows[2][1][:10] + "\x00" + rows[2][1][10:]
    with init_project(tmp_path / "p.db", name="nul") as store:
        result = import_file(store, _write_csv(tmp_path / "nul.csv", rows), source_name="Embase")
        assert [(n.where, n.field) for n in result.notices] == [("line 3", "title")]
        assert "1 NUL character(s) removed" in str(result.notices[0])
        assert [r["title"] for r in export_rows(store)][1] == rows[2][1].replace("\x00", "")


PEAK_RSS = """
import resource, sys
from screening.cli import app
try:
    app(["rank", "--db", sys.argv[1]], standalone_mode=False)
finally:
    print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _rank_peak_kib(db: Path) -> int:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(db)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.rsplit("PEAK", 1)[1])


def test_a_50_mb_field_is_cut_with_a_notice_and_ranking_memory_stays_bounded(tmp_path: Path) -> None:
    from screening.ingest import FIELD_CAPS

    rows = _estrogens(200)
    plain = _write_csv(tmp_path / "plain.csv", rows)
    words = rows[5][2].split()
    rows[5][2] = " ".join(words[i % len(words)] + str(i % 9973) for i in range(6_000_000))[: 50 * 2**20]
    giant = _write_csv(tmp_path / "giant.csv", rows)  # > 4 MB: parsed in the parser process, notices sent back
    with init_project(tmp_path / "giant.db", name="giant") as store:
        result = import_file(store, giant, source_name="Embase")
        (note,) = result.notices
        assert (note.where, note.field) == ("line 6", "abstract")
        assert f"52,428,800 characters cut to the first {FIELD_CAPS['abstract']:,}" in note.message
        assert len([r for r in export_rows(store)][4]["abstract"]) == FIELD_CAPS["abstract"]
    with init_project(tmp_path / "plain.db", name="plain") as store:
        import_file(store, plain, source_name="Embase")
    # the giant record costs the ranking what a 1 MB abstract costs, not gigabytes (it took 4.7 GB uncut)
    assert _rank_peak_kib(tmp_path / "giant.db") < _rank_peak_kib(tmp_path / "plain.db") + 400 * 1024


def test_a_retraction_reaches_the_group_whichever_import_came_first(tmp_path: Path) -> None:
    from screening.prisma import prisma_counts
    from screening.ranking.project import live_record_ids

    retracted = HOSTILE / "pubmed_retracted.xml"
    (citation,) = read_file(retracted)
    assert citation.retracted
    with init_project(tmp_path / "ris.db", name="ris") as store, store.begin() as s:
        from screening.ingest import add_citations, new_source

        citation.pmid, citation.retracted = None, False  # Embase's copy: no PMID, no retraction flag
        add_citations(s, new_source(s, name="Embase"), [citation])
    write_ris(export_rows(store), tmp_path / "embase.ris")
    removed = {}
    for order in (("PubMed", "Embase"), ("Embase", "PubMed")):
        with init_project(tmp_path / f"{order[0]}.db", name="order") as store:
            for name in order:
                import_file(store, retracted if name == "PubMed" else tmp_path / "embase.ris", source_name=name)
            dedupe(store)
            counts = prisma_counts(store)
            removed[order] = (counts.duplicates, counts.excluded_other, live_record_ids(store).size)
    assert removed[("PubMed", "Embase")] == removed[("Embase", "PubMed")] == (1, 1, 0)


def test_the_system_reviewer_of_imported_labels_cannot_vote_resolve_or_undo(tmp_path: Path) -> None:
    import pytest

    from screening import decisions as d
    from screening.errors import DecisionError

    with init_project(tmp_path / "p.db", name="system") as store:
        import_file(store, _write_csv(tmp_path / "labels.csv", _estrogens(5)), source_name="Embase")
        for act in (
            lambda: d.decide(store, 2, "include", reviewer="import"),
            lambda: d.resolve(store, 2, "include", reviewer="import", stage="title_abstract"),
            lambda: d.undo(store, reviewer="import"),
            lambda: d.set_retrieval(store, 2, True, reviewer="import"),
        ):
            with pytest.raises(DecisionError, match="'import' is the system reviewer of imported labels"):
                act()


def test_formulas_in_columns_the_reader_does_not_use_and_preferred_duplicates_are_fine(tmp_path: Path) -> None:
    from openpyxl import Workbook

    rows = _estrogens(3)
    book = Workbook()
    sheet = book.active
    sheet.append(["Title", "Article Title", "Abstract", "Score"])  # "Title" is preferred to "Article Title"
    for row in rows[1:]:
        sheet.append([row[1], "", row[2], "=LEN(C2)"])  # a formula never calculated, in a column not read
    book.save(tmp_path / "scored.xlsx")
    assert [c.title for c in read_file(tmp_path / "scored.xlsx")] == [row[1] for row in rows[1:]]
    cached = read_file(HOSTILE / "tabular_cached_formula.xlsx")
    assert [c.title for c in cached][1] == "Oral micronized progesterone."  # the saved value, not the formula
