"""Helpers shared by the pages: the cached store, start-up, and the intrinsic-evaluation note."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from synth import settings
from synth.errors import SynthError
from synth.demo import ensure_demo
from synth.pipeline import open_store
from synth.projection import start_warmup
from synth.store import DuckStore

INTRINSIC_NOTE = ("**Intrinsic evaluation.** Synth Studio looks at the data itself (diversity, "
                  "near-duplicates, length, cost). It does not train a model on the data, so it "
                  "cannot tell how much a model would gain from it.")


_RUN = threading.local()


@contextmanager
def app_run():
    """Marks a script run that went through app.py (its navigation and start-up)."""
    _RUN.active = True
    try:
        yield
    finally:
        _RUN.active = False


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
    page = st.navigation(app_pages())
    with app_run():
        startup_ui()
        page.run()
    st.stop()


def configure_page() -> None:
    st.set_page_config(page_title="Synth Studio", page_icon=":material/science:", layout="wide")


def app_pages() -> list:
    """The app's pages, in menu order; the first is the landing page."""
    return [
        st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True,
                url_path="explore"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:", url_path="review"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:", url_path="metrics"),
    ]


@st.cache_resource(show_spinner=False)
def _store(db_path: str) -> DuckStore:
    return open_store(db_path)


def get_store() -> DuckStore:
    """The database named by SYNTH_DB (or the default under data/)."""
    return _store(settings.get("db_path"))


@st.cache_resource(show_spinner="Loading the demo dataset (first start only)…")
def _startup(db_path: str) -> list[str]:
    added = ensure_demo(_store(db_path))
    start_warmup()  # after the demo load, so the numba compile does not compete with it
    return added


def startup_ui() -> None:
    """Open the database, load the demo data into an empty one, and warm UMAP up in the background."""
    try:
        _startup(settings.get("db_path"))
    except SynthError as exc:
        st.error(str(exc))
        st.stop()


def intrinsic_note() -> None:
    st.caption(INTRINSIC_NOTE)
