"""Structured output: the fields a run asks the model for, and checking what came back.

Reads: a field list or a JSON Schema (dict, JSON or YAML text). Writes: nothing. An
:class:`OutputSpec` is checked once when built (raising :class:`SynthError`); after that,
:func:`parse_output` never raises: malformed model output is kept with a short reason, because
invalid items are counted, not dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from synth.kernel.errors import SynthError

MAX_REASON = 200
NO_OBJECT = "no JSON object found"
# Each failed decode costs a pass over the text; past this many, the first error stands.
MAX_ATTEMPTS = 50
# What instructions() shows for a property of each JSON type.
EXAMPLE_VALUES = {"string": "...", "integer": 0, "number": 0.0, "boolean": True, "array": [],
                  "object": {}, "null": None}
SCHEMA_EXAMPLE = '{"type": "object", "properties": {"answer": {"type": "string"}}}'

# A fenced block's body; an unclosed fence runs to the end (the model hit max_tokens).
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)
# What matters when matching braces: an escape pair, a brace or a quote.
_TOKENS = re.compile(r'\\.|[{}"]', re.S)
# A brace the JSON parser could get past: an object starts with a key or is empty.
_OBJECT_START = re.compile(r'\{[ \t\n\r]*["}]')


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


# Python's json accepts NaN and Infinity; they are not JSON and would not survive export.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True)
class OutputSpec:
    """The JSON object a run asks the model for. ``schema`` is always a checked JSON Schema of
    type object; ``fields`` are its top-level property names, in order."""

    schema: dict = field(hash=False)
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        schema = _plain_json(self.schema)
        _check_schema(schema)
        fields = tuple(schema["properties"])
        if self.fields and tuple(self.fields) != fields:
            raise ValueError(f"fields {self.fields!r} are not the schema's properties {fields!r}")
        # Frozen: set the normalised copies the way dataclasses do.
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "fields", fields)
        _check_refs(self)

    @classmethod
    def from_fields(cls, fields: str | list[str]) -> OutputSpec:
        """Every field a required string: ``"question, answer"`` (commas or new lines) or a list.
        Other keys are allowed in the answer."""
        if isinstance(fields, str):
            raw = re.split(r"[,\n]", fields)
        elif isinstance(fields, (list, tuple)):
            raw = list(fields)
        else:
            raise SynthError(f"Output fields must be text like \"question, answer\" or a list of "
                             f"names, got {_json_kind(fields)}.")
        not_text = [name for name in raw if not isinstance(name, str)]
        if not_text:
            raise SynthError(f"Output field {not_text[0]!r} is not text. Give field names like "
                             "\"question, answer\".")
        names = [name.strip() for name in raw if name.strip()]
        unplain = [name for name in names if not name.isidentifier()]
        if unplain:
            raise SynthError(f"Output field {unplain[0]!r} is not a plain name. Use letters, digits "
                             "and underscores, like question or answer_2.")
        repeated = [name for i, name in enumerate(names) if name in names[:i]]
        if repeated:
            raise SynthError(f"Output field {repeated[0]!r} is listed twice. List each field once.")
        if not names:
            raise SynthError("No output fields were given. List the fields the model should fill, "
                             "e.g. \"question, answer\".")
        return cls(schema={"type": "object", "properties": {n: {"type": "string"} for n in names},
                           "required": names})

    @classmethod
    def from_schema(cls, schema: dict | str) -> OutputSpec:
        """A JSON Schema given as a dict or as JSON or YAML text; its top level must be an object
        with ``properties``."""
        if isinstance(schema, str):
            schema = _load_schema_text(schema)
        return cls(schema=schema)

    def to_dict(self) -> dict:
        """The spec as plain JSON for storing; :meth:`from_dict` reads it back."""
        return {"schema": json.loads(json.dumps(self.schema))}

    @classmethod
    def from_dict(cls, d: dict) -> OutputSpec:
        """A spec from ``{"fields": [...]}`` or ``{"schema": {...}}`` (exactly one of them)."""
        keys = {"fields", "schema"} & set(d) if isinstance(d, dict) else set()
        if len(keys) != 1:
            raise SynthError("An output spec needs exactly one of \"fields\" (a list of names) or "
                             f"\"schema\" (a JSON Schema), got {_describe_keys(d)}.")
        return cls.from_fields(d["fields"]) if "fields" in keys else cls.from_schema(d["schema"])

    def instructions(self) -> str:
        """The sentence appended to the prompt, with a one-line example object."""
        keys = _join_words([json.dumps(name, ensure_ascii=False) for name in self.fields])
        noun = "key" if len(self.fields) == 1 else "keys"
        return f"Answer with only a JSON object with the {noun} {keys}, like: {self.example()}"

    def example(self) -> str:
        """A compact JSON object with a placeholder value of the right type for every field."""
        props = self.schema["properties"]
        return json.dumps({name: _example_value(props[name]) for name in self.fields},
                          ensure_ascii=False)


@dataclass(frozen=True)
class ParsedOutput:
    """What a model's text held: ``data`` is the object found (even if it failed the schema),
    ``reason`` says briefly why the output is invalid (None when valid)."""

    valid: bool
    data: dict | None
    reason: str | None


def parse_output(text: str, spec: OutputSpec) -> ParsedOutput:
    """The first JSON object in ``text`` (a fenced block first), checked against ``spec``.
    Never raises; malformed JSON is reported, not repaired."""
    import referencing.exceptions
    from jsonschema.exceptions import best_match

    text = text if isinstance(text, str) else ""
    data, reason = _find_object(text)
    if data is None:
        return ParsedOutput(valid=False, data=None, reason=_clip(reason))
    try:
        error = best_match(_validator(spec.schema).iter_errors(data))
    except RecursionError:
        return ParsedOutput(valid=False, data=data, reason="too deeply nested to check")
    except referencing.exceptions.Unresolvable as exc:
        return ParsedOutput(valid=False, data=data, reason=_clip(f"the schema's $ref failed: {exc}"))
    if error is None:
        return ParsedOutput(valid=True, data=data, reason=None)
    return ParsedOutput(valid=False, data=data, reason=_clip(_render_error(error)))


def _find_object(text: str) -> tuple[dict | None, str]:
    """(object, "") or (None, why none was found). The first fenced block is searched before the
    whole text, so a code block after the answer does not hide it."""
    fence = _FENCE.search(text)
    regions = ([(fence.start(1), fence.end(1))] if fence else []) + [(0, len(text))]
    first_reason = NO_OBJECT
    for lo, hi in regions:
        data, reason, final = _object_in(text, lo, hi)
        if data is not None or final:
            return data, reason
        # Broken JSON anywhere says more than "nothing found" in a fenced block.
        first_reason = reason if first_reason == NO_OBJECT else first_reason
    return None, first_reason


def _object_in(text: str, lo: int, hi: int) -> tuple[dict | None, str, bool]:
    """The first object in ``text[lo:hi]``: (object, "", True), or (None, reason, final) where
    final means the region is JSON but not an object, so searching elsewhere would be wrong."""
    region = text[lo:hi]
    if not region.strip():
        return None, NO_OBJECT, False
    try:
        whole = _DECODER.decode(region)
    except (ValueError, RecursionError):
        pass
    else:
        if isinstance(whole, dict):
            return whole, "", True
        return None, f"expected a JSON object, got {_json_kind(whole)}", True
    spans = _top_level_spans(region)
    first_reason, attempts, pos = None, 0, 0
    while attempts < MAX_ATTEMPTS and (start := region.find("{", pos)) != -1:
        if first_reason and not _OBJECT_START.match(region, start):
            # The parser would stop at once here, and only the first error is reported.
            pos = spans.get(start, start + 1)
            continue
        attempts += 1
        try:
            return _DECODER.raw_decode(region, start)[0], "", True
        except (ValueError, RecursionError) as exc:
            first_reason = first_reason or _json_reason(exc, text, lo)
            # A broken balanced object is skipped whole, so nothing inside it (a nested object, a
            # brace in a string) is taken for the answer; in unclosed text, resume where the parser
            # stopped, so a truncated answer is reported as such.
            error_pos = exc.pos if isinstance(exc, json.JSONDecodeError) else start
            pos = spans.get(start, max(error_pos, start + 1))
    return None, first_reason or NO_OBJECT, False


def _top_level_spans(text: str) -> dict[int, int]:
    """Where each balanced top-level ``{...}`` ends (exclusive), by where it starts, ignoring
    braces inside JSON strings. One pass; an unclosed one has no entry."""
    spans: dict[int, int] = {}
    depth, start, in_string = 0, 0, False
    for m in _TOKENS.finditer(text):
        token = m.group()
        if in_string:
            # Escape pairs and braces inside a string mean nothing; only a bare quote ends it.
            in_string = token != '"'
            continue
        # Outside strings a backslash escapes nothing; what follows it still counts.
        token = token[-1]
        if token == "{":
            start = m.end() - 1 if depth == 0 else start
            depth += 1
        elif token == "}" and depth:
            depth -= 1
            if depth == 0:
                spans[start] = m.end()
        elif token == '"' and depth:
            in_string = True
    return spans


def _json_reason(exc: Exception, text: str, offset: int) -> str:
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        # Positions in the model's whole text, which is what a reader sees.
        located = json.JSONDecodeError(exc.msg, text, offset + exc.pos)
        return f"invalid JSON: {exc.msg} (line {located.lineno}, column {located.colno})"
    return f"invalid JSON: {exc}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else type(value).__name__


def _render_error(error) -> str:
    """One validation error as ``missing field 'x'`` or ``field 'x': <message>``."""
    where = _render_path(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        names = ", ".join(repr(f"{where}.{name}" if where else name) for name in missing)
        return f"missing field{'s' if len(missing) > 1 else ''} {names}"
    return f"field {where!r}: {error.message}" if where else error.message


def _render_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clip(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def _load_schema_text(text: str) -> Any:
    if not text.strip():
        raise SynthError(f"The output schema is empty. Paste a JSON Schema, e.g. {SCHEMA_EXAMPLE}.")
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SynthError(f"The output schema is neither JSON nor YAML ({problem}{where}). "
                         "Fix the syntax there.") from None


def _plain_json(schema: Any) -> dict:
    """A JSON-only deep copy of ``schema``; SynthError if it is not a mapping of plain JSON."""
    if not isinstance(schema, dict):
        raise SynthError(f"The output schema must be a JSON object, got {_json_kind(schema)}. "
                         f"Write it like {SCHEMA_EXAMPLE}.")
    try:
        copy = json.loads(json.dumps(schema, allow_nan=False))
    except (TypeError, ValueError):
        copy = None
    # The round trip also catches keys that are not text, which json.dumps silently converts.
    if copy != schema:
        raise SynthError("The output schema holds values JSON cannot store (a date, a number as a "
                         "key, NaN...). Quote them as strings.")
    return copy


def _validator(schema: dict):
    # jsonschema is imported when a schema is first used (0.3 s that no page's first draw should pay)
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    return validator_for(schema, default=Draft202012Validator)(schema)


def _check_schema(schema: dict) -> None:
    if not isinstance(schema.get("$schema", ""), str):
        raise SynthError("The output schema's \"$schema\" must be a URI string; remove it to use "
                         "Draft 2020-12.")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = f" at {_render_path(exc.path)!r}" if exc.path else ""
        raise SynthError(f"The output schema is not a valid JSON Schema{where}: "
                         f"{_clip(exc.message)}. Fix that part of the schema.") from None
    if schema.get("type") != "object":
        got = f"got {json.dumps(schema['type'])}" if "type" in schema else "it has no \"type\""
        raise SynthError(f"The output schema must describe a JSON object ({got}). Set \"type\": "
                         f"\"object\" at the top level, like {SCHEMA_EXAMPLE}.")
    if not schema.get("properties"):
        raise SynthError("The output schema has no \"properties\". List each output field under "
                         f"\"properties\", like {SCHEMA_EXAMPLE}.")


def _check_refs(spec: OutputSpec) -> None:
    """Refuse a schema whose field definitions point somewhere that cannot be loaded."""
    import referencing.exceptions

    try:
        list(_validator(spec.schema).iter_errors(json.loads(spec.example())))
    except referencing.exceptions.Unresolvable as exc:
        raise SynthError(f"The output schema has a $ref that cannot be resolved ({exc}). Put the "
                         "definition under \"$defs\" and refer to it as \"#/$defs/name\".") from None
    except RecursionError:
        raise SynthError("The output schema's $refs point at each other in a loop. Make each "
                         "definition describe a value instead of only referring on.") from None


def _example_value(prop: Any) -> Any:
    kind = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind == "object" and isinstance(prop.get("properties"), dict):
        # Show nested keys too: a model copies the example's shape.
        return {k: _example_value(v) for k, v in prop["properties"].items()}
    return EXAMPLE_VALUES.get(kind, "...")


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _describe_keys(d: Any) -> str:
    if not isinstance(d, dict):
        return type(d).__name__
    return f"keys {sorted(map(str, d))}" if d else "an empty mapping"
