"""The ways to make data, in a registry: each technique turns a run configuration into a plan of
items to make (the messages to send, or the finished text when no model is needed).

Reads: a :class:`~synth.generation.RunConfig` (and, for some techniques, source texts or earlier
runs). Writes: nothing; :mod:`synth.generation` executes the plan.

Human-AI collaboration (accept, reject, edit) is not a way to generate and lives in
:mod:`synth.review`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synth.errors import SynthError
from synth.records import PromptSpec
from synth.registry import Registry

if TYPE_CHECKING:
    from synth.generation import RunConfig
    from synth.sources import SourceText
    from synth.store import DuckStore


@dataclass
class Planned:
    """One item to make: messages for a model, or ``text`` already made (symbolic)."""

    idx: int
    messages: list[dict] | None = None
    text: str | None = None
    rendered_prompt: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    source_ref: str | None = None
    source_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    prompt: PromptSpec | None
    items: list[Planned]


TECHNIQUES = Registry("technique")
register_technique = TECHNIQUES.add


def get_technique(name: str) -> "Technique":
    if name not in TECHNIQUES:
        raise SynthError(f"Unknown technique {name!r}. Use one of: {', '.join(TECHNIQUES)}.")
    return TECHNIQUES[name]()


class Technique:
    name = ""
    title = ""
    description = ""
    uses_llm = True
    default_template = ""

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:  # pragma: no cover - interface
        raise NotImplementedError


def _bullets(texts: list[str]) -> str:
    return "\n".join(f"- {' '.join(t.split())}" for t in texts)


def user_message(cfg: "RunConfig", body: str) -> list[dict]:
    """The chat messages for one item: system prompt, the body, output instructions if any."""
    from synth.generation import build_messages

    spec = cfg.output_spec()
    if spec is not None:
        body = f"{body}\n\n{spec.instructions()}"
    return build_messages(cfg.system_prompt, body)


def render_template(template: str, values: dict[str, Any]) -> str:
    from synth.generation import render

    try:
        return render(template, values)
    except KeyError as exc:
        raise SynthError(f"The template uses {{{exc.args[0]}}}, which this technique does not provide. "
                         f"Available here: {', '.join('{' + k + '}' for k in sorted(values))}.") from None


# -- 1. sampling from a prompt with attributes and examples -------------------------------------------

def sample_assignments(variables: dict[str, list[str]], n: int, seed: int, mode: str) -> list[dict[str, str]]:
    """``n`` assignments of values to variables.

    ``product``: every combination once, in a seeded random order, before any repeats.
    ``random``: each variable drawn independently for every item.
    """
    if mode not in ("product", "random"):
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

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        from synth.generation import template_fields

        prompt = cfg.prompt_spec()
        fields = template_fields(cfg.template)
        reserved = {"examples", "avoid"}
        rng = random.Random(cfg.seed)
        avoid_pool = list(cfg.avoid) + resolve_run_texts(store, cfg.avoid_runs)
        items = []
        assignments = sample_assignments({k: v for k, v in prompt.variables.items() if k not in reserved},
                                         cfg.n, cfg.seed, cfg.sampling_mode)
        if cfg.samples is not None:  # the same values as another run, for the variables both use
            assignments = [{k: str(fixed.get(k, v)) for k, v in drawn.items()}
                           for drawn, fixed in zip(assignments, cfg.samples)]
        for idx, values in enumerate(assignments):
            examples = rng.sample(cfg.examples, min(cfg.k_examples, len(cfg.examples))) if cfg.examples else []
            avoid = rng.sample(avoid_pool, min(cfg.k_avoid, len(avoid_pool))) if avoid_pool else []
            fill = {**values, "examples": _bullets(examples), "avoid": _bullets(avoid)}
            body = render_template(cfg.template, fill)
            if examples and "examples" not in fields:
                body += f"\n\nExamples of the kind of text wanted:\n{_bullets(examples)}"
            if avoid and "avoid" not in fields:
                body += f"\n\nWrite something different from each of these:\n{_bullets(avoid)}"
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


# -- 2 and 3. techniques that start from existing texts --------------------------------------------

def load_sources(cfg: "RunConfig", store: "DuckStore | None") -> list["SourceText"]:
    """The source texts a run starts from, as its ``source`` setting describes them."""
    from synth import sources
    from synth.sources import SourceText

    spec = dict(cfg.source or {})
    kind = spec.pop("kind", None)
    if kind == "pasted":
        found = sources.from_pasted(spec.get("text", ""), spec.get("split", "blank-line"))
    elif kind == "file":
        if not spec.get("path"):
            raise SynthError("Choose a JSONL or CSV file of source texts.")
        found = sources.from_file(spec["path"], spec.get("text_column", "text"), spec.get("data"))
    elif kind == "folder":
        if not spec.get("path"):
            raise SynthError("Give the folder that holds the source files.")
        found = sources.from_folder(spec["path"], **_file_options(spec))
    elif kind == "git":
        found = sources.from_git(spec.get("repo", "."), ref=spec.get("ref"), **_file_options(spec))
    elif kind == "run":
        if store is None:
            raise SynthError("Reading an earlier run needs a database.")
        run_id = store.resolve_run(spec["run"])
        frame = store.items([run_id])
        found = [SourceText(text=t, ref=i, meta={"run_id": run_id}) for t, i in zip(frame["text"], frame["item_id"])]
    else:
        raise SynthError("This technique needs source texts: pasted texts, a JSONL/CSV file, a folder, "
                         "a git repository or an earlier run (source kind 'pasted', 'file', 'folder', "
                         f"'git' or 'run'); got {kind!r}.")
    if not found:
        raise SynthError("The source holds no texts. Choose another source.")
    limit = cfg.n if cfg.n and cfg.n > 0 else len(found)
    return found[:limit]


def _file_options(spec: dict) -> dict:
    keys = ("include", "exclude", "max_files", "max_chars")
    return {k: (tuple(spec[k]) if k in ("include", "exclude") else spec[k]) for k in keys if k in spec}


class FromSources(Technique):
    """Shared planning for techniques that make ``per_source`` items from each source text."""

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        template = cfg.template or self.default_template
        prompt = cfg.version_spec(template, {})
        items = []
        for src in load_sources(cfg, store):
            columns = src.meta.get("columns", {}) if isinstance(src.meta, dict) else {}
            values = {**{k: v for k, v in columns.items() if isinstance(k, str)}, "text": src.text,
                      "ref": src.ref}
            body = render_template(template, values)
            for _ in range(max(1, cfg.per_source)):
                items.append(Planned(len(items), user_message(cfg, body), rendered_prompt=body,
                                     source_ref=src.ref, source_text=src.text,
                                     meta={k: v for k, v in (src.meta or {}).items() if k != "columns"}))
        return Plan(prompt, items)


@register_technique
class BackTranslation(FromSources):
    name = "back_translation"
    title = "Back-translation"
    description = ("Start from outputs (pasted texts, a file, a folder or a git repository) and ask the "
                   "model for the instruction or question that would produce each one.")
    default_template = ("Here is a text:\n\n{text}\n\nWrite the instruction or question that this text "
                        "answers. Reply with the instruction only.")


@register_technique
class Transform(FromSources):
    name = "transform"
    title = "Transform existing data"
    description = ("Apply a rewrite prompt to every row of a JSONL/CSV file or an earlier run: paraphrase, "
                   "restyle, translate, make harder. Every output keeps a link to its source row.")
    default_template = "Paraphrase this text, keeping its meaning:\n\n{text}"


# -- 5. symbolic generation ---------------------------------------------------------------------------

@register_technique
class Symbolic(Technique):
    name = "symbolic"
    title = "Symbolic (grammar, no LLM)"
    description = ("A slot grammar with weighted choices expands to items without any model: fast, free "
                   "and deterministic for a seed.")
    uses_llm = False

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        from synth.grammar import Grammar

        if not cfg.grammar:
            raise SynthError("Symbolic generation needs a grammar: a 'start' template and 'rules' with "
                             "weighted choices (see data/recipes/support_grammar.yaml).")
        grammar = Grammar.from_dict(cfg.grammar) if isinstance(cfg.grammar, dict) else Grammar.from_text(cfg.grammar)
        expansions = grammar.expand(cfg.n, seed=cfg.seed, unique=cfg.unique)
        return Plan(None, [Planned(i, text=e.text, variables=dict(e.choices)) for i, e in enumerate(expansions)])
