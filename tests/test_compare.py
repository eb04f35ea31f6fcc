"""A/B comparison: two runs with a known difference, and two versions run on the same samples."""

import json

import pytest

from synth.analysis.metrics import compute_run_metrics
from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.workflows.compare import (
    compare_refs,
    compare_runs,
    pairing,
    resolve_side,
    sample_pairs,
)
from synth.workflows.pipeline import generate_run, import_run
from synth.workflows.versions import list_versions, save_version

DIVERSE = ["The tide pools hid crabs under every stone.", "Quarterly revenue rose nine percent in Asia.",
           "Knead the dough for ten minutes, then let it rest.", "The violin's lowest string is tuned to G.",
           "Volcanic soil makes the vineyard's grapes unusually sweet.", "She debugged the kernel panic by bisecting.",
           "Owls can rotate their heads about 270 degrees.", "The treaty was signed in a snowed-in chalet."]
REPETITIVE = ["The product is great and I love it."] * 6 + ["The product is great and I like it.",
                                                          "The product is good and I love it."]


def _import(store, tmp_path, name, texts):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return import_run(store, path, run_name=name).run_id


@pytest.mark.slow
def test_two_runs_with_a_known_difference(store, tmp_path):
    a = _import(store, tmp_path, "diverse", DIVERSE)
    b = _import(store, tmp_path, "repetitive", REPETITIVE)
    result = compare_refs(store, "diverse", "repetitive", background=False)
    assert (result.a["run_id"], result.b["run_id"]) == (a, b) and result.made == []
    m = result.metrics.set_index("metric")
    for name in ("distinct_2", "vendi_score", "near_duplicate_rate", "self_bleu", "mean_pairwise_cosine_distance"):
        assert m.loc[name, "a"] == pytest.approx(compute_run_metrics(store, a)[name])
        assert m.loc[name, "b"] == pytest.approx(compute_run_metrics(store, b)[name])
        assert m.loc[name, "delta"] == pytest.approx(m.loc[name, "b"] - m.loc[name, "a"])
        # B repeats itself, but 8 items are under the stated minimum: no better or worse is called
        assert m.loc[name, "change"] == "too small to compare", name
    assert m.loc["near_duplicate_rate", "b"] > 0.5 > m.loc["near_duplicate_rate", "a"]
    assert result.common_n == {"m": None, "min_items": 20, "too_small": ["A", "B"]}
    assert set(result.common["verdict"]) == {"too small to compare"}
    assert m.loc["count", "change"] == "" and m.loc["count", "delta"] == 0
    # cluster shares: each side's shares sum to one; the difference is B minus A
    clusters = result.clusters
    assert clusters["share_a"].sum() == pytest.approx(1) and clusters["share_b"].sum() == pytest.approx(1)
    assert (clusters["difference"] == clusters["share_b"] - clusters["share_a"]).all()
    assert clusters["difference"].abs().is_monotonic_decreasing
    # one map, coloured by side
    assert sorted(result.points["side"].unique()) == ["A: diverse", "B: repetitive"]
    assert len(result.points) == 16
    # items side by side by position
    assert result.samples["text_a"].tolist()[:2] == DIVERSE[:2]
    assert result.samples["text_b"].tolist()[:2] == REPETITIVE[:2]
    payload = result.to_dict()
    json.dumps(payload)
    assert payload["pairing"]["same_n"] is True and payload["map_points"] == 16
    assert payload["common_n"]["too_small"] == ["A", "B"]


