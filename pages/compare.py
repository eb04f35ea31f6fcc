"""Compare A/B: two runs or two prompt versions, metric by metric, on one map, item by item."""

from __future__ import annotations

import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import (
    intrinsic_note,
    licence_ui,
    run_with_progress_ui,
    stop_on_error,
)
from synth.analysis.comparable import Interval, interval_text
from synth.kernel import settings
from synth.kernel.text import format_number, literal_markdown
from synth.outputs import plots
from synth.workflows.compare import compare_refs, resolve_side, side_model
from synth.workflows.versions import list_versions

require_app()

VERDICT_COLOURS = {"better": "color: #1a7f37; font-weight: 600", "worse": "color: #cf222e; font-weight: 600"}


@st.cache_data(max_entries=8, show_spinner="Comparing…")
def compare_cached(db_path: str, data_version: tuple, a: str, b: str):
    return compare_refs(get_store(), a, b)


def choices_ui(store) -> dict[str, str]:
    """Every run and every prompt version, by id, with a readable name."""
    runs = store.runs()
    options = {r.run_id: f"run · {r.name} ({r.n_items} items)" for r in runs.itertuples()}
    options.update({v.prompt_id: f"version · {v.title}" + ("" if v.n_runs else " (never run)")
                    for v in list_versions(store)})
    return options


def show(result) -> None:
    p = result.pairing
    for side, letter in ((result.a, "A"), (result.b, "B")):
        st.markdown(f"**{literal_markdown(side['label'])}** · run `{side['run_id']}` · {side['n_items']} items · {literal_markdown(side['model'])}")
    if p["paired"]:
        st.success(f"Paired: the same n ({p['n']}), the same seed and the same variable values for every item.")
    else:
        yes = {True: "yes", False: "no"}
        st.warning(f"Not a controlled pair: same n {yes[p['same_n']]}, same seed {yes[p['same_seed']]}, the "
                   f"same variable values for {p['same_samples']} of {p['n']} items. Differences may come from "
                   "the draw, not the prompt: compare two versions to run them on the same samples.")
    if result.made:
        st.caption(f"Runs made for this comparison: {literal_markdown(', '.join(result.made))}")
    st.subheader("Metrics, B against A")
    table = result.metrics.rename(columns={"a": "A", "b": "B", "delta": "B − A"})
    st.dataframe(table.style.map(lambda v: VERDICT_COLOURS.get(v, ""), subset=["change"])
                 .format({"A": lambda v: format_number(v, missing="—"), "B": lambda v: format_number(v, missing="—"),
                          "B − A": lambda v: format_number(v, missing="—", signed=True)}),
                 hide_index=True, width="stretch", height=36 * (len(table) + 1))
    if result.pair_clustering:
        st.caption("cluster_entropy is measured over the clusters of every item in the database, so it moves "
                   "when other runs are added; cluster_entropy_pair is each side's entropy "
                   f"{literal_markdown(result.pair_clustering['label'])}.")
    common_size_ui(result)
    if result.points is not None and len(result.points):
        st.subheader("Both on one map")
        st.plotly_chart(plots.map_figure(result.points, "side"), key="compare_map", width="stretch")
    st.subheader("Cluster shares, A → B")
    st.plotly_chart(plots.share_difference_figure(result.clusters), key="compare_clusters", width="stretch")
    st.dataframe(result.clusters, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("share_a", "share_b", "difference")})
    st.subheader("Items side by side")
    samples = result.samples.assign(variables=result.samples["variables"].map(
        lambda v: ", ".join(f"{k}={x}" for k, x in sorted(v.items())) if isinstance(v, dict) else ""))
    st.dataframe(samples.rename(columns={"text_a": "A", "text_b": "B"}), hide_index=True, width="stretch")


def common_size_ui(result) -> None:
    """The size-dependent metrics at a common size, with intervals; or why they are not compared."""
    info = result.common_n
    if info.get("too_small"):
        st.warning(f"{' and '.join(info['too_small'])} {'is' if len(info['too_small']) == 1 else 'are'} too small "
                   f"to compare (under {info['min_items']} items): the metrics that depend on the number of items "
                   "(distinct-n, self-BLEU, vendi, near-duplicates, cluster entropy…) are not called better or worse. "
                   "Generate more items to compare them.")
        return
    st.caption(f"Metrics that depend on the number of items, at a common size of {info['m']} items: the mean over "
               f"random subsamples of each run, and the 95 % interval. Better or worse only when the intervals do "
               "not overlap; the change above for these metrics comes from here.")
    rows = result.common.assign(
        A=[interval_text(Interval(*v, info["m"], 0)) for v in zip(result.common["a"], result.common["a_low"],
                                                                   result.common["a_high"])],
        B=[interval_text(Interval(*v, info["m"], 0)) for v in zip(result.common["b"], result.common["b_low"],
                                                                   result.common["b_high"])])
    st.dataframe(rows[["metric", "A", "B", "change"]].style.map(lambda v: VERDICT_COLOURS.get(v, ""),
                                                                 subset=["change"]),
                 hide_index=True, width="stretch")


st.title("Compare A/B")
intrinsic_note()
store = get_store()
options = choices_ui(store)
if len(options) < 2:
    st.info("Comparing needs two runs or two prompt versions. Generate a batch on the Generate page, "
            "change the prompt, and generate again.")
    st.stop()
ids = list(options)
run_count = sum(key.startswith("run_") for key in ids)  # runs come first: by default, the two newest runs
first, second = (run_count - 2, run_count - 1) if run_count >= 2 else (0, 1)
left, right = st.columns(2)
a = left.selectbox("A", ids, index=first, format_func=options.get, key="compare_a")
b = right.selectbox("B", ids, index=second, format_func=options.get, key="compare_b")
with stop_on_error():
    sides = [resolve_side(store, a), resolve_side(store, b)]
for column, side in zip((left, right), sides):  # what each side's model allows, before anything runs
    licence_ui(*side_model(store, side), column)

if a == b:
    st.info("Choose two different runs or versions.")
    st.stop()
if all(s.kind == "run" for s in sides):
    with stop_on_error():
        show(compare_cached(store.path, store.data_version(), a, b))
    st.stop()

st.caption("A version that must run for the comparison runs on the other side's samples, seed and n, "
           "and a paired run made earlier is reused: both sides then differ only by the prompt.")
fresh = st.checkbox("Run both versions again, with this n and seed", key="compare_fresh")
n_col, seed_col = st.columns(2)
n = n_col.number_input("Items per version", 1, 1000, settings.DEFAULT_COMPARE_N, key="compare_n", disabled=not fresh,
                       help="Without a fresh run, A's newest run sets n (or this, if A has never run).")
seed = seed_col.number_input("Seed", 0, 2**31 - 1, settings.DEFAULT_SEED, key="compare_seed", disabled=not fresh)
if st.button("Run and compare", type="primary", key="compare_run"):
    result = run_with_progress_ui("Running the versions…", compare_refs, store, a, b,
                                  n=int(n) if fresh else None, seed=int(seed) if fresh else None, fresh=fresh,
                                  clear=True)
    if result is not None:
        st.session_state["compare_result"] = (a, b, result)
kept = st.session_state.get("compare_result")
if kept and kept[:2] == (a, b):
    show(kept[2])
