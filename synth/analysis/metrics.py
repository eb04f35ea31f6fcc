"""Intrinsic metrics: what the data itself says about diversity, quality and cost.

Reads: a set of items (a run, or any filtered view), their cached embeddings and the current
clustering. Writes: the ``metrics`` table for runs, one row per (run, metric) with the parameters
used, recomputed only when the run's inputs change.

Every metric is checked against a public reference implementation in tests/test_metrics.py and
tests/test_lexical.py. Past a stated size the O(n^2) ones are estimated on a seeded sample, and
their parameters say so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth.analysis import lexical
from synth.analysis.embedding import load_vectors, unit_rows
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import content_hash, from_json
from synth.kernel.registry import Registry
from synth.store import DuckStore

# Bump when a metric's definition changes, so stored values are recomputed.
METRICS_VERSION = 4
BLOCK = 2048
# Near-duplicates are exact up to this many items; past it, this many seeded queries are each
# compared with every item (an unbiased estimate of the rate).
NEAR_DUP_EXACT_MAX = 20_000
NEAR_DUP_QUERIES = 5_000
SELF_BLEU_HYPOTHESES = 10_000
ROUGE_HYPOTHESES = 2_000
ROUGE_CANDIDATES = 32


@dataclass(frozen=True)
class MetricInfo:
    direction: int  # +1: higher is better (more diverse, more valid); -1: lower is better; 0: neither
    help: str
    label: str = ""  # what a person reads; the metric id (the name) is what SQL and the CLI use
    unit: str = ""  # "share" (a fraction, shown as a percentage), "bits", "words", "items", "tokens", "ms", "USD"


# The metrics, in the order tables show them: a registry, so no name is defined twice.
METRICS: Registry = Registry("metric")
for _name, _info in [
    ("count", MetricInfo(0, "number of items.", label="Items", unit="items")),
    ("distinct_1", MetricInfo(1, "unique words / all words over the set.", label="Word variety", unit="share")),
    ("distinct_2", MetricInfo(1, "unique word pairs / all word pairs over the set.", label="Word-pair variety", unit="share")),
    ("distinct_3", MetricInfo(1, "unique word triples / all word triples over the set.", label="Word-triple variety", unit="share")),
    ("compression_ratio", MetricInfo(-1, "raw size / gzip size of all texts joined: higher means more "
                                         "repetition across the set.", label="Compressibility", unit="")),
    ("self_bleu", MetricInfo(-1, "mean sentence BLEU of each item against all the others: higher means "
                                 "items reuse each other's phrasing.", label="Phrasing reuse", unit="")),
    ("rouge_l_max_mean", MetricInfo(-1, "mean over items of the highest ROUGE-L F with any other item "
                                        "(the Self-Instruct filter's measure).", label="Closest overlap", unit="")),
    ("mean_pairwise_cosine_distance", MetricInfo(1, "mean of 1 - cosine similarity over all pairs of "
                                                    "embeddings: how far apart items are in meaning.", label="Spread in meaning", unit="")),
    ("vendi_score", MetricInfo(1, "effective number of distinct items (exp of the entropy of the cosine "
                                  "kernel's eigenvalues): 1 if all items are the same, n if all differ.", label="Distinct items", unit="items")),
    ("near_duplicate_rate", MetricInfo(-1, "share of items whose closest other item is above the cosine "
                                           "threshold.", label="Near-duplicates", unit="share")),
    ("cluster_entropy", MetricInfo(1, "entropy (bits) of how the items spread over the topic clusters of "
                                      "the whole dataset (every run in view, clustered together): 0 when they "
                                      "all sit in one. The clusters come from all items, so a run's value "
                                      "changes when other runs are added; a comparison of two runs also gives "
                                      "it over a clustering of those two runs alone (cluster_entropy_pair).", label="Topic spread", unit="bits")),
    ("length_mean", MetricInfo(0, "mean length in words.", label="Mean length", unit="words")),
    ("length_p50", MetricInfo(0, "median length in words.", label="Median length", unit="words")),
    ("length_p95", MetricInfo(0, "95th percentile of length in words.", label="Long items (95th percentile)", unit="words")),
    ("length_min", MetricInfo(0, "shortest item in words.", label="Shortest", unit="words")),
    ("length_max", MetricInfo(0, "longest item in words.", label="Longest", unit="words")),
    ("validity_rate", MetricInfo(1, "share of items whose structured output parsed and matched the declared "
                                    "fields (empty when none were declared).", label="Valid structured output", unit="share")),
    ("judge_score_mean", MetricInfo(1, "mean of the latest LLM-judge score (1-5) of the judged items.", label="Judge score", unit="")),
    ("truncated_rate", MetricInfo(-1, "share of the model's items cut off at max tokens (finish reason "
                                      "'length'); empty when no item has a finish reason (imported, "
                                      "grammar).", label="Cut off at max tokens", unit="share")),
    ("tokens_in", MetricInfo(0, "prompt tokens.", label="Prompt tokens", unit="tokens")),
    ("tokens_out", MetricInfo(0, "completion tokens.", label="Completion tokens", unit="tokens")),
    ("tokens_total", MetricInfo(0, "prompt + completion tokens.", label="Tokens", unit="tokens")),
    ("latency_mean_ms", MetricInfo(0, "mean time per call.", label="Time per call", unit="ms")),
    ("cost_usd", MetricInfo(-1, "litellm's cost estimate; 0 for the embedded model and cached responses; "
                                "empty when a price is unknown.", label="Cost", unit="USD")),
    ("cost_per_effective_sample", MetricInfo(-1, "cost_usd / vendi_score: what one effectively distinct "
                                                 "item cost.", label="Cost per distinct item", unit="USD")),
]:
    METRICS.register(_name, _info)
METRIC_NAMES = list(METRICS)
# Sums over every item: never estimated on a sample.
TOTALS = {"tokens_in", "tokens_out", "tokens_total", "cost_usd", "cost_per_effective_sample"}
METRIC_HELP = {name: info.help for name, info in METRICS.items()}


def metric_label(name: str, with_id: bool = True) -> str:
    """A metric as a person reads it, with its id beside it for SQL users: "Near-duplicates
    (near_duplicate_rate)"; the id alone for a name the registry does not hold."""
    info = METRICS[name] if name in METRICS else None
    if info is None or not info.label:
        return name
    return f"{info.label} ({name})" if with_id else info.label


