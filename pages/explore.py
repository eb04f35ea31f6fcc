"""Explore: the diversity map. Colour by run or prompt version; select points to list them."""

from __future__ import annotations

import streamlit as st

from pages.common import require_app, get_store, intrinsic_note
from synth import plots
from synth.errors import SynthError
from synth.pipeline import map_points
from synth.projection import pending_layouts

LIST_COLUMNS = ["text", "run_name", "prompt_label", "model", "status", "tokens_out", "item_id"]

require_app()


@st.cache_data(max_entries=8, show_spinner="Placing items on the map…")
def load_points(db_path: str, data_version: tuple):
    """Points and layout status for one state of the database (colour changes reuse it)."""
    points, layout = map_points(get_store())
    return points, layout.method, layout.params, layout.status


def color_ui() -> str:
    return st.sidebar.selectbox("Colour by", list(plots.COLOR_CHOICES), key="explore_color_by")


st.title("Diversity map")
intrinsic_note()
color_by = color_ui()

store = get_store()
try:
    points, method, params, status = load_points(store.path, store.data_version())
except SynthError as exc:
    st.error(str(exc))
    st.stop()

if points.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file with "
            "`python -m synth import FILE`.")
    st.stop()

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

caption = (f"UMAP ({', '.join(f'{k}={v}' for k, v in params.items())})" if method == "umap"
           else "PCA")
st.caption(f"{len(points)} items · {points['run_name'].nunique()} runs · layout: {caption}")

fig = plots.map_figure(points, color_by)
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        key="explore_map", width="stretch")

selected = plots.selected_item_ids(event.get("selection") if event else None)
if selected:
    st.subheader(f"{len(selected)} selected")
    rows = points.set_index("item_id").loc[selected].reset_index()
    st.dataframe(rows[LIST_COLUMNS], hide_index=True, width="stretch")
else:
    st.caption("Draw a lasso or a box on the map to list the selected items here.")
