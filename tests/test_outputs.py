"""Output files: never written onto the project database, never left half written.

Real projects in temp dirs and the real CLI: every command that writes a file
refuses an ``--out`` that is the project (by name, companion file, symlink,
relative path or hard link), and a missing folder, a directory or a full disk
is a one-line error that leaves no partial file and an existing file as it was.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError
from screening.export import EXPORT_FORMATS
from screening.ingest import add_citations, new_source
from screening.outputs import check_output, open_output, output_path, project_files, write_output
from screening.queries import export_rows
from screening.sources import Citation
from screening.store import Store, open_store

runner = CliRunner()
OLD = "the file as it was before\n"


def run(*args: object, ok: bool = True) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == (0 if ok else 1), result.output
    return result.output


def one_line_error(*args: object) -> str:
    """Run a command that must fail, and return its single ``Error: ...`` line."""
    lines = run(*args, ok=False).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files the safe writer would have left behind."""
    return sorted(p.name for p in folder.iterdir() if "-tmp-" in p.name)


@pytest.fixture
def db(store: Store, db_path: Path) -> Path:
    """A project with three records, each excluded by alice at title/abstract (so PRISMA adds up)."""
    with store.begin() as s:
        source = new_source(s, name="PubMed")
        citations = [
            Citation(title="Psilocybin for cluster headache", authors=["Schindler EAD"], year="2021", pmid="1"),
            Citation(title="LSD and phantom limb pain", journal="Pain", doi="10.1000/x.2", pmid="2"),
            Citation(title="Ketamine, {braces} & 50% specials", abstract="Line one.\nLine two.", pmid="3"),
        ]
        add_citations(s, source, citations)
    run("reviewers", "add", "alice", "--db", db_path)
    for rid in (1, 2, 3):
        run("decide", rid, "exclude", "--db", db_path, "--reviewer", "alice")
    return db_path


def assert_intact(db: Path) -> None:
    """The project still opens, with alice's decisions on it."""
    with open_store(db) as s:
        assert s.counts().records == 3
    history = json.loads(run("history", 1, "--db", db, "--format", "json"))
    assert [(d["reviewer"], d["value"]) for d in history["decisions"]] == [("alice", "exclude")]
    assert leftovers(db.parent) == []


# -- the project database is never an output ---------------------------------------
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_export_onto_the_project_or_its_companions_is_refused(db: Path, suffix: str) -> None:
    target = Path(f"{db}{suffix}")
    error = one_line_error("export", "--db", db, "--out", target)
    assert f"--out: {target} is the project database" in error
    assert_intact(db)


def test_export_onto_a_symlink_to_the_project_is_refused(db: Path, tmp_path: Path) -> None:
    link = tmp_path / "looks-harmless.csv"
    link.symlink_to(db)
    assert "is the project database" in one_line_error("export", "--db", db, "--out", link)
    assert link.is_symlink()
    assert_intact(db)


