"""Execution: a :class:`~synth.generate.config.RunConfig` in, a run and its items out.

Reads: the run configuration (and, through the technique, source texts or earlier runs).
Writes: nothing itself; returns the run, its items and its prompt version for the store to save in
one transaction. Model calls go through litellm, concurrently (see :mod:`synth.llm.batch`).
"""

from __future__ import annotations

import time
from typing import Callable

from synth.generate.config import RunConfig
from synth.generate.techniques import Planned, Technique, get_technique
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run
from synth.llm import providers
from synth.llm.batch import (
    BatchSettings,
    Call,
    CallResult,
    describe_failures,
    run_batch,
)
from synth.llm.structured import OutputSpec, parse_output


def _response_format(model: str, spec: OutputSpec | None) -> dict:
    if spec is None:
        return {}
    if providers.is_local(model):
        # llama.cpp turns a schema into a grammar, so even a 135M model emits the declared keys.
        return {"response_format": {"type": "json_object", "schema": spec.schema}}
    return {"response_format": {"type": "json_object"}}


def cap_text(text: str, meta: dict) -> str:
    """``text`` cut to the ``max_item_chars`` setting; a cut is recorded in ``meta`` (the item is
    kept: its tokens were paid for, and the cap only guards the store and the embedder)."""
    cap = settings.get("max_item_chars")
    if len(text) <= cap:
        return text
    meta["cut_at_chars"], meta["chars_generated"] = cap, len(text)
    return text[:cap]


def _item_from(planned: Planned, result: CallResult | None, model: str, params: dict,
               spec: OutputSpec | None, technique: Technique) -> Item:
    c = result.completion if result else None
    meta = dict(planned.meta)
    text = cap_text(c.text if c else (planned.text or ""), meta)
    item = Item(text=text, idx=planned.idx, rendered_prompt=planned.rendered_prompt,
                variables=planned.variables, model=model, params=params,
                tokens_in=c.tokens_in if c else 0, tokens_out=c.tokens_out if c else 0,
                latency_ms=c.latency_ms if c else 0.0, cost_usd=c.cost_usd if c else 0.0,
                finish_reason=c.finish_reason if c else None, meta=meta,
                source_ref=planned.source_ref, source_text=planned.source_text,
                cached=bool(result and result.cached))
    if spec is not None:
        parsed = parse_output(text, spec)
        item.fields, item.valid, item.invalid_reason = parsed.data, parsed.valid, parsed.reason
        if not parsed.valid and "cut_at_chars" in meta:
            item.invalid_reason = (f"cut to {meta['cut_at_chars']:,} of {meta['chars_generated']:,} characters "
                                   f"(SYNTH_MAX_ITEM_CHARS): {parsed.reason}")
    else:
        item.fields = technique.item_fields(text, planned)
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
    model = cfg.resolved_model() if technique.uses_llm else technique.model
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
        items = [_item_from(p, None, model, {"seed": cfg.seed}, spec, technique) for p in plan.items]
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
                              technique)
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
