"""The studio: rendered prompts without a model call, a preview that saves no run but fills the
response cache, this version's metrics beside the previous one, and the page itself."""

import time

import pandas as pd
import pytest
import test_hostile_pages
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from test_hostile_pages import ALL, ESCAPED, assert_escaped

from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.workflows import jobs, studio
from synth.workflows.pipeline import generate_run

TIMEOUT = 240
# The hostile-names database's fixtures, shared with the page escaping tests.
hostile_db_file, hostile_store = test_hostile_pages.hostile_db_file, test_hostile_pages.hostile_store
VARIABLES = {"product": ["kettle", "lamp", "desk"], "tone": ["calm", "angry"]}


def config(server=None, **overrides) -> RunConfig:
    values = {"template": "Review a {product} in a {tone} voice.", "variables": VARIABLES, "n": 6, "seed": 3,
              "system_prompt": "You write reviews.", "prompt_name": "studio-test"}
    if server is not None:
        values.update(model="openai/test-model", api_base=server.api_base)
    return RunConfig(**{**values, **overrides})


def cache_rows(store) -> int:
    return int(store.frame("SELECT count(*) AS n FROM response_cache")["n"][0])


def test_sample_prompts_render_values_drawn_from_the_variables_without_a_call(store, server):
    started = time.perf_counter()
    sampled = studio.sample_prompts(config(server), store, k=3)
    assert time.perf_counter() - started < 1.0
    assert server.config.requests == []  # no model call
    assert [s.idx for s in sampled] == [0, 1, 2]
    for s in sampled:
        assert set(s.variables) == {"product", "tone"}
        assert s.variables["product"] in VARIABLES["product"] and s.variables["tone"] in VARIABLES["tone"]
        assert s.prompt == f"Review a {s.variables['product']} in a {s.variables['tone']} voice."
        assert s.messages[0] == {"role": "system", "content": "You write reviews."}
        assert s.messages[-1]["content"] == s.prompt
    # product mode: the first combinations are all different
    assert len({tuple(s.variables.values()) for s in sampled}) == 3
    # the same seed draws the same values; the prompts are those of the run's first items
    again = studio.sample_prompts(config(server, n=40), store, k=3)
    assert [s.prompt for s in again] == [s.prompt for s in sampled]


def test_sample_prompts_refuse_a_template_without_values(store):
    with pytest.raises(SynthError, match="no values were given for: colour"):
        studio.sample_prompts(config(template="A {colour} thing.", variables={}), store)
    with pytest.raises(SynthError, match="unbalanced braces"):
        studio.sample_prompts(config(template="broken {brace"), store)


@pytest.mark.slow
def test_preview_makes_three_items_saves_no_run_and_the_run_reuses_them(store, server):
    cfg = config(server)
    runs_before = len(store.runs())
    items = studio.preview_items(cfg, store)
    assert len(items) == 3 and len(server.config.requests) == 3
    sampled = studio.sample_prompts(cfg, store, k=3)
    assert [it.variables for it in items] == [s.variables for s in sampled]
    assert all(it.text.startswith("Synthetic reply ") and s.prompt in it.text for it, s in zip(items, sampled))
    assert all(it.finish_reason == "stop" and it.tokens_out > 0 and not it.cached for it in items)
    assert len(store.runs()) == runs_before  # no run saved
    assert cache_rows(store) == 3
    table = studio.preview_table(items)
    assert list(table.columns) == ["#", "text", "{product}", "{tone}", "tokens", "finish reason", "latency ms",
                                   "cached"]
    assert table["#"].tolist() == [1, 2, 3] and table["text"].tolist() == [it.text for it in items]
    # The run of the same configuration gets its first three answers from the cache.
    result = generate_run(store, cfg)
    assert result.n_items == 6 and result.n_cached == 3
    assert len(server.config.requests) == 6  # only the three new items were asked for
    made = store.items([result.run_id]).sort_values("idx")
    assert made["text"].tolist()[:3] == [it.text for it in items]


