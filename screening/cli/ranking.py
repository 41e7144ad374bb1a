"""Ranking commands: ``rank`` (what to screen next in a project), ``simulate`` (benchmark runs),
``embed``, and ``build-prior`` / ``prior`` (the inclusion prior used before the first include)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..outputs import check_output, output_path
from ..ranking.embeddings import BUNDLED_MODEL, EmbeddingConfig, SentenceEmbedder
from ..stopping import DEFAULT_RULE, RULES, StoppingRule, make_rule
from .common import DbOption, console, handle_errors, open_project
from .search import progress_bar

if TYPE_CHECKING:
    import pandas as pd

EmbeddingsOption = Annotated[
    bool, typer.Option("--embeddings", help="Add the sentence-embedding SVM (needs requirements-embeddings.txt).")
]


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise ConfigError(f"--seeds: expected integers separated by commas, got {text!r}") from e
    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. 0,1,2")
    return seeds


@handle_errors
def rank_command(
    db: DbOption,
    n: Annotated[int, typer.Option("-n", "--top", min=1, help="How many records to show.")] = 10,
    strategy: Annotated[str, typer.Option(help="relevance, uncertainty or mixed.")] = "relevance",
    random_share: Annotated[float, typer.Option(help="With --strategy mixed: share of picks made at random.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for tie-breaking and random picks.")] = 0,
) -> None:
    """Show the next records to screen, most relevant first, with their scores."""
    from ..ranking.project import ProjectRanker  # scikit-learn loads only for the commands that rank

    with open_project(db) as store:
        ranker = ProjectRanker(store, strategy=strategy, random_share=random_share, seed=seed)
        ranked = ranker.ranking(n)
        table = Table("rank", "record", "score", "title")
        for i, item in enumerate(ranked, start=1):
            title = store.get_record(item.record_id).title
            table.add_row(str(i), str(item.record_id), f"{item.score:.3f}", title[:90])
        console.print(table)
        if not ranked:
            console.print("Every record has a title/abstract decision.")


@handle_errors
def simulate_command(
    datasets: Annotated[
        list[Path], typer.Argument(help="Labeled CSV files (record_id,title,abstract,label_included,...).")
    ],
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each picks the priors.")] = "0,1,2",
    out: Annotated[Path | None, typer.Option(help="Write one row per (dataset, seed) to this CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the recall curves to this PNG.")] = None,
    embeddings: EmbeddingsOption = False,
    stop: Annotated[
        bool,
        typer.Option(
            "--stop",
            help="End each run when the stopping rule says stop (or every record is screened), "
            "not at the last include; adds stop_rule, stop_n, stop_recall to --out.",
        ),
    ] = False,
    stop_rule: Annotated[
        str | None,
        typer.Option(
            "--stop-rule",
            help=f"With --stop: the rule, one of {', '.join(RULES)}.",
            show_default=DEFAULT_RULE,
        ),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(help="With --stop: the recall the rule aims for, between 0 and 1.", show_default="0.95"),
    ] = None,
    confidence: Annotated[
        float | None,
        typer.Option(help="With --stop: the rule's confidence, between 0 and 1.", show_default="0.95"),
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(
            help="Write every run's screening order to this CSV: dataset, seed, position (1 = the included "
            "prior, 2 = the excluded one), record_id (the file's; its row number if it has none), label."
        ),
    ] = None,
) -> None:
    """Simulate screening each dataset with the default ranker (protocol of BENCHMARK.md).

    Without --stop, each run ends at the last include, as BENCHMARK.md asks.

    With --stop, a run ends when the rule says stop (--stop-rule, --target and
    --confidence are refused without --stop), or when every record is screened.
    --out then adds stop_rule, stop_n (records screened when the rule said stop;
    N when it never did) and stop_recall (share of the includes found by then).
    A run may stop before 95% or 100% recall: its n95, wss95 and wss100 (and
    recall10, if it stopped before 10% of the records) are then empty (NaN),
    never guessed, and the means leave them out. A last line gives the mean
    stop_recall, the share of runs that reached the target and the mean work
    saved, (N - stop_n) / N.
    """
    from ..ranking.active import LearnerConfig
    from ..ranking.datasets import read_dataset
    from ..ranking.simulate import plot_recall, simulate_files, trace_frame

    for path in datasets:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
    rule = _stop_rule(stop, stop_rule, target, confidence)  # refuse before the runs, which take minutes
    outputs = [(option, file) for option, file in (("--out", out), ("--plot", plot), ("--trace", trace)) if file]
    written: dict[Path, str] = {}
    for option, file in outputs:
        resolved = check_output(file, inputs=datasets, option=option)
        if resolved in written:
            raise ConfigError(f"{option}: {file} is also the {written[resolved]} file; write to another file")
        written[resolved] = option
    seed_list = _parse_seeds(seeds)
    extra = {"learner": LearnerConfig.with_embeddings(), "embedder": SentenceEmbedder()} if embeddings else {}
    table, runs = simulate_files(datasets, seed_list, stop_rule=rule, **extra)
    if out is not None:
        with output_path(out, inputs=datasets) as tmp:
            table.to_csv(tmp, index=False)
    if plot is not None or trace is not None:
        read = {data.name: data for data in map(read_dataset, datasets)}
        if plot is not None:
            sizes = {name: (data.n_records, data.n_included) for name, data in read.items()}
            with output_path(plot, inputs=datasets, option="--plot") as tmp:
                plot_recall(runs, sizes, tmp)
        if trace is not None:
            with output_path(trace, inputs=datasets, option="--trace") as tmp:
                trace_frame(runs, read).to_csv(tmp, index=False)
    console.print(table.round(3).to_string(index=False))
    metrics = ["wss95", "wss100", "recall10", "seconds"]
    means = table.groupby("dataset")[metrics].mean().mean()
    line = "mean over datasets: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
    missing = {k: int(n) for k, n in table[metrics].isna().sum().items() if n}
    if missing:
        line += "; left out where a run stopped before reaching it: " + ", ".join(
            f"{k} {n} of {len(table)} runs" for k, n in missing.items()
        )
    console.print(line)
    if rule is not None:
        console.print(_stop_summary(table, rule.name, rule.target, rule.confidence))


def _stop_rule(stop: bool, name: str | None, target: float | None, confidence: float | None) -> StoppingRule | None:
    """The rule of --stop; the rule's options without --stop are refused, not ignored."""
    if not stop:
        options = (("--stop-rule", name), ("--target", target), ("--confidence", confidence))
        given = [option for option, value in options if value is not None]
        if given:
            raise ConfigError(f"{given[0]}: only with --stop (without it each run ends at the last include)")
        return None
    return make_rule(
        DEFAULT_RULE if name is None else name,
        target=0.95 if target is None else target,
        confidence=0.95 if confidence is None else confidence,
    )


