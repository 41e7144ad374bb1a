"""Team-server commands: serve (the dashboard for a team) and backup (a SQLite project's online copy)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from ..server import DEFAULT_HOST, DEFAULT_PORT, backup, streamlit_command
from ..store import open_store
from .common import DbOption, console, handle_errors


@handle_errors
def serve_command(
    db: DbOption,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (the reverse proxy's upstream).")] = (
        DEFAULT_HOST
    ),
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = DEFAULT_PORT,
    base_url_path: Annotated[
        str | None, typer.Option("--base-url-path", help="Serve under this path (e.g. 'screening') behind a proxy.")
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option("--secrets", help="A secrets.toml with [auth] other than .streamlit/secrets.toml."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command; do not run it.")] = False,
) -> None:
    """Run the dashboard for a team: 'streamlit run app.py -- --db DB' (sign-in when secrets.toml has [auth])."""
    command = streamlit_command(db, host=host, port=port, base_url_path=base_url_path, secrets=secrets)
    if dry_run:
        console.print(shlex.join(command), highlight=False, soft_wrap=True)
        return
    open_store(db).close()  # a typo in --db is an error here, not a page that says so
    raise typer.Exit(subprocess.call(command))


@handle_errors
def backup_command(
    db: DbOption,
    target: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
) -> None:
    """Copy a SQLite project to a new file while it is in use (SQLite's backup API); PostgreSQL: pg_dump."""
    written = backup(db, target)
    console.print(f"Backed up to {written}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the server commands."""
    app.command("serve")(serve_command)
    app.command("backup")(backup_command)
