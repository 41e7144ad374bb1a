"""Stopping rules on real screening orders: how often they keep their promise, and how much work they save.

    .venv/bin/python benchmarks/stopping.py [--datasets ../shared/datasets] [--seeds 0-9]
        [--targets 0.90,0.95] [--confidence 0.95] [--cache DIR] [--out benchmarks/results/stopping.md]

For every dataset of the suite (BENCHMARK.md) and seed, the default ranker screens the WHOLE
pool (no stop), which gives the order it would have shown a reviewer. Every rule of
``screening.stopping.RULES`` is then run along that order offline (``first_stop``): it stops
where it first says stop (or at the end if it never does). Per rule and target:

- ``valid``: the share of runs whose recall at stop reaches the target (the promise is ≥ the
  confidence asked, 95%, for a rule with a guarantee);
- ``recall``: the mean recall at stop; ``saved``: the mean work saved, ``(N - stop) / N``;
- ``oracle``: the work saved by stopping exactly when the ranking first reaches the target
  (the best any stopping rule could do on these orders).

``--cache DIR`` keeps each full order as ``DIR/<dataset>__s<seed>.npz`` and reuses it, so that
only the first run pays for the simulations. Writes the tables (with per-dataset numbers for the
default rule) to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from screening.ranking.datasets import dataset_name, default_suite, parse_seeds, read_dataset, suite_halves
from screening.stopping import DEFAULT_RULE, RULES, first_stop, make_rule

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


class _NeverStop:
    """A rule that never says stop, so that a simulation screens every record."""

    name, target, confidence, guarantee = "never", 0.95, 0.95, False

    def should_stop(self, labels, pool) -> bool:
        return False

    def more_needed(self, labels, pool) -> None:
        return None


def full_orders(paths: list[Path], seeds: list[int], cache: Path | None) -> list[dict]:
    """The labels of every record in the order the ranker screens them, per dataset and seed."""
    from screening.ranking.simulate import simulate_dataset

    runs = []
    for path in paths:
        name = dataset_name(path)
        data = None
        for seed in seeds:
            file = cache / f"{name}__s{seed}.npz" if cache else None
            if file is not None and file.exists():
                stored = np.load(file)
                labels, n, r = stored["labels"].astype(np.int64), int(stored["N"]), int(stored["R"])
            else:
                data = data or read_dataset(path)
                started = time.perf_counter()
                result = simulate_dataset(data, seed=seed, stop_rule=_NeverStop())
                labels, n, r = result.labels_in_order.astype(np.int64), data.n_records, data.n_included
                print(f"order {name} seed {seed}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
                if file is not None:
                    cache.mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(file, labels=labels.astype(np.int8), order=result.order, N=n, R=r)
            runs.append({"dataset": name, "seed": seed, "labels": labels, "N": n, "R": r})
    return runs


def oracle_stop(labels: np.ndarray, n_included: int, target: float) -> int:
    """Records screened when the ranking first reaches ``target`` recall."""
    return int(np.searchsorted(np.cumsum(labels), math.ceil(target * n_included)) + 1)


def score(runs: list[dict], targets: list[float], confidence: float) -> pd.DataFrame:
    """One row per rule (and the oracle), target, dataset and seed."""
    rows = []
    for target in targets:
        for name in RULES:
            rule = make_rule(name, target=target, confidence=confidence)
            started = time.perf_counter()
            for run in runs:
                stop = first_stop(rule, run["labels"], run["N"])
                stop = run["N"] if stop is None else stop
                rows.append(_row(name, rule.guarantee, target, run, stop))
            print(f"{name} at {target:.0%}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
        for run in runs:
            rows.append(_row("oracle", False, target, run, oracle_stop(run["labels"], run["R"], target)))
    return pd.DataFrame(rows)


def _row(rule: str, guarantee: bool, target: float, run: dict, stop: int) -> dict:
    recall = float(run["labels"][:stop].sum()) / run["R"]
    return {
        "rule": rule,
        "guarantee": guarantee,
        "target": target,
        "dataset": run["dataset"],
        "seed": run["seed"],
        "N": run["N"],
        "R": run["R"],
        "stop": stop,
        "recall": recall,
        "valid": recall >= target - 1e-12,
        "saved": (run["N"] - stop) / run["N"],
    }


def by_half(rows: pd.DataFrame, tuning: set[str]) -> pd.DataFrame:
    """Per half of the suite (``suite_halves``: the default rule's settings were chosen on the tuning half), rule
    and target: validity and work saved, so that a reader sees the rule where it was not tuned."""
    half = rows["dataset"].map(lambda name: "tuning" if name in tuning else "confirmation")
    table = (
        rows.assign(half=half)
        .groupby(["half", "target", "rule"], sort=False)
        .agg(valid=("valid", "mean"), saved=("saved", "mean"))
    )
    return table.reset_index().sort_values(["half", "target"], ascending=[False, True], kind="stable")


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per rule and target: validity, mean recall and work saved, and the saving relative to buscar and the oracle."""
    table = rows.groupby(["target", "rule"], sort=False).agg(
        guarantee=("guarantee", "first"), valid=("valid", "mean"), recall=("recall", "mean"), saved=("saved", "mean")
    )
    table = table.reset_index()
    base = table[table["rule"] == "buscar"].set_index("target")["saved"]
    best = table[table["rule"] == "oracle"].set_index("target")["saved"]
    table["vs_buscar"] = table["saved"] / table["target"].map(base) - 1
    table["of_oracle"] = table["saved"] / table["target"].map(best)
    return table


def per_dataset(rows: pd.DataFrame, rule: str) -> pd.DataFrame:
    """``rule``'s validity and work saved per dataset, beside buscar's and the oracle's saving."""
    frames = []
    for target, part in rows.groupby("target"):
        mine = (
            part[part["rule"] == rule]
            .groupby("dataset")
            .agg(
                N=("N", "first"),
                R=("R", "first"),
                valid=("valid", "mean"),
                recall=("recall", "mean"),
                saved=("saved", "mean"),
            )
        )
        mine["buscar_saved"] = part[part["rule"] == "buscar"].groupby("dataset")["saved"].mean()
        mine["oracle_saved"] = part[part["rule"] == "oracle"].groupby("dataset")["saved"].mean()
        mine.insert(0, "target", target)
        frames.append(mine.reset_index())
    return pd.concat(frames, ignore_index=True)


def markdown(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, float | np.floating):
            return f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=str(HERE.parent.parent / "shared" / "datasets"))
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,1,2")
    parser.add_argument("--targets", default="0.90,0.95")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--cache", help="folder of full screening orders to reuse (and fill)")
    parser.add_argument("--out", default=str(RESULTS / "stopping.md"))
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    targets = [float(t) for t in args.targets.split(",")]
    started = time.perf_counter()
    suite = default_suite(args.datasets)
    runs = full_orders(suite, seeds, Path(args.cache) if args.cache else None)
    rows = score(runs, targets, args.confidence)
    table = summary(rows)
    halves = by_half(rows, {dataset_name(path) for path in suite_halves(suite)[0]})
    datasets = per_dataset(rows, DEFAULT_RULE)
    command = "python benchmarks/stopping.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = [
        f"# Stopping rules on the ranker's screening orders ({date.today().isoformat()})",
        "",
        f"{len({r['dataset'] for r in runs})} datasets x {len(seeds)} seeds ({len(runs)} runs), "
        f"confidence {args.confidence:.0%}. `valid`: share of runs whose recall at stop reaches the target; "
        "`saved`: mean work saved (N - stop) / N; `vs_buscar`: relative change of `saved` against buscar; "
        "`of_oracle`: `saved` as a share of the oracle's (stop exactly when the ranking first reaches the target).",
        "",
        markdown(table),
        "",
        "## By half of the suite",
        "",
        "The default rule's one free setting (the rate's offset) was chosen on the tuning half "
        "(`screening.ranking.datasets.suite_halves`, as for the ranker); the confirmation half judges it.",
        "",
        markdown(halves),
        "",
        f"## Per dataset: {DEFAULT_RULE} (the default rule)",
        "",
        markdown(datasets),
        "",
        f"Command: `{command.strip()}`",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(report))
    print(markdown(table))
    print()
    print(markdown(halves))
    print()
    print(markdown(datasets))
    print(f"wrote {args.out}; {time.perf_counter() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
