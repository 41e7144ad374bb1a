"""The same project code on a real PostgreSQL server, started by the test on a free local port.

It proves the store is PostgreSQL-ready: the migrations (with PostgreSQL's own
append-only triggers), an import of real records, deduplication, decisions with
undo, and the PRISMA counts. Skipped, with the reason, where PostgreSQL's server
binaries or the psycopg2 driver are missing (`.ci/run` installs them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from screening.decisions import current_labels, decide, undo
from screening.dedupe import dedupe
from screening.ingest import import_file
from screening.prisma import prisma_counts
from screening.reviewers import add_reviewer
from screening.store import init_project, open_store

START_TIMEOUT_S = 30


def _server_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def _why_skip() -> str | None:
    if _server_bin() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
    return None


pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the 'postgres' user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields a URL to create databases under."""
    bindir = _server_bin()
    # not under pytest's own temp root: that is private to this user, and the server may run as 'postgres'
    data = Path(tempfile.mkdtemp(prefix="screening-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "screening", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        _as_server_user(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(data)]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"PostgreSQL did not start on port {port}")
        time.sleep(0.2)
    try:
        yield f"postgresql+psycopg2://screening@127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def _create_database(server_url: str, name: str) -> str:
    import psycopg2

    for _ in range(50):  # the server may still be finishing its start-up
        try:
            con = psycopg2.connect(server_url.replace("postgresql+psycopg2", "postgresql") + "/postgres")
            break
        except psycopg2.OperationalError:
            time.sleep(0.2)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    con.close()
    return f"{server_url}/{name}"


def test_a_whole_review_runs_on_postgresql(pg_server: str, fixtures: Path) -> None:
    url = _create_database(pg_server, "review")
    with init_project(url, name="Estrogens on PostgreSQL") as store:
        for name, source in (("cohen2006_Estrogens.csv.gz", "PubMed"), ("synergy_Nelson_2002.csv.gz", "OpenAlex")):
            import_file(store, fixtures / "dedupe" / name, source_name=source)
        result = dedupe(store)
        assert store.counts().records == 734
        assert result.duplicates >= 355
        add_reviewer(store, "alice")
        first = store.counts().unique
        with store.read() as s:
            before = current_labels(s)
        decide(store, 1, "maybe", reviewer="alice")
        undo(store, reviewer="alice")
        with store.read() as s:
            assert current_labels(s) == before  # the undone 'maybe' left the imported label in force
        counts = prisma_counts(store)
        assert counts.database_results == 734
        assert counts.duplicates == result.duplicates
        assert counts.records_screened == first
    # reopening runs no migration twice, and the database enforces append-only decisions
    with open_store(url) as again:
        assert again.get_setting("name") == "Estrogens on PostgreSQL"
        with pytest.raises(DatabaseError, match="append-only"), again.begin() as s:
            s.execute(text("UPDATE decisions SET value = 'exclude'"))
        with pytest.raises(DatabaseError, match="append-only"), again.begin() as s:
            s.execute(text("DELETE FROM audit_log"))
