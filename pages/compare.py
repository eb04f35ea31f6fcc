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
from synth.kernel import settings
from synth.kernel.text import literal_markdown
from synth.outputs import plots
from synth.outputs.comparison import (
    common_rows,
    items_caption,
    metric_rows,
    pairing_sentence,
    values_text,
)
from synth.workflows.compare import compare_refs, default_pair, resolve_side, side_model
from synth.workflows.versions import list_versions

require_app()

VERDICT_COLOURS = {"better": "color: #1a7f37; font-weight: 600", "worse": "color: #cf222e; font-weight: 600"}
# Rows taller than 4rem let the table wrap its text (Streamlit's rule), and the column widths below,
# stretched on wide screens, add up to the page width at 1024 px: no table scrolls sideways.
WRAP_ROW = 65


def metric_columns(value_width: int) -> dict:
    text = st.column_config.TextColumn
    return {"measure": text("Measure", width=124), "metric": text("Metric id", width=136,
                                                                  help="The name SQL and the CLI use."),
            "A": text("A", width=value_width), "B": text("B", width=value_width),
            "B − A": text("B − A", width=value_width), "change": text("Change", width=84)}


@st.cache_data(max_entries=8, show_spinner="Comparing…")
def compare_cached(db_path: str, data_version: tuple, a: str, b: str):
    return compare_refs(get_store(), a, b)


@st.cache_data(max_entries=8, show_spinner=False)
def default_pair_cached(db_path: str, data_version: tuple):
    return default_pair(get_store())


def choices_ui(store) -> dict[str, str]:
    """Every run and every prompt version, by id, with a readable name."""
    runs = store.runs()
    options = {r.run_id: f"run · {r.name if isinstance(r.name, str) and r.name else r.run_id} ({r.n_items} items)"
               for r in runs.itertuples()}
    options.update({v.prompt_id: f"version · {v.title}" + ("" if v.n_runs else " (never run)")
                    for v in list_versions(store)})
    return options


def show(result) -> None:
    for side in (result.a, result.b):
        model = literal_markdown(side["model"]) if side["model"] else "model not recorded"
        st.markdown(f"**{literal_markdown(side['label'])}** · run `{side['run_id']}` · {side['n_items']} items · {model}")
    (st.success if result.pairing["paired"] else st.warning)(literal_markdown(pairing_sentence(result)))
    if result.made:
        st.caption(f"Runs made for this comparison: {literal_markdown(', '.join(result.made))}")
    st.subheader("Metrics, B against A")
    table = metric_rows(result)
    st.dataframe(table.style.map(lambda v: VERDICT_COLOURS.get(v, ""), subset=["change"]),
                 hide_index=True, width="stretch", row_height=WRAP_ROW, height=WRAP_ROW * len(table) + 40,
                 column_config=metric_columns(66))
    st.caption("Shares are shown as percentages; — means the metric has no value for that run (no judged or "
               "structured items, say). A blank change: the metric has no better direction.")
    if result.pair_clustering:
        st.caption("Topic spread (cluster_entropy) is measured over the clusters of every item in the database, so "
                   "it moves when other runs are added; Topic spread, A and B alone (cluster_entropy_pair) is each "
                   f"side's entropy {literal_markdown(result.pair_clustering['label'])}.")
    common_size_ui(result)
    if result.points is not None and len(result.points):
        st.subheader("Both on one map")
        st.plotly_chart(plots.map_figure(result.points, "side"), key="compare_map", width="stretch")
    st.subheader("Cluster shares, A → B")
    if result.clusters.empty:
        st.info("No item of A or B is in a cluster yet: the clusters appear once the Explore map has been drawn.")
    else:
        st.plotly_chart(plots.share_difference_figure(result.clusters), key="compare_clusters", width="stretch")
        st.dataframe(result.clusters.fillna({"cluster_name": "—"}), hide_index=True, width="stretch",
                     column_config={"cluster": st.column_config.NumberColumn("Cluster"),
                                    "cluster_name": st.column_config.TextColumn("Name"),
                                    "share_a": st.column_config.NumberColumn("Share of A", format="percent"),
                                    "share_b": st.column_config.NumberColumn("Share of B", format="percent"),
                                    "difference": st.column_config.NumberColumn("B − A", format="percent")})
    items_ui(result)


def items_ui(result) -> None:
    """The first pairs of items, A beside B, as plain text that wraps within the page."""
    st.subheader("Items side by side")
    st.caption(literal_markdown(items_caption(result.items_paired)))
    heads = st.columns(2)
    for column, side in zip(heads, (result.a, result.b)):
        column.markdown(f"**{literal_markdown(side['label'])}**")
    for row in result.samples.itertuples():
        with st.container(border=True):
            shared = values_text(row.shared)
            st.caption(literal_markdown(shared) if shared else f"Item {row.idx + 1}")
            left, right = st.columns(2)
            for column, text, letter in ((left, row.text_a, "A"), (right, row.text_b, "B")):
                if isinstance(text, str):
                    column.text(text)
                else:
                    column.caption(f"{letter} has no item with these values." if shared or result.items_paired["by"]
                                   else f"{letter} has no item at this position.")


def common_size_ui(result) -> None:
    """The size-dependent metrics at a common size, with intervals; or why they are not compared."""
    info = result.common_n
    if info.get("too_small"):
        st.warning(f"{' and '.join(info['too_small'])} {'is' if len(info['too_small']) == 1 else 'are'} too small "
                   f"to compare (under {info['min_items']} items): the metrics that depend on the number of items "
                   "(word variety, phrasing reuse, distinct items, near-duplicates, topic spread…) are not called "
                   "better or worse. Generate more items to compare them.")
        return
    st.caption(f"Metrics that depend on the number of items, at a common size of {info['m']} items: the mean over "
               f"random subsamples of each run, and the 95 % interval. Better or worse only when the intervals do "
               "not overlap; the change above for these metrics comes from here.")
    rows = common_rows(result)
    st.dataframe(rows.style.map(lambda v: VERDICT_COLOURS.get(v, ""), subset=["change"]),
                 hide_index=True, width="stretch", row_height=WRAP_ROW, height=WRAP_ROW * len(rows) + 40,
                 column_config=metric_columns(104))


st.title("Compare A/B")
intrinsic_note()
store = get_store()
options = choices_ui(store)
if len(options) < 2:
    st.info("Comparing needs two runs or two prompt versions. Generate a batch on the Generate page, "
            "change the prompt, and generate again.")
    st.stop()
ids = list(options)
default = default_pair_cached(store.path, store.data_version())
first, second = (ids.index(default.a), ids.index(default.b)) if default else (0, 1)
left, right = st.columns(2)
a = left.selectbox("A", ids, index=first, format_func=options.get, key="compare_a")
b = right.selectbox("B", ids, index=second, format_func=options.get, key="compare_b")
if default and (a, b) == (default.a, default.b):
    st.caption(literal_markdown(default.reason))
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
