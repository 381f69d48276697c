"""Writing files safely: atomic (temporary name, then rename), owner-only when private."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from .errors import InputError


def write_text_atomic(path: str | os.PathLike, text: str, private: bool = False) -> None:
    """Write ``text`` (UTF-8, newlines as given) so readers see the old file or the new one."""
    path = _replaceable(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        # A disk that fills up must leave no half-written file behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, private: bool = False) -> None:
    """Write ``data`` so readers see the old file or the new one, and it is on disk on return.

    The temporary file has a unique name beside the target, so two writers of one path never
    share it. The file and its folder are flushed to disk before returning: a database row
    that names the file may be committed right after, and must never outlive it.
    """
    path = _replaceable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not private:  # mkstemp makes the file owner-only
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # a full disk names no file
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    fsync_folder(path.parent)


def _replaceable(path: str | os.PathLike) -> Path:
    """``path``, refused when something other than a regular file stands there: the rename
    would put a file in place of a device (``/dev/full``), a pipe or a folder."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file; it is not replaced")
    return path


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
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                if not folder.is_dir():
                    raise InputError(f"{folder}: exists and is not a folder") from None
            os.chmod(folder, 0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        raise InputError(f"{where}: cannot make a private folder there "
                         f"({exc.strerror or type(exc).__name__})") from None
    return path


def check_apart(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Refuse an output that is the input, lies inside it, or holds it: the originals would
    be read as outputs, overwritten, or left inside what is shared."""
    source, target = Path(src).resolve(), Path(dst).resolve()
    if target == source or source in target.parents:
        raise InputError(f"{dst}: the output must not be the input or inside it")
    if target in source.parents:
        raise InputError(f"{dst}: the output must not hold the input (the originals would lie "
                         f"inside what is shared)")


def tree_files(root: str | os.PathLike, follow_symlinks: bool = False,
               unreadable: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Every file below ``root``, sorted. Symbolic links are listed as they are (for the caller
    to refuse, naming them, unless it follows links); links to folders are entered only with
    ``follow_symlinks``, each real folder once (a link loop ends there).

    A folder that cannot be listed is never passed over in silence: it goes into
    ``unreadable`` as ``(folder, reason)`` for the caller to record, or, without that list,
    the walk ends in an InputError naming it (what it holds would be lost)."""
    root = Path(root)
    found: list[Path] = []
    seen: set[str] = set()
    failed: list[tuple[Path, str]] = []

    def could_not_list(exc: OSError) -> None:
        failed.append((Path(exc.filename if exc.filename is not None else root),
                       f"folder cannot be read ({exc.strerror or type(exc).__name__})"))

    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks, onerror=could_not_list):
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
    if failed and unreadable is None:
        folder, reason = failed[0]
        raise InputError(f"{folder}: {reason}")
    if unreadable is not None:
        unreadable += sorted(failed)
    return sorted(found)


def decode_report(raw: bytes, name: str) -> str:
    """Report bytes as text, whatever common encoding they were saved in.

    UTF-16 with or without its byte-order mark; UTF-8; Windows-1252. A file of UTF-8 with
    bytes of another encoding in it (two files joined, a line pasted from another program)
    is read as UTF-8 where it is, and each stray byte as Windows-1252: read wholly as
    Windows-1252 its accented names would be garbled past the name rules."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name}: report looks like UTF-16 but does not decode") from None
    if b"\x00" in raw:
        text = _utf16_without_mark(raw)
        if text is None:
            raise InputError(f"{name}: report is binary, not text")
        return text
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    if any(ch > "\x7f" and not "\udc80" <= ch <= "\udcff" for ch in text):
        return _STRAY_BYTE.sub(_stray_byte, text)  # UTF-8 with stray bytes
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_STRAY_BYTE = re.compile("[\udc80-\udcff]")


def _stray_byte(m: re.Match) -> str:
    byte = bytes([ord(m.group()) - 0xDC00])
    try:
        return byte.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return byte.decode("latin-1")


def _utf16_without_mark(raw: bytes) -> str | None:
    """``raw`` as UTF-16 without a byte-order mark when it plainly is (text of the Latin
    alphabet: every other byte zero), else None."""
    if len(raw) % 2:
        return None
    for encoding, zeros in (("utf-16-le", raw[1::2]), ("utf-16-be", raw[0::2])):
        if zeros.count(0) >= 0.9 * len(zeros):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                return None
            return None if "\x00" in text else text
    return None
