"""End to end with real parts: the embedded model, real embeddings, UMAP, and a DuckDB file."""

import numpy as np
import pytest

from synth.generate.config import RunConfig
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run
from synth.workflows.pipeline import generate_run, import_run, map_points, truncation_warning


@pytest.mark.slow
def test_generate_embed_project_and_measure_a_real_batch_of_five(demo_store):
    before = demo_store.count_items()
    req = RunConfig(template="Write a one-line review of a {product}.",
                            variables={"product": ["bicycle", "teapot", "laptop"]}, n=5,
                            model="local/smollm2-135m", max_tokens=32, run_name="e2e batch")
    result = generate_run(demo_store, req)
    assert result.n_items == 5 and result.n_embedded >= 1
    assert demo_store.count_items() == before + 5
    assert result.tokens_in > 0 and result.tokens_out > 0 and result.cost_usd == 0.0

    points, layout = map_points(demo_store, background=False)
    assert layout.method == "umap" and layout.status == "stored"
    assert len(points) == before + 5
    new = points[points["run_name"] == "e2e batch"]
    assert len(new) == 5 and new[["x", "y"]].notna().all().all()

    frame, _ = demo_store.query_readonly(
        f"SELECT name, value FROM metrics WHERE run_id = '{result.run_id}' ORDER BY name")
    stored = dict(zip(frame["name"], frame["value"]))
    assert stored["count"] == 5
    assert 0 < stored["distinct_1"] <= 1 and 0 < stored["distinct_2"] <= 1
    assert 0 < stored["mean_pairwise_cosine_distance"] < 2
    assert stored["tokens_out"] == result.tokens_out
    assert {k: v for k, v in stored.items() if v == v} == pytest.approx(
        {k: v for k, v in result.metrics.items() if v is not None})
    assert stored["validity_rate"] != stored["validity_rate"]  # NULL: the run declared no fields
    embedded, _ = demo_store.query_readonly("SELECT count(*) AS n FROM embeddings")
    assert embedded["n"][0] == points["text_hash"].nunique()


@pytest.mark.slow
def test_transient_failures_are_kept_with_their_reason_and_successes_saved(store, make_server):
    # Calls 3 and 4 get 503 every time: after the retries they are failures of a partial run.
    srv = make_server(fail_status=503, fail_from=3, fail_until=10**6)
    cfg = RunConfig(template="hi {x}", variables={"x": ["a", "b", "c", "d"]}, n=4, model="openai/test-model",
                    api_base=srv.api_base, concurrency=1)
    import synth.llm.batch
    result = generate_run(store, cfg)
    assert result.status == "partial" and result.n_items == 2 and result.n_failed == 2
    failures = store.frame("SELECT idx, error_kind, message, attempts FROM failures ORDER BY idx")
    assert list(failures["idx"]) == [2, 3]
    assert set(failures["error_kind"]) == {"ServiceUnavailableError"}
    assert failures["message"].str.contains("unavailable").all()
    assert (failures["attempts"] == synth.llm.batch.BatchSettings(model="").max_retries + 1).all()
    assert store.runs().iloc[0]["n_failed"] == 2


def test_a_batch_where_every_call_fails_writes_nothing(store, make_server):
    srv = make_server(fail_status=500)
    with pytest.raises(SynthError, match="No item was made.*Nothing was saved"):
        generate_run(store, RunConfig(template="hi", n=2, model="openai/test-model", api_base=srv.api_base))
    assert store.count_items() == 0 and store.runs().empty


def test_a_rejected_key_stops_the_batch_and_writes_nothing(store, make_server, monkeypatch):
    srv = make_server(required_key="sk-right-000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-111111")
    with pytest.raises(SynthError, match="rejected the API key"):
        generate_run(store, RunConfig(template="hi", n=6, model="openai/test-model", api_base=srv.api_base,
                                      concurrency=1))
    assert len(srv.config.requests) == 1  # no point calling five more times
    assert store.count_items() == 0 and store.runs().empty