def format_metric(name: str, value, missing: str = "—", signed: bool = False, with_unit: bool = True) -> str:
    """A metric's value in its unit: shares as percentages ("4.5 %"), bits, words, items, ms and
    USD with their unit; ``missing`` when there is no value. ``with_unit=False`` leaves off a unit
    written after the number (" %", " bits", " words", " ms"), for bounds beside a value that has it."""
    from synth.kernel.text import format_number, is_missing

    if is_missing(value):
        return missing
    unit = METRICS[name].unit if name in METRICS else ""
    if unit == "share":
        number = float(value) * 100
        digits = ".0f" if abs(number) >= 10 or number == 0 else ".1f"
        return f"{'+' if signed and number > 0 else ''}{number:{digits}}" + (" %" if with_unit else "")
    if unit == "USD":
        return f"{'+' if signed and value > 0 else ''}${float(value):.4g}"
    text = format_number(value, digits=3, grouping=unit in ("items", "tokens"), signed=signed)
    return f"{text} {unit}" if unit in ("bits", "words", "ms") and with_unit else text


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float | None:
    """Mean of 1 - cos over all unordered pairs, in O(n d) from the sum of unit vectors."""
    n = len(vectors)
    if n < 2:
        return None
    x = unit_rows(vectors.astype(np.float64))
    s = x.sum(axis=0)
    off_diagonal = float(s @ s) - float((x * x).sum())
    return 1.0 - off_diagonal / (n * (n - 1))


def vendi_score(vectors: np.ndarray) -> tuple[float | None, dict]:
    """Vendi score with the cosine kernel (Friedman & Dieng, 2023).

    The eigenvalues of K/n = X X^T / n are those of X^T X / n (d x d) plus zeros, so past n > d
    the dual form costs O(n d^2) instead of O(n^3)."""
    n = len(vectors)
    if n == 0:
        return None, {}
    x = unit_rows(vectors.astype(np.float64))
    dual = n > x.shape[1]
    gram = (x.T @ x) if dual else (x @ x.T)
    w = np.linalg.eigvalsh(gram / n)
    w = w[w > 1e-12]
    value = float(np.exp(-(w * np.log(w)).sum()))
    return value, {"kernel": "cosine", "q": 1, "form": "dual (d x d)" if dual else "primal (n x n)",
                   "sample_size": n}


