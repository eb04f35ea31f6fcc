import itertools
import json

import pytest

from synth.generate.grammar import ENUMERATE_LIMIT, Expansion, Grammar, normalise
from synth.kernel.errors import SynthError

SUPPORT_YAML = """\
start: "<greeting>, I need help with my <product>. <closing>"
rules:
  greeting: ["Hi", {text: "Hello there", weight: 3}, "Good morning"]
  product: ["router", "<adjective> phone", "bank card"]
  adjective: ["new", "old"]
  closing: ["Thanks!", {text: "", weight: 0.5}]
"""
SUPPORT_TEXTS = {f"{g}, I need help with my {p}.{c}"
                 for g in ("Hi", "Hello there", "Good morning")
                 for p in ("router", "new phone", "old phone", "bank card")
                 for c in (" Thanks!", "")}


def grammar(start, **rules) -> Grammar:
    return Grammar.from_dict({"start": start, "rules": rules})


def chain(depth: int) -> Grammar:
    """start -> <r1> -> <r2> ... -> <r{depth}> -> "end": rule r{i} is used at depth i."""
    rules = {f"r{i}": [f"<r{i + 1}>"] for i in range(1, depth)}
    return grammar("<r1>", **rules, **{f"r{depth}": ["end"]})


def test_example_expands_to_the_texts_it_describes():
    g = Grammar.from_text(SUPPORT_YAML)
    assert g.rules == {"greeting": [("Hi", 1.0), ("Hello there", 3.0), ("Good morning", 1.0)],
                       "product": [("router", 1.0), ("<adjective> phone", 1.0), ("bank card", 1.0)],
                       "adjective": [("new", 1.0), ("old", 1.0)],
                       "closing": [("Thanks!", 1.0), ("", 0.5)]}
    items = g.expand(500, seed=4)
    assert {item.text for item in items} == SUPPORT_TEXTS
    for item in items:
        assert isinstance(item, Expansion)
        greeting, product, closing = (item.choices[k] for k in ("greeting", "product", "closing"))
        product = product.replace("<adjective>", item.choices.get("adjective", ""))
        assert item.text == f"{greeting}, I need help with my {product}. {closing}".strip()
        assert ("adjective" in item.choices) == (item.choices["product"] == "<adjective> phone")


def test_same_seed_same_texts_other_seed_other_texts():
    g = Grammar.from_text(SUPPORT_YAML)
    first = g.expand(50, seed=7)
    assert g.expand(50, seed=7) == first
    assert Grammar.from_text(SUPPORT_YAML).expand(50, seed=7) == first
    assert [e.text for e in g.expand(50, seed=8)] != [e.text for e in first]
    assert g.expand(20, seed=7) == first[:20]


def test_weights_are_respected():
    g = grammar("<x>", x=[{"text": "a", "weight": 3}, "b"])
    texts = [e.text for e in g.expand(20_000, seed=1)]
    assert abs(texts.count("a") / len(texts) - 0.75) < 0.02
    empty_closing = [e.text.endswith(".") for e in Grammar.from_text(SUPPORT_YAML).expand(20_000)]
    assert abs(sum(empty_closing) / 20_000 - 0.5 / 1.5) < 0.02


def test_nested_rules_expand_and_choices_record_the_first_use():
    g = grammar("<pair>", pair=["<word> and <word>"], word=["<size> cat", "dog"], size=["big", "small"])
    items = g.expand(300, seed=2)
    assert {e.text for e in items} >= {"big cat and dog", "dog and small cat", "dog and dog"}
    for e in items:
        assert e.choices["pair"] == "<word> and <word>"
        first = e.text.split(" and ")[0]
        assert e.choices["word"] == ("dog" if first == "dog" else "<size> cat")
        if "size" in e.choices:
            # The first size used is in the first word if that word is a cat, else in the second.
            assert e.choices["size"] == e.text.replace("dog and ", "").split()[0]
        else:
            assert e.text == "dog and dog"


def test_recursive_rules_expand_until_they_stop():
    g = grammar("I like <list>.", list=["<item>", {"text": "<item>, <list>", "weight": 0.5}],
                item=["tea", "jam"])
    items = g.expand(2000, seed=3)
    lengths = {len(e.text.split(", ")) for e in items}
    assert 1 in lengths and max(lengths) >= 4
    for e in items:
        assert e.text.startswith("I like ") and e.text.endswith(".")
        assert set(e.text[7:-1].split(", ")) <= {"tea", "jam"}
        assert e.choices["list"] == ("<item>" if ", " not in e.text else "<item>, <list>")
        assert e.choices["item"] == e.text[7:10]
    assert g.count() is None