@pytest.mark.slow
def test_version_metrics_put_this_version_beside_the_previous_one(store, server):
    first = generate_run(store, config(server, n=40))
    edited = config(server, template="Describe a {product} in a {tone} voice.", n=20)
    empty = studio.version_metrics(store, edited)
    # an edit not yet run: this version has no run, the previous one is the first version
    assert empty[studio.THIS].isna().all()
    assert empty.loc["count", studio.PREVIOUS] == 40
    second = generate_run(store, edited)
    found = studio.compare_versions(store, edited)
    table = found.table
    assert list(table.index) == list(studio.HEADLINE_METRICS)
    assert list(table.columns) == [studio.THIS, studio.PREVIOUS]
    assert table.loc["count", studio.THIS] == 20 and table.loc["count", studio.PREVIOUS] == 40
    assert found.this_run["run_id"] == second.run_id and found.previous_run["run_id"] == first.run_id
    assert found.this_title == "studio-test v2" and found.previous_title == "studio-test v1"
    for metric in ("distinct_2", "vendi_score", "mean_pairwise_cosine_distance", "near_duplicate_rate"):
        assert table.loc[metric, studio.THIS] == pytest.approx(second.metrics[metric])
        assert table.loc[metric, studio.PREVIOUS] == pytest.approx(first.metrics[metric])
    assert table.loc["truncated_rate", studio.THIS] == 0.0  # the server always finishes ("stop")
    assert "differ in size (20 against 40 items)" in found.note
    # the size-dependent ones also at a common size: half the smaller run
    assert found.common_n == 10
    assert list(found.common.index) == list(studio.COMMON_METRICS)
    vendi = found.common.loc["vendi_score", studio.THIS]
    mean, low, high = (float(v) for v in vendi.replace("[", "").replace("]", "").replace(",", "").split())
    assert low <= mean <= high <= 10  # a vendi score never exceeds the sample size
    # the saved edit's previous version is its parent
    assert studio.compare_versions(store, edited).previous_title == "studio-test v1"


def test_compare_versions_of_a_first_version_has_no_previous_one(store):
    found = studio.compare_versions(store, config())
    assert found.this_title is None and found.previous_title is None
    assert found.table.isna().all().all() and found.common is None and found.note is None


def test_size_note_only_when_sizes_differ_a_lot():
    assert studio.size_note(10, 12) is None
    assert studio.size_note(None, 12) is None
    assert "30 against 10" in studio.size_note(30, 10)


def test_mark_highlight_marks_the_run_and_only_present_runs_are_highlighted():
    points = pd.DataFrame({"item_id": ["a", "b", "c"], "run_id": ["r1", "r2", "r2"], "x": [0.0, 1.0, 2.0],
                           "y": [0.0, 1.0, 2.0]})
    assert studio.mark_highlight(points, "r2")["highlight"].tolist() == [False, True, True]
    assert not studio.mark_highlight(points, None)["highlight"].any()
    assert studio.mark_highlight(points.iloc[0:0], "r2")["highlight"].tolist() == []
    assert studio.highlight_run(points, "no-such-run", "r1") == "r1"
    assert studio.highlight_run(points, None, "no-such-run") is None


# -- the page ------------------------------------------------------------------------------------

def no_bug(at: AppTest) -> bool:
    from pages.widgets import BUG_NOTE

    return not at.exception and not any(BUG_NOTE in e.value for e in at.error)


def open_studio() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/studio.py").run()
    return at


def studio_progress(at: AppTest) -> list[str]:
    """The texts of the page's own progress bars (the sidebar may show every job's too)."""
    main = at.main
    return [p.proto.text for p in main.get("progress")]


