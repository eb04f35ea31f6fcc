"""Each technique with the embedded model at small n, and against the local test server."""

import json
import subprocess

import pytest
from conftest import ROOT
from openai_server import json_reply

from synth.generate.config import RunConfig
from synth.generate.execute import execute
from synth.generate.techniques import (
    TECHNIQUES,
    Technique,
    get_technique,
    register_technique,
)
from synth.generate.techniques.sampling import sample_assignments
from synth.kernel.errors import SynthError
from synth.workflows.pipeline import generate_run

LOCAL = "local/smollm2-135m"


def test_registry_holds_the_techniques_and_refuses_duplicates():
    assert list(TECHNIQUES) == ["sampling", "back_translation", "transform", "symbolic"]
    with pytest.raises(ValueError, match="already registered"):
        register_technique(type("Again", (Technique,), {"name": "sampling"}))
    with pytest.raises(SynthError, match="Unknown technique 'nope'"):
        get_technique("nope")


def test_random_sampling_is_seeded_and_independent_per_variable():
    variables = {"a": ["1", "2", "3"], "b": ["x", "y"]}
    draws = sample_assignments(variables, 200, seed=4, mode="random")
    assert draws == sample_assignments(variables, 200, seed=4, mode="random")
    assert {d["a"] for d in draws} == {"1", "2", "3"} and {d["b"] for d in draws} == {"x", "y"}
    assert draws[:6] != sample_assignments(variables, 6, seed=4, mode="product")
    with pytest.raises(SynthError, match="product' or 'random"):
        sample_assignments(variables, 2, seed=0, mode="zip")


# -- sampling ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sampling_with_examples_and_avoid_list(server, store):
    first = generate_run(store, RunConfig(template="Say {w}", variables={"w": ["a", "b"]}, n=2,
                                          model="openai/test-model", api_base=server.api_base,
                                          run_name="earlier"))
    cfg = RunConfig(template="Write a review of a {p}.", variables={"p": ["pen", "cup"]}, n=4,
                    model="openai/test-model", api_base=server.api_base, examples=["ex one", "ex two", "ex three"],
                    k_examples=2, avoid_runs=["earlier"], k_avoid=1, seed=1)
    run, items, prompt = execute(cfg, store)
    earlier_texts = set(store.items([first.run_id])["text"])
    for item in items:
        assert len(item.meta["examples"]) == 2 and set(item.meta["examples"]) <= {"ex one", "ex two", "ex three"}
        assert "Examples of the kind of text wanted:" in item.rendered_prompt
        assert item.meta["avoid"][0] in earlier_texts
        assert f"Write something different from each of these:\n- {item.meta['avoid'][0]}" in item.rendered_prompt
    assert len({tuple(i.meta["examples"]) for i in items}) > 1  # a random subset per call
    assert execute(cfg, store)[1][0].meta == items[0].meta  # ... and reproducible for the seed


def test_examples_placeholder_places_the_list():
    cfg = RunConfig(template="Like these:\n{examples}\nNow one about {t}.", variables={"t": ["tea"]}, n=1,
                    examples=["A", "B"], k_examples=2, model=LOCAL)
    plan = get_technique("sampling").plan(cfg, None)
    body = plan.items[0].rendered_prompt
    assert body.startswith("Like these:\n- ") and body.endswith("Now one about tea.")
    assert "Examples of the kind" not in body


@pytest.mark.slow
def test_sampling_with_the_embedded_model(store):
    result = generate_run(store, RunConfig(template="Name a {thing}.", variables={"thing": ["fruit", "city"]},
                                           n=2, model=LOCAL, max_tokens=12, sampling_mode="random"))
    assert result.n_items == 2 and result.cost_usd == 0.0 and result.tokens_out > 0


# -- back-translation and transformation ----------------------------------------------------------

@pytest.mark.slow
def test_back_translation_from_pasted_texts(server, store):
    cfg = RunConfig(technique="back_translation", n=0, model="openai/test-model", api_base=server.api_base,
                    source={"kind": "pasted", "text": "Paris is the capital of France.\n\nWater boils at 100 C."})
    result = generate_run(store, cfg)
    items = store.items([result.run_id])
    assert list(items["source_ref"]) == ["pasted#1", "pasted#2"]
    assert list(items["source_text"]) == ["Paris is the capital of France.", "Water boils at 100 C."]
    fields = [json.loads(f) for f in items["fields"]]
    assert [f["response"] for f in fields] == list(items["source_text"])
    assert [f["instruction"] for f in fields] == list(items["text"])
    assert "Write the instruction or question that this text answers" in items["rendered_prompt"][0]


def test_back_translation_from_a_git_repository(server, store):
    cfg = RunConfig(technique="back_translation", n=2, model="openai/test-model", api_base=server.api_base,
                    source={"kind": "git", "repo": str(ROOT), "include": ["synth/*.py"], "max_files": 2})
    run, items, _ = execute(cfg, store)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "synth/*.py"], capture_output=True,
                             text=True).stdout.split()
    assert len(items) == 2 and all(i.source_ref in tracked for i in items)


@pytest.mark.slow
def test_back_translation_from_a_folder_with_the_embedded_model(tmp_path, store):
    (tmp_path / "answer.md").write_text("Tea is brewed by steeping leaves in hot water for a few minutes.")
    cfg = RunConfig(technique="back_translation", model=LOCAL, max_tokens=24, n=0,
                    source={"kind": "folder", "path": str(tmp_path)})
    result = generate_run(store, cfg)
    item = store.items([result.run_id]).iloc[0]
    assert item["source_ref"] == "answer.md" and item["text"].strip()


