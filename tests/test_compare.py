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


def _items(variables: list[dict], prefix: str):
    import pandas as pd

    return pd.DataFrame({"idx": range(len(variables)), "variables": [json.dumps(v) for v in variables],
                         "text": [f"{prefix}{i}" for i in range(len(variables))]})


def test_items_are_paired_by_the_values_of_the_variables_both_runs_use():
    from synth.outputs.comparison import items_caption, values_text
    from synth.workflows.compare import pairing_summary

    a = _items([{"product": "kettle"}, {"product": "lamp"}, {"product": "kettle"}, {"product": "fan"}], "a")
    b = _items([{"product": "lamp", "tone": "calm"}, {"product": "kettle", "tone": "angry"},
                {"product": "toaster", "tone": "calm"}, {"product": "kettle", "tone": "calm"}], "b")
    pairs = sample_pairs(a, b, limit=None)
    # each A item beside the first unused B item with its product; then A's and B's leftovers
    assert pairs["text_a"].tolist() == ["a0", "a1", "a2", "a3", None]
    assert pairs["text_b"].tolist() == ["b1", "b0", "b3", None, "b2"]
    assert pairs["shared"].tolist() == [{"product": "kettle"}, {"product": "lamp"}, {"product": "kettle"}, {}, {}]
    assert pairs["idx"].tolist() == [0, 1, 2, 3, 2] and pairs["idx_b"].tolist()[:3] == [1, 0, 3]
    assert pairs["variables_b"][0] == {"product": "kettle", "tone": "angry"}
    summary = pairing_summary(a, b, pairs)
    assert summary == {"by": ["product"], "matched": 3, "n_a": 4, "n_b": 4}
    assert items_caption(summary).startswith("Items are paired by the values of product")
    assert "3 of A's 4 items have a partner in B" in items_caption(summary)
    assert values_text({"tone": "calm", "product": "kettle"}) == "product = kettle · tone = calm"
    assert len(sample_pairs(a, b)) == 5 and len(sample_pairs(a, b, limit=2)) == 2


def test_runs_without_a_shared_variable_are_paired_by_position():
    from synth.outputs.comparison import items_caption
    from synth.workflows.compare import pairing_summary

    a = _items([{"topic": "tea"}, {"topic": "rain"}], "a")
    b = _items([{"city": "Oslo"}, {"city": "Lima"}, {"city": "Pune"}], "b")
    pairs = sample_pairs(a, b, limit=None)
    assert pairs["text_a"].tolist() == ["a0", "a1", None] and pairs["text_b"].tolist() == ["b0", "b1", "b2"]
    assert pairs["shared"].tolist() == [{}, {}, {}]
    assert pairing_summary(a, b)["by"] == [] and "by position" in items_caption(pairing_summary(a, b))


def _generate(store, server, template, seed, name="explain", n=3):
    cfg = RunConfig(template=template, variables={"topic": ["tea", "rain", "maps", "owls"]}, n=n, seed=seed,
                    model="openai/test-model", api_base=server.api_base, max_tokens=10, prompt_name=name)
    return generate_run(store, cfg).run_id


def test_the_default_pair_is_the_newest_controlled_pair(store, server, tmp_path):
    from synth.workflows.compare import default_pair

    v1 = _generate(store, server, "Describe {topic}.", seed=3)
    save_version(store, RunConfig(template="Describe {topic} briefly.", variables={"topic": ["tea", "rain"]}, n=3,
                                  seed=3, model="openai/test-model", api_base=server.api_base, max_tokens=10,
                                  prompt_name="explain"))
    paired = compare_refs(store, "explain v1", "explain v2", with_map=False)
    v2 = paired.b["run_id"]
    assert paired.pairing["paired"] and paired.made == [v2]
    _import(store, tmp_path, "unrelated", DIVERSE)  # the newest run, paired with nothing
    chosen = default_pair(store)
    assert (chosen.a, chosen.b) == (v1, v2)
    assert chosen.reason.startswith("Opened on the newest controlled pair:")


def test_without_a_controlled_pair_the_default_is_the_two_newest_versions_of_one_prompt(store, server, tmp_path):
    from synth.workflows.compare import default_pair

    _generate(store, server, "Describe {topic}.", seed=1, name="older")
    _generate(store, server, "Describe {topic} again.", seed=2, name="older")
    _generate(store, server, "Explain {topic}.", seed=3)
    v2 = _generate(store, server, "Explain {topic} to a child.", seed=4)
    v2_again = _generate(store, server, "Explain {topic} to a child.", seed=5)  # v2's newest run
    v3 = _generate(store, server, "Explain {topic} in one line.", seed=6)
    _import(store, tmp_path, "one import", DIVERSE)
    assert [v.version for v in list_versions(store, "explain")] == [1, 2, 3]
    chosen = default_pair(store)
    assert (chosen.a, chosen.b) == (v2_again, v3) and v2 != v2_again
    assert chosen.reason == ("Opened on the two newest versions of the prompt explain, by their newest runs: "
                             f"explain v2 ({store.run_summary(v2_again)['name']}) and explain v3 "
                             f"({store.run_summary(v3)['name']}).")


def test_with_neither_the_default_is_the_two_newest_runs(store, tmp_path):
    from synth.workflows.compare import default_pair

    first = _import(store, tmp_path, "first", DIVERSE)
    assert default_pair(store) is None  # one run: nothing to pair
    second = _import(store, tmp_path, "second", REPETITIVE)
    third = _import(store, tmp_path, "third", UNRELATED)
    chosen = default_pair(store)
    assert (chosen.a, chosen.b) == (second, third) and first not in (chosen.a, chosen.b)
    assert chosen.reason == "Opened on the two newest runs: second and third."


