"""Plot builders: data in, plotly figures out. Nothing here calls streamlit.

Generated text reaches the figure only HTML-escaped: plotly renders a subset of HTML in hover
labels, and a model's output must never become markup.
"""

from __future__ import annotations

import hashlib
import textwrap
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from synth.kernel.text import format_number
from synth.outputs.mapframe import MAP_HEIGHT, map_layout, plot_text

HOVER_WIDTH = 60
HOVER_CHARS = 400
# Past this many points a hover label carries the start of the text and the run only, and past
# HOVER_NONE_FROM none of the text travels with the points (click one to read it): the hover text
# is most of what a large map sends to the browser.
HOVER_SHORT_FROM = 5000
HOVER_SHORT_CHARS = 100
HOVER_NONE_FROM = 50_000
# Past this many points the map is drawn with WebGL.
WEBGL_FROM = 5000

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2",
           "#FF9DA6", "#9D755D", "#BAB0AC"]
# Run colours: 24 distinguishable hues, none of them grey (grey is for reference and dropped items).
RUN_PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6",
               "#9D755D", "#9ECAE9", "#FFBF79", "#88D27A", "#B79A20", "#439894", "#D67195", "#D6A5C9",
               "#D8B5A5", "#17BECF", "#1F3B73", "#8C2D04", "#006D2C", "#54278F", "#BCBD22", "#7B4173"]
# Other categories (clusters, models, ...): past 10 groups, a palette with a distinct colour for each.
WIDE_PALETTE = list(qualitative.Alphabet)
WIDEST_PALETTE = list(qualitative.Dark24) + list(qualitative.Light24)

COLOR_CHOICES = {"run": "run_name", "prompt version": "prompt_label", "cluster": "cluster_name",
                 "model": "model", "status": "status", "technique": "technique"}
# Numeric columns a map can be coloured or sized by (a colour scale instead of one trace each).
NUMERIC_CHOICES = {"judge score": "judge_score", "length (words)": "length_words", "valid": "valid_num",
                   "nearest-neighbour similarity": "nn_similarity", "tokens out": "tokens_out",
                   "cost (USD)": "cost_usd"}
SIZE_CHOICES = {"none": None, "length (words)": "length_words", "judge score": "judge_score"}
DROPPED_COLOR = "#D0D0D0"
REFERENCE_COLOR = "#7F7F7F"


