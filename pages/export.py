"""Export: the filtered (or accepted) set with provenance, as files, a Hugging Face dataset folder,
or a standalone HTML report for stakeholders."""

from __future__ import annotations

import streamlit as st

from pages.data import dataset_ui, get_store, view_ui
from pages.shell import require_app
from pages.widgets import call_ui, dropped_ui, filters_ui
from synth.kernel.records import ACCEPTED_STATUSES
from synth.llm.licences import DISCLAIMER, known_terms, notes_table
from synth.outputs.export import export_bytes, export_dataset_zip
from synth.outputs.formats import EXPORT_FORMATS, FORMATS
from synth.outputs.report import build_report

require_app()

HF_FOLDER = "hf_dataset"  # the Format choice of a Hugging Face dataset folder, zipped
# What each Format choice is called, on the radio and the download button.
FORMAT_TITLES = {**{suffix: f"{FORMATS[suffix].title} ({suffix})" for suffix in EXPORT_FORMATS},
                 HF_FOLDER: "Hugging Face dataset (.zip)"}
SETS = {"filtered": "Everything the filters keep", "accepted": "Only accepted or edited items the filters keep"}


@st.cache_data(max_entries=4, show_spinner="Preparing the export…")
def export_cached(db_path: str, data_version: tuple, ids: tuple, fmt: str) -> tuple[bytes, str, str]:
    """The file of items ``ids`` in format ``fmt``: its bytes, file name and media type."""
    if fmt == HF_FOLDER:
        return export_dataset_zip(get_store(), item_ids=list(ids)), "synth-dataset.zip", "application/zip"
    return export_bytes(get_store(), fmt, item_ids=list(ids)), f"synth-export{fmt}", FORMATS[fmt].mime


def licences_ui(items) -> None:
    """The licence notes of every model that made an item in the set."""
    st.subheader("Licence notes of the generating models")
    notes = notes_table(items["model"].tolist())
    st.dataframe(notes[["model", "training_use", "licence", "summary", "source"]], hide_index=True,
                 width="stretch", column_config={"training_use": st.column_config.TextColumn("use for training"),
                                                 "source": st.column_config.LinkColumn()})
    st.caption(DISCLAIMER + " The notes go into the dataset card and the report; every exported row "
               "carries its model and `model_training_use`.")
    with st.expander("Every model family Synth Studio has a note for"):
        st.dataframe(known_terms().drop(columns=["matches"]), hide_index=True, width="stretch",
                     column_config={"source": st.column_config.LinkColumn()})
        st.caption("A model that matches none of these is marked unknown, not guessed.")


st.title("Export")
st.caption("Every item leaves with its provenance: model (for licence questions), prompt and its "
           "version, parameters, tokens, latency, cost, status and judge score.")
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page or import a file.")
    st.stop()
spec = filters_ui(dataset)
view = view_ui(spec)
which = st.radio("Items", list(SETS), format_func=SETS.get, horizontal=True, key="export_set")
kept = dataset.items[dataset.items["item_id"].isin(set(view.result.kept_ids))]
if which == "accepted":
    kept = kept[kept["status"].isin(ACCEPTED_STATUSES)]
ids = kept["item_id"].tolist()
st.write(f"{len(ids)} of {len(dataset.items)} items in the set.")
dropped_ui(view.result)
if not ids:
    st.info("No item is in this set: loosen the filters" + (", or accept items on the Review page."
                                                             if which == "accepted" else "."))
    st.stop()

fmt = st.radio("Format", list(FORMAT_TITLES), format_func=FORMAT_TITLES.get, horizontal=True, key="export_format",
               help="The Hugging Face folder holds data/train.parquet and a README.md dataset card (models, "
                    "prompts, parameters, counts, metrics and licence notes); load it with "
                    "datasets.load_dataset(folder).")
store = get_store()
exported = call_ui(export_cached, store.path, store.data_version(), tuple(ids), fmt)
if exported is not None:
    data, name, mime = exported
    as_ = ("a " if fmt == HF_FOLDER else "") + FORMAT_TITLES[fmt]
    st.download_button(f"Download {len(ids)} items as {as_}", data, file_name=name, mime=mime,
                       key="export_download", type="primary")
licences_ui(kept)

st.subheader("Stakeholder report")
st.caption("One HTML file with the map, the metrics, example items, the prompts and the licence notes. "
           "It needs no server and no network: send it or open it anywhere. It is built when you click, "
           "which takes a few seconds.")
title = st.text_input("Title", "Synthetic data report", key="export_report_title")
report_ids = list(ids)


def report_bytes() -> bytes:
    """The report of the set on screen, built on the click (Streamlit runs it outside the script)."""
    return build_report(store, item_ids=report_ids, title=title).encode("utf-8")


st.download_button(f"Download the report of {len(ids)} items (HTML)", report_bytes, file_name="synth-report.html",
                   mime="text/html", key="export_report_download")
