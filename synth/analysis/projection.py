"""Projection: embeddings in, 2-D map coordinates out, stable as the data grows.

Reads: items and their cached embeddings. Writes: ``layouts`` (with the layout's
trustworthiness and its placement numbers) and ``projections`` (item id, x, y, how it was placed).

A layout is fitted once and then kept: items that arrive later are placed the way UMAP's
``transform`` places them (see :mod:`synth.analysis.placement`), so existing points never move;
"re-fit" makes a new layout on demand. Placing needs only what the database holds as data (the
fitted items' vectors and x, y, and a few numbers), so it works after a restart too, and nothing
executable is ever read back from a database file.

UMAP finds the fitted items' neighbours here, exactly, by a blocked matrix product (not with
NN-descent, which umap uses past 4,096 items and numba compiles for about 20 s in every process).
UMAP's other numba code compiles for 15 to 60 s the first time it runs (kept on disk since, see
``cache_umap_compiles``, so a new process mostly loads it), and the map never waits for it:
without a stored layout a PCA preview is shown at once while UMAP fits in a background thread;
a warm-up compiles fit and placement (the same code paths as real ones) in the background at start.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth.analysis.embedding import load_vectors, unit_rows
from synth.analysis.placement import (
    Placement,
    cache_umap_compiles,
    default_placement_params,
    exact_cosine_knn,
    placement_params,
)
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import content_hash, from_json, items_signature, new_id
from synth.kernel.registry import Registry
from synth.store import DuckStore

# Below this many points UMAP's neighbour graph is meaningless; PCA is the layout.
UMAP_MIN_POINTS = 10
UMAP_METRIC = "cosine"


class PCAProjector:
    """Principal components by SVD: instant, deterministic, linear."""

    name = "pca"
    title = "PCA preview"
    role = "preview"  # instant; shown while the layout fits, and when there are too few items
    min_points = 1

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


def import_umap():
    """umap-learn, imported (2.5 s in a new process), with its compiled functions kept on disk."""
    try:
        import umap
    except ImportError:
        raise SynthError("umap-learn is not installed. Run: pip install -r requirements.txt") from None
    cache_umap_compiles()
    return umap


def fit_knn(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """The exact cosine kNN of the fitted items among themselves (each first, at distance 0), as
    umap's ``precomputed_knn``: the same neighbours umap computes below 4,096 items, and past that
    instead of NN-descent, which numba compiles for about 20 s in every new process."""
    unit = unit_rows(np.asarray(vectors, dtype=np.float32)).astype(np.float32)
    return (*exact_cosine_knn(unit, unit, k, self_first=True), None)


class UMAPProjector:
    """UMAP with a cosine metric and a pinned seed."""

    name = "umap"
    title = "UMAP"
    role = "layout"  # fitted once, stored, and new items placed with ``transform``
    min_points = UMAP_MIN_POINTS

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
        self.placement: Placement | None = None  # what places new items, as arrays and numbers

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        umap = import_umap()
        n = len(vectors)
        if n < UMAP_MIN_POINTS:
            raise SynthError(f"UMAP needs at least {UMAP_MIN_POINTS} items; there are {n}.")
        k = min(self.params["n_neighbors"], n - 1)
        model = umap.UMAP(n_neighbors=k, min_dist=self.params["min_dist"], metric=UMAP_METRIC,
                          random_state=self.params["seed"], n_components=2, n_jobs=1,
                          precomputed_knn=fit_knn(vectors, k))
        with warnings.catch_warnings():  # "transform will be unavailable": placement does not use it
            warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
            coords = model.fit_transform(vectors).astype(np.float64)
        self.placement = Placement.of(vectors, coords, placement_params(model))
        return coords

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self.placement is None:
            raise SynthError("The UMAP projector must be fitted before transform.")
        return self.placement.place(vectors)


PROJECTORS = Registry("projector")
register_projector = PROJECTORS.add


register_projector(PCAProjector)
register_projector(UMAPProjector)


def projector_for(role: str) -> type:
    """The registered projector with this role: "layout" (stored, places new items) or "preview"."""
    for projector in PROJECTORS.values():
        if projector.role == role:
            return projector
    raise SynthError(f"No projector is registered for the {role!r} role.")


LAYOUT = projector_for("layout")
PREVIEW = projector_for("preview")


@dataclass
class MapLayout:
    """Coordinates of every item and how they were obtained."""

    coords: pd.DataFrame  # item_id, x, y (and placed: fit / transform)
    method: str  # a PROJECTORS name: the layout projector's or the preview's
    params: dict
    status: str  # "stored", "preview" (UMAP running), "placing" (new items: transform running),
    # "pca" (too few items), "failed: ..."
    layout_id: str | None = None
    trustworthiness: float | None = None
    n_placed: int = 0  # items new to the layout in this call (placed, or "pending" while placing)

    @property
    def stored(self) -> bool:
        """A fitted, stored layout (not the preview)."""
        return PROJECTORS[self.method].role == "layout"

    def describe(self) -> str:
        """How the coordinates were made, with the parameters, for a caption."""
        title = PROJECTORS[self.method].title
        return f"{title} ({', '.join(f'{k}={v}' for k, v in self.params.items())})" if self.params else title


@dataclass
class _Job:
    thread: threading.Thread
    started: float = field(default_factory=time.monotonic)
    error: str | None = None
    done: bool = False


_JOBS: dict[tuple[str, str], _Job] = {}
_JOBS_LOCK = threading.Lock()
_WARM = {"started": False}
_MODELS: dict[str, Placement] = {}  # layout id -> what places its new items, loaded once per process
TRUST_SAMPLE = 2000
TRUST_NEIGHBOURS = 5


def trustworthiness(vectors: np.ndarray, coords: np.ndarray, seed: int = 0) -> tuple[float | None, dict]:
    """scikit-learn's trustworthiness of a layout (1: local neighbourhoods are kept), on a seeded
    sample past a stated size."""
    from sklearn.manifold import trustworthiness as sk_trust

    n = len(vectors)
    params = {"n_neighbors": TRUST_NEIGHBOURS, "metric": "cosine", "population": n, "sampled": n > TRUST_SAMPLE}
    if n <= TRUST_NEIGHBOURS * 2 + 1:
        return None, params
    rows = np.arange(n)
    if n > TRUST_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, TRUST_SAMPLE, replace=False))
        params.update(sample_size=TRUST_SAMPLE, seed=seed)
    value = sk_trust(vectors[rows], coords[rows], n_neighbors=TRUST_NEIGHBOURS, metric="cosine")
    return float(value), params


def fit_layout(store: DuckStore, items: pd.DataFrame, projector) -> MapLayout:
    """Fit ``projector`` on the items' embeddings and store the layout and its model."""
    embed_model = settings.get("embed_model")
    vectors = load_vectors(store, items["text"].tolist(), embed_model)
    coords = projector.fit(vectors)
    trust, trust_params = trustworthiness(vectors, coords, projector.params.get("seed", 0))
    layout_id = new_id("lay")
    frame = pd.DataFrame({"item_id": items["item_id"].values, "x": coords[:, 0].astype(float),
                          "y": coords[:, 1].astype(float), "placed": "fit"})
    placement = getattr(projector, "placement", None)
    if placement is not None:  # in item id order, as it is read back after a restart
        order = np.argsort(items["item_id"].to_numpy(str), kind="stable")
        placement = Placement.of(vectors[order], coords[order], placement.params)
    store.save_fit("layout", layout_id, projector.name, embed_model, projector.params, items_signature(items),
                   frame, extra={"trustworthiness": trust, "trust_params": trust_params,
                                 "placement": placement.params if placement is not None else None})
    if placement is not None:
        _MODELS[layout_id] = placement
    return MapLayout(frame, projector.name, projector.params, "stored", layout_id, trust)


