import json
import random

import pytest

from synth.kernel.errors import SynthError
from synth.llm.structured import MAX_REASON, OutputSpec, ParsedOutput, parse_output

QA = OutputSpec.from_fields("question, answer")
SCORED = OutputSpec.from_schema({
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["pos", "neg"]},
                   "score": {"type": "integer", "minimum": 1, "maximum": 5},
                   "meta": {"type": "object", "properties": {"source": {"type": "string"}},
                            "required": ["source"]},
                   "tags": {"type": "array", "items": {"type": "string"}},
                   "ratio": {"type": "number"}, "ok": {"type": "boolean"}},
    "required": ["label", "score"],
})
GOOD = {"question": "What is 2+2?", "answer": "4"}


def test_from_fields_builds_a_required_string_schema():
    assert QA.fields == ("question", "answer")
    assert QA.schema == {"type": "object",
                         "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                         "required": ["question", "answer"]}
    assert OutputSpec.from_fields(["question", " answer ", ""]) == QA
    assert OutputSpec.from_fields("question\nanswer,").fields == ("question", "answer")


def test_from_schema_accepts_dict_json_and_yaml():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name"]}
    yaml_text = ("type: object\n"
                 "properties:\n"
                 "  name: {type: string}\n"
                 "  age:\n"
                 "    type: integer\n"
                 "required: [name]\n")
    for given in (schema, json.dumps(schema), yaml_text):
        spec = OutputSpec.from_schema(given)
        assert spec.schema == schema and spec.fields == ("name", "age")


def test_the_spec_keeps_its_own_copy_of_the_schema():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    spec = OutputSpec.from_schema(schema)
    schema["properties"]["b"] = {"type": "string"}
    assert spec.fields == ("a",) and "b" not in spec.schema["properties"]


OBJ = {"type": "object"}


@pytest.mark.parametrize("source, given, message", [
    ("fields", "", "No output fields"),
    ("fields", " , \n", "No output fields"),
    ("fields", [], "No output fields"),
    ("fields", "question, the answer", "'the answer' is not a plain name"),
    ("fields", ["2nd"], "'2nd' is not a plain name"),
    ("fields", "answer, question, answer", "'answer' is listed twice"),
    ("fields", ["a", 3], "3 is not text"),
    ("fields", 42, "got a number"),
    ("schema", {"type": "array", "items": {}}, r'describe a JSON object \(got "array"\)'),
    ("schema", {"properties": {"a": {}}}, 'it has no "type"'),
    ("schema", OBJ, 'no "properties"'),
    ("schema", {**OBJ, "properties": {}}, 'no "properties"'),
    ("schema", {**OBJ, "properties": {"a": {"type": "nope"}}},
     r"not a valid JSON Schema at 'properties.a.type'"),
    ("schema", {**OBJ, "properties": {"a": {"pattern": "(["}}},
     r"not a valid JSON Schema at 'properties.a.pattern'"),
    ("schema", {**OBJ, "properties": {"a": {"$ref": "https://example.com/a.json"}}},
     r"\$ref that cannot be resolved"),
    ("schema", {**OBJ, "properties": {"a": {"$ref": "#/$defs/missing"}}},
     r"\$ref that cannot be resolved"),
    ("schema", {**OBJ, "$schema": ["x"], "properties": {"a": {}}}, r'"\$schema" must be a URI string'),
    ("schema", [OBJ], "must be a JSON object, got a list"),
    ("schema", "", "schema is empty"),
    ("schema", "just some words", "must be a JSON object, got a string"),
    ("schema", "type: object\nproperties: [a, b", "neither JSON nor YAML"),
    ("schema", "type: object\nproperties:\n  when: {default: 2024-01-01}", "values JSON cannot store"),
    ("dict", {}, "an empty mapping"),
    ("dict", {"fields": ["a"], "schema": {**OBJ, "properties": {"a": {}}}}, "exactly one of"),
    ("dict", {"columns": ["a"]}, r"keys \['columns'\]"),
    ("dict", ["a"], "got list"),
])
def test_bad_specs_are_refused(source, given, message):
    build = getattr(OutputSpec, f"from_{source}")
    with pytest.raises(SynthError, match=message):
        build(given)


def test_dict_round_trip():
    for spec in (QA, SCORED):
        stored = json.loads(json.dumps(spec.to_dict()))
        assert stored == {"schema": spec.schema}
        assert OutputSpec.from_dict(stored) == spec
    assert OutputSpec.from_dict({"fields": ["question", "answer"]}) == QA
    assert OutputSpec.from_dict({"fields": "question, answer"}) == QA


def test_instructions_for_fields():
    text = QA.instructions()
    assert text == ('Answer with only a JSON object with the keys "question" and "answer", '
                    'like: {"question": "...", "answer": "..."}')
    assert parse_output(text, QA) == ParsedOutput(valid=True, data={"question": "...", "answer": "..."},
                                                  reason=None)
    assert OutputSpec.from_fields("only").instructions().startswith(
        'Answer with only a JSON object with the key "only", like')


def test_instructions_for_a_schema_show_a_placeholder_of_each_type():
    text = SCORED.instructions()
    for name in SCORED.fields:
        assert f'"{name}"' in text
    assert text.startswith('Answer with only a JSON object with the keys "label", "score", "meta", '
                           '"tags", "ratio" and "ok", like: ')
    parsed = parse_output(text, SCORED)
    assert parsed.data == {"label": "...", "score": 0, "meta": {"source": "..."}, "tags": [], "ratio": 0.0, "ok": True}
    # Placeholders show types, not the schema's other rules, so this example may break them.
    assert parsed.valid is False and parsed.reason == "field 'score': 0 is less than the minimum of 1"
    assert "\n" not in text


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    '```json\n{"question": "What is 2+2?", "answer": "4"}\n```',
    '```\n{"question": "What is 2+2?", "answer": "4"}\n```',
    'Sure! Here it is: {"question": "What is 2+2?", "answer": "4"} Hope this helps',
    '{"question": "What is 2+2?", "answer": "4"}\n\nThe code:\n```\nprint(4)\n```',
    '```json\n{"question": "What is 2+2?", "answer": "4"}',  # fence cut off by max_tokens
    'Fill {question} and {answer}: {"question": "What is 2+2?", "answer": "4"}',
    "{'question': 'x'} Sorry, in JSON: {\"question\": \"What is 2+2?\", \"answer\": \"4\"}",
    'Use { to open it. {"question": "What is 2+2?", "answer": "4"}',
])
def test_valid_answers_are_found(text):
    assert parse_output(text, QA) == ParsedOutput(valid=True, data=GOOD, reason=None)


