import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from synth import clustering
from synth.errors import SynthError
from synth.records import Item, Run


def _blobs(k=4, per=40, dims=24, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dims)) * 4
    x = np.vstack([c + rng.normal(size=(per, dims)) for c in centres])
    return x, np.repeat(np.arange(k), per)


def test_kmeans_recovers_planted_clusters():
    """Adjusted Rand index >= 0.95 on four well separated planted clusters."""
    x, truth = _blobs()
    labels = clustering.KMeansClusterer(k=4).fit(x)
    assert adjusted_rand_score(truth, labels) >= 0.95


def test_default_k_grows_slowly():
    assert [clustering.default_k(n) for n in (2, 50, 290, 5000, 50000)] == [2, 5, 12, 40, 40]


def test_k_is_validated():
    with pytest.raises(SynthError, match="between 2 and"):
        clustering.KMeansClusterer(k=1)


def test_entropy_bits():
    assert clustering.entropy_bits([1, 1, 1]) == 0.0
    assert clustering.entropy_bits([0, 1, 2, 3]) == pytest.approx(2.0)
    assert clustering.entropy_bits([]) is None


def test_current_clustering_is_stored_reused_and_refitted_when_items_change(store):
    run = Run(name="r", technique="sampling")
    texts = [f"cats and dogs {i}" for i in range(12)] + [f"tax law and courts {i}" for i in range(12)]
    store.save_run(run, [Item(text=t, idx=i) for i, t in enumerate(texts)])
    first = clustering.current_clustering(store, k=2)
    assert first.k == 2 and len(first.labels) == 24
    items = store.items().set_index("item_id")
    groups = pd.Series(first.labels).groupby(lambda i: items.loc[i, "text"].startswith("cats")).nunique()
    assert list(groups) == [1, 1]  # each topic in one cluster
    assert clustering.current_clustering(store, k=2).clustering_id == first.clustering_id
    assert store.frame("SELECT count(*) AS n FROM clusterings")["n"][0] == 1
    store.save_run(Run(name="more", technique="sampling"), [Item(text="a new item", idx=0)])
    second = clustering.current_clustering(store, k=2)
    assert second.clustering_id != first.clustering_id and len(second.labels) == 25
    assert first.names[0] == "cluster 0"
