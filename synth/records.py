"""Plain records passed between stages and written by the store."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def new_id(prefix: str) -> str:
    """A short random id such as ``run_3f9a0c1d2b4e``."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def text_hash(text: str) -> str:
    """The key under which a text's embedding is cached."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(obj: Any) -> str:
    """A stable hash of any JSON-serialisable value."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class PromptSpec:
    """A prompt template and the values its variables may take."""

    template: str
    variables: dict[str, list[str]] = field(default_factory=dict)
    system_prompt: str = ""
    name: str = "default"

    @property
    def prompt_id(self) -> str:
        return "p_" + content_hash(
            {"name": self.name, "template": self.template, "system": self.system_prompt,
             "variables": self.variables}
        )


@dataclass
class Item:
    """One generated or imported text and how it was made."""

    text: str
    idx: int
    run_id: str = ""
    item_id: str = field(default_factory=lambda: new_id("it"))
    prompt_id: str | None = None
    rendered_prompt: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cost_usd: float | None = 0.0
    finish_reason: str | None = None
    status: str = "new"
    created_at: datetime = field(default_factory=now)
    meta: dict[str, Any] = field(default_factory=dict)
    source_ref: str | None = None  # the row, file or item this one was made from
    source_text: str | None = None
    fields: dict[str, Any] | None = None  # parsed structured output
    valid: bool | None = None  # None: the run declared no output fields
    invalid_reason: str | None = None
    cached: bool = False  # the response came from the cache: no new spend

    @property
    def text_hash(self) -> str:
        return text_hash(self.text)


@dataclass
class Run:
    """A batch of items made by one technique with one model and one prompt version."""

    name: str
    technique: str
    run_id: str = field(default_factory=lambda: new_id("run"))
    prompt_id: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    created_at: datetime = field(default_factory=now)
    wall_s: float = 0.0
    status: str = "complete"  # "partial" if some calls failed, "budget" if the budget stopped it
    failures: list[dict[str, Any]] = field(default_factory=list)  # idx, error_kind, message, attempts, source_ref
    n_skipped: int = 0
    budget_usd: float | None = None
    config: dict[str, Any] | None = None  # what it takes to run it again
    role: str = "synthetic"  # or "reference": real data to compare the synthetic set with

    def totals(self, items: list[Item]) -> dict[str, Any]:
        costs = [i.cost_usd for i in items]
        return {
            "n_items": len(items),
            "tokens_in": sum(i.tokens_in for i in items),
            "tokens_out": sum(i.tokens_out for i in items),
            # Unknown if any item's cost is unknown: a partial sum would understate it.
            "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
            "latency_s": sum(i.latency_ms for i in items) / 1000.0,
        }
