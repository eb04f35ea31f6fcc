"""Clustering: embeddings in, a cluster per item out, fitted over the whole dataset.

Reads: items and their cached embeddings. Writes: ``clusterings`` (how a clustering was made) and
``clusters`` (item id, cluster id, label). A clustering is refitted only when the items or the
parameters change; runs and filtered views are then measured against the same clusters, so their
``cluster_entropy`` can be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth.analysis.embedding import load_vectors, unit_rows
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import items_signature, new_id
from synth.kernel.registry import Registry
from synth.store import DuckStore

# Past this many items MiniBatchKMeans replaces KMeans: same objective, a fraction of the time.
MINIBATCH_FROM = 10_000
MAX_K = 60
# Without a given k, k is chosen in K_RANGE on a seeded sample of at most K_SAMPLE items, then
# every item is fitted with it: Ward's tree on 2,000 items takes ~1 s on two busy cores.
K_RANGE = (2, 40)
K_SAMPLE = 2000
K_RULE = "ward_gap"
# Measured largest gaps: 1.5-3.1 on planted topics in real embeddings, 1.2 on the demo's reviews.
GAP_MIN = 1.3
K_FALLBACK = f"sqrt(n/2) when no gap reaches {GAP_MIN}"


def k_range(n: int) -> tuple[int, int]:
    """The cluster counts tried for ``n`` items: K_RANGE, at most n - 1."""
    low, high = K_RANGE
    return low, max(low, min(high, n - 1))


def merge_gaps(heights: np.ndarray, low: int, high: int) -> dict[int, float]:
    """For each k, how much dearer the merge that would leave k - 1 clusters is than the one that
    left k (Ward's merge costs, ascending): a large gap means k groups stand apart."""
    gaps = {}
    for k in range(low, high + 1):
        before, after = heights[-k], heights[-(k - 1)]
        gaps[k] = after / before if before > 0 else (np.inf if after > 0 else 1.0)
    return gaps


def choose_k(vectors: np.ndarray, seed: int) -> int:
    """The number of clusters the data shows, in :func:`k_range`.

    Ward's tree is built on a seeded sample of at most K_SAMPLE unit vectors and cut where its
    merge cost jumps most (:func:`merge_gaps`): topics merge at a far higher cost than the tight
    sub-groups within them (one prompt template's items), which silhouette and Davies-Bouldin
    reward with far too many clusters on generated text. When no gap reaches GAP_MIN, no level
    stands out (the data shows no number of topics) and k grows slowly with the data,
    :func:`default_k`. Silhouette was tried as that fallback: on the demo's reviews it picks 27
    clusters of 290 items, one per template's phrasing."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist

    low, high = k_range(len(vectors))
    x = unit_rows(np.asarray(vectors, dtype=np.float64))
    if len(x) > K_SAMPLE:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), K_SAMPLE, replace=False))]
    if high <= low or len(x) < 4:
        return low
    heights = linkage(pdist(x), "ward")[:, 2]
    if heights[-1] <= 0:  # every item the same: nothing to split
        return low
    gaps = merge_gaps(heights, low, high)
    best = max(gaps, key=gaps.get)
    return best if gaps[best] >= GAP_MIN else min(high, default_k(len(vectors)))


def default_k(n: int) -> int:
    """A cluster count that grows slowly with the data: sqrt(n/2), between 2 and 40."""
    return int(min(K_RANGE[1], max(K_RANGE[0], round(math.sqrt(n / 2)))))


class KMeansClusterer:
    """k-means on unit-length embeddings (so Euclidean distance follows cosine similarity), with k
    given or else chosen from the data (:func:`choose_k`)."""

    name = "kmeans"
    title = "k-means"
    options = ("k",)  # what a caller may set (the page's and the CLI's inputs)

    def __init__(self, k: int | None = None, seed: int | None = None):
        self.k = k
        self.seed = settings.get("seed") if seed is None else seed
        if k is not None and not 2 <= k <= MAX_K:
            raise SynthError(f"The number of clusters must be between 2 and {MAX_K}, got {k}.")

    def params(self, n: int) -> dict:
        """How the clustering is made (the stored fit's key). A chosen k is not known before the
        fit, so it is absent here and added from the fitted clusters (:func:`current_clustering`)."""
        fit = {"seed": self.seed, "algorithm": "minibatch" if n >= MINIBATCH_FROM else "full"}
        if self.k:
            return {"k": self.k, "k_chosen_by": "given", **fit}
        return {"k_chosen_by": K_RULE, "k_fallback": K_FALLBACK, "k_range": list(k_range(n)),
                "k_tree": "ward", "k_sample": min(n, K_SAMPLE), **fit}

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        n = len(vectors)
        if n < 2:
            return np.zeros(n, dtype=int)
        x = unit_rows(vectors)
        k = min(self.k or choose_k(x, self.seed), n)
        if n >= MINIBATCH_FROM:
            model = MiniBatchKMeans(n_clusters=k, random_state=self.seed, n_init=3, batch_size=2048)
        else:
            model = KMeans(n_clusters=k, random_state=self.seed, n_init=4)
        return model.fit_predict(x).astype(int)


class HDBSCANClusterer:
    """HDBSCAN on the embeddings reduced to 20 dimensions by PCA: finds its own number of
    clusters and leaves outliers unclustered (cluster -1, "noise")."""

    name = "hdbscan"
    title = "HDBSCAN"
    options = ("min_cluster_size",)
    DIMS = 20

    def __init__(self, k: int | None = None, seed: int | None = None, min_cluster_size: int | None = None):
        self.min_cluster_size = min_cluster_size
        self.seed = settings.get("seed") if seed is None else seed
        if min_cluster_size is not None and min_cluster_size < 2:
            raise SynthError(f"HDBSCAN's minimum cluster size must be at least 2, got {min_cluster_size}.")

    def params(self, n: int) -> dict:
        return {"min_cluster_size": self.min_cluster_size or max(5, n // 50), "dims": self.DIMS}

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        n = len(vectors)
        size = self.params(n)["min_cluster_size"]
        if n < max(size, 3):
            return np.full(n, -1, dtype=int)
        x = unit_rows(vectors)
        dims = min(self.DIMS, n - 1, x.shape[1])
        reduced = PCA(n_components=dims, random_state=self.seed).fit_transform(x)
        return HDBSCAN(min_cluster_size=size, copy=True).fit_predict(reduced).astype(int)


CLUSTERERS = Registry("clusterer")
CLUSTERERS.add(KMeansClusterer)
CLUSTERERS.add(HDBSCANClusterer)
NOISE = -1


@dataclass
class Clustering:
    clustering_id: str
    method: str
    params: dict
    labels: dict[str, int] = field(default_factory=dict)  # item id -> cluster id
    names: dict[int, str] = field(default_factory=dict)  # cluster id -> label

    @property
    def k(self) -> int:
        return len(set(self.labels.values()))

    def describe(self) -> str:
        """How the clusters were made, in words: "12 clusters of 290 items (k-means, k chosen from the data)"."""
        entry = CLUSTERERS[self.method] if self.method in CLUSTERERS else None
        how = {"given": "k given", K_RULE: "k chosen from the data"}.get(self.params.get("k_chosen_by"), "")
        found = len(set(self.labels.values()) - {NOISE})
        detail = ", ".join(x for x in ((entry.title if entry else self.method), how) if x)
        return f"{found} cluster{'s' if found != 1 else ''} of {len(self.labels)} items ({detail})"


def make_clusterer(method: str | None = None, k: int | None = None, min_cluster_size: int | None = None):
    method = method or settings.get("cluster_method")
    if method not in CLUSTERERS:
        raise SynthError(f"Unknown clustering method {method!r}. Use one of: {', '.join(CLUSTERERS)}.")
    given = {"k": k or settings.get("cluster_k") or None, "min_cluster_size": min_cluster_size}
    entry = CLUSTERERS[method]
    return entry(**{name: given[name] for name in entry.options})


def fit_key(clusterer, items: pd.DataFrame) -> dict:
    """What a stored clustering of ``items`` by ``clusterer`` is found by (``DuckStore.find_fit``):
    method, embedding model (the embed_model setting), parameters and the items' signature."""
    return {"method": clusterer.name, "embed_model": settings.get("embed_model"),
            "params": clusterer.params(len(items)), "items_hash": items_signature(items)}


def save_clustering(store: DuckStore, key: dict, items: pd.DataFrame, labels: np.ndarray,
                    names: pd.DataFrame | None = None) -> str:
    """Store ``labels`` (one per row of ``items``) as the clustering found by ``key``
    (:func:`fit_key`); named by c-TF-IDF (:func:`keyword_labels`) unless ``names`` are given in
    its columns. Returns its id."""
    labels = np.asarray(labels).astype(int)
    rows = pd.DataFrame({"item_id": items["item_id"].values, "cluster_id": labels,
                         "label": pd.Series([None] * len(labels), dtype=object)})
    clustering_id = new_id("cl")
    store.save_fit("clustering", clustering_id, key["method"], key["embed_model"], key["params"],
                   key["items_hash"], rows)
    store.save_cluster_labels(clustering_id, keyword_labels(items["text"].tolist(), labels) if names is None
                              else names)
    return clustering_id


def current_clustering(store: DuckStore, method: str | None = None, k: int | None = None,
                       items: pd.DataFrame | None = None, min_cluster_size: int | None = None) -> Clustering:
    """The clustering of all items (fitted, named by c-TF-IDF and stored if none fits the current
    items); defaults from the cluster_method and cluster_k settings. ``items``: every item, or only
    their keys (``DuckStore.item_keys``: enough to find a stored clustering)."""
    clusterer = make_clusterer(method, k, min_cluster_size)
    method = clusterer.name
    items = store.items() if items is None else items
    if items.empty:
        return Clustering("", method, {})
    key = fit_key(clusterer, items)
    params = key["params"]
    found = store.find_fit("clustering", **key)
    if found is None:
        if "text" not in items:  # given the items' keys (``DuckStore.item_keys``): their texts to fit
            items = store.items()
            key = fit_key(clusterer, items)
        labels = clusterer.fit(load_vectors(store, items["text"].tolist(), key["embed_model"]))
        save_clustering(store, key, items, labels)
        found = store.find_fit("clustering", **key)
    clustering_id, frame = found
    named = frame[["cluster_id", "label"]].drop_duplicates("cluster_id")  # one row per cluster, not per item
    names = {int(c): (lab if isinstance(lab, str) and lab else
                      ("noise" if int(c) == NOISE else f"cluster {int(c)}"))
             for c, lab in zip(named["cluster_id"].tolist(), named["label"].tolist())}
    labels = dict(zip(frame["item_id"].tolist(), frame["cluster_id"].astype(int).tolist()))
    if "k_chosen_by" in params and "k" not in params:  # the k the data chose, first as when given
        params = {"k": len(set(labels.values()) - {NOISE}), **params}
    return Clustering(clustering_id, method, params, labels, names)


def entropy_bits(labels: list[int] | np.ndarray) -> float | None:
    """Shannon entropy, in bits, of how items spread over clusters (0: one cluster)."""
    if len(labels) == 0:
        return None
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def ctfidf_keywords(texts: list[str], labels: list[int] | np.ndarray, top: int = 3) -> dict[int, list[str]]:
    """The ``top`` words that set each cluster apart, by class-based TF-IDF (Grootendorst, 2022):
    each cluster's texts form one document; tf is normalised per cluster and
    idf = log(1 + mean words per cluster / the word's frequency over all clusters)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    labels = np.asarray(labels)
    clusters = sorted(c for c in set(labels.tolist()) if c != NOISE)
    if not clusters:
        return {}
    docs = [" ".join(t for t, l in zip(texts, labels) if l == c) for c in clusters]
    try:
        counts = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
                                 lowercase=True).fit(docs)
    except ValueError:  # only stop words: nothing to name the clusters with
        return {c: [] for c in clusters}
    matrix = counts.transform(docs).toarray().astype(float)
    vocab = np.array(counts.get_feature_names_out())
    tf = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + matrix.sum(axis=1).mean() / np.maximum(matrix.sum(axis=0), 1))
    scores = tf * idf
    return {c: [vocab[j] for j in np.argsort(-scores[i])[:top] if scores[i, j] > 0]
            for i, c in enumerate(clusters)}


def keyword_labels(texts: list[str], labels: np.ndarray) -> pd.DataFrame:
    """One row per cluster: its size and its c-TF-IDF keywords as a label such as 'kettle · boils'."""
    keywords = ctfidf_keywords(texts, labels)
    ids, sizes = np.unique(np.asarray(labels), return_counts=True)
    rows = [{"cluster_id": int(c), "size": int(n),
             "keywords": "noise" if c == NOISE else (" · ".join(keywords.get(int(c), [])) or f"cluster {c}"),
             "llm_label": None, "llm_model": None} for c, n in zip(ids, sizes)]
    return pd.DataFrame(rows, columns=["cluster_id", "size", "keywords", "llm_label", "llm_model"])


def name_clusters_with_llm(store: DuckStore, clustering: Clustering, items: pd.DataFrame, model: str,
                           examples: int = 5, api_base: str | None = None) -> pd.DataFrame:
    """Ask any litellm model for a 2-4 word name per cluster (responses cached like every call)."""
    from synth.llm.batch import BatchSettings, Call, describe_failures, run_batch

    labels = store.cluster_labels(clustering.clustering_id)
    if labels.empty:
        raise SynthError("This clustering has no clusters to name.")
    by_cluster = items.assign(cluster=[clustering.labels.get(i, NOISE) for i in items["item_id"]])
    calls, ids = [], []
    for row in labels.itertuples():
        if row.cluster_id == NOISE:
            continue
        sample = by_cluster[by_cluster["cluster"] == row.cluster_id]["text"].head(examples).tolist()
        body = ("These texts belong to one cluster of a dataset. Its most distinctive words are: "
                f"{row.keywords}.\n\nExamples:\n" + "\n".join(f"- {' '.join(t.split())[:300]}" for t in sample)
                + "\n\nName the cluster in two to four words. Reply with the name only.")
        calls.append(Call(len(calls), [{"role": "user", "content": body}]))
        ids.append(row.cluster_id)
    outcome = run_batch(calls, BatchSettings(model=model, temperature=0.0, max_tokens=16, api_base=api_base),
                        store)
    if not outcome.succeeded:
        raise SynthError(f"No cluster was named: {describe_failures(outcome)}")
    names = {ids[r.idx]: r.completion.text.strip().strip('"').splitlines()[0][:60] for r in outcome.succeeded
             if r.completion.text.strip()}
    labels["llm_label"] = labels["cluster_id"].map(names)
    labels["llm_model"] = labels["cluster_id"].map(lambda c: model if c in names else None)
    store.save_cluster_labels(clustering.clustering_id, labels)
    return labels


def cluster_shares(items: pd.DataFrame) -> pd.DataFrame:
    """Cluster sizes and each run's share of its items in each cluster.

    ``items`` needs cluster, cluster_name and run_name columns."""
    counts = items.groupby(["cluster", "cluster_name", "run_name"]).size().rename("items").reset_index()
    totals = items.groupby("run_name").size()
    counts["share_of_run"] = counts["items"] / counts["run_name"].map(totals)
    return counts.sort_values(["cluster", "run_name"]).reset_index(drop=True)


def typical_items(items: pd.DataFrame, vectors: np.ndarray, per_group: int = 3, key: str = "cluster") -> pd.DataFrame:
    """Up to ``per_group`` typical items of each group (those closest to the group's mean direction
    in embedding space), largest group first and HDBSCAN's noise last.

    ``vectors`` are the items' embeddings, row for row."""
    if items.empty:
        return items.iloc[:0]
    x = unit_rows(np.asarray(vectors, dtype=np.float64))
    groups = items[key].to_numpy()
    sizes = items[key].value_counts()
    order = sorted(sizes.index, key=lambda g: (key == "cluster" and g == NOISE, -sizes[g], str(g)))
    picked = []
    for group in order:
        positions = np.flatnonzero(groups == group)
        centre = x[positions].mean(axis=0)
        picked.extend(positions[np.argsort(-(x[positions] @ centre), kind="stable")[:per_group]].tolist())
    return items.iloc[picked]
