"""The Screen page's server time per decision, before and after a change, in one run.

    .venv/bin/python benchmarks/screen_server_time.py [--before 2fa4476] [--records 20000] [--decisions 40]
        [--repeat 1] [--shared ../shared]

"before" is the git revision ``--before`` (checked out with ``git worktree add`` in a
temporary directory, removed at the end); "after" is this working tree as it is. Both
sides get the same N real records (the labelled datasets of ../shared/datasets,
concatenated with their labels dropped, leaving out the three reviews that appear twice
and keeping only the first copy of a title, as in dashboard_latency.py), written once to a
CSV; each side then builds its own project from it with its own code (``init_project``,
the demo's settings, ``import_file``, ``add_reviewer``), since the two schemas differ.

Each measurement runs in a subprocess of this venv's Python with ``cwd`` and
``PYTHONPATH`` set to that side's tree, so it imports that side's ``screening`` (the
child prints ``screening.__file__``, checked against the tree). The child drives that
tree's real ``app.py`` server-side with Streamlit's ``AppTest`` on a fresh copy of the
side's project: first load, sign-in (the ranker and its features are built here), three
untimed decisions, then ``--decisions`` timed ones, including every 5th record shown and
excluding the others. Each time is the wall time of the button's ``.click().run()``: the
whole script run of the server (write the decision, refresh and re-rank, pick and claim the
next record, draw the page), with no browser or network; it includes AppTest's own polling
for the end of the run (sleeps of a few ms). The child also counts the full (generation-2)
garbage collections that fall inside the timed decisions. The child prints one JSON line.

``--repeat K`` runs before and after K times, alternating which side goes first
(before-after, after-before, ...) so both see the same load; figures are pooled over the
repeats. Prints a table (median, 95th percentile and mean ms; after/before ratios) and
writes benchmarks/results/screen_server_time.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "screen_server_time.md"
REVIEWER = "bench"
WARMUP = 3  # decisions after the first load that are not timed
TIMEOUT = 900  # seconds AppTest waits for one script run (the first one builds the features)
MARK = "BENCH_JSON "  # the child's one result line starts with this


# -- the child: runs with one side's tree on PYTHONPATH -----------------------------------------------
def check_tree(tree: Path) -> str:
    """Import ``screening`` and fail unless it is the one in ``tree``; returns its ``__file__``."""
    import screening

    where = str(Path(screening.__file__).resolve())
    print(f"screening.__file__ = {where}", file=sys.stderr, flush=True)
    if not Path(where).is_relative_to(tree.resolve()):
        raise SystemExit(f"imported screening from {where}, not from {tree}")
    return where


def child_build(tree: Path, db: Path, csv: Path, n: int) -> dict[str, Any]:
    """The project the way dashboard_latency.py builds it, with this tree's code."""
    where = check_tree(tree)
    from dashboard_latency import project_from_csv  # the library calls it makes exist on both sides

    started = time.perf_counter()
    project_from_csv(db, csv, name=f"Screen server-time benchmark ({n:,} records)", reviewer=REVIEWER)
    return {"screening": where, "build_s": time.perf_counter() - started}


def shown_record(at: Any) -> int:
    captions = [c.value for c in at.caption if c.value.startswith("Record ")]
    if not captions:
        raise SystemExit("no record on the Screen page")
    return int(captions[0].split()[1])


def checked(at: Any, what: str) -> Any:
    """Fail clearly if the script run raised (AppTest keeps the exception instead of raising it)."""
    if at.exception:
        details = "\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)
        raise SystemExit(f"the page raised during {what}:\n{details}")
    errors = [e.value for e in at.error]
    if errors:
        raise SystemExit(f"the page showed an error during {what}: {errors}")
    return at


def decision_value(i: int) -> str:
    """The fixed pattern, the same on both sides: include every 5th decision, exclude the others."""
    return "include" if i % 5 == 0 else "exclude"


