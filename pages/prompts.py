"""Prompt versions: what changed from version to version, names, and metrics across versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import call_ui, intrinsic_note, stop_on_error
from synth.analysis.metrics import METRIC_NAMES, metric_label
from synth.kernel import settings
from synth.kernel.text import literal_markdown
from synth.outputs import plots
from synth.workflows import versions

require_app()

PARENT = "its parent"  # the "Compare with" choice of the version a version was edited from


@st.cache_data(max_entries=8, show_spinner="Measuring every version's runs…")
def load_trends(db_path: str, data_version: tuple, name: str):
    return versions.version_trends(get_store(), name)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


st.title("Prompt versions")
st.caption("Every change of template, system prompt, variables or parameters is saved as a new version "
           "with what changed from the version it was edited from. Name the versions worth keeping; compare "
           "two of them on the Compare A/B page.")
store = get_store()
counts = versions.version_counts(store)
if not counts:
    st.info("No prompt versions yet. Generate a batch (or save a version) on the Generate page.")
    st.stop()
names = list(counts)
name = st.selectbox("Prompt", names, index=names.index(versions.most_versioned(store)),
                    format_func=lambda n: f"{n} ({plural(counts[n], 'version')})", key="prompts_name")
found = versions.list_versions(store, name)
st.dataframe(versions.version_table(store, name), hide_index=True, width="stretch")

by_title = {v.title: v for v in found}
by_id = {v.prompt_id: v for v in found}
left, right = st.columns(2)
chosen = by_title[left.selectbox("Version", list(by_title), index=len(by_title) - 1, key="prompts_version")]
parent = by_id.get(chosen.parent_id or "")
options = ([PARENT] if parent else []) + [t for t in by_title if t != chosen.title]
base = None
if options:
    against = right.selectbox("Compare with", options, key="prompts_against",
                              format_func=lambda t: f"its parent, {parent.title}" if t == PARENT else t)
    base = parent if against == PARENT else by_title[against]
else:
    right.caption("This is the only version of the prompt: there is nothing to compare it with.")

if base is None:
    st.markdown(f"**{literal_markdown(chosen.title)}** is the first version of "
                f"{literal_markdown(chosen.name)}: nothing earlier to compare it with.")
else:
    words = chosen.summary if base is parent else versions.changes_between(base, chosen)
    st.markdown(f"**{literal_markdown(chosen.title)}** compared with {literal_markdown(base.title)}:"
                + ("".join(f"\n- {literal_markdown(w)}" for w in words) if words else " no difference."))
    note = versions.compared_note(base, chosen)
    if note:
        st.caption(literal_markdown(note))
    with st.expander("Line by line"):
        st.code(versions.readable_diff(base, chosen) or "(no difference)", language="diff", wrap_lines=True)
with st.expander("The whole version"):
    st.caption("Template")
    st.code(chosen.template, language=None, wrap_lines=True)
    st.caption("System prompt")
    st.code(chosen.system_prompt or "(none)", language=None, wrap_lines=True)
    if chosen.variables:
        st.dataframe(pd.DataFrame([{"variable": f"{{{k}}}", "values": ", ".join(map(str, v))}
                                   for k, v in chosen.variables.items()]), hide_index=True, width="stretch")
    if chosen.params:
        st.dataframe(versions.version_settings(chosen), hide_index=True, width="stretch")
    else:
        st.caption("This version recorded no parameters (it came from the demo data or an import); the table "
                   "above shows the model and temperature its runs used.")

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
shown = st.multiselect("Metrics", list(METRIC_NAMES), list(versions.TREND_METRICS[:4]), format_func=metric_label,
                       key="prompts_metrics")
if len(trends) < 2:
    st.info(f"Only {literal_markdown(trends['title'].iloc[0])} has runs, so there is no trend to draw yet. "
            "Edit the prompt on the Generate page and run the new version to see how the metrics move.")
elif shown:
    chart, errors = versions.trend_chart_frame(trends, shown)
    labels = {m: metric_label(m) for m in shown}
    figure = plots.trend_figure(chart.rename(columns=labels), [labels[m] for m in shown])
    for trace, metric in zip(figure.data, [m for m in shown if m in chart]):
        if metric in errors:  # the common-size interval as error bars
            up, down = errors[metric]
            trace.update(error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down})
    st.plotly_chart(figure, key="prompts_trends", width="stretch")
small = trends[trends["comparable"] != ""]
common_n = trends["common_n"].dropna()
st.caption("Metrics that depend on the number of items (word variety, phrasing reuse, distinct items, "
           "near-duplicates, cluster entropy…) are shown at a common size"
           + (f" of {int(common_n.iloc[0])} items" if len(common_n) else "")
           + ": the mean over random subsamples of each version's largest run, with its 95 % interval. "
           "The others are the mean over the version's runs."
           + (" Hover a point to see what changed." if len(trends) > 1 and shown else ""))
if len(small):
    st.warning("Too small to compare (under " + str(settings.get("compare_min_items")) + " items), so left out of "
               "the size-dependent points: " + ", ".join(f"{literal_markdown(r.title)} ({r.n_items} items)"
                                                         for r in small.itertuples()))
st.dataframe(versions.trend_table(trends, shown or list(versions.TREND_METRICS[:4])), hide_index=True,
             width="stretch")
