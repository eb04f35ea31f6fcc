"""Filters: which items a view keeps, and why each other item was dropped.

Reads: items (with their map cluster and prompt label), their embeddings and a
:class:`FilterSpec`. Writes: nothing. Diversity first: after the scope (runs, prompt versions,
clusters), near-duplicates are removed, keeping one representative per group; then the quality
filters (length, patterns, judge score, status) apply.

A spec round-trips through URL query parameters, so a filtered view can be shared as a link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd

from synth.analysis.embedding import unit_rows
from synth.kernel.errors import SynthError

BLOCK = 2048
# Which near-duplicate to keep: reviewed-good first, then the best judged, then the oldest.
STATUS_PRIORITY = {"accepted": 0, "edited": 0, "new": 1, "imported": 1, "rejected": 2}
QUERY_KEYS = {"dedup_threshold": "dedup", "min_words": "lmin", "max_words": "lmax", "include": "inc",
              "exclude": "exc", "min_judge_score": "judge", "statuses": "status", "clusters": "cluster",
              "runs": "run", "prompt_versions": "pv"}


@dataclass
class FilterSpec:
    dedup_threshold: float | None = None
    min_words: int | None = None
    max_words: int | None = None
    include: str = ""
    exclude: str = ""
    min_judge_score: float | None = None
    statuses: list[str] = field(default_factory=list)
    clusters: list[int] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    prompt_versions: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return self == FilterSpec()

    def validate(self) -> None:
        if self.dedup_threshold is not None and not 0.0 < self.dedup_threshold <= 1.0:
            raise SynthError(f"The dedup threshold must be in (0, 1], got {self.dedup_threshold}.")
        if self.min_words is not None and self.max_words is not None and self.min_words > self.max_words:
            raise SynthError(f"The length range is empty: {self.min_words} > {self.max_words} words.")
        for name in ("include", "exclude"):
            pattern = getattr(self, name)
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise SynthError(f"The {name} pattern {pattern!r} is not a valid regular expression "
                                     f"({exc}). Fix it or clear the box.") from None

    def to_query(self) -> dict[str, str]:
        """The non-default settings as URL query parameters (lists comma-joined)."""
        out = {}
        default = FilterSpec()
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            out[QUERY_KEYS[f.name]] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        return out

    @classmethod
    def from_query(cls, params: Mapping[str, Any]) -> "FilterSpec":
        """A spec from URL query parameters; unknown or malformed values are ignored, not fatal."""
        spec = cls()
        for f in fields(cls):
            raw = params.get(QUERY_KEYS[f.name])
            if raw in (None, ""):
                continue
            raw = raw[-1] if isinstance(raw, list) else str(raw)
            try:
                if f.name in ("dedup_threshold", "min_judge_score"):
                    value: Any = float(raw)
                elif f.name in ("min_words", "max_words"):
                    value = int(raw)
                elif f.name == "clusters":
                    value = [int(v) for v in raw.split(",") if v.strip()]
                elif f.name in ("statuses", "runs", "prompt_versions"):
                    value = [v for v in raw.split(",") if v.strip()]
                else:
                    value = raw
            except ValueError:
                continue
            setattr(spec, f.name, value)
        return spec


@dataclass
class FilterResult:
    kept: pd.DataFrame
    dropped: pd.DataFrame  # the items dropped, with "reason" and, for near-duplicates, "duplicate_of"

    @property
    def kept_ids(self) -> list[str]:
        return self.kept["item_id"].tolist()


def similar_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) with cosine similarity >= threshold: (i, j, similarity), block by block."""
    x = unit_rows(vectors).astype(np.float32)
    out_i, out_j, out_s = [], [], []
    for start in range(0, len(x), BLOCK):
        sims = x[start:start + BLOCK] @ x.T
        rows, cols = np.nonzero(sims >= threshold)
        rows_abs = rows + start
        keep = rows_abs < cols
        out_i.append(rows_abs[keep])
        out_j.append(cols[keep])
        out_s.append(sims[rows[keep], cols[keep]])
    if not out_i:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s)


