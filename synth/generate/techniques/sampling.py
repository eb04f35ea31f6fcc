"""Technique 1: sampling from a prompt with attributes and examples (Self-Instruct style)."""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING

from synth.generate.prompting import (
    bullets,
    render_template,
    template_fields,
    user_message,
)
from synth.generate.techniques.base import Plan, Planned, Technique, register_technique
from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec

if TYPE_CHECKING:
    from synth.generate.config import RunConfig
    from synth.store import DuckStore

SAMPLING_MODES = ("product", "random")


def sample_assignments(variables: dict[str, list[str]], n: int, seed: int, mode: str) -> list[dict[str, str]]:
    """``n`` assignments of values to variables.

    ``product``: every combination once, in a seeded random order, before any repeats.
    ``random``: each variable drawn independently for every item.
    """
    if mode not in SAMPLING_MODES:
        raise SynthError(f"Sampling mode must be 'product' or 'random', got {mode!r}.")
    if not variables:
        return [{} for _ in range(n)]
    names = sorted(variables)
    rng = random.Random(seed)
    if mode == "random":
        return [{k: rng.choice(variables[k]) for k in names} for _ in range(n)]
    combos = [dict(zip(names, values)) for values in itertools.product(*(variables[k] for k in names))]
    out: list[dict[str, str]] = []
    while len(out) < n:
        order = combos[:]
        rng.shuffle(order)
        out.extend(order[: n - len(out)])
    return out


@register_technique
class Sampling(Technique):
    name = "sampling"
    title = "Sampling from a prompt"
    description = ("A template with {variables}: each item draws its attribute values (topics, personas, "
                   "styles, difficulty), optionally with a random subset of few-shot examples and a list "
                   "of items to avoid (Self-Instruct style) to push diversity.")
    default_template = "Write one short customer review of a {product} that sounds {tone}."
    takes_samples = True
    provides = ("examples", "avoid")
    form = ("template", "variables", "sampling_mode", "examples")

    def version(self, cfg: "RunConfig") -> PromptSpec:
        return cfg.prompt_spec()  # checks the template and its values

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        prompt = self.version(cfg)
        fields = template_fields(cfg.template)
        rng = random.Random(cfg.seed)
        avoid_pool = list(cfg.avoid) + resolve_run_texts(store, cfg.avoid_runs)
        items = []
        assignments = sample_assignments({k: v for k, v in prompt.variables.items() if k not in self.provides},
                                         cfg.n, cfg.seed, cfg.sampling_mode)
        if cfg.samples is not None:  # the same values as another run, for the variables both use
            assignments = [{k: str(fixed.get(k, v)) for k, v in drawn.items()}
                           for drawn, fixed in zip(assignments, cfg.samples)]
        for idx, values in enumerate(assignments):
            examples = rng.sample(cfg.examples, min(cfg.k_examples, len(cfg.examples))) if cfg.examples else []
            avoid = rng.sample(avoid_pool, min(cfg.k_avoid, len(avoid_pool))) if avoid_pool else []
            fill = {**values, "examples": bullets(examples), "avoid": bullets(avoid)}
            body = render_template(cfg.template, fill)
            if examples and "examples" not in fields:
                body += f"\n\nExamples of the kind of text wanted:\n{bullets(examples)}"
            if avoid and "avoid" not in fields:
                body += f"\n\nWrite something different from each of these:\n{bullets(avoid)}"
            meta = {"examples": examples} if examples else {}
            if avoid:
                meta["avoid"] = avoid
            items.append(Planned(idx, user_message(cfg, body), rendered_prompt=body, variables=values,
                                 meta=meta))
        return Plan(prompt, items)


def resolve_run_texts(store: "DuckStore | None", runs: list[str]) -> list[str]:
    """The texts of earlier runs, named by id or name."""
    if not runs:
        return []
    if store is None:
        raise SynthError("Reading earlier runs needs a database.")
    ids = [store.resolve_run(r) for r in runs]
    return store.items(ids)["text"].tolist()
