"""Comparable numbers: size-dependent metrics at a common size with bootstrap intervals, on runs of
8, 50 and 200 items drawn from one source (the demo's texts, shuffled) and on a grammar that
repeats itself."""

import json
import re

import numpy as np
import pytest

from synth.analysis import comparable, lexical
from synth.analysis.clustering import entropy_bits
from synth.analysis.comparable import (
    COMPARABLE_METRICS,
    NO_CLEAR,
    TOO_SMALL,
    Interval,
    Sample,
    at_common_size,
    change,
    common_size,
    compare_at_common_size,
    measure_at,
    run_samples,
    subsample_values,
    verdict,
)
from synth.analysis.metrics import (
    METRICS,
    compute_run_metrics,
    mean_pairwise_cosine_distance,
    near_duplicate_rate,
    vendi_score,
)
from synth.generate.config import RunConfig
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.outputs.report import build_report
from synth.workflows.compare import compare_runs
from synth.workflows.pipeline import generate_run, import_run

DEMO = settings.PROJECT_DIR / "data" / "demo.jsonl"
# A grammar of eight sentences that differ by a word: a source that repeats itself.
REPEATING = {"start": "The <thing> is <how> and I <verb> it.",
             "rules": {"thing": ["kettle", "lamp"], "how": ["great", "good"], "verb": ["love", "like"]}}


