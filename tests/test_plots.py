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
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in hover


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
