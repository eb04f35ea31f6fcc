"""Human-AI collaboration: people accept, reject, tag or edit generated items, one at a time or
many at once, and read what made each item and what the judge said of it.

Reads: items, their variable values, source and latest judge score. Writes: ``items.status``,
``items.tags`` and, for edits, a new text with every earlier version kept in ``item_versions``.
Status is a column like any other, so filters and exports can use it. What the Review page shows
is built here as plain text: a dash or a sentence where a value is missing, never None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from synth.generate.judge import SCORE_MAX
from synth.kernel.errors import SynthError
from synth.kernel.records import DECISIONS, ITEM_STATUSES, from_json, text_hash
from synth.kernel.text import format_number, is_missing
from synth.store import DuckStore
from synth.workflows.pipeline import version_name

STATUSES = ITEM_STATUSES
MISSING = "—"  # what a cell shows for a value that is not there: never None, null or a blank
NOT_JUDGED = "Not judged yet."
REASONS_UNKNOWN = "Judged; the judge's reasons are not available."
# An item as the Review page's card shows it, in order ("item_id" is for the page, never shown).
VIEW_COLUMNS = ["item_id", "#", "text", "status", "variables", "source", "judge score", "judge reasons",
                "tags", "version", "output check", "source text"]
# The columns a judgement reader gives (see ``latest_verdicts``).
VERDICT_COLUMNS = ["item_id", "judge_model", "score", "criteria", "reason", "valid", "invalid_reason"]


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


# -- what the Review page shows ---------------------------------------------------------------


def variables_of(value: Any) -> dict[str, str]:
    """An item's variable values (the ``variables`` column, JSON or parsed) as text, by name."""
    parsed = from_json(value, {}) or {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): MISSING if is_missing(v) else str(v) for k, v in sorted(parsed.items())}


def format_variables(value: Any) -> str:
    """``aspect: price · product: tent``, names in order; a dash when the item had none."""
    values = variables_of(value)
    return " · ".join(f"{k}: {v}" for k, v in values.items()) if values else MISSING


def _text(value: Any) -> str | None:
    """A value as text, or None when it is missing or blank."""
    if is_missing(value):
        return None
    text = str(value).strip()
    return text or None


def describe_source(row: Mapping[str, Any]) -> str:
    """Where an item came from, in one line: the model (or that a file's row was imported), the
    technique, the prompt version and the source it was made from, each when known."""
    technique = _text(row.get("technique"))
    parts = [_text(row.get("model")) or ("imported from a file" if technique == "import" else "no model recorded")]
    if technique and technique != "import":
        parts.append(technique)
    name, version = _text(row.get("prompt_name")), row.get("prompt_version")
    if name and not is_missing(version):
        parts.append(f"prompt {version_name(name, int(version), _text(row.get('version_label')))}")
    source = _text(row.get("source_ref"))
    if source:
        parts.append(f"from {source}")
    return " · ".join(parts)


def format_score(score: Any) -> str:
    """A judge score as ``4 of 5``; a dash when the item was not judged (or the verdict was unreadable)."""
    if is_missing(score):
        return MISSING
    return f"{format_number(float(score), 3)} of {SCORE_MAX}"


def failed_criteria(criteria: Any) -> list[str]:
    """The criteria a verdict marks as not met, in the rubric's order."""
    try:
        parsed = from_json(criteria, {}) or {}
    except ValueError:
        return []
    return [str(name) for name, met in parsed.items() if met is False] if isinstance(parsed, dict) else []


def describe_verdict(verdict: Mapping[str, Any] | None) -> str:
    """The judge's reasons for one item in a sentence or two: the criteria it failed and the
    judge's own words; what is missing is said, never shown as None."""
    if verdict is None:
        return NOT_JUDGED
    if verdict.get("valid") is False:
        why = _text(verdict.get("invalid_reason"))
        return "The judge's answer could not be read" + (f": {why}" if why else ".")
    failed = failed_criteria(verdict.get("criteria"))
    parts = [f"Fails {', '.join(failed)}." if failed else "Meets every criterion."]
    reason = _text(verdict.get("reason"))
    parts.append(reason if reason else "The judge gave no reason.")
    return " ".join(parts)


