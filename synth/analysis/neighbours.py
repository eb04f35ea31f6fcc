"""Finding items on the map: search by words, by a pattern or by meaning, an item's nearest
neighbours, and what a new batch changed.

Reads: the dataset's items (a frame, row for row with its unit embeddings). Writes nothing.
Every function returns row positions into the frame it was given, best first, so a page can
highlight, list and select them the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth.analysis.embedding import unit_rows
from synth.kernel.errors import SynthError

SEARCH_MODES = {"words": "every word appears (any case)", "pattern": "a regular expression (any case)",
                "meaning": "the nearest items to the query's embedding"}
MEANING_TOP = 25  # items a search by meaning returns
PATTERN_BUDGET_S = 2.0  # the whole pattern search stops past this (a pattern can take forever)
# A new item "opens a new region" when its nearest earlier item is less similar to it than all
# but NEW_REGION_QUANTILE of the earlier items are to their own nearest (measured on a sample).
NEW_REGION_QUANTILE = 0.05
NEW_REGION_SAMPLE = 2000
BLOCK = 4096


def word_matches(texts: pd.Series, query: str) -> np.ndarray:
    """Positions of the texts that hold every word of ``query`` (any case, as plain text)."""
    words = query.lower().split()
    if not words:
        return np.zeros(0, dtype=int)
    lowered = texts.fillna("").astype(str).str.lower()
    mask = np.ones(len(lowered), dtype=bool)
    for word in words:
        mask &= lowered.str.contains(word, regex=False).to_numpy()
    return np.flatnonzero(mask)


def pattern_matches(texts: pd.Series, pattern: str, budget_s: float = PATTERN_BUDGET_S) -> np.ndarray:
    """Positions of the texts a regular expression finds (any case). A pattern that is not valid, or
    that takes longer than ``budget_s`` over the whole set, is refused with a message."""
    import regex  # a dependency of transformers; unlike re, it can stop a runaway pattern

    try:
        compiled = regex.compile(pattern, regex.IGNORECASE | regex.V0)
    except regex.error as exc:
        raise SynthError(f"{pattern!r} is not a valid regular expression ({exc}). Fix it, or search by words.") from exc
    deadline = time.monotonic() + budget_s
    hits = []
    try:
        for i, text in enumerate(texts.fillna("").astype(str).tolist()):
            if compiled.search(text, timeout=max(deadline - time.monotonic(), 1e-3)):
                hits.append(i)
    except TimeoutError as exc:
        raise SynthError(f"The pattern {pattern!r} took over {budget_s:g} s. Make it simpler "
                         "(nested repeats such as (a+)+ are slow), or search by words.") from exc
    return np.asarray(hits, dtype=int)


def nearest_to(vectors: np.ndarray, query: np.ndarray, top: int = MEANING_TOP,
               exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` rows most similar to ``query`` (cosine), best first, with their similarities;
    ``exclude`` leaves one row out (the item itself)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    x = unit_rows(np.asarray(vectors, dtype=np.float32))
    q = unit_rows(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
    sims = x @ q
    if exclude is not None:
        sims[exclude] = -np.inf
    top = min(top, len(sims) - (exclude is not None))
    if top <= 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    best = np.argpartition(-sims, top - 1)[:top]
    best = best[np.lexsort((best, -sims[best]))]
    return best.astype(int), sims[best].astype(float)


def neighbours(vectors: np.ndarray, position: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """An item's ``k`` nearest other items (cosine), best first, with their similarities."""
    if not 0 <= position < len(vectors):
        raise SynthError(f"There is no item at position {position}.")
    return nearest_to(vectors, vectors[position], k, exclude=position)


def search(items: pd.DataFrame, vectors: np.ndarray, query: str, mode: str = "words",
           embed=None, top: int = MEANING_TOP) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions of the items ``query`` finds, and (by meaning) their similarities. ``embed`` turns
    a list of texts into vectors with the dataset's model (needed for mode "meaning")."""
    if mode not in SEARCH_MODES:
        raise SynthError(f"Unknown search mode {mode!r}. Use one of: {', '.join(SEARCH_MODES)}.")
    query = query.strip()
    if not query:
        return np.zeros(0, dtype=int), None
    if mode == "words":
        return word_matches(items["text"], query), None
    if mode == "pattern":
        return pattern_matches(items["text"], query), None
    if embed is None:
        raise SynthError("A search by meaning needs the embedding model.")
    return nearest_to(vectors, np.asarray(embed([query]))[0], top)


