"""Prompt versions: every change is a new version with its diff from the parent; names; trends."""

import json

import duckdb
import pytest
from conftest import ROOT

from synth.analysis.metrics import compute_run_metrics
from synth.generate.config import RunConfig
from synth.generate.ingest import restore_export
from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec
from synth.store import DuckStore
from synth.store import migrations as store_module
from synth.workflows.pipeline import generate_run
from synth.workflows.versions import (
    changes_between,
    compared_note,
    config_for,
    describe_changes,
    diff_between,
    format_param,
    list_versions,
    most_versioned,
    name_version,
    preview_version,
    readable_diff,
    resolve_version,
    save_version,
    trend_table,
    version_counts,
    version_settings,
    version_table,
    version_trends,
)


def _cfg(server, **kw) -> RunConfig:
    base = dict(template="Write about {topic}.", variables={"topic": ["tea", "rain", "maps"]}, n=3,
                model="openai/test-model", api_base=server.api_base, max_tokens=20, prompt_name="notes")
    return RunConfig(**{**base, **kw})


@pytest.mark.slow
def test_each_change_is_a_new_version_with_its_diff(store, server):
    generate_run(store, _cfg(server))
    generate_run(store, _cfg(server))  # nothing changed: the same version
    generate_run(store, _cfg(server, template="Write a haiku about {topic}."))
    generate_run(store, _cfg(server, template="Write a haiku about {topic}.", temperature=1.2))
    generate_run(store, _cfg(server, template="Write a haiku about {topic}.", temperature=1.2,
                             variables={"topic": ["tea", "rain", "maps", "owls"]}, system_prompt="Be brief."))
    v = list_versions(store, "notes")
    assert [x.version for x in v] == [1, 2, 3, 4]
    assert [x.n_runs for x in v] == [2, 1, 1, 1]
    assert [x.parent_id for x in v] == [None, v[0].prompt_id, v[1].prompt_id, v[2].prompt_id]
    assert v[0].changes == ["new prompt"]
    assert v[1].changes == ["template"]
    assert v[2].changes == ["temperature"]
    assert v[3].changes == ["system prompt", "variables"]
    assert "-Write about {topic}.\n+Write a haiku about {topic}.\n" in v[1].diff
    assert "-temperature = 0.8\n+temperature = 1.2\n" in v[2].diff
    assert "-topic = tea, rain, maps\n+topic = tea, rain, maps, owls\n" in v[3].diff
    assert "+Be brief.\n" in v[3].diff
    assert v[1].params["model"] == "openai/test-model" and v[1].params["temperature"] == 0.8
    # every run links to its version
    runs = store.runs()
    assert runs["prompt_version"].tolist() == [1, 1, 2, 3, 4]


@pytest.mark.slow
def test_versions_can_be_named_and_found_by_name(store, server):
    generate_run(store, _cfg(server))
    generate_run(store, _cfg(server, template="Describe {topic} in one line."))
    named = name_version(store, "notes v2", "one-liner")
    assert named.label == "one-liner" and named.title == "notes v2 (one-liner)"
    assert resolve_version(store, "notes@one-liner").prompt_id == named.prompt_id
    assert resolve_version(store, "one-liner").prompt_id == named.prompt_id
    assert resolve_version(store, "notes@1").version == 1
    assert resolve_version(store, named.prompt_id).version == 2
    with pytest.raises(SynthError, match="already called 'one-liner'"):
        name_version(store, "notes v1", "one-liner")
    with pytest.raises(SynthError, match="looks like a version number"):
        name_version(store, "notes v1", "v7")
    with pytest.raises(SynthError, match="No prompt version 'notes v9'"):
        resolve_version(store, "notes v9")
    assert name_version(store, "notes@one-liner", "").label is None  # cleared
    # a run can name the version it makes
    generate_run(store, _cfg(server, template="List three facts about {topic}.", version_label="facts"))
    assert resolve_version(store, "notes@facts").version == 3


@pytest.mark.slow
def test_saving_a_version_without_running_and_an_explicit_parent(store, server):
    first = save_version(store, _cfg(server))
    assert first.version == 1 and first.n_runs == 0
    assert save_version(store, _cfg(server)).prompt_id == first.prompt_id  # unchanged: not a new version
    second = save_version(store, _cfg(server, max_tokens=40))
    # edited from v1 again, after v2 exists: the parent is v1, not the newest
    third = save_version(store, _cfg(server, temperature=0.2, prompt_parent=first.prompt_id))
    assert (second.parent_id, third.parent_id) == (first.prompt_id, first.prompt_id)
    assert third.changes == ["temperature"]
    assert "-max_tokens = 20" not in third.diff
    between = diff_between(second, third)
    assert "-max_tokens = 40\n+max_tokens = 20\n" in between and "+temperature = 0.2\n" in between
    with pytest.raises(SynthError, match="no prompt to version"):
        save_version(store, RunConfig(technique="symbolic", grammar={"start": "a"}, n=1))


