"""Embedding and set metrics against public references (scikit-learn, vendi-score); the lexical
ones are checked against NLTK and rouge-score in tests/test_lexical.py."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_distances, cosine_similarity
from vendi_score import vendi

from synth.analysis import metrics
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run


def test_mean_pairwise_cosine_distance_matches_sklearn():
    """Tolerance 1e-6 (float32 inputs)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(57, 16)).astype(np.float32)
    d = cosine_distances(x)
    expected = d[np.triu_indices(len(x), k=1)].mean()
    assert metrics.mean_pairwise_cosine_distance(x) == pytest.approx(expected, abs=1e-6)
    assert metrics.mean_pairwise_cosine_distance(x[:1]) is None


@pytest.mark.parametrize("n, d", [(30, 16), (200, 16), (16, 16)])
def test_vendi_score_matches_the_vendi_package(n, d):
    """Relative tolerance 1e-8 against vendi.score_dual (n > d) and vendi.score_K (n <= d)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d))
    x[: n // 3] = x[0] + rng.normal(scale=0.05, size=(n // 3, d))  # a clump, so the score is not trivial
    value, params = metrics.vendi_score(x)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    reference = vendi.score_dual(x) if n > d else vendi.score_K(unit @ unit.T)
    assert value == pytest.approx(float(reference), rel=1e-8)
    assert params["form"] == ("dual (d x d)" if n > d else "primal (n x n)")


def test_vendi_score_bounds():
    """Identical items count once; orthogonal items each count."""
    assert metrics.vendi_score(np.ones((10, 4)))[0] == pytest.approx(1.0)
    assert metrics.vendi_score(np.eye(6))[0] == pytest.approx(6.0)


def test_near_duplicate_rate_matches_brute_force(monkeypatch):
    """Exact equality with sklearn's cosine_similarity, including the block-wise path."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 8))
    x = np.vstack([base, base[:10] + rng.normal(scale=0.01, size=(10, 8))])
    sims = cosine_similarity(x)
    np.fill_diagonal(sims, -1)
    for threshold in (0.5, 0.9, 0.999):
        expected = (sims.max(axis=1) >= threshold).mean()
        assert metrics.near_duplicate_rate(x, threshold)[0] == pytest.approx(expected)
    monkeypatch.setattr(metrics, "BLOCK", 7)
    assert metrics.near_duplicate_rate(x, 0.9)[0] == pytest.approx((sims.max(axis=1) >= 0.9).mean())
    assert metrics.near_duplicate_rate(x, 0.999)[0] == pytest.approx(20 / 50)
    with pytest.raises(SynthError, match="threshold"):
        metrics.near_duplicate_rate(x, 1.5)


def test_near_duplicate_rate_is_estimated_past_its_size_and_says_so(monkeypatch):
    """The sampled estimate equals the exact rate over exactly the sampled queries."""
    monkeypatch.setattr(metrics, "NEAR_DUP_EXACT_MAX", 100)
    monkeypatch.setattr(metrics, "NEAR_DUP_QUERIES", 60)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 6))
    x[75:] = x[:75] + rng.normal(scale=0.3, size=(75, 6))
    value, params = metrics.near_duplicate_rate(x, 0.8, seed=3)
    assert params["sampled"] and params["queries"] == 60 and params["population"] == 150
    queries = np.sort(np.random.default_rng(3).choice(150, 60, replace=False))
    sims = cosine_similarity(x)
    np.fill_diagonal(sims, -1)
    assert value == pytest.approx((sims[queries].max(axis=1) >= 0.8).mean())


def test_compute_metrics_values_and_parameters():
    items = pd.DataFrame({"text": ["a b c", "a b", "d e f g"], "tokens_in": [1, 2, 3],
                          "tokens_out": [4, 5, 6], "latency_ms": [10.0, 20.0, 30.0],
                          "cost_usd": [0.5, 0.25, 0.25]})
    x = np.eye(3, 4, dtype=np.float32)
    values, params = metrics.compute_metrics(items, x, 0.9, clusters=[0, 0, 1])
    assert list(values) == metrics.METRIC_NAMES
    assert values["count"] == 3
    assert values["length_mean"] == pytest.approx(3.0)
    assert values["length_p50"] == 3 and values["length_min"] == 2 and values["length_max"] == 4
    assert values["length_p95"] == pytest.approx(np.percentile([3, 2, 4], 95))
    assert values["tokens_total"] == 21 and values["cost_usd"] == pytest.approx(1.0)
    assert values["mean_pairwise_cosine_distance"] == pytest.approx(1.0)
    assert values["vendi_score"] == pytest.approx(3.0)
    assert values["cost_per_effective_sample"] == pytest.approx(1.0 / 3.0)
    assert values["near_duplicate_rate"] == 0.0
    assert values["cluster_entropy"] == pytest.approx(-(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3)))
    assert values["latency_mean_ms"] == pytest.approx(20.0)
    assert values["validity_rate"] is None and values["judge_score_mean"] is None
    assert values["truncated_rate"] is None  # no finish reasons in these items
    assert params["near_duplicate_rate"]["threshold"] == 0.9
    assert params["distinct_2"]["n"] == 2 and params["distinct_2"]["sample_size"] == 3
    assert params["self_bleu"]["population"] == 3 and params["self_bleu"]["sampled"] is False


