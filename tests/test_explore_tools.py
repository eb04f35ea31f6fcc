"""The Explore map's tools through AppTest on the real demo data: search, neighbours, linked
charts, labels, density and the newest batch's landing. Chart and map selections are set as the
browser would set them (the selection state under the chart's key)."""

import json

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from synth.analysis import neighbours
from synth.analysis.embedding import load_vectors

TIMEOUT = 240


def open_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    return at


def no_bug(at: AppTest) -> bool:
    from pages.widgets import BUG_NOTE

    return not at.exception and not any(BUG_NOTE in e.value for e in at.error)


def figure(at) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.key == "explore_map")
    return json.loads(chart.proto.spec)


def trace(at, name: str) -> dict | None:
    return next((t for t in figure(at)["data"] if t.get("name") == name), None)


def ids_of(t: dict) -> list[str]:
    return [c[0] if isinstance(c, list) else c for c in t["customdata"]]


def shown_count(at) -> int:
    caption = next(c.value for c in at.caption if " items shown (" in c.value)
    return int(caption.split(" of ")[0])


def test_search_by_words_rings_and_lists_the_matches_and_selects_them(demo_store):
    items = demo_store.items()
    word = items["text"].iloc[0].split()[-1].strip(".,!?").lower()
    expected = set(items["item_id"].iloc[neighbours.word_matches(items["text"], word)])
    at = open_app()
    at.text_input(key="explore_search").set_value(word).run()
    assert no_bug(at)
    assert set(ids_of(trace(at, "found / picked"))) == expected
    assert any(e.label == f"{len(expected)} matches, ringed on the map" for e in at.expander)
    at.button(key="explore_pick_matches").click().run()
    assert any(s.value == f"{len(expected)} selected" for s in at.subheader)


def test_a_bad_pattern_says_what_to_do_and_the_map_stays(demo_store):
    at = open_app()
    at.radio(key="explore_search_mode").set_value("pattern").run()
    at.text_input(key="explore_search").set_value("(unclosed").run()
    assert not at.exception
    assert any("not a valid regular expression" in e.value for e in at.error)
    assert trace(at, "found / picked") is None and len(figure(at)["data"]) >= 1


def test_search_by_meaning_lists_the_nearest_items_with_their_similarity(demo_store):
    at = open_app()
    at.radio(key="explore_search_mode").set_value("meaning").run()
    at.text_input(key="explore_search").set_value("a recipe for soup").run()
    assert no_bug(at)
    assert len(ids_of(trace(at, "found / picked"))) == neighbours.MEANING_TOP
    table = next(d.value for d in at.dataframe if "similarity" in d.value.columns)
    assert len(table) == neighbours.MEANING_TOP and table["similarity"].is_monotonic_decreasing


def test_clicking_an_item_lists_its_nearest_neighbours_and_selects_them(demo_store):
    items = demo_store.items()
    vectors = load_vectors(demo_store, items["text"].tolist())
    rows, sims = neighbours.neighbours(vectors, 3, 10)
    at = open_app()
    at.session_state["explore_map"] = {"selection": {"points": [{"customdata": [items["item_id"].iloc[3]]}]}}
    at.run()
    assert no_bug(at)
    assert any(s.value == "Nearest items" for s in at.subheader)
    table = next(d.value for d in at.dataframe if "similarity" in d.value.columns)
    assert table["text"].tolist() == items["text"].iloc[rows].tolist()
    assert np.allclose(table["similarity"], np.round(sims, 3))
    at.button(key="explore_pick_neighbours").click().run()
    assert any(s.value == "11 selected" for s in at.subheader)
    assert len(ids_of(trace(at, "found / picked"))) == 11


def test_a_range_chosen_in_a_linked_chart_filters_the_map_and_can_be_cleared(demo_store):
    items = demo_store.items()
    lengths = items["text"].str.count(r"\w+")
    low, high = float(lengths.quantile(0.25)), float(lengths.quantile(0.5))
    at = open_app()
    total = shown_count(at)
    chosen = {"selection": {"points": [{"customdata": [low, (low + high) / 2]},
                                       {"customdata": [(low + high) / 2, high]}]}}
    at.session_state["explore_chart_length_0"] = chosen
    at.run()
    assert no_bug(at)
    assert shown_count(at) == int(((lengths >= low) & (lengths <= high)).sum()) < total
    assert any("The map shows only: length (words)" in c.value for c in at.caption)
    at.session_state["explore_chart_length_0"] = chosen  # the browser keeps a chart's selection
    at.button(key="explore_clear_charts").click().run()
    assert shown_count(at) == total
    assert [c.key for c in at.get("plotly_chart")][1] == "explore_chart_length_1"


