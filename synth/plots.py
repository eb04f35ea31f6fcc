"""Plot builders: data in, plotly figures out. Nothing here calls streamlit.

Generated text reaches the figure only HTML-escaped: plotly renders a subset of HTML in hover
labels, and a model's output must never become markup.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any, Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go

HOVER_WIDTH = 60
HOVER_CHARS = 400
# Past this many points the map is drawn with WebGL.
WEBGL_FROM = 5000

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2",
           "#FF9DA6", "#9D755D", "#BAB0AC"]

COLOR_CHOICES = {"run": "run_name", "prompt version": "prompt_label", "cluster": "cluster_name",
                 "model": "model", "status": "status", "technique": "technique"}
DROPPED_COLOR = "#D0D0D0"


def hover_text(text: str) -> str:
    """Escape, shorten and wrap an item's text for a hover label."""
    short = text if len(text) <= HOVER_CHARS else text[:HOVER_CHARS] + "…"
    lines = textwrap.wrap(short, HOVER_WIDTH) or [""]
    return "<br>".join(html.escape(line) for line in lines)


def _hover(group: pd.DataFrame) -> list[str]:
    return [f"{hover_text(t)}<br><br><i>{html.escape(str(r))} · {html.escape(str(p))}</i>"
            for t, r, p in zip(group["text"], group["run_name"], group["prompt_label"])]


def map_figure(points: pd.DataFrame, color_by: str = "run", title: str = "",
               dropped: pd.DataFrame | None = None) -> go.Figure:
    """A scatter of items at (x, y), one trace per colour group, item id in ``customdata``;
    ``dropped`` items (filtered out) are drawn underneath in grey.

    ``points`` needs columns item_id, x, y, text, run_name, prompt_label and the colour column.
    """
    column = COLOR_CHOICES.get(color_by, color_by)
    total = len(points) + (0 if dropped is None else len(dropped))
    scatter = go.Scattergl if total >= WEBGL_FROM else go.Scatter
    fig = go.Figure()
    if dropped is not None and len(dropped):
        fig.add_trace(scatter(
            x=dropped["x"], y=dropped["y"], mode="markers", name="filtered out",
            customdata=dropped[["item_id"]].to_numpy(), hovertext=_hover(dropped),
            hovertemplate="%{hovertext}<extra>filtered out</extra>",
            marker={"size": 6, "opacity": 0.5, "color": DROPPED_COLOR}))
    groups = points[column].fillna("(none)").astype(str) if len(points) else pd.Series(dtype=str)
    for i, (label, group) in enumerate(points.groupby(groups, sort=True)):
        fig.add_trace(scatter(
            x=group["x"], y=group["y"], mode="markers", name=html.escape(str(label)),
            customdata=group[["item_id"]].to_numpy(), hovertext=_hover(group),
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"size": 7, "opacity": 0.8, "color": PALETTE[i % len(PALETTE)]},
        ))
    fig.update_layout(
        title=title or None, height=620, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"title": {"text": color_by}}, dragmode="lasso", hoverlabel={"align": "left"},
        xaxis={"showticklabels": False, "title": None, "zeroline": False},
        yaxis={"showticklabels": False, "title": None, "zeroline": False},
        plot_bgcolor="white",
    )
    return fig


def selected_item_ids(selection: Mapping[str, Any] | None) -> list[str]:
    """Item ids of the points in a Streamlit plotly selection, in selection order.

    Reads the id each point carries in ``customdata``: point indices count within one trace,
    so they cannot identify a row when there is one trace per colour.
    """
    if not selection:
        return []
    inner = selection.get("selection", selection)
    points: Iterable = inner.get("points", []) if isinstance(inner, Mapping) else []
    ids: list[str] = []
    for point in points:
        custom = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(custom, (list, tuple)):
            custom = custom[0] if custom else None
        if custom is not None and str(custom) not in ids:
            ids.append(str(custom))
    return ids
