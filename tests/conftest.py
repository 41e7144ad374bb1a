"""Shared fixtures: real project databases in temp dirs, and the real files in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.store import Store, init_project

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"


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
