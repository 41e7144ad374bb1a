"""Writing output files safely: never onto the project database, never half a file.

Every command that writes a file (exports, history, PRISMA, simulation results)
goes through here, so a mistyped ``--out review.db`` is refused instead of
replacing the project with a CSV, and a full disk or a missing folder is a
one-line :class:`ConfigError` that leaves any existing file as it was.

A regular file is written to a temporary file beside it, flushed to disk and
then renamed over the target in one step. A special file that already exists
(``/dev/stdout``, a named pipe) is written in place, since it cannot be renamed
over.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

from .errors import ConfigError

if TYPE_CHECKING:
    from .store import Store

PathLike: TypeAlias = str | os.PathLike[str]
Protected: TypeAlias = "Store | PathLike | None"

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file is too large",
}
if hasattr(errno, "EDQUOT"):
    _REASONS[errno.EDQUOT] = "disk quota exceeded"


def project_files(protect: Protected) -> list[Path]:
    """The project's SQLite file and its -wal, -shm and -journal files, as given and with symlinks followed."""
    if protect is None:
        return []
    db = Path(protect) if isinstance(protect, str | os.PathLike) else protect.path
    if db is None:  # PostgreSQL: no file to protect
        return []
    bases = [db, _resolve(db, db, "--db")]
    return [Path(f"{base}{suffix}") for base in bases for suffix in SQLITE_COMPANIONS]


def check_output(
    path: PathLike, *, protect: Protected = None, inputs: Iterable[PathLike] = (), option: str = "--out"
) -> Path:
    """Refuse an output that is the project database (or an input file), a directory or in a missing folder.

    Returns the target with symlinks followed, so writing replaces the file a link points to, not the link
    (a special file such as ``/dev/stdout`` is returned as given).
    """
    shown = Path(path)
    target = _resolve(shown, shown, option)
    for db_file in project_files(protect):
        if _same_file(target, db_file):
            which = "" if db_file == shown else f" ({db_file})"
            raise ConfigError(f"{option}: {shown} is the project database{which}; write to another file")
    for source in inputs:
        if _same_file(target, Path(source)):
            raise ConfigError(f"{option}: {shown} is an input file ({source}); write to another file")
    with _as_config_error(shown, option):  # e.g. a folder that may not be looked into
        if _is_special(shown):  # /dev/stdout may resolve to a pipe that has no path
            return shown
        if target.is_dir():
            raise ConfigError(f"{option}: {shown} is a directory")
        folder = target.parent
        if not folder.exists():
            missing = shown.parent if not shown.parent.exists() else folder
            raise ConfigError(f"{option}: folder {missing} does not exist")
        if not folder.is_dir():
            raise ConfigError(f"{option}: {folder} is not a folder")
    return target


@contextmanager
def output_path(
    path: PathLike, *, protect: Protected = None, inputs: Iterable[PathLike] = (), option: str = "--out"
) -> Iterator[Path]:
    """A temporary path to write the output to; it replaces ``path`` only when the block succeeds.

    For writers that take a file name (matplotlib, pandas, the export writers). The temporary
    name keeps the target's suffix, so writers that infer the format from it still do.
    """
    shown = Path(path)
    target = check_output(shown, protect=protect, inputs=inputs, option=option)
    with _as_config_error(shown, option):
        special = _is_special(target)
    if special:
        with _as_config_error(shown, option):
            yield target
        return
    with _as_config_error(shown, option):
        tmp = _temp_file(target)
    try:
        with _as_config_error(shown, option):
            yield tmp
            _commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_output(
    path: PathLike,
    mode: str = "w",
    *,
    protect: Protected = None,
    inputs: Iterable[PathLike] = (),
    option: str = "--out",
    encoding: str = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """An open file (mode ``"w"`` or ``"wb"``) whose content replaces ``path`` only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_output: mode must be 'w' or 'wb', not {mode!r}")
    text = mode == "w"
    with (
        output_path(path, protect=protect, inputs=inputs, option=option) as tmp,
        open(tmp, mode, encoding=encoding if text else None, newline=newline if text else None) as f,
    ):
        yield f


def write_output(
    path: PathLike,
    data: str | bytes,
    *,
    protect: Protected = None,
    inputs: Iterable[PathLike] = (),
    option: str = "--out",
    encoding: str = "utf-8",
) -> Path:
    """Write text (like ``Path.write_text``) or bytes to ``path``, atomically and never onto the project."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with open_output(path, mode, protect=protect, inputs=inputs, option=option, encoding=encoding) as f:
        f.write(data)
    return Path(path)


# -- helpers -------------------------------------------------------------------------
def _resolve(path: Path, shown: Path, option: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ConfigError(f"{option}: cannot follow {shown}: {e}") from e


def _same_file(a: Path, b: Path) -> bool:
    """Same path once symlinks are followed, or the same file on disk (hard links, case-insensitive names)."""
    try:
        return a == b.resolve() or os.path.samefile(a, b)
    except (OSError, RuntimeError):  # one of them does not exist, or a symlink loop
        return False


def _is_special(target: Path) -> bool:
    """An existing file that is not a regular one (a device, a pipe, a socket): written in place."""
    try:
        return not stat.S_ISREG(target.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):  # not there yet
        return False


def _temp_file(target: Path) -> Path:
    """An empty file beside the target, with the target's suffix and the mode a new file would get."""
    prefix = f".{target.stem}-tmp-"
    with tempfile.NamedTemporaryFile(delete=False, dir=target.parent, prefix=prefix, suffix=target.suffix) as f:
        tmp = Path(f.name)
    with suppress(OSError):  # some file systems (FAT, SMB mounts) have no modes to set
        os.chmod(tmp, _mode_for(target))
    return tmp


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets 0o666 less the umask, as ``open`` would give."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _commit(tmp: Path, target: Path) -> None:
    """Flush the finished file to disk, then rename it over the target in one step."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _as_config_error(shown: Path, option: str) -> Iterator[None]:
    """A failed write becomes one line naming the file and the reason."""
    try:
        yield
    except OSError as e:
        raise ConfigError(_describe(e, shown, option)) from e


def _describe(e: OSError, shown: Path, option: str) -> str:
    if e.errno == errno.ENOENT:
        return f"{option}: folder {shown.parent} does not exist"
    if e.errno == errno.EISDIR:
        return f"{option}: {shown} is a directory"
    reason = _REASONS.get(e.errno or 0) or e.strerror or str(e)
    return f"{option}: cannot write {shown}: {reason}"
