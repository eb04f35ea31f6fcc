"""Generation: a :class:`RunConfig` in, a run and its items out.

Reads: the run configuration (and, through the technique, source texts or earlier runs).
Writes: nothing itself; returns the run, its items and its prompt version for the store to save in
one transaction. Model calls go through litellm, concurrently (see :mod:`synth.batch`).
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from synth import providers, settings
from synth.batch import BatchSettings, Call, CallResult, describe_failures, run_batch
from synth.errors import SynthError
from synth.records import Item, PromptSpec, Run
from synth.structured import OutputSpec, parse_output
from synth.techniques import Planned, get_technique

MAX_ITEMS = 100_000
MAX_TOKENS_LIMIT = 4096
SYMBOLIC_MODEL = "symbolic"
# Settings that are part of a prompt version (besides template, system prompt and variables).
VERSION_PARAMS = ("technique", "model", "temperature", "top_p", "max_tokens", "sampling_mode", "examples",
                  "k_examples", "avoid", "k_avoid", "output")


@dataclass
class RunConfig:
    """Everything needed to make one run; saved with the run and as a recipe file."""

    technique: str = "sampling"
    template: str = ""
    variables: dict[str, list[str]] = field(default_factory=dict)
    n: int = 5
    model: str = ""
    temperature: float = settings.DEFAULT_TEMPERATURE
    max_tokens: int = settings.DEFAULT_MAX_TOKENS
    top_p: float | None = None
    seed: int = settings.DEFAULT_SEED
    system_prompt: str = ""
    prompt_name: str = "default"
    version_label: str | None = None  # a name for the prompt version this run makes or uses
    prompt_parent: str | None = None  # the version this one was edited from (default: the newest)
    run_name: str | None = None
    api_base: str | None = None
    # sampling
    sampling_mode: str = "product"
    samples: list[dict[str, str]] | None = None  # fixed variable values per item (A/B comparisons)
    examples: list[str] = field(default_factory=list)
    k_examples: int = 2
    avoid: list[str] = field(default_factory=list)
    avoid_runs: list[str] = field(default_factory=list)
    k_avoid: int = 5
    # back-translation and transformation
    source: dict[str, Any] | None = None
    per_source: int = 1
    # symbolic
    grammar: dict[str, Any] | str | None = None
    unique: bool = False
    # every LLM technique
    output: dict[str, Any] | None = None
    concurrency: int = 4
    budget_usd: float | None = None
    regenerate: int = 0
    judge: dict[str, Any] | None = None

    def resolved_model(self) -> str:
        return (self.model or "").strip() or settings.get("default_model")

    def output_spec(self) -> OutputSpec | None:
        return OutputSpec.from_dict(self.output) if self.output else None

    def prompt_spec(self) -> PromptSpec:
        """The prompt version of a template run, after checking the template and its values."""
        return validate_template(self)

    def version_params(self) -> dict[str, Any]:
        """The generation parameters that belong to a prompt version: changing one makes a new one."""
        return {name: (self.resolved_model() if name == "model" else getattr(self, name))
                for name in VERSION_PARAMS}

    def version_spec(self, template: str, variables: dict[str, list[str]]) -> PromptSpec:
        return PromptSpec(template=template, variables=variables, system_prompt=self.system_prompt or "",
                          name=(self.prompt_name or "default").strip() or "default", params=self.version_params(),
                          parent_id=self.prompt_parent or None, label=(self.version_label or "").strip() or None)

    def to_dict(self) -> dict[str, Any]:
        """Only what differs from the defaults, for readable recipes."""
        default = RunConfig()
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "prompt_parent":
                continue  # a version id of one database: not part of a shareable recipe
            if value != getattr(default, f.name) or f.name == "technique":
                out[f.name] = value
        if isinstance(out.get("source"), dict):
            out["source"] = {k: v for k, v in out["source"].items() if k != "data"}  # no uploaded bytes
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SynthError(f"Unknown setting(s) {', '.join(unknown)} in the run configuration. "
                             f"Known settings: {', '.join(sorted(known))}.")
        return cls(**data)

    def validate(self) -> None:
        get_technique(self.technique)
        limit_low = 0 if self.technique in ("back_translation", "transform") else 1
        if not limit_low <= self.n <= MAX_ITEMS:
            raise SynthError(f"The number of items must be between {limit_low} and {MAX_ITEMS}, got {self.n}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise SynthError(f"Temperature must be between 0 and 2, got {self.temperature}.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise SynthError(f"top_p must be in (0, 1], got {self.top_p}.")
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise SynthError(f"Max tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {self.max_tokens}.")
        if self.samples is not None and (len(self.samples) != self.n
                                         or not all(isinstance(s, dict) for s in self.samples)):
            raise SynthError(f"samples must give the variable values of each of the {self.n} items "
                             f"(a list of {self.n} objects), got {len(self.samples)}.")
        if self.k_examples < 0 or self.k_avoid < 0 or self.per_source < 1:
            raise SynthError("k_examples and k_avoid must not be negative; per_source must be at least 1.")
        BatchSettings(model="", concurrency=self.concurrency, budget_usd=self.budget_usd,
                      regenerate=self.regenerate).validate()
        self.output_spec()  # raises on a bad schema


def template_fields(template: str) -> list[str]:
    """The variable names a template uses, in order of first use."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SynthError(f"The template has unbalanced braces ({exc}). Write variables as {{name}} "
                         "and literal braces as {{{{ and }}}}.") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise SynthError(f"Template variable {{{name}}} is not a plain name. Use letters, digits "
                             "and underscores, like {topic}; write a literal brace as {{ or }}.")
        if spec or conversion:
            raise SynthError(f"Template variable {{{name}}} has a format spec; write it as {{{name}}}.")
        if name not in names:
            names.append(name)
    return names


