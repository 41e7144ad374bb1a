"""Shared fixtures: real project databases in temp dirs (SQLite files, or databases on a
throwaway PostgreSQL server), and the real files in ../shared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pgserver
import pytest

from screening.store import Store, init_project

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported ONNX models go to a folder of this run, not the user's cache (one export per run)."""
    folder = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCREENING_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def shared() -> Path:
    """The real material beside the checkout; tests that need it skip loudly without it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present")
    return SHARED


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "project.db"


@pytest.fixture
def store(db_path: Path) -> Store:
    s = init_project(db_path, name="Test review", query="psilocybin AND pain")
    yield s
    s.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole run (see tests/pgserver.py); yields its base URL.

    Skips the test, with the reason, where the server binaries or psycopg2 are missing.
    """
    reason = pgserver.why_skip()
    if reason is not None:
        pytest.skip(reason)
    try:
        with pgserver.running_server() as url:
            yield url
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def pg_database(pg_server: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """A factory: ``pg_database(hint)`` creates a fresh, uniquely named database and returns its URL.

    The databases are dropped when the test ends.
    """
    made: list[str] = []

    def make(hint: str = "") -> str:
        name = pgserver.unique_name(f"{request.node.name}_{hint}" if hint else request.node.name)
        made.append(name)
        return pgserver.create_database(pg_server, name)

    yield make
    for name in made:
        pgserver.drop_database(pg_server, name)


@pytest.fixture
def pg_url(pg_database: Callable[[str], str]) -> str:
    """The SQLAlchemy URL of a fresh, empty database on the test server, for this test alone."""
    return pg_database("")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A project database on each backend: a SQLite file path, then a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "project.db")
    return request.getfixturevalue("pg_url")
