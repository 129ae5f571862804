"""Writing files safely: atomic, owner-only (0600), and spreadsheet-formula safe; reading the small text
files users edit (mapping, protocol, codelists) in the encodings their editors save.

Used by every writer (lists, rejects, provenance, coding reports) so the rules live in one place.
"""

from __future__ import annotations

import codecs
import errno
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
                    _place_new(tmp, path)
                else:
                    if path.exists():
                        os.replace(path, tmp + ".old")
                        aside[path] = tmp + ".old"  # only once moved: a failed move has nothing to put back
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


def _place_new(tmp: str, path: Path) -> None:
    """Move ``tmp`` to ``path``, which must not exist. A hard link fails if another writer created ``path``
    meanwhile; a filesystem without hard links (FAT and exFAT USB sticks, some network shares) refuses the link
    itself, and there the file is checked for, then renamed into place."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)


def _staged(path: Path, data: bytes) -> str:
    """``data`` in a 0600 temporary file beside ``path``, flushed to disk; its name."""
    _require_folder(path.parent)
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
    existing = [path for path in paths if _exists(path)]
    if existing:
        raise OutputError([Problem(str(path), problem) for path in existing], footer=footer)


def check_writable(path: Path) -> None:
    """Stop (OutputError, exit code 4) before any work if ``path`` could not be written: it is a folder, or its
    folder does not exist or may not be written in. (Root may write anywhere: ``os.access`` says so.)"""
    if _is_dir(path):
        raise OutputError(Problem(str(path), "is a folder", "give a file name, such as list.csv"))
    folder = path.parent
    _require_folder(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(Problem(str(folder), "no permission to write in this folder", "choose another --out"))


def _require_folder(folder: Path) -> None:
    if not _is_dir(folder):
        raise OutputError(Problem(str(folder), "folder does not exist", "create it first or choose another --out"))


def _exists(path: Path) -> bool:
    return _looked_up(path, Path.exists)


def _is_dir(path: Path) -> bool:
    return _looked_up(path, Path.is_dir)


def _looked_up(path: Path, test: Callable[[Path], bool]) -> bool:
    """``test(path)``; a folder on the way that may not be opened is an OutputError, not a crash."""
    try:
        return test(path)
    except OSError as exc:
        raise lookup_error(path, exc) from None


def lookup_error(path: Path | str, exc: OSError) -> OutputError:
    """The error for an output path that could not be looked up (a folder on the way may not be opened)."""
    return OutputError(
        Problem(
            str(path), f"cannot be looked up: {exc.strerror}", "check the folder's permissions, or choose another --out"
        )
    )


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
