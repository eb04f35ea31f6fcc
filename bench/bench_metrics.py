"""Metrics at scale: the time of every metric at 1k, 10k and 50k items, and of a filter change
(dedup + length + pattern, then every metric of the kept set) at 10k items.

Prints and saves bench/results/metrics.json. Synthetic data: 40-word texts drawn from a
5,000-word vocabulary with 10% near-copies, and 384-dimensional unit vectors with matching
near-duplicates. Run: python bench/bench_metrics.py [--sizes 1000 10000 50000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.analysis import (
    lexical,
    metrics,  # noqa: E402
)
from synth.analysis.clustering import KMeansClusterer, entropy_bits  # noqa: E402
from synth.analysis.filters import FilterSpec, apply_filters  # noqa: E402


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    words = rng.choice(vocab, size=(n, 40), p=None)
    copies = rng.choice(n, n // 10, replace=False)
    words[copies, :30] = words[(copies + 1) % n, :30]
    texts = [" ".join(row) for row in words]
    x = rng.normal(size=(n, 384)).astype(np.float32)
    x[copies] = x[(copies + 1) % n] + rng.normal(scale=0.05, size=(len(copies), 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    items = pd.DataFrame({"item_id": [f"it{i}" for i in range(n)], "text": texts, "status": "new",
                          "judge_score": np.nan, "run_id": "r", "prompt_label": "p v1", "cluster": 0,
                          "tokens_in": 10, "tokens_out": 40, "latency_ms": 100.0, "cost_usd": 0.0,
                          "valid": None})
    return items, x


def timed(fn):
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def time_metrics(items: pd.DataFrame, x: np.ndarray) -> dict[str, float]:
    texts = items["text"].tolist()
    labels = KMeansClusterer().fit(x)
    return {
        "distinct_1": timed(lambda: lexical.distinct_n(texts, 1)),
        "distinct_2": timed(lambda: lexical.distinct_n(texts, 2)),
        "distinct_3": timed(lambda: lexical.distinct_n(texts, 3)),
        "compression_ratio": timed(lambda: lexical.compression_ratio(texts)),
        "self_bleu": timed(lambda: lexical.self_bleu(texts, max_hypotheses=metrics.SELF_BLEU_HYPOTHESES)),
        "rouge_l_max_mean": timed(lambda: lexical.rouge_l_max_mean(
            texts, max_hypotheses=metrics.ROUGE_HYPOTHESES, candidates=metrics.ROUGE_CANDIDATES)),
        "mean_pairwise_cosine_distance": timed(lambda: metrics.mean_pairwise_cosine_distance(x)),
        "vendi_score": timed(lambda: metrics.vendi_score(x)),
        "near_duplicate_rate": timed(lambda: metrics.near_duplicate_rate(x, 0.9)),
        "cluster_fit (kmeans)": timed(lambda: KMeansClusterer().fit(x)),
        "cluster_entropy": timed(lambda: entropy_bits(labels)),
        "all metrics (compute_metrics)": timed(lambda: metrics.compute_metrics(items, x, 0.9, list(labels))),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    args = parser.parse_args()
    results: dict = {}
    for n in args.sizes:
        items, x = synthetic(n)
        results[str(n)] = time_metrics(items, x)
        print(f"\n{n} items")
        for name, seconds in results[str(n)].items():
            print(f"  {name:34s} {seconds:8.3f} s")
    items, x = synthetic(10_000, seed=1)
    spec = FilterSpec(dedup_threshold=0.9, min_words=5, exclude="w42 w43")
    start = time.perf_counter()
    result = apply_filters(items, x, spec)
    filtered = time.perf_counter() - start
    kept_rows = items.index[items["item_id"].isin(result.kept_ids)]
    metrics.compute_metrics(result.kept, x[kept_rows], 0.9)
    total = time.perf_counter() - start
    results["filter_change_10k"] = {"apply_filters_s": round(filtered, 3), "with_all_metrics_s": round(total, 3),
                                    "kept": len(result.kept), "dropped": len(result.dropped)}
    print(f"\nfilter change at 10k: filters {filtered:.2f} s, with every metric of the kept set {total:.2f} s "
          f"({len(result.kept)} kept, {len(result.dropped)} dropped)")
    out = ROOT / "bench" / "results" / "metrics.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
