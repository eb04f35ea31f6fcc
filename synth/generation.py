"""Generation by sampling from a prompt template with ``{variables}``.

Reads: a :class:`GenerationRequest`. Writes: nothing; returns the run, its items and the prompt
for the store to save in one transaction. Every call goes through litellm (see providers).
"""

from __future__ import annotations

import itertools
import random
import string
import time
from dataclasses import dataclass, field
from typing import Callable

from synth import providers, settings
from synth.errors import SynthError
from synth.records import Item, PromptSpec, Run

MAX_ITEMS = 1000
MAX_TOKENS_LIMIT = 4096
TECHNIQUE = "sampling"


@dataclass
class GenerationRequest:
    """Everything needed to generate one batch."""

    template: str
    variables: dict[str, list[str]] = field(default_factory=dict)
    n: int = 5
    model: str = ""
    temperature: float = settings.DEFAULT_TEMPERATURE
    max_tokens: int = settings.DEFAULT_MAX_TOKENS
    top_p: float | None = None
    seed: int = settings.DEFAULT_SEED
    system_prompt: str = ""
    prompt_name: str = "default"
    run_name: str | None = None
    api_base: str | None = None

    def resolved_model(self) -> str:
        return (self.model or "").strip() or settings.get("default_model")


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


def validate_request(req: GenerationRequest) -> PromptSpec:
    """Check a request before any call is made; return its prompt version."""
    if not req.template or not req.template.strip():
        raise SynthError("The prompt template is empty. Write the instruction to send to the model, "
                         "e.g. 'Write a short review of a {product}.'")
    fields = template_fields(req.template)
    variables = {k.strip(): [v for v in vals if str(v).strip()] for k, vals in req.variables.items()}
    undefined = [f for f in fields if not variables.get(f)]
    if undefined:
        names = ", ".join(undefined)
        raise SynthError(f"The template uses {{{undefined[0]}}} but no values were given for: {names}. "
                         f"Add values (on the page, one per line; in the CLI, --var {undefined[0]}=a,b) "
                         "or remove the variable from the template.")
    if not 1 <= req.n <= MAX_ITEMS:
        raise SynthError(f"The batch size must be between 1 and {MAX_ITEMS}, got {req.n}.")
    if not 0.0 <= req.temperature <= 2.0:
        raise SynthError(f"Temperature must be between 0 and 2, got {req.temperature}.")
    if req.top_p is not None and not 0.0 < req.top_p <= 1.0:
        raise SynthError(f"top_p must be in (0, 1], got {req.top_p}.")
    if not 1 <= req.max_tokens <= MAX_TOKENS_LIMIT:
        raise SynthError(f"Max tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {req.max_tokens}.")
    used = {k: variables[k] for k in fields}
    return PromptSpec(template=req.template, variables=used, system_prompt=req.system_prompt or "",
                      name=(req.prompt_name or "default").strip() or "default")


def sample_variable_sets(variables: dict[str, list[str]], n: int, seed: int) -> list[dict[str, str]]:
    """``n`` assignments of values to variables: every combination once, in a seeded random
    order, before any combination repeats."""
    if not variables:
        return [{} for _ in range(n)]
    names = sorted(variables)
    combos = [dict(zip(names, values)) for values in itertools.product(*(variables[k] for k in names))]
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    while len(out) < n:
        order = combos[:]
        rng.shuffle(order)
        out.extend(order[: n - len(out)])
    return out


def render(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def build_messages(system_prompt: str, user: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user}]


def generate_batch(req: GenerationRequest, on_item: Callable[[Item, int, int], None] | None = None
                   ) -> tuple[Run, list[Item], PromptSpec]:
    """Generate ``req.n`` items. Raises SynthError (and returns nothing) if any call fails."""
    prompt = validate_request(req)
    model = req.resolved_model()
    providers.check_model(model, req.api_base)
    params = {"temperature": req.temperature, "max_tokens": req.max_tokens, "top_p": req.top_p,
              "seed": req.seed}
    run = Run(name=(req.run_name or "").strip() or f"{prompt.name} · {model}", technique=TECHNIQUE,
              model=model, params={**params, "n": req.n,
                                   "api_base": providers.redact_url(req.api_base)})
    items: list[Item] = []
    started = time.perf_counter()
    for idx, values in enumerate(sample_variable_sets(prompt.variables, req.n, req.seed)):
        user = render(prompt.template, values)
        item_params = {**params, "seed": req.seed + idx}
        result = providers.complete(model, build_messages(prompt.system_prompt, user),
                                    api_base=req.api_base, **item_params)
        item = Item(text=result.text, idx=idx, rendered_prompt=user, variables=values, model=model,
                    params=item_params, tokens_in=result.tokens_in, tokens_out=result.tokens_out,
                    latency_ms=result.latency_ms, cost_usd=result.cost_usd,
                    finish_reason=result.finish_reason, status="new")
        items.append(item)
        if on_item is not None:
            on_item(item, idx, req.n)
    run.wall_s = time.perf_counter() - started
    return run, items, prompt
