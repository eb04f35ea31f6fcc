"""A job's live state in this process: what the work reports to (progress, items arrived), what
cancels it, and the registry the pages read. The work itself is started by :mod:`synth.workflows.jobs`."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from synth.kernel.errors import SynthError
from synth.store import DuckStore

log = logging.getLogger(__name__)

KINDS = {"generate": "Generating", "import": "Importing", "refit": "Re-fitting", "judge": "Judging"}


@dataclass
class JobControl:
    """One job's live state in this process: progress, cancel flag, result or error."""

    job_id: str
    kind: str
    label: str
    total: int = 0
    done: int = 0  # items (or steps) saved so far
    n_ok: int = 0
    n_cached: int = 0
    state: str = "running"
    phase_text: str = ""
    error: str | None = None
    result: Any = None
    run_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    recent: list = field(default_factory=list)  # the last items that arrived (for live views)

    @classmethod
    def begin(cls, store: DuckStore, kind: str, label: str, total: int = 0, run_id: str | None = None
              ) -> "JobControl":
        """A new job, recorded as running."""
        job_id = store.create_job(kind, label, run_id=run_id, total=total)
        control = cls(job_id, kind, label, total=total, run_id=run_id)
        _register(control)
        return control

    # -- what the work reports ------------------------------------------------------------------

    def attach(self, store: DuckStore, run_id: str, total: int, done: int = 0) -> None:
        """The job makes run ``run_id``: ``total`` items, ``done`` of them already there."""
        self.run_id, self.total, self.done = run_id, total, done
        store.update_job(self.job_id, run_id=run_id, total=total, done=done)

    def arrived(self, item: Any) -> None:
        self.n_ok += 1
        self.n_cached += int(bool(getattr(item, "cached", False)))
        self.recent = (self.recent + [item])[-50:]

    def saved(self, store: DuckStore, done: int) -> None:
        self.done = done
        try:
            store.update_job(self.job_id, done=done, n_ok=self.n_ok, n_cached=self.n_cached)
        except SynthError:
            pass  # the file is busy: the next save records it

    def step(self, store: DuckStore, done: int, total: int | None = None) -> None:
        """Progress of a job counted in steps (an import's embedding batches, say)."""
        self.total = total if total is not None else self.total
        self.saved(store, done)

    def phase(self, text: str) -> None:
        self.phase_text = text

    def finish(self, store: DuckStore, state: str, error: str | None = None, result: Any = None) -> None:
        self.state, self.error, self.result, self.finished = state, error, result, time.monotonic()
        try:
            store.update_job(self.job_id, state=state, error=error, done=self.done, n_ok=self.n_ok,
                             n_cached=self.n_cached)
        except SynthError:
            log.warning("job %s finished (%s) but its row could not be updated", self.job_id, state)

    # -- what a page reads ----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def describe(self) -> str:
        """e.g. ``Generating reviews v3: 12 of 40 items``."""
        verb = KINDS.get(self.kind, self.kind)
        if self.state == "done":
            return f"{self.label}: done in {self.elapsed_s:.0f} s"
        if self.state != "running":
            return f"{self.label}: {self.state}" + (f" ({self.error})" if self.error else "")
        cancelling = " (cancelling: calls in flight finish)" if self.cancel.is_set() else ""
        if not self.total:  # no count to give (an import's embedding, a layout fit)
            extra = f" ({self.phase_text})" if self.phase_text else ""
            return f"{verb} {self.label}{extra}, {self.elapsed_s:.0f} s so far{cancelling}"
        extra = f", {self.phase_text}" if self.phase_text else ""
        unit = "judged" if self.kind == "judge" else "items"
        return f"{verb} {self.label}: {self.done} of {self.total} {unit}{extra}{cancelling}"


_JOBS: dict[str, JobControl] = {}
_JOBS_LOCK = threading.Lock()
KEEP_FINISHED = 20  # finished jobs this process remembers, for the pages to report


def _register(control: JobControl) -> None:
    with _JOBS_LOCK:
        _JOBS[control.job_id] = control
        finished = [j for j in _JOBS.values() if not j.active]
        for old in sorted(finished, key=lambda j: j.finished or 0)[:-KEEP_FINISHED]:
            _JOBS.pop(old.job_id, None)


def forget_finished() -> int:
    """Drop the finished jobs this process remembers (their rows stay in the database)."""
    with _JOBS_LOCK:
        gone = [job_id for job_id, job in _JOBS.items() if not job.active]
        for job_id in gone:
            del _JOBS[job_id]
    return len(gone)


def get(job_id: str) -> JobControl | None:
    with _JOBS_LOCK:
        return _JOBS.get(job_id)


def this_process_jobs() -> list[JobControl]:
    """The jobs this process runs or ran, newest first."""
    with _JOBS_LOCK:
        return sorted(_JOBS.values(), key=lambda j: -j.started)


def active() -> list[JobControl]:
    return [j for j in this_process_jobs() if j.active]


def cancel(job_id: str) -> bool:
    """Ask job ``job_id`` to stop: no new call starts, the calls in flight finish and are kept."""
    control = get(job_id)
    if control is None or not control.active:
        return False
    control.cancel.set()
    return True
