"""Explore: the diversity map. Where the data is, where the gaps are, and what to do about them."""

from __future__ import annotations

import streamlit as st

from pages.shell import leave_presentation_ui, presentation_ui, require_app, start_up
from pages.shell import presenting as presentation_mode  # "presenting" is this page's flag below
from synth.outputs.mapframe import loading_figure

require_app(startup=False)  # started up below, after the first screen

# The first screen, before anything heavy is imported or loaded: the title, the places above the
# map and, on a session's first run, an empty map. The browser loads plotly.js (about a second)
# while the server imports pandas and synth, opens the database and loads the items (measured on
# a cold start: a plain plotly app that waits 1.1 s after an early empty chart draws 0.25 s later
# than one that does not wait, against 1.1 s later when nothing is sent first).
st.title("Diversity map")
presenting = presentation_mode()
note_slot = st.container()
caption_slot = st.empty()
summary_slot = st.container()
landing_slot = st.container()
search_slot = st.container()
map_col, chart_col = st.columns([3, 1]) if not presenting else (st.container(), None)
map_slot = map_col.empty()
first_draw = not st.session_state.get("explore_map_drawn")
if first_draw:
    try:
        map_slot.plotly_chart(loading_figure(), key="explore_map_loading")
    except AttributeError:  # another session began importing pandas meanwhile (see loading_figure)
        pass  # no loading map: the map itself comes as always
start_up()

import numpy as np  # noqa: E402  (after the first screen, see above)
import pandas as pd  # noqa: E402

from pages import maptools, mapview  # noqa: E402
from pages.data import clustering_choice, dataset_ui, filtered_ui, get_store  # noqa: E402
from pages.widgets import (  # noqa: E402
    call_ui,
    current_filters,
    dropped_ui,
    error_text,
    filters_ui,
    intrinsic_note,
    licence_ui,
    stop_on_error,
)
from synth.analysis.clustering import (  # noqa: E402
    CLUSTERERS,
    MAX_K,
    cluster_shares,
    name_clusters_with_llm,
    typical_items,
)
from synth.analysis.coverage import collapse_alarms, coverage_sentences, coverage_summary, percent  # noqa: E402
from synth.analysis.metrics import METRICS, format_metric, metric_label, nearest_neighbour_similarity  # noqa: E402
from synth.analysis.projection import pending_layouts, umap_params  # noqa: E402
from synth.kernel import settings  # noqa: E402
from synth.kernel.text import format_number, literal_markdown  # noqa: E402
from synth.outputs import plots  # noqa: E402
from synth.outputs.export import export_bytes  # noqa: E402
from synth.workflows import actions, jobs, review  # noqa: E402
from synth.workflows.pipeline import map_points  # noqa: E402

LIST_COLUMNS = ["text", "run_name", "prompt_label", "cluster_name", "model", "status", "judge_score", "item_id"]
NN_SIMILARITY_MAX = 20_000  # past this, the per-item nearest-neighbour colour is not offered


@st.cache_resource(max_entries=4, show_spinner="Placing items on the map…")
def load_points(db_path: str, data_version: tuple, params_key: tuple, clustering: tuple, _dataset):
    """Points and layout for one state of the database, one clustering and one set of layout
    parameters, with the columns the map colours and sizes by (colour, size and filter changes reuse
    them: nothing is re-embedded, re-projected or counted again). Shared, not copied: never change
    the frame in place."""
    points, layout = map_points(get_store(), params=dict(params_key), dataset=_dataset)
    derived = [c for c in ("cluster", "cluster_name", "length_words") if c not in points]
    extra = _dataset.items[["item_id", *derived]].copy()
    extra["valid_num"] = _dataset.items["valid"].astype("float")
    return points.merge(extra, on="item_id", how="left"), layout


@st.cache_data(max_entries=4)
def nn_similarity(db_path: str, data_version: tuple, _vectors: np.ndarray) -> np.ndarray:
    return nearest_neighbour_similarity(_vectors)


