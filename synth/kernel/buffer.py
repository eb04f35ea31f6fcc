"""Writes that must not lose what they hold: rows kept in memory and written together every so
often, by a thread of their own, kept for the next attempt when the database file is busy, and
retried at the end."""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

from synth.kernel.errors import SynthError

T = TypeVar("T")


class BufferedWriter(Generic[T]):
    """Collect rows with :meth:`add`; ``write(rows)`` stores them (raising SynthError while the
    file is busy). A write opens the file (about 0.1 s), so rows are written together every
    ``every_s`` by a background thread, and the caller (an event loop receiving answers) never
    waits for the file. A busy file keeps the rows for the next write, never drops them; the final
    :meth:`flush` keeps trying for ``final_wait_s`` and then raises."""

    def __init__(self, write: Callable[[list[T]], None], every_s: float = 0.5, final_wait_s: float = 120.0,
                 on_written: Callable[[int], None] | None = None):
        self.write, self.every_s, self.final_wait_s = write, every_s, final_wait_s
        self.on_written = on_written
        self.pending: list[T] = []
        self.n_written = 0
        self._rows = threading.Lock()  # guards pending
        self._writing = threading.Lock()  # one write at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, row: T) -> None:
        with self._rows:
            self.pending.append(row)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="synth-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._write_once(deadline=0.0)

    def _write_once(self, deadline: float) -> None:
        with self._writing:
            while True:
                with self._rows:
                    rows = list(self.pending)
                if not rows:
                    return
                try:
                    self.write(rows)
                except Exception as exc:
                    if deadline == 0.0:
                        return  # busy, or failed: kept for the next write, and the final one reports it
                    if not isinstance(exc, SynthError) or time.monotonic() >= deadline:
                        raise
                    time.sleep(1.0)
                    continue
                with self._rows:
                    del self.pending[:len(rows)]
                self.n_written += len(rows)
                if self.on_written:
                    self.on_written(self.n_written)

    def flush(self, final: bool = True) -> None:
        """Write everything held now, waiting up to ``final_wait_s`` for a busy file; with
        ``final`` the background thread stops."""
        if final:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
        self._write_once(deadline=time.monotonic() + self.final_wait_s)
