import json

import numpy as np
import pytest

from synth.analysis.embedding import get_embedder
from synth.generate.ingest import read_records
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import text_hash
from synth.analysis import clustering as clustering_module
from synth.analysis.clustering import current_clustering
from synth.workflows.demo import clusters_file, ensure_demo, vectors_file
from synth.workflows.pipeline import open_store


def test_demo_loads_into_an_empty_database_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "1")
    store = open_store(tmp_path / "demo.duckdb")
    added = ensure_demo(store)
    runs = store.runs()
    assert len(added) == len(runs) >= 5
    assert 200 <= store.count_items() <= 600
    assert runs["prompt_name"].nunique() >= 2
    assert (runs.groupby("prompt_name")["prompt_version"].max() >= 2).any()
    assert set(runs["model"].dropna()) == {"local/smollm2-135m"}
    assert ensure_demo(store) == []
    assert store.frame("SELECT count(DISTINCT run_id) AS n FROM metrics")["n"][0] == len(runs)
    assert store.frame("SELECT count(*) AS n FROM embeddings")["n"][0] == store.items()["text_hash"].nunique()


def test_demo_was_made_by_the_projects_generator():
    rows = read_records(settings.get("demo_file"))
    for row in rows:
        assert row["technique"] == "sampling" and row["model"] == "local/smollm2-135m"
        assert row["rendered_prompt"] and row["tokens_out"] > 0 and row["template"]


def test_shipped_vectors_are_the_embedding_models_own():
    """The vectors shipped with the demo must be what the model computes today."""
    texts = sorted({r["text"] for r in read_records(settings.get("demo_file"))})
    with np.load(vectors_file(settings.get("demo_file"))) as data:
        assert str(data["model"]) == settings.DEFAULT_EMBED_MODEL
        shipped = dict(zip(data["text_hash"], data["vectors"]))
    assert set(shipped) == {text_hash(t) for t in texts}
    sample = texts[::25]
    fresh = get_embedder().embed(sample)
    for text, vector in zip(sample, fresh):
        assert float(vector @ shipped[text_hash(text)]) > 0.999


def test_missing_demo_file_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "1")
    monkeypatch.setenv("SYNTH_DEMO_FILE", str(tmp_path / "gone.jsonl"))
    with pytest.raises(SynthError, match="SYNTH_LOAD_DEMO=0"):
        ensure_demo(open_store(tmp_path / "x.duckdb"))


def test_loading_is_off_when_the_setting_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "0")
    store = open_store(tmp_path / "off.duckdb")
    assert ensure_demo(store) == [] and store.count_items() == 0


def test_shipped_clusters_are_what_the_default_clusterer_fits(tmp_path, monkeypatch):
    """The demo's clusters file holds exactly the clustering (labels and c-TF-IDF names) that
    k-means fits on the demo today: a fresh database finds it stored and fits nothing."""
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "1")
    fitted_store = open_store(tmp_path / "fitted.duckdb")
    ensure_demo(fitted_store, measure=False, shipped_clusters=False)
    fitted = current_clustering(fitted_store)
    shipped_store = open_store(tmp_path / "shipped.duckdb")
    ensure_demo(shipped_store, measure=False)

    def no_fit(self, vectors):
        raise AssertionError("the shipped clustering was not used")

    monkeypatch.setattr(clustering_module.KMeansClusterer, "fit", no_fit)
    shipped = current_clustering(shipped_store)
    assert shipped.labels == fitted.labels and len(set(shipped.labels.values())) >= 6
    assert shipped.names == fitted.names
    assert shipped.params == fitted.params


def test_shipped_clusters_are_ignored_when_they_would_not_be_fitted(tmp_path, monkeypatch):
    """Another seed (a different fit key), or a clusters file that does not parse: the file is not
    used, and the clustering is fitted as usual."""
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "1")
    monkeypatch.setenv("SYNTH_SEED", "7")
    store = open_store(tmp_path / "seed7.duckdb")
    ensure_demo(store, measure=False)
    assert store.frame("SELECT count(*) AS n FROM clusterings")["n"][0] == 0
    monkeypatch.delenv("SYNTH_SEED")
    demo = tmp_path / "demo.jsonl"
    demo.write_bytes(open(settings.get("demo_file"), "rb").read())
    vectors_file(demo).write_bytes(vectors_file(settings.get("demo_file")).read_bytes())
    clusters_file(demo).write_text('{"labels": ')
    monkeypatch.setenv("SYNTH_DEMO_FILE", str(demo))
    broken = open_store(tmp_path / "broken.duckdb")
    ensure_demo(broken, measure=False)
    assert broken.frame("SELECT count(*) AS n FROM clusterings")["n"][0] == 0
    shipped = json.loads(clusters_file(settings.DATA_DIR / "demo.jsonl").read_text())
    assert current_clustering(broken).labels == shipped["labels"]