def test_unknown_cost_stays_unknown():
    items = pd.DataFrame({"text": ["a", "b"], "tokens_in": [1, 1], "tokens_out": [1, 1],
                          "latency_ms": [1.0, 1.0], "cost_usd": [0.1, None]})
    values, _ = metrics.compute_metrics(items, np.eye(2, dtype=np.float32), 0.9)
    assert values["cost_usd"] is None and values["cost_per_effective_sample"] is None


def test_compare_says_better_or_worse_by_direction():
    before = {"distinct_2": 0.5, "near_duplicate_rate": 0.2, "count": 10.0, "vendi_score": None}
    after = {"distinct_2": 0.6, "near_duplicate_rate": 0.3, "count": 8.0, "vendi_score": 3.0}
    table = metrics.compare(before, after).set_index("metric")
    assert table.loc["distinct_2", "change"] == "better"
    assert table.loc["near_duplicate_rate", "change"] == "worse"
    assert table.loc["count", "change"] == "" and table.loc["count", "delta"] == -2.0
    assert pd.isna(table.loc["vendi_score", "delta"])
    assert list(table.index) == metrics.METRIC_NAMES


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
    assert '"clustering_id"' in stored.loc["cluster_entropy", "params"]


def test_metrics_table_has_a_row_per_run(store):
    _save(store, ["alpha beta", "gamma delta"], "one")
    _save(store, ["epsilon", "zeta eta", "theta"], "two")
    table = metrics.compute_all_metrics(store)
    assert list(table["run"]) == ["one", "two"]
    assert list(table["count"]) == [2, 3]
    assert list(table.columns[4:]) == metrics.METRIC_NAMES


def test_every_runs_metrics_share_one_clustering_found_once(store, monkeypatch):
    import synth.analysis.clustering as clustering

    for name in ("one", "two", "three"):
        _save(store, [f"{name} alpha beta", f"{name} gamma delta", f"{name} epsilon"], name)
    found = []
    real = clustering.current_clustering
    monkeypatch.setattr(clustering, "current_clustering", lambda *a, **k: found.append(1) or real(*a, **k))
    table = metrics.compute_all_metrics(store)
    assert list(table["count"]) == [3, 3, 3]
    assert len(found) == 1  # not once per run: at 50,000 items each look-up reads every item
    ids = store.metrics()["params"].str.extract(r'"clustering_id": "([^"]+)"')[0].dropna().unique()
    assert len(ids) == 1  # and every run's cluster_entropy names that one clustering


def test_a_pass_over_current_runs_reads_no_texts_and_a_judged_run_is_measured_again(store, monkeypatch):
    from synth.kernel.records import now
    from synth.store import DuckStore

    ids = [_save(store, [f"{name} alpha beta", f"{name} gamma delta", f"{name} epsilon"], name)
           for name in ("one", "two", "three")]
    metrics.compute_all_metrics(store)
    stamps = store.metrics().groupby("run_id")["computed_at"].max()
    reads = []
    real = DuckStore.items
    monkeypatch.setattr(DuckStore, "items", lambda self, run_ids=None: reads.append(run_ids) or real(self, run_ids))
    assert list(metrics.compute_all_metrics(store)["count"]) == [3, 3, 3]
    assert reads == []  # every run current: checked on the items' keys, no text read
    item = store.items([ids[1]])["item_id"].iloc[0]
    store.save_judgements([{"judgement_id": "jd_1", "item_id": item, "run_id": ids[1], "judge_model": "m",
                            "rubric_id": "rb", "rubric": "{}", "score": 4.0, "criteria": "{}", "reason": "ok",
                            "valid": True, "invalid_reason": None, "tokens_in": 1, "tokens_out": 1,
                            "cost_usd": 0.0, "latency_ms": 1.0, "created_at": now()}])
    reads.clear()
    table = metrics.compute_all_metrics(store)
    assert reads == [[ids[1]]]  # the judged run alone is read, and measured again
    assert table.set_index("run_id").loc[ids[1], "judge_score_mean"] == 4.0
    after = store.metrics().groupby("run_id")["computed_at"].max()
    assert after[ids[1]] > stamps[ids[1]] and after[ids[0]] == stamps[ids[0]] and after[ids[2]] == stamps[ids[2]]


