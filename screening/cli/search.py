"""``screening search`` (PubMed through E-utilities) and ``screening searches`` (the search log)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import ConfigError
from ..sources.pubmed import (
    API_KEY_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    EMAIL_ENV,
    EUTILS_URL_ENV,
    MAX_BATCH,
    EutilsClient,
    resolve_config,
)
from ..sources.pubmed_search import (
    SearchLogEntry,
    SearchOutcome,
    resume_search,
    search_log,
    search_pubmed,
    unfinished_search,
)
from .common import DbOption, console, err_console, fail, handle_errors, open_project


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    """Records fetched out of PubMed's count, with the time left."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        yield progress


def _report(outcome: SearchOutcome) -> None:
    verb = "resumed and finished" if outcome.resumed else "finished"
    console.print(
        f"Search #{outcome.source_id} {verb}: PubMed reported {outcome.count_reported}, "
        f"retrieved {outcome.count_retrieved}, new after deduplication {outcome.count_new} "
        f"({outcome.slices} date slice(s), {outcome.batches} batch(es)).",
        highlight=False,
        soft_wrap=True,
    )
    for warning in outcome.warnings:
        err_console.print(f"[yellow]Warning:[/] {warning}", highlight=False, soft_wrap=True)


@handle_errors
def search(
    db: DbOption,
    query: Annotated[str | None, typer.Argument(help="PubMed query, as typed in PubMed's search box.")] = None,
    email: Annotated[str | None, typer.Option(help=f"Contact email NCBI asks for (env {EMAIL_ENV}).")] = None,
    api_key: Annotated[
        str | None, typer.Option(help=f"NCBI API key: 10 requests/s instead of 3 (env {API_KEY_ENV}).")
    ] = None,
    mindate: Annotated[str | None, typer.Option(help="Earliest date: YYYY, YYYY/MM or YYYY/MM/DD.")] = None,
    maxdate: Annotated[str | None, typer.Option(help="Latest date: YYYY, YYYY/MM or YYYY/MM/DD.")] = None,
    datetype: Annotated[
        str, typer.Option(help="Which date the limits apply to: edat (Entrez), pdat (publication), mdat.")
    ] = "edat",
    eutils_url: Annotated[
        str | None, typer.Option(help=f"E-utilities base URL: a proxy, mirror or test server (env {EUTILS_URL_ENV}).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the last interrupted search.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Records per efetch request.")] = MAX_BATCH,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each answer before retrying.")
    ] = DEFAULT_READ_TIMEOUT,
    max_retries: Annotated[int, typer.Option(min=0, help="Retries of a failed request.")] = DEFAULT_MAX_RETRIES,
) -> None:
    """Search PubMed and add every record it reports to the project (a new search-log entry).

    Run the same query again later to add only the PMIDs that are new since. After an
    interruption (Ctrl-C, a crash, a network outage), run with --resume.
    """
    if not resume and not query:
        raise typer.BadParameter("give a QUERY, or --resume to finish an interrupted search")
    store = open_project(db)
    try:
        config = resolve_config(store, email=email, api_key=api_key, eutils_url=eutils_url)
        if resume and unfinished_search(store, query) is None:
            what = f"of {query!r} " if query else ""
            raise ConfigError(f"--resume: no unfinished PubMed search {what}in this project")
        with (
            EutilsClient.from_config(config, timeout=timeout, max_retries=max_retries) as client,
            progress_bar("PubMed") as bar,
        ):
            task = bar.add_task("PubMed", total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                if resume:
                    outcome = resume_search(store, client, query=query, on_progress=on_progress)
                else:
                    outcome = search_pubmed(
                        store,
                        client,
                        query or "",
                        mindate=mindate,
                        maxdate=maxdate,
                        datetype=datetype,
                        batch_size=batch_size,
                        on_progress=on_progress,
                    )
            except KeyboardInterrupt:
                raise fail("interrupted; every batch fetched so far is kept: run again with --resume", 130) from None
        _report(outcome)
    finally:
        store.close()


@handle_errors
def searches(db: DbOption) -> None:
    """List the project's PubMed searches: the PRISMA-S search log."""
    store = open_project(db)
    try:
        entries = search_log(store)
    finally:
        store.close()
    if not entries:
        console.print("No PubMed searches yet: run 'screening search \"QUERY\"'.")
        return
    console.print("[bold]Search log (PRISMA-S)[/]")
    for e in entries:
        _print_entry(e)


def _print_entry(e: SearchLogEntry) -> None:
    """One search, as a block: long queries stay readable in a narrow terminal."""
    reported = "?" if e.count_reported is None else e.count_reported
    lines = [
        f"[bold]#{e.source_id}[/] {e.database}  {e.run_at.replace('T', ' ')[:16]} UTC  {e.status}"
        f"  (screening {e.tool_version or '?'})",
        f"  query:   {escape(e.query)}",
        f"  records: reported {reported}, retrieved {e.count_retrieved}, new {e.count_new}",
    ]
    if e.limits:
        lines.insert(2, f"  limits:  {e.limits}")
    lines += [f"  [yellow]warning:[/] {escape(w)}" for w in e.warnings]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``search`` and ``searches`` to the app."""
    app.command("search")(search)
    app.command("searches")(searches)
