import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from synth.analysis.filters import (
    FilterSpec,
    apply_filters,
    dedup,
    near_duplicate_pairs,
    word_counts,
)
from synth.kernel.errors import SynthError


def _items(n=6):
    return pd.DataFrame({
        "item_id": [f"it{i}" for i in range(n)],
        "text": ["short one", "a somewhat longer text here", "Refund please", "refund now now",
                 "the cat sat", "dogs bark loudly at night"][:n],
        "status": ["new", "accepted", "new", "rejected", "edited", "new"][:n],
        "judge_score": [None, 4.0, 2.0, None, 5.0, 3.0][:n],
        "run_id": ["r1", "r1", "r2", "r2", "r3", "r3"][:n],
        "prompt_label": ["p v1", "p v1", "p v2", "p v2", "(import)", "(import)"][:n],
        "cluster": [0, 0, 1, 1, 2, 2][:n],
    })


def test_query_round_trip_and_bad_values():
    spec = FilterSpec(dedup_threshold=0.93, min_words=2, max_words=40, include="refund", exclude="cat",
                      min_judge_score=3.5, statuses=["accepted", "edited"], clusters=[1, 4],
                      runs=["run_a"], prompt_versions=["reviews v2"])
    query = spec.to_query()
    assert query["dedup"] == "0.93" and query["status"] == "accepted,edited" and query["cluster"] == "1,4"
    assert FilterSpec.from_query(query) == spec
    assert FilterSpec().to_query() == {}
    assert FilterSpec.from_query({"dedup": "abc", "lmin": "x", "cluster": "1,b", "judge": ["2", "3"]}) == \
        FilterSpec(min_judge_score=3.0)


@pytest.mark.parametrize("spec, message", [
    (FilterSpec(include="(unclosed"), "include pattern"),
    (FilterSpec(exclude="[a-"), "exclude pattern"),
    (FilterSpec(min_words=10, max_words=5), "length range is empty"),
    (FilterSpec(dedup_threshold=1.5), "dedup threshold"),
])
def test_validation(spec, message):
    with pytest.raises(SynthError, match=message):
        apply_filters(_items(), np.eye(6), spec)


@pytest.mark.parametrize("spec, kept, reason", [
    (FilterSpec(runs=["r1"]), ["it0", "it1"], "run not selected"),
    (FilterSpec(prompt_versions=["p v2"]), ["it2", "it3"], "prompt version not selected"),
    (FilterSpec(clusters=[2]), ["it4", "it5"], "cluster not selected"),
    (FilterSpec(min_words=3), ["it1", "it3", "it4", "it5"], "shorter than 3 words"),
    (FilterSpec(max_words=2), ["it0", "it2"], "longer than 2 words"),
    (FilterSpec(include="refund"), ["it2", "it3"], "does not match 'refund'"),
    (FilterSpec(exclude="^the|dogs"), ["it0", "it1", "it2", "it3"], "matches '^the|dogs'"),
    (FilterSpec(min_judge_score=4), ["it1", "it4"], "judge score below 4 or not judged"),
    (FilterSpec(statuses=["accepted", "edited"]), ["it1", "it4"], "status not selected"),
])
def test_each_filter_keeps_the_right_items_and_says_why(spec, kept, reason):
    result = apply_filters(_items(), np.eye(6), spec)
    assert result.kept_ids == kept
    assert len(result.dropped) == 6 - len(kept)
    assert set(result.dropped["reason"]) == {reason}


def test_no_filter_keeps_everything():
    result = apply_filters(_items(), np.eye(6), FilterSpec())
    assert len(result.kept) == 6 and result.dropped.empty


def test_dedup_keeps_the_best_representative_of_each_group():
    items = _items()
    x = np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 1, 0.01], [0, 0, 1], [0.0, 0.02, 1]])
    result = apply_filters(items, x, FilterSpec(dedup_threshold=0.99))
    # accepted beats new; new beats rejected; edited beats new
    assert result.kept_ids == ["it1", "it2", "it4"]
    dropped = result.dropped.set_index("item_id")
    assert dropped.loc["it0", "duplicate_of"] == "it1" and dropped.loc["it3", "duplicate_of"] == "it2"
    assert dropped.loc["it0", "reason"].startswith("near-duplicate (1.00)")


def test_dedup_matches_a_brute_force_greedy_pass():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(60, 12))
    x = np.vstack([base, base[:30] + rng.normal(scale=0.05, size=(30, 12))])
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(90)], "status": ["new"] * 90,
                          "judge_score": [None] * 90})
    kept, dups = dedup(items, x, 0.95)
    sims = cosine_similarity(x)
    expected_kept = []
    for k in range(90):
        if not any(sims[k, j] >= 0.95 for j in expected_kept):
            expected_kept.append(k)
    assert np.flatnonzero(kept).tolist() == expected_kept
    assert set(dups) == set(range(90)) - set(expected_kept)


def test_dedup_runs_after_scope_and_before_quality_filters():
    items = _items()
    x = np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 1, 0.01], [0, 0, 1], [0.0, 0.02, 1]])
    result = apply_filters(items, x, FilterSpec(runs=["r1", "r2"], dedup_threshold=0.99,
                                                statuses=["new", "accepted"]))
    assert result.kept_ids == ["it1", "it2"]
    reasons = result.dropped.set_index("item_id")["reason"]
    assert reasons["it4"] == "run not selected" and reasons["it3"].startswith("near-duplicate")


def test_near_duplicate_pairs_sorted_with_true_similarities():
    rng = np.random.default_rng(6)
    base = rng.normal(size=(20, 8))
    x = np.vstack([base, base[:5] + rng.normal(scale=0.02, size=(5, 8))])
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(25)], "text": [f"t{k}" for k in range(25)],
                          "status": ["new"] * 25})
    pairs = near_duplicate_pairs(items, x, 0.98)
    sims = cosine_similarity(x)
    expected = sorted((sims[a, b] for a in range(25) for b in range(a + 1, 25) if sims[a, b] >= 0.98), reverse=True)
    assert pairs["similarity"].tolist() == pytest.approx(expected, abs=1e-5)
    assert len(pairs) == 5 and all(a != b for a, b in zip(pairs["item_a"], pairs["item_b"]))


def test_word_counts_use_the_loaded_column_and_count_the_same_without_it():
    items = _items()
    counted = word_counts(items)
    assert counted.tolist() == [2, 5, 2, 3, 3, 5]
    stored = items.assign(length_words=[9, 9, 9, 9, 9, 9])  # a loaded dataset's column is trusted as it is
    assert word_counts(stored).tolist() == [9] * 6
    kept = apply_filters(stored, None, FilterSpec(min_words=10)).kept
    assert kept.empty  # the length filter reads the same counts
