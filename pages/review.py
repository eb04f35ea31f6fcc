"""Review: people accept, reject or edit items, and an LLM judge scores them against a rubric."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import call_ui, job_ui
from synth.generate.judge import Rubric
from synth.kernel import settings
from synth.kernel.text import format_number
from synth.workflows import jobs, review

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
    counts = call_ui(review.apply_review, store, before, edited)
    if counts is not None:
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
    rubric = call_ui(Rubric.from_text, rubric_text)
    control = None if rubric is None else call_ui(jobs.start_judge, store.path, store.items([run_id])["item_id"].tolist(),
                                                  judge_model, rubric)
    if control is not None:
        st.session_state["review_judge_job"] = control.job_id


def judged_ui(result) -> None:
    st.success(f"Judged {result.n_items} items: {result.n_valid} valid verdicts, mean score "
               f"{format_number(result.score_mean, 3, missing='—')}.")
    st.dataframe(pd.DataFrame([result.pass_rates]), hide_index=True)


job_ui("review_judge_job", judged_ui)