def test_export_onto_a_hard_link_to_the_project_is_refused(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy.csv"
    os.link(db, other)
    assert "is the project database" in one_line_error("export", "--db", db, "--out", other)
    assert_intact(db)


def test_a_relative_out_that_resolves_to_the_project_is_refused(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    for out in ("../project.db", "./../sub/../project.db-wal"):
        assert f"--out: {Path(out)} is the project database" in one_line_error("export", "--db", db, "--out", out)
    # and a --db reached through a symlink still protects the real file and its companions
    link = tmp_path / "alias.db"
    link.symlink_to(db)
    assert "is the project database" in one_line_error("export", "--db", link, "--out", f"{db}-wal")
    assert_intact(db)


def test_history_onto_the_project_is_refused(db: Path) -> None:
    for fmt in ("csv", "json"):
        error = one_line_error("history", 1, "--db", db, "--format", fmt, "--out", db)
        assert f"--out: {db} is the project database" in error
    assert_intact(db)


@pytest.mark.parametrize("fmt", ["csv", "json", "svg", "png"])
def test_prisma_onto_the_project_is_refused(db: Path, fmt: str) -> None:
    error = one_line_error("prisma", "--db", db, "--format", fmt, "--out", db)
    assert f"--out: {db} is the project database" in error
    assert_intact(db)


def test_simulate_refuses_to_overwrite_its_dataset_before_running(fixtures: Path, tmp_path: Path) -> None:
    data = tmp_path / "donners.csv.gz"
    data.write_bytes((fixtures / "ranking" / "synergy_Donners_2021.csv.gz").read_bytes())
    before = data.read_bytes()
    assert "--out:" in one_line_error("simulate", data, "--out", data)
    assert "--plot:" in one_line_error("simulate", data, "--plot", data)
    assert "folder" in one_line_error("simulate", data, "--out", tmp_path / "nowhere" / "r.csv")
    assert data.read_bytes() == before


# -- file errors: one line, no partial file, the old file untouched ------------------
def test_a_missing_folder_is_one_line_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "export.csv"
    assert one_line_error("export", "--db", db, "--out", out) == f"Error: --out: folder {out.parent} does not exist"
    assert not out.parent.exists()
    assert "does not exist" in one_line_error("history", 1, "--db", db, "--format", "csv", "--out", out)
    assert "does not exist" in one_line_error("prisma", "--db", db, "--out", tmp_path / "nowhere" / "p.png")
    assert not out.parent.exists()


def test_a_directory_as_out_is_one_line(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    assert one_line_error("export", "--db", db, "--out", folder) == f"Error: --out: {folder} is a directory"
    assert list(folder.iterdir()) == []
    a_file = tmp_path / "notes.txt"
    a_file.write_text(OLD, encoding="utf-8")
    error = one_line_error("export", "--db", db, "--out", a_file / "export.csv")
    assert error == f"Error: --out: {a_file} is not a folder"
    assert a_file.read_text(encoding="utf-8") == OLD


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up when the finished file is flushed, as it does on many file systems."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize(
    "command",
    [
        ("export", "--format", "csv"),
        ("export", "--format", "ris"),
        ("history", 1, "--format", "csv"),
        ("prisma", "--format", "json"),
        ("prisma", "--format", "svg"),
        ("prisma", "--format", "png"),
    ],
)
def test_a_full_disk_leaves_the_existing_file_unchanged(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple
) -> None:
    out = tmp_path / "out" / "result.txt"
    out.parent.mkdir()
    out.write_text(OLD, encoding="utf-8")
    _disk_full(monkeypatch)
    error = one_line_error(*command, "--db", db, "--out", out)
    assert error == f"Error: --out: cannot write {out}: no space left on the device"
    assert out.read_text(encoding="utf-8") == OLD
    assert leftovers(out.parent) == []


def test_a_full_disk_leaves_no_new_file(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "export.csv"
    _disk_full(monkeypatch)
    assert "no space left" in one_line_error("export", "--db", db, "--out", out)
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_dev_full_is_written_in_place_and_reports_a_full_disk(db: Path) -> None:
    """A device is not replaced by a file: it is written in place, and /dev/full really is full."""
    assert "no space left on the device" in one_line_error("export", "--db", db, "--out", "/dev/full")
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
    assert "Wrote 3 records to /dev/null" in run("export", "--db", db, "--out", "/dev/null")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


# -- normal writes -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_export_is_byte_for_byte_the_writers_format(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"export.{fmt}"
    out.write_text(OLD, encoding="utf-8")  # replaced whole, not appended to
    assert "Wrote 3 records" in run("export", "--db", db, "--format", fmt, "--out", out)
    reference = tmp_path / f"reference.{fmt}"
    with open_store(db) as s:
        EXPORT_FORMATS[fmt](list(export_rows(s, "all")), reference)
    assert out.read_bytes() == reference.read_bytes()
    assert leftovers(tmp_path) == []
    assert_intact(db)


def test_a_write_keeps_permissions_and_follows_a_symlink(db: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text(OLD, encoding="utf-8")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    run("export", "--db", db, "--out", link)
    assert link.is_symlink() and real.read_text(encoding="utf-8").startswith("id,title")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    new = tmp_path / "new.csv"
    run("history", 1, "--db", db, "--format", "csv", "--out", new)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_prisma_diagrams_are_written(db: Path, tmp_path: Path) -> None:
    run("prisma", "--db", db, "--out", tmp_path / "p.svg")
    run("prisma", "--db", db, "--out", tmp_path / "p.png")
    assert "(n = 3)" in (tmp_path / "p.svg").read_text(encoding="utf-8")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert leftovers(tmp_path) == []


# -- the library ---------------------------------------------------------------------
def test_project_files_of_a_store_and_of_a_path(store: Store, db_path: Path) -> None:
    names = {p.name for p in project_files(store)}
    assert names == {"project.db", "project.db-wal", "project.db-shm", "project.db-journal"}
    assert project_files(db_path) == project_files(str(db_path))
    assert project_files(None) == []


def test_an_error_inside_the_block_removes_the_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text(OLD, encoding="utf-8")
    with pytest.raises(RuntimeError), open_output(out) as f:
        f.write("half a ")
        raise RuntimeError("the writer broke")
    with pytest.raises(ConfigError, match="no space left"), output_path(out) as tmp:
        tmp.write_text("half a file")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert out.read_text(encoding="utf-8") == OLD and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_os_errors_become_one_line_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    out = tmp_path / "out.json"

    def replace(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConfigError) as e:
        write_output(out, b"{}", option="--plot")
    assert str(e.value) == f"--plot: cannot write {out}: {reason}"
    assert not out.exists() and leftovers(tmp_path) == []


def test_check_output_returns_the_real_target(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert check_output(link) == real.resolve()
    with pytest.raises(ConfigError, match="is an input file"):
        check_output(link, inputs=[real])
    assert write_output(tmp_path / "text.txt", "é\n").read_bytes() == "é\n".encode()
