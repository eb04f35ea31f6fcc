"""Placing new items on a stored UMAP layout, from arrays and numbers only.

Reads: a layout's fitted coordinates, the cached embeddings of its items and its placement
parameters (``layouts.placement``). Writes nothing.

A layout used to keep its fitted UMAP object as a pickle, and a pickle runs code when it is
loaded: a shared database file could carry anything. Here the layout is what the database holds
anyway (the items' vectors and their fitted x, y) plus a few numbers, and new items are placed
the way ``umap.UMAP.transform`` places them, with umap's own functions: their nearest fitted items
(exact cosine neighbours, as UMAP itself uses below 4,096 items), fuzzy membership weights, a start
at the weighted mean of those neighbours and a short optimisation with the fitted points held still.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synth.analysis.embedding import unit_rows

# umap.UMAP's defaults for what fit_layout does not set (umap-learn 0.5).
UMAP_DEFAULTS = {"n_epochs": None, "local_connectivity": 1.0, "repulsion_strength": 1.0, "learning_rate": 1.0,
                 "negative_sample_rate": 5, "transform_seed": 42, "spread": 1.0,
                 "disconnection_distance": 2.0}  # 2 is umap's disconnection distance for cosine
# Query rows compared with every base row at once: bounds the distance block's memory (about 12
# bytes a cell with argpartition's indices), so a 50k x 50k matrix is never held whole.
_BLOCK_CELLS = 10_000_000


_UMAP_JIT_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.sparse", "umap.distances", "umap.spectral")
_CACHING = {"done": False}


def cache_umap_compiles() -> None:
    """Have numba keep umap's compiled functions on disk (umap does not ask it to), so a new process
    loads them instead of compiling for 10 to 20 s again. Once per process, before umap runs."""
    if _CACHING["done"]:
        return
    _CACHING["done"] = True
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name in _UMAP_JIT_MODULES:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache):
                try:
                    value.enable_caching()
                except RuntimeError:  # no writable cache directory: it compiles, as umap does by itself
                    pass


def placement_params(model: Any) -> dict[str, Any]:
    """The numbers a fitted ``umap.UMAP`` places new items with (all JSON-safe)."""
    return {"n_neighbors": int(model._n_neighbors), "a": float(model._a), "b": float(model._b),
            "n_epochs": None if model.n_epochs is None else int(model.n_epochs),
            "local_connectivity": float(model.local_connectivity),
            "repulsion_strength": float(model.repulsion_strength),
            "learning_rate": float(model._initial_alpha), "negative_sample_rate": int(model.negative_sample_rate),
            "transform_seed": int(model.transform_seed),
            "disconnection_distance": float(model._disconnection_distance)}


def default_placement_params(n_neighbors: int, min_dist: float, n_fitted: int) -> dict[str, Any]:
    """The same numbers for a layout stored before they were recorded: umap's defaults."""
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(UMAP_DEFAULTS["spread"], min_dist)
    keep = {k: v for k, v in UMAP_DEFAULTS.items() if k != "spread"}
    return {**keep, "n_neighbors": int(min(n_neighbors, n_fitted - 1)), "a": float(a), "b": float(b)}


