"""Time from a decision to the next record rendered, in the running dashboard, in headless Chromium.

    .venv/bin/python benchmarks/dashboard_latency.py [--records 20000] [--decisions 30] [--shared ../shared]

Builds a project of N real records (the labelled datasets of ../shared/datasets, concatenated
with their labels dropped, leaving out the three reviews that appear twice, and keeping
only the first copy of a title), imports it with ``screening.ingest.import_file``, starts
``streamlit run app.py -- --db PROJECT``, signs in, and screens ``--decisions`` records,
alternating clicks and keyboard shortcuts. Each latency is the wall time from the
click/key press to the next record's caption, title and decision buttons drawn in the
page (Playwright polls every 5 ms). A click is a press of the mouse at the Exclude
button's place (``page.mouse.click``); until 2026-12-02 it was Playwright's
``locator.click()``, which first waits for the button to hold still over two animation
frames (about 35 ms more per click on this machine). Prints median and 95th percentile and writes
benchmarks/results/dashboard_latency.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_browser_e2e import (  # noqa: E402
    browser_missing,
    chromium_page,
    focus_page,
    live_button,
    shown_record,
    sign_in,
    streamlit_server,
    wait_for_next_record,
)

from screening.demo import load_manifest  # noqa: E402
from screening.ingest import import_file  # noqa: E402
from screening.reviewers import add_reviewer  # noqa: E402
from screening.store import init_project, set_setting  # noqa: E402

TWINS = ("synergy_Chou_2003", "synergy_Chou_2004", "synergy_Nelson_2002")  # same reviews as three cohen2006 sets
RESULTS = ROOT / "benchmarks" / "results" / "dashboard_latency.md"


def records_csv(shared: Path, n: int, out: Path) -> int:
    """Write the first ``n`` distinct real records of the datasets, without labels, to ``out``."""
    frames = []
    for path in sorted((shared / "datasets").glob("*.csv.gz")):
        if path.name.removesuffix(".csv.gz") in TWINS:
            continue
        frames.append(pd.read_csv(path, usecols=["title", "abstract", "doi", "pmid"], dtype=str))
    data = pd.concat(frames, ignore_index=True)
    data = data[data["title"].notna()].drop_duplicates(subset="title").head(n)
    if len(data) < n:
        raise SystemExit(f"--records: only {len(data)} distinct records in {shared / 'datasets'}")
    data.to_csv(out, index=False)
    return len(data)


def project_from_csv(db: Path, csv: Path, *, name: str, reviewer: str = "bench") -> None:
    """A project with the demo's settings (query, criteria, keywords), the records of ``csv`` and one reviewer."""
    manifest = load_manifest()
    with init_project(db, name=name, query=manifest["query"], criteria=manifest["criteria"]) as store:
        with store.begin() as s:
            set_setting(s, "keywords", manifest["keywords"])
        import_file(store, csv, source_name="Benchmark records")
        add_reviewer(store, reviewer)


def build_project(db: Path, shared: Path, n: int) -> float:
    """The demo's settings and ``n`` real records; returns build seconds."""
    started = time.perf_counter()
    csv = db.with_suffix(".csv")
    records_csv(shared, n, csv)
    project_from_csv(db, csv, name=f"Latency benchmark ({n:,} records)")
    return time.perf_counter() - started


def screen(url: str, decisions: int) -> tuple[float, list[float]]:
    """Sign in and screen; (seconds to the first record, per-decision latencies in ms)."""
    latencies = []
    with chromium_page() as page:
        started = time.perf_counter()
        sign_in(page, url, "bench")
        first = time.perf_counter() - started
        for i in range(decisions):
            record = shown_record(page)
            if i % 2:
                focus_page(page)
                t0 = time.perf_counter()
                page.keyboard.press("e" if i % 3 else "i")
            else:
                # a press of the mouse where the button is drawn (it stays in place from one record to
                # the next): Playwright's own click() first waits for the button to hold still over two
                # animation frames, time no reviewer's click spends
                box = live_button(page, "Exclude (E)").bounding_box()
                t0 = time.perf_counter()
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            wait_for_next_record(page, record)
            latencies.append((time.perf_counter() - t0) * 1000)
    return first, latencies


def report(n: int, build_s: float, first_s: float, latencies: list[float]) -> str:
    ms = np.array(latencies)
    clicks, keys = ms[0::2], ms[1::2]
    rows = [
        "| records | decisions | median ms | p95 ms | min ms | max ms | clicks: median ms | keys: median ms "
        "| first record s | build s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n:,} | {len(ms)} | {statistics.median(ms):.0f} | {np.percentile(ms, 95):.0f} | {ms.min():.0f} "
        f"| {ms.max():.0f} | {statistics.median(clicks):.0f} | {statistics.median(keys):.0f} "
        f"| {first_s:.1f} | {build_s:.1f} |",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--decisions", type=int, default=30)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    if reason := browser_missing():
        raise SystemExit(reason)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "latency.db"
        build_s = build_project(db, args.shared, args.records)
        with streamlit_server(db, Path(tmp) / "streamlit.log") as url:
            first_s, latencies = screen(url, args.decisions)
    table = report(args.records, build_s, first_s, latencies)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Dashboard latency: decision to next record rendered\n\n"
            "Each section is one run, appended by the benchmark. Each latency: click or key press -> the next "
            "record's caption, title and decision buttons drawn by the new run (not the stale previous page); "
            "'first record': page load, sign-in and the first ranking (model and features built).\n"
        )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with RESULTS.open("a") as out:
        out.write(
            f"\n## {when}\n\n"
            f"`.venv/bin/python benchmarks/dashboard_latency.py --records {args.records} --decisions {args.decisions}`"
            f" on {platform.node()} ({os.cpu_count()} cores, load average {load[0]:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after), headless Chromium on the same machine; clicks are mouse presses "
            "at the button.\n\n"
            f"{table}\n\nAll latencies (ms, clicks and keys alternating): "
            f"{', '.join(f'{x:.0f}' for x in latencies)}\n"
        )


if __name__ == "__main__":
    main()
