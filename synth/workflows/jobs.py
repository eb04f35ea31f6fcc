"""Background jobs: work owned by the process (the app's server, or a CLI command), not by a page.

A job is recorded in the ``jobs`` table with its state and progress, so every page can show it,
leaving a page never stops it, and a job whose process died is seen as interrupted (see
``DuckStore.mark_interrupted``) and can be resumed. :func:`start` runs one on a thread of this
process; :class:`JobControl` is what the work reports to and what cancels it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.store import DuckStore
from synth.workflows.control import JobControl, active, cancel, get, this_process_jobs

__all__ = ["JobControl", "active", "cancel", "get", "this_process_jobs", "start", "start_generation",
           "start_resume", "resumable_runs"]

log = logging.getLogger(__name__)
NEW_ITEMS = {"generate", "import", "resume"}  # the jobs that add items to the map


def start(db_path: str, kind: str, label: str, work: Callable[[DuckStore, JobControl], Any],
          total: int = 0) -> JobControl:
    """Run ``work(store, control)`` on a thread of this process, as job ``kind``; return at once.
    The job outlives the page that started it; its result or error lands on the control."""
    store = DuckStore(db_path)
    control = JobControl.begin(store, kind, label, total=total)
    if kind in NEW_ITEMS:  # the new items are placed on the map with UMAP's transform: compile it meanwhile
        from synth.analysis.projection import start_warmup

        start_warmup()

    def body() -> None:
        try:
            result = work(store, control)
            if control.active:
                control.finish(store, "done", result=result)
            elif control.result is None:
                control.result = result
        except SynthError as exc:
            if control.active:
                control.finish(store, "failed", error=str(exc))
            control.error = control.error or str(exc)
        except BaseException as exc:  # a bug: said in short on the page, in full in the server log
            log.error("job %s failed:\n%s", control.job_id, traceback.format_exc())
            if control.active:
                control.finish(store, "failed", error=f"{type(exc).__name__}: {exc}")

    threading.Thread(target=body, name=f"synth-job-{control.job_id}", daemon=True).start()
    return control


def start_generation(db_path: str, cfg, resume: bool = True) -> JobControl:
    """Generate the run ``cfg`` describes as a background job (embedded, measured, judged if asked).
    What can be checked at once is checked before the job starts (the configuration, the plan, the
    model's keys), so a mistake is said where the user clicked."""
    from synth.generate.execute import prepare
    from synth.llm import providers
    from synth.workflows.pipeline import generate_run

    prep = prepare(cfg, DuckStore(db_path))
    if prep.technique.uses_llm:
        providers.check_model(prep.model, cfg.api_base)
    label = (cfg.run_name or "").strip() or prep.run.name
    return start(db_path, "generate", label,
                 lambda store, control: generate_run(store, cfg, control=control, resume=resume, prep=prep),
                 total=prep.total)


def start_import(db_path: str, path: str, text_column: str = "text", run_name: str | None = None,
                 data: bytes | None = None, reference: bool = False, again: bool = False) -> JobControl:
    """Import a file as a background job; the note about a large file lands on the job's phase.
    The file is read and checked first (format, text column, sizes, already imported), so a
    mistake is said at once and nothing is written."""
    from synth.generate.ingest import import_file
    from synth.workflows.pipeline import save_and_measure

    notes: list[str] = []
    run, items = import_file(path, text_column, run_name, data, reference, store=DuckStore(db_path), again=again,
                             on_notice=notes.append)

    def work(store: DuckStore, control: JobControl):
        control.phase(" ".join(notes) or f"embedding {len(items):,} texts")
        return save_and_measure(store, run, items)

    return start(db_path, "import", run.name, work, total=0)


def start_refit(db_path: str, params: dict | None = None) -> JobControl:
    """A new layout of every item, fitted as a background job (the old one stays stored)."""
    from synth.analysis.projection import LAYOUT, new_layout

    store = DuckStore(db_path)
    n = store.count_items()
    if n < LAYOUT.min_points:
        raise SynthError(f"{LAYOUT.title} needs at least {LAYOUT.min_points} items; there are {n}.")

    def work(store: DuckStore, control: JobControl):
        control.phase(f"{n:,} items")
        return new_layout(store, store.items(), params)

    return start(db_path, "refit", "the map layout", work)


def start_judge(db_path: str, item_ids: list[str], model: str, rubric) -> JobControl:
    """Score ``item_ids`` with ``model`` against ``rubric`` as a background job."""
    from synth.generate.judge import judge_items

    from synth.llm import providers

    if not item_ids:
        raise SynthError("No items to judge. Choose a run or select items first.")
    providers.check_model((model or "").strip() or settings.get("default_model"))  # said where the user clicked

    def work(store: DuckStore, control: JobControl):
        control.total = len(item_ids)
        return judge_items(store, item_ids, model, rubric,
                           on_result=lambda result: control.step(store, control.done + 1))

    return start(db_path, "judge", f"{len(item_ids)} items with {model}", work, total=len(item_ids))


def start_resume(db_path: str, run_id: str) -> JobControl:
    from synth.workflows.pipeline import resume_run

    store = DuckStore(db_path)
    name = store.run_summary(run_id)["name"]
    return start(db_path, "generate", f"{name} (resumed)",
                 lambda store, control: resume_run(store, run_id, control=control))


def resumable_runs(store: DuckStore):
    """Runs left interrupted (their process stopped) or cancelled, newest first."""
    store.mark_interrupted()
    frame = store.unfinished_runs()
    return frame[frame["status"] != "running"]
