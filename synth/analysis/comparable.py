"""Comparable numbers: size-dependent metrics of several runs at one common sample size, with
bootstrap intervals, and "higher" or "lower" only when the intervals say so.

Reads: each run's items (texts, cached embeddings, the dataset's cluster labels). Writes: nothing.

Distinct-n, self-BLEU, compression ratio, vendi, the near-duplicate rate and cluster entropy move
with the number of items (distinct-n falls as a set grows, vendi can never exceed n), so two runs
of different sizes are compared on subsamples of a common size m:

- m = half the smaller run's size, at most COMMON_N_CAP. Half, so that even the smaller run's
  subsamples differ from each other and its interval says how much the draw matters (at m = n
  every subsample is the whole run and the interval is a point).
- Each run: ROUNDS subsamples of m items drawn without replacement (numpy ``default_rng(seed)``,
  so the same seed gives the same numbers), every metric computed on each by the functions of
  :mod:`synth.analysis.metrics` and :mod:`synth.analysis.lexical`; the mean, and the 2.5th and
  97.5th percentiles as the 95 % interval.
- Verdict: B is "higher" or "lower" than A only when the two intervals do not overlap; otherwise
  "no clear difference". This is conservative on purpose: the intervals describe m-item samples,
  so non-overlap means a typical m-item sample of one run scores apart from a typical one of the
  other, which runs drawn from the same source essentially never do.
- A run with fewer items than the ``compare_min_items`` setting is "too small to compare": it gets
  no value at the common size and takes part in no verdict.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth.analysis import lexical
from synth.analysis.metrics import (
    METRICS,
    mean_pairwise_cosine_distance,
    near_duplicate_rate,
    vendi_score,
)
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import format_number, is_missing
from synth.store import DuckStore

TOO_SMALL = "too small to compare"
NO_CLEAR = "no clear difference"
COMMON_N_CAP = 200
SUBSAMPLE_FRACTION = 0.5
ROUNDS = 200
# self-BLEU and gzip cost most per subsample: fewer rounds keep a 200-item pair under two seconds.
SLOW_ROUNDS = 100
SLOW_METRICS = frozenset({"self_bleu", "compression_ratio"})
LEVEL = 0.95
# The metrics whose value depends on the number of items, in the order tables show them.
# (rouge_l_max_mean depends on it too but costs ~30 ms per 100-item subsample: it is left out.)
COMPARABLE_METRICS = ("distinct_1", "distinct_2", "distinct_3", "compression_ratio", "self_bleu",
                      "mean_pairwise_cosine_distance", "vendi_score", "near_duplicate_rate", "cluster_entropy")
# Size-dependent metrics not measured at the common size: never called better or worse across runs.
UNJUDGED_METRICS = frozenset({"rouge_l_max_mean", "cost_per_effective_sample"})


@dataclass(frozen=True)
class Sample:
    """One run's items as the comparison reads them: texts, their embeddings (rows in the same
    order) and, when the dataset is clustered, each item's cluster (None for noise)."""

    texts: list[str]
    vectors: np.ndarray
    labels: list | None = None

    def __post_init__(self):
        if len(self.vectors) != len(self.texts):
            raise SynthError(f"A sample has {len(self.texts)} texts but {len(self.vectors)} embeddings; "
                             "give one embedding per text.")

    @property
    def n(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Interval:
    """A metric at the common size: the mean over subsamples and the 95 % percentile interval."""

    mean: float | None
    low: float | None
    high: float | None
    m: int
    rounds: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "m": self.m, "rounds": self.rounds}


def min_items() -> int:
    """The stated minimum size (the ``compare_min_items`` setting)."""
    return settings.get("compare_min_items")


def too_small(n: int, minimum: int | None = None) -> bool:
    """Whether a run of ``n`` items is too small to compare (under the stated minimum, or under 2)."""
    return n < max(2, min_items() if minimum is None else minimum)