@pytest.mark.slow
def test_import_run_is_embedded_and_measured(store, tmp_path):
    path = tmp_path / "real.csv"
    path.write_text("text\nreal data one\nreal data two\nsomething different\n")
    result = import_run(store, path, run_name="reference")
    assert result.n_items == 3 and result.n_embedded == 3 and result.metrics["count"] == 3


def test_truncation_warning_past_a_fifth_of_the_items_cut_off():
    run = Run(name="r", technique="sampling", params={"max_tokens": 64})

    def items(reasons):
        return [Item(text="t", idx=i, finish_reason=r) for i, r in enumerate(reasons)]

    assert truncation_warning(run, items(["length"] + ["stop"] * 4)) is None  # 20 %: not past it
    assert truncation_warning(run, items(["length"] * 7 + ["stop"])) == (
        "7 of 8 items were cut off at max tokens (64): raise max tokens, or ask for shorter texts "
        "in the prompt.")
    assert truncation_warning(run, items([None, None])) is None  # imported or grammar items
    assert truncation_warning(run, []) is None


@pytest.mark.slow
def test_items_cut_off_by_the_embedded_model_are_flagged_and_warned_about(store):
    cfg = RunConfig(template="Write a long story about a {thing}.", variables={"thing": ["dragon", "ship"]},
                    n=3, model=settings.DEFAULT_LOCAL_MODEL, max_tokens=4)
    result = generate_run(store, cfg)
    assert list(store.items([result.run_id])["finish_reason"]) == ["length"] * 3
    assert result.metrics["truncated_rate"] == 1.0
    assert result.warnings == ["3 of 3 items were cut off at max tokens (4): raise max tokens, or ask for "
                               "shorter texts in the prompt."]
    assert result.to_dict()["warnings"] == result.warnings


def test_a_run_that_finished_has_no_truncation_warning(store, make_server):
    srv = make_server()
    result = generate_run(store, RunConfig(template="hi {x}", variables={"x": ["a", "b"]}, n=2,
                                           model="openai/test-model", api_base=srv.api_base))
    assert list(store.items([result.run_id])["finish_reason"]) == ["stop", "stop"]
    assert result.metrics["truncated_rate"] == 0.0 and result.warnings == []