@st.cache_data(max_entries=4, show_spinner=False)
def cluster_tables(db_path: str, data_version: tuple, clustering: tuple, _dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each cluster's share of each run, and the gap table (computed once per state: about 0.5 s at 50k)."""
    shares = cluster_shares(_dataset.items).pivot_table(index="cluster_name", columns="run_name",
                                                        values="share_of_run", fill_value=0.0)
    return shares, actions.gap_table(_dataset.items)


def map_options_ui(n_items: int) -> tuple[str, str, bool]:
    choices = list(plots.COLOR_CHOICES) + [c for c in plots.NUMERIC_CHOICES
                                           if c != "nearest-neighbour similarity" or n_items <= NN_SIMILARITY_MAX]
    color = st.sidebar.selectbox("Colour by", choices, key="explore_color_by")
    size = st.sidebar.selectbox("Size by", list(plots.SIZE_CHOICES), key="explore_size_by")
    show_dropped = st.sidebar.checkbox("Show filtered-out items in grey", key="explore_show_dropped")
    st.sidebar.checkbox("Cluster names on the map", True, key="explore_labels")
    st.sidebar.selectbox("Density contours", list(DENSITY_CHOICES), key="explore_density",
                         help="Lines around where items lie: where the synthetic data does not go shows at a glance.")
    return color, size, show_dropped


# What the density contours are drawn for.
DENSITY_CHOICES = ("none", "reference and synthetic", "synthetic", "reference", "each run (largest 6)")


def decorate(fig, shown: pd.DataFrame, reference: pd.DataFrame, density: str, labels: bool, presenting: bool):
    """Density contours under the points and cluster names over them."""
    everything = pd.concat([shown, reference])
    if density != "none" and len(everything) >= 3:
        extent = plots.map_extent(everything)
        if density in ("reference and synthetic", "reference") and len(reference):
            plots.add_density(fig, reference, "density: reference", plots.REFERENCE_COLOR, extent,
                              filled=density == "reference and synthetic")
        if density in ("reference and synthetic", "synthetic"):
            plots.add_density(fig, shown, "density: synthetic", plots.PALETTE[0], extent)
        if density.startswith("each run"):
            colours = plots.run_colours(everything["run_id"].astype(str))
            for run_id in shown["run_id"].value_counts().index[:6]:
                runs = shown[shown["run_id"] == run_id]
                plots.add_density(fig, runs, f"density: {runs['run_name'].iloc[0]}", colours[str(run_id)], extent,
                                  legend=False)  # coloured as its run
    if labels:
        plots.add_cluster_labels(fig, everything, font_size=20 if presenting else 13)
    return fig


def layout_ui() -> dict:
    with st.sidebar.expander("Layout (UMAP)"):
        defaults = umap_params()
        n_neighbors = st.number_input("n_neighbors", 2, 200, defaults["n_neighbors"], key="explore_n_neighbors")
        min_dist = st.number_input("min_dist", 0.0, 1.0, defaults["min_dist"], 0.05, key="explore_min_dist")
        seed = st.number_input("seed", 0, 2**31 - 1, defaults["seed"], key="explore_seed")
        refit = st.button("Re-fit layout", key="explore_refit",
                          help="A new layout of every item. Points move; the old layout stays stored.")
    params = umap_params(int(n_neighbors), float(min_dist), int(seed))
    if refit and call_ui(jobs.start_refit, get_store().path, params) is not None:
        st.sidebar.caption("Re-fitting the layout in the background: the map changes when it is done.")
    return params


def clustering_ui() -> None:
    with st.sidebar.expander("Clusters"):
        method = st.radio("Method", list(CLUSTERERS), key="explore_cluster_method", horizontal=True)
        choice = {"method": method}
        if "k" in CLUSTERERS[method].options:
            k = st.number_input("k (0: automatic)", 0, MAX_K, 0, key="explore_cluster_k")
            choice["k"] = int(k) or None
        if "min_cluster_size" in CLUSTERERS[method].options:
            size = st.number_input("Smallest cluster (0: automatic)", 0, 1000, 0, key="explore_min_cluster_size")
            choice["min_cluster_size"] = int(size) or None
        st.session_state["map_clustering"] = {k: v for k, v in choice.items() if v is not None}
        model = st.text_input("Name clusters with (litellm model)", settings.get("default_model"),
                              key="explore_namer")
        st.session_state["explore_name_request"] = st.button("Name clusters", key="explore_name_clusters")
        st.session_state["explore_namer_model"] = model


def selection_ui(selected: list[str], points: pd.DataFrame, dataset) -> None:
    """The selected rows and what can be done with them."""
    st.subheader(f"{len(selected)} selected")
    rows = points.set_index("item_id").loc[selected].reset_index()
    st.dataframe(rows[LIST_COLUMNS], hide_index=True, width="stretch")
    store = get_store()
    accept, reject, tag_box, tag = st.columns([1, 1, 2, 1])
    for button, status, key in ((accept, "accepted", "explore_accept"), (reject, "rejected", "explore_reject")):
        if button.button(status[:-2].capitalize(), key=key):
            review.set_status(store, selected, status)
            st.toast(f"{status.capitalize()} {len(selected)} items.")
            st.rerun()
    tags = tag_box.text_input("Tags (comma-separated)", key="explore_tags", label_visibility="collapsed",
                              placeholder="tags, comma-separated")
    if tag.button("Tag", key="explore_tag") and tags.strip():
        store.add_tags(selected, [t.strip() for t in tags.split(",") if t.strip()])
        st.toast(f"Tagged {len(selected)} items: {literal_markdown(tags.strip())}")
        st.rerun()
    st.download_button("Export the selection (JSONL)", export_bytes(store, ".jsonl", item_ids=selected),
                       file_name="selection.jsonl", key="explore_export")
    with st.form("explore_generate"):
        st.markdown("**Generate from the selection**")
        left, right = st.columns(2)
        n = left.number_input("Items", 1, 200, 5, key="explore_generate_n")
        model = right.text_input("Model", settings.get("default_model"), key="explore_generate_model")
        like = st.form_submit_button("Generate more like this")
        gap = st.form_submit_button("Fill this gap")
    if like or gap:
        texts = rows["text"].tolist()
        cfg = (actions.like_this(texts, int(n), model=model) if like
               else actions.fill_gap(dataset.items, selected_ids=selected, n=int(n), model=model))
        run_ui(cfg)


def run_ui(cfg) -> None:
    """Make the run in the background (its progress is in the sidebar); the map shows its items when
    it is done, placed without moving the others."""
    if call_ui(jobs.start_generation, get_store().path, cfg) is not None:
        st.info(f"Generating **{literal_markdown(cfg.run_name)}** in the background (see the sidebar): its items "
                "appear on the map when it is done, placed without moving the others.")


def coverage_ui(dataset, kept_ids: set) -> None:
    """Reference (real) data against the synthetic items in view: recall, precision, the clusters
    least covered, and collapse alarms."""
    if not (dataset.items["run_role"] == "reference").any():
        st.caption("Import real reference data (Generate page, or `python -m synth import FILE "
                   "--reference`) to see what the synthetic set covers and misses.")
        return
    summary = coverage_summary(dataset.items, dataset.vectors, synthetic_ids=kept_ids)
    if not summary.measured:
        st.info(literal_markdown(summary.reason))
        return
    recall, precision, nearby = coverage_sentences(summary)
    left, right = st.columns(2)
    left.metric("Recall: reference items reached", percent(summary.recall), help=f"{recall} {nearby}")
    right.metric("Precision: synthetic items near real data", percent(summary.precision), help=precision)
    st.caption("Clusters, least covered first:")
    st.dataframe(pd.DataFrame(summary.clusters), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="percent") for c in ("recall", "precision")})
    alarms = collapse_alarms(dataset.items, dataset.vectors)
    for row in alarms[alarms["alarm"]].itertuples() if len(alarms) else []:
        st.warning(f"Run **{literal_markdown(row.run_name)}**: {row.metric} is {format_number(row.run, 3)} "
                   f"[{format_number(row.run_low, 3)}, {format_number(row.run_high, 3)}], {row.ratio:.0%} of the "
                   f"reference's {format_number(row.reference, 3)} [{format_number(row.reference_low, 3)}, "
                   f"{format_number(row.reference_high, 3)}] on samples of {row.sample_size} items (95 % intervals "
                   "that do not overlap) — diversity has collapsed below the real data.")
    small = alarms[alarms["status"] != ""].drop_duplicates("run_id") if len(alarms) else alarms
    if len(small):
        st.caption("Too small to compare with the reference (under "
                   f"{settings.get('compare_min_items')} items, or the reference is): "
                   + ", ".join(f"{literal_markdown(r.run_name)} ({r.run_items} items)" for r in small.itertuples()))


