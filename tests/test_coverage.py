import json

import numpy as np
import pandas as pd
import pytest

from synth.analysis import coverage
from synth.analysis.comparable import common_size
from synth.kernel.errors import SynthError


def _ring(n: int, start: float = 0.0, step: float | None = None) -> np.ndarray:
    """Unit vectors at angles start, start+step, ... in the plane (cosine distance is 1 - cos(angle))."""
    step = 2 * np.pi / n if step is None else step
    angles = start + step * np.arange(n)
    return np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)


def test_reference_radii_are_the_distance_to_the_kth_neighbour():
    ring = _ring(12)  # neighbours 30 and 60 degrees apart
    assert coverage.reference_radii(ring, 1) == pytest.approx(np.full(12, 1 - np.cos(np.pi / 6)), abs=1e-6)
    assert coverage.reference_radii(ring, 3) == pytest.approx(np.full(12, 1 - np.cos(np.pi / 3)), abs=1e-6)
    with pytest.raises(SynthError, match="at least two"):
        coverage.reference_radii(ring[:1], 1)


def test_synthetic_items_on_half_the_reference_give_recall_one_half():
    reference = _ring(12)
    synthetic = reference[:6] * 1.0  # exactly on six reference items, rescaled copies are the same direction
    result = coverage.coverage(reference, synthetic * 3.0, k=1)
    # Each synthetic point sits on one reference item and inside the balls of its two neighbours too
    # (radius 30 degrees): reached are items 0..5 and their neighbours 11 and 6.
    assert result.recall == pytest.approx(8 / 12)
    assert result.precision == 1.0
    assert result.reached.sum() == 8 and result.reached[[11, 0, 5, 6]].all() and not result.reached[7:11].any()


def test_synthetic_items_far_from_every_reference_lower_precision():
    reference = _ring(8, step=np.pi / 32)  # eight items within about 40 degrees
    synthetic = np.vstack([reference[3:4], _ring(3, start=np.pi, step=0.1)])  # one close, three opposite
    result = coverage.coverage(reference, synthetic, k=2)
    assert result.precision == pytest.approx(1 / 4)
    assert result.near_reference.tolist() == [True, False, False, False]
    assert 0 < result.recall < 1


def test_identical_sets_cover_each_other():
    x = np.random.default_rng(0).normal(size=(50, 16))
    result = coverage.coverage(x, x, k=5)
    assert result.recall == 1.0 and result.precision == 1.0


def _items(roles, clusters, texts=None, run_ids=None):
    n = len(roles)
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "run_role": roles, "cluster": clusters,
                         "cluster_name": [f"c{c}" for c in clusters],
                         "run_id": run_ids or ["ref" if r == "reference" else "syn" for r in roles],
                         "run_name": run_ids or ["ref" if r == "reference" else "syn" for r in roles],
                         "text": texts or [f"text {k}" for k in range(n)]})


def test_coverage_report_per_cluster():
    reference = _ring(12)
    synthetic = reference[:6]
    vectors = np.vstack([reference, synthetic])
    clusters = [0] * 6 + [1] * 6 + [0] * 6  # cluster 0: reference 0..5 and every synthetic item
    items = _items(["reference"] * 12 + ["synthetic"] * 6, clusters)
    overall, per_cluster = coverage.coverage_report(items, vectors, k=1)
    rows = per_cluster.set_index("cluster")
    assert overall.recall == pytest.approx(8 / 12)
    assert rows.loc[0, "recall"] == 1.0 and rows.loc[0, "synthetic_items"] == 6
    assert rows.loc[1, "recall"] == pytest.approx(2 / 6)  # items 6 and 11 only: the long tail is missed
    assert pd.isna(rows.loc[1, "precision"]) and rows.loc[1, "synthetic_items"] == 0


def test_coverage_report_needs_reference_and_synthetic_items():
    items = _items(["synthetic"] * 3, [0, 0, 0])
    with pytest.raises(SynthError, match="--reference"):
        coverage.coverage_report(items, np.eye(3))