@pytest.mark.slow
def test_transform_keeps_a_link_to_each_source_row(server, store, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,stars\nGreat kettle,5\nBroken zip,1\n")
    cfg = RunConfig(technique="transform", template="Rewrite as a {stars}-star review: {text}", per_source=2,
                    n=0, model="openai/test-model", api_base=server.api_base,
                    source={"kind": "file", "path": str(path), "text_column": "text"})
    result = generate_run(store, cfg)
    items = store.items([result.run_id])
    assert list(items["source_ref"]) == ["rows.csv#row=1"] * 2 + ["rows.csv#row=2"] * 2
    assert list(items["rendered_prompt"][::2]) == ["Rewrite as a 5-star review: Great kettle",
                                                   "Rewrite as a 1-star review: Broken zip"]
    seeds = [json.loads(p)["seed"] for p in items["params"]]
    assert seeds == [0, 1, 2, 3]  # two samples of one row differ by seed


@pytest.mark.slow
def test_transform_of_an_earlier_run_with_the_embedded_model(store, server):
    first = generate_run(store, RunConfig(template="Say {w}", variables={"w": ["hello"]}, n=1,
                                          model="openai/test-model", api_base=server.api_base))
    result = generate_run(store, RunConfig(technique="transform", source={"kind": "run", "run": first.run_id},
                                           n=0, model=LOCAL, max_tokens=16))
    source_id = store.items([first.run_id])["item_id"][0]
    assert store.items([result.run_id])["source_ref"].tolist() == [source_id]


@pytest.mark.parametrize("source, message", [
    (None, "needs source texts"),
    ({"kind": "file"}, "Choose a JSONL or CSV file"),
    ({"kind": "pasted", "text": "  "}, "paste at least one"),
    ({"kind": "run", "run": "missing"}, "No run called"),
])
def test_source_errors(store, source, message):
    with pytest.raises(SynthError, match=message):
        execute(RunConfig(technique="transform", source=source, n=0, model=LOCAL), store)


def test_template_asking_for_an_unknown_column(store):
    cfg = RunConfig(technique="transform", template="{nope}", n=0, model=LOCAL,
                    source={"kind": "pasted", "text": "x"})
    with pytest.raises(SynthError, match=r"uses \{nope\}"):
        execute(cfg, store)


# -- symbolic ------------------------------------------------------------------------------------

GRAMMAR = {"start": "<a> <b>", "rules": {"a": ["hi", {"text": "hello", "weight": 3}], "b": ["you", "there"]}}


def test_symbolic_needs_no_model_and_is_deterministic(store):
    cfg = RunConfig(technique="symbolic", grammar=GRAMMAR, n=20, seed=5, model="openai/not-called")
    run, items, prompt = execute(cfg, store)
    assert run.model == "symbolic" and prompt is None
    assert [i.text for i in items] == [i.text for i in execute(cfg, store)[1]]
    assert all(i.tokens_in == 0 and i.cost_usd == 0.0 for i in items)
    assert {i.variables["a"] for i in items} <= {"hi", "hello"}
    unique = execute(RunConfig(technique="symbolic", grammar=GRAMMAR, n=20, unique=True), store)[1]
    assert sorted(i.text for i in unique) == ["hello there", "hello you", "hi there", "hi you"]


def test_symbolic_from_yaml_text_and_without_grammar(store):
    text = "start: '<x>'\nrules:\n  x: [one, two]\n"
    assert len(execute(RunConfig(technique="symbolic", grammar=text, n=3), store)[1]) == 3
    with pytest.raises(SynthError, match="needs a grammar"):
        execute(RunConfig(technique="symbolic", n=3), store)


# -- structured output ---------------------------------------------------------------------------

@pytest.mark.slow
def test_structured_output_is_parsed_and_invalid_outputs_are_kept(make_server, store):
    srv = make_server(reply=lambda n, prompt: json_reply(n, prompt) if n % 2 else "no json here")
    cfg = RunConfig(template="Q and A about {t}", variables={"t": ["tea", "rain", "sand", "snow"]}, n=4,
                    output={"fields": ["question", "answer"]}, model="openai/test-model",
                    api_base=srv.api_base, concurrency=1)
    result = generate_run(store, cfg)
    items = store.items([result.run_id])
    assert list(items["valid"]) == [True, False, True, False]
    assert list(items["invalid_reason"].fillna("")) == ["", "no JSON object found", "", "no JSON object found"]
    assert json.loads(items["fields"][0]) == {"question": "question 1", "answer": "answer 1"}
    assert result.metrics["validity_rate"] == 0.5
    body = srv.config.requests[0]["body"]
    assert body["response_format"] == {"type": "json_object"}
    assert 'keys "question" and "answer"' in body["messages"][-1]["content"]


@pytest.mark.slow
def test_structured_output_with_the_embedded_model_follows_the_schema(store):
    cfg = RunConfig(template="Give a question about {t} and its answer.", variables={"t": ["tea"]}, n=1,
                    output={"schema": {"type": "object", "required": ["question", "answer"], "properties": {
                        "question": {"type": "string", "maxLength": 80},
                        "answer": {"type": "string", "maxLength": 80}}}},
                    model=LOCAL, max_tokens=120, temperature=0.0)
    run, items, _ = execute(cfg, store)
    item = items[0]
    # llama.cpp constrains decoding to the schema, so the keys are there whenever the text finished
    assert item.fields is not None and set(item.fields) == {"question", "answer"}, item.text
    assert item.valid is (item.invalid_reason is None)
