"""Export: the filtered view, with provenance, as JSONL, CSV or Parquet."""

from __future__ import annotations

import streamlit as st

from pages.common import dataset_ui, dropped_ui, filters_ui, get_store, require_app, view_ui
from synth.errors import SynthError
from synth.export import EXPORT_FORMATS, export_bytes

require_app()

st.title("Export")
st.caption("Every item leaves with its provenance: model (for licence questions), prompt and its "
           "version, parameters, tokens, latency, cost, status and judge score.")
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file.")
    st.stop()
spec = filters_ui(dataset)
view = view_ui(spec)
ids = view.result.kept_ids
st.write(f"{len(ids)} of {len(dataset.items)} items in the filtered view.")
dropped_ui(view.result)
fmt = st.radio("Format", list(EXPORT_FORMATS), horizontal=True, key="export_format")
if ids:
    try:
        data = export_bytes(get_store(), fmt, item_ids=ids)
    except SynthError as exc:
        st.error(str(exc))
    else:
        st.download_button(f"Download {len(ids)} items ({fmt})", data, file_name=f"synth-export{fmt}",
                           key="export_download")
else:
    st.info("The filters drop every item: loosen them to export something.")
