"""The workflows that pages and CLI commands share: each is one call from the outside.

generate -> save -> embed -> measure; import -> save -> embed -> measure; the map's points.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from synth.analysis.clustering import Clustering, current_clustering
from synth.analysis.embedding import ensure_embeddings, get_embedder, load_vectors
from synth.analysis.filters import FilterResult, FilterSpec, apply_filters, word_counts
from synth.analysis.metrics import compare, compute_run_metrics, measure_items
from synth.analysis.projection import MapLayout, current_layout
from synth.generate.config import RunConfig
from synth.generate.execute import Prepared, config_hash, make_items, prepare
from synth.generate.ingest import import_file
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.buffer import BufferedWriter
from synth.kernel.records import Item, Run, from_json
from synth.llm import providers
from synth.store import DuckStore, in_session
from synth.workflows.control import JobControl

log = logging.getLogger(__name__)


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
    return _truncation_warning(run.params.get("max_tokens"), [i.finish_reason for i in items])


def _truncation_warning(max_tokens, finish_reasons: list) -> str | None:
    reasons = [r for r in finish_reasons if isinstance(r, str) and r]
    cut = sum(1 for r in reasons if r == "length")
    if not reasons or cut / len(reasons) <= TRUNCATION_WARN_RATE:
        return None
    at = f" ({max_tokens})" if max_tokens else ""
    return (f"{cut} of {len(reasons)} items were cut off at max tokens{at}: raise max tokens, or ask "
            "for shorter texts in the prompt.")


def open_store(db: str | Path | None = None) -> DuckStore:
    """The database at ``db``, else at the ``db_path`` setting (SYNTH_DB)."""
    return DuckStore(db or settings.get("db_path"))


@in_session
def measure_run(store: DuckStore, run_id: str) -> RunResult:
    """Embed a saved run's items, compute its metrics, and report it as stored."""
    items = store.items([run_id])
    n_embedded = ensure_embeddings(store, items["text"].tolist())
    metrics = compute_run_metrics(store, run_id)
    row = store.run_row(run_id)
    failures = store.run_failures(run_id, limit=20)
    params = from_json(row["params"], {})
    cost = None if pd.isna(row["cost_usd"]) else float(row["cost_usd"])
    return RunResult(run_id=run_id, name=row["name"], technique=row["technique"],
                     model=None if pd.isna(row["model"]) else row["model"], n_items=int(row["n_items"]),
                     tokens_in=int(row["tokens_in"]), tokens_out=int(row["tokens_out"]), cost_usd=cost,
                     wall_s=round(float(row["wall_s"]), 3), n_embedded=n_embedded, metrics=metrics,
                     status=row["status"], n_failed=int(row["n_failed"]), n_skipped=int(row["n_skipped"]),
                     n_cached=int(items["cached"].fillna(False).astype(bool).sum()) if len(items) else 0,
                     failures=[f"item {int(f.idx)}: {f.message}" for f in failures.itertuples()],
                     warnings=[w for w in [_truncation_warning(params.get("max_tokens"),
                                                               items["finish_reason"].tolist())] if w])


def save_and_measure(store: DuckStore, run: Run, items: list[Item], prompt=None) -> RunResult:
    """Save a run in one transaction, embed its items and compute its metrics."""
    store.save_run(run, items, prompt)
    return measure_run(store, run.run_id)


