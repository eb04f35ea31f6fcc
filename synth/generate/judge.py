"""LLM-as-judge: any litellm model scores items against a rubric or checklist.

Reads: items and a :class:`Rubric`. Writes: the ``judgements`` table, one row per item and judge
call (a 1-5 score, pass/fail per criterion, a reason; invalid answers kept with their reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import content_hash, new_id, now
from synth.llm import providers
from synth.llm.batch import (
    BatchSettings,
    Call,
    CallResult,
    describe_failures,
    run_batch,
)
from synth.llm.structured import OutputSpec, parse_output
from synth.store import DuckStore

SCORE_MIN, SCORE_MAX = 1, 5
ITEM_CHARS = 4000


@dataclass(frozen=True)
class Criterion:
    name: str
    description: str


@dataclass
class Rubric:
    """What the judge checks: named pass/fail criteria and an overall 1-5 score."""

    name: str = "general quality"
    criteria: list[Criterion] = field(default_factory=lambda: [
        Criterion("on_task", "The text does what its prompt asked for."),
        Criterion("fluent", "The text is fluent and grammatical."),
        Criterion("self_contained", "The text makes sense on its own, without the prompt."),
    ])
    instructions: str = ("Give an overall score from 1 (unusable) to 5 (excellent) for use as "
                         "training data.")

    def __post_init__(self) -> None:
        if not self.criteria:
            raise SynthError("A rubric needs at least one criterion, e.g. 'on_task: does what was asked'.")
        names = [c.name for c in self.criteria]
        for n in names:
            if not n.isidentifier():
                raise SynthError(f"Criterion name {n!r} is not a plain name: use letters, digits and "
                                 "underscores, like on_task.")
        if len(set(names)) != len(names):
            raise SynthError("Criterion names must be unique.")

    @property
    def rubric_id(self) -> str:
        return "rb_" + content_hash(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "instructions": self.instructions,
                "criteria": [{"name": c.name, "description": c.description} for c in self.criteria]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Rubric":
        if not isinstance(data, dict):
            raise SynthError("A rubric must be a mapping with 'criteria' (a list of name and description).")
        raw = data.get("criteria")
        if not isinstance(raw, list):
            raise SynthError("The rubric has no 'criteria' list. Give each criterion a name and a description.")
        criteria = []
        for c in raw:
            if isinstance(c, dict) and "name" in c:
                criteria.append(Criterion(str(c["name"]), str(c.get("description", ""))))
            elif isinstance(c, str):
                criteria.append(_criterion_from_line(c))
            else:
                raise SynthError(f"Rubric criterion {c!r} needs a name and a description.")
        return cls(name=str(data.get("name", "rubric")), criteria=criteria,
                   instructions=str(data.get("instructions", cls().instructions)))

    @classmethod
    def from_text(cls, text: str) -> "Rubric":
        """YAML/JSON text, or simply one ``name: description`` per line (a checklist)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict) and "criteria" in data:
            return cls.from_dict(data)
        lines = [line.strip(" -\t") for line in text.splitlines() if line.strip()]
        if not lines:
            raise SynthError("The rubric is empty. Write one criterion per line as 'name: description'.")
        return cls(name="checklist", criteria=[_criterion_from_line(line) for line in lines])

    @classmethod
    def from_file(cls, path: str | Path) -> "Rubric":
        path = Path(path)
        if not path.is_file():
            raise SynthError(f"Rubric file not found: {path}.")
        return cls.from_text(path.read_text())

    def output_spec(self) -> OutputSpec:
        names = [c.name for c in self.criteria]
        return OutputSpec.from_schema({
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX},
                "criteria": {"type": "object", "properties": {n: {"type": "boolean"} for n in names},
                             "required": names},
                "reason": {"type": "string"},
            },
            "required": ["score", "criteria", "reason"],
        })

    def messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        """The judge's prompt for one item (its text, and how it was made when known)."""
        parts = ["You are judging one item of a synthetic dataset."]
        if item.get("rendered_prompt"):
            parts.append(f"It was made from this prompt:\n<<<\n{item['rendered_prompt'][:ITEM_CHARS]}\n>>>")
        if item.get("source_text"):
            parts.append(f"It was made from this source text:\n<<<\n{item['source_text'][:ITEM_CHARS]}\n>>>")
        fields = item.get("fields")
        if fields:
            parts.append(f"Its structured fields:\n{json.dumps(fields, ensure_ascii=False)[:ITEM_CHARS]}")
        parts.append(f"The item:\n<<<\n{str(item['text'])[:ITEM_CHARS]}\n>>>")
        checklist = "\n".join(f"- {c.name}: {c.description}" for c in self.criteria)
        parts.append(f"For each criterion answer true if the item meets it, false if not:\n{checklist}")
        parts.append(self.instructions)
        parts.append(self.output_spec().instructions())
        return [{"role": "user", "content": "\n\n".join(parts)}]