def nearest_neighbour_similarity(vectors: np.ndarray, queries: np.ndarray | None = None) -> np.ndarray:
    """For each query row (default: every row), the highest cosine similarity with any other row."""
    x = unit_rows(vectors.astype(np.float32))
    idx = np.arange(len(x)) if queries is None else np.asarray(queries)
    best = np.full(len(idx), -np.inf, dtype=np.float32)
    for start in range(0, len(idx), BLOCK):
        rows = idx[start:start + BLOCK]
        sims = x[rows] @ x.T
        sims[np.arange(len(rows)), rows] = -np.inf
        best[start:start + BLOCK] = sims.max(axis=1)
    return best


def near_duplicate_rate(vectors: np.ndarray, threshold: float, seed: int = 0
                        ) -> tuple[float | None, dict]:
    """Share of items whose nearest other item has cosine similarity >= threshold."""
    if not 0.0 < threshold <= 1.0:
        raise SynthError(f"The near-duplicate threshold must be in (0, 1], got {threshold}.")
    n = len(vectors)
    params = {"threshold": threshold, "population": n, "sampled": False}
    if n < 2:
        return None, params
    queries = None
    if n > NEAR_DUP_EXACT_MAX:
        queries = np.sort(np.random.default_rng(seed).choice(n, NEAR_DUP_QUERIES, replace=False))
        params.update(sampled=True, queries=NEAR_DUP_QUERIES, seed=seed,
                      how=f"{NEAR_DUP_QUERIES} seeded items, each compared with all {n}")
    return float((nearest_neighbour_similarity(vectors, queries) >= threshold).mean()), params


def _mean_of(items: pd.DataFrame, column: str) -> float | None:
    """Mean of a column over the items that have a value (None if none has one)."""
    if column not in items:
        return None
    values = items[column].dropna()
    return float(values.astype(float).mean()) if len(values) else None


def truncated_rate(items: pd.DataFrame) -> tuple[float | None, dict]:
    """Share of the items with a finish reason whose reason is "length" (cut off at max tokens);
    None when none has one (imported or grammar items)."""
    reasons = items["finish_reason"].dropna() if "finish_reason" in items else pd.Series([], dtype=object)
    reasons = reasons[reasons.astype(str) != ""]
    cut = int((reasons == "length").sum())
    params = {"finish_reason": "length", "sample_size": len(reasons), "truncated": cut}
    return (cut / len(reasons) if len(reasons) else None), params


def compute_metrics(items: pd.DataFrame, vectors: np.ndarray, threshold: float,
                    clusters: list[int | None] | None = None, seed: int = 0,
                    names: list[str] | None = None) -> tuple[dict[str, float | None], dict[str, dict]]:
    """The metrics of one set of items: (name -> value, name -> parameters used). Every metric, or
    only ``names`` (the others are not computed, and not in the result)."""
    want = set(METRIC_NAMES if names is None else names)
    unknown = want - set(METRIC_NAMES)
    if unknown:
        raise SynthError(f"Unknown metric(s) {sorted(unknown)}; the metrics are {', '.join(METRIC_NAMES)}.")
    texts = items["text"].tolist()
    n = len(texts)
    values: dict[str, float | None] = {"count": float(n)}
    params: dict[str, dict] = {"count": {}}
    # gzip and the matrix products release the GIL: they run beside the Python-bound text metrics.
    pool = ThreadPoolExecutor(max_workers=2)
    compressed = pool.submit(lexical.compression_ratio, texts) if "compression_ratio" in want else None
    near = pool.submit(near_duplicate_rate, vectors, threshold, seed) if "near_duplicate_rate" in want else None
    lexical_wanted = want & {"distinct_1", "distinct_2", "distinct_3", "self_bleu", "length_mean", "length_p50",
                             "length_p95", "length_min", "length_max"}
    tokens = [lexical.words(t) for t in texts] if lexical_wanted else []
    lengths = np.array([len(t) for t in tokens], dtype=float)
    grams = lexical.ngram_ids(tokens, 4 if "self_bleu" in want else 3) if lexical_wanted else []
    ngram = {"tokenizer": lexical.WORD_TOKENIZER, "sample_size": n}
    for k in (1, 2, 3):
        if f"distinct_{k}" in want:
            values[f"distinct_{k}"] = lexical.distinct_n(texts, k, tokens, grams)
            params[f"distinct_{k}"] = {**ngram, "n": k}
    params["compression_ratio"] = {"compressor": "gzip level 9", "joined_with": "newline", "sample_size": n}
    if "self_bleu" in want:
        values["self_bleu"], params["self_bleu"] = lexical.self_bleu(
            texts, max_hypotheses=SELF_BLEU_HYPOTHESES, seed=seed, tokens=tokens, grams=grams)
    if "rouge_l_max_mean" in want:
        values["rouge_l_max_mean"], params["rouge_l_max_mean"] = lexical.rouge_l_max_mean(
            texts, max_hypotheses=ROUGE_HYPOTHESES, candidates=ROUGE_CANDIDATES, seed=seed)
    vec = {"embed_model": settings.get("embed_model"), "sample_size": n}
    if "mean_pairwise_cosine_distance" in want:
        values["mean_pairwise_cosine_distance"] = mean_pairwise_cosine_distance(vectors)
        params["mean_pairwise_cosine_distance"] = vec
    if want & {"vendi_score", "cost_per_effective_sample"}:
        values["vendi_score"], params["vendi_score"] = vendi_score(vectors)
    if near is not None:
        values["near_duplicate_rate"], near_params = near.result()
        params["near_duplicate_rate"] = {**vec, **near_params}
    if compressed is not None:
        values["compression_ratio"] = compressed.result()
    pool.shutdown()
    from synth.analysis.clustering import entropy_bits

    labelled = [c for c in (clusters or []) if c is not None]
    values["cluster_entropy"] = entropy_bits(labelled) if clusters is not None else None
    params["cluster_entropy"] = {"base": 2, "clustered_items": len(labelled)}
    if lexical_wanted:
        _length_metrics(lengths, values, params)
    _quality_and_spend_metrics(items, values, params)
    return {k: values[k] for k in METRIC_NAMES if k in want}, {k: v for k, v in params.items() if k in want}


