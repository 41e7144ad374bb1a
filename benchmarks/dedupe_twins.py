"""Precision and recall of the duplicate matcher on real cross-source twins.

Three reviews in ../shared/datasets were built twice: once from PubMed (cohen2006_*,
with PMIDs) and once from OpenAlex (synergy_*, with DOIs). The two files of a review
share no identifier, so matching must work from titles and abstracts, as it does
for a PubMed export beside an Embase or Scopus one.

Reference pairs: an exhaustive comparison of every PubMed record with every
OpenAlex record of the same review (no blocking), kept one-to-one, best first.
A pair is a reference duplicate when the abstracts agree (token-set similarity of
the first 80 words >= 0.90, both abstracts at least 30 words) and the titles are
not unrelated (similarity >= 0.5), or when the normalised titles are identical and
at least one side has no abstract to compare. The matcher under test is the
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
    for i, j in zip(*np.nonzero(titles >= 0.5), strict=True):
        if aa[i] and ab[j]:
            if fuzz.token_set_ratio(aa[i], ab[j]) >= 90:
                scored.append((float(titles[i, j]) + 1.0, i, j))
        elif ta[i] and ta[i] == tb[j]:
            scored.append((1.0, i, j))
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


def matched_pairs(path_a: Path, path_b: Path, workdir: Path) -> tuple[set[tuple[str, str]], int, float]:
    """Cross-source pairs the product puts in one duplicate group, uncertain count, seconds."""
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
    uncertain = len(uncertain_pairs(store))
    store.close()
    return pairs, uncertain, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedupe_twins.md")
    args = parser.parse_args()
    datasets = args.shared / "datasets"
    lines = [
        "| review (PubMed vs OpenAlex) | reference pairs | matched | true pos. | precision | recall "
        "| left for review | dedupe s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals = np.zeros(3)
    with tempfile.TemporaryDirectory() as tmp:
        for a_name, b_name in TWINS:
            path_a, path_b = datasets / f"{a_name}.csv.gz", datasets / f"{b_name}.csv.gz"
            reference = reference_pairs(path_a, path_b)
            matched, uncertain, seconds = matched_pairs(path_a, path_b, Path(tmp))
            tp = len(matched & reference)
            totals += (len(reference), len(matched), tp)
            lines.append(
                f"| {a_name} vs {b_name} | {len(reference)} | {len(matched)} | {tp} | "
                f"{tp / max(len(matched), 1):.3f} | {tp / max(len(reference), 1):.3f} | {uncertain} | {seconds:.2f} |"
            )
    ref, matched, tp = totals
    lines.append(f"| **all three** | {ref:.0f} | {matched:.0f} | {tp:.0f} | **{tp / matched:.3f}** | **{tp / ref:.3f}** | | |")
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n\nCommand: `python benchmarks/dedupe_twins.py`\n")


if __name__ == "__main__":
    main()
