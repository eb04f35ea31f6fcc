"""The studio: the prompt loop on one page. Rendered prompts as the user types (no model call), a
three-item preview that saves no run, and the metrics of this prompt version beside the previous one.

Reads: a RunConfig of the sampling technique, the runs, prompt versions and per-run metrics.
Writes: nothing but the response cache (a preview's answers, so the run that follows reuses them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from synth.analysis.comparable import at_common_size, interval_text, run_samples
from synth.analysis.metrics import compute_run_metrics
from synth.generate.config import RunConfig
from synth.generate.execute import make_items, prepare
from synth.kernel.records import Item
from synth.store import DuckStore
from synth.workflows import versions

SAMPLE_PROMPTS = 3  # rendered prompts shown as the user types
PREVIEW_N = 3  # items a preview makes
HEADLINE_METRICS = ("count", "distinct_2", "vendi_score", "near_duplicate_rate",
                    "mean_pairwise_cosine_distance", "truncated_rate")
THIS, PREVIOUS = "this version", "previous version"
# The size-dependent headline metrics, also shown at a common sample size (bootstrap intervals).
COMMON_METRICS = ("distinct_2", "vendi_score", "near_duplicate_rate", "mean_pairwise_cosine_distance")
# Past this ratio of run sizes, size-dependent metrics (distinct-n, vendi) are not comparable as they are.
SIZE_RATIO_NOTE = 2.0


@dataclass
class SampledPrompt:
    """One item's prompt as the model would get it: its variable values and the rendered text."""

    idx: int
    variables: dict[str, str]
    prompt: str
    messages: list[dict]


def sample_prompts(cfg: RunConfig, store: DuckStore | None = None, k: int = SAMPLE_PROMPTS) -> list[SampledPrompt]:
    """The prompts of the first ``k`` items of ``cfg`` (the ones a preview makes, since the draw of
    values is seeded), rendered without any model call. Raises SynthError on a broken template or
    missing values."""
    prep = prepare(replace(cfg, n=max(1, int(k)), samples=None), store)
    return [SampledPrompt(p.idx, dict(p.variables), p.rendered_prompt or "", list(p.messages or []))
            for p in prep.plan]


def preview_config(cfg: RunConfig, n: int = PREVIEW_N) -> RunConfig:
    """``cfg`` cut to its first ``n`` items: the same seed and values, so the same calls (and cache
    keys) as the first ``n`` items of the full run."""
    return replace(cfg, n=n, samples=None, judge=None)


def preview_items(cfg: RunConfig, store: DuckStore, n: int = PREVIEW_N, on_item=None, on_partial=None) -> list[Item]:
    """Make the first ``n`` items of ``cfg`` without saving a run. Their answers go into the
    response cache, so running ``cfg`` afterwards gets them for free. ``on_partial`` gets
    {position: text so far} of the items still being written (the embedded model writes them
    token by token), so they can be shown before they are done."""
    prep = prepare(preview_config(cfg, n), store)
    return make_items(prep, store, on_item=on_item, on_partial=on_partial)


def preview_table(items: list[Item]) -> pd.DataFrame:
    """The preview as a table: text, one column per variable (``{name}``), tokens, finish reason."""
    names = list(dict.fromkeys(name for item in items for name in item.variables))
    rows = [{"#": item.idx + 1, "text": item.text,
             **{f"{{{name}}}": item.variables.get(name) for name in names},
             "tokens": item.tokens_out, "finish reason": item.finish_reason or "",
             "latency ms": round(item.latency_ms), "cached": item.cached} for item in items]
    columns = ["#", "text", *(f"{{{name}}}" for name in names), "tokens", "finish reason", "latency ms", "cached"]
    return pd.DataFrame(rows, columns=columns)


WRITING = "writing…"  # the finish reason of a preview item still being written


def writing_row(idx: int, text: str) -> dict:
    """A preview item still being written, as a row of ``preview_table``."""
    return {"#": idx + 1, "text": text, "finish reason": WRITING}


@dataclass
class VersionMetrics:
    """This version's latest run beside the previous version's: titles, runs, metrics, a note."""

    table: pd.DataFrame  # index: metric; columns THIS, PREVIOUS
    this_title: str | None
    previous_title: str | None
    this_run: dict | None  # run_id and name of the latest run, if the version has one
    previous_run: dict | None
    note: str | None = None
    common: pd.DataFrame | None = None  # COMMON_METRICS at a common size (see ``common_size_table``)
    common_n: int | None = None