def presentation_examples_ui(dataset, kept_ids: set, clusters: int = 6, per_cluster: int = 2) -> None:
    """The largest clusters of the view, each with its most typical items, as plain text."""
    items = dataset.items
    mask = (items["item_id"].isin(kept_ids) & (items["run_role"] != "reference")).to_numpy()
    typical = typical_items(items[mask], dataset.vectors[mask], per_cluster)
    sizes = items[mask]["cluster"].value_counts()
    st.subheader("What the data looks like")
    for column, cluster in zip(st.columns(2) * (clusters // 2), list(dict.fromkeys(typical["cluster"]))[:clusters]):
        with column.container(border=True):
            rows = typical[typical["cluster"] == cluster]
            st.markdown(f"**{literal_markdown(rows['cluster_name'].iloc[0])}** · {sizes[cluster] / mask.sum():.0%} of the items")
            for text in rows["text"]:
                st.text(text)  # generated text is shown as text, never as markup
    st.subheader("Models and their output licences")
    for model in items[mask]["model"].dropna().unique():
        licence_ui(model)


def summary_ui(dataset, filtered, spec, presenting: bool) -> None:
    """The headline figures of the view, before -> after the filters; measured on a thread, so
    the map is drawn (and can be used) first. While they are measured the same row holds "…" (so
    nothing above the map moves when they come). A poll that reruns the app when they are ready
    stops with that run: a fragment left polling every second would make clicks on the page race it."""
    try:
        view = maptools.measured_view(dataset, filtered, spec, first_draw=first_draw)
    except Exception as exc:  # shown, and the rest of the page goes on
        summary_slot.error(error_text(exc, "measuring the items in view"))
        return
    with summary_slot:
        figures_ui(view, spec, presenting)
    if view is None:  # below the map (nothing above it moves); the page runs again once they are ready
        maptools.measuring_ui(lambda: _measured(dataset, filtered, spec), presenting)


def _measured(dataset, filtered, spec) -> bool:
    try:
        return maptools.measured_view(dataset, filtered, spec, wait_s=0) is not None
    except Exception:  # the next run shows it
        return True


def presented(name: str, value, n_clusters: int) -> str:
    """A headline figure in plain words and units, for an audience."""
    if name == "cluster_entropy":  # 2^entropy: how many equally used topics would spread as evenly
        return "—" if value is None else f"{2 ** value:.0f} of {n_clusters}"
    if name == "vendi_score":
        return "—" if value is None else f"about {value:,.0f}"
    return format_metric(name, value)


PRESENTED = {"count": "Items", "distinct_2": "Word-pair variety", "vendi_score": "Effectively distinct items",
             "near_duplicate_rate": "Near-duplicates", "cluster_entropy": "Topics used (effectively)"}


def figures_ui(view, spec, presenting: bool) -> None:
    """The row of headline figures ("…" while ``view`` is None), and what they were measured on."""
    # A row that wraps: five figures side by side at 1440 px, on two lines at 1024 px, never cut off.
    line = st.container(horizontal=True, wrap=True, gap="medium")
    width = 360 if presenting else 262
    if view is None:
        for name in maptools.HEADLINE:
            line.metric(PRESENTED[name] if presenting else metric_label(name), "…", help=METRICS[name].help,
                        width=width)
        return
    compact = view.comparison().set_index("metric").loc[maptools.HEADLINE]
    n_clusters = len(view.dataset.clustering.names)
    for name, row in compact.iterrows():
        if presenting:
            line.metric(PRESENTED[name], presented(name, row["after"], n_clusters), help=METRICS[name].help,
                        width=width)
            continue
        delta = (None if pd.isna(row["delta"]) or spec.is_empty()
                 else format_metric(name, row["delta"], signed=True))
        line.metric(metric_label(name), format_metric(name, row["after"]), delta, help=METRICS[name].help,
                    delta_color={1: "normal", -1: "inverse", 0: "off"}[METRICS[name].direction], width=width)
    sampled = view.after_params.get("near_duplicate_rate", {}).get("sample_of") or \
        view.before_params.get("near_duplicate_rate", {}).get("sample_of")
    if sampled and not presenting:
        st.caption(f"Measured on a seeded random {int(settings.get('headline_sample')):,} of the items when there "
                   "are more (before and after the filters alike, so the two compare); the Metrics page "
                   "measures every item.")


presentation_ui()  # its style, or the way in (in the sidebar, under start-up's jobs panel)
with note_slot:
    intrinsic_note()
dataset = dataset_ui()
if dataset.items.empty:
    map_slot.empty()
    st.info("No items yet. Generate a batch on the Generate page or import a file with "
            "`python -m synth import FILE`.")
    st.stop()
if presenting:  # the choices made before, with every setting hidden
    color_by, size_by, show_dropped = st.session_state.get("explore_color_by", "run"), "none", False
    defaults = umap_params()
    params = umap_params(int(st.session_state.get("explore_n_neighbors", defaults["n_neighbors"])),
                         float(st.session_state.get("explore_min_dist", defaults["min_dist"])),
                         int(st.session_state.get("explore_seed", defaults["seed"])))
    spec = current_filters()
else:
    color_by, size_by, show_dropped = map_options_ui(len(dataset.items))
    params = layout_ui()
    clustering_ui()
    spec = filters_ui(dataset)
store = get_store()
if st.session_state.pop("explore_name_request", False):
    with st.spinner("Naming clusters…"):
        call_ui(name_clusters_with_llm, store, dataset.clustering, dataset.items,
                st.session_state.get("explore_namer_model", ""))
    dataset = dataset_ui()
with stop_on_error():
    points, layout = load_points(store.path, store.data_version(metrics=False), tuple(sorted(params.items())),
                                 clustering_choice(), dataset)
filtered = filtered_ui(spec)
if color_by == "nearest-neighbour similarity":
    similarity = pd.DataFrame({"item_id": dataset.items["item_id"],
                               "nn_similarity": nn_similarity(store.path, store.data_version(metrics=False), dataset.vectors)})
    points = points.merge(similarity, on="item_id", how="left")
kept_ids = set(filtered.kept_ids)
is_reference = points["run_role"] == "reference"
kept = points["item_id"].isin(filtered.kept["item_id"])
in_view = points[kept & ~is_reference]
ranges = {} if presenting else maptools.chart_ranges()
shown = in_view[maptools.in_ranges(in_view, ranges)] if ranges else in_view
reference = points[kept & is_reference]
dropped = points[~kept] if show_dropped else None
newest = None if presenting else maptools.newest_ring(dataset)  # the note and its switch: after the map
with search_slot:
    matches = (maptools.search_ui(dataset, clustering_choice()) if not presenting
               else pd.DataFrame({"item_id": [], "similarity": []}))
# Colours from every run of the dataset, oldest first: a run keeps its colour whatever is filtered or added.
fig = plots.map_figure(shown, color_by, dropped=dropped, reference=reference, size_by=size_by,
                       run_order=points.loc[~is_reference, "run_id"].unique(), hover_total=len(points))
# An audience sees the reference data's density when there is some: where the synthetic data does not go.
decorate(fig, shown, reference, st.session_state.get("explore_density", "none") if not presenting
         else "reference and synthetic" if len(reference) else "none",
         st.session_state.get("explore_labels", True), presenting)
if newest is not None:
    plots.add_highlight(fig, shown[shown["item_id"].isin(set(newest))], "newest batch", "#D62728")
picked = st.session_state.get(maptools.PICKED) or []
if len(matches) or picked:
    plots.add_highlight(fig, points[points["item_id"].isin(set(matches["item_id"]) | set(picked))],
                        "found / picked")
if presenting:
    fig.update_layout(height=760, font={"size": 18}, dragmode="pan", legend={"font": {"size": 20}})
else:  # the legend under the map: the map keeps the column's width
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.01, "xanchor": "left", "x": 0},
                      dragmode="pan")  # a drag pans and a click selects an item (Streamlit clicks only outside lasso/box)
