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


def test_k_range_is_bounded_by_the_items():
    assert [clustering.k_range(n) for n in (2, 3, 10, 41, 50000)] == [(2, 2), (2, 2), (2, 9), (2, 40), (2, 40)]


def test_chosen_k_is_recorded_and_a_given_k_wins():
    auto = clustering.KMeansClusterer(seed=0).params(500)
    assert auto == {"k_chosen_by": "ward_gap", "k_fallback": clustering.K_FALLBACK,
                    "k_range": [2, 40], "k_tree": "ward", "k_sample": 500, "seed": 0, "algorithm": "full"}
    assert clustering.KMeansClusterer(seed=0).params(50_000)["k_sample"] == clustering.K_SAMPLE
    assert clustering.KMeansClusterer(k=7, seed=0).params(500) == {"k": 7, "k_chosen_by": "given", "seed": 0,
                                                                    "algorithm": "full"}
    x, _ = _blobs(k=3)
    assert len(set(clustering.KMeansClusterer(k=5).fit(x))) == 5


def test_k_is_chosen_from_planted_blobs_and_deterministically():
    """Five planted blobs give k = 5, the same on every call; a sample stands for a large set."""
    x, truth = _blobs(k=5, per=60)
    assert clustering.choose_k(x, seed=0) == 5
    labels = clustering.KMeansClusterer().fit(x)
    assert adjusted_rand_score(truth, labels) >= 0.95
    assert (clustering.KMeansClusterer().fit(x) == labels).all()
    many, _ = _blobs(k=5, per=700, seed=1)  # 3,500 items: k is chosen on K_SAMPLE of them
    assert clustering.choose_k(many, seed=0) == 5


def test_k_choice_handles_tiny_and_degenerate_sets():
    """Two or three items, and identical items, still get a valid k and a label each."""
    assert clustering.choose_k(np.eye(3, 4), seed=0) == 2
    assert list(clustering.KMeansClusterer().fit(np.eye(2, 4))) in ([0, 1], [1, 0])
    assert clustering.choose_k(np.ones((30, 4)), seed=0) == 2
    assert len(clustering.KMeansClusterer().fit(np.ones((30, 4)))) == 30


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


def _embedded(texts_and_truth):
    """(texts, their real all-MiniLM-L6-v2 embeddings, the planted topic of each)."""
    from synth.analysis.embedding import get_embedder

    texts, truth = texts_and_truth
    return texts, get_embedder().embed(texts), truth


@pytest.fixture(scope="module")
def planted():
    """80 sentences on four planted topics, embedded with the real all-MiniLM-L6-v2."""
    return _embedded(_planted_texts())


def test_kmeans_recovers_planted_topics_in_real_embeddings(planted):
    """Adjusted Rand index >= 0.9 against the planted topics (k = 4)."""
    texts, vectors, truth = planted
    labels = clustering.KMeansClusterer(k=4).fit(vectors)
    assert adjusted_rand_score(truth, labels) >= 0.9


# Six topics, each written five ways (templates) with three slots and a shared opener: generated
# text is like that, and each template is a tight sub-group that silhouette would call a cluster.
OPENERS = ["", "Honestly, ", "Quick question: ", "In my experience, ", "According to a friend, ",
           "Yesterday I read that "]
SIX_TOPICS = {
    "cooking": (["to make the {a} soup, simmer the {b} with {c} and season it before serving.",
                 "my grandmother roasted {a} with {b} and a pinch of {c} every Sunday.",
                 "chop the {a} finely, fry it in {c}, then stir in the {b} and cook for ten minutes.",
                 "is it better to bake {a} or steam it when you serve it alongside {b}?",
                 "the recipe calls for {c}, but {a} and {b} taste just as good together."],
                ["tomato", "lentil", "onion", "pumpkin", "carrot", "mushroom", "aubergine", "potato"],
                ["stock", "beans", "cream", "leeks", "rice", "noodles"],
                ["garlic", "butter", "olive oil", "thyme", "cumin", "chilli"]),
    "astronomy": (["the telescope showed the {a} orbiting a distant star beyond the {b}.",
                   "astronomers measured how light from the {a} bends as it passes the {b} near {c}.",
                   "last night I watched the {a} rise over the hills, faint against the {b}.",
                   "a new survey maps every {a} it can find within the {b} using {c}.",
                   "the {c} data suggest the {a} formed early in the history of the {b}."],
                  ["moon", "comet", "exoplanet", "asteroid", "gas giant", "red dwarf", "pulsar", "meteor"],
                  ["nebula", "galaxy", "dust cloud", "binary pair", "star cluster", "solar system"],
                  ["infrared", "radio dishes", "spectroscopy", "the orbiting observatory", "gravitational lensing",
                   "X-rays"]),
    "football": (["the {a} scored in the final minute after a pass from the {b}.",
                  "fans booed when the {a} missed a penalty in the {c} that the {b} had won.",
                  "after the {c} the {a} told reporters the {b} had changed the game.",
                  "our club signed a new {a} to strengthen the {b} before the {c}.",
                  "the referee sent off the {a} for a foul on the {b} during the {c}."],
                 ["striker", "captain", "winger", "substitute", "defender", "playmaker", "centre forward",
                  "full back"],
                 ["midfield", "goalkeeper", "left back", "coach's plan", "back four", "youth academy"],
                 ["derby", "cup final", "league match", "transfer window", "second half", "away game"]),
    "tax": (["file the {a} form before April and attach the {b} receipt for your {c}.",
             "can I claim {b} expenses against my {a} bill as a {c}?",
             "the accountant warned that {a} rates rise next year, so keep every {b} invoice.",
             "late {a} returns are fined, even when the {b} credit would have covered them.",
             "as a {c} you may owe {a} on the {b} allowance you received."],
            ["income tax", "property tax", "VAT", "payroll tax", "capital gains tax", "inheritance tax",
             "council tax", "sales tax"],
            ["donation", "pension", "medical", "tuition", "mileage", "childcare"],
            ["deduction", "freelancer", "landlord", "small business", "self-employed worker", "retiree"]),
    "gardening": (["plant the {a} bulbs in autumn and cover them with {b} before the frost.",
                   "aphids destroyed my {a} this summer, so next year I will mulch with {b} and {c}.",
                   "prune the {a} hedge lightly in spring and water the {c} bed every evening.",
                   "which compost suits {a} seedlings grown in a greenhouse next to {c}?",
                   "the {a} in the border flowered twice after I spread {b} around the roots."],
                  ["tulip", "rose", "lavender", "daffodil", "clematis", "hydrangea", "peony", "dahlia"],
                  ["mulch", "bark chips", "straw", "leaf mould", "manure", "grass clippings"],
                  ["tomato plants", "the vegetable patch", "fruit trees", "the herb garden", "ferns", "the lawn"]),
    "software": (["the {a} crashed in production because the {b} returned an empty response.",
                  "refactor the {a} so its unit tests no longer depend on the {b} or {c}.",
                  "our team rewrote the {a} in {c} after the {b} kept leaking memory.",
                  "deploying the {a} failed twice until we pinned the version of the {b}.",
                  "a bug in the {b} made the {a} time out whenever {c} was under load."],
                 ["web server", "payment service", "mobile app", "database driver", "build script", "login page",
                  "search backend", "scheduler"],
                 ["cache layer", "message queue", "auth library", "API gateway", "ORM", "load balancer"],
                 ["Rust", "Go", "the CI pipeline", "Kubernetes", "the staging cluster", "Postgres"]),
}
PER_TOPIC = 96


