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
