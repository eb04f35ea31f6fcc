"""Helpers shared by the pages: the cached store, start-up, and the intrinsic-evaluation note."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.workflows.demo import ensure_demo
from synth.analysis.metrics import measure_in_background
from synth.workflows.pipeline import open_store
from synth.analysis.projection import defer_background, release_background, start_warmup
from synth.store import DuckStore

INTRINSIC_NOTE = ("**Intrinsic evaluation.** Synth Studio looks at the data itself (diversity, "
                  "near-duplicates, length, cost). It does not train a model on the data, so it "
                  "cannot tell how much a model would gain from it.")


_RUN = threading.local()


@contextmanager
def app_run():
    """Marks a script run that went through app.py (its navigation and start-up); when the page is
    drawn, starts the background work held back for it (see ``after_page``)."""
    _RUN.active = True
    try:
        yield
    finally:
        _RUN.active = False
        after_page()  # also when the page stopped early (st.stop) or failed


def require_app() -> None:
    """Run this page through the app's own navigation when Streamlit ran the file alone.

    Streamlit runs a page file on its own when a fresh server's first URL is that page (a
    bookmark of /generate, say), and on every AppTest switch_page: its pages/-folder heuristic then
    shows a menu of every file in pages/ and skips app.py. Here the app declares its navigation
    (which turns the heuristic off for good), runs the requested page as app.py would, and stops
    the outer run. The page then has the same widget ids as in every later run.
    """
    if getattr(_RUN, "active", False):
        return
    configure_page()
    page = navigation()
    with app_run():
        startup_ui()
        page.run()
    st.stop()


def configure_page() -> None:
    st.set_page_config(page_title="Synth Studio", page_icon=":material/science:", layout="wide")


PRESENT_PARAM = "present"
PRESENTATION_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stToolbar"] { display: none !important; }
.block-container { padding-top: 1.5rem; max-width: 1500px; }
html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] { font-size: 22px; }
h1 { font-size: 3rem !important; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * { font-size: 3rem !important; }
[data-testid="stMetricLabel"] p { font-size: 1.1rem; }
[data-testid="stText"] { font-family: inherit; font-size: 20px; white-space: pre-wrap; }
</style>"""


def presenting() -> bool:
    """Presentation mode (``?present=1``): a clean layout with large type and no settings."""
    return st.query_params.get(PRESENT_PARAM) == "1"


def navigation():
    """The app's navigation; hidden in presentation mode, like every other setting."""
    return st.navigation(app_pages(), position="hidden" if presenting() else "sidebar")


def presentation_ui() -> bool:
    """Apply presentation mode's style if it is on, with a way out; else offer a way in."""
    if presenting():
        st.html(PRESENTATION_CSS)
        return True
    if st.sidebar.button("Presentation mode", key="common_present", icon=":material/slideshow:",
                         help="A clean view for stakeholders: the map, the headline metrics and examples "
                              "in large type, with every setting hidden."):
        st.query_params[PRESENT_PARAM] = "1"
        st.rerun()
    return False


def leave_presentation_ui() -> None:
    if st.button("Leave presentation mode", key="common_unpresent", type="tertiary"):
        del st.query_params[PRESENT_PARAM]
        st.rerun()


def licence_ui(model: str | None, api_base: str | None = None, container=None) -> None:
    """The chosen model's licence note: what its terms say about training on its outputs."""
    from synth.llm.licences import FORBIDDEN, UNKNOWN, note_for

    note = note_for(model, api_base)
    target = container or st
    text = f"**Output licence: {note.training_use}.** {note.licence}: {note.summary}"
    text += f" [Source]({note.source})" if note.source else ""
    if note.training_use == FORBIDDEN:
        target.warning(text, icon=":material/gavel:")
    elif note.training_use == UNKNOWN:
        target.info(text, icon=":material/help:")
    else:
        target.caption(text)


def current_filters():
    """The filters in force (from this session, else from the URL), without drawing the panel."""
    from synth.analysis.filters import FilterSpec

    if "filters_spec" not in st.session_state:
        st.session_state["filters_spec"] = FilterSpec.from_query(
            {k: v for k, v in st.query_params.to_dict().items() if k != PRESENT_PARAM})
    return st.session_state["filters_spec"]


