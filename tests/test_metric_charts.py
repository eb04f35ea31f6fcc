"""The metrics as a person reads them: labels with ids, values in their unit, runs side by side, and
a bar chart per metric with the common-size intervals where they exist."""

import numpy as np
import pandas as pd
import pytest

from synth.analysis.comparable import TOO_SMALL, CommonSize, Interval, Sample, at_common_size
from synth.analysis.metrics import METRIC_NAMES, compare
from synth.kernel.errors import SynthError
from synth.outputs import metric_charts as charts

RAW = ("None", "nan", "NaN", "null", "<NA>")


def _table(**overrides):
    """A compute_all_metrics-shaped table of three runs: r1 and r2 measured, r3 with 5 items."""
    rows = []
    for run_id, run, n, near, vendi in (("r1", "alpha", 50, 0.045, 22.6), ("r2", "beta", 40, 0.2, 15.5),
                                        ("r3", "tiny", 5, None, 3.0)):
        row = {"run_id": run_id, "run": run, "model": "m", "prompt_version": 1,
               **{name: None for name in METRIC_NAMES}}
        row.update(count=float(n), near_duplicate_rate=near, vendi_score=vendi, length_mean=10.0 * n / 5,
                   cost_usd=0.0123, distinct_2=0.6)
        rows.append(row)
    table = pd.DataFrame(rows)
    for key, value in overrides.items():
        table[key] = value
    return table


def _common():
    """r1 and r2 at a common size of 20 with known intervals; r3 too small."""
    return CommonSize(m=20, minimum=20, sizes={"r1": 50, "r2": 40, "r3": 5}, intervals={
        "r1": {"near_duplicate_rate": Interval(0.0, 0.0, 0.0, 20, 200), "vendi_score": Interval(13.2, 12.2, 14.4, 20, 200)},
        "r2": {"near_duplicate_rate": Interval(0.0367, 0.0, 0.15, 20, 200),
               "vendi_score": Interval(11.1, 9.94, 12.4, 20, 200)}})


def _no_raw(frame: pd.DataFrame):
    cells = [str(v) for v in frame.to_numpy().ravel()] + [str(c) for c in frame.columns]
    assert not [c for c in cells if c in RAW or c == ""], cells


def test_the_view_table_names_each_metric_by_label_and_id_with_its_unit_and_help():
    before = {name: None for name in METRIC_NAMES} | {"count": 290.0, "near_duplicate_rate": 0.045,
                                                      "vendi_score": 62.8, "cost_usd": 0.5}
    after = before | {"count": 250.0, "near_duplicate_rate": 0.02}
    table = charts.view_table(compare(before, after), filtered=True, threshold=0.85)
    assert list(table.columns) == ["Metric", "Whole dataset", "This view", "Change", "What it measures"]
    assert len(table) == len(METRIC_NAMES)
    rows = table.set_index("Metric")
    near = rows.loc["Near-duplicates (near_duplicate_rate)"]
    assert (near["Whole dataset"], near["This view"], near["Change"]) == ("4.5 %", "2.0 %", "-2.5 %, better")
    assert "(0.85, the near-duplicate threshold in the filter panel)" in near["What it measures"]
    assert rows.loc["Items (count)", "Change"] == "-40"
    assert rows.loc["Distinct items (vendi_score)", "Change"] == "no change"
    assert rows.loc["Judge score (judge_score_mean)", "Whole dataset"] == "—"
    assert rows.loc["Judge score (judge_score_mean)", "Change"] == "—"
    assert rows.loc["Word variety (distinct_1)", "What it measures"] == "Unique words / all words over the set."
    assert rows.loc["Cost (cost_usd)", "Whole dataset"] == "$0.5"
    _no_raw(table)


def test_without_a_filter_the_view_table_has_one_value_column():
    values = {name: 0.5 for name in METRIC_NAMES}
    table = charts.view_table(compare(values, values), filtered=False)
    assert list(table.columns) == ["Metric", "Whole dataset", "What it measures"]
    assert table.set_index("Metric").loc["Word variety (distinct_1)", "Whole dataset"] == "50 %"