def child_screen(tree: Path, db: Path, decisions: int) -> dict[str, Any]:
    """Open the tree's app on ``db``, sign in, warm up, then time ``decisions`` decisions."""
    where = check_tree(tree)
    os.environ["SCREENING_DB"] = str(db)
    from streamlit.testing.v1 import AppTest

    app = str(tree / "app.py")
    started = time.perf_counter()
    at = checked(AppTest.from_file(app, default_timeout=TIMEOUT).run(), "the first load")
    first_load_s = time.perf_counter() - started
    started = time.perf_counter()
    checked(at.sidebar.selectbox(key="reviewer").select(REVIEWER).run(), "sign-in")
    sign_in_s = time.perf_counter() - started
    records: list[int] = []
    times_ms: list[float] = []
    full_gcs: list[float] = []  # ms of each generation-2 collection during the timed decisions
    timing = [False]
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2 and timing[0]:
            full_gcs.append((time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(on_gc)
    for i in range(WARMUP + decisions):
        record = shown_record(at)
        records.append(record)
        button = at.button(key=f"decide_{decision_value(i)}_{record}").click()
        timing[0] = i >= WARMUP
        t0 = time.perf_counter()
        button.run()
        elapsed = (time.perf_counter() - t0) * 1000
        timing[0] = False
        checked(at, f"decision {i + 1} (record {record})")
        if shown_record(at) == record:
            raise SystemExit(f"decision {i + 1}: record {record} is still on screen after the click")
        if i >= WARMUP:
            times_ms.append(elapsed)
    with sqlite3.connect(db) as con:
        written = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
    if written != WARMUP + decisions:
        raise SystemExit(f"{written} decisions in the project after {WARMUP + decisions} clicks")
    return {
        "screening": where,
        "first_load_s": first_load_s,
        "sign_in_s": sign_in_s,
        "records_shown": records,
        "times_ms": times_ms,
        "full_gc_ms": full_gcs,
    }


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("build", "screen"))
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--decisions", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mode == "build":
        result = child_build(args.tree, args.db, args.csv, args.records)
    else:
        result = child_screen(args.tree, args.db, args.decisions)
    print(MARK + json.dumps(result), flush=True)


# -- the parent ----------------------------------------------------------------------------------------
@dataclass
class Side:
    name: str  # "before" or "after"
    revision: str  # what the tree holds, for the report
    tree: Path
    template: Path  # the project built by this side's code, copied fresh for every run
    screening: str = ""
    build_s: float = 0.0
    first_load_s: list[float] = field(default_factory=list)
    sign_in_s: list[float] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    records_shown: list[list[int]] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)  # of the tree's code, before and after every child
    run_code: list[str] = field(default_factory=list)  # the code fingerprint of each run ("a -> b" if it changed)
    full_gc_ms: list[float] = field(default_factory=list)


