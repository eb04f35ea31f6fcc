"""The metrics as a person reads them: tables and per-metric bar charts across runs. Nothing here
calls streamlit.

Reads: metric values (a view's before -> after comparison, the per-run table of
:func:`synth.analysis.metrics.compute_all_metrics`, a :class:`~synth.analysis.comparable.CommonSize`).
Writes: nothing.

Every metric is named the same way everywhere: its plain label with its id beside it for SQL users
(:func:`~synth.analysis.metrics.metric_label`), and its help text; every value is shown in its
unit (:func:`~synth.analysis.metrics.format_metric`: shares as percentages), and a missing value
as a dash or a sentence, never None or nan. The tables are plain text: a page escapes them for
markdown (:func:`markdown_cells`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from synth.analysis.comparable import COMPARABLE_METRICS, TOO_SMALL, UNJUDGED_METRICS, CommonSize, Interval
from synth.analysis.metrics import METRIC_NAMES, METRICS, format_metric, metric_label
from synth.kernel.errors import SynthError
from synth.kernel.text import is_missing, literal_markdown

MISSING = "—"
NO_VALUE = "no value"
METRIC_COLUMN = "Metric"
HELP_COLUMN = "What it measures"
BEFORE_COLUMN = "Whole dataset"
AFTER_COLUMN = "This view"
CHANGE_COLUMN = "Change"
# What the Metrics page charts until the user chooses: diversity, duplication and length.
DEFAULT_CHART_METRICS = ("near_duplicate_rate", "vendi_score", "distinct_2", "length_mean")
# Runs side by side in one table: past this many, the next ones go in a table below (so that a
# table fits a 1024-pixel window beside the sidebar instead of scrolling sideways).
RUNS_PER_TABLE = 5
BAR_HEIGHT = 34
CHART_MARGIN = 96
BAR_COLOR = "#4C78A8"


def metric_help(name: str, threshold: float | None = None) -> str:
    """A metric's help text as a sentence; for the near-duplicate rate, with the threshold in force."""
    text = METRICS[name].help if name in METRICS else ""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # not an id (cost_usd) or a name (litellm's)
        text = text[:1].upper() + text[1:]
    if name == "near_duplicate_rate" and threshold is not None:
        text = text.rstrip(".") + f" ({threshold:.2f}, the near-duplicate threshold in the filter panel)."
    return text


def change_text(name: str, delta, verdict: str) -> str:
    """A change in the metric's unit with what it means: "+2.1 %, better"; a dash without one."""
    if is_missing(delta):
        return MISSING
    if verdict == "same" or abs(float(delta)) < 1e-12:
        return "no change"
    text = format_metric(name, delta, signed=True)
    return f"{text}, {verdict}" if verdict in ("better", "worse") else text


def view_table(comparison: pd.DataFrame, filtered: bool, threshold: float | None = None) -> pd.DataFrame:
    """The view's metrics (``comparison``: metric, before, after, delta, change) one row per metric:
    Metric (label and id), Whole dataset, and when ``filtered`` This view and Change, then What it
    measures. Values in their unit, a dash where there is none."""
    rows = []
    for r in comparison.itertuples(index=False):
        row = {METRIC_COLUMN: metric_label(r.metric), BEFORE_COLUMN: format_metric(r.metric, r.before, MISSING)}
        if filtered:
            row[AFTER_COLUMN] = format_metric(r.metric, r.after, MISSING)
            row[CHANGE_COLUMN] = change_text(r.metric, r.delta, r.change)
        row[HELP_COLUMN] = metric_help(r.metric, threshold) or MISSING
        rows.append(row)
    columns = [METRIC_COLUMN, BEFORE_COLUMN, *([AFTER_COLUMN, CHANGE_COLUMN] if filtered else []), HELP_COLUMN]
    return pd.DataFrame(rows, columns=columns)


def run_headers(table: pd.DataFrame) -> dict[str, str]:
    """run id -> the run's name as a column header or axis label; a name two runs share gets the
    run's id beside it, so no two headers are the same."""
    names = [str(n) if not is_missing(n) and str(n).strip() else str(rid)
             for rid, n in zip(table["run_id"], table["run"])]
    shared = {n for n in names if names.count(n) > 1}
    return {rid: f"{n} ({rid})" if n in shared else n for rid, n in zip(table["run_id"], names)}