def test_the_runs_table_puts_runs_side_by_side_in_their_units():
    table = charts.runs_table(_table())
    assert list(table.columns) == ["Metric", "alpha", "beta", "tiny"]
    assert table["Metric"].tolist()[:2] == ["Items (count)", "Word variety (distinct_1)"]
    rows = table.set_index("Metric")
    assert rows.loc["Near-duplicates (near_duplicate_rate)"].tolist() == ["4.5 %", "20 %", "—"]
    assert rows.loc["Mean length (length_mean)"].tolist() == ["100 words", "80 words", "10 words"]
    assert rows.loc["Cost (cost_usd)", "alpha"] == "$0.0123"
    _no_raw(table)


def test_two_runs_of_one_name_get_their_ids_beside_it_and_a_missing_name_the_id():
    table = _table(run=["same", "same", None])
    assert charts.run_headers(table) == {"r1": "same (r1)", "r2": "same (r2)", "r3": "r3"}


def test_the_common_size_table_gives_intervals_in_the_unit_or_says_too_small():
    table = charts.common_table(_common(), _table()).set_index("Metric")
    assert table.loc["Near-duplicates (near_duplicate_rate)"].tolist() == ["0 % [0, 0]", "3.7 % [0, 15]", TOO_SMALL]
    assert table.loc["Distinct items (vendi_score)", "alpha"] == "13.2 [12.2, 14.4]"
    assert charts.interval_label("cluster_entropy", Interval(2.68, 2.32, 2.97, 20, 200)) == "2.68 bits [2.32, 2.97]"
    assert charts.interval_label("vendi_score", None) == "—"


def test_wide_tables_are_cut_evenly_and_each_part_keeps_the_metric_column():
    frame = pd.DataFrame({"Metric": ["a"], **{f"run {i}": ["x"] for i in range(6)}})
    parts = charts.split_runs(frame, size=5)
    assert [list(p.columns) for p in parts] == [["Metric", "run 0", "run 1", "run 2"],
                                                ["Metric", "run 3", "run 4", "run 5"]]
    assert len(charts.split_runs(frame, size=6)) == 1
    assert [len(p.columns) - 1 for p in charts.split_runs(frame.iloc[:, :3], size=5)] == [2]
    with pytest.raises(SynthError, match="at least one run"):
        charts.split_runs(frame, size=0)


def test_markdown_cells_escape_what_a_user_typed():
    frame = pd.DataFrame({"Metric": ["Items (count)"], "**bold** $x$": ["$5"]})
    out = charts.markdown_cells(frame)
    assert list(out.columns) == ["Metric", r"\*\*bold\*\* \$x\$"]
    assert out.iloc[0].tolist() == ["Items (count)", r"\$5"]


def test_a_size_dependent_metric_is_charted_at_the_common_size_with_intervals():
    series = charts.metric_series("vendi_score", _table(), _common())
    assert series.m == 20
    frame = series.frame.set_index("run_id")
    assert frame.loc["r1", ["value", "low", "high"]].tolist() == [13.2, 12.2, 14.4]
    assert np.isnan(frame.loc["r3", "value"]) and frame.loc["r3", "note"] == TOO_SMALL
    fig = charts.metric_bars(series, {"r1": "#111111"})
    bar, labels = fig.data
    assert list(bar.y) == ["alpha", "beta", "tiny"] and fig.layout.yaxis.autorange == "reversed"
    assert list(bar.x) == [13.2, 11.1, 0.0]
    assert list(bar.error_x.array) == pytest.approx([1.2, 1.3, 0.0])
    assert list(bar.error_x.arrayminus) == pytest.approx([1.0, 1.16, 0.0])
    assert bar.marker.color[0] == "#111111" and bar.marker.color[1] == charts.BAR_COLOR
    assert [t.strip() for t in labels.text] == ["13.2", "11.1", TOO_SMALL]
    assert list(labels.x) == [14.4, 12.4, 0.0]  # the value is written after the interval's end
    assert "13.2 [12.2, 14.4]" in bar.hovertext[0]
    assert fig.layout.title.text == "Distinct items (vendi_score)"
    assert "At 20 items per run, with 95 % intervals." in charts.series_note(series)


