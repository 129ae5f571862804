"""Writing files safely: atomic, owner-only (0600), and spreadsheet-formula safe; reading the small text
files users edit (mapping, protocol, codelists) in the encodings their editors save.

Used by every writer (lists, rejects, provenance, coding reports) so the rules live in one place.
"""

from __future__ import annotations

import codecs
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from casefind.errors import OutputError, Problem

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None], *, overwrite: bool = True) -> Path:
    """Write ``path`` via a 0600 temporary file in the same folder; never leave a half-written file.

    With ``overwrite=False`` an existing file is never replaced (archives).
    """
    buffer = io.BytesIO()
    write(buffer)
    atomic_write_all({Path(path): buffer.getvalue()}, overwrite=overwrite)
    return Path(path)


def atomic_write_all(contents: dict[Path, bytes], *, overwrite: bool = True) -> None:
    """Write several files as one (a list, its provenance and its rejects): every file is first written to a
    0600 temporary file beside it, and none is left replaced unless all are. A file that cannot be replaced
    (read-only, in use) puts back the ones an earlier run left, so a list never stands beside another run's
    provenance.
    """
    staged: dict[Path, str] = {}
    aside: dict[Path, str] = {}  # the earlier run's file, moved out of the way until every file is in place
    placed: list[Path] = []
    try:
        for path, data in contents.items():
            path = Path(path)
            if path.is_dir():
                raise OutputError(Problem(str(path), "is a folder", "choose another --out"))
            if not overwrite and path.exists():
                raise OutputError(Problem(str(path), "already exists and is never overwritten"))
            staged[path] = _staged(path, data)
        for path, tmp in staged.items():
            try:
                if not overwrite:
                    os.link(tmp, path)  # fails if another writer created it meanwhile
                else:
                    if path.exists():
                        aside[path] = tmp + ".old"
                        os.replace(path, aside[path])
                    os.replace(tmp, path)
                placed.append(path)
            except OSError as exc:
                for done in placed:
                    done.unlink(missing_ok=True)
                for earlier, moved in aside.items():
                    os.replace(moved, earlier)
                aside.clear()
                raise OutputError(Problem(str(path), f"cannot write: {exc.strerror}")) from None
    finally:
        for leftover in [*staged.values(), *aside.values()]:
            if os.path.exists(leftover):
                os.unlink(leftover)


def _staged(path: Path, data: bytes) -> str:
    """``data`` in a 0600 temporary file beside ``path``, flushed to disk; its name."""
    if not path.parent.is_dir():
        raise OutputError(Problem(str(path.parent), "folder does not exist", "create it first or choose another --out"))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(Problem(str(path.parent), f"cannot write here: {exc.strerror}")) from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        os.unlink(tmp)
        raise OutputError(Problem(str(path), f"cannot write: {exc.strerror}")) from None
    return tmp


def refuse_existing(paths: Iterable[Path], problem: str, footer: str) -> None:
    """Stop (OutputError, exit code 4) before any work if any of ``paths`` exists: one problem per file."""
    existing = [path for path in paths if path.exists()]
    if existing:
        raise OutputError([Problem(str(path), problem) for path in existing], footer=footer)


def read_user_text(path: Path) -> str:
    """A text file a user edited, decoded by :func:`decode_user_text`. Raises OSError as ``Path.read_bytes``."""
    return decode_user_text(path.read_bytes())


def decode_user_text(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's "Unicode Text"), else Windows-1252 (Notepad's
    old default), as for extract files."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def write_text(path: Path, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), overwrite=overwrite)


def neutralise_formula(value):
    """Make a text cell inert in spreadsheets (OWASP CSV-injection advice): prefix ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