def _length_metrics(lengths: np.ndarray, values: dict, params: dict) -> None:
    """Length in words: mean, median, 95th percentile, shortest and longest (into values, params)."""
    n = len(lengths)
    length = {"unit": "words", "tokenizer": lexical.WORD_TOKENIZER, "sample_size": n}
    for name, fn in (("length_mean", np.mean), ("length_p50", lambda a: np.percentile(a, 50)),
                     ("length_p95", lambda a: np.percentile(a, 95)), ("length_min", np.min),
                     ("length_max", np.max)):
        values[name] = float(fn(lengths)) if n else None
        params[name] = length


def _quality_and_spend_metrics(items: pd.DataFrame, values: dict, params: dict) -> None:
    """Validity, judge score, tokens, latency and cost (into values, params; needs vendi_score)."""
    costs = items["cost_usd"] if "cost_usd" in items else pd.Series([0.0] * len(items))
    values["validity_rate"] = _mean_of(items, "valid")
    params["validity_rate"] = {"sample_size": int(items["valid"].notna().sum()) if "valid" in items else 0}
    values["judge_score_mean"] = _mean_of(items, "judge_score")
    params["judge_score_mean"] = {"which": "latest judgement per item", "sample_size":
                                  int(items["judge_score"].notna().sum()) if "judge_score" in items else 0}
    values["truncated_rate"], params["truncated_rate"] = truncated_rate(items)
    for name in ("tokens_in", "tokens_out"):
        values[name] = float(items[name].sum()) if name in items else 0.0
        params[name] = {}
    values["tokens_total"] = values["tokens_in"] + values["tokens_out"]
    params["tokens_total"] = {}
    values["latency_mean_ms"] = _mean_of(items, "latency_ms")
    params["latency_mean_ms"] = {}
    values["cost_usd"] = None if costs.isna().any() else float(costs.sum())
    params["cost_usd"] = {"source": "litellm estimate; 0 for local models and cached responses"}
    vendi = values["vendi_score"]
    values["cost_per_effective_sample"] = (values["cost_usd"] / vendi
                                           if values["cost_usd"] is not None and vendi else None)
    params["cost_per_effective_sample"] = {"formula": "cost_usd / vendi_score"}


def set_signature(items: pd.DataFrame) -> list[str]:
    # Built in Python: pandas turns "text" + <NA> into <NA>, which would hide every change.
    return [f"{i}:{h}:{v}:{j}" for i, h, v, j in
            zip(items["item_id"], items["text_hash"], items["valid"], items["judge_score"])]


