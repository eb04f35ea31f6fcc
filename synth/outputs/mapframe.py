"""The map's frame: its size, its layout and the empty "loading" map. Light to import (plotly
only, no pandas): the Explore page sends the loading map before anything heavy is imported, so the
browser loads plotly.js while the server imports the rest and loads the data."""

from __future__ import annotations

import html
import sys
from typing import Any

import plotly.graph_objects as go

MAP_HEIGHT = 620


def plot_text(value: Any) -> str:
    """``value`` as literal plotly text: ``&``, ``<`` and ``>`` as entities, so no name or item
    becomes a tag (plotly draws <b>, <a href>, <br> in labels). Quotes stay as they are: plotly
    decodes only a few named entities and would show ``&quot;`` as it is."""
    return html.escape(str(value), quote=False)


def map_layout(fig: go.Figure, title: str = "", legend: str = "") -> go.Figure:
    """The map's size, margins, bare axes and white ground, on ``fig`` (returned)."""
    fig.update_layout(
        title=plot_text(title) if title else None, height=MAP_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}, legend={"title": {"text": plot_text(legend)}}, dragmode="lasso", hoverlabel={"align": "left"},
        xaxis={"showticklabels": False, "title": None, "zeroline": False},
        yaxis={"showticklabels": False, "title": None, "zeroline": False},
        plot_bgcolor="white",
    )
    return fig


def loading_figure() -> go.Figure:
    """An empty map of the same size, shown while the points are prepared.

    Built before this session imports pandas, maybe while another session's thread is importing
    it: plotly's validators use whatever ``sys.modules["pandas"]`` holds, and a half-imported pandas
    (no ``Series`` yet) makes them fail. So an import under way is waited for first (``import``
    blocks until the other thread's is done); one that starts while the figure is being built can
    still make plotly raise AttributeError, which the caller takes as "no loading map this time"."""
    if "pandas" in sys.modules:
        import pandas  # noqa: F401  (waits for another thread's import of it to finish)
    fig = go.Figure()
    fig.add_annotation(text="Loading the map…", showarrow=False, font={"size": 16, "color": "#888"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    return map_layout(fig)