def test_the_map_selection_is_drawn_over_the_linked_charts(demo_store):
    items = demo_store.items()
    at = open_app()
    picked = items["item_id"].iloc[:7].tolist()
    at.session_state["explore_map"] = {"selection": {"points": [{"customdata": [i]} for i in picked]}}
    at.run()
    chart = next(c for c in at.get("plotly_chart") if c.key == "explore_chart_length_0")
    bars = json.loads(chart.proto.spec)["data"]
    assert [b["name"] for b in bars] == ["in view", "selected"]


def test_cluster_names_are_drawn_on_the_map_and_density_contours_under_it(demo_store):
    at = open_app()
    labels = [a["text"] for a in figure(at)["layout"].get("annotations", [])]
    names = set(demo_store.frame("SELECT coalesce(llm_label, keywords) AS n FROM cluster_labels")["n"])
    assert labels and set(labels) <= {n[:32] + ("…" if len(n) > 32 else "") for n in names}
    at.selectbox(key="explore_density").set_value("synthetic").run()
    assert no_bug(at)
    data = figure(at)["data"]
    assert data[0]["type"] == "contour" and data[0]["name"] == "density: synthetic"
    at.checkbox(key="explore_labels").set_value(False).run()
    assert not figure(at)["layout"].get("annotations")


def test_a_new_batch_lands_with_a_ring_and_a_note(demo_store, tmp_path):
    at = open_app()
    assert any("Newest batch" in i.value for i in at.info)
    path = tmp_path / "new.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"Astronauts repaired the station's solar panel number {i}."})
                              for i in range(12)))
    from synth.workflows.pipeline import import_run

    import_run(demo_store, path, run_name="space batch")
    at.run()
    assert no_bug(at)
    note = next(i.value for i in at.info if "Newest batch" in i.value)
    assert "space batch" in note and "12 items" in note and "open a new region" in note
    assert at.toggle(key="explore_ring_newest").value is True
    assert len(ids_of(trace(at, "newest batch"))) == 12


def test_the_figures_are_measured_on_a_thread_while_the_map_is_drawn(demo_store, monkeypatch):
    import time

    import pages.maptools

    monkeypatch.setattr(pages.maptools, "MEASURE_WAIT_S", 0.0)
    at = open_app()
    assert no_bug(at) and figure(at)["data"]
    if at.metric[0].value == "…":  # the map came first; the figures follow on a later run
        assert any("Measuring the items in view" in c.value for c in at.caption)
    for _ in range(60):
        if at.metric[0].value != "…":
            break
        time.sleep(1)
        at.run()
    from synth.analysis.metrics import metric_label

    assert [m.label for m in at.metric][:5] == [metric_label(n) for n in pages.maptools.HEADLINE]
    assert at.metric[0].label == "Items (count)" and at.metric[3].label == "Near-duplicates (near_duplicate_rate)"
    assert at.metric[0].value == f"{demo_store.count_items():,}"
    assert at.metric[3].value.endswith(" %")  # a share, as a percentage


def test_a_long_list_of_dropped_items_is_cut_and_says_so(demo_store, monkeypatch):
    import pages.widgets

    monkeypatch.setattr(pages.widgets, "DROPPED_SHOWN", 5)
    at = open_app()
    at.text_input(key="filters_include").set_value("zzzz-nothing-matches").run()
    assert no_bug(at)
    n = demo_store.count_items()
    assert any(c.value == f"The first 5 of {n:,}; export or query the view for the rest." for c in at.caption)
    assert any(len(d.value) == 5 and "reason" in d.value.columns for d in at.dataframe)


def test_a_large_view_does_not_hold_the_map_back_for_its_figures():
    import pages.maptools

    # Streamlit shows a rerun's new map only when the run ends: past WAIT_ITEMS items the run
    # does not wait for the figures (measured START_LATER_S later, they take seconds there), below
    # it long enough to show them.
    assert pages.maptools.measure_wait_s(290) == pages.maptools.MEASURE_WAIT_S == 2.0
    assert pages.maptools.measure_wait_s(pages.maptools.WAIT_ITEMS) == 2.0
    assert pages.maptools.measure_wait_s(50_000) == pages.maptools.MEASURE_WAIT_LARGE_S == 0.0
    # A session's first map shows at once: its run waits for the figures while the browser draws.
    assert pages.maptools.measure_wait_s(50_000, first_draw=True) == 2.0