def runs_table(table: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Every metric of every run (``table``: compute_all_metrics's run-by-metric frame) one row per
    metric: Metric (label and id), then one column per run (headers from :func:`run_headers`)."""
    metrics = list(METRIC_NAMES if metrics is None else metrics)
    headers = run_headers(table)
    rows = []
    for name in metrics:
        row = {METRIC_COLUMN: metric_label(name)}
        for run_id, value in zip(table["run_id"], table[name]):
            row[headers[run_id]] = format_metric(name, value, MISSING)
        rows.append(row)
    return pd.DataFrame(rows, columns=[METRIC_COLUMN, *headers.values()])


def interval_label(name: str, iv: Interval | None) -> str:
    """A mean in the metric's unit and its 95 % interval in the same unit: "78 % [76, 81]",
    "2.68 bits [2.32, 2.97]"; a dash without one."""
    if iv is None or is_missing(iv.mean):
        return MISSING
    low, high = (format_metric(name, bound, MISSING, with_unit=False) for bound in (iv.low, iv.high))
    return f"{format_metric(name, iv.mean)} [{low}, {high}]"


def common_table(common: CommonSize, table: pd.DataFrame) -> pd.DataFrame:
    """The size-dependent metrics at the common size, one row per metric: Metric (label and id), then
    per run its mean and 95 % interval, or "too small to compare"."""
    headers = run_headers(table)
    rows = []
    for name in common.metrics:
        row = {METRIC_COLUMN: metric_label(name)}
        for run_id, header in headers.items():
            row[header] = TOO_SMALL if common.is_too_small(run_id) else interval_label(name, common.value(run_id, name))
        rows.append(row)
    return pd.DataFrame(rows, columns=[METRIC_COLUMN, *headers.values()])


def split_runs(frame: pd.DataFrame, size: int = RUNS_PER_TABLE) -> list[pd.DataFrame]:
    """A metric-by-run table cut into as few tables as hold at most ``size`` runs each, the runs
    shared out evenly (6 runs: 3 and 3, not 5 and 1), each table keeping the Metric column."""
    if size < 1:
        raise SynthError(f"A table must hold at least one run, got {size}.")
    runs = [c for c in frame.columns if c != METRIC_COLUMN]
    if not runs:
        return [frame]
    parts = -(-len(runs) // size)
    base, extra = divmod(len(runs), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + base + (1 if i < extra else 0)
        out.append(frame[[METRIC_COLUMN, *runs[start:end]]])
        start = end
    return out


def markdown_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its headers and cells escaped, to show literally in a table that reads
    markdown (``st.table``): run names are whatever the user typed."""
    out = frame.map(literal_markdown)
    out.columns = [literal_markdown(c) for c in frame.columns]
    return out


@dataclass(frozen=True)
class RunSeries:
    """One metric across runs, as its chart draws it: one row per run (run_id, run, value, low,
    high, note), and ``m``, the common size the values were measured at (None: whole runs)."""

    name: str
    frame: pd.DataFrame
    m: int | None

    @property
    def has_values(self) -> bool:
        return bool(self.frame["value"].notna().any())


def metric_series(name: str, table: pd.DataFrame, common: CommonSize | None = None) -> RunSeries:
    """``name`` for every run of ``table``: at the common size (mean and 95 % interval) when it is one
    of the size-dependent metrics ``common`` measured and more than one run is compared; else each
    whole run's value, without an interval. ``note`` says why a run has no value."""
    if name not in METRICS:
        raise SynthError(f"No metric is called {name!r}. Choose among: {', '.join(METRIC_NAMES)}.")
    headers = run_headers(table)
    at_common = (common is not None and common.m is not None and len(table) > 1 and name in common.metrics)
    rows = []
    for run_id, whole in zip(table["run_id"], table[name]):
        row = {"run_id": run_id, "run": headers[run_id], "value": None, "low": None, "high": None, "note": ""}
        if at_common and common.is_too_small(run_id):
            row["note"] = TOO_SMALL
        elif at_common:
            iv = common.value(run_id, name)
            if iv is None or is_missing(iv.mean):
                row["note"] = NO_VALUE
            else:
                row.update(value=iv.mean, low=iv.low, high=iv.high)
        elif is_missing(whole):
            row["note"] = NO_VALUE
        else:
            row["value"] = float(whole)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "run", "value", "low", "high", "note"])
    for column in ("value", "low", "high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return RunSeries(name, frame, common.m if at_common else None)


def common_note(m: int | None, minimum: int, runs: int) -> str:
    """How the charts of the size-dependent metrics were measured, said once above them."""
    if runs < 2:
        return "One run: each chart shows its whole-run value."
    if m is None:
        return (f"Every run has fewer than {minimum} items, so none is compared at a common size: each chart "
                "shows whole-run values.")
    return (f"The metrics that move with the number of items (word variety, phrasing reuse, distinct items and "
            f"others) are charted at a common size of {m} items per run: the bar is the mean over random "
            "subsamples of each run, the line its 95 % interval; where two lines overlap, the runs show no "
            f"clear difference. A run under {minimum} items is too small to compare. The other metrics show "
            "each whole run's value.")


def series_note(series: RunSeries, threshold: float | None = None) -> str:
    """What one chart shows, in a sentence or two under it: the metric's help, and how it was measured."""
    parts = [metric_help(series.name, threshold)]
    if series.m is not None:
        parts.append(f"At {series.m} items per run, with 95 % intervals.")
    elif series.name in UNJUDGED_METRICS or series.name in COMPARABLE_METRICS:
        parts.append("Whole runs: this metric moves with the number of items, so compare runs of different "
                     "sizes with care.")
    else:
        parts.append("Whole runs.")
    if not series.has_values:
        parts.append("No run has a value for it.")
    return " ".join(p for p in parts if p)


def _axis(name: str) -> tuple[float, dict]:
    """The factor a value is drawn at and the axis of its unit: shares in percent, USD with $, the
    other units as the axis title (not on every tick, where they crowd a narrow chart)."""
    unit = METRICS[name].unit
    if unit == "share":
        return 100.0, {"ticksuffix": " %"}
    if unit == "USD":
        return 1.0, {"tickprefix": "$"}
    if unit:
        return 1.0, {"title": {"text": unit, "font": {"size": 12}}}
    return 1.0, {}


def metric_bars(series: RunSeries, colours: dict[str, str] | None = None) -> go.Figure:
    """One horizontal bar per run (first run on top), coloured by run, with the 95 % interval as an
    error line where the series has one and the value written after it; a run without a value says
    why in place of its bar. Titled with the metric's label and id; values in the metric's unit
    (shares in percent)."""
    frame = series.frame
    factor, axis = _axis(series.name)
    colours = colours or {}
    runs = [html.escape(str(r)) for r in frame["run"]]  # plotly reads a subset of HTML in labels
    values = (frame["value"] * factor).fillna(0.0)
    ends = (frame["high"].fillna(frame["value"]) * factor).fillna(0.0)
    texts, hovers = [], []
    for r in frame.itertuples(index=False):
        name = html.escape(str(r.run))
        if is_missing(r.value):
            texts.append(r.note or NO_VALUE)
            hovers.append(f"{name}: {r.note or NO_VALUE}")
        elif not is_missing(r.low):
            shown = interval_label(series.name, Interval(r.value, r.low, r.high, series.m or 0, 0))
            texts.append(format_metric(series.name, r.value))
            hovers.append(f"{name}: {shown} (mean and 95 % interval)")
        else:
            texts.append(format_metric(series.name, r.value))
            hovers.append(f"{name}: {texts[-1]}")
    bar = go.Bar(x=values.tolist(), y=runs, orientation="h", hovertext=hovers, hoverinfo="text", showlegend=False,
                 marker_color=[colours.get(str(rid), BAR_COLOR) for rid in frame["run_id"]])
    if frame["low"].notna().any():
        bar.error_x = {"type": "data", "symmetric": False, "color": "#333333", "thickness": 1.5, "width": 4,
                       "array": ((frame["high"] - frame["value"]) * factor).fillna(0.0).tolist(),
                       "arrayminus": ((frame["value"] - frame["low"]) * factor).fillna(0.0).tolist()}
    labels = go.Scatter(x=ends.tolist(), y=runs, mode="text", text=[" " + html.escape(t) for t in texts],
                        textposition="middle right", hoverinfo="skip", showlegend=False, cliponaxis=False)
    fig = go.Figure([bar, labels])
    top = float(ends.max()) if series.has_values else 0.0
    fig.update_layout(
        title={"text": html.escape(metric_label(series.name)), "font": {"size": 15}},
        height=CHART_MARGIN + BAR_HEIGHT * max(len(frame), 1), margin={"l": 8, "r": 16, "t": 40, "b": 8},
        xaxis={"range": [0, (top or 1.0) * 1.3], "nticks": 6, "automargin": True, **axis},
        yaxis={"autorange": "reversed", "automargin": True}, bargap=0.35)
    return fig
