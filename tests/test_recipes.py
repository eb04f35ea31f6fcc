import json
import re

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
    ("technique: sampling\ntemperture: 0.5\n", "`temperture`: unknown setting .*did you mean `temperature`"),
    ("recipe: nope\n", "`recipe`: unknown recipe \\(got 'nope'\\); expected one of 'onboarding_qa', 'tool_routing'"),
    ("recipe: onboarding_qa\nparams: {repository: x}\n", "`params.repository`: unknown setting .*one of repo, "),
    ("recipe: onboarding_qa\nmodle: x\n", "`modle`: unknown setting .*did you mean `model`"),
])
def test_bad_recipes_say_what_is_wrong(store, text, message):
    with pytest.raises(SynthError, match=message):
        run_recipe(store, load_recipe(text=text))


TEMPLATE_RUN = "technique: sampling\ntemplate: 'About {x}'\nvariables: {x: [a, b]}\n"


# One rule per case: the value, the field the message names, and what it says was expected.
@pytest.mark.parametrize("line, field, expected", [
    ("n: ten", "n", "not a whole number (got 'ten'); expected a whole number"),
    ("n: 2.5", "n", "not a whole number (got 2.5)"),
    ("n: true", "n", "not a whole number (got True)"),
    ("temperature: hot", "temperature", "not a number (got 'hot'); expected a number"),
    ("temperature: 1e-3", "temperature", "not a number (got '1e-3'); expected a number, e.g. 0.7, without quotes"),
    ("concurrency: [1]", "concurrency", "not a whole number (got [1])"),
    ("variables: [a, b]", "variables", "not a mapping (got ['a', 'b'])"),
    ("variables: {x: abc}", "variables.x", "not a list (got 'abc'); expected a list, e.g. [a, b] (one value"),
    ("variables: {x: [[a]]}", "variables.x[0]", "not text (got ['a'])"),
    ("grammar: 42", "grammar", "wrong type (got 42); expected a mapping with start and rules, or the grammar"),
    ("source: 5", "source", "not a mapping (got 5)"),
    ("output: [q, a]", "output", "not a mapping"),
    ("unique: 1", "unique", "not true or false (got 1)"),
    ("examples: one example", "examples", "not a list"),
    ("model: 7", "model", "not text (got 7)"),
    ("technique: sampler", "technique", "unknown technique (got 'sampler'); expected one of 'sampling', "),
    ("sampling_mode: all", "sampling_mode", "unknown sampling mode (got 'all'); expected one of 'product', 'random'"),
    ("samples: [{x: [a]}]", "samples[0].x", "not text"),
])
def test_each_wrong_type_in_a_recipe_names_its_field(line, field, expected):
    text = TEMPLATE_RUN + line + "\n"
    with pytest.raises(SynthError, match=re.escape(f"- `{field}`: {expected}")):
        load_recipe(text=text)
    with pytest.raises(SynthError, match=re.escape(f"`{field}`: {expected}")):
        config_from_recipe(yaml.safe_load(text))  # the Generate page's way in, without load_recipe


def test_a_recipe_with_three_mistakes_lists_all_three():
    with pytest.raises(SynthError) as caught:
        load_recipe(text=TEMPLATE_RUN + "n: ten\ntemperature: hot\nconcurrency: [1]\n")
    lines = str(caught.value).splitlines()
    assert lines[0] == "The recipe has 3 problems; fix them and try again:"
    assert lines[1:] == ["- `n`: not a whole number (got 'ten'); expected a whole number, e.g. 5",
                         "- `temperature`: not a number (got 'hot'); expected a number, e.g. 0.7",
                         "- `concurrency`: not a whole number (got [1]); expected a whole number, e.g. 5"]


def test_numbers_among_variable_values_are_their_text():
    cfg = config_from_recipe(load_recipe(text="template: 'In {year}'\nvariables: {year: [2023, 2024.5, yes]}\n"))
    assert cfg.variables == {"year": ["2023", "2024.5", "True"]}
    assert cfg.prompt_spec().variables == {"year": ["2023", "2024.5", "True"]}


def test_a_saved_run_configuration_is_checked_too():
    with pytest.raises(SynthError, match="The run configuration has 1 problem.*\n- `n`: not a whole number"):
        RunConfig.from_dict({"n": "5"})
    assert RunConfig.from_dict({"n": 5, "temperature": 1}).temperature == 1  # a whole number is a number


def test_range_rules_are_listed_together():
    with pytest.raises(SynthError) as caught:
        RunConfig(template="x", n=-1, temperature=5.0, max_tokens=0).validate()
    message = str(caught.value)
    assert message.startswith("The run configuration has 3 problems:")
    for rule in ("number of items must be between 1", "Temperature must be between 0 and 2, got 5.0",
                 "Max tokens must be between 1 and"):
        assert rule in message
    with pytest.raises(SynthError, match="^Temperature must be between 0 and 2, got 3.0.$"):
        RunConfig(template="x", temperature=3.0).validate()  # one problem: its own message, as before


@pytest.mark.parametrize("text, field, expected", [
    ("recipe: onboarding_qa\nparams: {max_files: many}\n", "params.max_files", "not a whole number (got 'many')"),
    ("recipe: onboarding_qa\nparams: {include: '*.py'}\n", "params.include", "not a list (got '*.py')"),
    ("recipe: onboarding_qa\nparams: 5\n", "params", "not a mapping (got 5)"),
    ("recipe: onboarding_qa\ntemperature: hot\n", "temperature", "not a number (got 'hot')"),
    ("recipe: [onboarding_qa]\n", "recipe", "not text (got ['onboarding_qa'])"),
    ("recipe: tool_routing\nparams: {requests_per_tool: '3'}\n", "params.requests_per_tool", "not a whole number"),
    ("recipe: tool_routing\nparams: {personas: one}\n", "params.personas", "not a list (got 'one')"),
    ("recipe: tool_routing\nparams: {tools: [{name: a}]}\n", "params.tools[0].description", "missing; expected"),
    ("recipe: tool_routing\nparams: {tools: [{name: a, description: b, parameters: {q: [1]}}]}\n",
     "params.tools[0].parameters.q", "not text (got [1])"),
    ("recipe: tool_routing\nparams: {tools: [{name: a, description: b, args: {}}]}\n",
     "params.tools[0].args", "unknown setting (got {}); expected one of name, description, parameters"),
])
def test_each_wrong_type_in_a_built_in_recipe_names_its_field(store, text, field, expected):
    with pytest.raises(SynthError, match=re.escape(f"- `{field}`: {expected}")):
        load_recipe(text=text)
    with pytest.raises(SynthError, match=re.escape(f"`{field}`")):
        run_recipe(store, yaml.safe_load(text))  # a dict given straight to run_recipe is checked too


def test_a_built_in_recipe_lists_every_problem_of_its_settings_and_params():
    with pytest.raises(SynthError) as caught:
        load_recipe(text="recipe: onboarding_qa\nmax_tokens: lots\nparams: {max_files: many, repo: 3}\n")
    message = str(caught.value)
    assert message.startswith("The recipe has 3 problems")
    assert all(f"`{f}`" in message for f in ("max_tokens", "params.max_files", "params.repo"))


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
            assert set(data.get("params", {})) <= set(RECIPES[data["recipe"]].Params.model_fields)
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
