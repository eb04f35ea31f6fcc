import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from synth.analysis import clustering
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run


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
    names = sorted(first.names.values())
    assert set(names[0].split(" · ")) <= {"cats", "dogs"} or set(names[1].split(" · ")) <= {"cats", "dogs"}
    assert any({"tax", "law", "courts"} <= set(n.split(" · ")) for n in names)


TOPICS = {
    "cooking": ("To make the {a} soup, simmer the {b} with garlic and season it before serving.",
                ["tomato", "lentil", "onion", "pumpkin", "carrot"], ["stock", "beans", "cream", "leeks"]),
    "astronomy": ("The telescope showed the {a} orbiting a distant star beyond the {b}.",
                  ["moon", "comet", "exoplanet", "asteroid", "gas giant"], ["nebula", "galaxy", "dust cloud", "binary pair"]),
    "football": ("The {a} scored in the final minute after a pass from the {b}.",
                 ["striker", "captain", "winger", "substitute", "defender"], ["midfield", "goalkeeper", "left back", "coach's plan"]),
    "tax": ("File the {a} form before April and attach the {b} receipt for your deduction.",
            ["income tax", "property tax", "VAT", "payroll", "capital gains"], ["donation", "pension", "medical", "tuition"]),
}


def _planted_texts():
    texts, truth = [], []
    for k, (template, first, second) in enumerate(TOPICS.values()):
        for a in first:
            for b in second:
                texts.append(template.format(a=a, b=b))
                truth.append(k)
    return texts, np.array(truth)


@pytest.fixture(scope="module")
def planted():
    """80 sentences on four planted topics, embedded with the real all-MiniLM-L6-v2."""
    from synth.analysis.embedding import get_embedder

    texts, truth = _planted_texts()
    return texts, get_embedder().embed(texts), truth


def test_kmeans_recovers_planted_topics_in_real_embeddings(planted):
    """Adjusted Rand index >= 0.9 against the planted topics (k = 4)."""
    texts, vectors, truth = planted
    labels = clustering.KMeansClusterer(k=4).fit(vectors)
    assert adjusted_rand_score(truth, labels) >= 0.9


def test_hdbscan_recovers_planted_topics_in_real_embeddings(planted):
    """HDBSCAN finds the topics itself: adjusted Rand index >= 0.8 (noise counted as a cluster),
    and it finds at least three clusters."""
    texts, vectors, truth = planted
    labels = clustering.HDBSCANClusterer(min_cluster_size=5).fit(vectors)
    assert len(set(labels) - {clustering.NOISE}) >= 3
    assert adjusted_rand_score(truth, labels) >= 0.8


def test_ctfidf_keywords_name_the_planted_topics(planted):
    texts, _, truth = planted
    keywords = clustering.ctfidf_keywords(texts, truth, top=3)
    assert set(keywords) == {0, 1, 2, 3}
    # Each topic's keywords come from its own template, never from another's.
    for k, (template, *_rest) in enumerate(TOPICS.values()):
        vocabulary = " ".join(t for t, label in zip(texts, truth) if label == k).lower()
        others = " ".join(t for t, label in zip(texts, truth) if label != k).lower()
        assert all(word in vocabulary and word not in others.split() for word in keywords[k]), keywords[k]


def test_hdbscan_calls_too_few_items_noise():
    x, _ = _blobs(k=1, per=4)
    assert list(clustering.HDBSCANClusterer(min_cluster_size=5).fit(x)) == [clustering.NOISE] * 4


def test_hdbscan_min_cluster_size_is_validated():
    with pytest.raises(SynthError, match="at least 2"):
        clustering.HDBSCANClusterer(min_cluster_size=1)
    with pytest.raises(SynthError, match="Unknown clustering method"):
        clustering.make_clusterer("spectral")


def test_cluster_shares_per_run():
    items = pd.DataFrame({"cluster": [0, 0, 1, 1, 1, 0], "cluster_name": ["a", "a", "b", "b", "b", "a"],
                          "run_name": ["r1", "r1", "r1", "r2", "r2", "r2"]})
    shares = clustering.cluster_shares(items).set_index(["run_name", "cluster"])
    assert shares.loc[("r1", 0), "items"] == 2 and shares.loc[("r1", 0), "share_of_run"] == pytest.approx(2 / 3)
    assert shares.loc[("r2", 1), "share_of_run"] == pytest.approx(2 / 3)
    assert shares.loc[("r1", 1), "share_of_run"] == pytest.approx(1 / 3)


def test_clusters_are_named_by_an_llm_once_and_cached(store, make_server):
    srv = make_server(reply=lambda n, prompt: "Soup recipes" if "soup" in prompt else "Space objects")
    texts = [f"A {w} soup recipe number {i}" for i, w in enumerate(["pea", "leek", "bean", "corn"] * 3)]
    texts += [f"The {w} seen through a telescope, night {i}" for i, w in enumerate(["comet", "moon", "star"] * 4)]
    store.save_run(Run(name="r", technique="sampling"), [Item(text=t, idx=i) for i, t in enumerate(texts)])
    found = clustering.current_clustering(store, k=2)
    clustering.name_clusters_with_llm(store, found, store.items(), "openai/test-model", api_base=srv.api_base)
    named = clustering.current_clustering(store, k=2)
    assert sorted(named.names.values()) == ["Soup recipes", "Space objects"]
    labels = store.cluster_labels(named.clustering_id)
    assert set(labels["llm_model"]) == {"openai/test-model"}
    assert all(isinstance(k, str) and k for k in labels["keywords"])  # c-TF-IDF names are kept too
    asked = len(srv.config.requests)
    assert asked == 2
    clustering.name_clusters_with_llm(store, named, store.items(), "openai/test-model", api_base=srv.api_base)
    assert len(srv.config.requests) == asked  # the response cache answered