def _stop_summary(table: pd.DataFrame, name: str, target: float, confidence: float) -> str:
    """One line: how far the runs got when the rule said stop, and what it saved."""
    reached = table["stop_recall"] >= target - 1e-12
    saved = ((table["N"] - table["stop_n"]) / table["N"]).mean()
    return (
        f"stopping by {name} (target {target:.0%}, confidence {confidence:.0%}) over {len(table)} runs: "
        f"mean stop_recall {table['stop_recall'].mean():.3f}, "
        f"{int(reached.sum())} of {len(table)} runs ({reached.mean():.0%}) reached the target, "
        f"mean work saved {saved:.3f}"
    )


@handle_errors
def embed_command(
    db: DbOption,
    off: Annotated[bool, typer.Option("--off", help="Rank without embeddings again (the vectors are kept).")] = False,
    model: Annotated[str, typer.Option(help="The bundled model or a local sentence-transformers folder.")] = (
        BUNDLED_MODEL
    ),
    max_tokens: Annotated[int, typer.Option(min=8, help="Word pieces read per record.")] = 256,
    backend: Annotated[
        str, typer.Option(help="onnx: the model exported once to ONNX Runtime (no torch after); torch: PyTorch.")
    ] = "onnx",
    precision: Annotated[
        str, typer.Option(help="onnx: auto (= int8) or float32; torch: auto, float32 or bfloat16.")
    ] = "auto",
) -> None:
    """Embed every record (once; later runs embed only new ones) and rank with the embeddings."""
    from ..ranking.project import set_embeddings

    with open_project(db) as store:
        if off:
            set_embeddings(store, False)
            console.print("Ranking uses TF-IDF only; the stored embeddings are kept for later.")
            return
        config = EmbeddingConfig(model=model, max_tokens=max_tokens, backend=backend, precision=precision)
        embedder = SentenceEmbedder(config)
        with progress_bar("embedding") as bar:
            task = bar.add_task("embedding", total=None)
            count = set_embeddings(
                store, True, embedder, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
        console.print(f"{count} records embedded ({model}, {backend}); ranking now uses the embeddings.")


@handle_errors
def build_prior_command(
    datasets: Annotated[
        list[Path], typer.Argument(help="Labeled CSV files of past reviews (title,abstract,label_included), one each.")
    ],
    out: Annotated[Path, typer.Option(help="Write the prior here (gzip'd JSON, e.g. prior.json.gz).")],
    min_reviews: Annotated[int, typer.Option(min=2, help="Keep only words found in this many of the reviews.")] = 5,
    c: Annotated[float, typer.Option("--C", min=0.0, help="Inverse regularisation of the logistic regression.")] = 1.0,
) -> None:
    """Fit an inclusion prior on labeled past reviews: what they include, whatever the topic.

    A project ranks with it before its first include (``screening prior --use FILE``); the tool
    ships one fitted on the 21 reviews of the benchmark suite.
    """
    from ..ranking.datasets import read_dataset
    from ..ranking.inclusion import InclusionPrior

    out = check_output(out, inputs=datasets)
    prior = InclusionPrior.fit([read_dataset(path) for path in datasets], min_reviews=min_reviews, C=c)
    prior.save(out)
    console.print(f"{out}: {len(prior.words)} words from {len(prior.trained_on)} reviews")


@handle_errors
def prior_command(
    db: DbOption,
    use: Annotated[
        str | None,
        typer.Option(help="default (the prior shipped with the tool), off, or a file from `screening build-prior`."),
    ] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who changed the setting (audit log).")] = None,
) -> None:
    """Show or set the inclusion prior the project ranks with before its first include."""
    from ..ranking.inclusion import InclusionPrior
    from ..ranking.project import INCLUSION_PRIOR_SETTING, project_prior

    with open_project(db) as store:
        if use is not None:
            value = {"default": None, "off": False}.get(use, ...)
            if value is ...:
                value = InclusionPrior.load(use).to_dict()
            store.set_setting(INCLUSION_PRIOR_SETTING, value, actor=reviewer)
        prior = project_prior(store)
        if prior is None:
            console.print("Inclusion prior: off (before the first include, the topic text alone ranks).")
        else:
            custom = store.get_setting(INCLUSION_PRIOR_SETTING) is not None
            console.print(
                f"Inclusion prior: {'own' if custom else 'default'}, {len(prior.words)} words, "
                f"fitted on {len(prior.trained_on)} reviews ({', '.join(prior.trained_on)})",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    """Add the ranking commands."""
    app.command("rank")(rank_command)
    app.command("simulate")(simulate_command)
    app.command("embed")(embed_command)
    app.command("build-prior")(build_prior_command)
    app.command("prior")(prior_command)