def test_shares_are_charted_in_percent():
    series = charts.metric_series("near_duplicate_rate", _table(), _common())
    fig = charts.metric_bars(series)
    assert list(fig.data[0].x) == pytest.approx([0.0, 3.67, 0.0])
    assert list(fig.data[0].error_x.array) == pytest.approx([0.0, 11.33, 0.0])
    assert fig.layout.xaxis.ticksuffix == " %"
    assert [t.strip() for t in fig.data[1].text] == ["0 %", "3.7 %", TOO_SMALL]
    note = charts.series_note(series, threshold=0.9)
    assert "(0.90, the near-duplicate threshold in the filter panel)" in note


def test_other_metrics_and_a_single_run_are_charted_on_whole_runs():
    table = _table()
    series = charts.metric_series("length_mean", table, _common())  # not measured at a common size
    assert series.m is None and series.frame["value"].tolist() == [100.0, 80.0, 10.0]
    assert series.frame["low"].isna().all()
    fig = charts.metric_bars(series)
    assert fig.data[0].error_x.array is None
    assert fig.layout.xaxis.title.text == "words"
    assert [t.strip() for t in fig.data[1].text] == ["100 words", "80 words", "10 words"]
    assert charts.series_note(series).endswith("Whole runs.")
    one = charts.metric_series("vendi_score", table.iloc[:1], _common())
    assert one.m is None and one.frame["value"].tolist() == [22.6]
    assert "compare runs of different sizes with care" in charts.series_note(one)


def test_a_metric_no_run_has_says_so_instead_of_drawing_none():
    series = charts.metric_series("judge_score_mean", _table())
    assert not series.has_values and series.frame["note"].tolist() == ["no value"] * 3
    fig = charts.metric_bars(series)
    assert [t.strip() for t in fig.data[1].text] == ["no value"] * 3
    assert "No run has a value for it." in charts.series_note(series)
    with pytest.raises(SynthError, match="No metric is called 'vendi'"):
        charts.metric_series("vendi", _table())


def test_markup_in_a_run_name_reaches_the_chart_escaped():
    series = charts.metric_series("count", _table(run=["<b>x</b>", "beta", "tiny"]))
    assert charts.metric_bars(series).data[0].y[0] == "&lt;b&gt;x&lt;/b&gt;"


def test_the_chart_of_a_real_comparison_uses_its_intervals():
    rng = np.random.default_rng(0)
    samples = {key: Sample([f"text {key} {i} {rng.integers(1000)}" for i in range(n)], rng.normal(size=(n, 8)))
               for key, n in (("r1", 50), ("r2", 40))}
    common = at_common_size(samples, metrics=("vendi_score", "near_duplicate_rate"), seed=1, threshold=0.9,
                            minimum=20)
    series = charts.metric_series("vendi_score", _table().iloc[:2], common)
    assert series.m == common.m == 20
    for run_id, row in series.frame.set_index("run_id").iterrows():
        iv = common.value(run_id, "vendi_score")
        assert (row["value"], row["low"], row["high"]) == (iv.mean, iv.low, iv.high)
        assert row["low"] <= row["value"] <= row["high"]


def test_the_common_note_says_how_the_charts_were_measured():
    assert "common size of 20 items per run" in charts.common_note(20, 20, 3)
    assert "fewer than 20 items" in charts.common_note(None, 20, 3)
    assert charts.common_note(None, 20, 1) == "One run: each chart shows its whole-run value."