def app_pages() -> list:
    """The app's pages, in menu order; the first is the landing page."""
    return [
        st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True,
                url_path="explore"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:", url_path="review"),
        st.Page("pages/prompts.py", title="Prompt versions", icon=":material/history:", url_path="prompts"),
        st.Page("pages/compare.py", title="Compare A/B", icon=":material/compare:", url_path="compare"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:", url_path="metrics"),
        st.Page("pages/duplicates.py", title="Near-duplicates", icon=":material/content_copy:",
                url_path="duplicates"),
        st.Page("pages/export.py", title="Export", icon=":material/download:", url_path="export"),
        st.Page("pages/sql.py", title="SQL console", icon=":material/database:", url_path="sql"),
    ]


@st.cache_resource(show_spinner=False)
def _store(db_path: str) -> DuckStore:
    return open_store(db_path)


def get_store() -> DuckStore:
    """The database named by SYNTH_DB (or the default under data/)."""
    return _store(settings.get("db_path"))


@st.cache_resource(show_spinner="Loading the demo dataset (first start only)…")
def _startup(db_path: str) -> list[str]:
    defer_background()  # no numba compile until the first page is drawn
    start_warmup()
    return ensure_demo(_store(db_path), measure=False)  # per-run metrics: after the first page


@st.cache_resource(show_spinner=False)
def _after_first_page(db_path: str) -> bool:
    release_background()  # UMAP's warm-up compile and any background layout fit
    measure_in_background(_store(db_path))  # the per-run metrics table, for SQL and the CLI
    return True


def after_page() -> None:
    """Background work that must not delay the first screen, started once it is drawn."""
    _after_first_page(settings.get("db_path"))


def startup_ui() -> None:
    """Open the database, load the demo data into an empty one, and warm UMAP up in the background."""
    try:
        _startup(settings.get("db_path"))
    except SynthError as exc:
        st.error(str(exc))
        st.stop()


def intrinsic_note() -> None:
    st.caption(INTRINSIC_NOTE)


def filters_ui(dataset) -> "FilterSpec":
    """The filter panel shared by Explore, Metrics and Export.

    Its state lives in the URL (st.query_params), so a filtered view can be shared as a link,
    and in the session, so it follows the user from page to page."""
    from synth.analysis.filters import FilterSpec

    spec: FilterSpec = current_filters()
    items = dataset.items
    side = st.sidebar
    side.subheader("Filters")
    dedup_on = side.checkbox("Drop near-duplicates", value=spec.dedup_threshold is not None,
                             key="filters_dedup_on", help="Diversity first: keep one item per group "
                             "of near-duplicates (the reviewed, best judged, oldest one).")
    dedup = side.slider("Cosine similarity counted as duplicate", 0.70, 1.00,
                        spec.dedup_threshold or float(settings.get("near_dup_threshold")), 0.01,
                        key="filters_dedup", disabled=not dedup_on)
    longest = int(items["text"].str.count(r"\w+").max()) if len(items) else 1
    low, high = side.slider("Length (words)", 0, max(longest, 1),
                            (spec.min_words or 0, min(spec.max_words or longest, max(longest, 1))),
                            key="filters_length")
    include = side.text_input("Keep only texts matching (regex)", spec.include, key="filters_include")
    exclude = side.text_input("Drop texts matching (regex)", spec.exclude, key="filters_exclude")
    judge = side.slider("Minimum judge score (0: off)", 0.0, 5.0, spec.min_judge_score or 0.0, 0.5,
                        key="filters_judge")
    statuses = side.multiselect("Status", sorted(items["status"].unique()) if len(items) else [],
                                [s for s in spec.statuses if s in set(items["status"])], key="filters_status")
    names = dict(zip(dataset.clustering.names.keys(), dataset.clustering.names.values()))
    clusters = side.multiselect("Clusters", sorted(names), [c for c in spec.clusters if c in names],
                                format_func=lambda c: names.get(c, str(c)), key="filters_clusters")
    runs = dict(zip(items["run_id"], items["run_name"]))
    chosen_runs = side.multiselect("Runs", list(runs), [r for r in spec.runs if r in runs],
                                   format_func=runs.get, key="filters_runs")
    versions = sorted(items["prompt_label"].unique()) if len(items) else []
    chosen_versions = side.multiselect("Prompt versions", versions,
                                       [v for v in spec.prompt_versions if v in versions], key="filters_versions")
    new = FilterSpec(dedup_threshold=float(dedup) if dedup_on else None,
                     min_words=low or None, max_words=high if high < longest else None,
                     include=include.strip(), exclude=exclude.strip(), min_judge_score=judge or None,
                     statuses=statuses, clusters=[int(c) for c in clusters], runs=chosen_runs,
                     prompt_versions=chosen_versions)
    st.session_state["filters_spec"] = new
    if new.to_query() != {k: v for k, v in st.query_params.to_dict().items()}:
        st.query_params.from_dict(new.to_query())
    if side.button("Clear filters", key="filters_clear"):
        st.session_state["filters_spec"] = FilterSpec()
        for key in [k for k in st.session_state if k.startswith("filters_") and k != "filters_spec"]:
            del st.session_state[key]
        st.query_params.clear()
        st.rerun()
    return new


@st.cache_resource(max_entries=4, show_spinner="Loading items, embeddings and clusters…")
def _dataset(db_path: str, data_version: tuple, clustering: tuple = ()):
    from synth.workflows.pipeline import load_dataset

    return load_dataset(_store(db_path), **dict(clustering))


def clustering_choice() -> tuple:
    """The clustering chosen on the Explore page (method, k, min_cluster_size), for every page."""
    return tuple(sorted(st.session_state.get("map_clustering", {}).items()))


def dataset_ui():
    """The whole dataset, loaded once per state of the database (shared by the pages)."""
    store = get_store()
    try:
        return _dataset(store.path, store.data_version(), clustering_choice())
    except SynthError as exc:
        st.error(str(exc))
        st.stop()


@st.cache_resource(max_entries=8, show_spinner="Measuring the whole dataset…")
def _before(db_path: str, data_version: tuple, threshold: float, clustering: tuple = ()):
    from synth.analysis.metrics import measure_items

    dataset = _dataset(db_path, data_version, clustering)
    return measure_items(_store(db_path), dataset.items, threshold, dataset.clustering)


@st.cache_resource(max_entries=16, show_spinner="Applying the filters…")
def _filtered(db_path: str, data_version: tuple, spec_key: tuple, clustering: tuple = ()):
    from synth.analysis.filters import FilterSpec, apply_filters

    dataset = _dataset(db_path, data_version, clustering)
    return apply_filters(dataset.items, dataset.vectors, FilterSpec.from_query(dict(spec_key)))


@st.cache_resource(max_entries=16, show_spinner="Measuring the filtered items…")
def _view(db_path: str, data_version: tuple, spec_key: tuple, threshold: float, clustering: tuple = ()):
    from synth.analysis.filters import FilterSpec
    from synth.workflows.pipeline import filtered_view

    spec = FilterSpec.from_query(dict(spec_key))
    return filtered_view(_store(db_path), spec, threshold, _dataset(db_path, data_version, clustering),
                         _before(db_path, data_version, threshold, clustering),
                         _filtered(db_path, data_version, spec_key, clustering))


def filtered_ui(spec):
    """What the filters keep and drop, without measuring it (cheap: for drawing the map first)."""
    store = get_store()
    try:
        return _filtered(store.path, store.data_version(), tuple(sorted(spec.to_query().items())),
                         clustering_choice())
    except SynthError as exc:
        st.error(str(exc))
        st.stop()


def view_ui(spec, threshold: float | None = None):
    """The filtered view and its metrics before -> after (cached per database state and filter)."""
    store = get_store()
    threshold = float(settings.get("near_dup_threshold")) if threshold is None else threshold
    try:
        return _view(store.path, store.data_version(), tuple(sorted(spec.to_query().items())), threshold,
                     clustering_choice())
    except SynthError as exc:
        st.error(str(exc))
        st.stop()


def sampled_notes(params: dict) -> list[str]:
    """One line per metric that was estimated on a sample, saying how."""
    notes = []
    for name, p in params.items():
        if isinstance(p, dict) and p.get("sampled"):
            how = p.get("how") or (f"{p.get('hypotheses')} of {p.get('population')} items sampled "
                                   f"(seed {p.get('seed')})")
            notes.append(f"{name}: estimated, {how}")
        if isinstance(p, dict) and p.get("candidate_selection") == "tf-idf cosine top-k":
            notes.append(f"{name}: each item compared with its {p.get('candidates')} most similar items "
                         "by TF-IDF")
    return notes


def dropped_ui(result) -> None:
    """What the filters drop (a ``FilterResult``), and why (shown on every page that filters)."""
    dropped = result.dropped
    with st.expander(f"What the filters drop ({len(dropped)} items)"):
        if dropped.empty:
            st.caption("Nothing: no filter is set, or every item passes.")
        else:
            st.dataframe(dropped[["text", "reason", "run_name", "status", "duplicate_of", "item_id"]],
                         hide_index=True, width="stretch")