def _model_for(store: DuckStore, layout_id: str) -> Placement | None:
    """What places new items on a stored layout: its fitted items' vectors and x, y (from the
    cache and the projections table) and its placement numbers. Nothing is unpickled."""
    if layout_id not in _MODELS:
        header = store.fit_header("layout", layout_id)
        fitted = store.layout_fitted_items(layout_id)
        if not header or header.get("method") != LAYOUT.name or len(fitted) < LAYOUT.min_points:
            return None
        params = from_json(header.get("placement"), None)
        if not isinstance(params, dict):  # a layout stored before placements were recorded
            layout_params = from_json(header.get("params"), {})
            params = default_placement_params(int(layout_params.get("n_neighbors", settings.get("umap_n_neighbors"))),
                                              float(layout_params.get("min_dist", settings.get("umap_min_dist"))),
                                              len(fitted))
        vectors = load_vectors(store, fitted["text"].tolist(), header.get("embed_model"))
        _MODELS[layout_id] = Placement.of(vectors, fitted[["x", "y"]].to_numpy(np.float64), params)
    return _MODELS[layout_id]


def place_new_items(store: DuckStore, layout_id: str, items: pd.DataFrame) -> pd.DataFrame:
    """Place items a layout has not seen with its model's ``transform``; existing points stay put."""
    placement = _model_for(store, layout_id)
    if placement is None:
        raise SynthError("This layout cannot place new items: too few of the items it was fitted on "
                         "are left. Re-fit the layout.")
    coords = placement.place(load_vectors(store, items["text"].tolist()))
    frame = pd.DataFrame({"item_id": items["item_id"].values, "x": coords[:, 0].astype(float),
                          "y": coords[:, 1].astype(float), "placed": "transform"})
    store.append_fit_rows("layout", layout_id, frame)
    return frame


