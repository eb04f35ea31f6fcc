"""The database file: connections under a per-file lock, sessions, transactions and migrations.

Connections are opened per operation and closed after it, under a per-file lock, so the app and
the CLI can take turns on the same file (DuckDB lets only one process hold it at a time).
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd

import synth.store.migrations as migrations
from synth.kernel.errors import SynthError
from synth.kernel.records import now

# How long to wait for another process (the app, a CLI command) to release the file.
LOCK_WAIT_S = 10.0

# data_version() is asked many times per page run, and at 50,000 items each query takes ~0.1 s: an
# answer is reused for this long, per file. A transaction through any store of the file forgets
# it, so this process's own writes are seen at once; another process's (the CLI) within this long.
VERSION_REUSE_S = 1.0
_VERSIONS: dict[str, tuple[float, tuple]] = {}

_PATH_LOCKS: dict[str, threading.RLock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def _lock_for(path: str) -> threading.RLock:
    with _PATH_LOCKS_GUARD:
        return _PATH_LOCKS.setdefault(path, threading.RLock())


def in_session(func):
    """Run ``func(store, ...)`` on one connection (see ``Database.session``)."""

    @functools.wraps(func)
    def wrapper(store: "Database", *args, **kwargs):
        with store.session():
            return func(store, *args, **kwargs)

    return wrapper


class Database:
    """One database file. Creates it and applies migrations on first use."""

    def __init__(self, path: str | Path):
        self.path = str(Path(path).expanduser().resolve())
        self._lock = _lock_for(self.path)
        self._session = threading.local()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthError(f"Cannot create the folder for database {self.path}: {exc}. "
                             "Choose another path with --db or SYNTH_DB.") from None
        self.migrate()

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connect(self, read_only: bool = False, config: dict | None = None
                ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the file's lock and closed afterwards (inside ``session()``,
        the session's connection)."""
        with self._lock:
            held = getattr(self._session, "con", None)
            if held is not None and not read_only and not config:
                cursor = held.cursor()  # cheap: the database is already open
                try:
                    yield cursor
                finally:
                    cursor.close()
                return
            con = self._open(read_only, config or {})
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def session(self) -> Iterator["Database"]:
        """One connection for every statement inside, in this thread (opening the file costs tens
        of milliseconds; a page load makes dozens of calls). Other processes wait until it ends."""
        with self._lock:
            if getattr(self._session, "con", None) is not None:
                yield self
                return
            self._session.con = self._open(False, {})
            try:
                yield self
            finally:
                con, self._session.con = self._session.con, None
                con.close()

    def _open(self, read_only: bool, config: dict) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only, config=config)
            except duckdb.IOException as exc:
                # Another process holds the file; it usually lets go within a moment.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise SynthError(
                        f"Cannot open database {self.path}: {exc}. If another Synth Studio "
                        "process (the app or a CLI command) is using it, wait for it to finish "
                        "or point --db / SYNTH_DB at another file."
                    ) from None
                time.sleep(0.2)
            except duckdb.Error as exc:
                raise SynthError(f"Cannot open database {self.path}: {exc}. The file may not be a "
                                 "DuckDB database; point --db / SYNTH_DB at another file.") from None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All statements inside commit together or not at all."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                _VERSIONS.pop(self.path, None)
            con.execute("COMMIT")
            _VERSIONS.pop(self.path, None)

    def migrate(self) -> list[str]:
        """Apply migrations not yet recorded in ``_migrations``; return their names."""
        applied: list[str] = []
        with self.transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS _migrations "
                        "(number INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
            done = {r[0] for r in con.execute("SELECT number FROM _migrations").fetchall()}
            # Looked up on the module at call time, so a test can apply only the early ones.
            for number, name, fn in migrations._MIGRATIONS:
                if number in done:
                    continue
                fn(con)
                con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, name, now()])
                applied.append(name)
        return applied

    def applied_migrations(self) -> list[str]:
        """Names of the migrations applied to this file, in order."""
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY number").fetchall()]

    # -- reads -------------------------------------------------------------------------------

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run one of the store's own queries and return a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def frame_with(self, sql: str, params: list, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Like ``frame``, with DataFrames registered as tables for the query."""
        with self.connect() as con:
            for name, table in tables.items():
                con.register(name, table)
            return con.execute(sql, params).df()

    def data_version(self, metrics: bool = True) -> tuple:
        """Changes whenever items, layouts, clusterings, judgements or (with ``metrics``) the stored
        per-run metrics change: a cache key for readers. Readers of items, vectors and layouts pass
        ``metrics=False``, so the background per-run metrics pass does not make them load again."""
        with self._lock:  # a write (under the same lock) cannot land between the query and the memo
            held = _VERSIONS.get(self.path)
            if held is not None and time.monotonic() - held[0] < VERSION_REUSE_S:
                version = held[1]
            else:
                version = self._query_version()
                _VERSIONS[self.path] = (time.monotonic(), version)
        return version if metrics else version[:4] + version[5:]

    def _query_version(self) -> tuple:
        with self.connect() as con:
            return con.execute("""
                SELECT (SELECT count(*) FROM items), (SELECT max(created_at) FROM items),
                       (SELECT count(*) FROM runs), (SELECT count(*) FROM layouts),
                       (SELECT max(computed_at) FROM metrics), (SELECT count(*) FROM judgements),
                       (SELECT sum(hash(item_id || status || text_hash || coalesce(CAST(tags AS VARCHAR), '')))
                        FROM items),
                       (SELECT count(*) FROM projections), (SELECT count(*) FROM cluster_labels),
                       (SELECT count(*) FROM clusterings)""").fetchone()

    def count_items(self) -> int:
        """How many items the database holds."""
        with self.connect() as con:
            return con.execute("SELECT count(*) FROM items").fetchone()[0]
