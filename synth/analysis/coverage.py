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

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from synth.analysis.clustering import NOISE
from synth.analysis.comparable import TOO_SMALL, Sample, compare_at_common_size
from synth.analysis.embedding import unit_rows
from synth.kernel import settings
from synth.kernel.errors import SynthError

BLOCK = 2048
# A run's diversity "clearly below" the reference's: under this fraction of it (and its interval
# wholly below the reference's).
COLLAPSE_RATIO = 0.8
COLLAPSE_METRICS = ("mean_pairwise_cosine_distance", "distinct_2")
# The report, the dataset card and the CLI's text name this many worst-covered clusters.
WORST_CLUSTERS = 5
NO_REFERENCE = ("There is no reference data, so coverage is not measured. Import real items with: "
                "python -m synth import FILE --reference")


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


@dataclass
class CoverageSummary:
    """Coverage of synthetic items against the reference items, in plain values (``to_dict`` is
    JSON-ready). When nothing could be measured, ``reason`` says why and every figure is None.

    ``clusters``: one dict per cluster (cluster, cluster_name, reference_items, synthetic_items,
    recall, precision), lowest recall first, clusters without reference items last.
    ``worst``: the first clusters of that list that hold reference items, noise left out."""

    recall: float | None = None  # share of reference items with a synthetic item in their ball
    precision: float | None = None  # share of synthetic items inside some reference item's ball
    k: int | None = None
    reference_items: int = 0
    synthetic_items: int = 0
    reference_reached: int = 0
    synthetic_near: int = 0
    clusters: list[dict] = field(default_factory=list)
    worst: list[dict] = field(default_factory=list)
    reason: str | None = None

    @property
    def measured(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict:
        return asdict(self)


def coverage_summary(items: pd.DataFrame, vectors: np.ndarray, synthetic_ids=None, k: int | None = None,
                     worst: int = WORST_CLUSTERS) -> CoverageSummary:
    """How well the synthetic items cover the reference (real) items, overall and per cluster.

    ``items`` (rows in the order of ``vectors``) needs item_id, run_role, cluster and cluster_name
    columns, as ``pipeline.load_dataset`` gives them. Every reference item counts; of the others only
    those in ``synthetic_ids`` when given (a run, a report's or an export's items). Never raises for
    missing data: with no reference item, fewer than two, or no synthetic item, the summary's
    ``reason`` says so and what to do."""
    is_ref = (items["run_role"] == "reference").to_numpy()
    is_syn = ~is_ref
    if synthetic_ids is not None:
        is_syn &= items["item_id"].isin(set(synthetic_ids)).to_numpy()
    n_ref, n_syn = int(is_ref.sum()), int(is_syn.sum())
    reason = _missing_reason(n_ref, n_syn)
    if reason:
        return CoverageSummary(reference_items=n_ref, synthetic_items=n_syn, reason=reason)
    keep = is_ref | is_syn
    overall, table = coverage_report(items[keep], vectors[keep], k)
    rows = [{key: (None if pd.isna(value) else value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]
    rows.sort(key=lambda r: (r["recall"] is None, r["recall"] or 0.0, -r["reference_items"], r["cluster"]))
    return CoverageSummary(
        recall=overall.recall, precision=overall.precision, k=overall.k, reference_items=n_ref,
        synthetic_items=n_syn, reference_reached=int(overall.reached.sum()),
        synthetic_near=int(overall.near_reference.sum()), clusters=rows,
        worst=[r for r in rows if r["reference_items"] and r["cluster"] != NOISE][:worst])


def _missing_reason(n_ref: int, n_syn: int) -> str | None:
    if n_ref == 0:
        return NO_REFERENCE
    if n_ref == 1:
        return ("There is only one reference item: coverage needs at least two. Import more real items "
                "with: python -m synth import FILE --reference")
    if n_syn == 0:
        return "There are no synthetic items to measure against the reference data."
    return None


def percent(share: float | None) -> str:
    """A share as a whole percentage, "85 %" ("—" when unknown)."""
    return "—" if share is None else f"{share * 100:.0f} %"


def coverage_sentences(summary: CoverageSummary) -> list[str]:
    """Recall and precision in plain words, one sentence each (or the one reason nothing was measured)."""
    if not summary.measured:
        return [summary.reason]
    recall = (f"Recall: {percent(summary.recall)} of the real items have a synthetic item nearby "
              f"({summary.reference_reached:,} of {summary.reference_items:,}).")
    precision = (f"Precision: {percent(summary.precision)} of the synthetic items are near real items "
                 f"({summary.synthetic_near:,} of {summary.synthetic_items:,}).")
    nearby = ("the real item's nearest real neighbour." if summary.k == 1 else
              f"the farthest of the real item's {summary.k} nearest real neighbours.")
    return [recall, precision, f"Nearby: no farther in meaning (embeddings) than {nearby}"]


WORST_COLUMNS = ("cluster", "real items", "synthetic items", "recall", "precision")


def worst_rows(summary: CoverageSummary) -> list[tuple[str, ...]]:
    """The worst-covered clusters as text, one tuple per cluster in the order of WORST_COLUMNS."""
    return [(str(c["cluster_name"]), f"{c['reference_items']:,}", f"{c['synthetic_items']:,}",
             percent(c["recall"]), percent(c["precision"])) for c in summary.worst]


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
