"""Metrics: every intrinsic metric of the filtered view, before -> after, and of every run, charted."""

from __future__ import annotations

import json

import streamlit as st

from pages.data import dataset_ui, get_store, view_ui
from pages.shell import require_app
from pages.widgets import (
    dropped_ui,
    filters_ui,
    intrinsic_note,
    near_dup_threshold,
    sampled_notes,
    stop_on_error,
    threshold_note,
)
from synth.analysis.comparable import runs_at_common_size
from synth.analysis.metrics import METRIC_NAMES, compute_all_metrics, metric_label
from synth.kernel import settings
from synth.outputs import metric_charts as charts
from synth.outputs.plots import run_colours

require_app()


@st.cache_data(max_entries=16, show_spinner="Computing metrics per run…")
def load_run_metrics(db_path: str, data_version: tuple, threshold: float):
    return compute_all_metrics(get_store(), threshold)


@st.cache_data(max_entries=8, show_spinner="Measuring every run at a common size…")
def load_common_size(db_path: str, data_version: tuple, threshold: float, min_items: int):
    return runs_at_common_size(get_store(), threshold=threshold)


def table_ui(frame) -> None:
    """A plain-text table, whole on the page (no scrolling inside it), its cells shown literally."""
    st.table(charts.markdown_cells(frame), hide_index=True)


st.title("Metrics")
intrinsic_note()
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file.")
    st.stop()
spec = filters_ui(dataset)
threshold = near_dup_threshold()
view = view_ui(spec, threshold)

kept, total = len(view.result.kept), len(dataset.items)
st.subheader(f"This view: {kept} of {total} items" + ("" if spec.is_empty() else " after the filters"))
st.caption(threshold_note(threshold) + ("" if not spec.is_empty() else
           " Set a filter in the sidebar to see what it changes here."))
table_ui(charts.view_table(view.comparison(), filtered=not spec.is_empty(), threshold=threshold))
for note in sampled_notes(view.after_params):
    st.caption(note)
dropped_ui(view.result)

st.subheader("Per run")
st.caption("Every item of each run: the filters above do not apply here.")
store = get_store()
minimum = settings.get("compare_min_items")
with stop_on_error():
    version = store.data_version(metrics=False)  # the stored metrics are a cache of these, not an input
    table = load_run_metrics(store.path, version, threshold)
    common = load_common_size(store.path, version, threshold, minimum) if len(table) > 1 else None
chosen = st.multiselect("Metrics to chart", METRIC_NAMES, list(charts.DEFAULT_CHART_METRICS),
                        format_func=metric_label, key="metrics_chart",
                        help="One chart per metric, a bar per run. Any metric of the tables below can be charted.")
if not chosen:
    st.info("Choose a metric above to chart it across the runs.")
else:
    st.caption(charts.common_note(common.m if common else None, minimum, len(table)))
colours = run_colours(table["run_id"])
for name in chosen:
    series = charts.metric_series(name, table, common)
    st.plotly_chart(charts.metric_bars(series, colours), key=f"metrics_chart_{name}",
                    config={"displayModeBar": False})
    st.caption(charts.series_note(series, threshold))

st.markdown("**Every metric of every run**")
st.caption("Each whole run. The metrics that move with the number of items (word variety, phrasing reuse, "
           "distinct items and the others) are compared fairly only at a common size, below.")
for part in charts.split_runs(charts.runs_table(table)):
    table_ui(part)
if common is None:
    st.caption("One run only: nothing to compare it with at a common size.")
elif common.m is None:
    st.caption(f"Every run has fewer than {minimum} items: none is compared at a common size.")
else:
    st.markdown(f"**At a common size of {common.m} items**")
    st.caption("The metrics that depend on the number of items, on random subsamples of each run: the mean "
               f"and the 95 % interval. Compare runs on these; a run with fewer than {minimum} items is too "
               "small to compare.")
    for part in charts.split_runs(charts.common_table(common, table)):
        table_ui(part)
with st.expander("Parameters each metric used (this view), by metric id"):
    st.code(json.dumps(view.after_params, indent=1, default=str), language="json", wrap_lines=True)