@dataclass
class Landing:
    """Where a new batch landed among the items made before it."""

    run_id: str
    run_name: str
    items: int
    clusters: list[tuple[str, float]] = field(default_factory=list)  # (cluster name, share of the batch)
    new_region: float = 0.0  # share of the batch far from every earlier item (see NEW_REGION_QUANTILE)
    recall_before: float | None = None
    recall_after: float | None = None

    def sentence(self) -> str:
        joined = ", ".join(f"{name} ({share:.0%})" for name, share in self.clusters[:3])
        parts = [f"{self.items} items, mostly in: {joined}" if joined else f"{self.items} items"]
        parts.append(f"{self.new_region:.0%} of them open a new region (farther from every earlier item than "
                     f"{1 - NEW_REGION_QUANTILE:.0%} of the earlier items are from their nearest)"
                     if self.new_region else "none opens a new region: each lies as near an earlier item as "
                     "earlier items lie near each other")
        if self.recall_before is not None and self.recall_after is not None:
            parts.append(f"recall of the reference data {self.recall_before:.0%} → {self.recall_after:.0%}")
        return "; ".join(parts) + "."


def _max_similarity(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    best = np.full(len(queries), -1.0, dtype=np.float32)
    for start in range(0, len(base), BLOCK):
        best = np.maximum(best, (queries @ base[start:start + BLOCK].T).max(axis=1))
    return best


def _earlier_sample(earlier_rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The earlier rows a new batch is measured against: all, or past NEW_REGION_SAMPLE a seeded sample."""
    if len(earlier_rows) > NEW_REGION_SAMPLE:
        return earlier_rows[np.sort(np.random.default_rng(seed).choice(len(earlier_rows), NEW_REGION_SAMPLE,
                                                                       replace=False))]
    return earlier_rows


def _new_region_share(new: np.ndarray, earlier: np.ndarray) -> float:
    """The share of ``new`` rows that open a new region: whose nearest ``earlier`` row (all of
    them, or one random sample past NEW_REGION_SAMPLE, see ``_earlier_sample``) is less similar
    than all but NEW_REGION_QUANTILE of the earlier rows are to their own nearest."""
    from synth.analysis.metrics import nearest_neighbour_similarity

    threshold = float(np.quantile(nearest_neighbour_similarity(earlier), NEW_REGION_QUANTILE))
    return float((_max_similarity(new, earlier) < threshold).mean())


def landing(items: pd.DataFrame, vectors, run_id: str, k: int | None = None) -> Landing:
    """What run ``run_id`` changed: the clusters its items joined, the share that opened a new
    region, and recall of the reference data without and with it (``k`` as in ``coverage``).
    ``items`` needs run_id, run_name, run_role and cluster_name columns and is in creation order
    (earlier items come first). ``vectors``: the items' vectors, or anything that gives the vectors
    of given rows (``vectors[rows]``, a ``Dataset.vector_rows``): only the rows it needs are read."""
    from synth.analysis.coverage import coverage

    rows_of = vectors if callable(vectors) else (lambda rows: vectors[rows])

    def x(mask: np.ndarray) -> np.ndarray:
        return unit_rows(np.asarray(rows_of(np.flatnonzero(mask) if mask.dtype == bool else mask), dtype=np.float32))

    is_new = (items["run_id"] == run_id).to_numpy()
    if not is_new.any():
        raise SynthError(f"No items of run {run_id!r} are in view.")
    is_reference = (items["run_role"] == "reference").to_numpy()
    first = int(np.flatnonzero(is_new)[0])
    earlier = ~is_new & ~is_reference & (np.arange(len(items)) < first)
    shares = items.loc[is_new, "cluster_name"].astype(str).value_counts(normalize=True)
    out = Landing(run_id, str(items.loc[is_new, "run_name"].iloc[0]), int(is_new.sum()),
                  [(str(n), float(s)) for n, s in shares.items()])
    out.new_region = (1.0 if earlier.sum() < 2 else
                      _new_region_share(x(is_new), x(_earlier_sample(np.flatnonzero(earlier)))))
    if is_reference.sum() >= 2:
        synthetic_before = ~is_reference & ~is_new
        real = x(is_reference)
        out.recall_after = coverage(real, x(~is_reference), k).recall
        out.recall_before = (coverage(real, x(synthetic_before), k).recall
                             if synthetic_before.any() else 0.0)
    return out
