"""Metrics: the intrinsic metrics of every run, read from DuckDB."""

from __future__ import annotations

import streamlit as st

from pages.common import require_app, get_store, intrinsic_note
from synth import settings
from synth.errors import SynthError
from synth.metrics import METRIC_HELP, compute_all_metrics

require_app()


@st.cache_data(max_entries=16, show_spinner="Computing metrics…")
def load_metrics(db_path: str, data_version: tuple, threshold: float):
    return compute_all_metrics(get_store(), threshold)


st.title("Metrics per run")
intrinsic_note()
threshold = st.slider("Near-duplicate threshold (cosine similarity)", 0.50, 1.00,
                      float(settings.get("near_dup_threshold")), 0.01, key="metrics_threshold")
store = get_store()
try:
    table = load_metrics(store.path, store.data_version(), threshold)
except SynthError as exc:
    st.error(str(exc))
    st.stop()
if table.empty:
    st.info("No runs yet. Generate a batch on the Generate page or import a file.")
    st.stop()
st.dataframe(table.drop(columns=["run_id"]), hide_index=True, width="stretch",
             column_config={"cost_usd": st.column_config.NumberColumn("cost_usd", format="$%.5f")})
with st.expander("What the metrics mean"):
    for name, text in METRIC_HELP.items():
        st.markdown(f"- `{name}`: {text}")