def common_size(sizes: list[int], minimum: int | None = None) -> int | None:
    """The common sample size of runs of these sizes: half the smallest one that is not too small,
    at most COMMON_N_CAP and at least 2; None when every run is too small."""
    eligible = [n for n in sizes if not too_small(n, minimum)]
    if not eligible:
        return None
    return max(2, min(COMMON_N_CAP, int(min(eligible) * SUBSAMPLE_FRACTION)))


def _metric_values(sample: Sample, idx: np.ndarray, names: set[str], threshold: float,
                   tokens: list[list[str]]) -> dict[str, float | None]:
    """Every wanted metric of the items at ``idx``, by the metrics module's own functions."""
    texts = [sample.texts[i] for i in idx]
    vectors = sample.vectors[idx]
    out: dict[str, float | None] = {}
    lexical_names = names & {"distinct_1", "distinct_2", "distinct_3", "self_bleu"}
    if lexical_names:
        toks = [tokens[i] for i in idx]
        grams = lexical.ngram_ids(toks, 4 if "self_bleu" in names else 3)
        for k in (1, 2, 3):
            if f"distinct_{k}" in names:
                out[f"distinct_{k}"] = lexical.distinct_n(texts, k, toks, grams)
        if "self_bleu" in names:
            out["self_bleu"] = lexical.self_bleu(texts, max_hypotheses=len(texts), tokens=toks, grams=grams)[0]
    if "compression_ratio" in names:
        out["compression_ratio"] = lexical.compression_ratio(texts)
    if "mean_pairwise_cosine_distance" in names:
        out["mean_pairwise_cosine_distance"] = mean_pairwise_cosine_distance(vectors)
    if "vendi_score" in names:
        out["vendi_score"] = vendi_score(vectors)[0]
    if "near_duplicate_rate" in names:
        out["near_duplicate_rate"] = near_duplicate_rate(vectors, threshold)[0]
    if "cluster_entropy" in names:
        from synth.analysis.clustering import entropy_bits

        labelled = [] if sample.labels is None else [sample.labels[i] for i in idx if sample.labels[i] is not None]
        out["cluster_entropy"] = entropy_bits(labelled) if sample.labels is not None else None
    return out


def _one_blas_thread():
    """One BLAS thread: the matrices here are small (m x m, m x d), and on a busy machine a
    multi-threaded eigensolver on them is several times slower than a single thread."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - scikit-learn is a requirement
        return contextlib.nullcontext()
    return threadpool_limits(1)


def subsample_values(sample: Sample, m: int, metrics: tuple[str, ...] = COMPARABLE_METRICS, seed: int | None = None,
                     threshold: float | None = None, rounds: int = ROUNDS,
                     slow_rounds: int = SLOW_ROUNDS) -> dict[str, np.ndarray]:
    """Each metric on ``rounds`` seeded subsamples of ``m`` items drawn without replacement (the
    slow ones on the first ``slow_rounds``): metric -> values (NaN where a metric is undefined).
    At m = n every subsample is the whole run, so it is measured once."""
    unknown = [name for name in metrics if name not in COMPARABLE_METRICS]
    if unknown:
        raise SynthError(f"{', '.join(unknown)} cannot be compared at a common size. Choose among: "
                         f"{', '.join(COMPARABLE_METRICS)}.")
    if not 2 <= m <= sample.n:
        raise SynthError(f"The common sample size must be between 2 and the run's {sample.n} items, got {m}.")
    if rounds < 1 or slow_rounds < 1:
        raise SynthError(f"Bootstrap rounds must be at least 1, got {rounds} and {slow_rounds}.")
    seed = settings.get("seed") if seed is None else seed
    threshold = settings.get("near_dup_threshold") if threshold is None else threshold
    rng = np.random.default_rng(seed)
    tokens = [lexical.words(t) for t in sample.texts]
    whole = m == sample.n
    total = 1 if whole else rounds
    values: dict[str, list[float]] = {name: [] for name in metrics}
    with _one_blas_thread():
        for r in range(total):
            idx = np.arange(sample.n) if whole else np.sort(rng.choice(sample.n, m, replace=False))
            wanted = {name for name in metrics if name not in SLOW_METRICS or whole or r < slow_rounds}
            for name, value in _metric_values(sample, idx, wanted, threshold, tokens).items():
                values[name].append(np.nan if value is None else float(value))
    return {name: np.array(v, dtype=float) for name, v in values.items()}


def interval(values: np.ndarray, m: int, level: float = LEVEL) -> Interval:
    """Mean and percentile interval of one metric's subsample values (None where none is defined)."""
    present = values[~np.isnan(values)]
    if not len(present):
        return Interval(None, None, None, m, len(values))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(present, [tail, 100 - tail])
    return Interval(float(present.mean()), float(low), float(high), m, len(present))