def measure_items(store: DuckStore, items: pd.DataFrame, threshold: float | None = None,
                  clustering=None, names: list[str] | None = None, sample: int | None = None,
                  vectors: np.ndarray | None = None,
                  vector_rows: Callable[[np.ndarray], np.ndarray] | None = None,
                  ) -> tuple[dict[str, float | None], dict[str, dict]]:
    """Metrics of any set of items (a run, a filtered view), with the dataset's clusters: every
    metric, or only ``names``. Past ``sample`` items, every metric but ``count`` is measured on a
    seeded sample of that many, and each metric's parameters say so (``sample_of``). ``vectors``:
    the items' vectors in order, if already at hand; or ``vector_rows``, which gives the vectors of
    given rows of ``items`` (a ``Dataset.vector_rows``): only the measured rows are asked for.
    Without either they are read from the database by text."""
    from synth.analysis.clustering import current_clustering

    threshold = settings.get("near_dup_threshold") if threshold is None else threshold
    wanted = METRIC_NAMES if names is None else [m for m in METRIC_NAMES if m in set(names)]
    if items.empty:
        return {name: (0.0 if name == "count" else None) for name in wanted}, {}
    clustering = clustering or current_clustering(store)
    population = len(items)
    rows = None
    if sample is not None and set(wanted) & TOTALS:
        raise SynthError(f"{sorted(set(wanted) & TOTALS)} are totals over every item: they cannot be "
                         "measured on a sample. Leave them out of names, or measure without a sample.")
    if sample is not None and population > sample:
        rows = np.sort(np.random.default_rng(settings.get("seed")).choice(population, sample, replace=False))
        items = items.iloc[rows]
    if vectors is None and vector_rows is not None:
        vectors = vector_rows(np.arange(population) if rows is None else rows)
    elif vectors is None:  # a sample's vectors are read for it alone, not kept with the dataset's
        vectors = load_vectors(store, items["text"].tolist(), keep=rows is None)
    elif rows is not None:
        vectors = vectors[rows]
    labels = [clustering.labels.get(i) for i in items["item_id"]]
    values, params = compute_metrics(items, vectors, threshold, labels, settings.get("seed"), names=names)
    if rows is not None:
        values["count"] = float(population)
        for name in params:
            if name != "count":
                params[name] = {**params[name], "sample_of": population, "sample_seed": settings.get("seed")}
    if "cluster_entropy" not in params:
        return values, params
    params["cluster_entropy"].update(clustering_id=clustering.clustering_id, method=clustering.method,
                                     **clustering.params, measured_over=measured_over(clustering))
    return values, params


def measured_over(clustering) -> str:
    """What cluster_entropy's clusters were fitted on, as its parameters say it."""
    return (f"the clusters of every item in the dataset ({len(clustering.labels)} items, clustering "
            f"{clustering.clustering_id}), not of this set alone: other runs move them")


def compute_run_metrics(store: DuckStore, run_id: str, threshold: float | None = None,
                        force: bool = False, clustering=None, keys: pd.DataFrame | None = None,
                        ) -> dict[str, float | None]:
    """Metrics of one run, from the ``metrics`` table unless its inputs changed since. A run with
    no items (the store never saves one, but an old database may hold one) gets count 0 and no
    other value, so it never stops the metrics of the other runs. The database is held for the
    look-ups only, not while the run is measured (seconds for a large run): pages go on meanwhile.
    ``clustering``: the current clustering of every item, when the caller has it (``run_metrics``
    finds it once for all runs: at 50,000 items it reads every item, 0.5 s). ``keys``: every item's
    ``DuckStore.item_keys``, read in the same session as the run: whether the stored figures are
    current is checked on them, and the run's items (with their texts) are read only if not."""
    from synth.analysis.clustering import current_clustering

    threshold = settings.get("near_dup_threshold") if threshold is None else threshold

    def inputs_of(items: pd.DataFrame) -> str:
        return content_hash({"v": METRICS_VERSION, "items": sorted(set_signature(items)),
                             "threshold": threshold, "embed_model": settings.get("embed_model"),
                             "clustering": clustering.clustering_id, "seed": settings.get("seed")})

    with store.session():
        items = store.items([run_id]) if keys is None else keys[keys["run_id"] == run_id]
        if items.empty:
            return measure_items(store, items)[0]
        clustering = current_clustering(store) if clustering is None else clustering
        inputs = inputs_of(items)
        if not force and store.metrics_inputs_hash(run_id) == inputs:
            stored = store.metrics([run_id])
            by_name = dict(zip(stored["name"], stored["value"].astype(object).where(stored["value"].notna(), None)))
            return {name: by_name.get(name) for name in METRIC_NAMES}
        if keys is not None:  # stale: the run's items themselves, as they are now
            items = store.items([run_id])
            inputs = inputs_of(items)
    values, params = measure_items(store, items, threshold, clustering)
    store.put_metrics(run_id, values, params, inputs)
    return values


