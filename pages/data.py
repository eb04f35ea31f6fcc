"""The pages' cached resources: the store, the start-up data, and the dataset, its filtered view and
metrics, loaded once per state of the database."""

from __future__ import annotations

import streamlit as st

from pages.widgets import near_dup_threshold, stop_on_error
from synth.analysis.metrics import measure_in_background
from synth.analysis.projection import defer_background, release_background, start_warmup
from synth.kernel import settings
from synth.store import DuckStore
from synth.workflows.demo import ensure_demo
from synth.workflows.pipeline import open_store, preload_models


@st.cache_resource(show_spinner=False)
def _store(db_path: str) -> DuckStore:
    return open_store(db_path)


def get_store() -> DuckStore:
    """The database named by SYNTH_DB (or the default under data/)."""
    return _store(settings.get("db_path"))


@st.cache_resource(show_spinner="Loading the demo dataset (first start only)…")
def prepare_database(db_path: str) -> list[str]:
    """Open the database once per process, load the demo data into an empty one, start UMAP's warm-up."""
    defer_background()  # no numba compile until the first page is drawn
    return ensure_demo(_store(db_path), measure=False)  # per-run metrics: after the first page


@st.cache_resource(show_spinner=False)
def start_deferred_work(db_path: str) -> bool:
    """Once per process, after the first page is drawn: the work that must not delay it."""
    release_background()  # any background layout fit (and UMAP's warm-up, once something starts it)
    # The per-run metrics table, for SQL and the CLI: a few seconds later, so the browser draws the
    # first page (the map at 50,000 points takes it seconds) before this competes for the CPU.
    measure_in_background(_store(db_path), delay_s=DEFERRED_METRICS_S)
    return True


DEFERRED_METRICS_S = 3.0


def start_preload() -> bool:
    """For the pages that generate: the embedder and the embedded model, loaded once per process
    on a thread, before the first click that needs them, and UMAP's transform compiled for the
    batch that will land (False if already started)."""
    start_warmup()
    return preload_models()


@st.cache_resource(max_entries=4, show_spinner="Loading items, embeddings and clusters…")
def _dataset(db_path: str, data_version: tuple, clustering: tuple = ()):
    from synth.workflows.pipeline import load_dataset

    return load_dataset(_store(db_path), **dict(clustering))


def clustering_choice() -> tuple:
    """The clustering chosen on the Explore page (method, k, min_cluster_size), for every page.

    The default method counts as no choice: the first run of Explore, before its clustering panel
    is drawn, and every later run ask for the same cached dataset (else it was loaded twice)."""
    choice = dict(st.session_state.get("map_clustering", {}))
    if choice.get("method") == settings.get("cluster_method"):
        del choice["method"]
    return tuple(sorted(choice.items()))


def dataset_ui():
    """The whole dataset, loaded once per state of the database (shared by the pages)."""
    store = get_store()
    with stop_on_error():
        return _dataset(store.path, store.data_version(metrics=False), clustering_choice())


@st.cache_resource(max_entries=8, show_spinner="Measuring the whole dataset…")
def _before(db_path: str, data_version: tuple, threshold: float, clustering: tuple = ()):
    from synth.analysis.metrics import measure_items

    dataset = _dataset(db_path, data_version, clustering)
    return measure_items(_store(db_path), dataset.items, threshold, dataset.clustering)


@st.cache_resource(max_entries=16, show_spinner="Applying the filters…")
def _filtered(db_path: str, data_version: tuple, spec_key: tuple, clustering: tuple = ()):
    from synth.analysis.filters import FilterSpec, apply_filters

    dataset = _dataset(db_path, data_version, clustering)
    spec = FilterSpec.from_query(dict(spec_key))
    # The vectors only for the near-duplicate filter: the other filters, and the map, need none.
    return apply_filters(dataset.items, dataset.vectors if spec.dedup_threshold is not None else None, spec)


@st.cache_resource(max_entries=16, show_spinner="Measuring the filtered items…")
def _view(db_path: str, data_version: tuple, spec_key: tuple, threshold: float, clustering: tuple = ()):
    from synth.analysis.filters import FilterSpec
    from synth.workflows.pipeline import filtered_view

    spec = FilterSpec.from_query(dict(spec_key))
    return filtered_view(_store(db_path), spec, threshold, _dataset(db_path, data_version, clustering),
                         _before(db_path, data_version, threshold, clustering),
                         _filtered(db_path, data_version, spec_key, clustering))


def filtered_ui(spec):
    """What the filters keep and drop, without measuring it (cheap: for drawing the map first)."""
    store = get_store()
    with stop_on_error():
        return _filtered(store.path, store.data_version(metrics=False), tuple(sorted(spec.to_query().items())),
                         clustering_choice())


def view_ui(spec, threshold: float | None = None):
    """The filtered view and its metrics before -> after (cached per database state and filter)."""
    store = get_store()
    threshold = near_dup_threshold() if threshold is None else threshold
    with stop_on_error():
        return _view(store.path, store.data_version(metrics=False), tuple(sorted(spec.to_query().items())), threshold,
                     clustering_choice())
