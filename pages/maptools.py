"""The Explore map's tools: search, an item's neighbours, linked charts and the newest batch's
landing. Drawing only; what is found and measured comes from synth.analysis.neighbours and
synth.outputs.plots."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

import numpy as np
import pandas as pd
import streamlit as st

from pages.data import clustering_choice, get_store
from pages.widgets import call_ui, near_dup_threshold
from synth.analysis import neighbours
from synth.kernel import settings
from synth.kernel.text import literal_markdown
from synth.outputs import plots

NEIGHBOURS_K = 10
# The linked charts: a title, and each item's value (a function of the points frame).
CHARTS = {
    "length": ("Length (words)", lambda p: p["length_words"]),
    "judge": ("Judge score", lambda p: p["judge_score"]),
    "cluster_size": ("Size of the item's cluster", lambda p: p.groupby("cluster")["item_id"].transform("size")),
}
PICKED = "explore_picked"  # ids chosen from a list (neighbours, matches), standing in for a map selection


@st.cache_data(max_entries=16, show_spinner="Searching… (the first search by meaning loads the embedding model: "
                                             "about 10 s)")
def _search(db_path: str, data_version: tuple, clustering: tuple, query: str, mode: str, _dataset):
    from synth.analysis.embedding import get_embedder

    embed = get_embedder().embed if mode == "meaning" else None
    rows, sims = neighbours.search(_dataset.items, _dataset.vectors, query, mode, embed=embed)
    return _dataset.items["item_id"].iloc[rows].tolist(), None if sims is None else sims.tolist()


def search_ui(dataset, clustering: tuple) -> pd.DataFrame:
    """A search box over the map: the matching items (item_id, similarity), best first."""
    box, mode_col = st.columns([4, 2])
    query = box.text_input("Search the items", key="explore_search", placeholder="words, a pattern, or a meaning",
                           help="Words: items holding every word. Pattern: a regular expression. Meaning: the "
                           f"{neighbours.MEANING_TOP} items closest to the query's embedding (same model as the map).")
    mode = mode_col.radio("Search by", list(neighbours.SEARCH_MODES), horizontal=True, key="explore_search_mode",
                          format_func=lambda m: {"pattern": "pattern (regex)"}.get(m, m))
    empty = pd.DataFrame({"item_id": [], "similarity": []})
    if not query.strip():
        return empty
    store = get_store()
    found = call_ui(_search, store.path, store.data_version(metrics=False), clustering, query, mode, dataset)
    if found is None:
        return empty
    ids, sims = found
    return pd.DataFrame({"item_id": ids, "similarity": sims if sims is not None else [None] * len(ids)})


def chart_keys() -> dict[str, str]:
    generation = st.session_state.get("explore_chart_generation", 0)
    return {name: f"explore_chart_{name}_{generation}" for name in CHARTS}


def chart_ranges() -> dict[str, tuple[float, float]]:
    """The range chosen in each linked chart (a box or a click on its bars), from the last run."""
    out = {}
    for name, key in chart_keys().items():
        chosen = plots.range_from_selection(st.session_state.get(key))
        if chosen is not None:
            out[name] = chosen
    return out


def in_ranges(points: pd.DataFrame, ranges: dict[str, tuple[float, float]]) -> np.ndarray:
    """Which points fall in every chosen range ([low, high], the last bar's high edge included)."""
    mask = np.ones(len(points), dtype=bool)
    for name, (low, high) in ranges.items():
        values = pd.to_numeric(CHARTS[name][1](points), errors="coerce").to_numpy(float)
        mask &= (values >= low) & (values <= high)
    return mask


def linked_charts_ui(view: pd.DataFrame, selected: pd.DataFrame, ranges: dict) -> None:
    """Histograms of the items in view; the map's selection drawn over them; a box drawn on one
    filters the map."""
    keys = chart_keys()
    for name, (title, value) in CHARTS.items():
        values = value(view)
        if pd.to_numeric(values, errors="coerce").notna().sum() == 0:
            st.caption(f"{title}: none of the items in view has one.")
            continue
        picked = values.loc[view["item_id"].isin(selected["item_id"])] if len(selected) else None
        fig = plots.histogram_figure(values, title, picked, chosen=ranges.get(name))
        st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "points"), key=keys[name], width="stretch")
    if ranges:
        chosen = "; ".join(f"{CHARTS[n][0].lower()} {lo:.3g}–{hi:.3g}" for n, (lo, hi) in ranges.items())
        st.caption(f"The map shows only: {chosen}.")
        if st.button("Clear the chart filters", key="explore_clear_charts"):
            st.session_state["explore_chart_generation"] = st.session_state.get("explore_chart_generation", 0) + 1
            st.rerun()
    else:
        st.caption("Draw a box over bars to show only those items on the map.")