def test_start_as_a_list_records_the_chosen_template():
    g = Grammar.from_dict({"start": ["Hi <name>", {"text": "Bye <name>", "weight": 2}],
                           "rules": {"name": ["Ann", "Bo"]}})
    items = g.expand(100, seed=0)
    assert {e.text for e in items} == {"Hi Ann", "Hi Bo", "Bye Ann", "Bye Bo"}
    for e in items:
        assert e.choices == {"start": e.text.split()[0] + " <name>", "name": e.text.split()[1]}
    assert g.count() == 4
    assert "start" not in grammar("Hi <name>", name=["Ann"]).expand(1)[0].choices


def test_unique_returns_distinct_texts_up_to_the_grammar_capacity():
    g = grammar("<a> <b>", a=["x", "y"], b=["1", {"text": "2", "weight": 5}])
    items = g.expand(10, seed=0, unique=True)
    assert sorted(e.text for e in items) == ["x 1", "x 2", "y 1", "y 2"]
    three = g.expand(3, seed=0, unique=True)
    assert len({e.text for e in three}) == 3 and three == items[:3]
    assert len(g.expand(3, seed=0, unique=True, max_attempts=1)) == 1
    big = Grammar.from_text(SUPPORT_YAML).expand(20, seed=5, unique=True)
    assert len({e.text for e in big}) == 20


def test_count_equals_the_distinct_texts_of_exhaustive_expansion():
    g = Grammar.from_text(SUPPORT_YAML)
    assert g.count() == 24 == len(SUPPORT_TEXTS)
    assert len(g.expand(10_000, seed=1, unique=True)) == 24
    # Four ways to expand but three texts: "new phone" twice, and "" leaves a collapsed space.
    overlapping = grammar("my <product>", product=["new phone", "<adjective> phone"],
                          adjective=["new", "old", ""])
    assert overlapping.count() == 3
    assert sorted(e.text for e in overlapping.expand(1000, unique=True)) == \
        ["my new phone", "my old phone", "my phone"]
    assert grammar("no rules").count() == 1


def test_count_of_large_and_huge_grammars():
    digit = [str(d) for d in range(10)]
    seven = grammar("<d>" * 7, d=digit)
    assert 10**7 > ENUMERATE_LIMIT and seven.count() == 10**7
    assert grammar("<d>" * 13, d=digit).count() is None
    assert grammar("<d><d>", d=digit).count() == 100


def test_escaped_angle_brackets_are_literal():
    g = grammar("a <<b>> <x> >> c<<<x>>>", x=["X"])
    assert g.expand(1)[0].text == "a <b> X > c<X>"
    assert g.count() == 1
    assert grammar("<<x>>").expand(1)[0].text == "<x>"


def test_whitespace_is_normalised():
    g = grammar("  <a>   <b>\t<c>  ", a=[""], b=["mid"], c=["end "])
    assert g.expand(1)[0].text == "mid end"
    assert normalise(" one  \n  two\t\tthree \n") == "one\ntwo three"


def test_from_text_reads_yaml_and_json_alike():
    spec = {"start": "<greeting>, <name>!", "rules": {"greeting": ["Hi", {"text": "Hey", "weight": 2}],
                                                       "name": ["Ann", "Bo"]}}
    from_json = Grammar.from_text(json.dumps(spec))
    from_yaml = Grammar.from_text('start: "<greeting>, <name>!"\nrules:\n  greeting:\n    - Hi\n'
                                  "    - text: Hey\n      weight: 2\n  name: [Ann, Bo]\n")
    assert from_json.rules == from_yaml.rules == {"greeting": [("Hi", 1.0), ("Hey", 2.0)],
                                                  "name": [("Ann", 1.0), ("Bo", 1.0)]}
    assert from_json.expand(30, seed=9) == from_yaml.expand(30, seed=9)
    assert {e.text for e in from_json.expand(200)} == {f"{g}, {n}!" for g, n in
                                                       itertools.product(["Hi", "Hey"], ["Ann", "Bo"])}


@pytest.mark.parametrize("text, message", [
    ('start: "a"\nrules:\n  x: [a, b\n  y: [c]\n', r"not valid YAML or JSON at line \d"),
    ('{"start": "a", "rules": {"x": ["a",]', r"not valid YAML or JSON at line 1"),
    ("", "text is empty"),
    ("- a\n- b\n", "must be a mapping with keys start and rules, got list"),
])
def test_from_text_errors(text, message):
    with pytest.raises(SynthError, match=message):
        Grammar.from_text(text)