def parse_var_spec(spec: str) -> tuple[str, list[str]]:
    """``name=v1,v2`` from the CLI as (name, [v1, v2])."""
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise SynthError(f"--var {spec!r} is not of the form name=value1,value2.")
    parsed = [v.strip() for v in values.split(",") if v.strip()]
    if not parsed:
        raise SynthError(f"--var {name} has no values. Give them as {name}=value1,value2.")
    return name, parsed


def validate_template(cfg: RunConfig) -> PromptSpec:
    """Check a template run before any call is made; return its prompt version."""
    if not cfg.template or not cfg.template.strip():
        raise SynthError("The prompt template is empty. Write the instruction to send to the model, "
                         "e.g. 'Write a short review of a {product}.'")
    fields_used = template_fields(cfg.template)
    variables = {k.strip(): [str(v) for v in vals if str(v).strip()] for k, vals in cfg.variables.items()}
    provided = {"examples", "avoid"}  # filled in by the sampling technique itself
    undefined = [f for f in fields_used if f not in provided and not variables.get(f)]
    if undefined:
        names = ", ".join(undefined)
        raise SynthError(f"The template uses {{{undefined[0]}}} but no values were given for: {names}. "
                         f"Add values (on the page, one per line; in the CLI, --var {undefined[0]}=a,b) "
                         "or remove the variable from the template.")
    used = {k: variables[k] for k in fields_used if k in variables}
    return cfg.version_spec(cfg.template, used)


def render(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def build_messages(system_prompt: str, user: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user}]


def _response_format(model: str, spec: OutputSpec | None) -> dict:
    if spec is None:
        return {}
    if providers.is_local(model):
        # llama.cpp turns a schema into a grammar, so even a 135M model emits the declared keys.
        return {"response_format": {"type": "json_object", "schema": spec.schema}}
    return {"response_format": {"type": "json_object"}}