@pytest.mark.slow
def test_config_for_a_version_reproduces_it(store, server):
    generate_run(store, _cfg(server, temperature=0.3, seed=11))
    version = resolve_version(store, "notes v1")
    cfg = config_for(store, version, n=2)
    assert (cfg.template, cfg.temperature, cfg.seed, cfg.n, cfg.api_base) == (
        "Write about {topic}.", 0.3, 11, 2, server.api_base)
    assert cfg.prompt_spec().prompt_id == version.prompt_id


def test_fixed_samples_are_used_for_the_shared_variables(store, server):
    samples = [{"topic": "rain"}, {"topic": "rain"}, {"topic": "owls"}]
    result = generate_run(store, _cfg(server, template="{topic} in {style}",
                                      variables={"topic": ["tea"], "style": ["prose"]}, samples=samples))
    items = store.items([result.run_id])
    assert [json.loads(v) for v in items["variables"]] == [
        {"style": "prose", "topic": "rain"}, {"style": "prose", "topic": "rain"}, {"style": "prose", "topic": "owls"}]
    with pytest.raises(SynthError, match="samples must give"):
        generate_run(store, _cfg(server, samples=samples[:2]))


@pytest.mark.slow
def test_trends_follow_metrics_across_versions(store, server):
    a = generate_run(store, _cfg(server))
    b = generate_run(store, _cfg(server, template="Write a long story about {topic}."))
    c = generate_run(store, _cfg(server, template="Write a long story about {topic}."))
    trends = version_trends(store, "notes", ["distinct_2", "length_mean"])
    assert trends["version"].tolist() == [1, 2]
    assert trends["n_runs"].tolist() == [1, 2]
    assert trends["changes"].tolist() == ["new prompt", "template edited"]
    assert trends.loc[0, "length_mean"] == pytest.approx(compute_run_metrics(store, a.run_id)["length_mean"])
    mean_b = (compute_run_metrics(store, b.run_id)["distinct_2"] + compute_run_metrics(store, c.run_id)["distinct_2"]) / 2
    assert trends.loc[1, "distinct_2"] == pytest.approx(mean_b)
    with pytest.raises(SynthError, match="Unknown metric"):
        version_trends(store, "notes", ["beauty"])
    with pytest.raises(SynthError, match="No prompt called 'nope'"):
        version_trends(store, "nope")


def test_migration_gives_existing_versions_their_parents_and_diffs(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store_module, "_MIGRATIONS", [m for m in store_module._MIGRATIONS if m[0] < 5])
    DuckStore(path)
    con = duckdb.connect(str(path))
    for pid, version, template in [("p_a", 1, "Say hi"), ("p_b", 2, "Say hello")]:
        con.execute("INSERT INTO prompts VALUES (?, 'greet', ?, ?, '', '{}', now())", [pid, version, template])
    con.close()
    monkeypatch.undo()
    migrated = DuckStore(path)
    assert "m005_prompt_versions" in migrated.applied_migrations()
    v1, v2 = list_versions(migrated, "greet")
    assert (v1.parent_id, v2.parent_id) == (None, "p_a")
    assert v2.changes == ["template"] and "-Say hi\n+Say hello\n" in v2.diff


def test_preview_says_which_version_a_setup_is_or_would_make(store, server):
    first = save_version(store, _cfg(server))
    same = preview_version(store, _cfg(server))
    assert same.existing.prompt_id == first.prompt_id and same.changes == []
    changed = preview_version(store, _cfg(server, top_p=0.5))
    assert changed.existing is None and changed.parent.prompt_id == first.prompt_id
    assert changed.changes == ["top_p"] and "+top_p = 0.5\n" in changed.diff
    fresh = preview_version(store, _cfg(server, prompt_name="brand-new"))
    assert fresh.parent is None and fresh.changes == ["new prompt"]
    assert list_versions(store, "notes") == [first]  # previewing saves nothing


def test_a_recipe_does_not_carry_the_parent_version_of_one_database(server):
    cfg = _cfg(server, prompt_parent="p_0123456789abcdef", version_label="mine")
    saved = cfg.to_dict()
    assert "prompt_parent" not in saved and saved["version_label"] == "mine"
    assert RunConfig.from_dict(saved).prompt_parent is None


