"""Precision and recall of the duplicate matcher on real cross-source twins.

Three reviews in ../shared/datasets were built twice: once from PubMed (cohen2006_*,
with PMIDs) and once from OpenAlex (synergy_*, with DOIs). The two files of a review
share no identifier, so matching must work from titles and abstracts, as it does
for a PubMed export beside an Embase or Scopus one.

Reference pairs: an exhaustive comparison of every PubMed record with every
OpenAlex record of the same review (no blocking), kept one-to-one, best first.
A pair is a reference duplicate when the abstracts agree (similarity of their
first 80 words >= 0.90, both at least 30 words) and the titles are not unrelated
(similarity >= 0.5, or one title is the other cut short), or when the titles are
near-identical (similarity >= 0.95) and the abstracts do not contradict it (one is
missing, or they agree at >= 0.6). The matcher under test is the
product's: both files imported into one real project, then ``screening.dedupe``.

    python benchmarks/dedupe_twins.py [--shared ../shared] [--out benchmarks/results/dedupe_twins.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process
from sqlalchemy import select

from screening.dedupe import abstract_key, dedupe, title_key, uncertain_pairs
from screening.ingest import import_file
from screening.schema import Record, RecordSource, Source
from screening.sources.files import read_file
from screening.store import init_project

TWINS = (
    ("cohen2006_Opioids", "synergy_Chou_2003"),
    ("cohen2006_SkeletalMuscleRelaxants", "synergy_Chou_2004"),
    ("cohen2006_Estrogens", "synergy_Nelson_2002"),
)
ROOT = Path(__file__).resolve().parent.parent


def _cut_short(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return bool(short) and long.startswith(short + " ")


def reference_pairs(path_a: Path, path_b: Path) -> set[tuple[str, str]]:
    """Exhaustive one-to-one matching of (record_id in A, record_id in B)."""
    a = list(read_file(path_a))
    b = list(read_file(path_b))
    ta = [title_key(c.title) for c in a]
    tb = [title_key(c.title) for c in b]
    aa = [abstract_key(c.abstract) for c in a]
    ab = [abstract_key(c.abstract) for c in b]
    titles = process.cdist(ta, tb, scorer=fuzz.ratio, workers=-1) / 100.0
    scored = []
    for i, j in zip(*np.nonzero(titles >= 0.3), strict=True):
        title = float(titles[i, j])
        abstract = fuzz.ratio(aa[i], ab[j]) / 100.0 if aa[i] and ab[j] else None
        cut_short = _cut_short(ta[i], tb[j])
        if abstract is not None and abstract >= 0.9 and (title >= 0.5 or cut_short):
            scored.append((title + abstract, i, j))
        elif title >= 0.95 and (abstract is None or abstract >= 0.6):
            scored.append((title, i, j))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = set()
    for _, i, j in scored:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.add((a[i].source_record_id, b[j].source_record_id))
    return pairs


def matched_pairs(
    path_a: Path, path_b: Path, workdir: Path
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], int, float]:
    """Cross-source pairs merged, cross-source pairs left for review, all pairs left for review, seconds."""
    store = init_project(workdir / f"{path_a.stem}.db", name="twins")
    names = {}
    for path in (path_a, path_b):
        result = import_file(store, path, source_name=path.name.split(".")[0])
        names[result.source_id] = path
    start = time.perf_counter()
    dedupe(store)
    seconds = time.perf_counter() - start
    with store.read() as s:
        rows = s.execute(
            select(Record.id, Record.canonical_id, RecordSource.source_record_id, Source.file_name)
            .join(RecordSource, RecordSource.record_id == Record.id)
            .join(Source, Source.id == RecordSource.source_id)
        ).all()
    groups: dict[int, dict[str, list[str]]] = {}
    for rid, canonical, source_record_id, file_name in rows:
        side = "a" if file_name == path_a.name else "b"
        groups.setdefault(canonical or rid, {"a": [], "b": []})[side].append(source_record_id)
    pairs = {(x, y) for g in groups.values() for x in g["a"] for y in g["b"]}
    side = {rid: (file_name == path_a.name, source_record_id) for rid, _, source_record_id, file_name in rows}
    review = uncertain_pairs(store)
    cross = set()
    for p in review:
        (a_is_a, a_id), (b_is_a, b_id) = side[p.a.id], side[p.b.id]
        if a_is_a != b_is_a:
            cross.add((a_id, b_id) if a_is_a else (b_id, a_id))
    store.close()
    return pairs, cross, len(review), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedupe_twins.md")
    args = parser.parse_args()
    datasets = args.shared / "datasets"
    lines = [
        "| review (PubMed vs OpenAlex) | reference pairs | matched | true pos. | precision | recall "
        "| left for review | recall after review | dedupe s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals = np.zeros(4)
    with tempfile.TemporaryDirectory() as tmp:
        for a_name, b_name in TWINS:
            path_a, path_b = datasets / f"{a_name}.csv.gz", datasets / f"{b_name}.csv.gz"
            reference = reference_pairs(path_a, path_b)
            matched, review, uncertain, seconds = matched_pairs(path_a, path_b, Path(tmp))
            tp = len(matched & reference)
            after = len((matched | (review & reference)) & reference)
            totals += (len(reference), len(matched), tp, after)
            precision, recall = tp / max(len(matched), 1), tp / max(len(reference), 1)
            lines.append(
                f"| {a_name} vs {b_name} | {len(reference)} | {len(matched)} | {tp} | {precision:.3f} | {recall:.3f} "
                f"| {uncertain} | {after / max(len(reference), 1):.3f} | {seconds:.2f} |"
            )
    ref, matched, tp, after = totals
    lines.append(
        f"| **all three** | {ref:.0f} | {matched:.0f} | {tp:.0f} | **{tp / matched:.3f}** | **{tp / ref:.3f}** "
        f"| | {after / ref:.3f} | |"
    )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n\nCommand: `python benchmarks/dedupe_twins.py`\n")


if __name__ == "__main__":
    main()
