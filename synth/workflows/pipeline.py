"""The workflows that pages and CLI commands share: each is one call from the outside.

generate -> save -> embed -> measure; import -> save -> embed -> measure; the map's points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from synth.analysis.clustering import Clustering, current_clustering
from synth.analysis.embedding import ensure_embeddings, load_vectors
from synth.analysis.filters import FilterResult, FilterSpec, apply_filters
from synth.analysis.metrics import compare, compute_run_metrics, measure_items
from synth.analysis.projection import MapLayout, current_layout
from synth.generate.config import RunConfig
from synth.generate.execute import execute
from synth.generate.ingest import import_file
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run
from synth.store import DuckStore, in_session


@dataclass
class RunResult:
    """What a finished run reports: to the page, and as ``--json`` from the CLI."""

    run_id: str
    name: str
    technique: str
    model: str | None
    n_items: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    wall_s: float
    n_embedded: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    status: str = "complete"
    n_failed: int = 0
    n_skipped: int = 0
    n_cached: int = 0
    failures: list[str] = field(default_factory=list)
    judge: dict | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. items cut off at max tokens

    def to_dict(self) -> dict:
        return asdict(self)


# Past this share of items cut off at max tokens, a run warns.
TRUNCATION_WARN_RATE = 0.2


def truncation_warning(run: Run, items: list[Item]) -> str | None:
    """A warning when more than TRUNCATION_WARN_RATE of the items with a finish reason were cut off
    at max tokens (finish reason "length"); None otherwise, and for items without one."""
    reasons = [i.finish_reason for i in items if i.finish_reason]
    cut = sum(1 for r in reasons if r == "length")
    if not reasons or cut / len(reasons) <= TRUNCATION_WARN_RATE:
        return None
    max_tokens = run.params.get("max_tokens")
    at = f" ({max_tokens})" if max_tokens else ""
    return (f"{cut} of {len(reasons)} items were cut off at max tokens{at}: raise max tokens, or ask "
            "for shorter texts in the prompt.")


def open_store(db: str | Path | None = None) -> DuckStore:
    """The database at ``db``, else at the ``db_path`` setting (SYNTH_DB)."""
    return DuckStore(db or settings.get("db_path"))


@in_session
def save_and_measure(store: DuckStore, run: Run, items: list[Item], prompt=None) -> RunResult:
    """Save a run in one transaction, embed its items and compute its metrics."""
    store.save_run(run, items, prompt)
    n_embedded = ensure_embeddings(store, [i.text for i in items])
    metrics = compute_run_metrics(store, run.run_id)
    totals = run.totals(items)
    return RunResult(run_id=run.run_id, name=run.name, technique=run.technique, model=run.model,
                     n_items=totals["n_items"], tokens_in=totals["tokens_in"],
                     tokens_out=totals["tokens_out"], cost_usd=totals["cost_usd"],
                     wall_s=round(run.wall_s, 3), n_embedded=n_embedded, metrics=metrics,
                     status=run.status, n_failed=len(run.failures), n_skipped=run.n_skipped,
                     n_cached=sum(1 for i in items if i.cached),
                     failures=[f"item {f['idx']}: {f['message']}" for f in run.failures[:20]],
                     warnings=[w for w in [truncation_warning(run, items)] if w])


def generate_run(store: DuckStore, cfg: RunConfig,
                 on_item: Callable[[Item, int, int], None] | None = None) -> RunResult:
    """Make a run as ``cfg`` describes, save it, embed it, measure it, and judge it if asked."""
    run, items, prompt = execute(cfg, store, on_item)
    result = save_and_measure(store, run, items, prompt)
    if cfg.judge:
        from synth.generate.judge import Rubric, judge_items

        rubric = Rubric.from_dict(cfg.judge["rubric"]) if cfg.judge.get("rubric") else Rubric()
        judged = judge_items(store, [i.item_id for i in items], cfg.judge.get("model") or cfg.model,
                             rubric, cfg.judge.get("api_base", cfg.api_base), cfg.concurrency)
        result.judge = judged.to_dict()
        result.metrics = compute_run_metrics(store, run.run_id)
    return result


def import_run(store: DuckStore, path: str | Path, text_column: str = "text",
               run_name: str | None = None, data: bytes | None = None, reference: bool = False,
               again: bool = False, on_notice: Callable[[str], None] | None = None) -> RunResult:
    """Import a JSONL or CSV file as a run (``reference``: real data to compare with), embed it and
    compute its metrics. A file a run already holds is refused unless ``again``; ``on_notice``
    gets the note about a large file before embedding starts."""
    run, items = import_file(path, text_column, run_name, data, reference, store=store, again=again,
                             on_notice=on_notice)
    return save_and_measure(store, run, items)


def version_name(name: str, version: int, label: str | None = None) -> str:
    """A prompt version as people read it: ``reviews v2`` or ``reviews v2 (shorter)``."""
    return f"{name} v{int(version)}" + (f" ({label})" if isinstance(label, str) and label else "")


def prompt_label(frame: pd.DataFrame) -> pd.Series:
    """A readable prompt version per row, e.g. ``reviews v2``; imports have none."""
    return frame.apply(lambda r: version_name(r["prompt_name"], r["prompt_version"], r.get("version_label"))
                       if pd.notna(r["prompt_version"]) else f"({r['technique']})", axis=1)


@in_session
def map_points(store: DuckStore, background: bool = True, params: dict | None = None
               ) -> tuple[pd.DataFrame, MapLayout]:
    """Every item with its map coordinates, and how the layout was obtained; items new to the
    stored layout are placed with its model, so the others do not move."""
    items = store.items()
    if items.empty:
        return items.assign(x=[], y=[], prompt_label=[]), current_layout(store, items)
    ensure_embeddings(store, items["text"].tolist())
    layout = current_layout(store, items, background=background, params=params)
    points = items.merge(layout.coords, on="item_id", how="inner")
    points["prompt_label"] = prompt_label(points)
    return points, layout


@dataclass
class Dataset:
    """Every item with its prompt label and cluster, and its embeddings in the same order."""

    items: pd.DataFrame
    vectors: np.ndarray
    clustering: "Clustering"


@dataclass
class View:
    """A filtered view of the dataset with every metric before and after the filter."""

    dataset: Dataset
    result: FilterResult
    before: dict
    after: dict
    before_params: dict
    after_params: dict

    def comparison(self) -> pd.DataFrame:
        return compare(self.before, self.after)


@in_session
def load_dataset(store: DuckStore, method: str | None = None, k: int | None = None,
                 min_cluster_size: int | None = None) -> Dataset:
    """All items, embedded (cached) and clustered, ready for the map, filters and metrics."""
    items = store.items()
    if items.empty:
        return Dataset(items.assign(prompt_label=[], cluster=[], cluster_name=[]),
                       np.zeros((0, 0), np.float32), current_clustering(store, method, k, items, min_cluster_size))
    vectors = load_vectors(store, items["text"].tolist())
    clustering = current_clustering(store, method, k, items, min_cluster_size)
    items = items.assign(prompt_label=prompt_label(items),
                         cluster=[clustering.labels.get(i, -1) for i in items["item_id"]])
    items["cluster_name"] = items["cluster"].map(lambda c: clustering.names.get(c, "unclustered"))
    return Dataset(items, vectors, clustering)


@in_session
def filtered_view(store: DuckStore, spec: FilterSpec, threshold: float | None = None,
                  dataset: Dataset | None = None, before: tuple[dict, dict] | None = None,
                  result: FilterResult | None = None) -> View:
    """Apply ``spec`` and measure the dataset before and after it; no re-embedding, no projection.

    ``before`` may pass in already computed (values, params) of the whole dataset, ``result`` the
    already applied filter."""
    dataset = dataset or load_dataset(store)
    result = result or apply_filters(dataset.items, dataset.vectors, spec)
    if before is None:
        before = measure_items(store, dataset.items, threshold, dataset.clustering)
    if len(result.kept) == len(dataset.items):
        after = before  # nothing dropped: the same items, the same figures
    else:
        after = measure_items(store, result.kept, threshold, dataset.clustering)
    return View(dataset, result, before[0], after[0], before[1], after[1])


def filtered_ids(store: DuckStore, query: str) -> list[str]:
    """The ids of the items the filters keep, with the filters written as in the app's URL (the part
    after ``?``, e.g. ``dedup=0.9&lmin=5``), so a shared view can be exported or reported."""
    from urllib.parse import parse_qs

    params = parse_qs(query.lstrip("?"), keep_blank_values=False)
    spec = FilterSpec.from_query(params)
    if spec.is_empty():
        raise SynthError(f"No filter in {query!r}. Copy the part after '?' from the app's address, e.g. "
                         "'dedup=0.9&lmin=5'.")
    dataset = load_dataset(store)
    return apply_filters(dataset.items, dataset.vectors, spec).kept_ids


def refresh_map(store: DuckStore, params: dict | None = None, refit: bool = False,
                cluster_method: str | None = None, k: int | None = None, min_cluster_size: int | None = None,
                name_with: str | None = None, api_base: str | None = None) -> dict:
    """Compute or refresh the layout (fit, or place new items with the stored model) and the
    clusters, name them, and report what is stored (what ``python -m synth map`` prints)."""
    from synth.analysis.clustering import current_clustering, name_clusters_with_llm
    from synth.analysis.projection import refit_layout

    items = store.items()
    if items.empty:
        raise SynthError("There are no items to map. Generate or import some first.")
    ensure_embeddings(store, items["text"].tolist())
    if refit:
        layout = refit_layout(store, items, params)
    else:
        layout = current_layout(store, items, background=False, params=params)
    clustering = current_clustering(store, cluster_method, k, items, min_cluster_size)
    if name_with:
        name_clusters_with_llm(store, clustering, items, name_with, api_base=api_base)
        clustering = current_clustering(store, cluster_method, k, items, min_cluster_size)
    labels = store.cluster_labels(clustering.clustering_id)
    placed = layout.coords["placed"].value_counts().to_dict() if "placed" in layout.coords else {}
    return {"layout_id": layout.layout_id, "method": layout.method, "params": layout.params,
            "trustworthiness": layout.trustworthiness, "n_items": len(layout.coords),
            "placed_now": layout.n_placed, "placed": placed,
            "clustering_id": clustering.clustering_id, "cluster_method": clustering.method,
            "cluster_params": clustering.params,
            "clusters": [{"cluster_id": int(r.cluster_id), "size": int(r.size), "keywords": r.keywords,
                          "label": r.llm_label if isinstance(r.llm_label, str) else r.keywords}
                         for r in labels.itertuples()]}
