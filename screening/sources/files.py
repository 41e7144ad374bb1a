"""Which reader a file needs, and the text-file opening every text reader shares.

``detect_format`` goes by the extension and, when that is ambiguous (``.txt``,
``.xml``, ``.gz``) or unknown, by the first bytes. ``read_file`` dispatches to the
reader of that format; every reader streams and raises
:class:`~screening.errors.ImportFormatError` on malformed input.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ..errors import ConfigError, ImportFormatError, ScreeningError
from . import Citation

FORMATS = ("pubmed_xml", "medline", "ris", "csv", "tsv", "xlsx")
# text encodings tried in order: exports from Windows tools are often cp1252 or Latin-1
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
SNIFF_BYTES = 4096
_CHUNK = 1 << 20

_EXTENSIONS = {
    ".xml": "pubmed_xml",
    ".nbib": "medline",
    ".medline": "medline",
    ".ris": "ris",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
}


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def _head(path: Path) -> bytes:
    try:
        with open_binary(path) as f:
            return f.read(SNIFF_BYTES)
    except (OSError, EOFError) as e:
        raise ImportFormatError(str(path), None, None, f"cannot read: {e}") from e


def _sniff(head: bytes) -> str | None:
    """The format the first bytes show, if they show one."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"PK\x03\x04"):
        return "xlsx"
    if text.startswith(
        (b"<?xml", b"<!DOCTYPE Pubmed", b"<!DOCTYPE Medline", b"<PubmedArticleSet", b"<MedlineCitationSet")
    ):
        return "pubmed_xml"
    first = text.split(b"\n", 1)[0]
    if first.startswith(b"PMID-"):
        return "medline"
    if first.startswith(b"TY  -") or b"\nTY  -" in text:
        return "ris"
    if b"\t" in first:
        return "tsv"
    if b"," in first:
        return "csv"
    return None


def detect_format(path: str | os.PathLike[str]) -> str:
    """One of :data:`FORMATS`, from the extension, else from the first bytes."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".gz" and len(suffixes) == 2:
        ext = suffixes[0]
    fmt = _EXTENSIONS.get(ext)
    if fmt in ("csv", "tsv", "ris", "medline", "xlsx"):
        return fmt
    sniffed = _sniff(_head(path))
    if fmt == "pubmed_xml" and sniffed != "pubmed_xml":
        raise ImportFormatError(str(path), "line 1", None, "a .xml file that does not start like PubMed XML")
    if sniffed is None:
        raise ImportFormatError(str(path), None, None, f"unknown file format; expected one of: {', '.join(FORMATS)}")
    return sniffed


def _encoding(path: Path) -> str:
    """UTF-16 when the file starts with its BOM (EndNote on Windows), else the first of
    :data:`ENCODINGS` that decodes the whole file (read in chunks)."""
    if _head(path).startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open_binary(path) as f:
                while chunk := f.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        except (OSError, EOFError) as e:
            raise ImportFormatError(str(path), None, None, f"cannot read: {e}") from e
        return encoding
    return ENCODINGS[-1]  # Latin-1 decodes any byte; not reached


def open_text(path: str | os.PathLike[str], *, newline: str | None = None) -> IO[str]:
    """A text handle on a (possibly gzipped) file: UTF-8 if it is, UTF-16 with a BOM, else cp1252 or Latin-1."""
    path = Path(path)
    encoding = _encoding(path)
    return io.TextIOWrapper(open_binary(path), encoding=encoding, newline=newline)


def _readers() -> dict[str, Callable[[Path], Iterator[Citation]]]:
    from .medline import read_medline
    from .pubmed_xml import read_pubmed_xml
    from .ris import read_ris
    from .tabular import read_csv, read_tsv, read_xlsx

    return {
        "pubmed_xml": read_pubmed_xml,
        "medline": read_medline,
        "ris": read_ris,
        "csv": read_csv,
        "tsv": read_tsv,
        "xlsx": read_xlsx,
    }


def read_file(path: str | os.PathLike[str], fmt: str | None = None) -> Iterator[Citation]:
    """Citations from a file in any supported format, streaming."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(str(path), None, None, "no such file")
    fmt = fmt or detect_format(path)
    readers = _readers()
    if fmt not in readers:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return readers[fmt](path)


PARALLEL_MIN_BYTES = 4_000_000  # below this, starting a parser process costs more than it saves
PARALLEL_CHUNK = 1000  # citations per message from the parser process
PARALLEL_DEPTH = 8  # chunks parsed ahead at most: bounds memory however fast the parser runs


def _parse_to_stdout(path: str, fmt: str | None) -> None:
    """Child process: pickle citations to stdout in chunks, then None; a format error is sent too.

    The pipe's small buffer blocks the child when the parent is busy storing, so memory
    stays flat however fast the parser runs.
    """
    out = sys.stdout.buffer
    try:
        batch: list[Citation] = []
        for citation in read_file(path, fmt):
            batch.append(citation)
            if len(batch) >= PARALLEL_CHUNK:
                pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
                batch = []
        if batch:
            pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(None, out)
    except ScreeningError as e:
        pickle.dump(e, out)
    out.flush()


def _drain(pipe: IO[bytes], chunks: queue.Queue) -> None:
    """Reader thread: unpickle the child's chunks as they come, so the child never waits on the pipe."""
    while True:
        try:
            item = pickle.load(pipe)
        except EOFError:
            chunks.put(EOFError())
            return
        chunks.put(item)
        if item is None or isinstance(item, BaseException):
            return


def read_file_parallel(path: str | os.PathLike[str], fmt: str | None = None) -> Iterator[Citation]:
    """Like :func:`read_file`, but parsed in a child process while the caller stores the records.

    An import is half parsing, half writing: on two cores, doing both at once runs
    at the speed of the slower half instead of the sum. Small files are read in
    this process. At most ``PARALLEL_DEPTH`` chunks wait in memory.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size < PARALLEL_MIN_BYTES:
        yield from read_file(path, fmt)
        return
    command = [sys.executable, "-m", "screening.sources.files", str(path), fmt or ""]
    chunks: queue.Queue = queue.Queue(maxsize=PARALLEL_DEPTH)
    # stderr goes to a file, not a pipe: a chatty child must never block on it
    with tempfile.TemporaryFile() as errors, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as child:
        reader = threading.Thread(target=_drain, args=(child.stdout, chunks), daemon=True)
        reader.start()
        try:
            while True:
                item = chunks.get()
                if isinstance(item, EOFError):
                    code = child.wait()
                    errors.seek(0)
                    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
                    detail = lines[-1] if lines else f"exit code {code}"
                    raise ImportFormatError(str(path), None, None, f"the parser process failed: {detail}")
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(queue.Empty):
                while True:  # unblock the reader if it waits on a full queue, then let it end
                    chunks.get_nowait()
            reader.join(timeout=5)


if __name__ == "__main__":  # the parser process of read_file_parallel
    _parse_to_stdout(sys.argv[1], sys.argv[2] or None)
