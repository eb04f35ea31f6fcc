"""Table ``jobs``: background work (a generation, an import, a map refit) and its progress.

A job names the process that runs it (``owner``: host, pid and the process's start time), so a job
left ``running`` by a process that is gone (killed, crashed, the machine restarted) can be told
from one still running, and shown as interrupted.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path

import pandas as pd

from synth.kernel.errors import SynthError
from synth.kernel.records import new_id, now
from synth.store.sql import insert_rows

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled", "interrupted")


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), '' if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the name


@lru_cache(maxsize=1)
def this_process() -> str:
    """The owner string of this process: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    """Whether the process ``owner`` names is still running (on this host; another host's jobs
    are taken as alive, since they cannot be checked)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True
    if not pid.isdigit():
        return False
    return bool(start) and _start_time(int(pid)) == start


class JobsMixin:
    """Background jobs (``jobs``)."""

    def create_job(self, kind: str, label: str, run_id: str | None = None, total: int = 0,
                   state: str = "running") -> str:
        job_id = new_id("job")
        stamp = now()
        with self.transaction() as con:
            insert_rows(con, "jobs", [{"job_id": job_id, "kind": kind, "label": label, "state": state,
                                       "run_id": run_id, "total": total, "owner": this_process(),
                                       "created_at": stamp, "updated_at": stamp}])
        return job_id

    def update_job(self, job_id: str, **fields) -> None:
        """Set some of ``state``, ``run_id``, ``done``, ``total``, ``n_ok``, ``n_failed``,
        ``n_cached``, ``error``, ``label``; a finished state also stamps ``finished_at``."""
        allowed = {"state", "run_id", "done", "total", "n_ok", "n_failed", "n_cached", "error", "label"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not job fields: {sorted(unknown)}")
        fields["updated_at"] = now()
        if fields.get("state") in FINISHED:
            fields["finished_at"] = fields["updated_at"]
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.connect() as con:
            con.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*fields.values(), job_id])

    def jobs(self, states: tuple[str, ...] | None = None, limit: int = 50) -> pd.DataFrame:
        """Jobs, newest first (only those in ``states`` if given)."""
        where = f"WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        return self.frame(f"SELECT * FROM jobs {where} ORDER BY created_at DESC LIMIT {int(limit)}",
                          list(states or []))

    def job(self, job_id: str) -> dict:
        frame = self.frame("SELECT * FROM jobs WHERE job_id = ?", [job_id])
        if frame.empty:
            raise SynthError(f"No job {job_id!r}.")
        return frame.iloc[0].to_dict()

    def run_job(self, run_id: str) -> dict | None:
        """The newest job that made or is making run ``run_id``, None if there is none."""
        frame = self.frame("SELECT * FROM jobs WHERE run_id = ? ORDER BY created_at DESC LIMIT 1", [run_id])
        return None if frame.empty else frame.iloc[0].to_dict()

    def mark_interrupted(self) -> list[str]:
        """Jobs left running or queued by a process that is gone become ``interrupted``, and so do
        their unfinished runs; return their ids."""
        with self.connect() as con:
            rows = con.execute("SELECT job_id, owner, run_id FROM jobs WHERE state IN ('queued', 'running')"
                               ).fetchall()
            gone = [(job_id, run_id) for job_id, owner, run_id in rows if not owner_alive(owner)]
            for job_id, run_id in gone:
                con.execute("UPDATE jobs SET state = 'interrupted', updated_at = ?, finished_at = ?, "
                            "error = coalesce(error, 'the process running it stopped') WHERE job_id = ?",
                            [now(), now(), job_id])
                if run_id:
                    con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ? AND status = 'running'",
                                [run_id])
        return [job_id for job_id, _ in gone]
