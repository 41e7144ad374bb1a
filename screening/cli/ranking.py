"""Ranking commands: ``rank`` (what to screen next in a project) and ``simulate`` (benchmark runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..outputs import check_output, output_path
from ..ranking.embeddings import BUNDLED_MODEL, EmbeddingConfig, SentenceEmbedder
from .common import DbOption, console, handle_errors, open_project
from .search import progress_bar

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
) -> None:
    """Simulate screening each dataset with the default ranker (protocol of BENCHMARK.md)."""
    from ..ranking.active import LearnerConfig
    from ..ranking.datasets import read_dataset
    from ..ranking.simulate import plot_recall, simulate_files

    for path in datasets:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
    for option, target in (("--out", out), ("--plot", plot)):
        if target is not None:  # refuse before the runs, which take minutes
            check_output(target, inputs=datasets, option=option)
    extra = {"learner": LearnerConfig.with_embeddings(), "embedder": SentenceEmbedder()} if embeddings else {}
    table, runs = simulate_files(datasets, _parse_seeds(seeds), **extra)
    if out is not None:
        with output_path(out, inputs=datasets) as tmp:
            table.to_csv(tmp, index=False)
    if plot is not None:
        sizes = {}
        for path in datasets:
            data = read_dataset(path)
            sizes[data.name] = (data.n_records, data.n_included)
        with output_path(plot, inputs=datasets, option="--plot") as tmp:
            plot_recall(runs, sizes, tmp)
    console.print(table.round(3).to_string(index=False))
    means = table.groupby("dataset")[["wss95", "wss100", "recall10", "seconds"]].mean().mean()
    console.print("mean over datasets: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))


@handle_errors
def embed_command(
    db: DbOption,
    off: Annotated[bool, typer.Option("--off", help="Rank without embeddings again (the vectors are kept).")] = False,
    model: Annotated[str, typer.Option(help="The bundled model or a local sentence-transformers folder.")] = (
        BUNDLED_MODEL
    ),
    max_tokens: Annotated[int, typer.Option(min=8, help="Word pieces read per record.")] = 256,
) -> None:
    """Embed every record (once; later runs embed only new ones) and rank with the embeddings."""
    from ..ranking.project import set_embeddings

    with open_project(db) as store:
        if off:
            set_embeddings(store, False)
            console.print("Ranking uses TF-IDF only; the stored embeddings are kept for later.")
            return
        embedder = SentenceEmbedder(EmbeddingConfig(model=model, max_tokens=max_tokens))
        with progress_bar("embedding") as bar:
            task = bar.add_task("embedding", total=None)
            count = set_embeddings(
                store, True, embedder, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
        console.print(f"{count} records embedded ({model}); ranking now uses the embeddings.")


def register(app: typer.Typer) -> None:
    """Add the ranking commands."""
    app.command("rank")(rank_command)
    app.command("simulate")(simulate_command)
    app.command("embed")(embed_command)