def _six_topic_texts(seed=0):
    """576 distinct sentences, 96 per topic, drawn with a seed."""
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for k, (templates, a, b, c) in enumerate(SIX_TOPICS.values()):
        seen = set()
        while len(seen) < PER_TOPIC:
            body = templates[rng.integers(len(templates))].format(
                a=a[rng.integers(len(a))], b=b[rng.integers(len(b))], c=c[rng.integers(len(c))])
            opener = OPENERS[rng.integers(len(OPENERS))]
            text = opener + body if opener else body[0].upper() + body[1:]
            if text not in seen:
                seen.add(text)
                texts.append(text)
                truth.append(k)
    return texts, np.array(truth)


@pytest.fixture(scope="module")
def six_topics():
    return _embedded(_six_topic_texts())


def test_default_clustering_finds_six_planted_topics_in_real_embeddings(six_topics):
    """What the app uses (make_clusterer() with no arguments) reaches adjusted Rand index >= 0.9
    against six planted topics; the old default, k = sqrt(n/2) = 17, reached about 0.54."""
    _, vectors, truth = six_topics
    default = clustering.make_clusterer()
    labels = default.fit(vectors)
    new = adjusted_rand_score(truth, labels)
    old_k = round((len(vectors) / 2) ** 0.5)
    old = adjusted_rand_score(truth, clustering.KMeansClusterer(k=old_k).fit(vectors))
    print(f"six topics, {len(vectors)} items: chosen k = {len(set(labels))}, ARI {new:.3f}; "
          f"sqrt rule k = {old_k}, ARI {old:.3f}")
    assert default.params(len(vectors))["k_chosen_by"] == "ward_gap"
    assert len(set(labels)) == 6 and new >= 0.9
    assert old < 0.7  # the bar is not met by the old rule: the test can fail


def test_default_clustering_finds_the_four_planted_topics(planted):
    _, vectors, truth = planted
    labels = clustering.make_clusterer().fit(vectors)
    assert len(set(labels)) == 4 and adjusted_rand_score(truth, labels) >= 0.9


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


def test_a_stored_default_clustering_records_the_chosen_k(store):
    run = Run(name="r", technique="sampling")
    texts = [f"cats and dogs {i}" for i in range(12)] + [f"tax law and courts {i}" for i in range(12)]
    store.save_run(run, [Item(text=t, idx=i) for i, t in enumerate(texts)])
    found = clustering.current_clustering(store, method="kmeans")
    assert found.params["k"] == found.k and found.params["k_chosen_by"] == "ward_gap"
    assert found.params["k_range"] == [2, 23]
    again = clustering.current_clustering(store, method="kmeans")
    assert again.clustering_id == found.clustering_id and again.params == found.params


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


def test_a_clustering_says_how_it_was_made():
    made = clustering.Clustering("cl_1", "kmeans", {"k": 3, "k_chosen_by": clustering.K_RULE},
                                 {"a": 0, "b": 1, "c": 2, "d": 2})
    assert made.describe() == "3 clusters of 4 items (k-means, k chosen from the data)"
    noisy = clustering.Clustering("cl_2", "hdbscan", {"min_cluster_size": 5}, {"a": -1, "b": 0, "c": 0})
    assert noisy.describe() == "1 cluster of 3 items (HDBSCAN)"
