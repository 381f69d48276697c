"""An SQLite file for records that must survive a crash (review decisions, audit findings).

Write-ahead logging with ``synchronous=FULL``: a transaction is on disk when it commits, and a
process killed at any moment loses nothing that was committed. ``BEGIN IMMEDIATE`` takes
the write lock up front, so two processes never both read and then both try to upgrade to
writing. The file carries an application id and a schema version, so another program's
database, or one of a newer version, is refused rather than guessed at. Standard library
only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import InputError, UpdpError
from .files import fsync_folder


def statements(script: str) -> list[str]:
    """A schema's statements one by one (``executescript`` would commit on its own)."""
    out, current = [], []
    for line in script.splitlines():
        line = line.split("--")[0].rstrip()
        if not line:
            continue
        current.append(line)
        joined = "\n".join(current)
        if sqlite3.complete_statement(joined):
            out.append(joined)
            current = []
    return out


class DurableDatabase:
    """Base of the stores. Subclasses set ``WHAT`` ("a review workspace"), ``APPLICATION_ID``,
    ``SCHEMA_VERSION`` and ``SCHEMA``, and open themselves with :meth:`_connect`."""

    WHAT = "a database of updp-napari"
    APPLICATION_ID = 0
    SCHEMA_VERSION = 1
    SCHEMA = ""

    def __init__(self, connection: sqlite3.Connection, database: Path):
        self._db = connection
        self._database = database
        self._lock = threading.RLock()
        self._depth = 0  # transactions of ``_write`` open on this connection (0 or 1)

    @staticmethod
    def _create_file(database: Path) -> None:
        """An empty, owner-only database file (SQLite gives its -wal and -shm files the
        mode of the database file)."""
        if not database.exists():
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            fsync_folder(database.parent)

    @classmethod
    def _connect(cls, database: Path, create: bool, busy_timeout: float, *args):
        """Open ``database`` as ``cls(*args, connection, database)``, checked and (with
        ``create``) given its schema; errors name the file."""
        try:
            connection = sqlite3.connect(database, timeout=busy_timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise InputError(f"{database}: cannot open ({exc})") from None
        try:
            store = cls(*args, connection, database)
            store._prepare(create)
        except sqlite3.DatabaseError as exc:
            connection.close()
            if not (os.access(database, os.W_OK) and os.access(database.parent, os.W_OK)):
                # WAL needs its -wal and -shm files beside the database, even to read.
                raise InputError(f"{database}: cannot be opened for writing (a read-only file "
                                 f"or folder?); {cls.WHAT} needs write access, even to be "
                                 f"read ({exc})") from None
            if "disk I/O" in str(exc) or "full" in str(exc):
                raise InputError(f"{database}: cannot be opened ({exc}; a full disk?)") from None
            raise InputError(f"{database}: not {cls.WHAT} database ({exc})") from None
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare(self, create: bool) -> None:
        db, database = self._db, self._database
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        fresh = application_id == 0 and version == 0 and tables == 0
        if fresh and not create:
            raise InputError(f"{database}: empty database, not {self.WHAT}")
        if not fresh and application_id != self.APPLICATION_ID:
            raise InputError(f"{database}: an SQLite database of another program, not {self.WHAT}")
        if version > self.SCHEMA_VERSION:
            raise UpdpError(f"{database}: made by a newer updp-napari (schema {version}; this "
                            f"version reads schema {self.SCHEMA_VERSION}); upgrade updp-napari")
        if not fresh and version != self.SCHEMA_VERSION:
            raise UpdpError(f"{database}: schema {version} is not one this version can read "
                            f"(schema {self.SCHEMA_VERSION})")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise UpdpError(f"{database}: cannot use write-ahead logging here (journal mode "
                            f"stays {mode!r}; a network folder?)")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        if fresh:
            with self._write() as cur:
                # Another process may have created it between our look and our lock.
                if cur.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in statements(self.SCHEMA):
                        cur.execute(statement)
                    cur.execute(f"PRAGMA application_id={self.APPLICATION_ID}")
                    cur.execute(f"PRAGMA user_version={self.SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One transaction, committed (and on disk) when the block ends, rolled back on error.
        SQLite's own errors (locked past the busy timeout, a damaged file) become one
        UpdpError naming the file: nothing of the transaction was recorded."""
        with self._lock:
            if self._depth:  # inside a transaction this thread holds (``held``): part of it
                yield self._db.cursor()
                return
            try:
                cur = self._db.cursor()
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failed(exc, "nothing was recorded") from None
            self._depth += 1
            try:
                yield cur
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._failed(exc, "nothing was recorded") from None
                raise
            finally:
                self._depth -= 1
            try:
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise self._failed(exc, "nothing was recorded") from None

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise self._failed(exc, "it could not be read") from None

    def _failed(self, exc: sqlite3.Error, what: str) -> UpdpError:
        """SQLite's error as a message naming the file (its text names no stored value)."""
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return UpdpError(f"{self._database}: locked by another process for longer than "
                             f"the wait allowed; {what}, try again")
        if "disk is full" in str(exc) or "disk I/O" in str(exc):
            return UpdpError(f"{self._database}: {exc} (free space on its disk and run again; "
                             f"what was recorded before stands); {what}")
        return UpdpError(f"{self._database}: {exc} (damaged?); {what}")
