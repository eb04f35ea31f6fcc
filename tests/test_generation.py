import itertools

import pytest

from synth.generate.config import RunConfig, parse_var_spec, validate_template
from synth.generate.execute import execute
from synth.generate.prompting import render, template_fields
from synth.generate.techniques.sampling import sample_assignments
from synth.kernel.errors import SynthError

LOCAL = "local/smollm2-135m"


def test_template_fields_in_order_without_duplicates():
    assert template_fields("A {tone} review of {product}, {tone} again; {{literal}}") == ["tone", "product"]
    assert template_fields("no variables") == []


@pytest.mark.parametrize("template, message", [
    ("unbalanced {brace", "unbalanced braces"),
    ("attr {a.b}", "not a plain name"),
    ("index {a[0]}", "not a plain name"),
    ("spec {a:>10}", "format spec"),
    ("positional {}", "not a plain name"),
])
def test_bad_templates_are_refused(template, message):
    with pytest.raises(SynthError, match=message):
        template_fields(template)


@pytest.mark.parametrize("req, message", [
    (RunConfig(template=""), "template is empty"),
    (RunConfig(template="   \n"), "template is empty"),
    (RunConfig(template="About {topic}"), r"no values were given for: topic"),
    (RunConfig(template="About {topic}", variables={"topic": ["  "]}), "topic"),
    (RunConfig(template="hi", n=0), "number of items"),
    (RunConfig(template="hi", n=100_001), "number of items"),
    (RunConfig(template="hi", concurrency=0), "Concurrency"),
    (RunConfig(template="hi", budget_usd=-1), "budget"),
    (RunConfig(template="hi", technique="nope"), "Unknown technique"),
    (RunConfig(template="hi", output={"fields": "not ok!"}), "field"),
    (RunConfig(template="hi", temperature=2.5), "Temperature"),
    (RunConfig(template="hi", top_p=0.0), "top_p"),
    (RunConfig(template="hi", max_tokens=0), "Max tokens"),
])
def test_request_validation(req, message):
    with pytest.raises(SynthError, match=message):
        req.validate()
        validate_template(req)


def test_unused_variables_are_not_part_of_the_prompt_version():
    prompt = validate_template(RunConfig(template="About {a}", variables={"a": ["x"], "b": ["y"]}))
    assert prompt.variables == {"a": ["x"]}


def test_parse_var_spec():
    assert parse_var_spec("topic=space, cooking ,") == ("topic", ["space", "cooking"])
    with pytest.raises(SynthError, match="name=value1,value2"):
        parse_var_spec("topic")
    with pytest.raises(SynthError, match="no values"):
        parse_var_spec("topic=")


def test_sampling_covers_every_combination_before_repeating():
    variables = {"a": ["1", "2", "3"], "b": ["x", "y"]}
    sets = sample_assignments(variables, 6, seed=1, mode="product")
    combos = {tuple(sorted(d.items())) for d in sets}
    assert len(combos) == 6
    assert combos == {(("a", a), ("b", b)) for a, b in itertools.product("123", "xy")}
    longer = sample_assignments(variables, 13, seed=1, mode="product")
    assert longer[:6] == sets and len(longer) == 13
    assert sample_assignments(variables, 6, seed=1, mode="product") == sets
    assert sample_assignments(variables, 6, seed=2, mode="product") != sets


def test_render():
    assert render("A {x} and {{y}}", {"x": "cat"}) == "A cat and {y}"


def test_generate_with_embedded_model_records_provenance():
    req = RunConfig(template="Write one sentence about a {animal}.",
                            variables={"animal": ["cat", "owl"]}, n=2, model=LOCAL, max_tokens=16,
                            seed=5, prompt_name="animals", run_name="animals test")
    seen = []
    run, items, prompt = execute(req, on_item=lambda item, i, n: seen.append((i, n)))
    assert seen == [(0, 2), (1, 2)]
    assert run.name == "animals test" and run.technique == "sampling" and run.model == LOCAL
    assert run.params["temperature"] == req.temperature and run.params["n"] == 2
    assert prompt.name == "animals" and prompt.variables == {"animal": ["cat", "owl"]}
    assert {i.variables["animal"] for i in items} == {"cat", "owl"}
    for idx, item in enumerate(items):
        assert item.text.strip()
        assert item.model == LOCAL
        assert item.rendered_prompt == f"Write one sentence about a {item.variables['animal']}."
        assert item.params["seed"] == 5 + idx
        assert item.tokens_in > 5 and 0 < item.tokens_out <= 16
        assert item.latency_ms > 0
        assert item.cost_usd == 0.0


def test_same_seed_same_text_with_embedded_model():
    from synth.llm import providers

    providers._unload_llama(LOCAL.split("/", 1)[1])  # the first call below is the first after the load
    req = RunConfig(template="Name a colour.", n=1, model=LOCAL, max_tokens=8, temperature=1.0, seed=9)
    first = execute(req)[1][0].text
    second = execute(req)[1][0].text
    execute(RunConfig(template="Write one sentence about a {animal}.", variables={"animal": ["cat", "owl"]},
                      n=2, model=LOCAL, max_tokens=8, temperature=1.0, seed=3))
    later = execute(req)[1][0].text
    assert first == second == later
    others = {execute(RunConfig(template="Name a colour.", n=1, model=LOCAL, max_tokens=8, temperature=1.0,
                                seed=seed))[1][0].text for seed in (10, 11, 12)}
    assert others | {first} != {first}  # another seed can give another text


def test_generate_through_litellm_openai_provider(server):
    req = RunConfig(template="Say {word}", variables={"word": ["a", "b", "c"]}, n=3,
                            model="openai/test-model", api_base=server.api_base, max_tokens=20)
    run, items, _ = execute(req)
    assert [i.idx for i in items] == [0, 1, 2]
    for item in items:  # calls run concurrently, so the server numbers them in arrival order
        assert item.text.startswith("Synthetic reply ") and item.text.endswith(f" to: {item.rendered_prompt}")
    assert items[0].tokens_in == 2 and items[0].tokens_out == len(items[0].text.split())
    assert run.params["api_base"] == server.api_base
    sent = sorted((r["body"] for r in server.config.requests), key=lambda b: b["seed"])[0]
    assert sent["model"] == "test-model" and sent["max_tokens"] == 20 and sent["seed"] == 0
    assert sent["messages"] == [{"role": "user", "content": items[0].rendered_prompt}]
