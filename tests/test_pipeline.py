"""End to end with real parts: the embedded model, real embeddings, UMAP, and a DuckDB file."""

import pytest

from synth.errors import SynthError
from synth.generation import GenerationRequest
from synth.pipeline import generate_run, import_run, map_points


def test_generate_embed_project_and_measure_a_real_batch_of_five(demo_store):
    before = demo_store.count_items()
    req = GenerationRequest(template="Write a one-line review of a {product}.",
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
    assert stored == pytest.approx(result.metrics, nan_ok=True)
    embedded, _ = demo_store.query_readonly("SELECT count(*) AS n FROM embeddings")
    assert embedded["n"][0] == points["text_hash"].nunique()


def test_provider_failure_writes_nothing(store, make_server):
    srv = make_server(fail_status=500, fail_from=3)  # two calls succeed, then the provider fails
    with pytest.raises(SynthError, match="Nothing was saved"):
        generate_run(store, GenerationRequest(template="hi", n=4, model="openai/test-model",
                                              api_base=srv.api_base))
    assert len(srv.config.requests) == 3
    assert store.count_items() == 0 and store.runs().empty


def test_import_run_is_embedded_and_measured(store, tmp_path):
    path = tmp_path / "real.csv"
    path.write_text("text\nreal data one\nreal data two\nsomething different\n")
    result = import_run(store, path, run_name="reference")
    assert result.n_items == 3 and result.n_embedded == 3 and result.metrics["count"] == 3