def _slot(run_id: str) -> int:
    """A run's preferred place in RUN_PALETTE: a hash of its id, the same in every process."""
    digest = hashlib.blake2b(str(run_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % len(RUN_PALETTE)


def run_colours(run_ids: Iterable[str]) -> dict[str, str]:
    """run id -> colour, derived from the id: each run takes its hashed place in RUN_PALETTE, or the
    next one free if an earlier run in ``run_ids`` took it. Give ids oldest first (as the store
    lists items): a new run then never changes the colour of an existing one. Past 24 runs the
    palette is used again, a round of 24 at a time."""
    colours: dict[str, str] = {}
    taken: set[int] = set()
    for run_id in dict.fromkeys(str(r) for r in run_ids):
        if len(taken) == len(RUN_PALETTE):
            taken = set()
        slot = _slot(run_id)
        while slot in taken:
            slot = (slot + 1) % len(RUN_PALETTE)
        taken.add(slot)
        colours[run_id] = RUN_PALETTE[slot]
    return colours


def category_palette(n: int) -> list[str]:
    """Colours for ``n`` groups: the usual 10 up to 10 groups, then up to 26 and 48 distinct ones."""
    if n <= len(PALETTE):
        return PALETTE
    return WIDE_PALETTE if n <= len(WIDE_PALETTE) else WIDEST_PALETTE


def _group_colours(points: pd.DataFrame, column: str, groups: pd.Series, labels: list[str],
                   run_order: Iterable[str] | None) -> list[str]:
    """The colour of each group label: from the run id for runs, from a palette by position otherwise."""
    if column != "run_name":
        palette = category_palette(len(labels))
        return [palette[i % len(palette)] for i in range(len(labels))]
    ids = points["run_id"].astype(str) if "run_id" in points else groups
    colours = run_colours((list(run_order) if run_order is not None else []) + list(ids.unique()))
    pairs = pd.DataFrame({"label": groups.to_numpy(object), "id": ids.to_numpy(object)}).drop_duplicates("label")
    first = dict(zip(pairs["label"], pairs["id"]))  # each label's first run
    return [colours[first[label]] for label in labels]


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "…"


def hover_text(text: str) -> str:
    """Escape, shorten and wrap an item's text for a hover label."""
    short = _shorten(text, HOVER_CHARS)
    lines = textwrap.wrap(short, HOVER_WIDTH) or [""]
    return "<br>".join(plot_text(line) for line in lines)


def _hover(group: pd.DataFrame, total: int = 0) -> list[str] | None:
    """Text, run, prompt version, cluster and scores of each point, every part escaped; on a map of
    ``total`` points past HOVER_SHORT_FROM the start of the text and the run, past HOVER_NONE_FROM
    nothing (the trace's name is shown)."""
    if total >= HOVER_NONE_FROM:
        return None
    if total >= HOVER_SHORT_FROM:
        return [f"{plot_text(_shorten(str(t), HOVER_SHORT_CHARS))}<br><i>{plot_text(r)}</i>"
                for t, r in zip(group["text"].tolist(), group["run_name"].astype(str).tolist())]
    out = []
    for row in group.to_dict(orient="records"):
        meta = [str(row.get("run_name")), str(row.get("prompt_label"))]
        if row.get("cluster_name") is not None:
            meta.append(f"cluster: {row['cluster_name']}")
        for label, key in (("judge", "judge_score"), ("valid", "valid"), ("status", "status")):
            shown = format_number(row.get(key), digits=3, missing="") or None
            if shown is not None and shown != "<NA>":
                meta.append(f"{label}: {shown}")
        out.append(f"{hover_text(str(row.get('text', '')))}<br><br><i>{plot_text(' · '.join(meta))}</i>")
    return out


def _sizes(values: pd.Series) -> list[float] | float:
    v = pd.to_numeric(values, errors="coerce")
    if v.notna().sum() == 0 or v.max() == v.min():
        return 7
    scaled = 5 + 11 * (v - v.min()) / (v.max() - v.min())
    return scaled.fillna(5).tolist()


def _points_trace(scatter, frame: pd.DataFrame, total: int, name: str, extra: str = "", **kwargs):
    """One trace of ``frame``'s points: coordinates as float32 arrays (sent base64-encoded), the
    item id in ``customdata``, and a hover label as long as the map's size allows."""
    hover = _hover(frame, total)
    template = "%{hovertext}" if hover is not None else "%{fullData.name}<br>click to read the item"
    return scatter(x=frame["x"].to_numpy(np.float32), y=frame["y"].to_numpy(np.float32), mode="markers",
                   name=name, customdata=frame[["item_id"]].to_numpy(), hovertext=hover,
                   hovertemplate=f"{template}<extra>{extra}</extra>", **kwargs)


def _background(fig: go.Figure, scatter, frame: pd.DataFrame | None, name: str, color: str,
                symbol: str = "circle", total: int = 0) -> None:
    if frame is None or not len(frame):
        return
    fig.add_trace(_points_trace(scatter, frame, total, name, plot_text(name),
                                marker={"size": 6, "opacity": 0.55, "color": color, "symbol": symbol}))


def scatter_kind(total: int, svg: bool = False):
    """The trace type of a map of ``total`` points: WebGL from WEBGL_FROM on, unless ``svg``."""
    return go.Scattergl if total >= WEBGL_FROM and not svg else go.Scatter


def map_figure(points: pd.DataFrame, color_by: str = "run", title: str = "",
               dropped: pd.DataFrame | None = None, reference: pd.DataFrame | None = None,
               size_by: str = "none", svg: bool = False,
               run_order: Iterable[str] | None = None, hover_total: int | None = None) -> go.Figure:
    """A scatter of items at (x, y) with the item id in ``customdata``: one trace per colour
    group, or one trace on a colour scale for a numeric column. ``reference`` (real data) and
    ``dropped`` (filtered out) items are drawn underneath in grey. ``svg`` always draws SVG
    ``scatter`` (for pages that may have no WebGL, such as a standalone report). Runs are coloured
    by ``run_colours`` over ``run_order`` (every run id of the dataset, oldest first, so the colours
    do not depend on which runs are shown), then any other run in ``points`` in order of appearance.
    Hover labels are shortened, and WebGL chosen, by the size of the map, or of ``hover_total``
    when larger.

    ``points`` needs columns item_id, x, y, text, run_name, prompt_label and the colour column.
    """
    # The hover text's length and WebGL go by the whole dataset's size (``hover_total``), so that
    # a filter never makes the figure larger or slower than the unfiltered map (4,000 points of a
    # 10,000-point map drawn in SVG took the browser a second longer than in WebGL).
    total = max(len(points) + sum(0 if f is None else len(f) for f in (dropped, reference)), hover_total or 0)
    scatter = scatter_kind(total, svg)
    fig = go.Figure()
    _background(fig, scatter, dropped, "filtered out", DROPPED_COLOR, total=total)
    _background(fig, scatter, reference, "reference (real)", REFERENCE_COLOR, "diamond", total=total)
    size_column = SIZE_CHOICES.get(size_by)
    size = _sizes(points[size_column]) if size_column and size_column in points else 7
    if color_by in NUMERIC_CHOICES:
        column = NUMERIC_CHOICES[color_by]
        values = pd.to_numeric(points[column], errors="coerce") if column in points else None
        fig.add_trace(_points_trace(
            scatter, points, total, color_by, showlegend=False,
            marker={"size": size, "opacity": 0.85, "color": None if values is None else values.to_numpy(np.float32),
                    "colorscale": "Viridis",
                    "showscale": True, "colorbar": {"title": {"text": plot_text(color_by)}}}))
    else:
        column = COLOR_CHOICES.get(color_by, color_by)
        groups = points[column].fillna("(none)").astype(str) if len(points) else pd.Series(dtype=str)
        labels = sorted(groups.unique())
        colours = dict(zip(labels, _group_colours(points, column, groups, labels, run_order)))
        for label, group in points.groupby(groups, sort=True):
            group_size = size if not isinstance(size, list) else [size[k] for k in points.index.get_indexer(group.index)]
            fig.add_trace(_points_trace(
                scatter, group, total, plot_text(label),
                marker={"size": group_size, "opacity": 0.8, "color": colours[label]},
            ))
    return map_layout(fig, title, color_by)


# Cluster labels: at most LABELS_TOP names, largest cluster first, none over another.
LABELS_TOP = 12
LABEL_CHARS = 32
UNLABELLED = ("noise", "unclustered", "(none)")


def newest_batch_figure(points: pd.DataFrame, run_order: Iterable[str], outline: str = "#111111") -> go.Figure:
    """Every point faded, coloured by run, and the points with ``highlight`` set (the newest batch)
    on top: larger and outlined. Every trace is of one kind, chosen by the whole map's size (an SVG
    map under a WebGL highlight draws the highlight under the points)."""
    fig = map_figure(points[~points["highlight"]], color_by="run", run_order=run_order, hover_total=len(points))
    fig.update_traces(marker_opacity=0.3)
    new = points[points["highlight"]]
    if len(new):
        run_id = str(new["run_id"].iloc[0])
        colour = run_colours([*map(str, run_order), run_id])[run_id]
        fig.add_trace(_points_trace(scatter_kind(len(points)), new, len(points), plot_text(f"newest batch: {new['run_name'].iloc[0]}"),
                                    marker={"size": 12, "opacity": 1.0, "color": colour,
                                            "line": {"width": 2, "color": outline}}))
    # the legend under the map: the map keeps the column's width (at 1024 px a legend beside it took half)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.01, "xanchor": "left", "x": 0})
    return fig


def label_positions(points: pd.DataFrame, name_column: str = "cluster_name", top: int = LABELS_TOP,
                    font_size: int = 13, width_px: int = 560, height_px: int = MAP_HEIGHT) -> pd.DataFrame:
    """Where each cluster's name goes: the median (x, y) of its points, largest cluster first;
    a name whose box (estimated from its length, the font size and the plot's size in pixels)
    would overlap one already placed is left out. Noise and unclustered items get no label."""
    columns = ["name", "x", "y", "size"]
    if name_column not in points or not len(points):
        return pd.DataFrame(columns=columns)
    names = points[name_column].astype(str)
    groups = points.assign(_name=names)[~names.isin(UNLABELLED)].groupby("_name")
    centres = groups[["x", "y"]].median().assign(size=groups.size()).reset_index()
    centres = centres.rename(columns={"_name": "name"}).sort_values(["size", "name"], ascending=[False, True])
    x_span = max(float(points["x"].max() - points["x"].min()), 1e-9)
    y_span = max(float(points["y"].max() - points["y"].min()), 1e-9)
    placed: list[tuple[float, float, float, float]] = []
    keep = []
    for row in centres.itertuples():
        half_w = (min(len(row.name), LABEL_CHARS) * 0.62 * font_size + 8) / width_px * x_span / 2
        half_h = (1.5 * font_size + 4) / height_px * y_span / 2
        if all(abs(row.x - x) >= half_w + w or abs(row.y - y) >= half_h + h for x, y, w, h in placed):
            placed.append((row.x, row.y, half_w, half_h))
            keep.append(row.Index)
        if len(keep) == top:
            break
    return centres.loc[keep, columns].reset_index(drop=True)


def add_cluster_labels(fig: go.Figure, points: pd.DataFrame, name_column: str = "cluster_name",
                       top: int = LABELS_TOP, font_size: int = 13) -> go.Figure:
    """Each cluster's name drawn at its centre (see ``label_positions``), escaped, on a light box."""
    for row in label_positions(points, name_column, top, font_size).itertuples():
        fig.add_annotation(x=row.x, y=row.y, text=plot_text(_shorten(row.name, LABEL_CHARS)), showarrow=False,
                           font={"size": font_size, "color": "#222"}, bgcolor="rgba(255,255,255,0.75)",
                           borderpad=2, name="cluster label")
    return fig


DENSITY_BINS = 70


def density_grid(x: np.ndarray, y: np.ndarray, extent: tuple[float, float, float, float],
                 bins: int = DENSITY_BINS, smooth: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smoothed 2-D histogram of the points over ``extent`` (x0, x1, y0, y1), scaled to a peak of 1:
    the bin centres along x and y and the density, rows along y."""
    from scipy.ndimage import gaussian_filter

    x0, x1, y0, y1 = extent
    counts, xe, ye = np.histogram2d(np.asarray(x, float), np.asarray(y, float), bins=bins, range=[[x0, x1], [y0, y1]])
    z = gaussian_filter(counts.T, smooth)
    z = z / z.max() if z.max() > 0 else z
    return (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2, z


def map_extent(points: pd.DataFrame, margin: float = 0.05) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = (float(points["x"].min()), float(points["x"].max()),
                      float(points["y"].min()), float(points["y"].max()))
    dx, dy = max(x1 - x0, 1e-6) * margin, max(y1 - y0, 1e-6) * margin
    return x0 - dx, x1 + dx, y0 - dy, y1 + dy


def add_density(fig: go.Figure, frame: pd.DataFrame, name: str, color: str,
                extent: tuple[float, float, float, float], filled: bool = False, legend: bool = True) -> go.Figure:
    """Contour lines (or, ``filled``, shaded levels) of where ``frame``'s points lie: the outer line
    encloses where there is any density to speak of (5 % of the peak). A small grid travels to the
    browser, not the points; the lines sit under the points and take no hover."""
    if len(frame) < 3:
        return fig
    gx, gy, z = density_grid(frame["x"].to_numpy(), frame["y"].to_numpy(), extent)
    fig.add_trace(go.Contour(
        x=gx.astype(np.float32), y=gy.astype(np.float32), z=z.astype(np.float32), name=plot_text(name),
        showscale=False, hoverinfo="skip", showlegend=legend, legendgroup="density",
        contours={"start": 0.05, "end": 0.85, "size": 0.2, "coloring": "fill" if filled else "lines"},
        colorscale=[[0, "rgba(255,255,255,0)"], [1, color]] if filled else [[0, color], [1, color]],
        opacity=0.35 if filled else 0.9, line={"width": 1.4, "color": None if filled else color}))
    # Contours first: they are drawn under the points.
    fig.data = (fig.data[-1],) + fig.data[:-1]
    return fig


def histogram_figure(values: pd.Series, title: str, selected: pd.Series | None = None,
                     bins: int = 20, chosen: tuple[float, float] | None = None) -> go.Figure:
    """Counts of ``values`` in ``bins`` bars, each bar carrying its [low, high) edges in
    ``customdata`` (a box drawn over bars is read back as a range by ``range_from_selection``);
    ``selected`` (the map's selection) drawn over it in a darker colour, and a ``chosen`` range
    shaded."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    fig = go.Figure()
    if len(v):
        counts, edges = np.histogram(v, bins=bins if v.max() > v.min() else 1)
        edges_pairs = np.column_stack([edges[:-1], edges[1:]])
        centres = (edges[:-1] + edges[1:]) / 2
        fig.add_trace(go.Bar(x=centres, y=counts, width=np.diff(edges), customdata=edges_pairs, name="in view",
                             marker_color="#9ECAE9", hovertemplate="%{customdata[0]:.3g}–%{customdata[1]:.3g}: "
                             "%{y} items<extra></extra>"))
        if selected is not None and len(selected):
            picked = pd.to_numeric(selected, errors="coerce").dropna().to_numpy(float)
            fig.add_trace(go.Bar(x=centres, y=np.histogram(picked, bins=edges)[0], width=np.diff(edges),
                                 customdata=edges_pairs, name="selected", marker_color=PALETTE[0],
                                 hovertemplate="selected: %{y}<extra></extra>"))
    if chosen is not None:
        fig.add_vrect(x0=chosen[0], x1=chosen[1], fillcolor=PALETTE[1], opacity=0.15, line_width=0)
    fig.update_layout(title={"text": plot_text(title), "font": {"size": 13}}, height=190, barmode="overlay",
                      showlegend=False, margin={"l": 5, "r": 5, "t": 30, "b": 5}, plot_bgcolor="white",
                      dragmode="select", bargap=0.05, yaxis={"title": None}, xaxis={"title": None})
    return fig


def range_from_selection(selection: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The [low, high) range covered by the bars of a ``histogram_figure`` chosen with a box or
    a click, from the edges each bar carries; None when nothing is chosen."""
    edges = [c for c in _selected_custom(selection) if isinstance(c, (list, tuple)) and len(c) == 2]
    if not edges:
        return None
    return float(min(e[0] for e in edges)), float(max(e[1] for e in edges))


def _selected_custom(selection: Mapping[str, Any] | None) -> list:
    if not selection:
        return []
    inner = selection.get("selection", selection)
    points = inner.get("points", []) if isinstance(inner, Mapping) else []
    return [p.get("customdata") for p in points if isinstance(p, Mapping) and p.get("customdata") is not None]


def add_highlight(fig: go.Figure, frame: pd.DataFrame, name: str, color: str = "#111111") -> go.Figure:
    """Rings around ``frame``'s points (search matches, a new batch, neighbours), on top of the map."""
    if len(frame):
        scatter = go.Scattergl if any(isinstance(t, go.Scattergl) for t in fig.data) else go.Scatter
        fig.add_trace(scatter(x=frame["x"].to_numpy(np.float32), y=frame["y"].to_numpy(np.float32),
                                   mode="markers", name=plot_text(name), customdata=frame[["item_id"]].to_numpy(),
                                   hoverinfo="skip", marker={"size": 13, "color": "rgba(0,0,0,0)",
                                                             "line": {"width": 2, "color": color}}))
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


def trend_figure(trends: pd.DataFrame, metrics: list[str]) -> go.Figure:
    """Metrics across the successive versions of a prompt: one panel per metric, versions along x.

    ``trends`` has a ``title`` column (the version) and one column per metric."""
    from plotly.subplots import make_subplots

    from synth.analysis.metrics import METRICS, metric_label

    metrics = [m for m in metrics if m in trends]
    fig = make_subplots(rows=max(1, len(metrics)), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[plot_text(metric_label(m)) for m in metrics])
    labels = [plot_text(t) for t in trends["title"]]
    hover = [plot_text(c) or "first version" for c in trends.get("changes", [""] * len(trends))]
    for row, metric in enumerate(metrics, start=1):
        share = metric in METRICS and METRICS[metric].unit == "share"  # as a percentage, like the tables
        fig.add_trace(go.Scatter(x=labels, y=trends[metric], mode="lines+markers", name=plot_text(metric),
                                 customdata=hover, showlegend=False,
                                 hovertemplate="%{x}: %{y:" + (".1%" if share else ".4g") + "}<br>changed: "
                                               "%{customdata}<extra></extra>",
                                 line={"color": PALETTE[(row - 1) % len(PALETTE)]}), row=row, col=1)
        if share:
            fig.update_yaxes(tickformat=".0%", row=row, col=1)
    fig.update_layout(height=max(260, 190 * len(metrics)), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      plot_bgcolor="white")
    fig.update_xaxes(type="category")
    return fig


def share_difference_figure(clusters: pd.DataFrame, top: int = 15) -> go.Figure:
    """Each cluster's share of A's items and of B's, side by side, largest changes first.

    ``clusters`` has cluster_name, share_a and share_b columns."""
    shown = clusters.head(top).iloc[::-1]
    names = [plot_text(n) for n in shown["cluster_name"]]
    fig = go.Figure([go.Bar(y=names, x=shown["share_a"], name="A", orientation="h", marker_color=PALETTE[0]),
                     go.Bar(y=names, x=shown["share_b"], name="B", orientation="h", marker_color=PALETTE[1])])
    fig.update_layout(barmode="group", height=max(240, 36 * len(shown) + 80), xaxis={"tickformat": ".0%"},
                      margin={"l": 10, "r": 10, "t": 10, "b": 10}, plot_bgcolor="white",
                      legend={"orientation": "h"})
    return fig
