"""Explore: the diversity map of the filtered view. Colour by run, prompt version, cluster or
status; select points to list them."""

from __future__ import annotations

import streamlit as st

from pages.common import dataset_ui, dropped_ui, filters_ui, get_store, intrinsic_note, require_app, view_ui
from synth import plots
from synth.errors import SynthError
from synth.metrics import METRICS
from synth.pipeline import map_points
from synth.projection import pending_layouts

require_app()

LIST_COLUMNS = ["text", "run_name", "prompt_label", "cluster_name", "model", "status", "judge_score", "item_id"]
SUMMARY = ["count", "distinct_2", "vendi_score", "near_duplicate_rate", "cluster_entropy"]


@st.cache_data(max_entries=8, show_spinner="Placing items on the map…")
def load_points(db_path: str, data_version: tuple):
    """Points and layout status for one state of the database (colour and filter changes reuse it)."""
    points, layout = map_points(get_store())
    return points, layout.method, layout.params, layout.status


def map_options_ui() -> tuple[str, bool]:
    color = st.sidebar.selectbox("Colour by", list(plots.COLOR_CHOICES), key="explore_color_by")
    show_dropped = st.sidebar.checkbox("Show filtered-out items in grey", key="explore_show_dropped")
    return color, show_dropped


st.title("Diversity map")
intrinsic_note()
color_by, show_dropped = map_options_ui()
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file with "
            "`python -m synth import FILE`.")
    st.stop()
spec = filters_ui(dataset)
store = get_store()
try:
    points, method, params, status = load_points(store.path, store.data_version())
except SynthError as exc:
    st.error(str(exc))
    st.stop()
view = view_ui(spec)

if status == "preview":
    st.info("Showing a PCA preview while the UMAP layout is computed in the background; "
            "the map switches to UMAP when it is ready.")

    @st.fragment(run_every=2)
    def _poll_layout():
        if pending_layouts() == 0:
            st.rerun(scope="app")

    _poll_layout()
elif status.startswith("failed"):
    st.warning(f"The UMAP layout could not be computed ({status}); showing PCA instead.")

points = points.merge(dataset.items[["item_id", "cluster", "cluster_name"]], on="item_id", how="left")
kept_ids = set(view.result.kept_ids)
shown = points[points["item_id"].isin(kept_ids)]
caption = (f"UMAP ({', '.join(f'{k}={v}' for k, v in params.items())})" if method == "umap" else "PCA")
st.caption(f"{len(shown)} of {len(points)} items shown · {shown['run_name'].nunique()} runs · layout: {caption}")
compact = view.comparison().set_index("metric").loc[SUMMARY]
cols = st.columns(len(SUMMARY))
for col, (name, row) in zip(cols, compact.iterrows()):
    after = "—" if row["after"] is None else f"{row['after']:.3g}"
    delta = None if row["delta"] is None or spec.is_empty() else f"{row['delta']:+.3g}"
    col.metric(name, after, delta, delta_color={1: "normal", -1: "inverse", 0: "off"}[METRICS[name].direction])

dropped = points[~points["item_id"].isin(kept_ids)] if show_dropped else None
fig = plots.map_figure(shown, color_by, dropped=dropped)
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        key="explore_map", width="stretch")

dropped_ui(view)
selected = plots.selected_item_ids(event.get("selection") if event else None)
if selected:
    st.subheader(f"{len(selected)} selected")
    rows = points.set_index("item_id").loc[selected].reset_index()
    st.dataframe(rows[LIST_COLUMNS], hide_index=True, width="stretch")
else:
    st.caption("Draw a lasso or a box on the map to list the selected items here.")