def generate_run(store: DuckStore, cfg: RunConfig,
                 on_item: Callable[[Item, int, int], None] | None = None,
                 control: JobControl | None = None, resume: bool = True,
                 prep: Prepared | None = None) -> RunResult:
    """Make a run as ``cfg`` describes, saving each item as it arrives, then embed it, measure it,
    and judge it if asked. A run of the same configuration that was interrupted (or cancelled) is
    resumed instead of begun again, unless ``resume`` is False."""
    if resume:
        store.mark_interrupted()
        unfinished = store.unfinished_runs(config_hash(cfg))
        waiting = unfinished[unfinished["status"] != "running"]
        if len(waiting):
            return resume_run(store, waiting.iloc[0]["run_id"], on_item, control)
    prep = prep or prepare(cfg, store)  # a caller that checked the plan first passes it on
    if not prep.technique.uses_llm:  # no model call: nothing to lose, saved in one transaction
        items = make_items(prep, store, on_item)
        result = save_and_measure(store, prep.run, items, prep.prompt)
    else:
        control = control or JobControl.begin(store, "generate", prep.run.name, total=prep.total)
        store.begin_run(prep.run, prep.prompt)
        result = _make_and_save(store, prep, set(), on_item, control)
    return _judge(store, cfg, result)


def resume_run(store: DuckStore, run: str, on_item: Callable[[Item, int, int], None] | None = None,
               control: JobControl | None = None) -> RunResult:
    """Go on with an interrupted or cancelled run: make only the calls it has no item for (the
    answers already cached cost nothing), into the same run."""
    store.mark_interrupted()
    run_id = store.resolve_run(run)
    row = store.run_row(run_id)
    if row["status"] == "running":
        job = store.run_job(run_id)
        raise SynthError(f"Run {row['name']!r} is still being made (job {job['job_id'] if job else '?'}). "
                         "Wait for it, or cancel it first.")
    if row["status"] not in ("interrupted", "cancelled"):
        raise SynthError(f"Run {row['name']!r} is {row['status']}: there is nothing to resume. Only an "
                         "interrupted or cancelled run can be resumed.")
    config = from_json(row["config"], {})
    if not config:
        raise SynthError(f"Run {row['name']!r} has no stored configuration, so it cannot be resumed.")
    cfg = RunConfig.from_dict(config)
    existing = Run(name=row["name"], technique=row["technique"], run_id=run_id,
                   created_at=row["created_at"].to_pydatetime(), wall_s=float(row["wall_s"]))
    prep = prepare(cfg, store, run=existing)
    done = store.run_item_indices(run_id)
    control = control or JobControl.begin(store, "generate", f"{prep.run.name} (resumed)", total=prep.total)
    store.set_run_status(run_id, "running")
    return _judge(store, cfg, _make_and_save(store, prep, done, on_item, control))


def _make_and_save(store: DuckStore, prep: Prepared, done: set[int],
                   on_item: Callable[[Item, int, int], None] | None, control: JobControl) -> RunResult:
    """Make the items of a begun run (but those at positions ``done``), each saved as it arrives."""
    run = prep.run
    control.attach(store, run.run_id, total=prep.total, done=len(done))
    writer = BufferedWriter(lambda rows: store.add_items(run, rows),
                            on_written=lambda n: control.saved(store, len(done) + n))

    def arrived(item: Item, i: int, total: int) -> None:
        writer.add(item)
        control.arrived(item)
        if on_item:
            on_item(item, i, total)

    try:
        try:
            make_items(prep, store, arrived, skip=done, cancel=control.cancel)
        finally:
            writer.flush(final=True)  # after an error or Ctrl-C too: the answers are paid for
    except BaseException as exc:
        if store.drop_empty_run(run.run_id):
            control.finish(store, "failed", error=str(exc))
        else:
            store.set_run_status(run.run_id, "interrupted")
            control.finish(store, "interrupted", error=str(exc) or type(exc).__name__)
        raise
    if not store.run_item_indices(run.run_id):
        store.drop_empty_run(run.run_id)
        control.finish(store, "cancelled")
        raise SynthError("Cancelled before any item was made: nothing was saved.")
    store.finish_run(run)
    control.phase("embedding and measuring")
    result = measure_run(store, run.run_id)
    control.finish(store, "cancelled" if run.status == "cancelled" else "done", result=result)
    return result