def _comparison(metrics=None, common=None, pairing_=None, a=None, b=None):
    import pandas as pd

    from synth.workflows.compare import Comparison

    side = {"n_items": 50, "version": None, "prompt_id": None}
    return Comparison({**side, **(a or {})}, {**side, **(b or {})}, pairing_ or {}, metrics, pd.DataFrame(),
                      pd.DataFrame(), common=common)


def test_the_pairing_sentence_says_what_differs_and_how_to_get_a_controlled_pair():
    from synth.outputs.comparison import pairing_sentence

    unpaired = {"same_n": False, "same_seed": False, "same_samples": 8, "n": 40, "paired": False}
    text = pairing_sentence(_comparison(pairing_=unpaired, a={"version": "support v1", "prompt_id": "p1"},
                                        b={"version": "support v2", "prompt_id": "p2", "n_items": 40}))
    assert text.startswith("Not a controlled pair: A has 50 items and B 40; they were not drawn with the same "
                           "seed; 8 of 40 items have the same variable values at the same position.")
    assert text.endswith("choose the versions support v1 and support v2 instead of their runs: support v2 "
                         "then runs on A's samples, seed and n.")
    imports = pairing_sentence(_comparison(pairing_={**unpaired, "same_n": True}))
    assert "items and B" not in imports and imports.endswith("the second runs on the first's samples.")
    paired = {"same_n": True, "same_seed": True, "same_samples": 3, "n": 3, "paired": True}
    assert pairing_sentence(_comparison(pairing_=paired)).startswith("Paired: the same n (3), the same seed")


def test_metric_tables_show_labels_beside_ids_and_values_in_their_units():
    import pandas as pd

    from synth.outputs.comparison import common_rows, metric_rows

    metrics = pd.DataFrame([
        {"metric": "distinct_2", "a": 0.64, "b": 0.694, "delta": 0.054, "change": "better"},
        {"metric": "validity_rate", "a": None, "b": None, "delta": None, "change": ""},
        {"metric": "cluster_entropy_pair", "a": 2.5, "b": 2.36, "delta": -0.14, "change": "no clear difference"},
        {"metric": "count", "a": 1200, "b": 1200, "delta": 0, "change": ""}])
    common = pd.DataFrame([
        {"metric": "distinct_1", "a": 0.34, "a_low": 0.31, "a_high": 0.372, "b": None, "b_low": None,
         "b_high": None, "change": "too small to compare"},
        {"metric": "cluster_entropy", "a": 1.87, "a_low": 1.66, "a_high": 1.98, "b": 2.0, "b_low": 1.9,
         "b_high": 2.1, "change": "no clear difference"}])
    rows = metric_rows(_comparison(metrics, common))
    assert rows.columns.tolist() == ["measure", "metric", "A", "B", "B − A", "change"]
    assert rows["measure"].tolist() == ["Word-pair variety", "Valid structured output",
                                        "Topic spread, A and B alone", "Items"]
    assert rows["metric"].tolist() == metrics["metric"].tolist()
    assert rows.iloc[0][["A", "B", "B − A"]].tolist() == ["64 %", "69 %", "+5.4 %"]
    assert rows.iloc[1][["A", "B", "B − A"]].tolist() == ["—", "—", "—"]
    assert rows.iloc[2][["A", "B", "B − A"]].tolist() == ["2.5 bits", "2.36 bits", "-0.14 bits"]
    assert rows.iloc[3][["A", "B"]].tolist() == ["1,200", "1,200"]
    at_size = common_rows(_comparison(metrics, common))
    assert at_size["measure"].tolist() == ["Word variety", "Topic spread"]
    assert at_size["A"].tolist() == ["34 % [31 % – 37 %]", "1.87 bits [1.66 – 1.98]"]
    assert at_size["B"].tolist() == ["—", "2 bits [1.9 – 2.1]"]
    assert at_size["change"].tolist() == ["too small to compare", "no clear difference"]
    assert common_rows(_comparison(metrics, None)).empty


@pytest.mark.slow
def test_the_page_opens_on_two_versions_of_one_prompt_with_items_paired_by_value(demo_store):
    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    from synth.workflows.compare import default_pair

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not at.error
    runs = demo_store.runs().set_index("name")
    # the demo has no controlled pair: its newest prompt with two versions, by their newest runs
    assert at.selectbox(key="compare_a").value == runs.loc["support v1", "run_id"]
    assert at.selectbox(key="compare_b").value == runs.loc["support v2 (personas)", "run_id"]
    captions = [c.value.replace("\\", "") for c in at.caption]  # as read: without markdown escapes
    assert any(c.startswith("Opened on the two newest versions of the prompt support-questions") for c in captions)
    warning = next(w.value.replace("\\", "") for w in at.warning if w.value.startswith("Not a controlled pair"))
    assert "choose the versions support-questions v1 and support-questions v2" in warning
    metrics = at.dataframe[0].value  # AppTest gives the styled table as its data
    assert metrics.set_index("metric").loc["distinct_2", "measure"] == "Word-pair variety"
    assert metrics.set_index("metric").loc["distinct_2", "A"].endswith(" %")
    # items side by side: two plain texts per pair, each pair captioned with its shared product
    chosen = default_pair(demo_store)
    result = compare_refs(demo_store, chosen.a, chosen.b, with_map=False)
    texts = [t.value for t in at.text]
    expected = [t for pair in zip(result.samples["text_a"], result.samples["text_b"]) for t in pair]
    assert texts == expected and len(texts) == 20
    products = {f"product = {row.shared['product']}" for row in result.samples.itertuples()}
    assert products <= set(captions)
    shown = [e.value for kind in ("markdown", "caption", "warning", "success", "info") for e in at.get(kind)]
    assert not [s for s in shown if any(raw in s.split() for raw in ("None", "nan", "null", "NaN"))]
