"""This project's default ranker beside ASReview LAB's ``elas_u4``, per ../shared/BENCHMARK.md.

    .venv/bin/python benchmarks/vs_asreview.py [--datasets ../shared/datasets] [--seeds 0,1,2] [--embeddings]

Makes ``benchmarks/.venv-asreview`` with ``asreview==3.0.8`` if it is missing, runs a small
driver inside it (a subprocess) that simulates ``elas_u4`` with the same priors and writes the
label order of every run, then runs this project's simulation on the same datasets, seeds and
priors, and scores both with the same metric code (``screening.ranking.metrics``).

ASReview runs are kept in ``benchmarks/results/asreview_runs.jsonl`` as they finish, so an
interrupted benchmark resumes where it stopped; ``--fresh`` starts over.
Writes ``benchmarks/results/vs_asreview_runs.csv`` (one row per tool, dataset and seed),
``vs_asreview.csv`` (per-dataset means) and ``vs_asreview.md`` (the table printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from screening.ranking.datasets import dataset_name, default_suite, priors, read_dataset, suite_halves
from screening.ranking.metrics import run_metrics

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-asreview"
WORK = HERE / "work"
RESULTS = HERE / "results"
ASREVIEW_VERSION = "3.0.8"
METRICS = ["wss95", "wss100", "recall10", "seconds"]

DRIVER = r'''
"""Runs inside the ASReview venv: one elas_u4 simulation per job, one JSON line per run."""
import json, sys, time
import numpy as np
import pandas as pd
from asreview import ActiveLearningCycle, Simulate
from asreview.models.models import get_ai_config
from asreview.models.queriers import TopDown
from asreview.models.stoppers import IsFittable, LastRelevant

jobs = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as out:
    for job in jobs:
        start = time.perf_counter()
        frame = pd.read_csv(job["path"])
        labels = frame["label_included"].to_numpy()
        cfg = get_ai_config("elas_u4")["value"]
        cycles = [
            ActiveLearningCycle(querier=TopDown(), stopper=IsFittable()),
            ActiveLearningCycle.from_meta(cfg),
        ]
        sim = Simulate(frame[["title", "abstract"]], labels, cycles, stopper=LastRelevant(),
                       print_progress=False)
        sim.label([job["prior_included"], job["prior_excluded"]])
        sim.review()
        seconds = time.perf_counter() - start
        row = {"dataset": job["dataset"], "seed": job["seed"], "seconds": seconds,
               "record_ids": [int(i) for i in sim._results["record_id"]],
               "labels": [int(v) for v in sim._results["label"]]}
        out.write(json.dumps(row) + "\n")
        out.flush()
        print(f"asreview {job['dataset']} seed {job['seed']}: {seconds:.1f}s", file=sys.stderr, flush=True)
'''


def ensure_venv() -> Path:
    """Create the ASReview venv on first use; return its python."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"asreview=={ASREVIEW_VERSION}"], check=True)
    return python


def make_jobs(paths: list[Path], seeds: list[int]) -> list[dict]:
    jobs = []
    for path in paths:
        data = read_dataset(path)
        for seed in seeds:
            inc, exc = priors(data.labels, seed)
            jobs.append(
                {"path": str(path), "dataset": data.name, "seed": seed, "prior_included": inc, "prior_excluded": exc}
            )
    return jobs


def run_asreview(jobs: list[dict], runs_file: Path) -> dict[tuple[str, int], dict]:
    """Run the jobs not yet in ``runs_file`` through the driver; return every stored run."""
    done = load_runs(runs_file)
    todo = [j for j in jobs if (j["dataset"], j["seed"]) not in done]
    if todo:
        python = ensure_venv()
        WORK.mkdir(exist_ok=True)
        (WORK / "asreview_driver.py").write_text(DRIVER)
        (WORK / "asreview_jobs.json").write_text(json.dumps(todo))
        subprocess.run(
            [str(python), str(WORK / "asreview_driver.py"), str(WORK / "asreview_jobs.json"), str(runs_file)],
            check=True,
        )
    return load_runs(runs_file)


def load_runs(runs_file: Path) -> dict[tuple[str, int], dict]:
    if not runs_file.exists():
        return {}
    runs = [json.loads(line) for line in runs_file.read_text().splitlines() if line.strip()]
    return {(r["dataset"], r["seed"]): r for r in runs}


def score(tool: str, job: dict, labels: list[int], seconds: float, n: int, r: int) -> dict:
    m = run_metrics(labels, n_records=n, n_included=r)
    return {"tool": tool, "dataset": job["dataset"], "seed": job["seed"], **asdict(m), "seconds": seconds}


