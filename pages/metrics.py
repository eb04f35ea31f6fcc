"""Metrics: every intrinsic metric of the filtered view, before -> after, and of every run."""

from __future__ import annotations

import json

import streamlit as st

from pages.data import dataset_ui, get_store, view_ui
from pages.shell import require_app
from pages.widgets import (
    dropped_ui,
    filters_ui,
    intrinsic_note,
    sampled_notes,
    stop_on_error,
)
from synth.analysis.comparable import TOO_SMALL, runs_at_common_size, too_small
from synth.analysis.metrics import METRIC_HELP, compute_all_metrics
from synth.kernel import settings

require_app()


@st.cache_data(max_entries=16, show_spinner="Computing metrics per run…")
def load_run_metrics(db_path: str, data_version: tuple, threshold: float):
    return compute_all_metrics(get_store(), threshold)


@st.cache_data(max_entries=8, show_spinner="Measuring every run at a common size…")
def load_common_size(db_path: str, data_version: tuple, threshold: float, min_items: int):
    common = runs_at_common_size(get_store(), threshold=threshold)
    return common.m, common.wide()


st.title("Metrics")
intrinsic_note()
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file.")
    st.stop()
spec = filters_ui(dataset)
threshold = st.slider("Near-duplicate threshold for the metric (cosine similarity)", 0.50, 1.00,
                      float(settings.get("near_dup_threshold")), 0.01, key="metrics_threshold")
view = view_ui(spec, threshold)

kept, total = len(view.result.kept), len(dataset.items)
st.subheader(f"This view: {kept} of {total} items" + ("" if spec.is_empty() else " after the filters"))
st.dataframe(view.comparison(), hide_index=True, width="stretch",
             column_config={"before": st.column_config.NumberColumn(format="%.4g"),
                            "after": st.column_config.NumberColumn(format="%.4g"),
                            "delta": st.column_config.NumberColumn(format="%+.4g")})
for note in sampled_notes(view.after_params):
    st.caption(note)
dropped_ui(view.result)

st.subheader("Per run")
store = get_store()
with stop_on_error():
    table = load_run_metrics(store.path, store.data_version(), threshold)
minimum = settings.get("compare_min_items")
table.insert(2, "comparable", [TOO_SMALL if too_small(int(n or 0)) else "" for n in table["count"]])
st.dataframe(table.drop(columns=["run_id"]), hide_index=True, width="stretch",
             column_config={"cost_usd": st.column_config.NumberColumn("cost_usd", format="$%.5f")})
if len(table) > 1:
    with stop_on_error():
        common_n, common = load_common_size(store.path, store.data_version(), threshold, minimum)
    if common_n is None:
        st.caption(f"Every run has fewer than {minimum} items: none is compared at a common size.")
    else:
        st.markdown(f"**At a common size of {common_n} items**")
        st.caption("Distinct-n, self-BLEU, vendi and the other metrics that depend on the number of items, on random "
                   "subsamples of each run: the mean and the 95 % interval. Compare runs on these, not on the table "
                   f"above; a run with fewer than {minimum} items is too small to compare.")
        names = dict(zip(table["run_id"], table["run"]))
        st.dataframe(common.assign(run=common["run"].map(lambda r: names.get(r, r))), hide_index=True,
                     width="stretch")
with st.expander("Parameters each metric used (this view)"):
    st.code(json.dumps(view.after_params, indent=1, default=str), language="json")
with st.expander("What the metrics mean"):
    for name, text in METRIC_HELP.items():
        st.markdown(f"- `{name}`: {text}")
