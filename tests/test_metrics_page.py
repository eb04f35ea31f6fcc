"""The Metrics page, headless through AppTest on the demo data: metrics named by label and id, values
in their unit, a chart per chosen metric across runs with the common-size intervals, whole tables,
and the app's one near-duplicate threshold (the filter panel's)."""

import re

import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from synth.analysis.comparable import runs_at_common_size
from synth.analysis.metrics import METRIC_NAMES, compute_all_metrics, format_metric, metric_label
from synth.kernel.text import literal_markdown
from synth.outputs.metric_charts import DEFAULT_CHART_METRICS

pytestmark = pytest.mark.slow
TIMEOUT = 240
RAW = re.compile(r"^(None|nan|NaN|null|<NA>|)$")


def no_bug(at: AppTest) -> bool:
    from pages.widgets import BUG_NOTE

    return not at.exception and not any(BUG_NOTE in e.value for e in at.error)


def open_metrics(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert no_bug(at), [e.value for e in at.exception] + [e.value for e in at.error]
    return at


def label(name: str) -> str:
    return literal_markdown(metric_label(name))


def cells(at: AppTest) -> list[str]:
    return [str(v) for t in at.table for v in [*t.value.columns, *t.value.to_numpy().ravel()]]


def test_metrics_are_named_shown_in_their_units_and_charted_per_run(demo_store):
    at = open_metrics()
    runs = demo_store.runs()
    # the view: one row per metric, by label and id, one value column without a filter, and its help
    view = at.table[0].value
    assert list(view.columns) == ["Metric", "Whole dataset", "What it measures"]
    assert view["Metric"].tolist() == [label(name) for name in METRIC_NAMES]
    rows = view.set_index("Metric")
    assert rows.loc[label("count"), "Whole dataset"] == f"{demo_store.count_items()}"
    assert rows.loc[label("near_duplicate_rate"), "Whole dataset"].endswith(" %")
    assert "0.90, the near-duplicate threshold in the filter panel" in rows.loc[label("near_duplicate_rate"),
                                                                             "What it measures"]
    assert not [c for c in cells(at) if RAW.match(c)]
    # every run in the whole-run tables, its item count and its shares as percentages
    whole = [t.value for t in at.table if t.value["Metric"].tolist() == [label(n) for n in METRIC_NAMES]][1:]
    headers = [c for t in whole for c in t.columns if c != "Metric"]
    assert sorted(headers) == sorted(literal_markdown(n) for n in runs["name"])
    counts = {c: t.set_index("Metric").loc[label("count"), c] for t in whole for c in t.columns if c != "Metric"}
    assert counts == {literal_markdown(n): str(k) for n, k in zip(runs["name"], runs["n_items"])}
    per_run = compute_all_metrics(demo_store).set_index("run")
    first = runs["name"].iloc[0]
    shown = next(t for t in whole if literal_markdown(first) in t.columns).set_index("Metric")
    assert shown.loc[label("distinct_2"), literal_markdown(first)] == literal_markdown(
        format_metric("distinct_2", per_run.loc[first, "distinct_2"]))
    # a chart per chosen metric; the size-dependent ones at the common size, with its intervals
    charts = at.get("plotly_chart")
    assert [c.key for c in charts] == [f"metrics_chart_{name}" for name in DEFAULT_CHART_METRICS]
    common = runs_at_common_size(demo_store)
    assert any(f"common size of {common.m} items per run" in c.value for c in at.caption)
    assert any(f"**At a common size of {common.m} items**" == m.value for m in at.markdown)
    common_table = [t.value for t in at.table if t.value["Metric"].iloc[0] == label("distinct_1")]
    assert common_table and all("[" in v for t in common_table for v in t.drop(columns="Metric").to_numpy().ravel())
    # no metric chosen: a sentence, not an empty chart
    at.multiselect(key="metrics_chart").set_value([]).run()
    assert no_bug(at) and "Choose a metric above" in at.info[0].value
    assert not at.get("plotly_chart")


def test_the_chart_bars_are_the_common_size_means_and_their_intervals(demo_store):
    import plotly.io

    at = open_metrics()
    chart = next(c for c in at.get("plotly_chart") if c.key == "metrics_chart_vendi_score")
    figure = plotly.io.from_json(chart.proto.spec)
    bar = figure.data[0]
    common = runs_at_common_size(demo_store)
    ids = demo_store.runs()["run_id"].tolist()
    assert list(bar.x) == pytest.approx([common.value(r, "vendi_score").mean for r in ids])
    assert list(bar.error_x.array) == pytest.approx(
        [common.value(r, "vendi_score").high - common.value(r, "vendi_score").mean for r in ids])
    assert figure.layout.title.text == metric_label("vendi_score")


def test_one_near_duplicate_threshold_the_filter_panels_for_the_whole_page(demo_store):
    at = open_metrics()
    assert "metrics_threshold" not in [s.key for s in at.slider]  # no second threshold
    slider = at.slider(key="filters_dedup")
    assert slider.value == pytest.approx(0.9) and "Near-duplicate threshold" in slider.label
    assert at.checkbox(key="filters_dedup_on").value is False

    def near_total(at):
        tables = [t.value.set_index("Metric") for t in at.table]
        runs = [t for t in tables[1:] if label("near_duplicate_rate") in t.index and label("count") in t.index]
        return sum(float(v.rstrip(" %")) for t in runs for v in t.loc[label("near_duplicate_rate")])

    low = near_total(at)
    at.slider(key="filters_dedup").set_value(0.6).run()
    assert no_bug(at)
    assert near_total(at) > low  # the per-run metrics count at the panel's threshold
    assert any("cosine similarity 0.60 or more" in c.value for c in at.caption)
    view = at.table[0].value.set_index("Metric")
    assert "(0.60, the near-duplicate threshold" in view.loc[label("near_duplicate_rate"), "What it measures"]
    assert dict(at.query_params) == {"near": "0.60"}  # a shared link measures at it too
    # it follows the user to another page and back, and "Drop near-duplicates" drops at it
    at.switch_page("pages/export.py").run()
    assert at.slider(key="filters_dedup").value == pytest.approx(0.6)
    at.switch_page("pages/metrics.py").run()
    at.checkbox(key="filters_dedup_on").check().run()
    assert no_bug(at) and dict(at.query_params) == {"dedup": "0.6"}
    view = at.table[0].value.set_index("Metric")
    assert list(view.columns) == ["Whole dataset", "This view", "Change", "What it measures"]
    assert int(view.loc[label("count"), "This view"].replace(",", "")) < demo_store.count_items()


def test_a_link_with_filters_shows_before_after_and_its_threshold(demo_store):
    at = open_metrics(dedup="0.85", lmin="30")
    assert at.slider(key="filters_dedup").value == pytest.approx(0.85)
    assert at.checkbox(key="filters_dedup_on").value is True
    view = at.table[0].value.set_index("Metric")
    total = demo_store.count_items()
    assert view.loc[label("count"), "Whole dataset"] == str(total)
    kept = int(view.loc[label("count"), "This view"])
    assert kept < total and view.loc[label("count"), "Change"] == f"{kept - total}"
    assert any(f"This view: {kept} of {total} items after the filters" == h.value for h in at.subheader)
    assert not [c for c in cells(at) if RAW.match(c)]
    assert view.loc[label("near_duplicate_rate"), "Change"].endswith(", better")
    dropped = at.dataframe[0].value  # what the filters drop, and why
    assert len(dropped) == total - kept
    assert set(dropped["reason"]) <= {"shorter than 30 words"} | {
        r for r in dropped["reason"] if r.startswith("near-duplicate")}
    assert dict(at.query_params) == {"dedup": "0.85", "lmin": "30"}
    # a link whose threshold the panel cannot show falls back to the setting, without an error
    at = open_metrics(near="7")
    assert at.slider(key="filters_dedup").value == pytest.approx(0.9)
