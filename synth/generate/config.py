"""The run configuration: everything needed to make one run, its defaults and its validation.

Reads and writes nothing. Saved with each run (``runs.config``) and as a recipe file.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from synth.generate.prompting import template_fields
from synth.generate.techniques import DEFAULT_TECHNIQUE, TECHNIQUES, get_technique
from synth.generate.techniques.sampling import SAMPLING_MODES
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec
from synth.kernel.urls import redact_values
from synth.llm.batch import BatchSettings
from synth.llm.structured import OutputSpec

MAX_ITEMS = 100_000
MAX_TOKENS_LIMIT = 4096
# Settings that are part of a prompt version (besides template, system prompt and variables).
VERSION_PARAMS = ("technique", "model", "temperature", "top_p", "max_tokens", "sampling_mode", "examples",
                  "k_examples", "avoid", "k_avoid", "output")


@dataclass
class RunConfig:
    """Everything needed to make one run; saved with the run and as a recipe file."""

    technique: str = DEFAULT_TECHNIQUE
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
    # a template with variables
    sampling_mode: str = "product"
    samples: list[dict[str, str]] | None = None  # fixed variable values per item (A/B comparisons)
    examples: list[str] = field(default_factory=list)
    k_examples: int = 2
    avoid: list[str] = field(default_factory=list)
    avoid_runs: list[str] = field(default_factory=list)
    k_avoid: int = 5
    # source texts
    source: dict[str, Any] | None = None
    per_source: int = 1
    # a grammar
    grammar: dict[str, Any] | str | None = None
    unique: bool = False
    # every LLM technique
    output: dict[str, Any] | None = None
    concurrency: int = settings.DEFAULT_CONCURRENCY
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
        """Only what differs from the defaults, for readable recipes; addresses without user:password."""
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
        return redact_values(out)  # no server password in a recipe or a stored run

    @classmethod
    def from_dict(cls, data: dict[str, Any], what: str = "run configuration") -> RunConfig:
        """A configuration from a recipe or a saved run, after checking the type of every value
        (see :func:`checked_types`); one SynthError lists every rule broken."""
        from synth.generate import schema

        checked = schema.check(config_model(), data, what)
        return cls(**{name: getattr(checked, name) for name in checked.model_fields_set})

    def validate(self) -> None:
        """Check every range rule; one SynthError lists each one broken."""
        problems = self._range_problems()
        for check in (self._check_batch, self.output_spec):
            try:
                check()
            except SynthError as exc:
                problems.append(str(exc))
        if len(problems) == 1:
            raise SynthError(problems[0])
        if problems:
            raise SynthError(f"The run configuration has {len(problems)} problems:\n"
                             + "\n".join(f"- {p}" for p in problems))

    def _range_problems(self) -> list[str]:
        problems = []
        limit_low = get_technique(self.technique).min_n
        if not limit_low <= self.n <= MAX_ITEMS:
            problems.append(f"The number of items must be between {limit_low} and {MAX_ITEMS}, got {self.n}.")
        if not 0.0 <= self.temperature <= 2.0:
            problems.append(f"Temperature must be between 0 and 2, got {self.temperature}.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}.")
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            problems.append(f"Max tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {self.max_tokens}.")
        if self.samples is not None and (len(self.samples) != self.n
                                         or not all(isinstance(s, dict) for s in self.samples)):
            problems.append(f"samples must give the variable values of each of the {self.n} items "
                            f"(a list of {self.n} objects), got {len(self.samples)}.")
        if self.k_examples < 0 or self.k_avoid < 0 or self.per_source < 1:
            problems.append("k_examples and k_avoid must not be negative; per_source must be at least 1.")
        return problems

    def _check_batch(self) -> None:
        BatchSettings(model="", concurrency=self.concurrency, budget_usd=self.budget_usd,
                      regenerate=self.regenerate).validate()


def checked_types() -> dict[str, Any]:
    """The type of every run setting as a recipe file or a saved run is checked: the dataclass's
    own annotations, with the few that need more than a type spelt out here."""
    from synth.generate import schema

    types = typing.get_type_hints(RunConfig)
    types.update(
        technique=schema.choice(lambda: TECHNIQUES, "technique"),
        sampling_mode=schema.choice(lambda: SAMPLING_MODES, "sampling mode"),
        # Each variable's values are a list, even of one value: "tone: calm" is refused, not split
        # into letters or guessed at ("calm, angry" could be one value or two).
        variables=dict[str, list[schema.Text]],
        samples=list[dict[str, schema.Text]] | None,
        grammar=schema.either(dict[str, Any] | str | None,
                              "a mapping with start and rules, or the grammar as text"),
    )
    return types


@functools.cache
def config_model():
    """The strict pydantic model of a run configuration given as data (built once, on first use)."""
    from synth.generate import schema

    return schema.strict_model("RunConfigData", checked_types())


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
    provided = set(get_technique(cfg.technique).provides)  # filled in by the technique itself
    undefined = [f for f in fields_used if f not in provided and not variables.get(f)]
    if undefined:
        names = ", ".join(undefined)
        raise SynthError(f"The template uses {{{undefined[0]}}} but no values were given for: {names}. "
                         f"Add values (on the page, one per line; in the CLI, --var {undefined[0]}=a,b) "
                         "or remove the variable from the template.")
    used = {k: variables[k] for k in fields_used if k in variables}
    return cfg.version_spec(cfg.template, used)