def _judge(store: DuckStore, cfg: RunConfig, result: RunResult) -> RunResult:
    if cfg.judge:
        from synth.generate.judge import Rubric, judge_items

        rubric = Rubric.from_dict(cfg.judge["rubric"]) if cfg.judge.get("rubric") else Rubric()
        item_ids = store.items([result.run_id])["item_id"].tolist()
        judged = judge_items(store, item_ids, cfg.judge.get("model") or cfg.model,
                             rubric, cfg.judge.get("api_base", cfg.api_base), cfg.concurrency)
        result.judge = judged.to_dict()
        result.metrics = compute_run_metrics(store, result.run_id)
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
    versions = frame["prompt_version"].astype(object).where(frame["prompt_version"].notna(), None)
    # NaN is not equal to itself: missing names and labels become None, so equal keys meet.
    labels = [v if isinstance(v, str) else None for v in frame["version_label"].tolist()] \
        if "version_label" in frame else [None] * len(frame)
    names = [v if isinstance(v, str) else None for v in frame["prompt_name"].tolist()]
    made: dict[tuple, str] = {}  # a run's rows share one label: made once, not once per row

    def label(key: tuple) -> str:
        if key not in made:
            name, version, version_label, technique = key
            made[key] = version_name(name, version, version_label) if version is not None else f"({technique})"
        return made[key]

    keys = zip(names, versions.tolist(), labels, frame["technique"].tolist())
    return pd.Series([label(k) for k in keys], index=frame.index, dtype=object)


@in_session
def map_points(store: DuckStore, background: bool = True, params: dict | None = None,
               dataset: "Dataset | None" = None) -> tuple[pd.DataFrame, MapLayout]:
    """Every item with its map coordinates, and how the layout was obtained; items new to the
    stored layout are placed with its model, so the others do not move.

    ``dataset``: the already loaded dataset of the database's current state, whose items (and
    prompt labels) are used instead of being read again."""
    items = store.items() if dataset is None else dataset.items.drop(columns=["cluster", "cluster_name"])
    if items.empty:
        return items.assign(x=[], y=[], prompt_label=[]), current_layout(store, items)
    if dataset is None:  # a loaded dataset has its embeddings (reading hashes only takes ~0.2 s at 50k)
        ensure_embeddings(store, items["text"].tolist())
    layout = current_layout(store, items, background=background, params=params)
    points = items.merge(layout.coords, on="item_id", how="inner")
    if "prompt_label" not in points:
        points["prompt_label"] = prompt_label(points)
    return points, layout


