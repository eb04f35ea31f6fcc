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
    trend = plots.trend_figure(trends, ["distinct_2"]).data[0]
    assert list(trend.x) == [SHOWN, "v2"] and list(trend.customdata) == ["first version", SHOWN]
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
