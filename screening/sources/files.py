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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import ConfigError, ImportFormatError, ScreeningError
from . import Citation, ImportNotice, collecting_notices, notice

FORMATS = ("pubmed_xml", "medline", "ris", "csv", "tsv", "xlsx", "bibtex")
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
    ".bib": "bibtex",
    ".bibtex": "bibtex",
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
    utf16 = _utf16(head)
    if utf16 is not None:
        head = head.decode(utf16, errors="ignore").encode("utf-8")
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
    if first.startswith(b"@") and (b"{" in first or b"(" in first):  # @article{key,
        return "bibtex"
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
    if fmt in ("csv", "tsv", "ris", "medline", "xlsx", "bibtex"):
        return fmt
    sniffed = _sniff(_head(path))
    if fmt == "pubmed_xml" and sniffed != "pubmed_xml":
        raise ImportFormatError(str(path), "line 1", None, "a .xml file that does not start like PubMed XML")
    if sniffed is None:
        raise ImportFormatError(str(path), None, None, f"unknown file format; expected one of: {', '.join(FORMATS)}")
    return sniffed


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the first bytes are text with every other byte NUL.

    Some Windows tools write UTF-16 without a BOM; read as UTF-8 it would be NULs
    between letters. Text in any 8-bit encoding has almost no NUL bytes.
    """
    sample = head[: len(head) // 2 * 2]
    if len(sample) < 8:
        return None
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _utf16(head: bytes) -> str | None:
    """The UTF-16 codec the file needs, if it is UTF-16 (with its BOM, or detected)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return _utf16_without_bom(head)


# a line that is not UTF-8 is decoded alone as Windows-1252; its five undefined bytes fall back to Latin-1
FALLBACK = "cp1252"
_SHOWN_LINES = 10


def _decode_line(line: bytes) -> str:
    try:
        return line.decode(FALLBACK)
    except UnicodeDecodeError:
        return line.decode("latin-1")


class _LineDecoder:
    """The text of a file decoded as UTF-8, one line at a time where it must be.

    Blocks of whole lines are decoded at once (the fast path, in C); a block that
    is not UTF-8 is decoded line by line, and only the lines that fail are read as
    cp1252, so one stray Latin-1 byte garbles nothing else. Those lines are named
    in one notice when the file is done.
    """

    def __init__(self, path: Path, newline: str | None) -> None:
        self.path = path
        self.newline = newline
        self.fallback_lines: list[int] = []

    def _decode(self, block: bytes, first_line: int) -> str:
        try:
            return block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        parts = []
        lines = [line + b"\n" for line in block.split(b"\n")]
        lines[-1] = lines[-1][:-1]  # the block's last line has no line end of its own
        for number, line in enumerate(lines, start=first_line):
            try:
                parts.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                self.fallback_lines.append(number)
                parts.append(_decode_line(line))
        return "".join(parts)

    def _blocks(self, f: IO[bytes]) -> Iterator[str]:
        pending, line = b"", 1
        while True:
            data = f.read(_CHUNK)
            block = pending + data
            if not block:
                return
            cut = len(block) if not data else block.rfind(b"\n") + 1
            if cut == 0:  # no line end in this block yet: read on
                pending = block
                continue
            block, pending = block[:cut], block[cut:]
            if line == 1:
                block = block.removeprefix(codecs.BOM_UTF8)
            yield self._decode(block, line)
            line += block.count(b"\n")
            if not data:
                return

    def lines(self) -> Iterator[str]:
        try:
            with open_binary(self.path) as f:
                for text in self._blocks(f):
                    yield from io.StringIO(text, newline=self.newline)
        except (OSError, EOFError) as e:
            raise ImportFormatError(str(self.path), None, None, f"cannot read: {e}") from e
        if self.fallback_lines:
            notice(str(self.path), _line_list(self.fallback_lines), None, _fallback_message(len(self.fallback_lines)))


def _line_list(numbers: list[int]) -> str:
    """'line 3', or 'lines 3, 17, 240 and 12 more'."""
    shown = ", ".join(map(str, numbers[:_SHOWN_LINES]))
    more = f" and {len(numbers) - _SHOWN_LINES} more" if len(numbers) > _SHOWN_LINES else ""
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}{more}"


def _fallback_message(count: int) -> str:
    lines = "1 line is" if count == 1 else f"{count} lines are"
    return f"{lines} not valid UTF-8 and read as Windows-1252 (cp1252); check the accented letters there"


class _TextLines:
    """An iterable of a file's lines that can be used as a context manager, like an open text file."""

    def __init__(self, lines: Iterator[str], close: Callable[[], None]) -> None:
        self._lines = lines
        self._close = close

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def __next__(self) -> str:
        return next(self._lines)

    def __enter__(self) -> _TextLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()


def open_text(path: str | os.PathLike[str], *, newline: str | None = None) -> _TextLines:
    """The lines of a (possibly gzipped) text file, decoded as a reviewer would want.

    UTF-8 by default, a BOM honoured; UTF-16 with a BOM or detected without one;
    a line that is not UTF-8 is read alone as cp1252 and reported (see
    :class:`_LineDecoder`). ``newline`` is as for :func:`open` (``""`` for csv).
    """
    path = Path(path)
    utf16 = _utf16(_head(path))
    if utf16 is not None:
        handle = io.TextIOWrapper(open_binary(path), encoding=utf16, newline=newline)
        return _TextLines(_checked_utf16(handle, path), handle.close)
    lines = _LineDecoder(path, newline).lines()
    return _TextLines(lines, lines.close)


def _checked_utf16(handle: IO[str], path: Path) -> Iterator[str]:
    """UTF-16 lines; a broken code unit is an error naming the line, not a garbled record."""
    number = 0
    try:
        for number, line in enumerate(handle, start=1):
            yield line.removeprefix("\ufeff") if number == 1 else line
    except UnicodeDecodeError as e:
        raise ImportFormatError(str(path), f"line {number + 1}", None, f"not valid UTF-16: {e.reason}") from e


def _readers() -> dict[str, Callable[[Path], Iterator[Citation]]]:
    from .bibtex import read_bibtex
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
        "bibtex": read_bibtex,
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


@dataclass(frozen=True)
class _Notices:
    """The parser process's notices, sent after the citations they came with."""

    items: list[ImportNotice]


def _parse_to_stdout(path: str, fmt: str | None) -> None:
    """Child process: pickle citations to stdout in chunks, then None; a format error is sent too.

    The pipe's small buffer blocks the child when the parent is busy storing, so memory
    stays flat however fast the parser runs. Notices follow the chunk they were given in.
    """
    out = sys.stdout.buffer

    def send(batch: list[Citation], notes: list[ImportNotice]) -> None:
        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
        if notes:
            pickle.dump(_Notices(notes[:]), out, protocol=pickle.HIGHEST_PROTOCOL)
            notes.clear()

    try:
        with collecting_notices() as notes:
            batch: list[Citation] = []
            for citation in read_file(path, fmt):
                batch.append(citation)
                if len(batch) >= PARALLEL_CHUNK:
                    send(batch, notes)
                    batch = []
            send(batch, notes)
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
                if isinstance(item, _Notices):
                    for n in item.items:
                        notice(n.path, n.where, n.field, n.message)
                    continue
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
