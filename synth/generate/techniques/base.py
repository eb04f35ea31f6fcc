"""What a technique is: a registry entry that turns a run configuration into a plan of items
(the messages to send, or the finished text when no model is needed), and carries everything
callers would otherwise match by name (its input, whether it calls a model, whether it makes
prompt versions, its smallest n, its form sections).

Reads: a RunConfig (and, for some techniques, source texts or earlier runs). Writes: nothing;
:mod:`synth.generate.execute` executes the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec
from synth.kernel.registry import Registry

if TYPE_CHECKING:
    from synth.generate.config import RunConfig
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


# What a technique may start from; the Generate page and the CLI ask for it accordingly.
INPUTS = ("template", "sources", "grammar")
# Sections of the Generate page's form a technique may list in ``form``, in the order it lists them.
FORM_SECTIONS = ("template", "variables", "sampling_mode", "examples", "source", "source_template",
                 "per_source", "grammar")


class Technique:
    """A way to make data. Subclasses set the class attributes and implement ``plan``."""

    name = ""
    title = ""
    description = ""
    uses_llm = True  # False: no model is called; items record ``model`` as their model
    model: str | None = None
    input = "template"  # one of INPUTS
    versioned = True  # its runs make or reuse prompt versions
    takes_samples = False  # can run on fixed variable values per item (A/B comparisons)
    min_n = 1  # the smallest n; 0 means "every source"
    default_n = 5
    form: tuple[str, ...] = ()  # sections of the Generate page, from FORM_SECTIONS
    default_template = ""
    provides: tuple[str, ...] = ()  # placeholders the technique fills itself (not user variables)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _validate_entry(cls)

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:  # pragma: no cover - interface
        raise NotImplementedError

    def version(self, cfg: "RunConfig") -> PromptSpec | None:
        """The prompt version a run of ``cfg`` makes or reuses (None if the technique has no prompt)."""
        return None

    def item_fields(self, text: str, planned: Planned) -> dict[str, Any] | None:
        """Structured fields of an item when the run declared none (default: no fields)."""
        return None


def _validate_entry(cls: type) -> None:
    """Refuse a technique whose entry names an unknown input or form section."""
    if cls.input not in INPUTS:
        raise ValueError(f"technique {cls.name!r}: input {cls.input!r} is not one of {INPUTS}")
    unknown = [s for s in cls.form if s not in FORM_SECTIONS]
    if unknown:
        raise ValueError(f"technique {cls.name!r}: unknown form sections {unknown}")
    if not cls.uses_llm and not cls.model:
        raise ValueError(f"technique {cls.name!r} calls no model, so it must name the model its items record")