if mapview.use_map_view(len(points)):  # a large map keeps its plot and is updated in place
    with map_slot:
        event = mapview.map_view(fig, key="explore_map_view")
else:
    event = map_slot.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                                  key="explore_map", width="stretch")
st.session_state["explore_map_drawn"] = True
map_selected = plots.selected_item_ids(event.get("selection") if event else None)
if map_selected and map_selected != st.session_state.get("explore_last_selection"):
    # A new selection on the map wins over items picked from a list (an emptied one does not: the
    # map's selection may be reset when its figure changes).
    st.session_state.pop(maptools.PICKED, None)
    picked = []
st.session_state["explore_last_selection"] = map_selected
selected = picked or map_selected
if chart_col is not None:
    with chart_col:
        maptools.linked_charts_ui(in_view, points[points["item_id"].isin(set(selected))], ranges)

# Below the map's first draw: what needs measuring.
trust = "" if layout.trustworthiness is None else f" · trustworthiness {layout.trustworthiness:.3f}"
desc = layout.describe() + (trust if layout.stored else "")
if presenting:  # plain words for an audience: what a dot is, and no layout parameters
    runs = shown["run_name"].nunique()
    caption_slot.caption(f"{len(shown):,} generated items from {runs} run{'s' if runs != 1 else ''}"
                         + (f", with {len(reference):,} real reference items in grey" if len(reference) else "")
                         + ". Each dot is one item; similar texts sit close together, and the names mark "
                         "the main topics.")
