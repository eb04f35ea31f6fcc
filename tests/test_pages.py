"""Every page, headless, through Streamlit's AppTest, on real data and the real embedded model."""

import re
import time

import pytest
from conftest import ROOT, wait_for_jobs
from streamlit.testing.v1 import AppTest

import synth.workflows.pipeline
from synth.analysis.metrics import METRIC_NAMES
from synth.kernel.text import literal_markdown

TIMEOUT = 240


def no_bug(at: AppTest) -> bool:
    """No exception: neither one AppTest saw nor one the app caught and showed as a bug."""
    from pages.widgets import BUG_NOTE

    return not at.exception and not any(BUG_NOTE in e.value for e in at.error)


def open_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    return at


def charts(at):
    return at.get("plotly_chart")


def test_explore_is_the_first_screen_with_a_populated_map(demo_store, monkeypatch):
    calls = []
    real = synth.workflows.pipeline.map_points
    monkeypatch.setattr(synth.workflows.pipeline, "map_points", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = open_app()
    assert no_bug(at)
    assert at.title[0].value == "Diversity map"
    # The map, then the linked histograms beside it (the demo has no judge scores: no chart for them).
    assert [c.key for c in charts(at)] == ["explore_map", "explore_chart_length_0", "explore_chart_cluster_size_0"]
    assert "Intrinsic evaluation" in at.caption[0].value
    n = demo_store.count_items()
    assert any(f"{n} items" in c.value for c in at.caption)
    assert at.selectbox(key="explore_color_by").value == "run"
    assert calls == [1]
    # A new colour redraws the figure from cached points: no re-embedding, no re-projection.
    at.selectbox(key="explore_color_by").set_value("prompt version").run()
    assert no_bug(at) and len(charts(at)) == 3
    assert calls == [1]


def test_explore_on_an_empty_database_says_what_to_do(store):
    at = open_app()
    assert no_bug(at)
    assert "No items yet" in at.info[0].value


def test_generate_page_adds_items_with_the_embedded_model(demo_store):
    before = demo_store.count_items()
    at = open_app()
    at.switch_page("pages/generate.py").run()
    assert no_bug(at)
    for key in ("generate_model", "generate_api_base", "generate_prompt_name", "generate_run_name"):
        assert at.text_input(key=key) is not None
    assert at.text_input(key="generate_model").value == "local/smollm2-135m"
    assert at.text_area(key="generate_var_product").value
    at.number_input(key="generate_n").set_value(2)
    at.number_input(key="generate_max_tokens").set_value(16)
    at.text_input(key="generate_run_name").set_value("from the page")
    at.button(key="generate_button").click().run()
    wait_for_jobs(at)
    assert no_bug(at)
    assert not at.error
    assert "from the page" in at.success[0].value
    assert demo_store.count_items() == before + 2
    runs = demo_store.runs()
    assert runs.iloc[-1]["name"] == "from the page" and runs.iloc[-1]["n_items"] == 2
    # The items stay on screen, beside the variable values that made them and how they ended.
    made = at.dataframe[-1].value
    assert list(made["#"]) == [1, 2] and set(made["text"]) == set(demo_store.items([runs.iloc[-1]["run_id"]])["text"])
    assert "{product}" in made.columns and made["ending"].isin(["finished", "cut off at max tokens"]).all()


@pytest.mark.parametrize("setup, message", [
    (lambda at: at.text_area(key="generate_template_sampling").set_value(""), "template is empty"),
    (lambda at: at.text_input(key="generate_model").set_value("openai/gpt-4o-mini"), "needs OPENAI_API_KEY"),
    (lambda at: at.text_area(key="generate_var_product").set_value(""), "no values were given for: product"),
])
def test_generate_page_bad_input_shows_an_error_and_writes_nothing(demo_store, setup, message):
    before = demo_store.count_items()
    at = open_app()
    at.switch_page("pages/generate.py").run()
    setup(at)
    at.run()
    at.button(key="generate_button").click().run()
    assert no_bug(at)
    assert literal_markdown(message) in at.error[0].value  # the message, shown literally
    assert demo_store.count_items() == before
    # The app keeps running: other pages still work.
    at.switch_page("pages/explore.py").run()
    assert no_bug(at) and charts(at)[0].key == "explore_map"


def test_generate_page_reports_a_bad_template_as_you_type(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    at.text_area(key="generate_template_sampling").set_value("broken {brace").run()
    assert no_bug(at)
    assert "unbalanced braces" in at.error[0].value


def test_explore_filters_the_map(demo_store):
    at = open_app()
    runs = demo_store.runs()
    first = runs["run_id"].iloc[0]
    at.multiselect(key="filters_runs").set_value([first]).run()
    assert no_bug(at)
    n = int(runs["n_items"].iloc[0])
    assert any(f"{n} of {demo_store.count_items()} items shown" in c.value for c in at.caption)
    assert dict(at.query_params) == {"run": first}  # the view can be shared as a link


def test_export_page_offers_the_filtered_view(demo_store):
    at = open_app()
    at.switch_page("pages/export.py").run()
    assert no_bug(at)
    assert f"{demo_store.count_items()} of {demo_store.count_items()} items" in at.markdown[0].value
    n = demo_store.count_items()
    assert [b.proto.label for b in at.get("download_button")] == [
        f"Download {n} items as JSON Lines (.jsonl)", f"Download the report of {n} items (HTML)"]


def test_near_duplicate_inspector_keeps_and_drops(demo_store):
    at = open_app()
    at.switch_page("pages/duplicates.py").run()
    assert no_bug(at)
    at.slider(key="duplicates_threshold").set_value(0.9).run()
    keep_buttons = [b for b in at.button if b.key and b.key.startswith("duplicates_keep_a_")]
    assert keep_buttons, "the demo data has near-duplicates at 0.9"
    keep_buttons[0].click().run()
    assert no_bug(at)
    statuses = demo_store.items().set_index("item_id")["status"]
    item_a, item_b = keep_buttons[0].key[len("duplicates_keep_a_"):].split("_it_")
    assert statuses[item_a] == "accepted" and statuses["it_" + item_b] == "rejected"



def test_generate_page_runs_every_technique_it_lists(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    options = at.selectbox(key="generate_technique").options
    assert options == ["Sampling from a prompt", "Back-translation", "Transform existing data",
                       "Symbolic (grammar, no LLM)"]
    at.selectbox(key="generate_technique").set_value("symbolic").run()
    assert no_bug(at)
    at.number_input(key="generate_n").set_value(12)
    at.checkbox(key="generate_unique").check()
    at.button(key="generate_button").click().run()
    wait_for_jobs(at)
    assert no_bug(at) and not at.error
    runs = store.runs()
    assert runs.iloc[-1]["model"] == "symbolic" and runs.iloc[-1]["n_items"] == 12
    assert store.items()["text"].nunique() == 12


def test_generate_page_warns_about_a_grammar_as_it_is_typed_and_refuses_a_bomb(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    at.selectbox(key="generate_technique").set_value("symbolic").run()
    assert not at.warning  # the shipped example grammar is clean
    at.text_area(key="generate_grammar").set_value(
        "start: 'Hello {name}'\nrules:\n  name: [Ann, Bo]\n").run()
    assert no_bug(at) and any(literal_markdown("use <name> to refer to a rule") in w.value for w in at.warning)
    rules = "\n".join(f"  r{i}: ['<r{i + 1}><r{i + 1}>']" for i in range(1, 26)) + "\n  r26: [xxxx]"
    at.text_area(key="generate_grammar").set_value(f"start: '<r1>'\nrules:\n{rules}\n").run()
    assert any("134,217,728 characters" in w.value for w in at.warning)
    at.button(key="generate_button").click().run()
    assert no_bug(at) and any("SYNTH\\_MAX\\_ITEM\\_CHARS" in e.value or "SYNTH_MAX_ITEM_CHARS" in e.value
                              for e in at.error)
    assert store.count_items() == 0


def test_generate_page_back_translation_from_pasted_text(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    at.selectbox(key="generate_technique").set_value("back_translation").run()
    at.radio(key="generate_source_kind").set_value("pasted").run()
    at.text_area(key="generate_source_text").set_value("Tea is brewed with hot water.")
    at.number_input(key="generate_n").set_value(0)
    at.number_input(key="generate_max_tokens").set_value(16)
    at.button(key="generate_button").click().run()
    wait_for_jobs(at)
    assert no_bug(at) and not at.error, [e.value for e in at.error]
    item = store.items().iloc[0]
    assert item["technique"] == "back_translation" and item["source_ref"] == "pasted#1"


def test_generate_page_offers_the_setup_as_a_recipe(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    buttons = at.get("download_button")
    assert len(buttons) == 1 and buttons[0].proto.label == "Save as recipe"


def test_review_page_lists_a_runs_items_and_judges_them(demo_store, tmp_path):
    small_file = tmp_path / "two.csv"
    small_file.write_text("text\nA kettle that boils fast.\nA tent that leaks.\n")
    small = synth.workflows.pipeline.import_run(demo_store, small_file, run_name="two items").run_id
    at = open_app()
    at.switch_page("pages/review.py").run()
    assert no_bug(at)
    runs = demo_store.runs()
    assert at.selectbox(key="review_run").value == runs["run_id"].iloc[-1]
    from synth.workflows import review

    table = at.dataframe[0].value  # the shown items (AppTest can read the table, not select rows in it)
    assert list(table.columns) == review.TABLE_COLUMNS
    assert len(table) == runs["n_items"].iloc[-1]
    assert at.multiselect(key="review_statuses").value == ["new", "imported", "accepted", "rejected", "edited"]
    at.selectbox(key="review_run").set_value(small).run()
    at.text_area(key="review_rubric").set_value("on_task: does what was asked")
    at.button(key="review_judge").click().run()
    wait_for_jobs(at)  # a background job: its result shows when it is done
    assert no_bug(at) and not at.error, [e.value for e in at.error]
    n = int(runs.set_index("run_id").loc[small, "n_items"])
    assert f"Judged {n} items" in at.success[0].value
    assert len(demo_store.frame("SELECT * FROM judgements")) == n


def test_review_page_on_an_empty_database(store):
    at = open_app()
    at.switch_page("pages/review.py").run()
    assert no_bug(at) and "No runs yet" in at.info[0].value


def _figure(at):
    import json

    return json.loads(charts(at)[0].proto.spec)


def _values(array) -> list:
    """A plotly figure array, which plotly may send as base64 binary."""
    import base64

    import numpy as np

    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_explore_colours_sizes_clusters_and_shows_the_layout(demo_store):
    at = open_app()
    assert no_bug(at)
    assert at.number_input(key="explore_n_neighbors").value == 15
    assert at.number_input(key="explore_min_dist").value == 0.1
    assert any("trustworthiness" in c.value and "n_neighbors=15" in c.value for c in at.caption)
    at.selectbox(key="explore_color_by").set_value("cluster").run()
    names = {t["name"] for t in _figure(at)["data"]}
    assert len(names) >= 2 and "(none)" not in names
    at.selectbox(key="explore_color_by").set_value("length (words)").run()
    trace = _figure(at)["data"][0]
    assert trace["marker"]["colorscale"] and len(_values(trace["marker"]["color"])) == demo_store.count_items()
    at.selectbox(key="explore_size_by").set_value("length (words)").run()
    assert no_bug(at) and len(set(_values(_figure(at)["data"][0]["marker"]["size"]))) > 1
    at.radio(key="explore_cluster_method").set_value("hdbscan").run()
    assert no_bug(at)
    assert set(demo_store.frame("SELECT method FROM clusterings")["method"]) == {"kmeans", "hdbscan"}
    # Hover text is escaped: generated text is shown as text, never as HTML.
    assert all("<script" not in h for t in _figure(at)["data"] for h in t.get("hovertext", []))


def test_explore_refit_with_new_parameters_stores_a_new_layout(demo_store):
    at = open_app()
    layouts = len(demo_store.frame("SELECT layout_id FROM layouts"))
    at.number_input(key="explore_n_neighbors").set_value(5)
    at.button(key="explore_refit").click().run()
    wait_for_jobs(at)  # a background job: the map changes when it is done
    assert no_bug(at)
    assert len(demo_store.frame("SELECT layout_id FROM layouts")) == layouts + 1
    assert any("n_neighbors=5" in c.value for c in at.caption)


def test_explore_shows_coverage_against_reference_data(demo_store, tmp_path):
    from synth.workflows.pipeline import import_run

    real = tmp_path / "real.csv"
    real.write_text("text\n" + "".join(f"A real question about a refund for order {i}?\n" for i in range(12)))
    import_run(demo_store, real, reference=True)
    at = open_app()
    assert no_bug(at)
    labels = [m.label for m in at.metric]
    assert "Recall: reference items reached" in labels and "Precision: synthetic items near real data" in labels
    spec = _figure(at)
    assert any(t["name"] == "reference (real)" and t["marker"]["color"] == "#7F7F7F" for t in spec["data"])
    assert at.button(key="explore_fill_gap") is not None


def test_generate_page_shows_the_models_licence_and_the_prompt_version(store):
    at = open_app()
    at.switch_page("pages/generate.py").run()
    assert no_bug(at)
    assert any("Output licence: allowed" in c.value and "Apache-2.0" in c.value for c in at.sidebar.caption)
    at.text_input(key="generate_model").set_value("openai/gpt-4o-mini").run()
    assert any("forbidden for competing models" in w.value for w in at.sidebar.warning)
    at.text_input(key="generate_model").set_value("someprovider/new-model").run()
    assert any("Output licence: unknown" in i.value for i in at.sidebar.info)
    at.text_input(key="generate_model").set_value("local/smollm2-135m").run()
    assert any("new version" in c.value and "new prompt" in c.value for c in at.caption)
    at.text_input(key="generate_version_label").set_value("first-try").run()
    at.button(key="generate_save_version").click().run()
    assert no_bug(at)
    from synth.workflows.versions import list_versions

    saved = list_versions(store, "my-reviews")  # the page's default name (the demo's "reviews" is another prompt)
    assert [(v.version, v.label, v.n_runs) for v in saved] == [(1, "first-try", 0)]
    title = literal_markdown("my-reviews v1 (first-try)")  # a user's name, shown literally
    assert any(f"Prompt version: **{title}**" in c.value for c in at.caption)
    at.slider(key="generate_temperature").set_value(1.3).run()
    assert any(f"edited from {title}: temperature 0.8 → 1.3." in c.value for c in at.caption)


def test_prompts_page_lists_versions_with_diffs_names_and_trends(demo_store):
    from synth.workflows.versions import list_versions, most_versioned, prompt_names, readable_diff, version_trends

    name = next(n for n in prompt_names(demo_store) if len(list_versions(demo_store, n)) == 2)
    at = open_app()
    at.switch_page("pages/prompts.py").run()
    assert at.selectbox(key="prompts_name").value == most_versioned(demo_store)  # the richest history first
    at.selectbox(key="prompts_name").set_value(name).run()
    assert no_bug(at)
    assert len(at.dataframe[0].value) == 2 and "None" not in at.dataframe[0].value.astype(str).to_numpy()
    v1, v2 = list_versions(demo_store, name)
    said = at.markdown[0].value  # what changed, in words
    assert said.startswith(f"**{name} v2** compared with {name} v1:") and v2.summary[0] == "template edited"
    assert all(f"- {literal_markdown(w)}" in said for w in v2.summary)
    assert at.code[0].value == readable_diff(v1, v2).rstrip("\n") and "null" not in at.code[0].value
    at.text_input(key="prompts_label").set_value("the second")
    next(b for b in at.button if b.label == "Save name").click().run()
    assert no_bug(at)
    assert list_versions(demo_store, name)[1].label == "the second"
    assert len(charts(at)) == 1
    table = at.dataframe[-1].value
    assert table["version"].tolist() == [f"{name} v1", f"{name} v2"]
    # the size-dependent metrics at one common size (half the smaller version's largest run), with intervals
    assert table["Distinct items (vendi_score)"].str.fullmatch(r"[\d.]+ \([\d.]+ to [\d.]+\)").all()
    trends = version_trends(demo_store, name)
    assert set(trends["common_n"]) == {int(trends["n_items"].min()) // 2} and set(trends["comparable"]) == {""}
    assert (trends["vendi_score_common_low"] <= trends["vendi_score_common"]).all()
    assert (trends["vendi_score_common"] <= trends["vendi_score_common_high"]).all()


def test_compare_page_two_runs_side_by_side(demo_store):
    runs = demo_store.runs()
    at = open_app()
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="compare_a").set_value(runs["run_id"].iloc[0])
    at.selectbox(key="compare_b").set_value(runs["run_id"].iloc[1]).run()
    assert no_bug(at) and not at.error
    metrics = at.dataframe[0].value
    metrics = metrics.data if hasattr(metrics, "data") else metrics
    assert set(metrics["change"]) <= {"", "better", "worse", "same", "no clear difference"}
    assert len(metrics) == len(METRIC_NAMES) + 1  # and cluster_entropy on a clustering of the pair alone
    assert "cluster_entropy_pair" in set(metrics["metric"])
    # the size-dependent metrics are judged at a common size, shown with their intervals
    common = at.dataframe[1].value
    common = common.data if hasattr(common, "data") else common
    changes = dict(zip(metrics["metric"], metrics["change"]))
    assert all(changes[m] == c for m, c in zip(common["metric"], common["change"]))
    assert set(common["change"]) <= {"better", "worse", "no clear difference"} and common["A"].str.count(r"\[").eq(1).all()
    assert len(charts(at)) == 2  # one map coloured by side, the cluster shares
    assert any("Not a controlled pair" in w.value for w in at.warning)


def test_compare_page_runs_a_new_version_on_the_same_samples(store, server):
    from synth.generate.config import RunConfig
    from synth.workflows.pipeline import generate_run
    from synth.workflows.versions import save_version

    cfg = dict(template="Describe {topic}.", variables={"topic": ["tea", "rain", "owls"]}, n=3,
               model="openai/test-model", api_base=server.api_base, max_tokens=20, prompt_name="explain")
    generate_run(store, RunConfig(**cfg))
    v2 = save_version(store, RunConfig(**{**cfg, "template": "Explain {topic} to a child."}))
    v1_id = store.prompts("explain")["prompt_id"].iloc[0]
    at = open_app()
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="compare_a").set_value(v1_id)
    at.selectbox(key="compare_b").set_value(v2.prompt_id).run()
    at.button(key="compare_run").click().run()
    assert no_bug(at) and not at.error
    assert any("Paired: the same n (3)" in s.value for s in at.success)
    assert store.prompts("explain")["n_runs"].tolist() == [1, 1]


def test_export_page_offers_a_dataset_folder_licences_and_a_report(demo_store):
    at = open_app()
    at.switch_page("pages/export.py").run()
    at.radio(key="export_format").set_value("hf_dataset").run()
    assert no_bug(at)
    n = demo_store.count_items()
    assert at.get("download_button")[0].proto.label == f"Download {n} items as a Hugging Face dataset (.zip)"
    notes = next(d.value for d in at.dataframe if "model" in d.value.columns and "training_use" in d.value.columns)
    assert set(notes["model"]) == set(demo_store.items()["model"].fillna("(none)"))
    known = at.dataframe[-1].value  # the whole table, known families only
    assert "openai" in set(known["key"]) and "unknown" not in set(known["training_use"])
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[-1] == f"Download the report of {n} items (HTML)"  # one click: built on the click
    at.radio(key="export_set").set_value("accepted").run()
    accepted = int(demo_store.items()["status"].isin(["accepted", "edited"]).sum())
    assert any(f"{accepted} of {demo_store.count_items()} items in the set" in m.value for m in at.markdown) or \
        (accepted == 0 and any("No item is in this set" in i.value for i in at.info))


def test_presentation_mode_hides_the_settings(demo_store):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["present"] = "1"
    at.run()
    assert no_bug(at)
    assert at.title[0].value == "Diversity map"
    assert [c.key for c in charts(at)] == ["explore_map"]  # no linked charts for an audience
    assert len(at.sidebar.selectbox) == 0 and len(at.sidebar.multiselect) == 0 and len(at.sidebar.button) == 0
    for _ in range(30):  # the figures are measured on a thread: shown within 2 s, else on a later run
        if len(at.metric) >= 4 and at.metric[0].value != "…":
            break
        time.sleep(1)
        at.run()
    assert len(at.metric) >= 4
    # plain words and units for an audience: no layout parameters, shares as percentages
    shown = " ".join(c.value for c in at.caption) + " ".join(f"{m.label} {m.value}" for m in at.metric)
    for jargon in ("UMAP", "min_dist", "n_neighbors", "trustworthiness", "cluster_entropy", "vendi", "None", "nan"):
        assert jargon not in shown
    figures = {m.label: m.value for m in at.metric}
    assert figures["Near-duplicates"].endswith(" %")
    assert re.fullmatch(r"\d+ of \d+", figures["Topics used (effectively)"])  # topics used of those found
    assert "Each dot is one item" in shown
    assert any("Leave presentation mode" == b.label for b in at.button)
    at.button(key="common_unpresent").click().run()
    assert "present" not in at.query_params
    assert at.sidebar.selectbox(key="explore_color_by") is not None