_GO = threading.Event()  # background fits wait for it (see defer_background)
_GO.set()


def defer_background() -> None:
    """Hold background UMAP work (fits and the warm-up) until ``release_background``: the app
    draws its first screen before the numba compile starts competing for the CPU."""
    _GO.clear()


def release_background() -> None:
    _GO.set()


def near_neighbour_positions(known: np.ndarray, known_xy: np.ndarray, new: np.ndarray, k: int = 5) -> np.ndarray:
    """Where new items go until ``transform`` has placed them: the similarity-weighted mean position
    of their k most similar placed items (how UMAP's transform starts, before it optimises)."""
    a, b = unit_rows(known), unit_rows(new)
    k = min(k, len(a))
    out = np.empty((len(b), 2))
    for start in range(0, len(b), 1024):
        sim = b[start:start + 1024] @ a.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(sim, top, axis=1), 1e-6)
        out[start:start + 1024] = (known_xy[top] * weights[..., None]).sum(axis=1) / weights.sum(axis=1)[:, None]
    return out


def _start_job(key: tuple[str, str], work, stored=None) -> _Job:
    """Run ``work()`` in a background thread once per key (after ``release_background``). A key's
    run that succeeded runs again only if ``stored()`` says its result is not in the database (it
    may have been saved just after the caller looked: two fits would store two layouts)."""
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is None or (job.done and job.error is None and not (stored and stored())):
            thread = threading.Thread(target=_run_job, args=(key, work), name="synth-umap", daemon=True)
            job = _JOBS[key] = _Job(thread)
            thread.start()
    return job


def _run_job(key: tuple[str, str], work) -> None:
    job = _JOBS[key]
    _GO.wait()
    try:
        work()
    except Exception as exc:  # reported on the map; the preview stays usable
        job.error = f"{type(exc).__name__}: {exc}"
    finally:
        job.done = True


def _umap_kwargs(params: dict) -> dict:
    return {"n_neighbors": params["n_neighbors"], "min_dist": params["min_dist"], "seed": params["seed"]}


def umap_params(n_neighbors: int | None = None, min_dist: float | None = None, seed: int | None = None) -> dict:
    """The layout parameters, defaults from the settings."""
    return LAYOUT(n_neighbors, min_dist, seed).params


