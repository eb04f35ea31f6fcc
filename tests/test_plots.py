from pathlib import Path

import pytest
import pandas as pd
import plotly.graph_objects as go

from synth.outputs import plots


def _points(n=4, texts=None):
    texts = texts or [f"text {i}" for i in range(n)]
    return pd.DataFrame({
        "item_id": [f"it_{i}" for i in range(n)], "x": range(n), "y": range(n), "text": texts,
        "run_name": ["a", "b"] * (n // 2), "prompt_label": ["p v1"] * n, "model": ["m"] * n,
        "status": ["new"] * n, "technique": ["sampling"] * n,
    })


def test_one_trace_per_colour_and_ids_in_customdata():
    fig = plots.map_figure(_points(), "run")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert [list(t.customdata[:, 0]) for t in fig.data] == [["it_0", "it_2"], ["it_1", "it_3"]]
    assert isinstance(fig.data[0], go.Scatter)


def test_generated_text_is_escaped_in_hover_labels():
    evil = '<img src=x onerror="alert(1)"><b>bold</b>'
    fig = plots.map_figure(_points(2, [evil, "plain"]), "run")
    hover = fig.data[0].hovertext[0]
    assert "<img" not in hover and "<b>bold" not in hover
    assert '&lt;img src=x onerror="alert(1)"&gt;' in hover  # plotly shows &quot; as it is: quotes stay


HOSTILE = '<a href="http://127.0.0.1:9/">x</a> <b>"bold"</b>'
SHOWN = '&lt;a href="http://127.0.0.1:9/"&gt;x&lt;/a&gt; &lt;b&gt;"bold"&lt;/b&gt;'


def test_run_cluster_and_version_names_are_escaped_in_legends_hovers_and_axes():
    points = _points(2).assign(run_name=[HOSTILE, "plain"], prompt_label=[HOSTILE, "p"],
                               cluster_name=[HOSTILE, "c"])
    fig = plots.map_figure(points, "cluster", title=HOSTILE)
    assert sorted(t.name for t in fig.data) == [SHOWN, "c"]
    hover = next(t for t in fig.data if t.name == SHOWN).hovertext[0]
    assert f"<i>{SHOWN} · {SHOWN} · cluster: {SHOWN}" in hover
    assert fig.layout.title.text == SHOWN
    trends = pd.DataFrame({"title": [HOSTILE, "v2"], "changes": ["", HOSTILE], "distinct_2": [0.5, 0.6]})
    figure = plots.trend_figure(trends, ["distinct_2"])
    trend = figure.data[0]
    assert list(trend.x) == [SHOWN, "v2"] and list(trend.customdata) == ["first version", SHOWN]
    assert figure.layout.annotations[0].text == "Word-pair variety (distinct_2)"  # the panel's title
    assert figure.layout.yaxis.tickformat == ".0%" and "%{y:.1%}" in trend.hovertemplate  # a share, in percent
    shares = pd.DataFrame({"cluster_name": [HOSTILE], "share_a": [0.5], "share_b": [0.2]})
    assert [list(b.y) for b in plots.share_difference_figure(shares).data] == [[SHOWN], [SHOWN]]


def test_long_texts_are_shortened_and_wrapped():
    label = plots.hover_text("word " * 300)
    assert label.count("<br>") >= 5 and label.endswith("…")


def test_webgl_for_large_sets():
    n = plots.WEBGL_FROM
    fig = plots.map_figure(_points(n), "run")
    assert isinstance(fig.data[0], go.Scattergl)


def test_selection_to_item_ids_reads_customdata_not_indices():
    # The shape st.plotly_chart returns: point indices restart in every trace.
    selection = {"selection": {"points": [
        {"curve_number": 0, "point_index": 1, "customdata": ["it_2"]},
        {"curve_number": 1, "point_index": 1, "customdata": ["it_3"]},
        {"curve_number": 1, "point_index": 1, "customdata": ["it_3"]},
        {"curve_number": 0, "point_index": 0},
    ], "point_indices": [1, 1, 0], "box": [], "lasso": []}}
    assert plots.selected_item_ids(selection) == ["it_2", "it_3"]
    assert plots.selected_item_ids(selection["selection"]) == ["it_2", "it_3"]
    assert plots.selected_item_ids(None) == []
    assert plots.selected_item_ids({"selection": {"points": []}}) == []
    assert plots.selected_item_ids({"points": [{"customdata": "it_9"}]}) == ["it_9"]


def _run_points(runs):
    """Two points for each (run_id, run_name), oldest run first, as the store lists items."""
    rows = [(rid, name) for rid, name in runs for _ in range(2)]
    return pd.DataFrame({
        "item_id": [f"it_{i}" for i in range(len(rows))], "x": range(len(rows)), "y": range(len(rows)),
        "text": ["t"] * len(rows), "run_id": [r for r, _ in rows], "run_name": [n for _, n in rows],
        "prompt_label": ["p v1"] * len(rows)})


def _trace_colours(fig):
    return {t.name: t.marker.color for t in fig.data}


def test_adding_a_run_keeps_the_colours_of_the_existing_runs():
    runs = [(f"run_{i:012x}", f"run {i}") for i in range(30)]
    for k in range(1, len(runs)):
        before = _trace_colours(plots.map_figure(_run_points(runs[:k]), "run"))
        after = _trace_colours(plots.map_figure(_run_points(runs[:k + 1]), "run"))
        assert all(after[name] == colour for name, colour in before.items())
    # Up to 24 runs no two share a colour, and none is the reference grey.
    colours = plots.run_colours(r for r, _ in runs[:24])
    assert len(set(colours.values())) == 24
    assert plots.REFERENCE_COLOR not in colours.values() and plots.DROPPED_COLOR not in colours.values()
    # The colour comes from the id: the same in another figure, another process, another name order.
    assert plots.run_colours([runs[5][0]]) == plots.run_colours([runs[5][0]])
    assert plots.run_colours([runs[5][0]])[runs[5][0]] == plots.RUN_PALETTE[plots._slot(runs[5][0])]


def test_run_order_keeps_colours_when_runs_are_filtered_out():
    runs = [(f"run_{i:012x}", f"run {i}") for i in range(12)]
    order = [r for r, _ in runs]
    everything = _trace_colours(plots.map_figure(_run_points(runs), "run", run_order=order))
    some = _trace_colours(plots.map_figure(_run_points(runs[3::2]), "run", run_order=order))
    assert all(everything[name] == colour for name, colour in some.items())
    assert everything == _trace_colours(plots.map_figure(_run_points(runs), "run"))


def test_reference_items_stay_grey():
    points = _run_points([("run_a", "a")])
    fig = plots.map_figure(points, "run", reference=points.assign(item_id=["r1", "r2"]))
    assert fig.data[0].marker.color == plots.REFERENCE_COLOR and fig.data[1].marker.color != plots.REFERENCE_COLOR


@pytest.mark.parametrize("n", [10, 20, 26, 40])
def test_many_clusters_get_distinct_colours(n):
    points = pd.DataFrame({"item_id": [f"it_{i}" for i in range(n)], "x": range(n), "y": range(n), "text": ["t"] * n,
                           "run_name": ["a"] * n, "prompt_label": ["p"] * n,
                           "cluster_name": [f"cluster {i:02d}" for i in range(n)]})
    fig = plots.map_figure(points, "cluster")
    assert len(fig.data) == n and len({t.marker.color for t in fig.data}) == n


def _clustered(sizes, names, spread=0.3, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = []
    for i, (n, name) in enumerate(zip(sizes, names)):
        frames.append(pd.DataFrame({"x": rng.normal(i * 10, spread, n), "y": rng.normal(0, spread, n),
                                    "cluster_name": name}))
    return pd.concat(frames, ignore_index=True)


def test_cluster_labels_sit_at_the_centres_largest_first_and_never_overlap():
    points = _clustered([5, 40, 20, 3], ["small", "big", "middle", "noise"])
    labels = plots.label_positions(points)
    assert labels["name"].tolist() == ["big", "middle", "small"]  # noise gets no label
    big = labels.iloc[0]
    assert abs(big.x - 10) < 0.3 and abs(big.y) < 0.3
    # Two clusters at the same place: only the larger one's name is drawn.
    first = _clustered([30, 8], ["first", "far"])
    crowded = pd.concat([first, first.head(30).assign(cluster_name="second", x=lambda f: f["x"] + 0.01)])
    assert plots.label_positions(crowded)["name"].tolist() == ["first", "far"]
    fig = plots.add_cluster_labels(go.Figure(), _clustered([5], [HOSTILE]))
    assert [a.text for a in fig.layout.annotations] == [plots.plot_text(HOSTILE[:plots.LABEL_CHARS]) + "…"]


def test_density_peaks_where_the_points_are_and_is_drawn_under_them():
    import numpy as np

    points = _clustered([200, 50], ["a", "b"])
    extent = plots.map_extent(points)
    gx, gy, z = plots.density_grid(points["x"], points["y"], extent)
    row, col = np.unravel_index(np.argmax(z), z.shape)
    assert z.max() == 1.0 and abs(gx[col] - 0) < 1.5 and abs(gy[row]) < 1.5
    fig = plots.map_figure(_points(), "run")
    plots.add_density(fig, points, "density: reference", "#777777", extent)
    assert fig.data[0].type == "contour" and fig.data[0].hoverinfo == "skip"
    assert [t.name for t in fig.data[1:]] == ["a", "b"]


def test_a_box_over_histogram_bars_reads_back_as_their_range():
    fig = plots.histogram_figure(pd.Series([1, 2, 2, 3, 9, 10]), "length", bins=3)
    bars = fig.data[0]
    chosen = {"selection": {"points": [{"customdata": list(bars.customdata[0])},
                                       {"customdata": list(bars.customdata[1])}]}}
    low, high = plots.range_from_selection(chosen)
    assert low == 1.0 and high == pytest.approx(1 + 2 * 9 / 3)
    assert plots.range_from_selection(None) is None
    assert plots.range_from_selection({"selection": {"points": []}}) is None


def test_large_maps_send_compact_coordinates_and_short_or_no_hover_text():
    import plotly.io as pio

    n = plots.HOVER_SHORT_FROM
    points = _points(n, ["word " * 100] * n)
    fig = plots.map_figure(points, "run")
    spec = pio.to_json(fig, validate=False)
    assert '"x":{"dtype":"f4","bdata"' in spec
    assert len(fig.data[0].hovertext[0]) < plots.HOVER_SHORT_CHARS + 40
    big = plots.map_figure(_points(plots.HOVER_NONE_FROM), "run")
    assert big.data[0].hovertext is None and "click" in big.data[0].hovertemplate


def test_a_filtered_view_of_a_large_map_keeps_its_short_hover_labels():
    points = _points(4, ["word " * 100] * 4)
    full = plots.map_figure(points, "run")
    filtered = plots.map_figure(points, "run", hover_total=plots.HOVER_NONE_FROM)
    assert len(full.data[0].hovertext[0]) > plots.HOVER_SHORT_CHARS * 3
    assert filtered.data[0].hovertext is None
    # and it stays on WebGL: a filter that leaves fewer than WEBGL_FROM points does not switch to SVG
    assert full.data[0].type == "scatter" and filtered.data[0].type == "scattergl"
    assert plots.map_figure(points, "run", hover_total=plots.WEBGL_FROM - 1).data[0].type == "scatter"


def test_the_loading_map_waits_for_another_sessions_import_of_pandas(tmp_path):
    """Explore sends its loading map before pandas is imported, and another session's thread may be
    importing it just then: plotly's validators use whatever ``sys.modules["pandas"]`` holds, and a
    half-imported pandas (no ``Series`` yet) failed the page's first run. Here a stand-in pandas
    takes a second to import on a thread; the loading map, built and serialised as Streamlit does
    meanwhile, waits for it and comes out whole."""
    import subprocess
    import sys

    (tmp_path / "pandas.py").write_text("import time\ntime.sleep(1.0)\nclass Series: pass\nclass Index: pass\n")
    code = ("import sys, threading, time\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "import json, numpy, plotly.io, plotly.tools\n"
            "from synth.outputs.mapframe import loading_figure\n"
            "threading.Thread(target=__import__, args=('pandas',)).start()\n"
            "time.sleep(0.3)\n"
            "assert not hasattr(sys.modules['pandas'], 'Series')  # half-imported now\n"
            "figure = plotly.tools.return_figure_from_figure_or_data(loading_figure(), validate_figure=True)\n"
            "spec = json.loads(plotly.io.to_json(figure, validate=False))\n"
            "print(spec['layout']['annotations'][0]['text'], spec['layout']['height'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["Loading", "the", "map…", "620"]


@pytest.mark.parametrize("n, kind", [(plots.WEBGL_FROM, "scattergl"), (plots.WEBGL_FROM - 1, "scatter")])
def test_the_newest_batch_is_drawn_on_top_in_the_same_kind_of_trace_as_the_map(n, kind):
    points = _points(n + n % 2).iloc[:n].assign(run_id=lambda p: p["run_name"], highlight=False)
    points.loc[points.index[-100:], ["run_id", "run_name", "highlight"]] = ["r_new", "new <b>batch</b>", True]
    fig = plots.newest_batch_figure(points, ["a", "b", "r_new"])
    assert {t.type for t in fig.data} == {kind}  # 4,900 base points and 100 highlighted make a map of n
    top = fig.data[-1]
    assert top.name == "newest batch: new &lt;b&gt;batch&lt;/b&gt;" and len(top.x) == 100
    assert list(top.customdata[:, 0]) == points["item_id"].tail(100).tolist()
    assert top.marker.line.width == 2 and top.marker.size == 12
    assert all(t.marker.opacity == 0.3 for t in fig.data[:-1])
    assert sum(len(t.x) for t in fig.data[:-1]) == n - 100