def run_metrics(store: DuckStore, run_ids: list[str] | None = None, threshold: float | None = None,
                force: bool = False, with_params: bool = False) -> list[dict]:
    """Per-run metrics of these runs (default: every run), computing what is missing or stale: one
    dict per run with ``run_id``, ``run``, ``model``, ``prompt_version``, ``metrics`` (name ->
    value) and, ``with_params``, ``params`` (name -> the parameters it was measured with). The CLI's ``metrics``
    and the pages read them through here."""
    from synth.analysis.clustering import current_clustering

    with store.session():  # the runs and their items' keys as of one moment
        runs = store.runs()
        if run_ids is not None:
            runs = runs[runs["run_id"].isin(run_ids)]
        keys = store.item_keys() if len(runs) > 1 else None  # read once (no texts) for every run
    rows = []
    clustering = current_clustering(store, items=keys) if len(runs) > 1 else None  # once for every run
    for run in runs.itertuples():
        values = compute_run_metrics(store, run.run_id, threshold, force=force, clustering=clustering, keys=keys)
        row = {"run_id": run.run_id, "run": run.name, "model": run.model,
               "prompt_version": run.prompt_version, "metrics": values}
        if with_params:
            stored = store.metrics([run.run_id])
            row["params"] = {name: from_json(p, {}) for name, p in zip(stored["name"], stored["params"])}
        rows.append(row)
    return rows


def compute_all_metrics(store: DuckStore, threshold: float | None = None) -> pd.DataFrame:
    """A run-by-metric table for every run, computing what is missing or stale."""
    rows = [{k: v for k, v in row.items() if k != "metrics"} | row["metrics"]
            for row in run_metrics(store, threshold=threshold)]
    return pd.DataFrame(rows, columns=["run_id", "run", "model", "prompt_version", *METRIC_NAMES])


_BACKGROUND: dict[str, threading.Thread] = {}
_BACKGROUND_LOCK = threading.Lock()


def measure_in_background(store: DuckStore, delay_s: float = 0.0) -> threading.Thread:
    """Compute missing or stale per-run metrics in a background thread (one per database), after
    ``delay_s``; each run takes the database only for its own short session, so pages keep working
    meanwhile."""
    with _BACKGROUND_LOCK:
        thread = _BACKGROUND.get(store.path)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_measure_quietly, args=(store, delay_s), name="synth-metrics",
                                      daemon=True)
            _BACKGROUND[store.path] = thread
            thread.start()
    return thread


def wait_for_background_metrics(timeout_s: float = 120.0) -> None:
    """Block until the background per-run measurements finish (for tests: no thread outlives one)."""
    deadline = time.monotonic() + timeout_s
    with _BACKGROUND_LOCK:
        threads = list(_BACKGROUND.values())
    _HURRY.set()  # a pass still waiting out its delay starts now
    try:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        _HURRY.clear()


_HURRY = threading.Event()


def _measure_quietly(store: DuckStore, delay_s: float = 0.0) -> None:
    if delay_s:
        _HURRY.wait(delay_s)
    try:
        compute_all_metrics(store)
    except SynthError:
        pass  # the Metrics page computes them again and shows the error




def compare(before: dict[str, float | None], after: dict[str, float | None]) -> pd.DataFrame:
    """Every metric before -> after, with its change and whether that is better or worse."""
    rows = []
    for name in METRIC_NAMES:
        b, a = before.get(name), after.get(name)
        delta = None if a is None or b is None else a - b
        direction = METRICS[name].direction
        if delta is None or direction == 0 or abs(delta) < 1e-12:
            verdict = "" if delta is None or direction == 0 else "same"
        else:
            verdict = "better" if delta * direction > 0 else "worse"
        rows.append({"metric": name, "before": b, "after": a, "delta": delta, "change": verdict})
    return pd.DataFrame(rows)