def _latest_run(runs: pd.DataFrame, prompt_id: str | None) -> dict | None:
    own = runs[runs["prompt_id"] == prompt_id] if prompt_id else runs.iloc[0:0]
    own = own[own["n_items"] > 0]
    if "status" in own:
        own = own[own["status"] != "running"]  # a batch still being made: measured when it ends
    if own.empty:
        return None
    row = own.iloc[-1]
    return {"run_id": row["run_id"], "name": row["name"]}


def _versions_of(store: DuckStore, cfg: RunConfig) -> tuple[versions.Version | None, versions.Version | None]:
    """This version (None while it is unsaved) and the one before it (its parent, else the one
    numbered before it)."""
    preview = versions.preview_version(store, cfg)
    if preview.existing is None:
        return None, preview.parent
    this = preview.existing
    found = versions.list_versions(store, this.name)
    by_id = {v.prompt_id: v for v in found}
    if this.parent_id in by_id:
        return this, by_id[this.parent_id]
    earlier = [v for v in found if v.version < this.version]
    return this, (earlier[-1] if earlier else None)


def _metrics_of(store: DuckStore, run: dict | None) -> dict:
    return compute_run_metrics(store, run["run_id"]) if run else {}


def size_note(this_count, previous_count) -> str | None:
    """A warning when the two runs differ a lot in size (distinct-n falls and vendi rises with n)."""
    try:
        a, b = int(this_count), int(previous_count)
    except (TypeError, ValueError):
        return None
    if min(a, b) <= 0 or max(a, b) / min(a, b) < SIZE_RATIO_NOTE:
        return None
    return (f"The runs differ in size ({a} against {b} items): distinct-2 and the vendi score depend "
            "on the number of items, so compare them at a common size (Compare A/B).")


def compare_versions(store: DuckStore, cfg: RunConfig) -> VersionMetrics:
    """The headline metrics of the latest run of ``cfg``'s version and of the previous version
    (None where a version or its run is missing). Raises SynthError if ``cfg`` is incomplete."""
    this, previous = _versions_of(store, cfg)
    runs = store.runs()
    this_run = _latest_run(runs, this.prompt_id if this else None)
    previous_run = _latest_run(runs, previous.prompt_id if previous else None)
    mine, theirs = _metrics_of(store, this_run), _metrics_of(store, previous_run)
    table = pd.DataFrame({THIS: [mine.get(m) for m in HEADLINE_METRICS],
                          PREVIOUS: [theirs.get(m) for m in HEADLINE_METRICS]},
                         index=pd.Index(HEADLINE_METRICS, name="metric"), dtype=object)
    table = table.where(table.notna(), None)
    common, m = common_size_table(store, this_run, previous_run)
    return VersionMetrics(table, this.title if this else None, previous.title if previous else None,
                          this_run, previous_run, size_note(mine.get("count"), theirs.get("count")), common, m)


def common_size_table(store: DuckStore, this_run: dict | None, previous_run: dict | None
                      ) -> tuple[pd.DataFrame | None, int | None]:
    """The size-dependent headline metrics of both runs on subsamples of one common size, as
    ``mean [low, high]`` (95 % bootstrap interval) per version; (None, None) unless both runs
    exist and are large enough to compare."""
    if not this_run or not previous_run or this_run["run_id"] == previous_run["run_id"]:
        return None, None
    ids = {THIS: this_run["run_id"], PREVIOUS: previous_run["run_id"]}
    samples = run_samples(store, list(ids.values()))
    common = at_common_size({key: samples[run_id] for key, run_id in ids.items()}, COMMON_METRICS)
    if common.m is None or any(common.is_too_small(key) for key in ids):
        return None, None
    table = pd.DataFrame({key: [interval_text(common.value(key, m)) for m in COMMON_METRICS] for key in ids},
                         index=pd.Index(COMMON_METRICS, name="metric"))
    return table, common.m


def version_metrics(store: DuckStore, cfg: RunConfig) -> pd.DataFrame:
    """Rows: the headline metrics; columns "this version" and "previous version" (the latest run
    of each; None where missing)."""
    return compare_versions(store, cfg).table


def mark_highlight(points: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    """``points`` with a boolean ``highlight`` column: True for the items of run ``run_id``."""
    flags = points["run_id"].astype(str) == str(run_id) if run_id and len(points) else False
    return points.assign(highlight=flags)


def highlight_run(points: pd.DataFrame, *candidates: str | None) -> str | None:
    """The first of ``candidates`` (run ids, newest intent first) that has items on the map."""
    present = set(points["run_id"].astype(str)) if len(points) else set()
    return next((str(c) for c in candidates if c and str(c) in present), None)