def picked_ui(ids: list[str], label: str, key: str) -> None:
    if st.button(label, key=key):
        st.session_state[PICKED] = list(ids)
        st.rerun()


def neighbours_ui(item_id: str, dataset) -> None:
    """The clicked item's nearest items, with a button to select them."""
    items = dataset.items
    position = int(np.flatnonzero((items["item_id"] == item_id).to_numpy())[0])
    rows, sims = neighbours.neighbours(dataset.vectors, position, NEIGHBOURS_K)
    near = items.iloc[rows][["text", "run_name", "status", "cluster_name", "item_id"]].assign(
        similarity=np.round(sims, 3))
    st.subheader("Nearest items")
    st.text(items["text"].iloc[position])
    st.dataframe(near[["similarity", "text", "run_name", "status", "cluster_name"]], hide_index=True,
                 width="stretch", column_config={"similarity": st.column_config.NumberColumn(
                     "cosine similarity", help="Cosine similarity of the embeddings, 1 = same direction.")})
    picked_ui([item_id] + near["item_id"].tolist(), f"Select it and its {len(near)} neighbours",
              "explore_pick_neighbours")


def matches_ui(matches: pd.DataFrame, points: pd.DataFrame, query: str) -> None:
    if not query.strip():
        return
    if matches.empty:
        st.caption(f"No item matches {literal_markdown(query.strip())!s}.")
        return
    rows = matches.merge(points[["item_id", "text", "run_name", "status", "cluster_name"]], on="item_id")
    columns = (["similarity"] if rows["similarity"].notna().any() else []) + ["text", "run_name", "status",
                                                                              "cluster_name"]
    with st.expander(f"{len(rows)} matches, ringed on the map", expanded=True):
        st.dataframe(rows[columns], hide_index=True, width="stretch")
        picked_ui(rows["item_id"].tolist(), f"Select the {len(rows)} matches", "explore_pick_matches")


@st.cache_data(max_entries=8, show_spinner=False)
def _landing(db_path: str, data_version: tuple, clustering: tuple, run_id: str, _dataset):
    return neighbours.landing(_dataset.items, _dataset.vector_rows, run_id)  # reads only the rows it needs


def newest_run(items: pd.DataFrame) -> str | None:
    synthetic = items[items["run_role"] != "reference"]
    return None if synthetic.empty or synthetic["run_id"].nunique() < 2 else str(synthetic["run_id"].iloc[-1])


def newest_ring(dataset) -> pd.Series | None:
    """The newest batch's items, to ring on the map: when it arrived since this session last drew
    the map, or the user asks (the "Ring it" switch of ``landing_ui``). Cheap: drawn before the map."""
    run_id = newest_run(dataset.items)
    seen = st.session_state.get("explore_seen_runs")
    st.session_state["explore_seen_runs"] = set(dataset.items["run_id"].unique())
    if run_id is None:
        return None
    if seen is not None and run_id not in seen:
        st.session_state["explore_ring_newest"] = True
    if st.session_state.get("explore_ring_newest"):
        return dataset.items.loc[dataset.items["run_id"] == run_id, "item_id"]
    return None


def landing_ui(dataset, clustering: tuple) -> None:
    """A line on where the newest batch landed (clusters joined, a new region, coverage), with the
    switch that rings it (measured after the map is drawn)."""
    run_id = newest_run(dataset.items)
    if run_id is None:
        return
    store = get_store()
    landed = call_ui(_landing, store.path, store.data_version(metrics=False), clustering, run_id, dataset)
    if landed is None:
        return
    text, ring = st.columns([3, 1], vertical_alignment="center")
    text.info(f"Newest batch **{literal_markdown(landed.run_name)}**: {literal_markdown(landed.sentence())}")
    ring.toggle("Ring it", key="explore_ring_newest", help="Circle the newest batch's items on the map.")


