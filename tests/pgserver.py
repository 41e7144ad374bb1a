"""A throwaway PostgreSQL server for tests: a fresh cluster on a free local port, removed afterwards.

``tests/conftest.py`` turns it into the session fixture ``pg_server`` (one server for the
whole run) and the per-test fixtures ``pg_database`` (a factory of fresh databases) and
``pg_url`` (one fresh database). Tests that use them are skipped, with the reason, where
PostgreSQL's server binaries or the psycopg2 driver are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
STOP_TIMEOUT_S = 30
MAX_NAME = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)
_numbers = itertools.count(1)


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian's layout), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def why_skip() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    if server_bin() is None:
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> dict[str, Any]:
    """Popen arguments: PostgreSQL refuses to run as root, so run it as the 'postgres' user then.

    (Popen's own user switch rather than ``runuser``: the server is then the child, and gets
    the shutdown signal itself.)
    """
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Start a throwaway cluster on 127.0.0.1; yield a URL to create databases under, then remove it all."""
    bindir = server_bin()
    if bindir is None:
        raise RuntimeError(str(why_skip()))
    # not under pytest's own temp root: that is private to this user, and the server may run as 'postgres'
    data = Path(tempfile.mkdtemp(prefix="screening-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    cluster = data / "cluster"
    initdb = [str(bindir / "initdb"), "-D", str(cluster), "-U", "screening", "--auth=trust", "-E", "UTF8"]
    init = subprocess.run(
        [*initdb, "--no-locale", "--no-sync"], capture_output=True, text=True, cwd=data, **_server_user()
    )
    if init.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}{init.stderr}")
    port = free_port()
    log = data / "server.log"
    command = [str(bindir / "postgres"), "-D", str(cluster), "-p", str(port), "-h", "127.0.0.1", "-k", str(data)]
    # The same server on every machine: initdb would take the collation (--no-locale above: C)
    # and the time zone from this machine's environment. fsync off: a throwaway cluster.
    command += ["-c", "timezone=UTC", "-c", "log_timezone=UTC", "-c", "fsync=off"]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=data, **_server_user())
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start on port {port}:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield f"postgresql+psycopg2://screening@127.0.0.1:{port}"
    finally:
        _stop(server)
        shutil.rmtree(data, ignore_errors=True)


def _stop(server: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT: sessions still connected are ended), then immediate, then kill."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        if server.poll() is not None:
            return
        server.send_signal(sig)
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            pass
    server.kill()
    server.wait()


def _connect(server_url: str):
    """A psycopg2 connection to the server's maintenance database, retried while the server finishes starting."""
    import psycopg2

    dsn = server_url.replace("postgresql+psycopg2://", "postgresql://", 1) + "/postgres"
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            con = psycopg2.connect(dsn)
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            con.autocommit = True
            return con


def unique_name(hint: str = "db") -> str:
    """A database name made from ``hint`` (e.g. the test's name), unique in this run and valid unquoted."""
    suffix = f"_{os.getpid()}_{next(_numbers)}"
    stem = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_") or "db"
    return "t_" + stem[: MAX_NAME - 2 - len(suffix)] + suffix


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; returns its SQLAlchemy URL."""
    con = _connect(server_url)
    try:
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return f"{server_url}/{name}"


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name``, ending any session still connected to it."""
    con = _connect(server_url)
    try:
        with con.cursor() as cur:
            force = " WITH (FORCE)" if con.server_version >= 130000 else ""  # PostgreSQL 13+
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
    finally:
        con.close()