def test_collapse_alarm_fires_for_a_collapsed_run_only():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    ref_texts = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    diverse_texts = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    collapsed_texts = ["the same answer again and again " + str(i % 3) for i in range(40)]
    ref_vectors = rng.normal(size=(40, 32))
    diverse_vectors = rng.normal(size=(40, 32))
    collapsed_vectors = np.ones((40, 32)) + rng.normal(scale=0.01, size=(40, 32))
    items = _items(["reference"] * 40 + ["synthetic"] * 80, [0] * 120,
                   ref_texts + diverse_texts + collapsed_texts,
                   ["ref"] * 40 + ["diverse"] * 40 + ["collapsed"] * 40)
    alarms = coverage.collapse_alarms(items, np.vstack([ref_vectors, diverse_vectors, collapsed_vectors]))
    fired = alarms[alarms["alarm"]]
    assert set(fired["run_name"]) == {"collapsed"}
    assert set(fired["metric"]) == {"mean_pairwise_cosine_distance", "distinct_2"}
    diverse = alarms[alarms["run_name"] == "diverse"].set_index("metric")
    assert diverse.loc["mean_pairwise_cosine_distance", "ratio"] == pytest.approx(1.0, abs=0.1)
    assert set(diverse["verdict"]) == {"no clear difference"} and not diverse["alarm"].any()
    # both sides at half the smaller one's size, with intervals around their means
    assert (alarms["sample_size"] == common_size([40, 40])).all() and common_size([40, 40]) == 20
    assert (alarms["run_low"] <= alarms["run"]).all() and (alarms["run"] <= alarms["run_high"]).all()
    assert (fired["run_high"] < fired["reference_low"]).all()  # the alarm's interval lies wholly below


def test_a_run_too_small_to_compare_raises_no_alarm_however_collapsed():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    ref_texts = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    small = ["the same answer again"] * 8  # as collapsed as can be, but only 8 items
    items = _items(["reference"] * 40 + ["synthetic"] * 8, [0] * 48, ref_texts + small, ["ref"] * 40 + ["tiny"] * 8)
    vectors = np.vstack([rng.normal(size=(40, 32)), np.ones((8, 32))])
    alarms = coverage.collapse_alarms(items, vectors)
    assert len(alarms) == 2 and not alarms["alarm"].any()
    assert set(alarms["status"]) == {"too small to compare"} and alarms["run"].isna().all()
    assert set(coverage.collapse_alarms(items, vectors, minimum=8)["alarm"]) == {True}  # with a lower minimum


def test_no_alarms_without_reference_data():
    items = _items(["synthetic"] * 4, [0] * 4)
    assert coverage.collapse_alarms(items, np.eye(4)).empty


# -- the coverage summary (CLI, report, dataset card and the Explore page) ----------------------


def test_coverage_summary_names_the_worst_covered_clusters_first():
    reference = _ring(12)
    vectors = np.vstack([reference, reference[:6]])
    clusters = [0] * 6 + [1] * 6 + [0] * 6
    items = _items(["reference"] * 12 + ["synthetic"] * 6, clusters)
    summary = coverage.coverage_summary(items, vectors, k=1)
    assert summary.measured and summary.reason is None
    assert (summary.recall, summary.precision, summary.k) == (pytest.approx(8 / 12), 1.0, 1)
    assert (summary.reference_items, summary.reference_reached, summary.synthetic_items, summary.synthetic_near) == \
        (12, 8, 6, 6)
    assert [(c["cluster"], c["cluster_name"], c["reference_items"], c["synthetic_items"]) for c in summary.worst] == \
        [(1, "c1", 6, 0), (0, "c0", 6, 6)]
    assert summary.worst[0]["recall"] == pytest.approx(2 / 6) and summary.worst[0]["precision"] is None
    assert json.loads(json.dumps(summary.to_dict()))["worst"][1]["precision"] == 1.0  # plain JSON values
    assert coverage.coverage_sentences(summary)[:2] == [
        "Recall: 67 % of the real items have a synthetic item nearby (8 of 12).",
        "Precision: 100 % of the synthetic items are near real items (6 of 6)."]
    assert coverage.coverage_summary(items, vectors, k=1, worst=1).worst == summary.worst[:1]