def latest_verdicts(store: DuckStore, item_ids: list[str]) -> pd.DataFrame:
    """Each item's latest judgement (``VERDICT_COLUMNS``); items never judged are absent."""
    if not item_ids:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    return store.latest_judgements(list(item_ids))


def describe_output(valid: Any, invalid_reason: Any) -> str:
    """Whether an item's structured output has the fields its run asked for, in a sentence."""
    if is_missing(valid):
        return "The run asked for no output fields."
    if valid:
        return "Valid: it has every field the run asked for."
    why = _text(invalid_reason)
    return f"Invalid: {why}" if why else "Invalid: it lacks fields the run asked for."


def format_tags(value: Any) -> str:
    """An item's tags, comma-separated; a dash when it has none."""
    tags = from_json(value, []) or []
    return ", ".join(str(t) for t in tags) if tags else MISSING


def review_view(items: pd.DataFrame, verdicts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows the Review page shows (``VIEW_COLUMNS``), every cell text or a number people read:
    the full text, the variable values, the source, the judge's score and reasons (a dash or a
    sentence where one is missing), tags and version."""
    by_item = {} if verdicts is None or verdicts.empty else \
        {r["item_id"]: r for r in verdicts.to_dict("records")}
    rows = []
    for row in items.to_dict("records"):
        verdict = by_item.get(row["item_id"])
        score = row.get("judge_score")
        reasons = describe_verdict(verdict)
        if verdict is None and not is_missing(score):
            reasons = REASONS_UNKNOWN
        rows.append({"item_id": row["item_id"], "#": int(row["idx"]) + 1, "text": str(row["text"]),
                     "status": row["status"], "variables": format_variables(row.get("variables")),
                     "source": describe_source(row), "judge score": format_score(score),
                     "judge reasons": reasons, "tags": format_tags(row.get("tags")),
                     "version": 1 if is_missing(row.get("version")) else int(row["version"]),
                     "output check": describe_output(row.get("valid"), row.get("invalid_reason")),
                     "source text": _text(row.get("source_text")) or MISSING})
    return pd.DataFrame(rows, columns=VIEW_COLUMNS)


TABLE_COLUMNS = ["item_id", "#", "text", "status", "judge", "made with", "tags"]


def table_view(view: pd.DataFrame) -> pd.DataFrame:
    """``review_view``'s rows folded into fewer, wrapping columns for a table that fits a laptop
    screen (``TABLE_COLUMNS``): the judge's score and reasons in one cell, the variable values and
    the source in another."""
    judge = [reasons if score == MISSING else score if reasons == REASONS_UNKNOWN else f"{score}: {reasons}"
             for score, reasons in zip(view["judge score"], view["judge reasons"])]
    made = [source if variables == MISSING else f"{variables} · {source}"
            for variables, source in zip(view["variables"], view["source"])]
    table = view[["item_id", "#", "text", "status"]].copy()
    table["judge"], table["made with"], table["tags"] = judge, made, view["tags"].to_numpy()
    return table[TABLE_COLUMNS]


def review_items(store: DuckStore, run_id: str, statuses: list[str]) -> pd.DataFrame:
    """The items of run ``run_id`` whose status is one of ``statuses``, in run order, as
    ``review_view`` shows them."""
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise SynthError(f"Unknown status {', '.join(map(repr, unknown))}: choose from {', '.join(STATUSES)}.")
    items = store.items([run_id])
    items = items[items["status"].isin(statuses)].sort_values("idx")
    return review_view(items, latest_verdicts(store, items["item_id"].tolist()))


# -- one item at a time, and bulk work on many ----------------------------------------------------


def current_item(item_ids: list[str], wanted: str | None) -> str | None:
    """The item the review card shows: ``wanted`` if it is among the shown ``item_ids``, else the
    first one; None when nothing is shown."""
    if not item_ids:
        return None
    return wanted if wanted in item_ids else item_ids[0]


def step_item(item_ids: list[str], current: str | None, step: int = 1) -> str | None:
    """The item ``step`` places after ``current`` among ``item_ids`` (before it for a negative
    step), wrapping round at either end; the first item if ``current`` is not shown."""
    if not item_ids:
        return None
    if current not in item_ids:
        return item_ids[0]
    return item_ids[(item_ids.index(current) + step) % len(item_ids)]


def decide(store: DuckStore, item_ids: list[str], current: str, status: str) -> str | None:
    """Accept or reject the card's item ``current`` and return the item to show next (the one
    after it among the shown ``item_ids``, or None when it was the only one)."""
    if status not in DECISIONS:
        raise SynthError(f"A decision is one of {', '.join(DECISIONS)}, got {status!r}.")
    set_status(store, [current], status)
    following = step_item(item_ids, current)
    return None if following == current else following


def target_items(shown_ids: list[str], selected_rows: list[int]) -> list[str]:
    """The items a bulk action applies to: the selected rows (positions among ``shown_ids``), or
    every shown item when none is selected."""
    if not selected_rows:
        return list(shown_ids)
    bad = [r for r in selected_rows if not 0 <= r < len(shown_ids)]
    if bad:
        raise SynthError(f"Row {bad[0] + 1} is not shown any more. Select the rows again.")
    return [shown_ids[r] for r in sorted(set(selected_rows))]


def describe_target(n_selected: int, n_shown: int) -> str:
    """What a bulk action will apply to, for the line above its buttons."""
    if n_selected:
        return f"the {n_selected} selected row{'s' if n_selected != 1 else ''}"
    return f"all {n_shown} shown row{'s' if n_shown != 1 else ''} (select rows in the table to narrow it)"


def bulk_set_status(store: DuckStore, item_ids: list[str], status: str) -> int:
    """Give every one of ``item_ids`` the status ``status``; return how many changed hands."""
    if not item_ids:
        raise SynthError("No items to change. Show some items (check the status filter) or select rows.")
    return set_status(store, item_ids, status)


def parse_tags(text: str) -> list[str]:
    """Tags typed as ``a, b, c``: trimmed, without repeats or blanks, in the order typed."""
    return list(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))


def tag_items(store: DuckStore, item_ids: list[str], text: str) -> int:
    """Add the comma-separated tags in ``text`` to ``item_ids``; return how many items were tagged."""
    tags = parse_tags(text)
    if not tags:
        raise SynthError("Type a tag first, e.g. 'too short' (several: separate them with commas).")
    if not item_ids:
        raise SynthError("No items to tag. Show some items (check the status filter) or select rows.")
    return store.add_tags(list(item_ids), tags)


def revise(store: DuckStore, item_id: str, old_text: str, new_text: str, note: str | None = None) -> int | None:
    """Save ``new_text`` as the item's next version unless it is ``old_text`` again (surrounding
    space aside); the new version number, or None when nothing changed."""
    if (new_text or "").strip() == (old_text or "").strip():
        return None
    return edit_item(store, item_id, new_text, note)


def history_view(store: DuckStore, item_id: str) -> pd.DataFrame:
    """Every version of an item as people read it (a dash for a version without a note)."""
    versions = history(store, item_id)
    if versions.empty:
        return versions
    versions = versions.copy()
    versions["note"] = [_text(n) or MISSING for n in versions["note"]]
    return versions


def pass_rate_table(pass_rates: Mapping[str, float | None]) -> pd.DataFrame:
    """A judge run's pass rate per criterion as a percentage; a dash where no verdict was readable."""
    return pd.DataFrame({"criterion": list(pass_rates),
                         "passed": [MISSING if is_missing(r) else f"{100 * r:.0f}%" for r in pass_rates.values()]})