@pytest.mark.slow
def test_with_a_lower_minimum_the_known_difference_is_called_at_a_common_size(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_COMPARE_MIN_ITEMS", "8")
    _import(store, tmp_path, "diverse", DIVERSE)
    _import(store, tmp_path, "repetitive", REPETITIVE)
    result = compare_refs(store, "diverse", "repetitive", with_map=False)
    assert result.common_n == {"m": 4, "min_items": 8, "too_small": []}
    common = result.common.set_index("metric")
    # four of the repetitive items: at most three distinct texts, against four unrelated sentences
    assert common.loc["distinct_2", "change"] == "worse" and common.loc["self_bleu", "change"] == "worse"
    assert common.loc["distinct_2", "b_high"] < common.loc["distinct_2", "a_low"]
    m = result.metrics.set_index("metric")
    assert m.loc["distinct_2", "change"] == common.loc["distinct_2", "change"]


@pytest.mark.slow
def test_two_versions_run_on_the_same_samples_seeds_and_n(store, server):
    cfg = dict(template="Describe {topic} for a {reader}.", n=5, model="openai/test-model", seed=21,
               variables={"topic": ["tea", "rain", "maps", "owls"], "reader": ["child", "expert"]},
               api_base=server.api_base, max_tokens=20, prompt_name="explain", sampling_mode="random")
    first = generate_run(store, RunConfig(**cfg))
    # v2 changes the template and adds a reader: it has never run
    save_version(store, RunConfig(**{**cfg, "template": "Explain {topic} to a {reader} in one line.",
                                     "variables": {**cfg["variables"], "reader": ["child", "expert", "poet"]}}))
    server.config.requests.clear()
    result = compare_refs(store, "explain v1", "explain v2", with_map=False)
    assert result.a["run_id"] == first.run_id and len(result.made) == 1
    assert result.b["version"] == "explain v2" and result.b["n_items"] == 5
    assert result.pairing == {"same_n": True, "same_seed": True, "same_samples": 5, "n": 5, "paired": True}
    items_a, items_b = store.items([result.a["run_id"]]), store.items([result.b["run_id"]])
    assert items_a["variables"].tolist() == items_b["variables"].tolist()
    assert items_a["params"].map(lambda p: json.loads(p)["seed"]).tolist() == \
        items_b["params"].map(lambda p: json.loads(p)["seed"]).tolist()
    assert sorted(r["body"]["seed"] for r in server.config.requests) == [21, 22, 23, 24, 25]
    assert all("in one line" in r["body"]["messages"][-1]["content"] for r in server.config.requests)
    # asked again, the paired run is reused; --fresh makes both anew
    again = compare_refs(store, "explain v1", "explain v2", with_map=False)
    assert again.made == [] and again.b["run_id"] == result.b["run_id"]
    fresh = compare_refs(store, "explain v1", "explain v2", fresh=True, n=3, with_map=False)
    assert len(fresh.made) == 2 and fresh.pairing["paired"] and fresh.a["n_items"] == 3
    assert [v.n_runs for v in list_versions(store, "explain")] == [2, 2]


def test_a_run_against_a_version_uses_the_runs_samples(store, server):
    cfg = RunConfig(template="Name a {thing}.", variables={"thing": ["fruit", "river", "tool"]}, n=3, seed=5,
                    model="openai/test-model", api_base=server.api_base, max_tokens=10, prompt_name="names")
    run = generate_run(store, cfg)
    save_version(store, RunConfig(**{**cfg.__dict__, "temperature": 1.5}))
    result = compare_refs(store, run.run_id, "names v2", with_map=False)
    assert result.a["run_id"] == run.run_id and result.pairing["paired"]
    assert result.metrics.set_index("metric").loc["count", "b"] == 3


def test_pairing_reports_unpaired_runs(store, tmp_path):
    a = _import(store, tmp_path, "a", DIVERSE)
    b = _import(store, tmp_path, "b", DIVERSE[:5])
    assert pairing(store, a, b)["same_n"] is False and pairing(store, a, b)["paired"] is False
    pairs = sample_pairs(store.items([a]), store.items([b]), limit=None)
    assert len(pairs) == 8 and pairs["text_b"].isna().sum() == 3


def test_two_imports_of_the_same_size_are_not_a_controlled_pair(store, tmp_path):
    a = _import(store, tmp_path, "a", DIVERSE)
    b = _import(store, tmp_path, "b", REPETITIVE)
    assert pairing(store, a, b) == {"same_n": True, "same_seed": False, "same_samples": 8, "n": 8,
                                    "paired": False}  # nothing was drawn with a seed


def test_bad_references(store, tmp_path):
    a = _import(store, tmp_path, "a", DIVERSE)
    _import(store, tmp_path, "b", REPETITIVE)
    with pytest.raises(SynthError, match="neither a run nor a prompt version"):
        resolve_side(store, "nothing v9")
    with pytest.raises(SynthError, match="the same run"):
        compare_runs(store, a, a)
    with pytest.raises(SynthError, match="compared as they are"):
        compare_refs(store, "a", "b", n=3)


def test_side_model_names_the_server_for_licence_notes(store, server, tmp_path):
    from synth.llm.licences import note_for
    from synth.workflows.compare import side_model

    cfg = RunConfig(template="Name a {thing}.", variables={"thing": ["fruit"]}, n=1, model="openai/test-model",
                    api_base=server.api_base, max_tokens=10, prompt_name="names")
    run = generate_run(store, cfg)
    imported = _import(store, tmp_path, "real", DIVERSE[:2])
    assert side_model(store, resolve_side(store, run.run_id)) == ("openai/test-model", server.api_base)
    assert side_model(store, resolve_side(store, "names v1")) == ("openai/test-model", server.api_base)
    assert note_for(*side_model(store, resolve_side(store, run.run_id))).key == "unknown"  # not OpenAI
    assert side_model(store, resolve_side(store, imported)) == (None, None)


UNRELATED = [f"Invoice {i}: {w} shipped to the {p} warehouse on time." for i, (w, p) in
             enumerate(zip(["bolts", "cables", "valves", "pumps", "gears"] * 6, ["north", "south", "east"] * 10))]


@pytest.mark.slow
def test_cluster_entropy_pair_is_measured_on_a_clustering_of_the_two_runs_alone(store, tmp_path, monkeypatch):
    """cluster_entropy_pair: each side over one clustering of A and B together, the same before and
    after an unrelated run joins the database; it sits after cluster_entropy in both tables."""
    from synth.analysis.clustering import current_clustering, entropy_bits

    monkeypatch.setenv("SYNTH_COMPARE_MIN_ITEMS", "8")
    a = _import(store, tmp_path, "diverse", DIVERSE)
    b = _import(store, tmp_path, "repetitive", REPETITIVE)
    first = compare_runs(store, a, b, with_map=False)
    rows = first.metrics.set_index("metric")
    assert list(first.metrics["metric"]).index("cluster_entropy_pair") == \
        list(first.metrics["metric"]).index("cluster_entropy") + 1
    pair = current_clustering(store, items=store.items([a, b]))
    for run_id, letter in ((a, "a"), (b, "b")):
        own = store.items([run_id])["item_id"]
        assert rows.loc["cluster_entropy_pair", letter] == pytest.approx(entropy_bits([pair.labels[i] for i in own]))
    assert first.pair_clustering["clustering_id"] == pair.clustering_id and first.pair_clustering["n_items"] == 16
    assert f"k={pair.k}" in first.pair_clustering["label"] and "A and B together" in first.pair_clustering["label"]
    common = first.common.set_index("metric")
    assert common.loc["cluster_entropy_pair", "m"] == 4 and 0 <= common.loc["cluster_entropy_pair", "a"] <= 2
    assert rows.loc["cluster_entropy_pair", "change"] == common.loc["cluster_entropy_pair", "change"]
    _import(store, tmp_path, "unrelated", UNRELATED)
    second = compare_runs(store, a, b, with_map=False)
    again = second.metrics.set_index("metric")
    assert second.pair_clustering["clustering_id"] == pair.clustering_id
    for letter in ("a", "b"):
        assert again.loc["cluster_entropy_pair", letter] == pytest.approx(rows.loc["cluster_entropy_pair", letter])
    # the dataset's clustering, which cluster_entropy uses, now holds the unrelated run too
    compute_run_metrics(store, a)
    stored = store.metrics([a]).set_index("name")
    assert '"measured_over": "the clusters of every item in the dataset (46 items' in stored.loc["cluster_entropy",
                                                                                                  "params"]
    payload = json.loads(json.dumps(second.to_dict()))
    assert payload["pair_clustering"]["k"] == pair.k
    assert "cluster_entropy_pair" in {r["metric"] for r in payload["metrics"]}
