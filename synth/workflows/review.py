"""Human-AI collaboration: people accept, reject or edit generated items.

Reads: item ids and decisions. Writes: ``items.status`` and, for edits, a new text with every
earlier version kept in ``item_versions``. Status is a column like any other, so filters and
exports can use it.
"""

from __future__ import annotations

import pandas as pd

from synth.kernel.errors import SynthError
from synth.kernel.records import DECISIONS, ITEM_STATUSES, from_json, text_hash
from synth.store import DuckStore

STATUSES = ITEM_STATUSES


def set_status(store: DuckStore, item_ids: list[str], status: str) -> int:
    """Accept or reject items; return how many were found."""
    if status not in DECISIONS + ("new",):
        raise SynthError(f"Status must be one of {', '.join(DECISIONS + ('new',))}, got {status!r}.")
    found = store.set_status(list(item_ids), status)
    if found != len(set(item_ids)):
        raise SynthError(f"{len(set(item_ids)) - found} of the items do not exist. Check the item ids.")
    return found


def edit_item(store: DuckStore, item_id: str, text: str, note: str | None = None) -> int:
    """Give an item a new text, keeping the original; return the new version number."""
    text = (text or "").strip()
    if not text:
        raise SynthError("An edited item cannot be empty. Reject it instead.")
    return store.save_edit(item_id, text, text_hash(text), note)


def history(store: DuckStore, item_id: str) -> pd.DataFrame:
    """Every version of an item, oldest first (empty if it was never edited)."""
    return store.item_history(item_id)


def apply_review(store: DuckStore, before: pd.DataFrame, after: pd.DataFrame) -> dict[str, int]:
    """Apply the differences between two tables of (item_id, text, status), as an editable table
    on a page produces them; return counts of edits and status changes."""
    merged = before[["item_id", "text", "status"]].merge(after[["item_id", "text", "status"]],
                                                         on="item_id", suffixes=("_old", "_new"))
    counts = {"edited": 0, "accepted": 0, "rejected": 0, "new": 0}
    for row in merged.itertuples():
        if str(row.text_new).strip() != str(row.text_old).strip():
            edit_item(store, row.item_id, str(row.text_new))
            counts["edited"] += 1
        if row.status_new != row.status_old and row.status_new in counts and row.status_new != "edited":
            set_status(store, [row.item_id], row.status_new)
            counts[row.status_new] += 1
    return counts


def run_items_view(store: DuckStore, run_id: str) -> pd.DataFrame:
    """A run's items as the Generate page shows them after the batch: text, one column per
    variable value that made it, tokens, whether max tokens cut it off, latency and cache."""
    items = store.items([run_id]).sort_values("idx")
    variables = [from_json(v, {}) or {} for v in items["variables"]]
    names = sorted({k for v in variables for k in v})
    view = pd.DataFrame({"#": (items["idx"] + 1).to_numpy(), "text": items["text"].to_numpy()})
    for name in names:
        view[f"{{{name}}}"] = [str(v.get(name, "")) for v in variables]
    view["tokens"] = items["tokens_out"].to_numpy()
    view["ending"] = ["cut off at max tokens" if f == "length" else ("finished" if f else "—")
                      for f in items["finish_reason"]]
    view["latency ms"] = items["latency_ms"].round().astype("Int64").to_numpy()
    view["cached"] = items["cached"].to_numpy()
    return view
