"""Writing files safely: atomic (temporary name, then rename), owner-only when private."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import InputError


def write_text_atomic(path: str | os.PathLike, text: str, private: bool = False) -> None:
    """Write ``text`` (UTF-8, newlines as given) so readers see the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, private: bool = False) -> None:
    """Write ``data`` so readers see the old file or the new one, and it is on disk on return.

    The temporary file has a unique name beside the target, so two writers of one path never
    share it. The file and its folder are flushed to disk before returning: a database row
    that names the file may be committed right after, and must never outlive it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not private:  # mkstemp makes the file owner-only
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename, a new file) to disk where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; NTFS journals renames itself
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def input_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is an existing file; an InputError naming it otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    return path


def private_folder(path: str | os.PathLike) -> Path:
    """Make ``path`` and every missing parent owner-only (0700), whatever the umask, and
    leave ``path`` itself 0700 when it was there already. ``mkdir -p`` would make the parents
    with the umask's modes: 0777 under umask 000."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
        os.chmod(folder, 0o700)
    os.chmod(path, 0o700)
    return path


def tree_files(root: str | os.PathLike, follow_symlinks: bool = False) -> list[Path]:
    """Every file below ``root``, sorted. Symbolic links are listed as they are (for the caller
    to refuse, naming them, unless it follows links); links to folders are entered only with
    ``follow_symlinks``, each real folder once (a link loop ends there)."""
    root = Path(root)
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        base = Path(folder)
        found += [base / name for name in files]
        if not follow_symlinks:
            # A link to a folder is not entered: listed, so the caller says it was not followed.
            found += [base / d for d in dirs if (base / d).is_symlink()]
    return sorted(found)


def decode_report(raw: bytes, name: str) -> str:
    """Report bytes as text, whatever common encoding they were saved in."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name}: report looks like UTF-16 but does not decode") from None
    if b"\x00" in raw:
        raise InputError(f"{name}: report is binary, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")