else:
    caption_slot.caption(f"{len(shown)} of {len(points)} items shown ({len(reference)} reference) · "
                         f"{shown['run_name'].nunique()} runs · {dataset.clustering.describe()}, over which "
                         f"cluster_entropy is measured · layout: {desc}"
                         + (f" · {layout.n_placed} new items placed with transform"
                            if layout.n_placed and layout.status == "stored" else ""))
if layout.status in ("preview", "placing"):
    summary_slot.info(
        "Showing a PCA preview while the UMAP layout is computed in the background; the map switches "
        "to UMAP when it is ready." if layout.status == "preview" else
        f"Placing {layout.n_placed} new items with the layout's transform; meanwhile each is shown near "
        "its most similar items. The other points do not move.")

    @st.fragment(run_every=2)
    def _poll_layout():
        if pending_layouts() == 0:
            st.rerun(scope="app")

    with summary_slot:
        _poll_layout()
elif layout.status.startswith("failed"):
    summary_slot.warning(f"The UMAP layout could not be computed ({layout.status}); showing PCA instead.")
summary_ui(dataset, filtered, spec, presenting)
if not presenting:  # the note comes with a switch: a setting, hidden from an audience
    with landing_slot:
        maptools.landing_ui(dataset, clustering_choice())
if presenting:
    presentation_examples_ui(dataset, kept_ids)
    leave_presentation_ui()
    st.stop()
