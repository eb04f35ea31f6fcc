import json
import shutil

import numpy as np
import pytest
from sklearn.decomposition import PCA

from synth.analysis import projection
from synth.analysis.placement import Placement, placement_params
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run
from synth.store import DuckStore


def _blobs(seed=0, per=30, dims=12):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(3, dims))
    x = np.vstack([c + rng.normal(size=(per, dims)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(3), per)


def test_pca_matches_sklearn_up_to_sign():
    x, _ = _blobs()
    ours = projection.PCAProjector().fit(x)
    ref = PCA(n_components=2).fit_transform(x.astype(np.float64))
    for k in range(2):
        assert abs(np.corrcoef(ours[:, k], ref[:, k])[0, 1]) == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(ours, projection.PCAProjector().fit(x))


def test_pca_handles_one_point():
    assert projection.PCAProjector().fit(np.ones((1, 5))).shape == (1, 2)


def test_umap_separates_planted_clusters():
    x, labels = _blobs()
    coords = projection.UMAPProjector(n_neighbors=10).fit(x)
    assert coords.shape == (90, 2)
    centroids = np.array([coords[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(coords[labels == k] - centroids[k], axis=1).mean() for k in range(3))
    gaps = min(np.linalg.norm(centroids[a] - centroids[b]) for a in range(3) for b in range(a + 1, 3))
    assert gaps > 3 * spread


@pytest.mark.parametrize("kwargs, message", [
    ({"n_neighbors": 1}, "n_neighbors"),
    ({"min_dist": 2.0}, "min_dist"),
])
def test_umap_parameter_validation(kwargs, message):
    with pytest.raises(SynthError, match=message):
        projection.UMAPProjector(**kwargs)


def test_umap_needs_enough_points():
    with pytest.raises(SynthError, match="at least"):
        projection.UMAPProjector().fit(np.ones((3, 4), dtype=np.float32))


def test_registry_lists_projectors():
    assert set(projection.PROJECTORS) == {"pca", "umap"}
    with pytest.raises(ValueError):
        projection.register_projector(projection.PCAProjector)


def _store_with(store: DuckStore, n: int):
    words = ["river", "mountain", "coffee", "engine", "violin", "tax", "garden", "planet", "soup",
             "bridge", "poem", "cloud", "dog", "market", "battery"]
    run = Run(name="r", technique="sampling")
    store.save_run(run, [Item(text=f"A note about the {words[i % len(words)]} number {i}", idx=i)
                         for i in range(n)])
    return store.items()


def test_small_sets_use_pca(store):
    items = _store_with(store, 5)
    layout = projection.current_layout(store, items)
    assert layout.method == "pca" and layout.status == "pca" and len(layout.coords) == 5


@pytest.mark.slow
def test_preview_first_then_stored_umap_layout(store):
    items = _store_with(store, 30)
    first = projection.current_layout(store, items, background=True)
    assert first.status in {"preview", "stored"}
    assert len(first.coords) == 30
    projection.wait_for_layouts()
    stored = projection.current_layout(store, items)
    assert stored.status == "stored" and stored.method == "umap"
    assert set(stored.coords["item_id"]) == set(items["item_id"])
    assert stored.params["metric"] == "cosine" and stored.params["seed"] == 0
    again = projection.current_layout(store, items)
    assert again.coords.sort_values("item_id").reset_index(drop=True).equals(
        stored.coords.sort_values("item_id").reset_index(drop=True))


def _sorted(coords):
    return coords.sort_values("item_id").reset_index(drop=True)


@pytest.mark.slow
def test_new_items_are_placed_with_transform_and_old_points_do_not_move(store):
    items = _store_with(store, 30)
    fitted = projection.current_layout(store, items, background=False)
    before = _sorted(fitted.coords)[["item_id", "x", "y"]]
    store.save_run(Run(name="more", technique="sampling"),
                   [Item(text=f"A brand new note about the violin number {i}", idx=i) for i in range(5)])
    placed = projection.current_layout(store, store.items(), background=False)
    assert placed.status == "stored" and placed.layout_id == fitted.layout_id and placed.n_placed == 5
    after = _sorted(placed.coords)
    old = after[after["item_id"].isin(before["item_id"])].reset_index(drop=True)
    assert np.array_equal(old[["x", "y"]].to_numpy(), before[["x", "y"]].to_numpy())  # exactly, not approx
    assert (old["placed"] == "fit").all()
    new = after[~after["item_id"].isin(before["item_id"])]
    assert len(new) == 5 and (new["placed"] == "transform").all()
    assert np.isfinite(new[["x", "y"]].to_numpy()).all()
    assert store.frame("SELECT count(*) AS n FROM layouts")["n"][0] == 1  # no refit
    # Placed once: the next call reads them back and places nothing.
    again = projection.current_layout(store, store.items())
    assert again.n_placed == 0
    reread = _sorted(again.coords)
    assert list(reread["item_id"]) == list(after["item_id"]) and list(reread["placed"]) == list(after["placed"])
    assert np.array_equal(reread[["x", "y"]].to_numpy(float), after[["x", "y"]].to_numpy(float))


@pytest.mark.slow
def test_placing_after_a_restart_gives_the_same_positions_from_stored_arrays(store, tmp_path):
    items = _store_with(store, 30)
    fitted = projection.current_layout(store, items, background=False)
    header = store.fit_header("layout", fitted.layout_id)
    assert json.loads(header["placement"])["n_neighbors"] == 15  # the numbers placing needs, as JSON
    shutil.copy(store.path, tmp_path / "copy.duckdb")
    new = [Item(text="A note about the harbour", idx=0, item_id="it_harbour")]
    store.save_run(Run(name="more", technique="sampling"), new)
    warm = projection.current_layout(store, store.items(), background=False)
    projection._MODELS.clear()  # a new process: only the database remembers the layout
    copy = DuckStore(str(tmp_path / "copy.duckdb"))
    copy.save_run(Run(name="more", technique="sampling"), new)
    cold = projection.current_layout(copy, copy.items(), background=False)
    assert cold.layout_id == fitted.layout_id and cold.n_placed == 1
    at = {name: layout.coords.set_index("item_id").loc["it_harbour", ["x", "y"]].to_numpy(float)
          for name, layout in [("warm", warm), ("cold", cold)]}
    assert np.array_equal(at["warm"], at["cold"])


def test_placement_is_umaps_own_transform_given_the_same_neighbours():
    import umap
    from sklearn.metrics import pairwise_distances

    x, _ = _blobs(per=40)
    new, _ = _blobs(seed=1, per=4)
    model = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1)
    coords = model.fit_transform(x)
    placement = Placement.of(x, coords, placement_params(model))
    reference = model.transform(new)
    # UMAP's exact neighbours (below 4,096 fitted items it computes all distances) ...
    dist = pairwise_distances(new, x, metric=model._input_distance_func)
    indices = np.argsort(dist, axis=1, kind="stable")[:, :15]
    ours_idx, ours_dist = placement.neighbours(new)
    assert np.array_equal(np.sort(ours_idx, axis=1), np.sort(indices, axis=1))
    assert np.abs(ours_dist - np.take_along_axis(dist, indices, axis=1)).max() < 1e-5
    # ... give exactly UMAP's transform: the same graph, start and optimisation, from arrays only.
    given = placement.place_neighbours(indices, np.take_along_axis(dist, indices, axis=1).astype(np.float32))
    assert np.array_equal(given.astype(np.float32), reference)
    # From our own float32 distances the optimisation lands close by (it is sensitive to rounding).
    span = np.ptp(coords, axis=0).max()
    assert np.abs(placement.place(new) - reference).max() < 0.1 * span


@pytest.mark.slow
def test_in_the_app_new_items_are_placed_in_the_background_near_their_neighbours_meanwhile(store):
    items = _store_with(store, 30)
    fitted = projection.current_layout(store, items, background=False)
    twin = items.iloc[0]
    store.save_run(Run(name="more", technique="sampling"), [Item(text=twin["text"] + "!", idx=0)])
    projection.defer_background()
    try:
        placing = projection.current_layout(store, store.items())
        assert placing.status == "placing" and placing.n_placed == 1
        pending = placing.coords[placing.coords["placed"] == "pending"]
        assert len(pending) == 1 and len(placing.coords) == 31
        old = _sorted(placing.coords[placing.coords["placed"] == "fit"])
        assert np.array_equal(old[["x", "y"]].to_numpy(float), _sorted(fitted.coords)[["x", "y"]].to_numpy(float))
    finally:
        projection.release_background()
    projection.wait_for_layouts()
    done = projection.current_layout(store, store.items())
    assert done.status == "stored" and set(done.coords["placed"]) == {"fit", "transform"}


def test_near_neighbour_positions_are_the_weighted_mean_of_the_most_similar():
    known = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    xy = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])
    got = projection.near_neighbour_positions(known, xy, np.array([[1.0, 0.0], [1.0, 1.0]]), k=1)
    assert got[0] == pytest.approx([10.0, 0.0])
    both = projection.near_neighbour_positions(known, xy, np.array([[1.0, 1.0]]), k=2)
    assert both[0] == pytest.approx([5.0, 5.0])  # equally similar to the first two


def test_new_items_land_near_their_neighbours():
    """transform puts a new point next to the old points it resembles."""
    x, labels = _blobs(per=40)
    projector = projection.UMAPProjector(n_neighbors=10)
    coords = projector.fit(x[labels != 9])
    new = projector.transform(x[:3] + 0.01)  # near three points of cluster 0
    centroids = np.array([coords[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.linalg.norm(new[:, None, :] - centroids[None], axis=2).argmin(axis=1)
    assert list(nearest) == [0, 0, 0]


@pytest.mark.slow
def test_refit_makes_a_new_layout_and_keeps_the_old_one(store):
    items = _store_with(store, 30)
    first = projection.current_layout(store, items, background=False)
    params = projection.umap_params(n_neighbors=5, min_dist=0.3, seed=1)
    second = projection.refit_layout(store, items, params)
    assert second.layout_id != first.layout_id and second.params == params
    assert projection.current_layout(store, items, params=params).layout_id == second.layout_id
    assert projection.current_layout(store, items).layout_id == first.layout_id  # other parameters
    assert store.frame("SELECT count(*) AS n FROM layouts")["n"][0] == 2
    again = projection.refit_layout(store, items, params)
    assert projection.current_layout(store, items, params=params).layout_id == again.layout_id  # newest wins


@pytest.mark.slow
def test_trustworthiness_is_scikit_learns_and_stored(store):
    from sklearn.manifold import trustworthiness

    items = _store_with(store, 30)
    layout = projection.current_layout(store, items, background=False)
    vectors = projection.load_vectors(store, items["text"].tolist())
    coords = layout.coords.set_index("item_id").loc[items["item_id"], ["x", "y"]].to_numpy()
    expected = trustworthiness(vectors, coords, n_neighbors=5, metric="cosine")
    assert layout.trustworthiness == pytest.approx(expected, abs=1e-12)
    header = store.fit_header("layout", layout.layout_id)
    assert header["trustworthiness"] == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected <= 1.0


def test_trustworthiness_is_sampled_past_its_limit(monkeypatch):
    monkeypatch.setattr(projection, "TRUST_SAMPLE", 40)
    x, _ = _blobs(per=30)
    value, params = projection.trustworthiness(x, x[:, :2])
    assert params["sampled"] and params["sample_size"] == 40 and params["population"] == 90
    assert 0.0 < value <= 1.0


@pytest.mark.slow
def test_background_work_waits_until_released(store):
    items = _store_with(store, 30)
    projection.defer_background()
    try:
        first = projection.current_layout(store, items)
        assert first.status == "preview"
        import time

        time.sleep(0.5)
        assert projection.pending_layouts() == 1  # held back: the first screen is drawn first
    finally:
        projection.release_background()
    projection.wait_for_layouts()
    assert projection.current_layout(store, items).status == "stored"


def test_exact_cosine_knn_in_blocks_matches_all_distances_with_self_first(monkeypatch):
    from sklearn.metrics.pairwise import cosine_distances

    from synth.analysis import placement as placement_module
    from synth.analysis.embedding import unit_rows

    x, _ = _blobs(per=20)
    x[1] = x[0]  # a duplicate: each row still comes first in its own list
    unit = unit_rows(x).astype(np.float32)
    monkeypatch.setattr(placement_module, "_BLOCK_CELLS", 7 * len(unit))  # blocks of 7 rows
    idx, dist = placement_module.exact_cosine_knn(unit, unit, 6, self_first=True)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == (60, 6)
    assert np.array_equal(idx[:, 0], np.arange(60)) and (dist[:, 0] == 0).all()
    assert idx[0, 1] == 1 and idx[1, 1] == 0
    full = cosine_distances(x.astype(np.float64))
    assert np.abs(np.take_along_axis(full, idx, axis=1) - dist).max() < 1e-5
    assert (np.diff(dist, axis=1) >= 0).all()
    assert np.allclose(np.sort(full, axis=1)[:, :6], dist, atol=1e-5)


@pytest.mark.slow
def test_large_fits_use_the_exact_knn_not_nn_descent_and_still_place(monkeypatch):
    import umap.umap_

    class Refused(umap.umap_.NNDescent):
        def __init__(self, *args, **kwargs):
            raise AssertionError("NN-descent was built")

    monkeypatch.setattr(umap.umap_, "NNDescent", Refused)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 16))
    labels = rng.integers(0, 8, 4200)  # past umap's 4,096-item exact-distance limit
    x = (centres[labels] + rng.normal(scale=0.3, size=(4200, 16))).astype(np.float32)
    projector = projection.UMAPProjector()
    coords = projector.fit(x)
    assert coords.shape == (4200, 2) and np.isfinite(coords).all()
    trust, _ = projection.trustworthiness(x, coords)
    assert trust > 0.9
    new = projector.transform(x[:3] + 0.01)
    nearest = np.linalg.norm(coords[None] - new[:, None], axis=2).argmin(axis=1)
    assert (labels[nearest] == labels[:3]).all()


def test_small_fits_take_the_same_precomputed_knn_path():
    import umap

    x, _ = _blobs(per=40)
    ours = projection.UMAPProjector(n_neighbors=10).fit(x)
    given = umap.UMAP(n_neighbors=10, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1,
                      precomputed_knn=projection.fit_knn(x, 10)).fit_transform(x)
    assert np.array_equal(ours.astype(np.float32), given)