def dedup(items: pd.DataFrame, vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, dict[int, tuple[int, float]]]:
    """Keep one representative per group of near-duplicates.

    Items are visited best first (reviewed-good, then judged higher, then older); an item is
    dropped when a kept item is at least ``threshold`` similar. Returns (kept mask, dropped row ->
    (row it duplicates, similarity))."""
    n = len(items)
    i, j, s = similar_pairs(vectors, threshold)
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for a, b, sim in zip(i.tolist(), j.tolist(), s.tolist()):
        neighbours.setdefault(a, []).append((b, sim))
        neighbours.setdefault(b, []).append((a, sim))
    status_rank = items["status"].map(STATUS_PRIORITY).fillna(1).to_numpy() if "status" in items else np.ones(n)
    score = items["judge_score"].fillna(0).to_numpy() if "judge_score" in items else np.zeros(n)
    order = np.lexsort((np.arange(n), -score, status_rank))
    kept = np.zeros(n, dtype=bool)
    duplicate_of: dict[int, tuple[int, float]] = {}
    for row in order:
        matches = [(other, sim) for other, sim in neighbours.get(int(row), []) if kept[other]]
        if matches:
            duplicate_of[int(row)] = max(matches, key=lambda m: m[1])
        else:
            kept[row] = True
    return kept, duplicate_of


def word_counts(items: pd.DataFrame) -> pd.Series:
    """Each item's length in words: the ``length_words`` column when the frame has one (a loaded
    dataset counts them once: 0.3 s at 50,000 items, which every filter change would pay again)."""
    if "length_words" in items:
        return items["length_words"]
    return items["text"].str.count(r"\w+")


def apply_filters(items: pd.DataFrame, vectors: np.ndarray | None, spec: FilterSpec) -> FilterResult:
    """Apply ``spec`` to ``items`` (rows aligned with ``vectors``, which only the near-duplicate
    filter reads: None will do without it); say why each dropped item went.

    ``items`` needs item_id, text, status, judge_score, run_id, prompt_label and cluster columns."""
    spec.validate()
    items = items.reset_index(drop=True)
    reason = pd.Series([None] * len(items), dtype=object)
    duplicate_of = pd.Series([None] * len(items), dtype=object)

    def drop(mask: pd.Series | np.ndarray, why: str) -> None:
        mask = pd.Series(mask, index=items.index) & reason.isna()
        reason[mask] = why

    if spec.runs:
        drop(~items["run_id"].isin(spec.runs), "run not selected")
    if spec.prompt_versions:
        drop(~items["prompt_label"].isin(spec.prompt_versions), "prompt version not selected")
    if spec.clusters:
        drop(~items["cluster"].isin(spec.clusters), "cluster not selected")
    if spec.dedup_threshold is not None:
        scope = reason.isna().to_numpy()
        rows = np.flatnonzero(scope)
        if len(rows) > 1:
            kept, dups = dedup(items.iloc[rows], vectors[rows], spec.dedup_threshold)
            for local, (other, sim) in dups.items():
                row = rows[local]
                reason[row] = f"near-duplicate ({sim:.2f}) of a kept item"
                duplicate_of[row] = items["item_id"].iloc[rows[other]]
    words = word_counts(items)
    if spec.min_words is not None:
        drop(words < spec.min_words, f"shorter than {spec.min_words} words")
    if spec.max_words is not None:
        drop(words > spec.max_words, f"longer than {spec.max_words} words")
    if spec.include:
        drop(~items["text"].str.contains(spec.include, case=False, regex=True), f"does not match {spec.include!r}")
    if spec.exclude:
        drop(items["text"].str.contains(spec.exclude, case=False, regex=True), f"matches {spec.exclude!r}")
    if spec.min_judge_score is not None:
        drop(~(items["judge_score"] >= spec.min_judge_score).fillna(False),
             f"judge score below {spec.min_judge_score:g} or not judged")
    if spec.statuses:
        drop(~items["status"].isin(spec.statuses), "status not selected")
    dropped_mask = reason.notna()
    dropped = items[dropped_mask].assign(reason=reason[dropped_mask], duplicate_of=duplicate_of[dropped_mask])
    return FilterResult(kept=items[~dropped_mask].reset_index(drop=True), dropped=dropped.reset_index(drop=True))


def near_duplicate_pairs(items: pd.DataFrame, vectors: np.ndarray, threshold: float, limit: int = 200
                         ) -> pd.DataFrame:
    """Pairs of items at least ``threshold`` similar, most similar first, side by side."""
    i, j, s = similar_pairs(vectors, threshold)
    order = np.argsort(-s)[:limit]
    a, b = items.iloc[i[order]].reset_index(drop=True), items.iloc[j[order]].reset_index(drop=True)
    return pd.DataFrame({"similarity": s[order].astype(float), "item_a": a["item_id"], "text_a": a["text"],
                         "status_a": a["status"], "item_b": b["item_id"], "text_b": b["text"],
                         "status_b": b["status"]})