PARAMS = {"technique": "sampling", "model": "openai/test-model", "temperature": 0.7, "top_p": None,
          "max_tokens": 64, "sampling_mode": "product", "examples": [], "k_examples": 2, "avoid": [],
          "k_avoid": 5, "output": None}
VERSION = {"template": "Review a {product}.", "system_prompt": "", "variables": {"product": ["mug", "lamp"]},
           "params": PARAMS}


def test_changes_are_said_in_words_and_only_the_ones_made():
    assert describe_changes(None, VERSION) == ["new prompt"]
    assert describe_changes(VERSION, dict(VERSION)) == []
    assert describe_changes(VERSION, {**VERSION, "template": "Praise a {product}."}) == ["template edited"]
    edited = {"template": "Praise a {product} as a {persona}.", "system_prompt": "Be brief.",
              "variables": {"product": ["mug", "kettle", "desk", "pen", "cup"], "persona": ["chef"]},
              "params": {**PARAMS, "temperature": 0.9, "top_p": 0.5, "sampling_mode": "random",
                         "examples": ["one", "two"], "avoid": ["x"], "output": {"fields": ["title", "body"]}}}
    assert describe_changes(VERSION, edited) == [
        "template edited", "system prompt added", "variable {persona} added",
        "values of {product}: 4 added (kettle, desk, pen and 1 more), 1 removed (lamp)",
        "temperature 0.7 → 0.9", "top_p off → 0.5", "combining values every combination in turn → random draws",
        "seed examples none → 2", "texts to avoid none → 1", "declared output none → fields title, body"]
    back = describe_changes(edited, {**edited, "system_prompt": "", "variables": {"product": ["mug"]},
                                     "params": {**edited["params"], "examples": ["one", "three"]}})
    assert back == ["system prompt removed", "variable {persona} removed",
                    "values of {product}: 4 removed (kettle, desk, pen and 1 more)", "seed examples edited"]
    # A version from the demo data or an import recorded no parameters: none of them is a change.
    unrecorded = {**VERSION, "params": {}}
    assert describe_changes(unrecorded, {**VERSION, "template": "Praise a {product}."}) == ["template edited"]
    assert describe_changes({**VERSION, "params": {"temperature": 0.7}}, {**VERSION, "params": {
        **PARAMS, "temperature": 1.1}}) == ["temperature 0.7 → 1.1"]


def test_parameter_values_read_as_words():
    assert [format_param(k, v) for k, v in [("top_p", None), ("output", None), ("temperature", None),
                                             ("temperature", 0.25), ("max_tokens", 64), ("examples", ["a", "b"]),
                                             ("avoid", []), ("sampling_mode", "random"),
                                             ("output", {"schema": {"type": "object"}}), ("model", "local/m")]] == [
        "off", "none", "—", "0.25", "64", "2", "none", "random draws", "a JSON schema", "local/m"]


def _demo(store):
    """The shipped demo dataset in ``store``: runs and prompt versions as an import makes them."""
    restore_export(store, ROOT / "data" / "demo.jsonl")


def test_editing_a_version_without_parameters_names_only_the_template(store, server):
    store.save_prompt(PromptSpec(template="Write about {topic}.", variables={"topic": ["tea", "rain", "maps"]},
                                 name="notes"))  # as the demo data and imports save versions: no parameters
    preview = preview_version(store, _cfg(server, template="Write a poem about {topic}."))
    assert len(preview.changes) > 5  # the stored list counts every parameter the parent lacked
    assert preview.summary == ["template edited"]
    assert preview.note == ("notes v1 recorded no parameters (it came from the demo data or an import), "
                            "so only its prompt text is compared.")
    assert "-Write about {topic}.\n+Write a poem about {topic}.\n" in preview.lines
    assert "null" not in preview.lines and "None" not in preview.lines and "[]" not in preview.lines
    # from a version that recorded its parameters, a changed one is named with its values
    saved = save_version(store, _cfg(server))
    later = preview_version(store, _cfg(server, temperature=1.2, prompt_parent=saved.prompt_id))
    assert later.summary == ["temperature 0.8 → 1.2"] and later.note == ""
    assert "-temperature = 0.8\n+temperature = 1.2\n" in later.lines and "null" not in later.lines
    fresh = preview_version(store, _cfg(server, prompt_name="brand-new"))
    assert fresh.summary == ["new prompt"] and "top_p = off" in fresh.lines and "null" not in fresh.lines


