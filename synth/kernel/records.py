"""Plain records passed between stages and written by the store."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from synth.kernel.text import is_missing
from synth.kernel.urls import redact_values

# An item's review status: made or imported, then accepted, rejected or edited by a person.
ITEM_STATUSES = ("new", "imported", "accepted", "rejected", "edited")
DECISIONS = ("accepted", "rejected")
# The items a person has approved: an edit is an approval of the edited text. The Export page's
# "accepted" set and the CLI's ``export --accepted`` both mean these.
ACCEPTED_STATUSES = ("accepted", "edited")


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


def items_signature(items: Any) -> str:
    """Identifies exactly this set of items with these texts (a frame with item_id and text_hash),
    whatever their order; what a stored layout or clustering was fitted on."""
    pairs = zip(items["item_id"].tolist(), items["text_hash"].tolist())  # lists: no per-row Arrow access
    return content_hash(sorted(f"{i}:{h}" for i, h in pairs))


def from_json(value: Any, default: Any = None) -> Any:
    """A JSON column's value as Python: text is parsed, a missing value (None, NaN) is ``default``,
    anything already parsed is returned as it is."""
    if isinstance(value, str):
        return json.loads(value)
    if is_missing(value):
        return default
    return value


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class PromptSpec:
    """A prompt version: template, system prompt, the values its variables may take and the
    generation parameters. Any change to these is a new version; ``parent_id`` and ``label`` are
    where it came from and what the user called it, not part of its identity."""

    template: str
    variables: dict[str, list[str]] = field(default_factory=dict)
    system_prompt: str = ""
    name: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        self.params = redact_values(self.params)  # no server password in a stored version

    @property
    def prompt_id(self) -> str:
        content = {"name": self.name, "template": self.template, "system": self.system_prompt,
                   "variables": self.variables}
        if self.params:  # versions saved before parameters were versioned keep their ids
            content["params"] = self.params
        return "p_" + content_hash(content)

    def render(self) -> str:
        """The version as text, one section per part, for diffs between versions."""
        return render_version(self.template, self.system_prompt, self.variables, self.params)


def render_version(template: str, system_prompt: str | None, variables: dict | None, params: dict | None) -> str:
    lines = ["[system prompt]", *(system_prompt or "").splitlines(), "", "[template]",
             *(template or "").splitlines(), "", "[variables]"]
    lines += [f"{k} = {', '.join(map(str, v))}" for k, v in sorted((variables or {}).items())]
    lines += ["", "[parameters]"]
    lines += [f"{k} = {json.dumps(v, ensure_ascii=False, sort_keys=True)}"
              for k, v in sorted((params or {}).items())]
    return "\n".join(lines) + "\n"


def version_changes(old: dict | None, new: dict) -> list[str]:
    """Which parts changed between two versions (dicts with template, system_prompt, variables and
    params): "template", "system prompt", "variables", or the name of each changed parameter."""
    if old is None:
        return ["new prompt"]
    changes = [label for key, label in (("template", "template"), ("system_prompt", "system prompt"),
                                        ("variables", "variables"))
               if (old.get(key) or None) != (new.get(key) or None)]
    old_p, new_p = old.get("params") or {}, new.get("params") or {}
    changes += [k for k in sorted(set(old_p) | set(new_p)) if old_p.get(k) != new_p.get(k)]
    return changes


def version_diff(old_text: str, new_text: str, old_name: str = "parent", new_name: str = "this version") -> str:
    """A unified diff between two rendered versions (empty if they are the same)."""
    import difflib

    return "".join(difflib.unified_diff(old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name, n=2))


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

    def __post_init__(self) -> None:
        # What is stored of a run never holds a server password (an api_base's user:password@).
        self.params, self.config, self.failures = redact_values((self.params, self.config, self.failures))

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
