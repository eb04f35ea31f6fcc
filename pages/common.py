"""Helpers shared by the pages: the cached store, start-up, and the intrinsic-evaluation note."""

from __future__ import annotations

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
