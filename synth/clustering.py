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

from synth import settings
from synth.embedding import load_vectors
from synth.errors import SynthError
from synth.records import content_hash, new_id
from synth.registry import Registry
from synth.store import DuckStore

# Past this many items MiniBatchKMeans replaces KMeans: same objective, a fraction of the time.
MINIBATCH_FROM = 10_000
MAX_K = 60


def default_k(n: int) -> int:
    """A cluster count that grows slowly with the data: sqrt(n/2), between 2 and 40."""
    return int(min(40, max(2, round(math.sqrt(n / 2)))))


class KMeansClusterer:
    """k-means on unit-length embeddings (so Euclidean distance follows cosine similarity)."""

    name = "kmeans"

    def __init__(self, k: int | None = None, seed: int | None = None):
        self.k = k
        self.seed = settings.get("seed") if seed is None else seed
        if k is not None and not 2 <= k <= MAX_K:
            raise SynthError(f"The number of clusters must be between 2 and {MAX_K}, got {k}.")

    def params(self, n: int) -> dict:
        return {"k": self.k or default_k(n), "seed": self.seed,
                "algorithm": "minibatch" if n >= MINIBATCH_FROM else "full"}

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        n = len(vectors)
        if n < 2:
            return np.zeros(n, dtype=int)
        k = min(self.params(n)["k"], n)
        x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if n >= MINIBATCH_FROM:
            model = MiniBatchKMeans(n_clusters=k, random_state=self.seed, n_init=3, batch_size=2048)
        else:
            model = KMeans(n_clusters=k, random_state=self.seed, n_init=4)
        return model.fit_predict(x).astype(int)


CLUSTERERS = Registry("clusterer")
CLUSTERERS.add(KMeansClusterer)


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


def items_signature(items: pd.DataFrame) -> str:
    return content_hash(sorted(f"{i}:{h}" for i, h in zip(items["item_id"], items["text_hash"])))


def current_clustering(store: DuckStore, method: str = "kmeans", k: int | None = None,
                       items: pd.DataFrame | None = None) -> Clustering:
    """The clustering of all items (fitted and stored if none fits the current items)."""
    if method not in CLUSTERERS:
        raise SynthError(f"Unknown clustering method {method!r}. Use one of: {', '.join(CLUSTERERS)}.")
    items = store.items() if items is None else items
    if items.empty:
        return Clustering("", method, {})
    clusterer = CLUSTERERS[method](k=k)
    params = clusterer.params(len(items))
    embed_model = settings.get("embed_model")
    signature = items_signature(items)
    found = store.find_fit("clustering", method, embed_model, params, signature)
    if found is None:
        vectors = load_vectors(store, items["text"].tolist(), embed_model)
        labels = clusterer.fit(vectors)
        rows = pd.DataFrame({"item_id": items["item_id"].values, "cluster_id": labels.astype(int),
                             "label": pd.Series([None] * len(labels), dtype=object)})
        store.save_fit("clustering", new_id("cl"), method, embed_model, params, signature, rows)
        found = store.find_fit("clustering", method, embed_model, params, signature)
    clustering_id, frame = found
    names = {int(c): (lab if isinstance(lab, str) and lab else f"cluster {int(c)}")
             for c, lab in zip(frame["cluster_id"], frame["label"])}
    return Clustering(clustering_id, method, params,
                      dict(zip(frame["item_id"], frame["cluster_id"].astype(int))), names)


def entropy_bits(labels: list[int] | np.ndarray) -> float | None:
    """Shannon entropy, in bits, of how items spread over clusters (0: one cluster)."""
    if len(labels) == 0:
        return None
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())
