"""Review: people accept, reject or edit items, and an LLM judge scores them against a rubric."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import get_store, require_app
from synth.workflows import review
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.generate.judge import Rubric, judge_items

require_app()

EDIT_COLUMNS = ["item_id", "text", "status", "judge_score", "valid", "version"]


def run_ui(runs: pd.DataFrame) -> str:
    labels = dict(zip(runs["run_id"], runs["name"]))
    return st.selectbox("Run", list(labels)[::-1], format_func=labels.get, key="review_run")


st.title("Review")
st.caption("Human-AI collaboration: accept, reject or edit items. An edit keeps the original as "
           "version 1. Status is a column like any other: filter and export by it.")
store = get_store()
runs = store.runs()
if runs.empty:
    st.info("No runs yet. Generate a batch on the Generate page first.")
    st.stop()
run_id = run_ui(runs)
statuses = st.multiselect("Show statuses", review.STATUSES, default=list(review.STATUSES), key="review_statuses")
items = store.items([run_id])
items = items[items["status"].isin(statuses)]
before = items[EDIT_COLUMNS].reset_index(drop=True)
edited = st.data_editor(
    before, key=f"review_editor_{run_id}", hide_index=True, width="stretch", disabled=["item_id", "judge_score",
                                                                                     "valid", "version"],
    column_config={"text": st.column_config.TextColumn("text", width="large"),
                   "status": st.column_config.SelectboxColumn("status", options=list(review.STATUSES))})
if st.button("Save review", type="primary", key="review_save"):
    try:
        counts = review.apply_review(store, before, edited)
    except SynthError as exc:
        st.error(str(exc))
    else:
        st.success(f"Saved: {counts['edited']} edited, {counts['accepted']} accepted, "
                   f"{counts['rejected']} rejected.")

with st.expander("Version history of an item"):
    item_id = st.selectbox("Item", before["item_id"].tolist(), key="review_history_item")
    if item_id:
        st.dataframe(review.history(store, item_id), hide_index=True, width="stretch")

st.subheader("LLM judge")
judge_model = st.text_input("Judge model", settings.get("default_model"), key="review_judge_model")
rubric_text = st.text_area("Checklist (one 'name: description' per line) or a YAML rubric",
                           "on_task: does what its prompt asked\nfluent: reads naturally\n"
                           "self_contained: makes sense on its own", key="review_rubric", height=100)
if st.button("Judge this run", key="review_judge"):
    progress = st.progress(0.0, text="Judging…")
    done = []
    total = len(store.items([run_id]))

    def on_result(result):
        done.append(result)
        progress.progress(min(1.0, len(done) / max(total, 1)), text=f"{len(done)} of {total} judged")

    try:
        result = judge_items(store, store.items([run_id])["item_id"].tolist(), judge_model,
                             Rubric.from_text(rubric_text), on_result=on_result)
    except SynthError as exc:
        progress.empty()
        st.error(str(exc))
    else:
        st.success(f"Judged {result.n_items} items: {result.n_valid} valid verdicts, mean score "
                   f"{result.score_mean if result.score_mean is None else round(result.score_mean, 2)}.")
        st.dataframe(pd.DataFrame([result.pass_rates]), hide_index=True)
