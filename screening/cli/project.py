"""Project commands: init, configure, import, dedupe, status, export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..dedupe import dedupe, judge_pair, uncertain_pairs
from ..errors import ConfigError
from ..ingest import import_file
from ..outputs import output_path
from ..queries import EXPORT_SELECTIONS, export_rows, status
from ..setup import ProjectSetup, read_setup, save_setup
from ..store import init_project
from .common import MAX_ID, DbOption, console, err_console, handle_errors, open_project


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@handle_errors
def init_command(
    db: Annotated[str, typer.Argument(help="Project file (SQLite path) or SQLAlchemy URL to create.")],
    name: Annotated[str, typer.Option("--name", help="The review's title.")],
    query: Annotated[str | None, typer.Option(help="The search query, also used to rank before any label.")] = None,
    criteria: Annotated[str | None, typer.Option(help="Inclusion criteria text, used for ranking.")] = None,
) -> None:
    """Create a review project."""
    with init_project(db, name=name, query=query, criteria=criteria) as store:
        console.print(f"Created project [bold]{name}[/] at {store.path or store.url}")


@handle_errors
def configure_command(
    db: DbOption,
    name: Annotated[str | None, typer.Option("--name", help="The review's title.")] = None,
    query: Annotated[str | None, typer.Option(help="The search query, also used to rank before any label.")] = None,
    criteria: Annotated[str | None, typer.Option(help="Inclusion criteria text, used for ranking.")] = None,
    include_keywords: Annotated[
        list[str] | None,
        typer.Option(
            "--include-keyword",
            help="A word to highlight as a sign of inclusion (repeat it); the list given replaces the project's, "
            "and --include-keyword '' empties it.",
        ),
    ] = None,
    exclude_keywords: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-keyword",
            help="A word to highlight as a sign of exclusion (repeat it); the list given replaces the project's, "
            "and --exclude-keyword '' empties it.",
        ),
    ] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who changed the settings (audit log).")] = None,
    show: Annotated[bool, typer.Option("--show", help="Print the settings (after any change).")] = False,
) -> None:
    """Set the project's name, query, inclusion criteria and highlight keywords; only what changed is written.

    Options not given keep their value. Without any option, prints the settings.
    """
    with open_project(db, finish_dedupe=False) as store:
        current = read_setup(store)
        given = {
            "name": name,
            "query": query,
            "criteria": criteria,
            "include_keywords": None if include_keywords is None else tuple(include_keywords),
            "exclude_keywords": None if exclude_keywords is None else tuple(exclude_keywords),
        }
        changes = {field: value for field, value in given.items() if value is not None}
        if changes:
            changed = save_setup(store, replace(current, **changes), base=current, actor=reviewer)
            console.print(f"Saved {', '.join(changed)}" if changed else "Nothing changed", highlight=False)
        if show or not changes:
            _print_setup(read_setup(store))


def _print_setup(setup: ProjectSetup) -> None:
    table = Table(show_header=False)
    for label, value in (
        ("name", setup.name),
        ("query", setup.query),
        ("criteria", setup.criteria),
        ("include keywords", ", ".join(setup.include_keywords)),
        ("exclude keywords", ", ".join(setup.exclude_keywords)),
    ):
        table.add_row(label, Text(value))  # as typed: a query's [tiab] is not markup
    console.print(table)


@handle_errors
def import_command(
    files: Annotated[
        list[Path], typer.Argument(help="Files to import: PubMed XML, MEDLINE/.nbib, RIS, CSV, TSV, XLSX, BibTeX.")
    ],
    db: DbOption,
    source: Annotated[str, typer.Option("--source", help="Database or register the file came from, e.g. Embase.")],
    kind: Annotated[
        str, typer.Option(help="database, register, website, organisation, citation or other.")
    ] = "database",
    fmt: Annotated[str | None, typer.Option("--format", help="Override format detection.")] = None,
    query: Annotated[str | None, typer.Option(help="The query that produced the file (search log).")] = None,
    no_dedupe: Annotated[bool, typer.Option("--no-dedupe", help="Skip deduplication after importing.")] = False,
    again: Annotated[
        bool, typer.Option("--again", help="Import a file whose content is in the project already, once more.")
    ] = False,
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            help="include or exclude: label every record the file does not label itself (e.g. known includes).",
        ),
    ] = None,
) -> None:
    """Import files, one transaction each; a malformed file imports nothing and says where it is broken.

    A file imported before (the same content) is refused unless --again. What a reader had
    to change on the way in (a line that is not UTF-8, a field cut short) is printed as a warning.
    """
    for path in files:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
    with open_project(db, finish_dedupe=False) as store, _progress() as progress:
        for path in files:
            task = progress.add_task(f"importing {path.name}", total=None)
            result = import_file(
                store,
                path,
                source_name=source,
                kind=kind,
                fmt=fmt,
                query=query,
                again=again,
                label=label,
                on_chunk=lambda n, task=task: progress.advance(task, n),
            )
            progress.remove_task(task)
            _print_notices(result.notices)
            labels = f", {result.labels} labels as prior decisions" if result.labels else ""
            deleted = f", {result.deleted} PMIDs withdrawn" if result.deleted else ""
            console.print(f"{path.name}: {result.count} records from {source}{labels}{deleted}")
        if not no_dedupe:
            _print_dedupe(dedupe(store))


SHOWN_NOTICES = 20


def _print_notices(notices: list) -> None:
    """Each change a reader made, on stderr: the first ones, then how many more the audit log holds."""
    for item in notices[:SHOWN_NOTICES]:
        err_console.print(f"[bold yellow]Warning:[/] {item}", highlight=False)
    if len(notices) > SHOWN_NOTICES:
        err_console.print(f"[bold yellow]Warning:[/] and {len(notices) - SHOWN_NOTICES} more (see the audit log)")


def _print_dedupe(result: object) -> None:
    console.print(
        f"Deduplicated: {result.records} records, {result.duplicates} duplicates in {result.groups} groups "
        f"({result.new_duplicates} new), {result.uncertain} new uncertain pairs"
    )


@handle_errors
def dedupe_command(
    db: DbOption,
    review: Annotated[bool, typer.Option("--review", help="List the uncertain pairs instead of matching.")] = False,
    same: Annotated[
        list[int] | None, typer.Option("--same", min=1, max=MAX_ID, help="Pair id judged a duplicate: merge it.")
    ] = None,
    different: Annotated[
        list[int] | None,
        typer.Option("--different", min=1, max=MAX_ID, help="Pair id judged distinct: never merge it (split it)."),
    ] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who judged the pairs (audit log).")] = None,
) -> None:
    """Group duplicate records (PMID, DOI, then fuzzy title/abstract), never deleting any."""
    with open_project(db, finish_dedupe=bool(same or different or review)) as store:
        for pair in same or []:
            judge_pair(store, pair, duplicate=True, actor=reviewer)
        for pair in different or []:
            judge_pair(store, pair, duplicate=False, actor=reviewer)
        if review:
            _print_pairs(store)
        elif not same and not different:
            _print_dedupe(dedupe(store, actor=reviewer))


def _print_pairs(store: object) -> None:
    pairs = uncertain_pairs(store)
    table = Table(title=f"{len(pairs)} uncertain pairs (judge with --same ID / --different ID)")
    for col in ("pair", "score", "record", "title", "year"):
        table.add_column(col)
    for p in pairs:
        for i, rec in enumerate((p.a, p.b)):
            table.add_row(
                str(p.pair_id) if i == 0 else "",
                f"{p.score:.2f}" if i == 0 else "",
                str(rec.id),
                rec.title[:100],
                str(rec.year or ""),
                end_section=i == 1,
            )
    console.print(table)


@handle_errors
def status_command(db: DbOption) -> None:
    """Counts by source, stage and decision; says so when a deduplication is owed."""
    with open_project(db, finish_dedupe=False) as store:
        report = status(store)
    console.print(
        f"[bold]{report.name}[/]: {report.records} records, {report.unique} unique, "
        f"{report.duplicates} duplicates, {report.uncertain_pairs} uncertain pairs to review"
    )
    table = Table(title="Sources")
    for col in ("id", "source", "kind", "how", "file or query", "run", "reported", "retrieved", "unique"):
        table.add_column(col)
    for s in report.sources:
        table.add_row(
            str(s.id), s.name, s.kind, s.method, s.detail[:60], s.run_at,
            "" if s.count_reported is None else str(s.count_reported), str(s.retrieved), str(s.unique),
        )  # fmt: skip
    console.print(table)
    for stage, counts in report.stages.items():
        parts = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing yet"
        console.print(f"{stage}: {parts}")
    for line in report.stops:
        console.print(line, highlight=False)
    if report.undeduplicated:
        console.print(
            f"[bold yellow]Not deduplicated yet:[/] {'; '.join(report.undeduplicated)} "
            "(an import that stopped before its deduplication, or --no-dedupe): run 'screening dedupe'",
            highlight=False,
        )


@handle_errors
def export_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    what: Annotated[str, typer.Option(help=f"Which records: {', '.join(EXPORT_SELECTIONS)}.")] = "all",
    fmt: Annotated[str, typer.Option("--format", help="csv, ris or bibtex.")] = "csv",
) -> None:
    """Export unique records (a duplicate group once, listing all its sources)."""
    from ..export import EXPORT_FORMATS

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    with open_project(db) as store:
        rows = list(export_rows(store, what))
    with output_path(out, protect=store) as tmp:  # the writer's own format, written atomically
        EXPORT_FORMATS[fmt](rows, tmp)
    console.print(f"Wrote {len(rows)} records to {out}")


@handle_errors
def demo_command(
    db: Annotated[Path, typer.Argument(help="Where to create the demo project.")] = Path("data/demo.db"),
    data: Annotated[Path | None, typer.Option(help="Folder holding project.json and the record files.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Replace an existing demo project at DB.")] = False,
) -> None:
    """Build the bundled demo project (psychedelics for chronic pain) from real records."""
    from ..demo import DEMO_DIR, build_demo

    if db.exists():
        if not rebuild:
            console.print(f"{db} already exists; open it, or pass --rebuild")
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    with build_demo(db, data_dir=data or DEMO_DIR) as store:
        counts = store.counts()
    console.print(f"Built {db}: {counts.records} records, {counts.unique} unique, ready to screen")


def register(app: typer.Typer) -> None:
    """Add the project commands."""
    app.command("init")(init_command)
    app.command("configure")(configure_command)
    app.command("import")(import_command)
    app.command("dedupe")(dedupe_command)
    app.command("status")(status_command)
    app.command("export")(export_command)
    app.command("demo")(demo_command)