def test_coverage_summary_leaves_noise_out_of_the_worst_clusters_and_takes_chosen_synthetic_items():
    reference = _ring(12)
    vectors = np.vstack([reference, reference[:6], reference[6:7]])
    clusters = [0] * 6 + [-1] * 6 + [0] * 6 + [-1]
    items = _items(["reference"] * 12 + ["synthetic"] * 7, clusters)
    summary = coverage.coverage_summary(items, vectors, k=1)
    assert summary.recall == pytest.approx(9 / 12)  # item 18 sits on reference item 6: item 7 is reached too
    assert [c["cluster"] for c in summary.clusters] == [-1, 0] and [c["cluster"] for c in summary.worst] == [0]
    # only the synthetic items asked for (every reference item still counts)
    chosen = coverage.coverage_summary(items, vectors, synthetic_ids=["i18"], k=1)
    assert (chosen.synthetic_items, chosen.reference_items, chosen.recall) == (1, 12, pytest.approx(3 / 12))


@pytest.mark.parametrize("roles, ids, reason", [
    (["synthetic"] * 3, None, "no reference data"),
    (["reference"] + ["synthetic"] * 2, None, "only one reference item"),
    (["reference"] * 2 + ["synthetic"], [], "no synthetic items"),
    (["reference"] * 3, None, "no synthetic items"),
])
def test_coverage_summary_says_why_nothing_was_measured(roles, ids, reason):
    summary = coverage.coverage_summary(_items(roles, [0] * len(roles)), np.eye(3), synthetic_ids=ids)
    assert not summary.measured and reason in summary.reason
    assert summary.recall is None and summary.precision is None and summary.worst == [] == summary.clusters
    assert coverage.coverage_sentences(summary) == [summary.reason]


def test_percent_is_a_whole_percentage():
    assert [coverage.percent(v) for v in (2 / 3, 1.0, 0.0, None)] == ["67 %", "100 %", "0 %", "—"]


# -- a database whose coverage is known by construction -----------------------------------------

# Three topics far apart in meaning (all-MiniLM-L6-v2), eight phrasings of each.
TOPICS = {"soup": "Tomato soup recipe: simmer ripe tomatoes with garlic and basil, {}.",
          "football": "The striker scored a late goal and the football team won the league match, {}.",
          "stars": "Astronomers used a telescope to observe a distant galaxy and its stars, {}."}
ENDINGS = ["then blend until smooth", "on a rainy Saturday", "in the second half", "after a long night",
           "with great excitement", "according to the report", "as the crowd cheered", "for the first time"]
COVERED = ("soup", "football")


def topic_texts(topic: str) -> list[str]:
    return [TOPICS[topic].format(ending) for ending in ENDINGS]


def three_topic_store(store, folder) -> dict:
    """Reference: 8 real items on each of three topics; synthetic (run "two topics"): copies of the
    reference items of two of them. Each synthetic item sits on a reference item, and every topic's
    neighbourhood radius (k = 5) is below its distance to the other topics (asserted here), so by
    construction recall is 16/24 = 2/3, precision 1, and the third topic's cluster has recall 0."""
    from synth.analysis.embedding import load_vectors, unit_rows
    from synth.workflows.pipeline import import_run

    real, synthetic = folder / "real.jsonl", folder / "synthetic.jsonl"
    real.write_text("".join(json.dumps({"text": t}) + "\n" for topic in TOPICS for t in topic_texts(topic)))
    synthetic.write_text("".join(json.dumps({"text": t}) + "\n" for topic in COVERED for t in topic_texts(topic)))
    ref = import_run(store, real, reference=True, run_name="real data")
    syn = import_run(store, synthetic, run_name="two topics")
    vectors = load_vectors(store, [t for topic in TOPICS for t in topic_texts(topic)]).reshape(3, 8, -1)
    for i in range(3):
        radii = coverage.reference_radii(np.vstack(vectors), 5)[8 * i:8 * i + 8]
        own = unit_rows(vectors[i])
        others = unit_rows(np.vstack([vectors[j] for j in range(3) if j != i]))
        assert radii.max() < (1 - own @ others.T).min()  # the premise of "known by construction"
    return {"reference": ref.run_id, "synthetic": syn.run_id, "stars": topic_texts("stars")}
