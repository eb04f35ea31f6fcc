"""Projection: embeddings in, 2-D map coordinates out.

Reads: items and their cached embeddings. Writes: ``layouts`` and ``projections``.

UMAP compiles with numba for 15 to 60 s the first time it runs in a process, so the map never
waits for it: a stored UMAP layout of exactly the current items is shown if there is one;
otherwise a PCA preview is shown at once while UMAP fits in a background thread and stores its
layout for the next rerun.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth import settings
from synth.embedding import load_vectors
from synth.errors import SynthError
from synth.records import content_hash, new_id
from synth.registry import Registry
from synth.store import DuckStore

# Below this many points UMAP's neighbour graph is meaningless; PCA is the layout.
UMAP_MIN_POINTS = 10
UMAP_METRIC = "cosine"


class PCAProjector:
    """Principal components by SVD: instant, deterministic, linear."""

    name = "pca"

    def __init__(self, **params):
        self.params: dict = {}
        self._mean: np.ndarray | None = None
        self._components: np.ndarray | None = None

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float64)
        self._mean = x.mean(axis=0)
        centred = x - self._mean
        if len(x) < 2:
            self._components = np.eye(x.shape[1])[:2]
        else:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            comps = vt[:2]
            if len(comps) < 2:
                comps = np.vstack([comps, np.zeros((2 - len(comps), x.shape[1]))])
            # Fix each axis's sign so the same data always gives the same picture.
            signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
            self._components = comps * np.where(signs == 0, 1, signs)[:, None]
        return self.transform(vectors)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self._components is None:
            raise SynthError("The PCA projector must be fitted before transform.")
        return (np.asarray(vectors, dtype=np.float64) - self._mean) @ self._components.T


class UMAPProjector:
    """UMAP with a cosine metric and a pinned seed."""

    name = "umap"

    def __init__(self, n_neighbors: int | None = None, min_dist: float | None = None,
                 seed: int | None = None):
        self.params = {
            "n_neighbors": int(n_neighbors or settings.get("umap_n_neighbors")),
            "min_dist": float(settings.get("umap_min_dist") if min_dist is None else min_dist),
            "metric": UMAP_METRIC,
            "seed": int(settings.get("seed") if seed is None else seed),
        }
        if self.params["n_neighbors"] < 2:
            raise SynthError("UMAP n_neighbors must be at least 2.")
        if not 0.0 <= self.params["min_dist"] <= 1.0:
            raise SynthError("UMAP min_dist must be between 0 and 1.")
        self._model = None

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        try:
            import umap
        except ImportError:
            raise SynthError("umap-learn is not installed. Run: pip install -r requirements.txt") from None
        n = len(vectors)
        if n < UMAP_MIN_POINTS:
            raise SynthError(f"UMAP needs at least {UMAP_MIN_POINTS} items; there are {n}.")
        self._model = umap.UMAP(n_neighbors=min(self.params["n_neighbors"], n - 1),
                                min_dist=self.params["min_dist"], metric=UMAP_METRIC,
                                random_state=self.params["seed"], n_components=2, n_jobs=1)
        return self._model.fit_transform(vectors).astype(np.float64)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise SynthError("The UMAP projector must be fitted before transform.")
        return self._model.transform(vectors).astype(np.float64)


PROJECTORS = Registry("projector")
register_projector = PROJECTORS.add


register_projector(PCAProjector)
register_projector(UMAPProjector)


@dataclass
class MapLayout:
    """Coordinates of every item and how they were obtained."""

    coords: pd.DataFrame  # item_id, x, y
    method: str  # "umap" or "pca"
    params: dict
    status: str  # "stored", "preview" (UMAP running), "pca" (too few items), "failed: ..."


@dataclass
class _Job:
    thread: threading.Thread
    started: float = field(default_factory=time.monotonic)
    error: str | None = None
    done: bool = False


_JOBS: dict[tuple[str, str], _Job] = {}
_JOBS_LOCK = threading.Lock()
_WARM = {"started": False, "done": False}


def items_signature(items: pd.DataFrame) -> str:
    """Identifies exactly this set of items with these texts."""
    return content_hash(sorted((items["item_id"] + ":" + items["text_hash"]).tolist()))


def fit_layout(store: DuckStore, items: pd.DataFrame, projector) -> pd.DataFrame:
    """Fit ``projector`` on the items' embeddings and store the layout; return its coordinates."""
    embed_model = settings.get("embed_model")
    vectors = load_vectors(store, items["text"].tolist(), embed_model)
    coords = projector.fit(vectors)
    frame = pd.DataFrame({"item_id": items["item_id"].values, "x": coords[:, 0].astype(float),
                          "y": coords[:, 1].astype(float)})
    store.save_fit("layout", new_id("lay"), projector.name, embed_model, projector.params,
                   items_signature(items), frame)
    return frame


