import pandas as pd
import pytest

from synth.kernel.errors import SynthError
from synth.workflows import actions
from synth.workflows.pipeline import generate_run


def _items():
    rows = []
    for k, (name, words, n_syn, n_ref) in enumerate([("soup", "soup simmer garlic", 8, 2),
                                                     ("tax", "tax receipt deduction", 1, 6),
                                                     ("football", "striker goal pass", 3, 2)]):
        rows += [{"cluster": k, "cluster_name": name, "run_role": "synthetic", "text": f"{words} synthetic {i}"}
                 for i in range(n_syn)]
        rows += [{"cluster": k, "cluster_name": name, "run_role": "reference", "text": f"{words} real {i}"}
                 for i in range(n_ref)]
    items = pd.DataFrame(rows)
    items["item_id"] = [f"i{k}" for k in range(len(items))]
    return items


def test_gap_table_ranks_the_long_tail_first():
    gaps = actions.gap_table(_items())
    assert list(gaps["cluster_name"]) == ["tax", "football", "soup"]
    tax = gaps.iloc[0]
    assert tax["reference_share"] == pytest.approx(6 / 10) and tax["synthetic_share"] == pytest.approx(1 / 12)
    assert tax["gap"] == pytest.approx(6 / 10 - 1 / 12)


def test_gap_table_without_reference_puts_the_smallest_cluster_first():
    items = _items()
    items = items[items["run_role"] == "synthetic"]
    table = actions.gap_table(items)
    assert table["cluster_name"].iloc[0] == "tax"
    assert list(table.columns) == ["cluster", "cluster_name", "synthetic_share"]  # no blank reference, no gap
    assert (table["synthetic_share"] >= 0).all() and table["synthetic_share"].is_monotonic_increasing


def test_fill_gap_aims_at_the_biggest_gap_with_real_examples_first():
    cfg = actions.fill_gap(_items(), n=4, model="openai/test-model")
    topic = cfg.variables["topic"][0]
    assert {"tax", "receipt", "deduction"} & set(topic.split(", "))
    assert cfg.examples[0].endswith("real 0") and all("tax" in e for e in cfg.examples)
    assert cfg.n == 4 and cfg.run_name == "fill the gap: cluster tax"


def test_fill_gap_on_a_selection_and_its_errors():
    items = _items()
    cfg = actions.fill_gap(items, selected_ids=["i0", "i1"], n=2)
    assert cfg.examples == [items["text"][0], items["text"][1]] and "2 selected items" in cfg.run_name
    with pytest.raises(SynthError, match="no items"):
        actions.fill_gap(items, selected_ids=["nope"])


def test_like_this_makes_the_selection_the_examples():
    cfg = actions.like_this(["first example", "  ", "second example"], n=3, model="m")
    assert cfg.examples == ["first example", "second example"] and cfg.k_examples == 2
    assert cfg.n == 3 and cfg.model == "m" and cfg.technique == "sampling"
    with pytest.raises(SynthError, match="Select some items"):
        actions.like_this([])


@pytest.mark.slow
def test_more_like_this_runs_with_the_selection_in_every_prompt(store, server):
    selection = ["The kettle boils in two minutes.", "The toaster has a bagel setting."]
    cfg = actions.like_this(selection, n=3, model="openai/test-model", api_base=server.api_base, concurrency=1)
    result = generate_run(store, cfg)
    assert result.n_items == 3
    prompts = [r["body"]["messages"][-1]["content"] for r in server.config.requests]
    assert len(prompts) == 3 and all(all(s in p for s in selection) for p in prompts)
    assert set(store.items()["run_name"]) == {"more like 2 selected items"}