def run_ours(jobs: list[dict], embeddings: bool = False) -> list[dict]:
    """The default ranker, or with ``embeddings`` the embedding SVM beside it.

    Runs through ``simulate_files`` (the CLI's ``screening simulate``): the same priors as the
    jobs, and with embeddings each dataset embedded once, its time counted in the first run.
    """
    from screening.ranking.active import LearnerConfig
    from screening.ranking.embeddings import SentenceEmbedder
    from screening.ranking.simulate import simulate_files

    paths = list(dict.fromkeys(job["path"] for job in jobs))
    seeds = list(dict.fromkeys(job["seed"] for job in jobs))
    extra = {"learner": LearnerConfig.with_embeddings(), "embedder": SentenceEmbedder()} if embeddings else {}

    def report(result) -> None:
        print(f"screening {result.dataset} seed {result.seed}: {result.seconds:.1f}s", file=sys.stderr)

    table, runs = simulate_files(paths, seeds, on_run=report, **extra)
    sizes = table.groupby("dataset")[["N", "R"]].first()
    rows = []
    for job in jobs:
        result = runs[(job["dataset"], job["seed"])]
        n, r = (int(v) for v in sizes.loc[job["dataset"]])
        rows.append(score("screening", job, result.labels_in_order.tolist(), result.seconds, n, r))
    return rows


def table(runs: pd.DataFrame, halves: tuple[list[str], list[str]]) -> tuple[pd.DataFrame, str]:
    """Per-dataset means (over seeds) side by side, and a markdown report with half and suite means."""
    per = runs.groupby(["dataset", "tool"])[[*METRICS, "wss95_opt"]].mean().unstack("tool")
    wide = pd.DataFrame(index=per.index)
    for metric in METRICS:
        wide[f"{metric}_asreview"] = per[(metric, "asreview")]
        wide[f"{metric}_screening"] = per[(metric, "screening")]
    wide["wss95_diff"] = wide["wss95_screening"] - wide["wss95_asreview"]
    wide["wss95_opt"] = per[("wss95_opt", "screening")]
    lines = [markdown(wide.round(3)), ""]
    parts = {"tune half": halves[0], "confirm half": halves[1], "whole suite": list(wide.index)}
    for label, names in parts.items():
        means = wide.loc[wide.index.intersection(names)].mean()
        lines.append(
            f"{label} ({len(names)} datasets): "
            + ", ".join(
                f"{m} asreview {means[f'{m}_asreview']:.3f} / screening {means[f'{m}_screening']:.3f}" for m in METRICS
            )
        )
    totals = runs.groupby("tool")["seconds"].sum()
    lines.append(
        f"total wall time: asreview {totals['asreview']:.0f}s, screening {totals['screening']:.0f}s "
        f"(ratio {totals['screening'] / totals['asreview']:.3f})"
    )
    lines.append(f"worst dataset wss95 difference: {wide['wss95_diff'].min():+.3f} ({wide['wss95_diff'].idxmin()})")
    return wide, "\n".join(lines)


def markdown(frame: pd.DataFrame) -> str:
    header = [frame.index.name or "", *frame.columns]
    rows = [
        [str(i), *(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)]
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=str(HERE.parent.parent / "shared" / "datasets"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fresh", action="store_true", help="forget stored ASReview runs")
    parser.add_argument("--only", nargs="*", help="dataset names to run (default: the whole suite)")
    parser.add_argument("--asreview-only", action="store_true", help="only fill the stored ASReview runs")
    parser.add_argument(
        "--embeddings", action="store_true", help="add the sentence-embedding SVM (writes vs_asreview_embeddings.*)"
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = default_suite(args.datasets)
    if args.only:
        paths = [p for p in paths if dataset_name(p) in set(args.only)]
    halves = tuple([dataset_name(p) for p in half] for half in suite_halves(default_suite(args.datasets)))
    RESULTS.mkdir(exist_ok=True)
    runs_file = RESULTS / "asreview_runs.jsonl"
    if args.fresh and runs_file.exists():
        runs_file.unlink()
    jobs = make_jobs(paths, seeds)
    started = time.perf_counter()
    asreview = run_asreview(jobs, runs_file)
    if args.asreview_only:
        return
    rows = []
    for job in jobs:
        run = asreview[(job["dataset"], job["seed"])]
        data = read_dataset(job["path"])
        rows.append(score("asreview", job, run["labels"], run["seconds"], data.n_records, data.n_included))
    rows += run_ours(jobs, embeddings=args.embeddings)
    stem = "vs_asreview_embeddings" if args.embeddings else "vs_asreview"
    runs = pd.DataFrame(rows)
    runs.to_csv(RESULTS / f"{stem}_runs.csv", index=False)
    wide, report = table(runs, halves)
    wide.to_csv(RESULTS / f"{stem}.csv")
    (RESULTS / f"{stem}.md").write_text(report + "\n")
    print(report)
    print(f"benchmark wall time {time.perf_counter() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
