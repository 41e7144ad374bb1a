"""``screening simulate --stop`` and ``--trace`` through the real CLI, on a real dataset (Donners 2021, 258 records,
15 includes, in tests/fixtures/ranking): the stop columns agree with the trace, and the trace with the input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.ranking.datasets import priors
from screening.ranking.simulate import RESULT_COLUMNS, STOP_COLUMNS, TRACE_COLUMNS
from screening.stopping import DEFAULT_RULE, RULES, first_stop, make_rule

DATA = Path(__file__).resolve().parent / "fixtures" / "ranking" / "synergy_Donners_2021.csv.gz"
SEEDS = (0, 1)


def _input() -> pd.DataFrame:
    return pd.read_csv(DATA, dtype={"record_id": str}, keep_default_na=False)


def _simulate(folder: Path, *options: str, seeds: tuple[int, ...] = SEEDS) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Run the command; the --out table, the --trace table and what it printed."""
    out, trace = folder / "results.csv", folder / "trace.csv"
    args = ["simulate", str(DATA), "--seeds", ",".join(map(str, seeds)), "--out", str(out), "--trace", str(trace)]
    result = CliRunner().invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out, keep_default_na=True), pd.read_csv(trace, dtype={"record_id": str}), result.output


@pytest.fixture(scope="module")
def buscar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    return _simulate(tmp_path_factory.mktemp("buscar"), "--stop", "--stop-rule", "buscar")


@pytest.fixture(scope="module")
def early_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A lax target and confidence: buscar stops before every include is found."""
    folder = tmp_path_factory.mktemp("early")
    return _simulate(folder, "--stop", "--stop-rule", "buscar", "--target", "0.5", "--confidence", "0.5")


def _labels(trace: pd.DataFrame, seed: int) -> np.ndarray:
    run = trace[trace["seed"] == seed].sort_values("position")
    return run["label"].to_numpy()


def _check_stops_agree(table: pd.DataFrame, trace: pd.DataFrame, rule_name: str, target: float, confidence: float):
    rule = make_rule(rule_name, target=target, confidence=confidence)
    for row in table.itertuples():
        labels = _labels(trace, row.seed)
        assert row.stop_rule == rule_name
        assert 2 <= row.stop_n <= row.N
        assert len(labels) == row.stop_n  # the run ends where the rule said stop
        assert row.stop_recall == pytest.approx(labels[: row.stop_n].sum() / row.R, abs=1e-12)
        expected = first_stop(rule, labels, int(row.N))
        assert row.stop_n == (row.N if expected is None else expected)


def test_stop_adds_columns_that_agree_with_the_trace(buscar_run) -> None:
    table, trace, output = buscar_run
    assert list(table.columns) == RESULT_COLUMNS + STOP_COLUMNS
    assert table["seed"].tolist() == list(SEEDS)
    assert (table["N"] == 258).all() and (table["R"] == 15).all()
    _check_stops_agree(table, trace, "buscar", 0.95, 0.95)
    assert "mean stop_recall" in output and "reached the target" in output and "mean work saved" in output


def test_trace_holds_each_run_in_order_with_the_inputs_ids_and_labels(buscar_run) -> None:
    table, trace, _ = buscar_run
    assert list(trace.columns) == TRACE_COLUMNS
    source = _input()
    label_of = dict(zip(source["record_id"], source["label_included"].astype(int), strict=True))
    row_of = {rid: i for i, rid in enumerate(source["record_id"])}
    for row in table.itertuples():
        run = trace[(trace["dataset"] == row.dataset) & (trace["seed"] == row.seed)]
        assert run["position"].tolist() == list(range(1, row.stop_n + 1))
        assert run["label"].iloc[0] == 1 and run["label"].iloc[1] == 0  # the priors, BENCHMARK.md
        prior_inc, prior_exc = priors(source["label_included"].to_numpy(), row.seed)
        assert run["record_id"].iloc[:2].tolist() == [source["record_id"][prior_inc], source["record_id"][prior_exc]]
        assert set(run["record_id"]) <= set(row_of) and run["record_id"].is_unique
        assert run["label"].tolist() == [label_of[rid] for rid in run["record_id"]]


def test_a_run_that_stops_early_leaves_the_unreached_metrics_empty(early_run) -> None:
    table, trace, output = early_run
    _check_stops_agree(table, trace, "buscar", 0.5, 0.5)
    needed95 = math.ceil(0.95 * 15)
    for row in table.itertuples():
        found = _labels(trace, row.seed).sum()
        assert found < row.R and row.stop_n < row.N  # it stopped before the last include
        assert math.isnan(row.wss100)
        assert math.isnan(row.n95) == math.isnan(row.wss95) == (found < needed95)
        assert row.wss95_opt == pytest.approx((258 - needed95) / 258 - 0.05)
        assert not math.isnan(row.recall10) or row.stop_n < round(0.1 * 258)
    reached = int((table["stop_recall"] >= 0.5).sum())
    assert f"{reached} of {len(table)} runs" in output
    work_saved = ((table["N"] - table["stop_n"]) / table["N"]).mean()
    assert f"mean work saved {work_saved:.3f}" in output


def test_stop_uses_the_default_rule(tmp_path: Path) -> None:
    table, trace, _ = _simulate(tmp_path, "--stop", seeds=(0,))
    _check_stops_agree(table, trace, DEFAULT_RULE, 0.95, 0.95)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_stops_where_first_stop_says(tmp_path: Path, name: str) -> None:
    table, trace, _ = _simulate(tmp_path, "--stop", "--stop-rule", name, "--target", "0.9", seeds=(2,))
    _check_stops_agree(table, trace, name, 0.9, 0.95)


def test_without_stop_the_run_ends_at_the_last_include(tmp_path: Path) -> None:
    table, trace, _ = _simulate(tmp_path)
    assert list(table.columns) == RESULT_COLUMNS
    for row in table.itertuples():
        labels = _labels(trace, row.seed)
        assert labels[-1] == 1 and labels.sum() == row.R
        assert labels[0] == 1 and labels[1] == 0


def test_trace_of_a_file_without_record_ids_gives_row_numbers(tmp_path: Path) -> None:
    source = _input().drop(columns="record_id")
    data = tmp_path / "no_ids.csv"
    source.to_csv(data, index=False)
    trace = tmp_path / "trace.csv"
    result = CliRunner().invoke(app, ["simulate", str(data), "--seeds", "0", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    run = pd.read_csv(trace)
    assert run["label"].tolist() == [source["label_included"].iloc[rid - 1] for rid in run["record_id"]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--stop", "--stop-rule", "no-such-rule"], "--stop-rule: 'no-such-rule' is not a rule"),
        (["--stop", "--target", "1.5"], "--target: 1.5 is not between 0 and 1"),
        (["--stop", "--confidence", "0"], "--confidence: 0.0 is not between 0 and 1"),
        (["--target", "0.9"], "--target: only with --stop"),
        (["--stop-rule", "buscar"], "--stop-rule: only with --stop"),
        (["--stop", "--trace", str(DATA)], "is an input file"),
        (["--trace", "{out}"], "is also the --out file"),
    ],
)
def test_refusals_are_one_line_and_come_before_the_runs(tmp_path: Path, options: list[str], message: str) -> None:
    out = tmp_path / "results.csv"
    options = [option.replace("{out}", str(out)) for option in options]
    result = CliRunner().invoke(app, ["simulate", str(DATA), "--seeds", "0", "--out", str(out), *options])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not out.exists()  # refused before any run
    assert DATA.stat().st_size > 10_000  # the input is untouched