def measure_at(sample: Sample, m: int, metrics: tuple[str, ...] = COMPARABLE_METRICS, seed: int | None = None,
               threshold: float | None = None) -> dict[str, Interval]:
    """Each metric of ``sample`` at size ``m``: metric -> Interval."""
    return {name: interval(v, m) for name, v in subsample_values(sample, m, metrics, seed, threshold).items()}


def verdict(a: Interval | None, b: Interval | None) -> str:
    """Whether B's value is "higher" or "lower" than A's: only when their intervals do not overlap;
    "no clear difference" otherwise (or when either has no value)."""
    if a is None or b is None or a.mean is None or b.mean is None:
        return NO_CLEAR
    if b.low > a.high:
        return "higher"
    if b.high < a.low:
        return "lower"
    return NO_CLEAR


def change(value_verdict: str, metric: str) -> str:
    """A value verdict turned into "better" or "worse" by the metric's direction (from the metrics
    registry); other verdicts are passed through."""
    direction = METRICS[metric].direction
    if value_verdict not in ("higher", "lower") or direction == 0:
        return value_verdict
    return "better" if (value_verdict == "higher") == (direction > 0) else "worse"


@dataclass
class CommonSize:
    """Several runs at one common size: m, and per run either its intervals or "too small"."""

    m: int | None
    minimum: int
    sizes: dict[str, int]
    intervals: dict[str, dict[str, Interval]]  # key -> metric -> Interval (runs not too small only)

    def is_too_small(self, key: str) -> bool:
        return key not in self.intervals

    def status(self, key: str) -> str:
        return TOO_SMALL if self.is_too_small(key) else ""

    def value(self, key: str, metric: str) -> Interval | None:
        return self.intervals.get(key, {}).get(metric)

    def table(self) -> pd.DataFrame:
        """One row per (run, metric): key, n_items, metric, m, mean, low, high, status."""
        rows = []
        for key, n in self.sizes.items():
            for metric in self.metrics:
                iv = self.value(key, metric)
                rows.append({"key": key, "n_items": n, "metric": metric, "m": self.m,
                             "mean": iv.mean if iv else None, "low": iv.low if iv else None,
                             "high": iv.high if iv else None, "status": self.status(key)})
        return pd.DataFrame(rows, columns=["key", "n_items", "metric", "m", "mean", "low", "high", "status"])

    @property
    def metrics(self) -> list[str]:
        first = next(iter(self.intervals.values()), None)
        return list(first) if first else list(COMPARABLE_METRICS)

    def best(self, metric: str) -> str | None:
        """The one run clearly best on ``metric``: its interval lies on the better side of every
        other comparable run's (by the metric's direction); None if no run is, or fewer than two
        runs are comparable."""
        direction = METRICS[metric].direction
        keys = [k for k in self.intervals if self.value(k, metric) and self.value(k, metric).mean is not None]
        if direction == 0 or len(keys) < 2:
            return None
        for key in keys:
            if all(change(verdict(self.value(other, metric), self.value(key, metric)), metric) == "better"
                   for other in keys if other != key):
                return key
        return None

    def wide(self, labels: dict[str, str] | None = None) -> pd.DataFrame:
        """One row per run: run (its label), n_items, comparable ("too small to compare" or ""),
        common_n, and per metric its mean and interval as text (``interval_text``)."""
        labels = labels or {}
        rows = [{"run": labels.get(key, key), "n_items": n, "comparable": self.status(key), "common_n": self.m,
                 **{metric: interval_text(self.value(key, metric)) for metric in self.metrics}}
                for key, n in self.sizes.items()]
        return pd.DataFrame(rows, columns=["run", "n_items", "comparable", "common_n", *self.metrics])

    def to_dict(self) -> dict:
        return {"m": self.m, "min_items": self.minimum, "sizes": self.sizes,
                "too_small": [k for k in self.sizes if self.is_too_small(k)],
                "metrics": {k: {name: iv.to_dict() for name, iv in v.items()} for k, v in self.intervals.items()}}


