import numpy as np
import pytest
from sklearn.decomposition import PCA

from synth import projection
from synth.errors import SynthError
from synth.records import Item, Run
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


def test_layout_is_refitted_when_items_change(store):
    items = _store_with(store, 20)
    projection.current_layout(store, items, background=False)
    store.save_run(Run(name="more", technique="sampling"), [Item(text="a brand new text", idx=0)])
    layout = projection.current_layout(store, store.items())
    assert layout.status in {"preview", "stored"}
    projection.wait_for_layouts()
    assert projection.current_layout(store, store.items()).status == "stored"
    assert store.frame("SELECT count(*) AS n FROM layouts")["n"][0] == 2
