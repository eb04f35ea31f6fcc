"""Prompt versions: every change is a new version with its diff from the parent; names; trends."""

import json

import duckdb
import pytest

from synth.analysis.metrics import compute_run_metrics
from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.store import DuckStore
from synth.store import migrations as store_module
from synth.workflows.pipeline import generate_run
from synth.workflows.versions import (
    config_for,
    diff_between,
    list_versions,
    name_version,
    preview_version,
    resolve_version,
    save_version,
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
    assert trends["changes"].tolist() == ["new prompt", "template"]
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