def wait_for(job_id: str) -> jobs.JobControl:
    deadline = time.monotonic() + TIMEOUT
    while jobs.get(job_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
    return jobs.get(job_id)


@pytest.mark.slow
def test_studio_page_on_an_empty_database_says_what_to_do_then_maps_the_first_batch(store, server):
    at = open_studio()
    assert no_bug(at)
    assert at.title[0].value == "Studio"
    assert any("No items yet" in i.value for i in at.info)
    assert len(at.text) == studio.SAMPLE_PROMPTS  # the default template's prompts, rendered
    assert not at.get("plotly_chart")
    at.text_input(key="studio_model").set_value("openai/test-model")
    at.text_input(key="studio_api_base").set_value(server.api_base)
    at.number_input(key="studio_n").set_value(3).run()
    at.button(key="studio_run_button").click().run()
    job = wait_for(at.session_state["studio_job"])
    assert job.state == "done", job.error
    at.run()
    assert no_bug(at)
    assert len(store.runs()) == 1 and len(at.get("plotly_chart")) == 1
    assert any("Highlighted: the newest batch" in c.value and "(3 items), over 3 items" in c.value
               for c in at.caption)
    assert at.table[0].value.loc["Items", studio.THIS] == "3"  # by its label, whole on the page


@pytest.mark.slow
def test_studio_page_types_previews_and_runs_onto_the_map(demo_store, make_server):
    server = make_server(latency_s=1.0)  # so the batch is still running when the page is drawn
    at = open_studio()
    assert no_bug(at)
    assert len(at.get("plotly_chart")) == 1
    at.text_area(key="studio_template").set_value("Write about {x}.").run()
    assert no_bug(at)
    box = at.text_area(key="studio_var_x")
    assert box.value == ""
    assert any("no values were given for: x" in w.value for w in at.warning)
    box.set_value("apples\npears").run()
    assert [t.value for t in at.text] == [f"Write about {v}." for v in
                                          [s.variables["x"] for s in studio.sample_prompts(
                                              RunConfig(template="Write about {x}.",
                                                        variables={"x": ["apples", "pears"]}, seed=at.number_input(
                                                            key="studio_seed").value), None)]]
    assert server.config.requests == []
    at.text_input(key="studio_model").set_value("openai/test-model")
    at.text_input(key="studio_api_base").set_value(server.api_base)
    at.number_input(key="studio_n").set_value(8)
    at.text_input(key="studio_prompt_name").set_value("page-test").run()
    runs_before = len(demo_store.runs())
    at.button(key="studio_preview_button").click().run()
    assert no_bug(at) and not at.error
    preview = at.dataframe[0].value
    assert len(preview) == 3 and set(preview["{x}"]) <= {"apples", "pears"}
    assert preview["text"].str.startswith("Synthetic reply").all()
    assert len(demo_store.runs()) == runs_before and len(server.config.requests) == 3

    at.button(key="studio_run_button").click().run()
    assert no_bug(at)
    assert studio_progress(at) and "of 8 items" in studio_progress(at)[0]
    assert at.button(key="studio_cancel") is not None
    job = wait_for(at.session_state["studio_job"])
    assert job.state == "done", job.error
    at.run()
    assert no_bug(at)
    runs = demo_store.runs()
    assert len(runs) == runs_before + 1
    new = runs[runs["run_id"] == job.result.run_id].iloc[0]
    assert new["n_items"] == 8 and job.result.n_cached == 3  # the preview's three answers
    assert len(server.config.requests) == 8
    assert studio_progress(at) == []
    assert any("Highlighted: the newest batch" in c.value and "(8 items)" in c.value for c in at.caption)
    chart = at.get("plotly_chart")[0]
    assert "newest batch" in chart.proto.spec
    assert any("done" in s.value for s in at.success)
    # This version's metrics, its latest run counted
    metrics = at.table[0].value
    assert metrics.loc["Items", studio.THIS] == "8"
    # an edit marks the preview on screen as made from an earlier setup
    assert not any("changed since" in c.value for c in at.caption)
    at.number_input(key="studio_seed").set_value(at.number_input(key="studio_seed").value + 1).run()
    assert any(c.value.startswith("Preview: 3 items") and "changed since" in c.value for c in at.caption)


@pytest.mark.slow
def test_studio_page_shows_typed_and_stored_markup_only_escaped(hostile_store, server):
    at = open_studio()
    assert_escaped(at, "studio")
    assert not at.error, [e.value for e in at.error]
    at.text_area(key="studio_template").set_value("Write about {x}. " + ALL).run()
    at.text_area(key="studio_var_x").set_value(ALL)
    at.text_input(key="studio_model").set_value("openai/test-model")
    at.text_input(key="studio_api_base").set_value(server.api_base)
    at.number_input(key="studio_n").set_value(3)
    at.text_input(key="studio_prompt_name").set_value(ALL).run()
    at.button(key="studio_preview_button").click().run()
    assert not at.error
    assert ALL in at.dataframe[0].value["{x}"].iloc[0]  # a table shows it as text
    at.button(key="studio_run_button").click().run()
    job = wait_for(at.session_state["studio_job"])
    assert job.state == "done", job.error
    at.run()
    strings = assert_escaped(at, "studio after a run")
    assert any("Highlighted: the newest batch" in s and ESCAPED in s for s in strings)


@pytest.mark.slow
def test_cancel_stops_the_batch_and_keeps_what_was_made(store, make_server):
    server = make_server(latency_s=0.5)
    at = open_studio()
    at.text_input(key="studio_model").set_value("openai/test-model")
    at.text_input(key="studio_api_base").set_value(server.api_base)
    at.number_input(key="studio_n").set_value(200).run()
    at.button(key="studio_run_button").click().run()
    assert at.button(key="studio_run_button").disabled  # one batch at a time
    at.button(key="studio_cancel").click().run()
    job = wait_for(at.session_state["studio_job"])
    assert job.state == "cancelled"
    at.run()
    assert no_bug(at)
    made = store.runs().iloc[-1]
    assert 0 < made["n_items"] < 200 and made["status"] == "cancelled"
    assert len(server.config.requests) < 200
    assert any("cancelled" in i.value for i in at.info)
    assert any(f"({made['n_items']} items)" in c.value for c in at.caption if c.value.startswith("Highlighted"))


@pytest.mark.slow
def test_a_broken_template_is_said_once_and_nothing_can_be_run(store):
    at = open_studio()
    at.text_area(key="studio_template").set_value("broken {brace").run()
    assert no_bug(at) and not at.error
    said = [w.value for w in at.warning if "unbalanced braces" in w.value]
    assert len(said) == 1
    assert at.button(key="studio_preview_button").disabled and at.button(key="studio_run_button").disabled
    assert len(at.text) == 0