@pytest.mark.parametrize("spec, message", [
    ({"rules": {"x": ["a"]}}, "has no start"),
    ({"start": "a", "rules": ["x"]}, "rules must be a mapping.*got list"),
    ({"start": "a", "rules": None}, "rules must be a mapping.*got NoneType"),
    ({"start": "<x>", "rules": {"x": []}}, "Rule 'x' has an empty list of alternatives"),
    ({"start": [], "rules": {}}, "start has an empty list of alternatives"),
    ({"start": "<x>", "rules": {"x": "a"}}, "Rule 'x' must be a list of alternatives, got str"),
    ({"start": "<x>", "rules": {"x": [{"text": "a", "weight": 0}]}},
     r"Rule 'x', alternative 1 has weight 0, which is not a positive number"),
    ({"start": "<x>", "rules": {"x": ["a", {"text": "b", "weight": -2}]}},
     r"alternative 2 has weight -2, which is not a positive number"),
    ({"start": "<x>", "rules": {"x": [{"text": "a", "weight": "3"}]}},
     "weight '3', which is not a positive"),
    ({"start": "<x>", "rules": {"x": [{"text": "a", "weight": True}]}},
     "weight True, which is not a positive"),
    ({"start": "<x>", "rules": {"x": [{"text": "a", "weight": float("nan")}]}}, "not a positive number"),
    ({"start": "<x>", "rules": {"x": ["a", 42]}},
     r"Rule 'x', alternative 2 is 42 \(int\), neither a string nor a \{text, weight\} mapping"),
    ({"start": "<x>", "rules": {"x": [None]}}, "neither a string nor a"),
    ({"start": "<x>", "rules": {"x": [{"txt": "a"}]}}, r"string \"text\".*\(unknown: txt\)"),
    ({"start": "Hi <name>", "rules": {"nme": ["Ann"]}},
     r"start refers to <name>, which is not a defined rule. Did you mean <nme>\?"),
    ({"start": "<a>", "rules": {"a": ["x", "<b> y"]}},
     r"Rule 'a', alternative 2 refers to <b>, which is not a defined rule.*Define b under rules"),
    ({"start": ["<a>", "<c>"], "rules": {"a": ["x"]}}, r"start, alternative 2 refers to <c>"),
    ({"start": "<my rule>", "rules": {"my rule": ["x"]}}, "Rule name 'my rule' is not an identifier"),
    ({"start": "a", "rules": {"1st": ["x"]}}, "Rule name '1st' is not an identifier"),
    ({"start": "a", "rules": {3: ["x"]}}, "Rule name 3 is not an identifier"),
    ({"start": "a", "rules": {"start": ["x"]}}, "A rule is named 'start'"),
    ({"start": "<a>", "rules": {"a": ["<start>"]}}, r"Rule 'a', alternative 1 refers to <start>, the top"),
    ({"start": "a <b", "rules": {}}, "start has a lone '<'"),
    ({"start": "a -> b", "rules": {}}, r"start has a lone '>'.*literal > as >>"),
    ({"start": "<x>", "rules": {"x": ["<>"]}},
     r"Rule 'x', alternative 1 refers to <>, which is not a rule name"),
    ({"start": "a", "rule": {}}, "unknown key.*rule"),
    ({"start": 5}, "start must be a template string or a list of alternatives, got int"),
    ("start: a", "must be a mapping with keys start and rules, got str"),
])
def test_invalid_specs_are_refused(spec, message):
    with pytest.raises(SynthError, match=message):
        Grammar.from_dict(spec)


@pytest.mark.parametrize("rules, message", [
    ({"a": ["<a> again"]}, r"Rule 'a' can never finish expanding.*\(<a> -> <a>\)"),
    ({"a": ["<b>"], "b": ["<c> x", "<c>"], "c": ["<b>"]},
     r"Rule 'b' can never finish.*\(<b> -> <c> -> <b>\)"),
    ({"a": ["<a>", "<b>"], "b": ["<b>!"]}, r"Rule 'a' can never finish.*Add an alternative to 'a'"),
])
def test_recursion_that_cannot_end_is_refused(rules, message):
    with pytest.raises(SynthError, match=message):
        grammar("<a>", **rules)


def test_loops_outside_the_reachable_rules_are_allowed():
    g = grammar("<a>", a=["fine"], unused=["<unused>"])
    assert g.expand(2)[0].text == "fine" and g.count() == 1


def test_expansion_deeper_than_fifty_rules_is_stopped():
    assert chain(50).expand(1)[0].text == "end"
    assert chain(50).count() == 1
    with pytest.raises(SynthError, match="recursion deeper than 50"):
        chain(51).expand(1)
    runaway = grammar("<a>", a=[{"text": "x<a>", "weight": 1000}, "y"])
    with pytest.raises(SynthError, match="Expanding rule 'a' went into recursion deeper than 50"):
        runaway.expand(10, seed=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "between 1 and 1,000,000, got 0"),
    ({"n": 1_000_001}, "between 1 and 1,000,000, got 1000001"),
    ({"n": 2.5}, "whole number between 1 and 1,000,000, got 2.5"),
    ({"n": 5, "unique": True, "max_attempts": 0}, "max_attempts must be a whole number of at least 1"),
])
def test_expand_arguments_are_checked(kwargs, message):
    with pytest.raises(SynthError, match=message):
        grammar("a").expand(**kwargs)
