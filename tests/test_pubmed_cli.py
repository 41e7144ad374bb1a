"""``screening search`` and ``screening searches``: CliRunner, and a real kill -9 then --resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from eutils_server import EutilsServer, Fault
from typer.testing import CliRunner

from screening.cli import app
from screening.store import Store

EMAIL = "alice.smith@example.org"
API_KEY = "SECRET0123456789"
QUERY = "(psilocybin OR MDMA OR LSD OR ketamine) AND chronic pain"
ROOT = Path(__file__).resolve().parent.parent
KILL_WAIT_S = 60


@pytest.fixture
def server() -> EutilsServer:
    with EutilsServer() as srv:
        yield srv


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ("NCBI_EMAIL", "NCBI_API_KEY", "SCREENING_EUTILS_URL"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def pmid_counts(db_path: Path) -> Counter[str]:
    with sqlite3.connect(db_path) as con:
        return Counter(p for (p,) in con.execute("SELECT pmid FROM records"))


def search_rows(db_path: Path) -> list[tuple]:
    with sqlite3.connect(db_path) as con:
        return con.execute(
            "SELECT status, count_reported, count_retrieved, count_new FROM sources WHERE method = 'search'"
        ).fetchall()


def test_search_then_searches(runner: CliRunner, store: Store, db_path: Path, server: EutilsServer) -> None:
    server.plan("efetch", 1, Fault("status", status=429, retry_after=0.1))
    args = ["search", QUERY, "--db", str(db_path), "--eutils-url", server.url, "--email", EMAIL]
    result = runner.invoke(app, [*args, "--api-key", API_KEY, "--batch-size", "300"])
    assert result.exit_code == 0, result.output
    assert "PubMed reported 604, retrieved 604, new after deduplication 604" in result.output
    assert "604/604" in result.output
    assert EMAIL not in result.output and API_KEY not in result.output
    assert server.of("esearch")[0].params["api_key"] == API_KEY

    log = runner.invoke(app, ["searches", "--db", str(db_path)])
    assert log.exit_code == 0, log.output
    assert "PubMed" in log.output and "604" in log.output and "complete" in log.output


def test_email_comes_from_the_environment_or_the_setting(
    runner: CliRunner, store: Store, db_path: Path, server: EutilsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["search", QUERY, "--db", str(db_path), "--batch-size", "500"]
    missing = runner.invoke(app, [*args, "--eutils-url", server.url])
    assert missing.exit_code == 1 and "NCBI_EMAIL" in missing.output
    assert not server.requests

    store.set_setting("ncbi_email", EMAIL)
    monkeypatch.setenv("SCREENING_EUTILS_URL", server.url)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert server.of("esearch")[0].params["email"] == EMAIL


def test_resume_without_an_unfinished_search_says_so(runner: CliRunner, store: Store, db_path: Path) -> None:
    args = ["search", "--resume", "--db", str(db_path), "--email", EMAIL, "--eutils-url", "http://127.0.0.1:9/"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "no unfinished PubMed search" in result.output


def test_commands_have_help(runner: CliRunner) -> None:
    for command in ("search", "searches"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 200


def test_kill_9_mid_search_then_resume(store: Store, db_path: Path, server: EutilsServer) -> None:
    store.close()
    env = {**os.environ, "NCBI_EMAIL": EMAIL, "SCREENING_EUTILS_URL": server.url}
    env.pop("NCBI_API_KEY", None)
    base = [sys.executable, "-m", "screening", "search", "--db", str(db_path)]
    server.slow_after = ("efetch", 2, 0.5)  # after two batches, each answer takes a while
    proc = subprocess.Popen(
        [*base, QUERY, "--batch-size", "50"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + KILL_WAIT_S
    while len(pmid_counts(db_path)) < 150:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the search never got going"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = pmid_counts(db_path)
    assert 150 <= len(before) < 604 and max(before.values()) == 1
    assert search_rows(db_path)[0][0] == "running"

    server.slow_after = None
    server.expire_histories()
    done = subprocess.run([*base, "--resume"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = pmid_counts(db_path)
    assert set(after) == server.pmids() and max(after.values()) == 1
    assert search_rows(db_path) == [("complete", 604, 604, 604)]
    assert EMAIL not in done.stdout + done.stderr