def _run_job(key: tuple[str, str], store: DuckStore, items: pd.DataFrame, params: dict) -> None:
    job = _JOBS[key]
    try:
        fit_layout(store, items, UMAPProjector(**_umap_kwargs(params)))
    except Exception as exc:  # reported on the map; the preview stays usable
        job.error = f"{type(exc).__name__}: {exc}"
    finally:
        job.done = True


def _umap_kwargs(params: dict) -> dict:
    return {"n_neighbors": params["n_neighbors"], "min_dist": params["min_dist"], "seed": params["seed"]}


def current_layout(store: DuckStore, items: pd.DataFrame, background: bool = True) -> MapLayout:
    """The map of ``items``: the stored UMAP layout if one fits them, else a PCA preview.

    With ``background=True`` a missing UMAP layout is fitted in a thread and stored, and the call
    returns at once; with ``background=False`` it is fitted before returning.
    """
    embed_model = settings.get("embed_model")
    if items.empty:
        return MapLayout(pd.DataFrame(columns=["item_id", "x", "y"]), "pca", {}, "empty")
    umap_params = UMAPProjector().params
    signature = items_signature(items)
    stored = store.find_fit("layout", "umap", embed_model, umap_params, signature)
    if stored is not None:
        return MapLayout(stored[1], "umap", umap_params, "stored")
    vectors = load_vectors(store, items["text"].tolist(), embed_model)
    preview = PCAProjector().fit(vectors)
    coords = pd.DataFrame({"item_id": items["item_id"].values, "x": preview[:, 0], "y": preview[:, 1]})
    if len(items) < UMAP_MIN_POINTS:
        return MapLayout(coords, "pca", {}, "pca")
    if not background:
        coords = fit_layout(store, items, UMAPProjector(**_umap_kwargs(umap_params)))
        return MapLayout(coords, "umap", umap_params, "stored")
    key = (store.path, content_hash({"items": signature, "params": umap_params, "model": embed_model}))
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is None:
            thread = threading.Thread(target=_run_job, args=(key, store, items.copy(), umap_params),
                                      name="synth-umap", daemon=True)
            job = _JOBS[key] = _Job(thread)
            thread.start()
    status = f"failed: {job.error}" if job.error else "preview"
    return MapLayout(coords, "pca", {}, status)


def pending_layouts() -> int:
    """How many background UMAP fits are still running in this process."""
    with _JOBS_LOCK:
        return sum(1 for j in _JOBS.values() if not j.done)


def wait_for_layouts(timeout_s: float = 300.0) -> None:
    """Block until background fits finish (for the CLI and tests)."""
    deadline = time.monotonic() + timeout_s
    for job in list(_JOBS.values()):
        job.thread.join(max(0.0, deadline - time.monotonic()))


def _warm() -> None:
    rng = np.random.default_rng(0)
    try:
        UMAPProjector(n_neighbors=5).fit(rng.normal(size=(60, 8)).astype(np.float32))
    finally:
        _WARM["done"] = True


def start_warmup() -> None:
    """Compile UMAP's numba code in a background thread so the first real fit is fast."""
    with _JOBS_LOCK:
        if _WARM["started"]:
            return
        _WARM["started"] = True
    threading.Thread(target=_warm, name="synth-umap-warmup", daemon=True).start()