def test_truncated_rate_counts_length_among_items_with_a_finish_reason():
    """None (imported, grammar items) is left out of the share; no finish reason at all gives None."""
    items = pd.DataFrame({"finish_reason": ["length", "stop", None, "length", "stop"]})
    value, params = metrics.truncated_rate(items)
    assert value == pytest.approx(0.5)
    assert params == {"finish_reason": "length", "sample_size": 4, "truncated": 2}
    assert metrics.truncated_rate(pd.DataFrame({"finish_reason": [None, None]}))[0] is None
    assert metrics.truncated_rate(pd.DataFrame({"text": ["a"]}))[0] is None
    assert metrics.METRICS["truncated_rate"].direction == -1


def test_truncated_rate_is_a_stored_per_run_metric(store):
    run = Run(name="cut", technique="sampling")
    reasons = ["length", "length", "stop", "length"]
    store.save_run(run, [Item(text=f"review number {i}", idx=i, finish_reason=r) for i, r in enumerate(reasons)])
    imported = _save(store, ["real one", "real two"], "imported")
    assert metrics.compute_run_metrics(store, run.run_id)["truncated_rate"] == pytest.approx(0.75)
    assert metrics.compute_run_metrics(store, imported)["truncated_rate"] is None
    stored = store.metrics([run.run_id]).set_index("name")
    assert stored.loc["truncated_rate", "value"] == pytest.approx(0.75)
    assert '"sample_size": 4' in stored.loc["truncated_rate", "params"]
    table = metrics.compute_all_metrics(store).set_index("run")
    assert table.loc["cut", "truncated_rate"] == pytest.approx(0.75)
    assert pd.isna(table.loc["imported", "truncated_rate"])


def test_cluster_entropy_says_it_is_measured_over_the_whole_datasets_clusters(store):
    """Its help and its parameters say the clusters are the dataset's, so other runs move it."""
    assert "whole dataset" in metrics.METRICS["cluster_entropy"].help
    assert "changes when other runs are added" in metrics.METRICS["cluster_entropy"].help
    run_id = _save(store, ["cats and dogs", "dogs and cats", "tax law", "law of tax"])
    _save(store, ["an unrelated item", "another one"], "other")
    metrics.compute_run_metrics(store, run_id)
    params = metrics.from_json(store.metrics([run_id]).set_index("name").loc["cluster_entropy", "params"], {})
    assert params["measured_over"].startswith("the clusters of every item in the dataset (6 items, clustering cl")
    assert params["clustered_items"] == 4 and params["base"] == 2 and params["k_chosen_by"] == "ward_gap"
    assert params["k"] >= 2


def test_only_the_named_metrics_are_measured_and_a_sample_says_so(demo_store):
    from synth.workflows.pipeline import load_dataset

    dataset = load_dataset(demo_store)
    items = dataset.items
    names = ["count", "distinct_2", "vendi_score", "near_duplicate_rate", "cluster_entropy"]
    values, params = metrics.measure_items(demo_store, items, 0.9, dataset.clustering, names=names)
    assert list(values) == names and set(params) <= set(names)
    full, _ = metrics.measure_items(demo_store, items, 0.9, dataset.clustering)
    for name in names:  # the same figures as when every metric is measured
        assert values[name] == pytest.approx(full[name], abs=1e-12)
    sampled, sampled_params = metrics.measure_items(demo_store, items, 0.9, dataset.clustering, names=names,
                                                    sample=100, vectors=dataset.vectors)
    assert sampled["count"] == len(items)  # the count is never estimated
    assert sampled_params["vendi_score"]["sample_of"] == len(items)
    assert sampled_params["vendi_score"]["sample_size"] == 100
    rows = np.sort(np.random.default_rng(0).choice(len(items), 100, replace=False))
    expected, _ = metrics.vendi_score(dataset.vectors[rows])
    assert sampled["vendi_score"] == pytest.approx(expected, abs=1e-10)
    assert sampled["vendi_score"] < values["vendi_score"]  # fewer items, fewer effectively distinct ones
    with pytest.raises(SynthError, match="totals over every item"):
        metrics.measure_items(demo_store, items, 0.9, dataset.clustering, names=["tokens_out"], sample=100)
    with pytest.raises(SynthError, match="Unknown metric"):
        metrics.compute_metrics(items, dataset.vectors, 0.9, names=["distinct_9"])
