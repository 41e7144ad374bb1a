"""A scripted review on real data, from import to the PRISMA 2020 diagram.

The Estrogens drug class review exists twice in ../shared/datasets: from PubMed
(cohen2006_Estrogens, 368 records) and from OpenAlex (synergy_Nelson_2002, 366
records), copied to tests/fixtures/prisma. Both are imported as databases and
deduplicated for real. Two reviewers then screen titles and abstracts in blind
dual mode following the published labels, with deliberate disagreements that a
third reviewer resolves; full text follows with reasons. Every expected number
below is computed from this script, not read back from the output.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from screening import decisions as d
from screening.agreement import agreement
from screening.dedupe import dedupe
from screening.ingest import add_citations, new_source
from screening.prisma import check_identities, default_template, prisma_counts, to_json, to_template_csv
from screening.prisma_diagram import to_png, to_svg
from screening.reviewers import add_reason, add_reviewer, set_mode
from screening.schema import Record
from screening.sources import Citation
from screening.store import Store, init_project

FIXTURES = Path(__file__).parent / "fixtures" / "prisma"
SOURCES = (("PubMed", "cohen2006_Estrogens.csv.gz"), ("OpenAlex", "synergy_Nelson_2002.csv.gz"))
REASONS = ("Wrong population", "Wrong intervention", "Wrong study design")
SVG = "{http://www.w3.org/2000/svg}"


def _read(name: str) -> list[tuple[Citation, int]]:
    with gzip.open(FIXTURES / name, "rt", encoding="utf-8", newline="") as f:
        return [
            (
                Citation(
                    title=r["title"],
                    abstract=r["abstract"],
                    doi=r["doi"] or None,
                    pmid=r["pmid"] or None,
                    source_record_id=r["record_id"],
                ),
                int(r["label_included"]),
            )
            for r in csv.DictReader(f)
        ]


@dataclass
class Review:
    """The project and everything the script did, to compute expected numbers from."""

    store: Store
    identified: dict[str, int]
    duplicates: int
    removed_other: list[int]
    automated: list[int]
    screened: list[int]
    alice: dict[int, str] = field(default_factory=dict)
    bob: dict[int, str] = field(default_factory=dict)
    resolutions: dict[int, str] = field(default_factory=dict)
    ta_final: dict[int, str] = field(default_factory=dict)
    not_retrieved: list[int] = field(default_factory=list)
    ft_final: dict[int, tuple[str, str | None]] = field(default_factory=dict)


def _import(store: Store) -> tuple[dict[str, int], dict[int, int]]:
    identified, labels = {}, {}
    for name, file in SOURCES:
        rows = _read(file)
        with store.begin() as s:
            source = new_source(s, name=name, kind="database", file_name=file)
            ids = add_citations(s, source, [c for c, _ in rows]).record_ids
        identified[name] = len(rows)
        labels.update(zip(ids, (label for _, label in rows), strict=True))
    return identified, labels


def _group_labels(store: Store, labels: dict[int, int]) -> dict[int, int]:
    """Canonical record id -> 1 if any record of its group was included by the published review."""
    with store.read() as s:
        rows = s.execute(select(Record.id, Record.canonical_id)).all()
    groups: dict[int, int] = {}
    for rid, canonical in rows:
        group = canonical or rid
        groups[group] = max(groups.get(group, 0), labels[rid])
    return groups


def _screen_titles(review: Review, truth: dict[int, int]) -> None:
    """Alice is generous (every 8th irrelevant record goes on to full text); Bob disagrees now and then."""
    store = review.store
    for i, rid in enumerate(review.screened):
        review.alice[rid] = "include" if truth[rid] or i % 8 == 0 else "exclude"
        flip = i % 45 == 7
        review.bob[rid] = ("exclude" if review.alice[rid] == "include" else "include") if flip else review.alice[rid]
    review.bob[review.screened[100]] = "maybe"
    first = review.screened[0]
    wrong = "exclude" if review.alice[first] == "include" else "include"
    d.decide(store, first, wrong, reviewer="alice")
    d.undo(store, reviewer="alice")  # a slip, taken back
    for rid in review.screened:
        d.decide(store, rid, review.alice[rid], reviewer="alice", note="title/abstract")
        d.decide(store, rid, review.bob[rid], reviewer="bob")
    for conflict in d.conflicts(store, "title_abstract"):
        value = "include" if truth[conflict.record_id] else "exclude"  # carol reads it and follows the evidence
        d.resolve(store, conflict.record_id, value, reviewer="carol", stage="title_abstract")
        review.resolutions[conflict.record_id] = value
    for rid in review.screened:
        review.ta_final[rid] = review.resolutions.get(rid, review.alice[rid])


def _full_text(review: Review, truth: dict[int, int]) -> None:
    sought = [rid for rid in review.screened if review.ta_final[rid] == "include"]
    review.not_retrieved = [rid for rid in sought if not truth[rid]][:3]
    for i, rid in enumerate(sought):
        retrieved = rid not in review.not_retrieved
        d.set_retrieval(review.store, rid, retrieved, reviewer="alice")
        if not retrieved:
            continue
        if truth[rid]:
            review.ft_final[rid] = ("include", None)
            d.decide(review.store, rid, "include", reviewer="alice", stage="full_text")
        else:
            reason = REASONS[i % len(REASONS)]
            review.ft_final[rid] = ("exclude", reason)
            d.decide(review.store, rid, "exclude", reviewer="alice", stage="full_text", reason=reason)


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Review:
    store = init_project(tmp_path_factory.mktemp("review") / "estrogens.db", name="Estrogens (HRT) review")
    identified, labels = _import(store)
    result = dedupe(store)
    truth = _group_labels(store, labels)
    canonical = sorted(truth)
    irrelevant = [rid for rid in canonical if not truth[rid]]
    removed_other, automated = irrelevant[:2], irrelevant[2:6]
    with store.begin() as s:  # a retraction notice arrived for two records
        s.execute(update(Record).where(Record.id.in_(removed_other)).values(retracted=True))
    add_reviewer(store, "screening-bot", role="system")
    for rid in automated:
        d.decide(store, rid, "exclude", reviewer="screening-bot", kind="automation", note="classifier score < 0.01")
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "adjudicator")):
        add_reviewer(store, name, role=role)
    for reason in REASONS:
        add_reason(store, reason)
    set_mode(store, "title_abstract", "dual", blind=True)
    screened = [rid for rid in canonical if rid not in removed_other and rid not in automated]
    rev = Review(store, identified, result.duplicates, removed_other, automated, screened)
    _screen_titles(rev, truth)
    _full_text(rev, truth)
    yield rev
    store.close()


def _expected(review: Review) -> dict[str, object]:
    excluded_reasons: dict[str, int] = {}
    for value, reason in review.ft_final.values():
        if value == "exclude":
            excluded_reasons[reason] = excluded_reasons.get(reason, 0) + 1
    sought = sum(v == "include" for v in review.ta_final.values())
    return {
        "database_specific_results": review.identified,
        "database_results": sum(review.identified.values()),
        "duplicates": review.duplicates,
        "excluded_automatic": len(review.automated),
        "excluded_other": len(review.removed_other),
        "records_screened": len(review.screened),
        "records_excluded": sum(v == "exclude" for v in review.ta_final.values()),
        "dbr_sought_reports": sought,
        "dbr_notretrieved_reports": len(review.not_retrieved),
        "dbr_assessed": sought - len(review.not_retrieved),
        "dbr_excluded": excluded_reasons,
        "new_studies": sum(v == "include" for v, _ in review.ft_final.values()),
    }


def test_the_script_made_real_duplicates_conflicts_and_resolutions(review: Review) -> None:
    with review.store.read() as s:
        duplicates = s.scalar(select(func.count(Record.id)).where(Record.canonical_id.is_not(None)))
    assert duplicates == review.duplicates > 300  # PubMed and OpenAlex records of the same papers
    assert len(review.resolutions) >= 8
    assert d.conflicts(review.store, "title_abstract") == []


def test_prisma_counts_are_exact(review: Review) -> None:
    counts = prisma_counts(review.store)
    check_identities(counts)
    exp = _expected(review)
    assert dict(counts.databases) == exp["database_specific_results"]
    assert counts.database_results == exp["database_results"] == 734
    assert counts.register_results == 0 and counts.other_identified == 0
    assert counts.duplicates == exp["duplicates"]
    assert counts.excluded_automatic == exp["excluded_automatic"] == 4
    assert counts.excluded_other == exp["excluded_other"] == 2
    assert counts.records_screened == exp["records_screened"]
    assert counts.records_excluded == exp["records_excluded"]
    assert counts.dbr.sought == exp["dbr_sought_reports"]
    assert counts.dbr.not_retrieved == exp["dbr_notretrieved_reports"] == 3
    assert counts.dbr.assessed == exp["dbr_assessed"]
    assert dict(counts.dbr.excluded) == exp["dbr_excluded"]
    assert [r for r, _ in counts.dbr.excluded] == [r for r in REASONS if r in exp["dbr_excluded"]]
    assert counts.new_studies == counts.new_reports == exp["new_studies"]
    assert to_json(counts)["dbr"]["excluded_total"] == sum(exp["dbr_excluded"].values())


def test_current_labels_agree_with_the_script(review: Review) -> None:
    with review.store.read() as s:
        labels = d.current_labels(s, "title_abstract")
        full_text = d.current_labels(s, "full_text")
    expected = dict(review.ta_final) | {rid: "exclude" for rid in review.automated}
    assert labels == expected
    assert full_text == {rid: value for rid, (value, _) in review.ft_final.items()}


def test_agreement_of_the_two_reviewers(review: Review) -> None:
    from sklearn.metrics import cohen_kappa_score

    (pair,) = agreement(review.store, "title_abstract")
    both = [(review.alice[r], review.bob[r]) for r in review.screened if review.bob[r] != "maybe"]
    assert (pair.reviewer_a, pair.reviewer_b, pair.n, pair.maybe) == ("alice", "bob", len(both), 1)
    assert pair.agree == sum(a == b for a, b in both)
    assert pair.kappa == pytest.approx(cohen_kappa_score([a for a, _ in both], [b for _, b in both]))


def _box_texts(svg: str) -> dict[str, str]:
    root = ET.fromstring(svg.split("\n", 1)[1])
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        lines = [t.text or "" for t in group.iter(f"{SVG}text")]
        boxes[group.get("id")] = " ".join(" ".join(lines).split())
    return boxes


def test_the_svg_diagram_holds_each_box_text_and_number(review: Review) -> None:
    exp = _expected(review)
    boxes = _box_texts(to_svg(prisma_counts(review.store)))

    def n(value: object) -> str:
        return f"(n = {value:,})"

    wanted = {
        "box-identified": [
            "Records identified from:",
            f"Databases {n(exp['database_results'])}",
            *(f"{name} {n(k)}" for name, k in review.identified.items()),
            "Registers (n = 0)",
        ],
        "box-removed": [
            f"Duplicate records {n(exp['duplicates'])}",
            f"Records marked as ineligible by automation tools {n(exp['excluded_automatic'])}",
            f"Records removed for other reasons {n(exp['excluded_other'])}",
        ],
        "box-records_screened": [f"Records screened {n(exp['records_screened'])}"],
        "box-records_excluded": [f"Records excluded {n(exp['records_excluded'])}"],
        "box-dbr_sought_reports": [f"Reports sought for retrieval {n(exp['dbr_sought_reports'])}"],
        "box-dbr_notretrieved_reports": [f"Reports not retrieved {n(exp['dbr_notretrieved_reports'])}"],
        "box-dbr_assessed": [f"Reports assessed for eligibility {n(exp['dbr_assessed'])}"],
        "box-dbr_excluded": ["Reports excluded:", *(f"{r} {n(k)}" for r, k in exp["dbr_excluded"].items())],
        "box-new_studies": [
            f"New studies included in review {n(exp['new_studies'])}",
            f"Reports of new included studies {n(exp['new_studies'])}",
        ],
        "box-newstud": ["Identification of new studies via databases and registers"],
        "box-identification": ["Identification"],
        "box-screening": ["Screening"],
        "box-included": ["Included"],
    }
    for box, phrases in wanted.items():
        for phrase in phrases:
            assert phrase in boxes[box], (box, phrase, boxes[box])
    assert "box-othstud" not in boxes  # no records from other methods, no such column


def _n_values(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _pairs(text: str) -> dict[str, int]:
    """The template's 'Name, n; Name, n' form, parsed the way the R package does."""
    parts = re.split(r"; ?", text)  # strsplit(reasons, split = "(;)( )?")
    return {re.sub(r",.*$", "", part): int(re.sub(r"[^0-9]", "", part.split(",", 1)[1])) for part in parts}