# The view's metrics before and after the filters take seconds past 10,000 items (near-duplicates
# and Vendi are quadratic): Explore measures them on a thread and draws the map meanwhile, so a
# filter or a colour change is not held up by the last run's measuring. A view measured within
# MEASURE_WAIT_S is shown in the same run. Past WAIT_ITEMS items the run waits only
# MEASURE_WAIT_LARGE_S: Streamlit shows a rerun's new map only when the run ends (measured: a plain
# plotly app that sleeps 3 s after its chart shows a filter's redraw 3 s later), so a 2 s wait for
# figures that take longer anyway held every redraw back by 2 s. Such a view is measured
# START_LATER_S after it is asked for, so the run does not wait at all: a view measured before is
# shown at once, another one on the poll's rerun.
MEASURE_WAIT_S = 2.0
MEASURE_WAIT_LARGE_S = 0.0
WAIT_ITEMS = 5_000
# Past WAIT_ITEMS items a view starts being measured this long after it is asked for: its Python
# parts (word n-grams) hold the GIL, and the run that asked is still sending the map and the
# tables (measured at 50,000 items: the redraw's last message left 2.3 s after the map, for a run
# of 1.4 s).
START_LATER_S = 0.7
_MEASURING: dict[tuple, Future] = {}
_POOL = ThreadPoolExecutor(1, thread_name_prefix="synth-measure")
_LOCK = threading.Lock()
KEEP = 16


def _later(key: tuple, work) -> Future:
    with _LOCK:
        future = _MEASURING.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = _MEASURING[key] = _POOL.submit(work)
            while len(_MEASURING) > KEEP:
                _MEASURING.pop(next(iter(_MEASURING)))
        return future


# The figures above the map, and past how many items they are measured on a sample.
HEADLINE = ["count", "distinct_2", "vendi_score", "near_duplicate_rate", "cluster_entropy"]


def measure_wait_s(n_items: int, first_draw: bool = False) -> float:
    """How long a run waits for its view's figures: MEASURE_WAIT_S, or MEASURE_WAIT_LARGE_S past
    WAIT_ITEMS items on a rerun (its new map shows only when the run ends: it is not held back for
    figures that take seconds anyway). A session's first map shows at once, and while the browser
    builds it the run may as well wait for the figures (rather than compete for the CPU)."""
    return MEASURE_WAIT_S if first_draw or n_items <= WAIT_ITEMS else MEASURE_WAIT_LARGE_S


def measured_view(dataset, filtered, spec, wait_s: float | None = None, first_draw: bool = False):
    """The filtered view with its headline metrics before and after (``pipeline.filtered_view``,
    past ``headline_sample`` items on a seeded sample of that many), measured on a thread once per
    database state, clustering, filter and threshold; None while it is still being measured after
    ``wait_s`` (default ``measure_wait_s``; ``first_draw``: this session's first map). A failure is
    raised here, in the page's run."""
    from synth.analysis.metrics import measure_items
    from synth.workflows.pipeline import filtered_view

    store = get_store()
    threshold = near_dup_threshold()  # the app's one threshold: the filter panel's
    sample = int(settings.get("headline_sample"))
    state = (store.path, store.data_version(metrics=False), clustering_choice(), threshold, sample)
    before = _later(("before",) + state,
                    lambda: measure_items(store, dataset.items, threshold, dataset.clustering, names=HEADLINE,
                                          sample=sample, vector_rows=dataset.vector_rows))
    if wait_s is None:
        wait_s = measure_wait_s(len(dataset.items), first_draw)
    later = measure_wait_s(len(dataset.items), first_draw) < MEASURE_WAIT_S  # a large view's rerun: one rule

    def measure_view():
        if later:  # the rerun ends and its messages go out first: measuring holds the GIL for seconds
            time.sleep(START_LATER_S)
        return filtered_view(store, spec, threshold, dataset, before.result(), filtered, names=HEADLINE,
                             sample=sample)

    view = _later(("view", tuple(sorted(spec.to_query().items()))) + state, measure_view)
    try:
        return view.result(timeout=wait_s)
    except FuturesTimeout:
        return None


def measuring_ui(view_ready, presenting: bool = False) -> None:
    """A line while the figures are measured, and a check every second that reruns the page once
    they are ready."""
    if not presenting:
        st.caption("Measuring the items in view (near-duplicates, distinct items, topic spread)… the figures "
                   "appear above the map when they are ready; the map can be used meanwhile.")

    @st.fragment(run_every=1.0)
    def _poll():
        if view_ready():
            st.rerun(scope="app")

    _poll()
