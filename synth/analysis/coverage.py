"""Coverage: how the synthetic set sits against real reference data on the same embeddings.

Reads: the dataset's items (runs have a role: synthetic or reference) and their embeddings.
Writes: nothing.

Each reference item's neighbourhood is the ball of cosine distance up to its k-th nearest other
reference item.
- recall (coverage, Naeem et al. 2020): the share of reference items whose neighbourhood holds a
  synthetic item; what it misses is the long tail the synthetic set does not reach.
- precision (Kynkäänniemi et al. 2019): the share of synthetic items inside some reference item's
  neighbourhood; the rest are far from any real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth.analysis import lexical
from synth.analysis.embedding import unit_rows
from synth.analysis.metrics import mean_pairwise_cosine_distance
from synth.kernel import settings
from synth.kernel.errors import SynthError

BLOCK = 2048
# A run's diversity "clearly below" the reference's: under this fraction of it.
COLLAPSE_RATIO = 0.8
COLLAPSE_SAMPLE = 500


def reference_radii(reference: np.ndarray, k: int) -> np.ndarray:
    """Cosine distance from each reference item to its k-th nearest other reference item."""
    n = len(reference)
    if n < 2:
        raise SynthError("Coverage needs at least two reference items.")
    k = min(k, n - 1)
    x = unit_rows(reference.astype(np.float32))
    radii = np.empty(n, dtype=np.float32)
    for start in range(0, n, BLOCK):
        dist = 1.0 - x[start:start + BLOCK] @ x.T
        dist[np.arange(len(dist)), np.arange(start, start + len(dist))] = np.inf
        radii[start:start + BLOCK] = np.partition(dist, k - 1, axis=1)[:, k - 1]
    return radii


@dataclass
class Coverage:
    recall: float | None  # share of reference items reached
    precision: float | None  # share of synthetic items near reference data
    reached: np.ndarray  # per reference item
    near_reference: np.ndarray  # per synthetic item
    k: int


def coverage(reference: np.ndarray, synthetic: np.ndarray, k: int | None = None) -> Coverage:
    """Recall and precision of ``synthetic`` against ``reference`` (rows are embeddings)."""
    k = k or settings.get("coverage_k")
    radii = reference_radii(reference, k)
    r = unit_rows(reference.astype(np.float32))
    s = unit_rows(synthetic.astype(np.float32))
    reached = np.zeros(len(r), dtype=bool)
    near = np.zeros(len(s), dtype=bool)
    for start in range(0, len(s), BLOCK):
        dist = 1.0 - s[start:start + BLOCK] @ r.T  # synthetic x reference
        inside = dist <= radii[None, :]
        near[start:start + BLOCK] = inside.any(axis=1)
        reached |= inside.any(axis=0)
    return Coverage(recall=float(reached.mean()) if len(r) else None,
                    precision=float(near.mean()) if len(s) else None,
                    reached=reached, near_reference=near, k=min(k, len(r) - 1))


def coverage_report(items: pd.DataFrame, vectors: np.ndarray, k: int | None = None
                    ) -> tuple[Coverage, pd.DataFrame]:
    """Overall coverage and one row per cluster (reference items reached, synthetic items near
    reference data). ``items`` needs run_role, cluster and cluster_name columns."""
    is_ref = (items["run_role"] == "reference").to_numpy()
    if is_ref.sum() < 2 or (~is_ref).sum() == 0:
        raise SynthError("Coverage needs a reference run with at least two items and some synthetic "
                         "items. Import real data with: python -m synth import FILE --reference")
    result = coverage(vectors[is_ref], vectors[~is_ref], k)
    ref, syn = items[is_ref], items[~is_ref]
    rows = []
    for cluster, name in sorted(set(zip(items["cluster"], items["cluster_name"]))):
        in_ref = (ref["cluster"] == cluster).to_numpy()
        in_syn = (syn["cluster"] == cluster).to_numpy()
        rows.append({"cluster": cluster, "cluster_name": name, "reference_items": int(in_ref.sum()),
                     "recall": float(result.reached[in_ref].mean()) if in_ref.any() else None,
                     "synthetic_items": int(in_syn.sum()),
                     "precision": float(result.near_reference[in_syn].mean()) if in_syn.any() else None})
    return result, pd.DataFrame(rows)


def collapse_alarms(items: pd.DataFrame, vectors: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Synthetic runs whose diversity falls clearly below the reference's (a sign of collapse).

    Diversity is compared on equal-size seeded samples (distinct-2 depends on size): mean pairwise
    cosine distance and distinct-2 of each run against the reference runs together; an alarm when
    either is under COLLAPSE_RATIO of the reference's."""
    is_ref = (items["run_role"] == "reference").to_numpy()
    rows = []
    if is_ref.sum() < 2:
        return pd.DataFrame(rows)
    rng = np.random.default_rng(seed)
    ref_rows = np.flatnonzero(is_ref)
    for run_id, group in items[~is_ref].groupby("run_id", sort=False):
        run_rows = items.index.get_indexer(group.index)
        m = min(len(run_rows), len(ref_rows), COLLAPSE_SAMPLE)
        if m < 2:
            continue
        a = np.sort(rng.choice(run_rows, m, replace=False))
        b = np.sort(rng.choice(ref_rows, m, replace=False))
        measures = {
            "mean_pairwise_cosine_distance": (mean_pairwise_cosine_distance(vectors[a]),
                                              mean_pairwise_cosine_distance(vectors[b])),
            "distinct_2": (lexical.distinct_n(items["text"].iloc[a].tolist(), 2),
                           lexical.distinct_n(items["text"].iloc[b].tolist(), 2)),
        }
        for metric, (run_value, ref_value) in measures.items():
            if run_value is None or not ref_value:
                continue
            ratio = run_value / ref_value
            rows.append({"run_id": run_id, "run_name": group["run_name"].iloc[0], "metric": metric,
                         "sample_size": m, "run": run_value, "reference": ref_value, "ratio": ratio,
                         "alarm": ratio < COLLAPSE_RATIO})
    return pd.DataFrame(rows)