def test_braces_and_escaped_quotes_inside_strings():
    text = 'Answer: {"question": "what is {x}? say \\"}\\"", "answer": "y {"} trailing }'
    assert parse_output(text, QA) == ParsedOutput(
        valid=True, data={"question": 'what is {x}? say "}"', "answer": "y {"}, reason=None)


def test_other_keys_and_unicode_are_kept():
    result = parse_output('{"question": "¿Qué? 🤔", "answer": "ja", "note": 1}', QA)
    assert result.valid and result.data == {"question": "¿Qué? 🤔", "answer": "ja", "note": 1}


@pytest.mark.parametrize("text, data, reason", [
    ('{"question": "q"}', {"question": "q"}, "missing field 'answer'"),
    ("{}", {}, "missing fields 'question', 'answer'"),
    ('{"question": "q", "answer": 4}', {"question": "q", "answer": 4},
     "field 'answer': 4 is not of type 'string'"),
])
def test_schema_failures_keep_the_data(text, data, reason):
    assert parse_output(text, QA) == ParsedOutput(valid=False, data=data, reason=reason)


@pytest.mark.parametrize("data, reason", [
    ({"label": "pos", "score": 7}, "field 'score': 7 is greater than the maximum of 5"),
    ({"label": "pos", "score": 0}, "field 'score': 0 is less than the minimum of 1"),
    ({"label": "meh", "score": 3}, "field 'label': 'meh' is not one of ['pos', 'neg']"),
    ({"label": "pos", "score": 3, "meta": {}}, "missing field 'meta.source'"),
    ({"label": "pos", "score": 3, "tags": ["a", 2]}, "field 'tags[1]': 2 is not of type 'string'"),
    ({"label": "pos", "score": 3, "meta": {"source": "web"}, "tags": ["a"], "ratio": 0.5, "ok": False},
     None),
])
def test_schema_rules_are_checked(data, reason):
    result = parse_output(json.dumps(data), SCORED)
    assert result == ParsedOutput(valid=reason is None, data=data, reason=reason)