def run_child(side: Side, *args: str) -> dict[str, Any]:
    """Run this file in ``side``'s tree; its last ``MARK`` line is the result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args, "--tree", str(side.tree)]
    env = {**os.environ, "PYTHONPATH": str(side.tree), "PYTHONHASHSEED": "0"}
    env.pop("SCREENING_DB", None)
    proc = subprocess.run(cmd, cwd=side.tree, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-10000:])
        raise SystemExit(f"{side.name} ({side.revision}): {args[0]} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    print(f"  {side.name}: screening from {result['screening']}", flush=True)
    return result


def copy_project(src: Path, dst: Path) -> None:
    """A fresh copy of a SQLite project (the backup API, so a WAL is carried along)."""
    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def working_tree_label() -> str:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "screening", "app.py")
    return f"working tree (HEAD {head}{', uncommitted changes in screening/' if dirty else ''})"


def tree_fingerprint(tree: Path) -> str:
    """A hash of the Python code the side runs (``screening/`` and ``app.py``), to see if it changed mid-run."""
    digest = hashlib.sha1()
    for path in sorted([tree / "app.py", *(tree / "screening").rglob("*.py")]):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def stats(ms: list[float]) -> tuple[float, float, float]:
    return statistics.median(ms), float(np.percentile(ms, 95)), statistics.fmean(ms)


def report(sides: list[Side], n: int) -> str:
    rows = [
        "| side | revision | records | decisions | median ms | p95 ms | mean ms | first load s | sign-in s | build s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sides:
        median, p95, mean = stats(s.times_ms)
        rows.append(
            f"| {s.name} | {s.revision} | {n:,} | {len(s.times_ms)} | {median:.0f} | {p95:.0f} | {mean:.0f} "
            f"| {statistics.median(s.first_load_s):.1f} | {statistics.median(s.sign_in_s):.1f} | {s.build_s:.1f} |"
        )
    before, after = (stats(s.times_ms) for s in sides)
    rows.append(
        f"\nafter/before: median {after[0] / before[0]:.2f}x, p95 {after[1] / before[1]:.2f}x, "
        f"mean {after[2] / before[2]:.2f}x"
    )
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="2fa4476", help="git revision of the 'before' side")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--decisions", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1, help="before/after runs, alternating which goes first")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "benchmarks/screen_server_time.py", *sys.argv[1:]])
    before_rev = git("rev-parse", "--short", args.before)
    head_at_start = git("rev-parse", "--short", "HEAD")
    load_before = os.getloadavg()
    order_log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="screen_server_time_") as tmp_name:
        tmp = Path(tmp_name)
        old_tree = tmp / f"tree_{before_rev}"
        git("worktree", "add", "--detach", str(old_tree), before_rev)
        try:
            sides = [
                Side("before", before_rev, old_tree, tmp / "before.db"),
                Side("after", working_tree_label(), ROOT, tmp / "after.db"),
            ]
            csv = tmp / "records.csv"
            from dashboard_latency import records_csv  # the same records as the browser benchmark

            n = records_csv(args.shared, args.records, csv)
            print(f"{n:,} records written to {csv}", flush=True)
            for side in sides:
                print(f"building the {side.name} project ({side.revision})", flush=True)
                built = run_child(side, "build", "--db", str(side.template), "--csv", str(csv), "--records", str(n))
                side.screening, side.build_s = built["screening"], built["build_s"]
                side.fingerprints.add(tree_fingerprint(side.tree))
            for k in range(args.repeat):
                order = sides if k % 2 == 0 else sides[::-1]
                order_log.append(" then ".join(s.name for s in order))
                for side in order:
                    print(f"run {k + 1}/{args.repeat}: {side.name} ({side.revision})", flush=True)
                    code = tree_fingerprint(side.tree)
                    db = tmp / f"{side.name}_run.db"
                    copy_project(side.template, db)
                    result = run_child(side, "screen", "--db", str(db), "--decisions", str(args.decisions))
                    side.first_load_s.append(result["first_load_s"])
                    side.sign_in_s.append(result["sign_in_s"])
                    side.times_ms.extend(result["times_ms"])
                    side.records_shown.append(result["records_shown"])
                    side.full_gc_ms.extend(result["full_gc_ms"])
                    code_after = tree_fingerprint(side.tree)
                    side.fingerprints |= {code, code_after}
                    side.run_code.append(code if code == code_after else f"{code} -> {code_after}")
                    median, p95, _ = stats(result["times_ms"])
                    print(f"    median {median:.0f} ms, p95 {p95:.0f} ms", flush=True)
        finally:
            git("worktree", "remove", "--force", str(old_tree))
    load_after = os.getloadavg()
    head_at_end = git("rev-parse", "--short", "HEAD")
    same_records = all(b == a for b, a in zip(sides[0].records_shown, sides[1].records_shown, strict=True))
    table = report(sides, n)
    order_text = "; ".join(f"run {i + 1}: {o}" for i, o in enumerate(order_log))
    notes = [
        f"Order (the sides ran back to back under the same load): {order_text}.",
        "Both sides were shown the same records in the same order."
        if same_records
        else "The two sides were shown different records (their rankings or claims differ).",
    ]
    notes.append(
        "Full (generation-2) garbage collections inside the timed decisions: "
        + "; ".join(
            f"{s.name} {len(s.full_gc_ms)}"
            + (f" ({', '.join(f'{x:.0f}' for x in s.full_gc_ms)} ms)" if s.full_gc_ms else "")
            for s in sides
        )
        + "."
    )
    for side in sides:
        if len(side.fingerprints) > 1:
            notes.append(
                f"Warning: the {side.name} side's code (screening/, app.py) changed during the benchmark "
                f"({len(side.fingerprints)} versions seen): others were editing the working tree."
            )
    if head_at_end != head_at_start:
        notes.append(f"HEAD moved during the benchmark: {head_at_start} at the start, {head_at_end} at the end.")
    print(table)
    print("\n".join(notes))
    machine = (
        f"{platform.node()}: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_before)} before and "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after"
    )
    d = args.decisions
    per_run = "\n".join(
        f"- {s.name}, run {i + 1} (code {s.run_code[i]}): "
        + ", ".join(f"{x:.0f}" for x in s.times_ms[i * d : (i + 1) * d])
        for s in sides
        for i in range(args.repeat)
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Screen page: server time per decision, before and after\n\n"
        f"`{command}`\n\n"
        f"Machine: {machine}.\n\n"
        f"{table}\n\n" + "\n".join(notes) + "\n\n"
        "Each time: the wall time of `AppTest`'s `.click().run()` on a decision button of the real "
        "Screen page (`app.py` of that side's tree, with that side's `screening`), that is the server's whole "
        "script run: write the decision, refresh and re-rank, pick and claim the next record, draw the page. "
        f"No browser. Not timed: the first load, sign-in (the ranker and features are built) and the first "
        f"{WARMUP} decisions. Decisions include every 5th record shown and exclude the others. "
        f"'before' imported `screening` from a `git worktree` of {before_rev}; 'after' from {sides[1].screening}. "
        "Each side built its own project from the same CSV; every run screened a fresh copy of it.\n\n"
        f"All times (ms):\n{per_run}\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
