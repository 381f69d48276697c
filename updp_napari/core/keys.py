"""The workspace's secret key and what is derived from it.

Surrogates, the per-patient date shift, remapped UIDs and case ids are keyed hashes of the
original values, so they are consistent across files and runs of one workspace and cannot
be reversed or recomputed without the key. The key never leaves the workspace: it is
``WORKSPACE/secret.key`` (:func:`workspace_key`), or a key file of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError
from .files import private_folder

#: The key's file name in a workspace folder.
KEY_FILE = "secret.key"
KEY_BYTES = 32
#: Dates move back by 30 days to about two years; never by zero.
SHIFT_RANGE = (30, 730)


def create_key_file(path: str | os.PathLike) -> bytes:
    """Write a new random key, readable by its owner only."""
    path = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        raise InputError(f"{path.parent}: no such folder for the key file") from None
    except FileExistsError:
        raise InputError(f"{path}: already exists; a key is never overwritten") from None
    except OSError as exc:
        raise InputError(f"{path}: the key file cannot be made "
                         f"({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def load_key(path: str | os.PathLike) -> bytes:
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise InputError(f"{path}: key file not found") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise InputError(f"{path}: not a key file (expected {KEY_BYTES * 2} hex digits)") from None
    if len(key) < 16:
        raise InputError(f"{path}: key is too short ({len(key)} bytes; need at least 16)")
    return key


def load_or_create_key(path: str | os.PathLike) -> bytes:
    path = Path(path)
    return load_key(path) if path.exists() else create_key_file(path)


def workspace_key(workspace: str | os.PathLike, create: bool = False) -> bytes:
    """The key of ``workspace`` (``WORKSPACE/secret.key``); with ``create=True`` the folder
    and the key are made where missing, both owner-only."""
    workspace = Path(workspace)
    if not create:
        return load_key(workspace / KEY_FILE)
    private_folder(workspace)
    return load_or_create_key(workspace / KEY_FILE)


def keyed_digest(key: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` for one ``purpose`` (purposes never share outputs)."""
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()


def keyed_int(key: bytes, purpose: str, value: str, modulo: int) -> int:
    return int.from_bytes(keyed_digest(key, purpose, value), "big") % modulo


def date_shift_days(key: bytes, patient: str, dates: Iterable[dt.date] = ()) -> int:
    """The number of days every date of ``patient`` moves back (report and header alike).

    The shift is keyed on the patient, so all of a patient's files agree. It is never one that
    writes a date of ``dates`` (the study's own, header and report) onto another of them, read
    either way round: shifted back 89 days, 08/05/2024 becomes 05/08/2024, which a day-first
    reader takes for the original 5 August. Where the keyed shift would, the next one that does
    not is taken; only then may two studies of one patient move by different amounts.
    """
    low, high = SHIFT_RANGE
    span = high - low + 1
    start = keyed_int(key, "date-shift", patient.strip().upper(), span)
    originals = set(dates)
    if not originals:
        return -(low + start)
    taken = originals | {s for d in originals if (s := _day_month_swapped(d)) is not None}
    best, fewest = -(low + start), None
    for k in range(span):
        shift = -(low + (start + k) % span)
        step = dt.timedelta(days=shift)
        collisions = sum(1 for d in originals if _add(d, step) in taken)
        if collisions == 0:
            return shift
        if fewest is None or collisions < fewest:
            best, fewest = shift, collisions
    return best  # every shift collides (hundreds of dates): the leak scan will say so


def _add(d: dt.date, step: dt.timedelta) -> dt.date | None:
    try:
        return d + step
    except OverflowError:
        return None


def _day_month_swapped(d: dt.date) -> dt.date | None:
    """``d`` with day and month exchanged (how 05/08 reads the other way), where that is a date."""
    if d.day > 12 or d.day == d.month:
        return None
    try:
        return d.replace(month=d.day, day=d.month)
    except ValueError:
        return None
