"""Running the dashboard as a team server, and backing a project up.

``streamlit_command`` is the exact ``streamlit run app.py -- --db URL`` line that
``screening serve`` runs (docs/deployment.md). ``backup`` copies a SQLite project with
SQLite's online backup API: a consistent copy while reviewers keep deciding. A PostgreSQL
project is backed up with ``pg_dump`` (the error says the command).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import ConfigError, StoreError
from .store import open_store, resolve_url

APP = Path(__file__).resolve().parent.parent / "app.py"
DEFAULT_HOST = "127.0.0.1"  # behind a reverse proxy on the same machine (docs/deployment.md)
DEFAULT_PORT = 8501
BACKUP_PAGES_PER_STEP = 1024  # pages copied between yields to writers


def streamlit_command(
    db: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    base_url_path: str | None = None,
    secrets: str | os.PathLike[str] | None = None,
    app: Path = APP,
) -> list[str]:
    """The ``streamlit run app.py ... -- --db DB`` command line of the server, as a list of arguments.

    ``secrets`` is a ``secrets.toml`` other than ``.streamlit/secrets.toml`` (where ``[auth]``
    configures sign-in).
    """
    if not app.is_file():
        raise ConfigError(f"{app} not found: 'screening serve' runs from a checkout of the project (pip install -e .)")
    if not 0 < int(port) < 65536:
        raise ConfigError(f"--port: {port!r} is not a TCP port")
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.address", host, "--server.port", str(int(port)), "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false"]
    command += ["--runner.postScriptGC", "false"]  # as .streamlit/config.toml: no full collection per rerun
    if base_url_path:
        command += ["--server.baseUrlPath", base_url_path.strip("/")]
    if secrets is not None:
        path = Path(secrets).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"--secrets: {path} is not a file")
        command += ["--secrets.files", str(path)]
    return [*command, "--", "--db", db]


def backup(db: str, target: str | os.PathLike[str]) -> Path:
    """Copy the SQLite project ``db`` to ``target`` (a new file) with SQLite's online backup API."""
    url = resolve_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"{shown} is a PostgreSQL project: back it up with pg_dump, e.g. "
            f"'pg_dump --format=custom --file=review.dump {parsed.database or 'DBNAME'}' (docs/deployment.md)"
        )
    open_store(db).close()  # a project (checked, upgraded) and not some other file
    source = Path(parsed.database or "")
    target = Path(target).expanduser().resolve()
    if target.exists():
        raise ConfigError(f"{target} exists already: a backup never overwrites a file")
    if target == source.resolve():
        raise ConfigError(f"{target}: the backup must be another file than the project")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst, pages=BACKUP_PAGES_PER_STEP)
        with sqlite3.connect(target) as check:
            verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as e:
        target.unlink(missing_ok=True)
        raise StoreError(f"backup of {source} to {target} failed: {e}") from e
    if verdict != "ok":
        raise StoreError(f"backup {target} failed its integrity check: {verdict}")
    return target