def test_the_prompt_with_the_most_versions_is_the_one_to_open(store, tmp_path):
    assert most_versioned(store) is None and version_counts(store) == {}
    for name, template in [("alpha", "A {x}"), ("beta", "B {x}"), ("beta", "B2 {x}"), ("gamma", "G {x}"),
                           ("gamma", "G2 {x}")]:
        store.save_prompt(PromptSpec(template=template, variables={"x": ["1"]}, name=name))
    assert version_counts(store) == {"alpha": 1, "beta": 2, "gamma": 2}
    assert most_versioned(store) == "gamma"  # of equals without runs, the one with the newest version
    demo = DuckStore(tmp_path / "demo.duckdb")
    _demo(demo)
    assert version_counts(demo) == {"product-descriptions": 1, "reviews": 2, "support-questions": 2}
    assert most_versioned(demo) == "support-questions"  # of equals, the one run last (14:51, reviews 14:48)
    demo.save_prompt(PromptSpec(template="Review a {product}.", variables={"product": ["mug"]}, name="reviews"))
    assert most_versioned(demo) == "reviews"  # now three versions


def test_the_version_table_of_the_demo_reads_without_missing_values(store):
    _demo(store)
    table = version_table(store, "reviews")
    assert list(table.columns) == ["version", "name", "runs", "model", "temperature", "created", "id", "what changed"]
    assert table.to_dict(orient="records") == [
        {"version": 1, "name": "—", "what changed": "new prompt", "runs": 2, "model": "local/smollm2-135m",
         "temperature": "0.7, 0.2", "created": "2026-11-21 14:46", "id": "p_702d1714bdbfffa8"},
        {"version": 2, "name": "—",
         "what changed": "template edited; variable {aspect} added; values of {product}: 3 removed "
                         "(phone case, electric kettle, yoga mat); variable {tone} added",
         "runs": 1, "model": "local/smollm2-135m", "temperature": "0.9", "created": "2026-11-21 14:48",
         "id": "p_bd5eec4ed2f66aa5"}]
    v1, v2 = list_versions(store, "reviews")
    assert v2.summary == changes_between(v1, v2) == table["what changed"][1].split("; ")
    assert compared_note(v1, v2).startswith("reviews v1 recorded no parameters")
    diff = readable_diff(v1, v2)
    assert diff.startswith("--- reviews v1\n+++ reviews v2\n")
    assert "+{tone} = enthusiastic, disappointed, neutral\n" in diff and "[parameters]" not in diff
    assert version_settings(v1).empty
    # a version saved with its parameters lists them in words
    store.save_prompt(PromptSpec(template="Review a {product}.", variables={"product": ["mug"]}, name="reviews",
                                 params=PARAMS))
    v3 = list_versions(store, "reviews")[-1]
    assert dict(zip(version_settings(v3)["id"], version_settings(v3)["value"])) == {
        "technique": "sampling", "model": "openai/test-model", "temperature": "0.7", "top_p": "off",
        "max_tokens": "64", "sampling_mode": "every combination in turn", "examples": "none", "k_examples": "2",
        "avoid": "none", "k_avoid": "5", "output": "none"}
    assert version_table(store, "reviews")["temperature"].tolist() == ["0.7, 0.2", "0.9", "0.7"]


def test_the_trend_table_shows_labels_units_intervals_and_dashes():
    import pandas as pd

    trends = pd.DataFrame([
        {"prompt_id": "p1", "version": 1, "title": "notes v1", "changes": "new prompt", "n_runs": 1, "n_items": 40,
         "common_n": 20, "comparable": "", "distinct_2": 0.5, "distinct_2_common": 0.45,
         "distinct_2_common_low": 0.4, "distinct_2_common_high": 0.5, "judge_score_mean": None},
        {"prompt_id": "p2", "version": 2, "title": "notes v2", "changes": "template edited", "n_runs": 2,
         "n_items": 5, "common_n": 20, "comparable": "too small to compare", "distinct_2": 0.9,
         "distinct_2_common": None, "distinct_2_common_low": None, "distinct_2_common_high": None,
         "judge_score_mean": 4.5}])
    table = trend_table(trends, ["distinct_2", "judge_score_mean"])
    assert list(table.columns) == ["version", "runs", "items", "Word-pair variety (distinct_2)",
                                   "Judge score (judge_score_mean)", "what changed"]
    assert table.iloc[:, 3].tolist() == ["45 % (40 % to 50 %)", "too small to compare"]
    assert table.iloc[:, 4].tolist() == ["—", "4.5"]
    assert table["what changed"].tolist() == ["new prompt", "template edited"]
