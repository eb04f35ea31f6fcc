"""Technique 5: symbolic generation, a weighted slot grammar expanded with no model."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from synth.generate.grammar import Grammar
from synth.generate.techniques.base import Plan, Planned, Technique, register_technique
from synth.kernel.errors import SynthError

if TYPE_CHECKING:
    from synth.generate.config import RunConfig
    from synth.store import DuckStore

# A grammar's warnings (e.g. rules never used) go here; with no logging set up, Python prints them
# on stderr, which is where the CLI wants them.
log = logging.getLogger(__name__)


@register_technique
class Symbolic(Technique):
    name = "symbolic"
    title = "Symbolic (grammar, no LLM)"
    description = ("A slot grammar with weighted choices expands to items without any model: fast, free "
                   "and deterministic for a seed.")
    uses_llm = False
    model = "symbolic"
    input = "grammar"
    versioned = False
    form = ("grammar",)

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        if not cfg.grammar:
            raise SynthError("Symbolic generation needs a grammar: a 'start' template and 'rules' with "
                             "weighted choices (see data/recipes/support_grammar.yaml).")
        grammar = Grammar.from_dict(cfg.grammar) if isinstance(cfg.grammar, dict) else Grammar.from_text(cfg.grammar)
        for warning in grammar.warnings:
            log.warning(warning)
        expansions = grammar.expand(cfg.n, seed=cfg.seed, unique=cfg.unique)
        return Plan(None, [Planned(i, text=e.text, variables=dict(e.choices)) for i, e in enumerate(expansions)])
