"""Execution: a :class:`~synth.generate.config.RunConfig` in, a run and its items out.

Reads: the run configuration (and, through the technique, source texts or earlier runs).
Writes: nothing itself; returns the run, its items and its prompt version for the store to save in
one transaction. Model calls go through litellm, concurrently (see :mod:`synth.llm.batch`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from synth.generate.config import RunConfig
from synth.generate.techniques import Planned, Technique, get_technique
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run, content_hash
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


@dataclass
class Prepared:
    """A run about to be made: the run record, its planned items and how to call the model."""

    cfg: RunConfig
    run: Run
    plan: list[Planned]
    prompt: PromptSpec | None
    technique: Technique
    model: str
    spec: OutputSpec | None
    batch: BatchSettings

    @property
    def total(self) -> int:
        return len(self.plan)


def config_hash(cfg: RunConfig) -> str:
    """What identifies a batch: its whole configuration but the run's name (the same command run
    again, after an interruption, resumes the run it began)."""
    return content_hash({k: v for k, v in cfg.to_dict().items() if k != "run_name"})


def prepare(cfg: RunConfig, store=None, run: Run | None = None) -> Prepared:
    """Plan the items ``cfg`` describes and the run that will hold them (``run``: an existing run
    to resume into, which keeps its id, name and creation time)."""
    cfg.validate()
    technique = get_technique(cfg.technique)
    plan = technique.plan(cfg, store)
    if not plan.items:
        raise SynthError("The configuration makes no items. Check the source, the grammar or n.")
    model = cfg.resolved_model() if technique.uses_llm else technique.model
    name = (cfg.run_name or "").strip() or f"{plan.prompt.name if plan.prompt else cfg.technique} · {model}"
    batch = BatchSettings(model=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                          top_p=cfg.top_p, seed=cfg.seed, api_base=cfg.api_base,
                          concurrency=cfg.concurrency, budget_usd=cfg.budget_usd, regenerate=cfg.regenerate)
    params = ({"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "top_p": cfg.top_p,
               "seed": cfg.seed, "n": len(plan.items), "concurrency": cfg.concurrency,
               "regenerate": cfg.regenerate, "api_base": providers.redact_url(cfg.api_base)}
              if technique.uses_llm else {"seed": cfg.seed, "n": len(plan.items), "unique": cfg.unique})
    params["config_hash"] = config_hash(cfg)
    fresh = Run(name=name, technique=cfg.technique, model=model, config=cfg.to_dict(),
                budget_usd=cfg.budget_usd, params=params)
    if run is not None:
        fresh.run_id, fresh.name, fresh.created_at, fresh.wall_s = run.run_id, run.name, run.created_at, run.wall_s
    return Prepared(cfg, fresh, plan.items, plan.prompt, technique, model, cfg.output_spec(), batch)


def make_items(prep: Prepared, store=None, on_item: Callable[[Item, int, int], None] | None = None,
               skip: set[int] | frozenset = frozenset(), cancel: threading.Event | None = None,
               on_partial: Callable[[dict[int, str]], None] | None = None) -> list[Item]:
    """Make the planned items (but those at positions ``skip``, already made), handing each to
    ``on_item`` as it arrives. Failed calls become the run's failures; raises SynthError if the
    configuration is wrong or every call failed (``cancel``: no new call starts once it is set;
    ``on_partial``: {plan position: text so far} of the items being written, see ``run_batch``)."""
    run, total = prep.run, prep.total
    started = time.perf_counter()
    todo = [p for p in prep.plan if p.idx not in skip]
    if not prep.technique.uses_llm:
        items = [_item_from(p, None, prep.model, {"seed": prep.cfg.seed}, prep.spec, prep.technique) for p in todo]
        for i, item in enumerate(items):
            if on_item:
                on_item(item, i, total)
        run.wall_s = time.perf_counter() - started
        return items

    by_idx = {p.idx: p for p in prep.plan}
    made: list[Item] = []

    def collect(result: CallResult) -> None:
        if result.ok:
            item = _item_from(by_idx[result.idx], result, prep.model, prep.batch.call_params(result.idx),
                              prep.spec, prep.technique)
            made.append(item)
            if on_item:
                on_item(item, len(made) - 1 + len(skip), total)

    outcome = run_batch([Call(p.idx, p.messages, _response_format(prep.model, prep.spec)) for p in todo],
                        prep.batch, store, on_result=collect, cancel=cancel, on_partial=on_partial)
    run.wall_s += outcome.wall_s
    run.failures = [{"idx": r.idx, "error_kind": r.error_kind, "message": r.error or "", "attempts": r.attempts,
                     "source_ref": by_idx[r.idx].source_ref} for r in outcome.failed]
    run.n_skipped = len([r for r in outcome.skipped if r.error_kind != "Cancelled"])
    if not made and not skip and not outcome.cancelled:
        why = describe_failures(outcome) or f"the budget of ${prep.cfg.budget_usd:g} was reached"
        raise SynthError(f"No item was made: {why}. Nothing was saved.")
    run.status = ("cancelled" if outcome.cancelled else "budget" if outcome.budget_reached
                  else "partial" if run.failures else "complete")
    made.sort(key=lambda it: it.idx)
    return made


def execute(cfg: RunConfig, store=None, on_item: Callable[[Item, int, int], None] | None = None
            ) -> tuple[Run, list[Item], PromptSpec | None]:
    """Make the items ``cfg`` describes, for the store to save in one transaction. Failed calls
    become the run's failures; raises SynthError (and returns nothing) if the configuration is
    wrong or every call failed."""
    prep = prepare(cfg, store)
    return prep.run, make_items(prep, store, on_item), prep.prompt
