"""The ways to make data, one file each, in one registry (human-AI collaboration, the fourth
way, is review: :mod:`synth.workflows.review`). A new technique is a new file here, imported below.
"""

from synth.generate.techniques.base import (
    FORM_SECTIONS,
    INPUTS,
    TECHNIQUES,
    Plan,
    Planned,
    Technique,
    get_technique,
    register_technique,
)

# isort: off
# Registration order is the order of the menus (the page's technique box, the CLI's choices).
from synth.generate.techniques.sampling import Sampling
from synth.generate.techniques.back_translation import BackTranslation  # noqa: F401
from synth.generate.techniques.transform import Transform  # noqa: F401
from synth.generate.techniques.symbolic import Symbolic  # noqa: F401
# isort: on

DEFAULT_TECHNIQUE = Sampling.name


def technique_for_input(kind: str) -> str:
    """The technique to use when only the kind of input is known (a CLI call with --grammar, say):
    the default technique if it takes that input, else the first registered one that does."""
    if TECHNIQUES[DEFAULT_TECHNIQUE].input == kind:
        return DEFAULT_TECHNIQUE
    for name, technique in TECHNIQUES.items():
        if technique.input == kind:
            return name
    raise ValueError(f"no technique takes {kind!r}")


__all__ = ["DEFAULT_TECHNIQUE", "FORM_SECTIONS", "INPUTS", "TECHNIQUES", "Plan", "Planned", "Technique",
           "get_technique", "register_technique", "technique_for_input"]