def current_layout(store: DuckStore, items: pd.DataFrame, background: bool = True,
                   params: dict | None = None) -> MapLayout:
    """The map of ``items``: the newest stored UMAP layout with these parameters, with any new
    items placed by ``transform``; without one, a PCA preview while UMAP fits.

    With ``background=True`` a missing layout is fitted in a thread and the call returns at once;
    with ``background=False`` it is fitted before returning.
    """
    embed_model = settings.get("embed_model")
    if items.empty:
        return MapLayout(pd.DataFrame(columns=["item_id", "x", "y"]), PREVIEW.name, {}, "empty")
    params = params or umap_params()
    found = store.find_fit("layout", LAYOUT.name, embed_model, params, None)
    if found is not None:
        layout_id, coords = found
        header = store.fit_header("layout", layout_id)
        trust = header.get("trustworthiness")
        trust = None if pd.isna(trust) else float(trust)
        missing = items[~items["item_id"].isin(coords["item_id"])]
        coords = coords[coords["item_id"].isin(items["item_id"])]
        if missing.empty:
            return MapLayout(coords, LAYOUT.name, params, "stored", layout_id, trust)
        if not background:
            placed = place_new_items(store, layout_id, missing)
            return MapLayout(pd.concat([coords, placed], ignore_index=True), LAYOUT.name, params, "stored",
                             layout_id, trust, len(missing))
        # transform may compile for a while (a new code path past 4,096 fitted items): place the new
        # items in the background, and near their most similar placed items meanwhile.
        key = (store.path, content_hash({"place": layout_id, "items": items_signature(missing)}))
        job = _start_job(key, lambda: place_new_items(store, layout_id, missing.copy()))
        known = load_vectors(store, items.set_index("item_id").loc[coords["item_id"], "text"].tolist(), embed_model)
        guess = near_neighbour_positions(known, coords[["x", "y"]].to_numpy(float),
                                         load_vectors(store, missing["text"].tolist(), embed_model))
        pending = pd.DataFrame({"item_id": missing["item_id"].values, "x": guess[:, 0], "y": guess[:, 1],
                                "placed": "pending"})
        status = f"failed: {job.error}" if job.error else "placing"
        return MapLayout(pd.concat([coords, pending], ignore_index=True), LAYOUT.name, params, status,
                         layout_id, trust, len(missing))
    if not background and len(items) >= LAYOUT.min_points:
        return fit_layout(store, items, LAYOUT(**_umap_kwargs(params)))
    vectors = load_vectors(store, items["text"].tolist(), embed_model)
    preview = PREVIEW().fit(vectors)
    coords = pd.DataFrame({"item_id": items["item_id"].values, "x": preview[:, 0], "y": preview[:, 1]})
    if len(items) < LAYOUT.min_points:
        return MapLayout(coords, PREVIEW.name, {}, PREVIEW.name)
    key = (store.path, content_hash({"items": items_signature(items), "params": params, "model": embed_model}))
    fitting = items.copy()
    job = _start_job(key, lambda: fit_layout(store, fitting, LAYOUT(**_umap_kwargs(params))),
                     stored=lambda: store.find_fit("layout", LAYOUT.name, embed_model, params, None) is not None)
    status = f"failed: {job.error}" if job.error else "preview"
    return MapLayout(coords, PREVIEW.name, {}, status)


def refit_layout(store: DuckStore, items: pd.DataFrame, params: dict | None = None) -> MapLayout:
    """A new layout of all items (existing points move); the previous one stays stored."""
    if len(items) < LAYOUT.min_points:
        raise SynthError(f"{LAYOUT.title} needs at least {LAYOUT.min_points} items; there are {len(items)}.")
    return fit_layout(store, items, LAYOUT(**_umap_kwargs(params or umap_params())))


def new_layout(store: DuckStore, items: pd.DataFrame, params: dict | None = None) -> MapLayout:
    """A layout fitted now for ``params``: a re-fit if one with them is stored, else the fit the
    map starts in the background for them (joined, not run twice)."""
    params = params or umap_params()
    if store.find_fit("layout", LAYOUT.name, settings.get("embed_model"), params, None) is not None:
        return refit_layout(store, items, params)
    if len(items) < LAYOUT.min_points:
        raise SynthError(f"{LAYOUT.title} needs at least {LAYOUT.min_points} items; there are {len(items)}.")
    current_layout(store, items, background=True, params=params)
    wait_for_layouts()
    return current_layout(store, items, background=False, params=params)


def pending_layouts() -> int:
    """How many background UMAP fits are still running in this process."""
    with _JOBS_LOCK:
        return sum(1 for j in _JOBS.values() if not j.done)


def background_released() -> bool:
    """Whether background fits may run now (see ``defer_background``)."""
    return _GO.is_set()


def wait_for_layouts(timeout_s: float = 300.0) -> None:
    """Block until background fits finish (for the CLI and tests)."""
    deadline = time.monotonic() + timeout_s
    for job in list(_JOBS.values()):
        job.thread.join(max(0.0, deadline - time.monotonic()))


def _warm() -> None:
    rng = np.random.default_rng(0)
    _GO.wait()
    try:
        projector = UMAPProjector(n_neighbors=5)
        projector.fit(rng.normal(size=(60, 8)).astype(np.float32))
        projector.transform(rng.normal(size=(5, 8)).astype(np.float32))
    except Exception:  # a warm-up only; a real fit reports its own error on the map
        pass


def start_warmup() -> None:
    """Compile UMAP's fit and transform in a background thread so the real ones are fast."""
    with _JOBS_LOCK:
        if _WARM["started"]:
            return
        _WARM["started"] = True
    threading.Thread(target=_warm, name="synth-umap-warmup", daemon=True).start()
