"""Intrinsic metrics: what the data itself says about diversity, length and cost.

Reads: a run's items and their cached embeddings. Writes: the ``metrics`` table, one row per
(run, metric) with the parameters used, recomputed only when the run's inputs change.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from synth import settings
from synth.embedding import load_vectors
from synth.errors import SynthError
from synth.records import content_hash
from synth.store import DuckStore

# Bump when a metric's definition changes, so stored values are recomputed.
METRICS_VERSION = 2
TOKENIZER = r"lowercase \w+ words"
_WORD = re.compile(r"\w+")
BLOCK = 2048

# Display order and whether a higher value means more diverse / better (None: neither).
METRIC_NAMES = [
    "count", "distinct_1", "distinct_2", "mean_pairwise_cosine_distance", "near_duplicate_rate",
    "length_mean", "length_p50", "length_p95", "length_min", "length_max",
    "validity_rate", "judge_score_mean", "tokens_in", "tokens_out", "tokens_total", "latency_mean_ms",
    "cost_usd",
]

METRIC_HELP = {
    "count": "number of items in the run.",
    "distinct_1": "unique words / all words over the run (higher: more varied vocabulary).",
    "distinct_2": "unique word pairs / all word pairs over the run (higher: less repeated phrasing).",
    "mean_pairwise_cosine_distance": "mean of 1 - cosine similarity over all pairs of item "
                                     "embeddings (higher: items spread further apart in meaning).",
    "near_duplicate_rate": "share of items whose closest other item is above the cosine threshold "
                           "(lower is better).",
    "length_mean": "mean length in words; length_p50 / p95 / min / max likewise.",
    "validity_rate": "share of items whose structured output parsed and matched the declared fields "
                     "(empty when the run declared none).",
    "judge_score_mean": "mean of the latest LLM-judge score (1-5) of the judged items (empty if none).",
    "tokens_total": "prompt + completion tokens over the run (tokens_in + tokens_out).",
    "latency_mean_ms": "mean time per call.",
    "cost_usd": "litellm's cost estimate; 0 for the embedded model; empty when the price is unknown.",
}


def tokenize(text: str) -> list[str]:
    """The tokenizer behind distinct-n and lengths: lowercase word characters."""
    return _WORD.findall(text.lower())


def distinct_n(texts: list[str], n: int) -> float | None:
    """Unique n-grams divided by all n-grams over the whole set (Li et al., 2016)."""
    if n < 1:
        raise SynthError(f"distinct-n needs n >= 1, got {n}.")
    grams: Counter = Counter()
    for t in texts:
        toks = tokenize(t)
        grams.update(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return None if total == 0 else len(grams) / total


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float | None:
    """Mean of 1 - cos over all unordered pairs, in O(n d) from the sum of unit vectors."""
    n = len(vectors)
    if n < 2:
        return None
    x = _unit(vectors.astype(np.float64))
    s = x.sum(axis=0)
    off_diagonal = float(s @ s) - float((x * x).sum())
    return 1.0 - off_diagonal / (n * (n - 1))


def nearest_neighbour_similarity(vectors: np.ndarray) -> np.ndarray:
    """For each vector, the highest cosine similarity with any other vector (block-wise)."""
    n = len(vectors)
    x = _unit(vectors.astype(np.float32))
    best = np.full(n, -np.inf, dtype=np.float32)
    for start in range(0, n, BLOCK):
        sims = x[start:start + BLOCK] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf
        best[start:start + BLOCK] = sims.max(axis=1)
    return best


def near_duplicate_rate(vectors: np.ndarray, threshold: float) -> float | None:
    """Share of items whose nearest other item has cosine similarity >= threshold."""
    if not 0.0 < threshold <= 1.0:
        raise SynthError(f"The near-duplicate threshold must be in (0, 1], got {threshold}.")
    if len(vectors) < 2:
        return None
    return float((nearest_neighbour_similarity(vectors) >= threshold).mean())


def _mean_of(items: pd.DataFrame, column: str) -> float | None:
    """Mean of a column over the items that have a value (None if none has one)."""
    if column not in items:
        return None
    values = items[column].dropna()
    return float(values.astype(float).mean()) if len(values) else None


def compute_metrics(items: pd.DataFrame, vectors: np.ndarray, threshold: float
                    ) -> tuple[dict[str, float | None], dict[str, dict]]:
    """All metrics of one set of items: (name -> value, name -> parameters used)."""
    texts = items["text"].tolist()
    lengths = np.array([len(tokenize(t)) for t in texts], dtype=float)
    costs = items["cost_usd"]
    n = len(texts)
    values: dict[str, float | None] = {
        "count": float(n),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(vectors),
        "near_duplicate_rate": near_duplicate_rate(vectors, threshold),
        "length_mean": float(lengths.mean()) if n else None,
        "length_p50": float(np.percentile(lengths, 50)) if n else None,
        "length_p95": float(np.percentile(lengths, 95)) if n else None,
        "length_min": float(lengths.min()) if n else None,
        "length_max": float(lengths.max()) if n else None,
        "validity_rate": _mean_of(items, "valid"),
        "judge_score_mean": _mean_of(items, "judge_score"),
        "tokens_in": float(items["tokens_in"].sum()),
        "tokens_out": float(items["tokens_out"].sum()),
        "tokens_total": float(items["tokens_in"].sum() + items["tokens_out"].sum()),
        "latency_mean_ms": float(items["latency_ms"].mean()) if n else None,
        "cost_usd": None if costs.isna().any() else float(costs.sum()),
    }
    ngram = {"tokenizer": TOKENIZER, "sample_size": n}
    vec = {"embed_model": settings.get("embed_model"), "sample_size": n}
    length = {"unit": "words", "tokenizer": TOKENIZER}
    params = {
        "distinct_1": {**ngram, "n": 1},
        "distinct_2": {**ngram, "n": 2},
        "mean_pairwise_cosine_distance": vec,
        "near_duplicate_rate": {**vec, "threshold": threshold},
        "cost_usd": {"source": "litellm estimate; 0 for local models; empty if unknown"},
        "validity_rate": {"sample_size": int(items["valid"].notna().sum()) if "valid" in items else 0},
        "judge_score_mean": {"sample_size": int(items["judge_score"].notna().sum()) if "judge_score" in items else 0,
                             "which": "latest judgement per item"},
        **{k: length for k in values if k.startswith("length_")},
    }
    return values, params


def compute_run_metrics(store: DuckStore, run_id: str, threshold: float | None = None,
                        force: bool = False) -> dict[str, float | None]:
    """Metrics of one run, from the ``metrics`` table unless its inputs changed since."""
    threshold = settings.get("near_dup_threshold") if threshold is None else threshold
    items = store.items([run_id])
    if items.empty:
        raise SynthError(f"Run {run_id} has no items.")
    embed_model = settings.get("embed_model")
    # Built in Python: pandas turns "text" + <NA> into <NA>, which would hide every change.
    signature = [f"{i}:{h}:{v}:{j}" for i, h, v, j in
                 zip(items["item_id"], items["text_hash"], items["valid"], items["judge_score"])]
    inputs = content_hash({"v": METRICS_VERSION, "items": sorted(signature),
                           "threshold": threshold, "embed_model": embed_model})
    if not force and store.metrics_inputs_hash(run_id) == inputs:
        stored = store.metrics([run_id])
        by_name = dict(zip(stored["name"], stored["value"].astype(object).where(stored["value"].notna(), None)))
        return {name: by_name.get(name) for name in METRIC_NAMES}
    vectors = load_vectors(store, items["text"].tolist(), embed_model)
    values, params = compute_metrics(items, vectors, threshold)
    store.put_metrics(run_id, values, params, inputs)
    return values


def compute_all_metrics(store: DuckStore, threshold: float | None = None) -> pd.DataFrame:
    """A run-by-metric table for every run, computing what is missing or stale."""
    runs = store.runs()
    rows = []
    for run in runs.itertuples():
        values = compute_run_metrics(store, run.run_id, threshold)
        rows.append({"run_id": run.run_id, "run": run.name, "model": run.model,
                     "prompt_version": run.prompt_version, **values})
    columns = ["run_id", "run", "model", "prompt_version", *METRIC_NAMES]
    return pd.DataFrame(rows, columns=columns)
