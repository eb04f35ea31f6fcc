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

from synth.analysis.comparable import TOO_SMALL, Sample, compare_at_common_size
from synth.analysis.embedding import unit_rows
from synth.kernel import settings
from synth.kernel.errors import SynthError

BLOCK = 2048
# A run's diversity "clearly below" the reference's: under this fraction of it (and its interval
# wholly below the reference's).
COLLAPSE_RATIO = 0.8
COLLAPSE_METRICS = ("mean_pairwise_cosine_distance", "distinct_2")


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


def collapse_alarms(items: pd.DataFrame, vectors: np.ndarray, seed: int = 0,
                    minimum: int | None = None) -> pd.DataFrame:
    """Synthetic runs whose diversity falls clearly below the reference's (a sign of collapse).

    Mean pairwise cosine distance and distinct-2 of each run against the reference runs together,
    both at a common sample size with bootstrap intervals (:mod:`synth.analysis.comparable`; m is
    half the smaller side, distinct-2 depends on size). An alarm only when the run's interval lies
    wholly below the reference's and its mean is under COLLAPSE_RATIO of the reference's. A run (or
    a reference) under the stated minimum size gets rows with status "too small to compare" and
    no alarm. One row per (run, metric): run_id, run_name, metric, run_items, reference_items,
    sample_size (m), run, run_low, run_high, reference, reference_low, reference_high, ratio,
    verdict, status, alarm."""
    is_ref = (items["run_role"] == "reference").to_numpy()
    rows = []
    if is_ref.sum() < 2:
        return pd.DataFrame(rows)
    ref_rows = np.flatnonzero(is_ref)
    reference = Sample(items["text"].iloc[ref_rows].tolist(), vectors[ref_rows])
    for run_id, group in items[~is_ref].groupby("run_id", sort=False):
        run_rows = items.index.get_indexer(group.index)
        run = Sample(group["text"].tolist(), vectors[run_rows])
        _, table = compare_at_common_size(reference, run, COLLAPSE_METRICS, seed=seed, minimum=minimum)
        for r in table.itertuples():
            small = r.verdict == TOO_SMALL
            ratio = None if small or pd.isna(r.b) or pd.isna(r.a) or not r.a else float(r.b / r.a)
            rows.append({"run_id": run_id, "run_name": group["run_name"].iloc[0], "metric": r.metric,
                         "run_items": run.n, "reference_items": reference.n, "sample_size": None if small else int(r.m),
                         "run": r.b, "run_low": r.b_low, "run_high": r.b_high,
                         "reference": r.a, "reference_low": r.a_low, "reference_high": r.a_high,
                         "ratio": ratio, "verdict": r.verdict, "status": TOO_SMALL if small else "",
                         "alarm": bool(not small and r.verdict == "lower" and ratio is not None
                                       and ratio < COLLAPSE_RATIO)})
    return pd.DataFrame(rows)