def exact_cosine_knn(queries: np.ndarray, base: np.ndarray, k: int,
                     self_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(int32 indices, float32 cosine distances) of each query row's ``k`` nearest base rows, nearest
    first, by a matrix product in blocks of query rows. Both arguments are unit rows (float32).

    With ``self_first`` the queries are the base itself, and each row's own index comes first at
    distance 0 (as umap expects of ``precomputed_knn``) even when other rows are duplicates of it.
    """
    k = min(int(k), len(base))
    step = max(1, _BLOCK_CELLS // max(1, len(base)))
    indices = np.empty((len(queries), k), dtype=np.int32)
    dists = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), step):
        block = np.clip(1.0 - queries[start:start + step] @ base.T, 0.0, 2.0)
        if self_first:
            rows = np.arange(len(block))
            block[rows, start + rows] = -1.0  # below every real distance: first after the sort
        part = np.argpartition(block, k - 1, axis=1)[:, :k] if k < len(base) else np.tile(
            np.arange(len(base)), (len(block), 1))
        near = np.take_along_axis(block, part, axis=1)
        order = np.argsort(near, axis=1, kind="stable")
        indices[start:start + step] = np.take_along_axis(part, order, axis=1)
        dists[start:start + step] = np.take_along_axis(near, order, axis=1)
    if self_first:
        dists[:, 0] = 0.0
    return indices, dists


@dataclass
class Placement:
    """A stored layout, ready to place new items: fitted vectors, their x, y, and the parameters."""

    vectors: np.ndarray  # (n, d) unit rows of the fitted items
    xy: np.ndarray  # (n, 2) float32, the fitted coordinates
    params: dict[str, Any]

    @classmethod
    def of(cls, vectors: np.ndarray, xy: np.ndarray, params: dict[str, Any]) -> "Placement":
        return cls(unit_rows(np.asarray(vectors, dtype=np.float32)).astype(np.float32),
                   np.ascontiguousarray(xy, dtype=np.float32), dict(params))

    def neighbours(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, cosine distances) of each row's ``n_neighbors`` nearest fitted items, nearest first."""
        queries = unit_rows(np.asarray(vectors, dtype=np.float32)).astype(np.float32)
        return exact_cosine_knn(queries, self.vectors, self.params["n_neighbors"])

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """x, y of new items (float64), the fitted items staying where they are."""
        if len(vectors) == 0:
            return np.empty((0, 2))
        return self.place_neighbours(*self.neighbours(vectors))

    def place_neighbours(self, indices: np.ndarray, dists: np.ndarray) -> np.ndarray:
        """x, y of new items from their nearest fitted items (indices, cosine distances), as
        ``umap.UMAP.transform`` computes them once it has found those neighbours."""
        import scipy.sparse
        from sklearn.utils import check_random_state
        from umap.layouts import optimize_layout_euclidean
        from umap.umap_ import (INT32_MAX, INT32_MIN, compute_membership_strengths, init_graph_transform,
                                make_epochs_per_sample, smooth_knn_dist)

        cache_umap_compiles()
        p = self.params
        indices, dists = np.array(indices, dtype=np.int32), np.array(dists, dtype=np.float32)
        indices[dists >= p["disconnection_distance"]] = -1
        sigmas, rhos = smooth_knn_dist(dists, float(p["n_neighbors"]),
                                       local_connectivity=float(max(0.0, p["local_connectivity"] - 1.0)))
        rows, cols, vals, _ = compute_membership_strengths(indices, dists, sigmas, rhos, bipartite=True)
        graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(indices), len(self.vectors)))
        csr = graph.tocsr()
        csr.eliminate_zeros()
        embedding = init_graph_transform(csr, self.xy)
        if p["n_epochs"] is None:
            n_epochs = 100 if graph.shape[0] <= 10000 else 30
        else:
            n_epochs = int(p["n_epochs"] // 3.0)
        graph.data[graph.data < (graph.data.max() / float(n_epochs))] = 0.0
        graph.eliminate_zeros()
        rng_state = check_random_state(p["transform_seed"]).randint(INT32_MIN, INT32_MAX, 3).astype(np.int64)
        embedding = optimize_layout_euclidean(
            embedding, self.xy.copy(), graph.row, graph.col, n_epochs, graph.shape[1],
            make_epochs_per_sample(graph.data, n_epochs), p["a"], p["b"], rng_state,
            gamma=p["repulsion_strength"], initial_alpha=p["learning_rate"] / 4.0,
            negative_sample_rate=p["negative_sample_rate"], parallel=False, verbose=False)
        return np.asarray(embedding, dtype=np.float64)