dropped_ui(filtered)
maptools.matches_ui(matches, points, st.session_state.get("explore_search", ""))
if len(selected) == 1:
    maptools.neighbours_ui(selected[0], dataset)
if selected:
    selection_ui(selected, points, dataset)
else:
    st.caption("Click an item to see its nearest neighbours; choose Lasso or Box select in the map's toolbar "
               "and draw on the map to list the selected items and act on them.")

with st.expander("Clusters: sizes, shares per run, and gaps"):
    shares, gaps = cluster_tables(store.path, store.data_version(metrics=False), clustering_choice(), dataset)
    st.caption("Each run's items by cluster (a column adds up to 100 %):")
    st.dataframe(shares, width="stretch",
                 column_config={c: st.column_config.NumberColumn(str(c), format="percent") for c in shares.columns})
    if "gap" in gaps:
        st.caption("Gaps: each cluster's share of the real reference items against its share of the "
                   "synthetic ones; the widest gap (what the synthetic data misses) first.")
    else:
        st.caption("No reference data, so no gap can be measured: the smallest clusters come first. Import "
                   "real data (`python -m synth import FILE --reference`) to see what the synthetic data misses.")
    share = {c: st.column_config.NumberColumn(label, format="percent") for c, label in
             (("synthetic_share", "share of synthetic items"), ("reference_share", "share of real items"),
              ("gap", "gap (real − synthetic)"))}
    st.dataframe(gaps.drop(columns=["cluster"]), hide_index=True, width="stretch",
                 column_config={"cluster_name": st.column_config.TextColumn("cluster"), **share})
    if len(gaps) and st.button(f"Fill the biggest gap: {literal_markdown(gaps['cluster_name'].iloc[0])}", key="explore_fill_gap"):
        run_ui(actions.fill_gap(dataset.items, cluster=int(gaps["cluster"].iloc[0]), n=5,
                                model=settings.get("default_model")))
with st.expander("Coverage against reference data", expanded=bool((dataset.items["run_role"] == "reference").any())):
    coverage_ui(dataset, kept_ids)