def _item_from(planned: Planned, result: CallResult | None, model: str, params: dict,
               spec: OutputSpec | None, technique: str) -> Item:
    c = result.completion if result else None
    text = c.text if c else (planned.text or "")
    item = Item(text=text, idx=planned.idx, rendered_prompt=planned.rendered_prompt,
                variables=planned.variables, model=model, params=params,
                tokens_in=c.tokens_in if c else 0, tokens_out=c.tokens_out if c else 0,
                latency_ms=c.latency_ms if c else 0.0, cost_usd=c.cost_usd if c else 0.0,
                finish_reason=c.finish_reason if c else None, meta=dict(planned.meta),
                source_ref=planned.source_ref, source_text=planned.source_text,
                cached=bool(result and result.cached))
    if spec is not None:
        parsed = parse_output(text, spec)
        item.fields, item.valid, item.invalid_reason = parsed.data, parsed.valid, parsed.reason
    elif technique == "back_translation":
        item.fields = {"instruction": text, "response": planned.source_text}
    return item


def execute(cfg: RunConfig, store=None, on_item: Callable[[Item, int, int], None] | None = None
            ) -> tuple[Run, list[Item], PromptSpec | None]:
    """Make the items ``cfg`` describes. Failed calls become the run's failures; raises SynthError
    (and returns nothing) if the configuration is wrong or every call failed."""
    cfg.validate()
    technique = get_technique(cfg.technique)
    plan = technique.plan(cfg, store)
    if not plan.items:
        raise SynthError("The configuration makes no items. Check the source, the grammar or n.")
    spec = cfg.output_spec()
    model = cfg.resolved_model() if technique.uses_llm else SYMBOLIC_MODEL
    name = (cfg.run_name or "").strip() or f"{plan.prompt.name if plan.prompt else cfg.technique} · {model}"
    batch = BatchSettings(model=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                          top_p=cfg.top_p, seed=cfg.seed, api_base=cfg.api_base,
                          concurrency=cfg.concurrency, budget_usd=cfg.budget_usd, regenerate=cfg.regenerate)
    run = Run(name=name, technique=cfg.technique, model=model, config=cfg.to_dict(),
              budget_usd=cfg.budget_usd,
              params={"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "top_p": cfg.top_p,
                      "seed": cfg.seed, "n": len(plan.items), "concurrency": cfg.concurrency,
                      "regenerate": cfg.regenerate, "api_base": providers.redact_url(cfg.api_base)}
              if technique.uses_llm else {"seed": cfg.seed, "n": len(plan.items), "unique": cfg.unique})
    total = len(plan.items)
    started = time.perf_counter()
    if not technique.uses_llm:
        items = [_item_from(p, None, model, {"seed": cfg.seed}, spec, cfg.technique) for p in plan.items]
        for i, item in enumerate(items):
            if on_item:
                on_item(item, i, total)
        run.wall_s = time.perf_counter() - started
        return run, items, plan.prompt

    by_idx = {p.idx: p for p in plan.items}
    made: list[Item] = []

    def collect(result: CallResult) -> None:
        if result.ok:
            item = _item_from(by_idx[result.idx], result, model, batch.call_params(result.idx), spec,
                              cfg.technique)
            made.append(item)
            if on_item:
                on_item(item, len(made) - 1, total)

    outcome = run_batch([Call(p.idx, p.messages, _response_format(model, spec)) for p in plan.items],
                        batch, store, on_result=collect)
    run.wall_s = outcome.wall_s
    run.failures = [{"idx": r.idx, "error_kind": r.error_kind, "message": r.error or "", "attempts": r.attempts,
                     "source_ref": by_idx[r.idx].source_ref} for r in outcome.failed]
    run.n_skipped = len(outcome.skipped)
    if not made:
        why = describe_failures(outcome) or f"the budget of ${cfg.budget_usd:g} was reached"
        raise SynthError(f"No item was made: {why}. Nothing was saved.")
    run.status = "budget" if outcome.budget_reached else ("partial" if run.failures else "complete")
    made.sort(key=lambda it: it.idx)
    return run, made, plan.prompt
