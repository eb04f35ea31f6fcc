import time

import numpy as np
import pandas as pd
import pytest

from synth.analysis import neighbours
from synth.kernel.errors import SynthError

TEXTS = pd.Series(["Simmer the lentil soup", "The striker scored late", "Lentil stew with garlic",
                   "A comet crossed the nebula", None, "SOUP of the day"])


def test_words_match_every_word_in_any_case():
    assert list(neighbours.word_matches(TEXTS, "soup")) == [0, 5]
    assert list(neighbours.word_matches(TEXTS, "LENTIL garlic")) == [2]
    assert list(neighbours.word_matches(TEXTS, "   ")) == []
    # Words are plain text, not patterns.
    assert list(neighbours.word_matches(pd.Series(["a.b", "axb"]), "a.b")) == [0]


def test_patterns_match_in_any_case_and_bad_ones_are_refused_with_a_message():
    assert list(neighbours.pattern_matches(TEXTS, r"^(simmer|a) ")) == [0, 3]
    with pytest.raises(SynthError, match="not a valid regular expression"):
        neighbours.pattern_matches(TEXTS, "(unclosed")


def test_a_runaway_pattern_stops_within_its_budget():
    texts = pd.Series(["a" * 40 + "!"] * 3)
    start = time.monotonic()
    with pytest.raises(SynthError, match="took over"):
        neighbours.pattern_matches(texts, r"(a|aa)+$", budget_s=0.3)
    assert time.monotonic() - start < 3


def test_nearest_rows_are_the_brute_force_ranking():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=16)
    rows, sims = neighbours.nearest_to(x, q, top=7)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.argsort(-(unit @ (q / np.linalg.norm(q))))[:7]
    assert list(rows) == list(expected)
    assert np.allclose(sims, (unit @ (q / np.linalg.norm(q)))[expected], atol=1e-5)
    assert all(a >= b for a, b in zip(sims, sims[1:]))


def test_neighbours_leave_the_item_itself_out():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.8, 0.3]], dtype=np.float32)
    rows, sims = neighbours.neighbours(x, 0, k=2)
    assert list(rows) == [1, 3] and sims[0] > sims[1]
    assert len(neighbours.neighbours(x, 0, k=10)[0]) == 3
    with pytest.raises(SynthError):
        neighbours.neighbours(x, 4)


def test_search_by_meaning_finds_the_topic_with_real_embeddings():
    from synth.analysis.embedding import get_embedder

    embedder = get_embedder()
    texts = TEXTS.fillna("")
    items = pd.DataFrame({"text": texts})
    rows, sims = neighbours.search(items, embedder.embed(texts.tolist()), "a bowl of hot soup", "meaning",
                                   embed=embedder.embed, top=3)
    assert set(rows[:2]) <= {0, 2, 5} and set(rows[:3]) == {0, 2, 5}
    with pytest.raises(SynthError, match="Unknown search mode"):
        neighbours.search(items, None, "x", "fuzzy")


def _landing_case():
    e1, e2, e3 = np.eye(3, dtype=np.float32)
    earlier = [e1] * 4
    new = [e1, e1, e2, e2]
    reference = [e1, e1, e2, e2, e3, e3]
    items = pd.DataFrame({
        "run_id": ["ref"] * 6 + ["old"] * 4 + ["new"] * 4,
        "run_name": ["real"] * 6 + ["old run"] * 4 + ["new run"] * 4,
        "run_role": ["reference"] * 6 + ["synthetic"] * 8,
        "cluster_name": ["a", "a", "b", "b", "c", "c", "a", "a", "a", "a", "a", "a", "b", "b"],
    })
    return items, np.array(reference + earlier + new)


def test_landing_says_which_clusters_a_batch_joined_what_is_new_and_how_recall_moved():
    items, vectors = _landing_case()
    out = neighbours.landing(items, vectors, "new", k=1)
    assert out.items == 4 and out.run_name == "new run"
    assert out.clusters == [("a", 0.5), ("b", 0.5)]
    assert out.new_region == 0.5  # the two items along e2 are farther from the earlier ones than those are apart
    # Each reference item's ball reaches its twin (k = 1). The three pairs: e1's are reached before, e2's only with the new run, e3's never.
    assert out.recall_before == pytest.approx(2 / 6) and out.recall_after == pytest.approx(4 / 6)
    assert "50% of them open a new region (farther from every earlier item than 95%" in out.sentence() and "33% → 67%" in out.sentence()
    with pytest.raises(SynthError, match="No items of run"):
        neighbours.landing(items, vectors, "missing")


def test_past_the_sample_size_a_new_region_is_judged_on_one_sample_of_the_earlier_items(monkeypatch):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 32))
    earlier = centres[rng.integers(0, 5, 600)] + rng.normal(scale=0.3, size=(600, 32))
    near = centres[rng.integers(0, 5, 30)] + rng.normal(scale=0.3, size=(30, 32))
    far = rng.normal(size=(10, 32)) * 3
    near, far = (neighbours.unit_rows(v.astype(np.float32)) for v in (near, far))
    base = neighbours.unit_rows(earlier.astype(np.float32))
    shares = [(neighbours._new_region_share(near, base), neighbours._new_region_share(far, base))]
    monkeypatch.setattr(neighbours, "NEW_REGION_SAMPLE", 300)
    sample = neighbours._earlier_sample(np.arange(len(base)))
    assert len(sample) == 300 and len(set(sample)) == 300
    shares.append((neighbours._new_region_share(near, base[sample]), neighbours._new_region_share(far, base[sample])))
    # Items drawn like the earlier ones open a new region about as often as the quantile says (5 %);
    # items far from every topic always do, exactly or on a sample.
    for near_share, far_share in shares:
        assert near_share <= 0.1 and far_share == 1.0


def test_landing_reads_only_the_rows_it_needs_and_gives_the_same_answer(monkeypatch):
    items, vectors = _landing_case()
    whole = neighbours.landing(items, vectors, "new", k=1)
    asked = []

    def rows(positions):
        asked.append(np.asarray(positions))
        return vectors[positions]

    monkeypatch.setattr(neighbours, "NEW_REGION_SAMPLE", 2)  # fewer earlier rows than there are
    sampled = neighbours.landing(items, rows, "new", k=1)
    assert (sampled.clusters, sampled.recall_before, sampled.recall_after) == (
        whole.clusters, whole.recall_before, whole.recall_after)
    earlier_read = [a for a in asked if len(a) == 2]
    assert earlier_read, "the earlier rows are read as a sample of 2, not all of them"