def _criterion_from_line(line: str) -> Criterion:
    name, _, description = line.partition(":")
    return Criterion(name.strip().replace(" ", "_").lower(), description.strip() or name.strip())


@dataclass
class JudgeResult:
    n_items: int
    n_valid: int
    score_mean: float | None
    pass_rates: dict[str, float]
    cost_usd: float | None
    n_failed: int
    judge_model: str
    rubric_id: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def judge_items(store: DuckStore, item_ids: list[str], model: str | None = None,
                rubric: Rubric | None = None, api_base: str | None = None, concurrency: int = settings.DEFAULT_CONCURRENCY,
                budget_usd: float | None = None, seed: int = 0,
                on_result: Callable[[CallResult], None] | None = None) -> JudgeResult:
    """Score ``item_ids`` with ``model`` against ``rubric`` and store one judgement per item."""
    rubric = rubric or Rubric()
    model = (model or "").strip() or settings.get("default_model")
    if not item_ids:
        raise SynthError("No items to judge. Choose a run or select items first.")
    frame = store.items_by_id(item_ids)
    records = frame.to_dict(orient="records")
    spec = rubric.output_spec()
    response_format = ({"response_format": {"type": "json_object", "schema": spec.schema}}
                       if providers.is_local(model) else {"response_format": {"type": "json_object"}})
    calls = [Call(i, rubric.messages({**r, "fields": _loads(r.get("fields"))}), response_format)
             for i, r in enumerate(records)]
    # Greedy decoding: a judge should give the same verdict for the same item.
    cfg = BatchSettings(model=model, temperature=0.0, max_tokens=200, seed=seed, api_base=api_base,
                        concurrency=concurrency, budget_usd=budget_usd)
    outcome = run_batch(calls, cfg, store, on_result=on_result)
    if not outcome.succeeded:
        raise SynthError(f"The judge made no judgement: {describe_failures(outcome)}. Nothing was saved.")
    rows = []
    for result in outcome.succeeded:
        record = records[result.idx]
        c = result.completion
        parsed = parse_output(c.text, spec)
        data = parsed.data or {}
        rows.append({
            "judgement_id": new_id("jd"), "item_id": record["item_id"], "run_id": record["run_id"],
            "judge_model": model, "rubric_id": rubric.rubric_id, "rubric": json.dumps(rubric.to_dict()),
            "score": float(data["score"]) if parsed.valid else None,
            "criteria": json.dumps(data.get("criteria")) if parsed.valid else None,
            "reason": str(data.get("reason", ""))[:2000] if parsed.valid else None,
            "valid": parsed.valid, "invalid_reason": parsed.reason, "tokens_in": c.tokens_in,
            "tokens_out": c.tokens_out, "cost_usd": c.cost_usd, "latency_ms": c.latency_ms,
            "created_at": now(),
        })
    store.save_judgements(rows)
    valid = [r for r in rows if r["valid"]]
    scores = [r["score"] for r in valid]
    pass_rates = {}
    for crit in rubric.criteria:
        votes = [json.loads(r["criteria"]).get(crit.name) for r in valid]
        pass_rates[crit.name] = sum(1 for v in votes if v is True) / len(votes) if votes else None
    costs = [r["cost_usd"] for r in rows]
    return JudgeResult(n_items=len(rows), n_valid=len(valid),
                       score_mean=sum(scores) / len(scores) if scores else None, pass_rates=pass_rates,
                       cost_usd=None if any(c is None for c in costs) else float(sum(costs)),
                       n_failed=len(outcome.failed), judge_model=model, rubric_id=rubric.rubric_id)


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
