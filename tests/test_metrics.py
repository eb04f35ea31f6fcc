import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_distances, cosine_similarity

from synth import metrics
from synth.errors import SynthError
from synth.records import Item, Run


def test_distinct_n_by_hand():
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the, cat, sat, the, cat, ran -> 4 unique of 6
    assert metrics.distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat), (cat sat), (the cat), (cat ran) -> 3 unique of 4
    assert metrics.distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert metrics.distinct_n(["Hello, HELLO hello!"], 1) == pytest.approx(1 / 3)
    assert metrics.distinct_n(["one"], 2) is None
    with pytest.raises(SynthError):
        metrics.distinct_n(texts, 0)


def test_mean_pairwise_cosine_distance_matches_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(57, 16)).astype(np.float32)
    d = cosine_distances(x)
    expected = d[np.triu_indices(len(x), k=1)].mean()
    assert metrics.mean_pairwise_cosine_distance(x) == pytest.approx(expected, abs=1e-6)
    assert metrics.mean_pairwise_cosine_distance(x[:1]) is None


def test_near_duplicate_rate_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 8))
    x = np.vstack([base, base[:10] + rng.normal(scale=0.01, size=(10, 8))])
    sims = cosine_similarity(x)
    np.fill_diagonal(sims, -1)
    for threshold in (0.5, 0.9, 0.999):
        expected = (sims.max(axis=1) >= threshold).mean()
        assert metrics.near_duplicate_rate(x, threshold) == pytest.approx(expected)
    # the block-wise path gives the same answer as one block
    monkeypatch.setattr(metrics, "BLOCK", 7)
    assert metrics.near_duplicate_rate(x, 0.9) == pytest.approx((sims.max(axis=1) >= 0.9).mean())
    assert metrics.near_duplicate_rate(x, 0.999) == pytest.approx(20 / 50)
    with pytest.raises(SynthError, match="threshold"):
        metrics.near_duplicate_rate(x, 1.5)


def test_compute_metrics_values_and_parameters():
    items = pd.DataFrame({"text": ["a b c", "a b", "d e f g"], "tokens_in": [1, 2, 3],
                          "tokens_out": [4, 5, 6], "latency_ms": [10.0, 20.0, 30.0],
                          "cost_usd": [0.5, 0.25, 0.25]})
    x = np.eye(3, 4, dtype=np.float32)
    values, params = metrics.compute_metrics(items, x, 0.9)
    assert values["count"] == 3
    assert values["length_mean"] == pytest.approx(3.0)
    assert values["length_p50"] == 3 and values["length_min"] == 2 and values["length_max"] == 4
    assert values["length_p95"] == pytest.approx(np.percentile([3, 2, 4], 95))
    assert values["tokens_total"] == 21 and values["cost_usd"] == pytest.approx(1.0)
    assert values["mean_pairwise_cosine_distance"] == pytest.approx(1.0)
    assert values["near_duplicate_rate"] == 0.0
    assert values["latency_mean_ms"] == pytest.approx(20.0)
    assert params["near_duplicate_rate"]["threshold"] == 0.9
    assert params["distinct_2"]["n"] == 2 and params["distinct_2"]["sample_size"] == 3
    assert set(values) == set(metrics.METRIC_NAMES)


def test_unknown_cost_stays_unknown():
    items = pd.DataFrame({"text": ["a", "b"], "tokens_in": [1, 1], "tokens_out": [1, 1],
                          "latency_ms": [1.0, 1.0], "cost_usd": [0.1, None]})
    values, _ = metrics.compute_metrics(items, np.eye(2, dtype=np.float32), 0.9)
    assert values["cost_usd"] is None


def _save(store, texts, name="r"):
    run = Run(name=name, technique="sampling")
    store.save_run(run, [Item(text=t, idx=i) for i, t in enumerate(texts)])
    return run.run_id


def test_run_metrics_are_stored_and_recomputed_only_when_inputs_change(store):
    run_id = _save(store, ["the same review", "the same review", "something else entirely"])
    first = metrics.compute_run_metrics(store, run_id, threshold=0.95)
    assert first["near_duplicate_rate"] == pytest.approx(2 / 3)
    stamp = store.metrics([run_id])["computed_at"].max()
    again = metrics.compute_run_metrics(store, run_id, threshold=0.95)
    assert again == pytest.approx(first)
    assert store.metrics([run_id])["computed_at"].max() == stamp
    metrics.compute_run_metrics(store, run_id, threshold=0.99)
    stored = store.metrics([run_id]).set_index("name")
    assert stored["computed_at"].max() > stamp
    assert '"threshold": 0.99' in stored.loc["near_duplicate_rate", "params"]


def test_metrics_table_has_a_row_per_run(store):
    _save(store, ["alpha beta", "gamma delta"], "one")
    _save(store, ["epsilon", "zeta eta", "theta"], "two")
    table = metrics.compute_all_metrics(store)
    assert list(table["run"]) == ["one", "two"]
    assert list(table["count"]) == [2, 3]
    assert list(table.columns[4:]) == metrics.METRIC_NAMES