def at_common_size(samples: dict[str, Sample], metrics: tuple[str, ...] = COMPARABLE_METRICS,
                   seed: int | None = None, threshold: float | None = None, minimum: int | None = None,
                   m: int | None = None) -> CommonSize:
    """Every sample at one common size (``m``, default :func:`common_size` of their sizes)."""
    minimum = min_items() if minimum is None else minimum
    sizes = {key: s.n for key, s in samples.items()}
    m = common_size(list(sizes.values()), minimum) if m is None else m
    intervals = {key: measure_at(s, m, metrics, seed, threshold)
                 for key, s in samples.items() if m is not None and not too_small(s.n, minimum)}
    return CommonSize(m, minimum, sizes, intervals)


def compare_at_common_size(a: Sample, b: Sample, metrics: tuple[str, ...] = COMPARABLE_METRICS,
                           seed: int | None = None, threshold: float | None = None,
                           minimum: int | None = None) -> tuple[CommonSize, pd.DataFrame]:
    """B against A at a common size: the CommonSize and one row per metric with m, A's and B's
    mean and interval, the verdict on the value (B "higher"/"lower" than A, "no clear difference",
    or "too small to compare") and the change it means (better/worse by the metric's direction)."""
    common = at_common_size({"a": a, "b": b}, metrics, seed, threshold, minimum)
    small = common.is_too_small("a") or common.is_too_small("b")
    rows = []
    for metric in metrics:
        ia, ib = common.value("a", metric), common.value("b", metric)
        said = TOO_SMALL if small else verdict(ia, ib)
        rows.append({"metric": metric, "m": None if small else common.m,
                     "a": ia.mean if ia else None, "a_low": ia.low if ia else None, "a_high": ia.high if ia else None,
                     "b": ib.mean if ib else None, "b_low": ib.low if ib else None, "b_high": ib.high if ib else None,
                     "verdict": said, "change": change(said, metric)})
    return common, pd.DataFrame(rows)


def run_samples(store: DuckStore, run_ids: list[str], clustering=None) -> dict[str, Sample]:
    """Each run's items as a Sample (texts, cached embeddings, and cluster labels from ``clustering``:
    by default the dataset's; a comparison also passes one fitted on its two runs alone)."""
    from synth.analysis.clustering import current_clustering
    from synth.analysis.embedding import load_vectors

    items = store.items(list(run_ids))
    clustering = clustering or current_clustering(store)
    samples = {}
    for run_id in run_ids:
        own = items[items["run_id"] == run_id]
        texts = own["text"].tolist()
        vectors = load_vectors(store, texts) if texts else np.zeros((0, 0), dtype=np.float32)
        samples[run_id] = Sample(texts, vectors, [clustering.labels.get(i) for i in own["item_id"]])
    return samples


def runs_at_common_size(store: DuckStore, run_ids: list[str] | None = None,
                        threshold: float | None = None) -> CommonSize:
    """These runs (default: every run) at one common size, for the per-run tables (``threshold``:
    the near-duplicate one, default the setting)."""
    run_ids = list(store.runs()["run_id"]) if run_ids is None else list(run_ids)
    return at_common_size(run_samples(store, run_ids), threshold=threshold)


def interval_text(iv: Interval | None, digits: int = 3) -> str:
    """An interval as tables show it: ``0.412 [0.398, 0.431]`` (empty without a value)."""
    if iv is None or is_missing(iv.mean):
        return ""
    return (f"{format_number(iv.mean, digits=digits)} "
            f"[{format_number(iv.low, digits=digits)}, {format_number(iv.high, digits=digits)}]")