def test_the_csv_is_the_template_with_n_filled_in(review: Review) -> None:
    text = to_template_csv(prisma_counts(review.store))
    template = _n_values(default_template().read_text(encoding="utf-8"))
    filled = _n_values(text)
    assert (
        list(filled[0])
        == list(template[0])
        == ["data", "node", "box", "description", "boxtext", "tooltips", "url", "n"]
    )
    assert [r["data"] for r in filled] == [r["data"] for r in template]
    for got, tpl in zip(filled, template, strict=True):
        assert {k: v for k, v in got.items() if k != "n"} == {k: v for k, v in tpl.items() if k != "n"}
    n = {r["data"]: r["n"] for r in filled if r["data"] != "NA"}
    exp = _expected(review)
    for key in (
        "database_results",
        "duplicates",
        "excluded_automatic",
        "excluded_other",
        "records_screened",
        "records_excluded",
        "dbr_sought_reports",
        "dbr_notretrieved_reports",
        "dbr_assessed",
        "new_studies",
    ):
        assert int(n[key]) == exp[key], key
    assert _pairs(n["database_specific_results"]) == exp["database_specific_results"]
    assert _pairs(n["dbr_excluded"]) == exp["dbr_excluded"]
    assert n["new_reports"] == n["total_studies"] == n["total_reports"] == str(exp["new_studies"])
    assert n["register_results"] == "0" and n["previous_studies"] == "0"


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed (apt-get install r-base-core)")
def test_the_csv_loads_in_r_like_the_template(review: Review, tmp_path: Path) -> None:
    """R's read.csv, as the PRISMA2020 app uses it, sees the template's rows and text, and our numbers."""
    filled = tmp_path / "prisma.csv"
    filled.write_text(to_template_csv(prisma_counts(review.store)), encoding="utf-8")
    script = FIXTURES / "read_template.R"
    result = subprocess.run(
        ["Rscript", str(script), str(default_template()), str(filled)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    n = {key: value for kind, key, value in (x for x in lines if x[0] == "n")}
    pairs: dict[str, dict[str, int]] = {}
    for _, key, name, number in (x for x in lines if x[0] == "pair"):
        pairs.setdefault(key, {})[name] = int(float(number))
    exp = _expected(review)
    assert int(n["records_screened"]) == exp["records_screened"]
    assert int(n["dbr_assessed"]) == exp["dbr_assessed"]
    assert pairs["database_specific_results"] == exp["database_specific_results"]
    assert pairs["dbr_excluded"] == exp["dbr_excluded"]


def test_the_png_diagram_is_written(review: Review, tmp_path: Path) -> None:
    path = to_png(prisma_counts(review.store), tmp_path / "prisma.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
