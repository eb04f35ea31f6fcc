import json

import pytest
import yaml
from conftest import ROOT
from openai_server import json_reply

from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.workflows.recipes import (
    RECIPES,
    config_from_recipe,
    load_recipe,
    recipe_text,
    run_recipe,
    shipped_recipes,
)


def test_a_run_config_round_trips_through_a_recipe_file(tmp_path):
    cfg = RunConfig(template="About {t}", variables={"t": ["a", "b"]}, n=7, temperature=0.3,
                    examples=["x"], output={"fields": ["q"]}, concurrency=9, budget_usd=0.5)
    text = recipe_text(cfg)
    assert "technique: sampling" in text and "max_tokens" not in text  # defaults are left out
    (tmp_path / "r.yaml").write_text(text)
    assert config_from_recipe(load_recipe(tmp_path / "r.yaml")) == cfg
    (tmp_path / "r.json").write_text(json.dumps(cfg.to_dict()))
    assert config_from_recipe(load_recipe(tmp_path / "r.json")) == cfg


def test_uploaded_bytes_never_go_into_a_recipe():
    cfg = RunConfig(technique="transform", source={"kind": "file", "path": "x.csv", "data": b"text\nhi\n"})
    assert "data" not in yaml.safe_load(recipe_text(cfg))["source"]


@pytest.mark.parametrize("text, message", [
    ("technique: sampling\ntemplate: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("technique: sampling\ntemperture: 0.5\n", "Unknown setting.*temperture"),
    ("recipe: nope\n", "Unknown recipe 'nope'"),
    ("recipe: onboarding_qa\nparams: {repository: x}\n", "Unknown param.*repository"),
    ("recipe: onboarding_qa\nmodle: x\n", "Unknown key.*modle"),
])
def test_bad_recipes_say_what_is_wrong(store, text, message):
    with pytest.raises(SynthError, match=message):
        run_recipe(store, load_recipe(text=text))


def test_missing_recipe_file():
    with pytest.raises(SynthError, match="Recipe file not found"):
        load_recipe(ROOT / "nope.yaml")


def test_every_shipped_recipe_is_valid():
    shipped = shipped_recipes()
    assert {"onboarding_qa", "tool_routing", "support_grammar", "reviews_sampling"} <= set(shipped)
    for name, path in shipped.items():
        data = load_recipe(path)
        if "recipe" in data:
            assert data["recipe"] in RECIPES
            assert set(data.get("params", {})) <= set(RECIPES[data["recipe"]].defaults)
        else:
            config_from_recipe(data).validate()


@pytest.mark.slow
def test_the_symbolic_recipe_runs_offline(store):
    [result] = run_recipe(store, load_recipe(shipped_recipes()["support_grammar"]))
    assert result.n_items == 200 and result.model == "symbolic" and result.cost_usd == 0.0
    assert store.items()["text"].nunique() == 200


@pytest.mark.slow
def test_onboarding_qa_makes_question_summary_file_triples(make_server, store):
    srv = make_server()
    results = run_recipe(store, load_recipe(shipped_recipes()["onboarding_qa"]),
                         overrides={"model": "openai/test-model", "api_base": srv.api_base})
    summaries, questions = results
    assert summaries.n_items == 6 and questions.n_items == 12
    items = store.items([questions.run_id])
    summary_items = store.items([summaries.run_id]).set_index("item_id")
    for row in items.itertuples():
        triple = json.loads(row.fields)
        assert triple["question"] == row.text
        assert triple["summary"] == summary_items.loc[row.source_ref, "text"]
        assert triple["file_path"] == summary_items.loc[row.source_ref, "source_ref"]
        assert (ROOT / triple["file_path"]).is_file()
    assert {json.loads(f)["file_path"] for f in items["fields"]} <= {"README.md"} | {
        str(p.relative_to(ROOT)) for p in (ROOT / "synth").rglob("*.py")}


@pytest.mark.slow
def test_tool_routing_labels_requests_and_judges_the_labels(make_server, store):
    srv = make_server(reply=json_reply)
    [result] = run_recipe(store, load_recipe(shipped_recipes()["tool_routing"]),
                          overrides={"model": "openai/test-model", "api_base": srv.api_base})
    assert result.n_items == 12  # 4 tools x 3 requests
    items = store.items([result.run_id])
    labels = [json.loads(f) for f in items["fields"]]
    assert [l["tool"] for l in labels] == ["search_docs"] * 3 + ["call_api"] * 3 + ["ask_user"] * 3 + \
        ["handoff_to_human"] * 3
    assert labels[3]["arguments"].keys() == {"method", "path"}
    assert all(l["request"] == t for l, t in zip(labels, items["text"]))
    judgements = store.frame("SELECT criteria, rubric FROM judgements")
    assert len(judgements) == 12
    assert set(json.loads(judgements["criteria"][0])) == {"right_tool", "arguments_fit"}
    assert "handoff_to_human" in judgements["rubric"][0]
    assert result.judge["n_valid"] == 12 and 0 <= result.judge["pass_rates"]["right_tool"] <= 1


@pytest.mark.slow
def test_both_recipes_run_offline_with_the_embedded_model(store):
    results = run_recipe(store, {**load_recipe(shipped_recipes()["onboarding_qa"]),
                                 "params": {"include": ["README.md"], "max_files": 1, "questions_per_file": 1}})
    assert [r.n_items for r in results] == [1, 1]
    triple = json.loads(store.items([results[1].run_id])["fields"][0])
    assert triple["file_path"] == "README.md" and triple["question"] and triple["summary"]
    tools = load_recipe(shipped_recipes()["tool_routing"])
    tools["params"] = {**tools["params"], "tools": tools["params"]["tools"][:1], "requests_per_tool": 1}
    [routing] = run_recipe(store, tools)
    assert routing.n_items == 1 and routing.judge["n_items"] == 1
    assert json.loads(store.items([routing.run_id])["fields"][0])["tool"] == "search_docs"