@pytest.mark.parametrize("text, reason", [
    ("", "no JSON object found"),
    ("   \n", "no JSON object found"),
    ("The capital of France is Paris.", "no JSON object found"),
    ('```python\nprint("hi")\n```', "no JSON object found"),
    ('["question", "answer"]', "expected a JSON object, got a list"),
    ('[{"question": "q", "answer": "a"}]', "expected a JSON object, got a list"),
    ('```json\n[1, 2]\n```', "expected a JSON object, got a list"),
    ('"just a string"', "expected a JSON object, got a string"),
    ("42", "expected a JSON object, got a number"),
    ("true", "expected a JSON object, got a boolean"),
    ("null", "expected a JSON object, got null"),
    ('{"question": "q", "answer": "a",}',
     "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 33)"),
    ("{'question': 'q', 'answer': 'a'}",
     "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
    ('Here:\n```json\n{"question": "q",\n "answer": "a",\n}\n```',
     "invalid JSON: Expecting property name enclosed in double quotes (line 5, column 1)"),
    ('{"question": "q", "answer": "a long answer cut off by max_tok',
     "invalid JSON: Unterminated string starting at (line 1, column 29)"),
    ('{"items": [{"question": "q", "answer": "a"}, {"question": "r"',
     "invalid JSON: Expecting ',' delimiter (line 1, column 62)"),
    ('{"question": "q", "answer": "a", "extra": {"x": 1},}',
     "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 52)"),
    ('{"question": "q", "answer": "a", "x": "{}",}',
     "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 44)"),
    ('{"question": "q", "answer": NaN}', "invalid JSON: NaN is not allowed"),
    ("[" * 100_000, "no JSON object found"),
    ('{"a": ' * 100_000, "invalid JSON: nested too deeply"),
])
def test_invalid_outputs_are_reported_not_raised(text, reason):
    assert parse_output(text, QA) == ParsedOutput(valid=False, data=None, reason=reason)


def test_reasons_are_short():
    long_value = "x" * 5000
    result = parse_output(json.dumps({"question": "q", "answer": 1, "label": long_value}), QA)
    assert result.reason == "field 'answer': 1 is not of type 'string'"
    result = parse_output(json.dumps({"label": long_value, "score": 3}), SCORED)
    assert len(result.reason) == MAX_REASON and result.reason.startswith("field 'label': 'xxx")
    assert result.reason.endswith("…")


@pytest.mark.slow
def test_huge_outputs_are_handled():
    padding = "blah " * 200_000
    assert parse_output(padding + json.dumps(GOOD) + padding, QA).data == GOOD
    assert parse_output("{" * 1_000_000, QA).reason.startswith("invalid JSON: Expecting property name")
    assert parse_output('{"{"' * 250_000, QA).reason == ("invalid JSON: Expecting ':' delimiter "
                                                         "(line 1, column 5)")


def test_random_text_never_raises():
    rng = random.Random(7)
    alphabet = '{}[]":,\\ ab1'
    seen = set()
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        result = parse_output(text, QA)
        assert isinstance(result, ParsedOutput)
        assert result.valid == (result.reason is None)
        assert result.reason is None or 0 < len(result.reason) <= MAX_REASON
        assert result.data is None or isinstance(result.data, dict)
        seen.add(result.reason.split(":")[0] if result.reason else "valid")
    # The strings reach the interesting branches, not just the first one.
    assert {"no JSON object found", "invalid JSON", "missing fields 'question', 'answer'"} <= seen
