"""The large map's view: the map's plotly figure drawn by a small component that keeps its plot from
one run of the page to the next and updates it in place (``static/mapview.html``).

Why: Streamlit 1.67 gives a ``st.plotly_chart`` with ``on_select`` an element id made from its
figure, so every filter change remounts it as a new plot, with a new WebGL context. Measured at
50,000 points in headless chromium, that and the page's work around it made a redraw 2.8x a plain
plotly chart's; drawn in place it is the plain chart's or better (``bench/bench_explore.py``).
Past ``map_view_points`` points the Explore map is drawn here; smaller maps keep ``st.plotly_chart``.
The selection comes back in ``st.plotly_chart``'s shape, so ``plots.selected_item_ids`` reads both.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit.components.v1 as components

from synth.kernel import settings

PAGE = Path(__file__).resolve().parent / "static" / "mapview.html"


def component_dir() -> Path:
    """A new folder, private to this process (mode 0700), holding the component's page and the
    plotly.js of the installed plotly (the library the rest of the app draws with): Streamlit
    serves a component's files from one folder, and the repository does not carry a copy of
    plotly.js. Not a shared folder found again by name: what it serves runs in the app's pages,
    so no other user of the machine may put a file there. Removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="synth-mapview-"))
    (folder / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    (folder / "index.html").write_bytes(PAGE.read_bytes())
    atexit.register(shutil.rmtree, folder, True)
    return folder


FOLDER = component_dir()
_component = components.declare_component("mapview", path=str(FOLDER))


def use_map_view(n_points: int) -> bool:
    """Whether a map of ``n_points`` points is drawn by the component."""
    return n_points > int(settings.get("map_view_points"))


def map_view(fig: go.Figure, key: str) -> dict | None:
    """Draw ``fig`` and return the map's selection (None before any), as ``st.plotly_chart``'s
    event holds it: ``{"selection": {"points": [{"curve_number", "point_index", "customdata"}]}}``.
    A click selects one point, the toolbar's box and lasso select many, a double click clears."""
    return _component(figure=fig.to_json(), key=key, default=None)
