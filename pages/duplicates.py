"""Near-duplicates: pairs above a similarity threshold, side by side, with keep and drop buttons."""

from __future__ import annotations

import streamlit as st

from pages.data import dataset_ui, get_store
from pages.shell import require_app
from pages.widgets import THRESHOLD_HELP, THRESHOLD_KEY, THRESHOLD_MIN, error_text, near_dup_threshold
from synth.analysis.filters import near_duplicate_pairs
from synth.workflows import review

require_app()
PAGE_SIZE = 20


@st.cache_data(max_entries=8, show_spinner="Finding near-duplicate pairs…")
def load_pairs(db_path: str, data_version: tuple, threshold: float, _dataset):
    return near_duplicate_pairs(_dataset.items, _dataset.vectors, threshold, limit=2000)


def decide(keep: list[str], drop: list[str]) -> None:
    """Accept what is kept, reject what is dropped (statuses work in every filter and export).
    A button's callback runs before the page (outside app.py's catch): its error waits for the page."""
    try:
        if keep:
            review.set_status(get_store(), keep, "accepted")
        if drop:
            review.set_status(get_store(), drop, "rejected")
    except Exception as exc:
        st.session_state["duplicates_error"] = error_text(exc, "saving the decision")


def _share_threshold() -> None:
    """The slider here moves the app's one threshold (the filter panel's), not one of its own."""
    st.session_state[THRESHOLD_KEY] = st.session_state["duplicates_threshold"]


st.title("Near-duplicates")
st.caption("Pairs of items whose embeddings are at least this similar (cosine). Keep one and drop the "
           "other: the kept item is accepted, the dropped one rejected.")
threshold = st.slider("Near-duplicate threshold (cosine similarity)", THRESHOLD_MIN, 1.00, near_dup_threshold(), 0.01,
                      key="duplicates_threshold", help=THRESHOLD_HELP, on_change=_share_threshold)
hide_reviewed = st.checkbox("Hide pairs already decided", value=True, key="duplicates_hide_reviewed")
dataset = dataset_ui()
if dataset.items.empty:
    st.info("No items yet. Generate a batch on the Generate page first.")
    st.stop()
store = get_store()
pairs = load_pairs(store.path, store.data_version(metrics=False), threshold, dataset)
if hide_reviewed:
    decided = {"accepted", "rejected"}
    pairs = pairs[~(pairs["status_a"].isin(decided) & pairs["status_b"].isin(decided))]
if "duplicates_error" in st.session_state:
    st.error(st.session_state.pop("duplicates_error"))
st.write(f"{len(pairs)} pairs at or above {threshold:.2f}.")
if pairs.empty:
    st.stop()
page = st.number_input("Page", 1, max(1, (len(pairs) - 1) // PAGE_SIZE + 1), key="duplicates_page")
for row in pairs.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].itertuples():
    with st.container(border=True):
        st.caption(f"similarity {row.similarity:.3f}")
        left, right = st.columns(2)
        left.text(f"[{row.status_a}] {row.text_a}")
        right.text(f"[{row.status_b}] {row.text_b}")
        a, b, both = st.columns(3)
        a.button("Keep left, drop right", key=f"duplicates_keep_a_{row.item_a}_{row.item_b}",
                 on_click=decide, args=([row.item_a], [row.item_b]))
        b.button("Keep right, drop left", key=f"duplicates_keep_b_{row.item_a}_{row.item_b}",
                 on_click=decide, args=([row.item_b], [row.item_a]))
        both.button("Keep both", key=f"duplicates_keep_both_{row.item_a}_{row.item_b}",
                    on_click=decide, args=([row.item_a, row.item_b], []))