class Dataset:
    """Every item with its prompt label and cluster, and its embeddings in the same order.

    ``vectors`` may be given as a function that reads them: they are read on first use (once, on
    whichever thread asks first), so what needs only the items (the map of a stored layout, the
    filters) does not wait for them."""

    def __init__(self, items: pd.DataFrame, vectors: "np.ndarray | Callable[[], np.ndarray]",
                 clustering: "Clustering", read_rows: "Callable[[np.ndarray], np.ndarray] | None" = None):
        self.items = items
        self.clustering = clustering
        self._vectors = vectors
        self._read_rows = read_rows
        self._lock = threading.Lock()

    @property
    def loaded_vectors(self) -> np.ndarray | None:
        """The vectors if they have been read, else None (never reads them)."""
        return None if callable(self._vectors) else self._vectors

    def vector_rows(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of these rows (positions in ``items``): from the loaded vectors, or read for
        these rows alone when the rest are not loaded (a sample at 200,000 items need not read all)."""
        rows = np.asarray(rows, dtype=np.int64)
        loaded = self.loaded_vectors
        if loaded is not None or self._read_rows is None:
            return self.vectors[rows]
        return self._read_rows(rows)

    @property
    def vectors(self) -> np.ndarray:
        if callable(self._vectors):
            with self._lock:
                if callable(self._vectors):
                    self._vectors = self._vectors()
        return self._vectors

    def __repr__(self) -> str:
        return f"Dataset({len(self.items)} items, clustering {self.clustering.clustering_id})"


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
    texts = items["text"].tolist()
    # Reads hashes only (the stored ones); the vectors are read when first used.
    ensure_embeddings(store, texts, hashes=items["text_hash"].tolist())
    clustering = current_clustering(store, method, k, items, min_cluster_size)
    vectors = functools.partial(load_vectors, store, texts)
    read_rows = lambda rows: load_vectors(store, [texts[i] for i in rows], keep=False)  # noqa: E731
    cluster = items["item_id"].map(clustering.labels).fillna(-1).astype(int)
    items = items.assign(prompt_label=prompt_label(items), cluster=cluster,
                         cluster_name=cluster.map(clustering.names).fillna("unclustered"),
                         length_words=word_counts(items))  # counted once: filters and charts use them
    return Dataset(items, vectors, clustering, read_rows)


def filtered_view(store: DuckStore, spec: FilterSpec, threshold: float | None = None,
                  dataset: Dataset | None = None, before: tuple[dict, dict] | None = None,
                  result: FilterResult | None = None, names: list[str] | None = None,
                  sample: int | None = None) -> View:
    """Apply ``spec`` and measure the dataset before and after it; no re-embedding, no projection.
    Not one session: the database is not held while the items are measured (seconds at scale).

    ``before`` may pass in already computed (values, params) of the whole dataset, ``result`` the
    already applied filter; ``names`` and ``sample`` are as in ``measure_items`` (before and after
    alike)."""
    dataset = dataset or load_dataset(store)
    result = result or apply_filters(dataset.items, dataset.vectors, spec)
    if before is None:
        before = measure_items(store, dataset.items, threshold, dataset.clustering, names=names, sample=sample,
                               vector_rows=dataset.vector_rows)
    if len(result.kept) == len(dataset.items):
        after = before  # nothing dropped: the same items, the same figures
    else:  # the kept items' vectors are rows of the dataset's: not looked up again by text
        at = pd.Index(dataset.items["item_id"]).get_indexer(result.kept["item_id"])
        after = measure_items(store, result.kept, threshold, dataset.clustering, names=names, sample=sample,
                              vector_rows=lambda rows: dataset.vector_rows(at[rows]))
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
    from synth.analysis.projection import import_umap, refit_layout

    # umap's import (2.5 s in a new process) runs while the items are read; the clusters come
    # from the embeddings, not the layout, so they are found while umap's layout holds one core.
    with ThreadPoolExecutor(2, thread_name_prefix="synth-map") as pool:
        pool.submit(import_umap)
        items = store.items()
        if items.empty:
            raise SynthError("There are no items to map. Generate or import some first.")
        ensure_embeddings(store, items["text"].tolist())
        clusters = pool.submit(current_clustering, store, cluster_method, k, items, min_cluster_size)
        if refit:
            layout = refit_layout(store, items, params)
        else:
            layout = current_layout(store, items, background=False, params=params)
        clustering = clusters.result()
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


_PRELOAD = threading.Event()


def preload_models(model: str | None = None) -> bool:
    """Load the embedder and the embedded model once, on a background thread, so the first click
    that needs them does not wait for them (a hosted model needs nothing loaded). Returns False if
    a preload was already started in this process."""
    if _PRELOAD.is_set():
        return False
    _PRELOAD.set()
    model = model or settings.get("default_model")

    def load() -> None:
        from synth.llm.batch import BatchSettings, Call, run_batch

        try:
            get_embedder()
            if providers.is_local(model):
                providers.check_model(model)  # loads it and pages its weights in
                # The first call through litellm also pays its import and set-up (about 4 s
                # measured in the app); a one-token call pays it here instead of the first Preview.
                run_batch([Call(0, [{"role": "user", "content": "hi"}])],
                          BatchSettings(model=model, max_tokens=1, use_cache=False))
        except SynthError as exc:  # said again, with what to do, when it is used
            log.warning("preloading models: %s", exc)

    threading.Thread(target=load, name="synth-preload", daemon=True).start()
    return True
