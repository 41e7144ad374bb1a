"""Pieces shared by every CLI command: the --db option and error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from ..errors import ScreeningError
from ..store import DB_ENV, Store, open_store

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        help=f"Project database: a SQLite file path or a SQLAlchemy URL (env {DB_ENV}).",
        show_envvar=False,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


MAX_ID = 2**63 - 1  # the largest id a database integer holds: a larger one is refused as a usage error


def handle_errors(fn: F) -> F:
    """Turn library errors into a one-line message and exit code 1, at the edge."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScreeningError as e:
            raise fail(str(e)) from e

    return wrapper  # type: ignore[return-value]


def open_project(db: str, *, finish_dedupe: bool = True) -> Store:
    """The project, with any deduplication an earlier import did not finish done first (and said)."""
    store = open_store(db)
    if finish_dedupe:
        from ..dedupe import finish_pending_dedupe

        try:
            owed, done = finish_pending_dedupe(store)
        except BaseException:
            store.close()
            raise
        if done is not None:
            err_console.print(
                f"Finished the deduplication owed since the import of {'; '.join(owed)}: "
                f"{done.duplicates} duplicates in {done.groups} groups",
                highlight=False,
            )
    return store