def test_the_default_max_tokens_is_the_one_the_readme_states():
    """Measured on the default sampling prompt with the embedded model (issue 13)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert RunConfig().max_tokens == settings.DEFAULT_MAX_TOKENS > 64
    assert f"Max tokens defaults to {settings.DEFAULT_MAX_TOKENS}:" in readme


def test_preload_loads_the_embedder_the_embedded_model_and_litellm_once(monkeypatch):
    import threading

    from synth.analysis import embedding
    from synth.llm import providers
    from synth.workflows import pipeline

    monkeypatch.setattr(pipeline, "_PRELOAD", threading.Event())
    monkeypatch.setattr(embedding, "_EMBEDDERS", {})
    monkeypatch.setattr(providers, "_LITELLM", None)
    providers._unload_llama("smollm2-135m")
    assert pipeline.preload_models("local/smollm2-135m") is True
    assert pipeline.preload_models("local/smollm2-135m") is False  # once per process
    loader = next(t for t in threading.enumerate() if t.name == "synth-preload")
    loader.join(timeout=300)
    assert not loader.is_alive()
    assert embedding._EMBEDDERS and "smollm2-135m" in providers._POOLS
    assert providers._LITELLM is not None  # imported, so the first click does not pay for it


def test_the_dataset_the_map_and_the_metrics_read_the_vectors_once(demo_store, monkeypatch):
    from synth.analysis.filters import FilterSpec
    from synth.analysis.metrics import measure_items
    from synth.store import DuckStore
    from synth.workflows.pipeline import filtered_view, load_dataset

    reads = []
    real = DuckStore._read_vectors
    monkeypatch.setattr(DuckStore, "_read_vectors", lambda self, m, h: reads.append(len(h)) or real(self, m, h))
    dataset = load_dataset(demo_store)
    points, layout = map_points(demo_store, dataset=dataset)
    before = measure_items(demo_store, dataset.items, None, dataset.clustering)
    median_words = int(dataset.items["text"].str.count(r"\w+").median())
    view = filtered_view(demo_store, FilterSpec(min_words=median_words), dataset=dataset, before=before)
    assert layout.status == "stored" and len(points) == len(dataset.items)
    assert 0 < len(view.result.kept) < len(dataset.items)
    assert reads == [dataset.items["text_hash"].nunique()]


def test_a_filtered_view_measures_the_kept_items_with_the_datasets_own_vectors(demo_store, monkeypatch):
    import synth.analysis.metrics as metrics
    from synth.analysis.filters import FilterSpec
    from synth.workflows.pipeline import filtered_view, load_dataset

    dataset = load_dataset(demo_store)
    spec = FilterSpec(min_words=int(dataset.items["text"].str.count(r"\w+").median()))
    names = ["count", "distinct_2", "vendi_score", "near_duplicate_rate"]
    expected = {}
    for sample in (None, 40):
        kept = filtered_view(demo_store, spec, dataset=load_dataset(demo_store), names=names).result.kept
        expected[sample] = metrics.measure_items(demo_store, kept, None, dataset.clustering, names=names,
                                                 sample=sample)[0]
    dataset.vectors  # loaded: from here on no vector is looked up by text
    monkeypatch.setattr(metrics, "load_vectors", lambda *a, **k: (_ for _ in ()).throw(AssertionError(a[1][:1])))
    for sample in (None, 40):
        view = filtered_view(demo_store, spec, dataset=dataset, names=names, sample=sample)
        assert 40 < len(view.result.kept) < len(dataset.items)
        assert view.after == pytest.approx(expected[sample], rel=1e-9)
        assert view.after["vendi_score"] != view.before["vendi_score"]


def test_map_points_from_the_loaded_dataset_equal_a_fresh_read(demo_store):
    import pandas as pd

    from synth.workflows.pipeline import load_dataset

    fresh, _ = map_points(demo_store)
    reused, _ = map_points(demo_store, dataset=load_dataset(demo_store))
    columns = list(fresh.columns)
    assert "prompt_label" in columns
    pd.testing.assert_frame_equal(fresh[columns].reset_index(drop=True), reused[columns].reset_index(drop=True))


def test_prompt_labels_name_each_version_and_each_import():
    import numpy as np
    import pandas as pd

    from synth.workflows.pipeline import prompt_label

    frame = pd.DataFrame({"prompt_name": ["reviews", "reviews", None, "reviews"],
                          "prompt_version": [2, 1, np.nan, 2], "version_label": ["shorter", None, np.nan, "shorter"],
                          "technique": ["template", "template", "import", "template"]}, index=[5, 6, 7, 8])
    labels = prompt_label(frame)
    assert labels.tolist() == ["reviews v2 (shorter)", "reviews v1", "(import)", "reviews v2 (shorter)"]
    assert labels.index.tolist() == [5, 6, 7, 8]
    assert prompt_label(frame.drop(columns="version_label")).tolist()[:2] == ["reviews v2", "reviews v1"]


def test_a_loaded_dataset_reads_its_vectors_on_first_use_only(demo_store):
    from synth.analysis.embedding import load_vectors
    from synth.workflows.pipeline import load_dataset

    dataset = load_dataset(demo_store)
    assert callable(dataset._vectors)  # not read yet: the map of a stored layout needs none
    vectors = dataset.vectors
    assert vectors.shape == (len(dataset.items), 384)
    assert np.array_equal(vectors, load_vectors(demo_store, dataset.items["text"].tolist()))
    assert dataset.vectors is vectors  # read once


def test_a_datasets_rows_are_read_alone_until_its_vectors_are_loaded(demo_store):
    from synth.workflows.pipeline import load_dataset

    dataset = load_dataset(demo_store)
    rows = np.array([5, 1, 40])
    part = dataset.vector_rows(rows)
    assert dataset.loaded_vectors is None  # reading three rows did not read them all
    assert np.array_equal(part, dataset.vectors[rows])
    assert dataset.loaded_vectors is not None