def _texts(n_words=8, n=60, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    return [" ".join(rng.choice(words, n_words)) for _ in range(n)]


def _sample(n=60, seed=0, labels=True):
    rng = np.random.default_rng(seed + 100)
    return Sample(_texts(n=n, seed=seed), rng.normal(size=(n, 16)),
                  [int(c) for c in rng.integers(0, 5, n)] if labels else None)


# -- the rules ------------------------------------------------------------------------------------


def test_the_common_size_is_half_the_smallest_comparable_run_at_most_200():
    assert settings.get("compare_min_items") == 20
    assert common_size([8, 200]) == 100  # the 8-item run is too small: it sets nothing
    assert common_size([50, 200]) == 25
    assert common_size([900, 1000]) == comparable.COMMON_N_CAP == 200
    assert common_size([8, 19]) is None
    assert common_size([8, 19], minimum=8) == 4
    assert comparable.too_small(19) and not comparable.too_small(20)


def test_at_m_equal_n_the_interval_is_the_whole_run_value():
    s = _sample(40)
    full = measure_at(s, s.n)
    expected = {"distinct_1": lexical.distinct_n(s.texts, 1), "distinct_2": lexical.distinct_n(s.texts, 2),
                "distinct_3": lexical.distinct_n(s.texts, 3), "compression_ratio": lexical.compression_ratio(s.texts),
                "self_bleu": lexical.self_bleu(s.texts)[0],
                "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(s.vectors),
                "vendi_score": vendi_score(s.vectors)[0],
                "near_duplicate_rate": near_duplicate_rate(s.vectors, settings.get("near_dup_threshold"))[0],
                "cluster_entropy": entropy_bits(s.labels)}
    assert set(full) == set(COMPARABLE_METRICS) == set(expected)
    for name, value in expected.items():
        iv = full[name]
        assert iv.low <= value <= iv.high, name
        assert (iv.mean, iv.low, iv.high, iv.m, iv.rounds) == (pytest.approx(value),) * 3 + (40, 1), name


def test_the_bootstrap_is_deterministic_for_a_seed_and_moves_with_it():
    s = _sample(60)
    first = subsample_values(s, 30, seed=7)
    again = subsample_values(s, 30, seed=7)
    other = subsample_values(s, 30, seed=8)
    for name in COMPARABLE_METRICS:
        assert np.array_equal(first[name], again[name]), name
    assert not np.array_equal(first["distinct_2"], other["distinct_2"])
    assert len(first["distinct_2"]) == comparable.ROUNDS and len(first["self_bleu"]) == comparable.SLOW_ROUNDS
    # each round is the metric of 30 of the 60 items, drawn without replacement by default_rng(seed)
    rng = np.random.default_rng(7)
    for r in range(3):
        idx = np.sort(rng.choice(60, 30, replace=False))
        assert first["distinct_2"][r] == pytest.approx(lexical.distinct_n([s.texts[i] for i in idx], 2))
        assert first["vendi_score"][r] == pytest.approx(vendi_score(s.vectors[idx])[0])
        assert first["self_bleu"][r] == pytest.approx(lexical.self_bleu([s.texts[i] for i in idx])[0])
    assert first["distinct_2"].std() > 0
    iv = comparable.interval(first["distinct_2"], 30)
    assert iv.low == pytest.approx(np.percentile(first["distinct_2"], 2.5))
    assert iv.high == pytest.approx(np.percentile(first["distinct_2"], 97.5))
    assert iv.mean == pytest.approx(first["distinct_2"].mean())


def test_verdicts_need_intervals_that_do_not_overlap():
    low, high, overlapping = Interval(1.0, 0.9, 1.1, 10, 200), Interval(2.0, 1.8, 2.2, 10, 200), \
        Interval(1.5, 1.05, 1.9, 10, 200)
    assert verdict(low, high) == "higher" and verdict(high, low) == "lower"
    assert verdict(low, overlapping) == NO_CLEAR and verdict(overlapping, high) == NO_CLEAR
    assert verdict(low, Interval(None, None, None, 10, 0)) == NO_CLEAR
    # the direction comes from the metrics registry: higher self-BLEU is worse, higher vendi better
    assert METRICS["self_bleu"].direction == -1 and METRICS["vendi_score"].direction == 1
    assert change("higher", "self_bleu") == "worse" and change("higher", "vendi_score") == "better"
    assert change("lower", "near_duplicate_rate") == "better" and change(NO_CLEAR, "vendi_score") == NO_CLEAR
    assert change(TOO_SMALL, "distinct_2") == TOO_SMALL


def test_bad_arguments_are_refused():
    s = _sample(30)
    with pytest.raises(SynthError, match="between 2 and the run's 30 items"):
        subsample_values(s, 31)
    with pytest.raises(SynthError, match="cannot be compared at a common size"):
        subsample_values(s, 10, ("length_mean",))
    with pytest.raises(SynthError, match="at least 1"):
        subsample_values(s, 10, rounds=0)
    with pytest.raises(SynthError, match="one embedding per text"):
        Sample(["a", "b"], np.zeros((3, 4)))


def test_a_run_under_the_minimum_gets_no_value_and_no_verdict():
    common, table = compare_at_common_size(_sample(8), _sample(200, seed=1))
    assert common.is_too_small("a") and not common.is_too_small("b") and common.m == 100
    assert set(table["verdict"]) == {TOO_SMALL} and table["a"].isna().all()
    assert common.best("distinct_2") is None  # one comparable run is no ranking
    wide = common.wide({"a": "small", "b": "big"}).set_index("run")
    assert wide.loc["small", "comparable"] == TOO_SMALL and wide.loc["small", "distinct_2"] == ""
    assert wide.loc["big", "comparable"] == "" and wide.loc["big", "distinct_2"].count("[") == 1


def test_a_200_item_pair_takes_under_two_seconds():
    import time

    rows = [json.loads(line) for line in DEMO.read_text().splitlines()][:200]
    a = Sample([r["text"] for r in rows], np.random.default_rng(0).normal(size=(200, 384)))
    b = Sample([r["text"] for r in rows[::-1]], np.random.default_rng(1).normal(size=(200, 384)))
    start = time.perf_counter()
    common, _ = compare_at_common_size(a, b)
    assert common.m == 100
    assert time.perf_counter() - start < 4.0  # about 1.5 s on two busy cores; slack for a loaded CI machine


# -- runs of one source at 8, 50 and 200 items ------------------------------------------------------


@pytest.fixture
def same_source(demo_store, tmp_path):
    """Three imports of disjoint parts of the demo's texts, shuffled: 8, 50 and 200 items of one source
    (their embeddings are in the demo database already)."""
    texts = [json.loads(line)["text"] for line in DEMO.read_text().splitlines()]
    order = np.random.default_rng(3).permutation(len(texts))
    parts = {"small": order[:8], "big": order[8:208], "mid": order[208:258]}
    ids = {}
    for name, rows in parts.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": texts[i]}) + "\n" for i in rows))
        ids[name] = import_run(demo_store, path, run_name=name).run_id
    return demo_store, ids


@pytest.mark.slow
def test_an_8_item_run_is_too_small_and_no_longer_called_better(same_source):
    store, ids = same_source
    small, big = compute_run_metrics(store, ids["small"]), compute_run_metrics(store, ids["big"])
    # Measured whole, the 8 items look more diverse than the 200 they were drawn with: the size effect.
    naive_better = [m for m in COMPARABLE_METRICS if METRICS[m].direction and small[m] is not None
                    and (small[m] - big[m]) * METRICS[m].direction > 0]
    assert {"distinct_1", "distinct_2", "compression_ratio", "self_bleu"} <= set(naive_better)
    result = compare_runs(store, ids["small"], ids["big"], with_map=False)
    assert result.common_n["too_small"] == ["A"] and result.common_n["min_items"] == 20
    judged = result.metrics.set_index("metric")["change"]
    assert {judged[m] for m in COMPARABLE_METRICS} == {TOO_SMALL}
    assert judged["rouge_l_max_mean"] == ""  # size-dependent, not measured at a common size: not judged
    assert set(result.common["verdict"]) == {TOO_SMALL}
    payload = json.loads(json.dumps(result.to_dict()))
    # every comparable metric, and cluster_entropy over one clustering of the pair alone
    assert payload["common_n"]["too_small"] == ["A"]
    assert [r["metric"] for r in payload["common_n"]["metrics"]] == [*COMPARABLE_METRICS, "cluster_entropy_pair"]
    assert judged["cluster_entropy_pair"] == TOO_SMALL
    # the report labels it and never puts it in bold
    document = build_report(store, run_ids=[ids["small"], ids["big"], ids["mid"]], examples_per_cluster=0)
    head = re.search(rf'<th data-run="{ids["small"]}">(.*?)</th>', document).group(1)
    assert TOO_SMALL in head
    small_cells = re.findall(rf'<td class="([^"]*)" data-run="{ids["small"]}">', document)
    assert small_cells and not any("best" in c for c in small_cells)
    assert re.search(rf'<td class="num" data-run="{ids["small"]}">{TOO_SMALL}</td>', document)


@pytest.mark.slow
def test_runs_of_50_and_200_items_of_one_source_show_no_clear_difference(same_source):
    store, ids = same_source
    result = compare_runs(store, ids["mid"], ids["big"], with_map=False)
    assert result.common_n == {"m": 25, "min_items": 20, "too_small": []}
    common = result.common.set_index("metric")
    assert set(common["verdict"]) == {NO_CLEAR}, common["verdict"].to_dict()
    assert (common["a_low"] <= common["a"]).all() and (common["b"] <= common["b_high"]).all()
    judged = result.metrics.set_index("metric")["change"]
    assert {judged[m] for m in COMPARABLE_METRICS} == {NO_CLEAR}
    # the same numbers straight from the comparable module, on the runs' own items and seed
    samples = run_samples(store, [ids["mid"], ids["big"]])
    direct = measure_at(samples[ids["big"]], 25)
    assert common.loc["vendi_score", "b"] == pytest.approx(direct["vendi_score"].mean)
    assert common.loc["distinct_2", "b_high"] == pytest.approx(direct["distinct_2"].high)


@pytest.mark.slow
def test_a_source_that_repeats_itself_is_called_worse_in_the_right_direction(same_source):
    store, ids = same_source
    grammar = generate_run(store, RunConfig(technique="symbolic", grammar=REPEATING, n=60, seed=4,
                                            run_name="repeating"))
    result = compare_runs(store, ids["big"], grammar.run_id, with_map=False)
    assert result.common_n["m"] == 30
    common = result.common.set_index("metric")
    for name, said in [("distinct_2", "lower"), ("distinct_3", "lower"), ("self_bleu", "higher"),
                       ("vendi_score", "lower"), ("mean_pairwise_cosine_distance", "lower"),
                       ("near_duplicate_rate", "higher"), ("compression_ratio", "higher")]:
        assert common.loc[name, "verdict"] == said, name
        assert common.loc[name, "change"] == "worse", name
        if said == "lower":
            assert common.loc[name, "b_high"] < common.loc[name, "a_low"]
        else:
            assert common.loc[name, "b_low"] > common.loc[name, "a_high"]
    # a report of the two crowns the real text on vendi, at the common size
    document = build_report(store, run_ids=[ids["big"], grammar.run_id], examples_per_cluster=0)
    row = re.search(r'<tr data-common-metric="vendi_score">(.*?)</tr>', document).group(1)
    assert re.search(rf'<td class="num best" data-run="{ids["big"]}">', row)
    assert not re.search(rf'<td class="num best" data-run="{grammar.run_id}">', row)


@pytest.mark.slow
def test_several_runs_at_one_size_name_a_best_run_only_when_it_is_clearly_best(same_source):
    store, ids = same_source
    grammar = generate_run(store, RunConfig(technique="symbolic", grammar=REPEATING, n=60, seed=4))
    samples = run_samples(store, [ids["small"], ids["mid"], ids["big"], grammar.run_id])
    common = at_common_size(samples)
    assert common.m == 25 and common.is_too_small(ids["small"])
    # against the repeating grammar alone the real text wins; with two real runs alike, neither does
    assert common.best("distinct_2") is None
    pair = at_common_size({k: samples[k] for k in (ids["big"], grammar.run_id)})
    assert pair.best("distinct_2") == ids["big"] and pair.best("self_bleu") == ids["big"]
