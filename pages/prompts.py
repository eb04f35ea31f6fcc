"""Prompt versions: what changed from version to version, names, and metrics across versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import call_ui, intrinsic_note, stop_on_error
from synth.analysis.metrics import METRIC_NAMES
from synth.kernel import settings
from synth.kernel.text import literal_markdown
from synth.outputs import plots
from synth.workflows import versions

require_app()


@st.cache_data(max_entries=8, show_spinner="Measuring every version's runs…")
def load_trends(db_path: str, data_version: tuple, name: str):
    return versions.version_trends(get_store(), name)


st.title("Prompt versions")
st.caption("Every change of template, system prompt, variables or parameters is saved as a new version "
           "with its diff from the version it was edited from. Name the versions worth keeping; compare "
           "two of them on the Compare A/B page.")
store = get_store()
names = versions.prompt_names(store)
if not names:
    st.info("No prompt versions yet. Generate a batch (or save a version) on the Generate page.")
    st.stop()
name = st.selectbox("Prompt", names, key="prompts_name")
found = versions.list_versions(store, name)
table = pd.DataFrame([{"version": v.version, "name": v.label or "", "changed": ", ".join(v.changes),
                       "runs": v.n_runs, "model": v.params.get("model", ""),
                       "temperature": v.params.get("temperature"), "created": v.created_at[:19],
                       "id": v.prompt_id} for v in found])
st.dataframe(table, hide_index=True, width="stretch")

by_title = {v.title: v for v in found}
left, right = st.columns(2)
chosen = by_title[left.selectbox("Version", list(by_title), index=len(by_title) - 1, key="prompts_version")]
others = ["its parent"] + [t for t in by_title if t != chosen.title]
against = right.selectbox("Diff against", others, key="prompts_against")
diff = chosen.diff if against == "its parent" else versions.diff_between(by_title[against], chosen)
st.markdown(f"**{literal_markdown(chosen.title)}** · changed: {literal_markdown(', '.join(chosen.changes)) or 'nothing'}")
st.code(diff or "(no difference)", language="diff")
with st.expander("The whole version"):
    st.code(chosen.template, language=None)
    if chosen.system_prompt:
        st.caption("System prompt")
        st.code(chosen.system_prompt, language=None)
    st.json({"variables": chosen.variables, "parameters": chosen.params})

with st.form("prompts_name_form"):
    label = st.text_input("Name this version", chosen.label or "", key="prompts_label",
                          help="A short name such as 'shorter-system-prompt'; leave empty to clear it.")
    if st.form_submit_button("Save name"):
        renamed = call_ui(versions.name_version, store, chosen.prompt_id, label)
        if renamed is not None:
            st.toast(f"Saved: {literal_markdown(renamed.title)}")
            st.rerun()

st.subheader("Metrics across versions")
intrinsic_note()
with stop_on_error():
    trends = load_trends(store.path, store.data_version(), name)
if trends.empty:
    st.info("No version of this prompt has a run yet: generate with it to see its metrics.")
    st.stop()
shown = st.multiselect("Metrics", list(METRIC_NAMES), [m for m in versions.TREND_METRICS[:4]],
                       key="prompts_metrics")
chart, errors = versions.trend_chart_frame(trends, shown)
if shown:
    figure = plots.trend_figure(chart, shown)
    for trace, metric in zip(figure.data, [m for m in shown if m in chart]):
        if metric in errors:  # the common-size interval as error bars
            up, down = errors[metric]
            trace.update(error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down})
    st.plotly_chart(figure, key="prompts_trends", width="stretch")
small = trends[trends["comparable"] != ""]
common_n = trends["common_n"].dropna()
st.caption("Metrics that depend on the number of items (distinct-n, self-BLEU, vendi, near-duplicates, cluster "
           "entropy…) are plotted at a common size"
           + (f" of {int(common_n.iloc[0])} items" if len(common_n) else "")
           + ": the mean over random subsamples of each version's largest run, with its 95 % interval as error "
           "bars. The others are the mean over the version's runs. Hover to see what changed.")
if len(small):
    st.warning("Too small to compare (under " + str(settings.get("compare_min_items")) + " items), so left out of "
               "the size-dependent points: " + ", ".join(f"{literal_markdown(r.title)} ({r.n_items} items)"
                                                         for r in small.itertuples()))
st.dataframe(trends.drop(columns=["prompt_id"]), hide_index=True, width="stretch")
