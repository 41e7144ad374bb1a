"""Build the bundled demo project from the real records in ``data/demo``.

The demo is data, not code: ``data/demo/project.json`` names the review, its
PubMed query, criteria, highlight keywords, exclusion reasons and the files to
import. Building it runs the same import and deduplication as any project.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .dedupe import dedupe
from .errors import ConfigError
from .ingest import import_file
from .store import Store, init_project, set_setting

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
ACTOR = "demo builder"


def load_manifest(data_dir: Path = DEMO_DIR) -> dict:
    path = data_dir / "project.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: demo manifest not found (run from a checkout, or pass --data)") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from e


def build_demo(db: str | os.PathLike[str], *, data_dir: Path = DEMO_DIR) -> Store:
    """Create the demo project at ``db`` (which must not exist yet) and return it open."""
    if "://" not in str(db) and Path(db).exists():
        raise ConfigError(f"{db}: already exists; the demo is built into a new project")
    manifest = load_manifest(data_dir)
    store = init_project(db, name=manifest["name"], query=manifest["query"], criteria=manifest["criteria"], actor=ACTOR)
    with store.begin() as s:
        set_setting(s, "keywords", manifest.get("keywords", {}), actor=ACTOR)
    from .reviewers import add_reason

    for stage, reasons in manifest.get("reasons", {}).items():
        for reason in reasons:
            add_reason(store, reason, stage=stage, actor=ACTOR)
    for entry in manifest["sources"]:
        import_file(store, data_dir / entry["file"], source_name=entry["source"], kind=entry["kind"], actor=ACTOR)
    dedupe(store, actor=ACTOR)
    return store
