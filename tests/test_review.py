import pytest

from synth.analysis.metrics import compute_run_metrics
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run
from synth.outputs.export import export_items
from synth.workflows import review


@pytest.fixture
def items(store):
    run = Run(name="r", technique="sampling")
    store.save_run(run, [Item(text=t, idx=i) for i, t in enumerate(["alpha one", "beta two", "gamma three"])])
    return store.items()["item_id"].tolist()


def test_accept_and_reject(store, items):
    assert review.set_status(store, items[:2], "accepted") == 2
    review.set_status(store, [items[2]], "rejected")
    assert store.items()["status"].tolist() == ["accepted", "accepted", "rejected"]


@pytest.mark.parametrize("status", ["approved", "edited", ""])
def test_unknown_status_is_refused(store, items, status):
    with pytest.raises(SynthError, match="Status must be one of"):
        review.set_status(store, items, status)


def test_missing_items_are_reported(store, items):
    with pytest.raises(SynthError, match="1 of the items do not exist"):
        review.set_status(store, [items[0], "it_missing"], "accepted")


def test_an_edit_keeps_the_original(store, items):
    assert review.edit_item(store, items[0], "alpha, improved") == 2
    assert review.edit_item(store, items[0], "alpha, improved again", note="second pass") == 3
    history = review.history(store, items[0])
    assert history["text"].tolist() == ["alpha one", "alpha, improved", "alpha, improved again"]
    assert history["status"].tolist() == ["new", "edited", "edited"]
    assert history["note"].tolist()[0] == "original" and history["note"].tolist()[2] == "second pass"
    row = store.items().set_index("item_id").loc[items[0]]
    assert row["text"] == "alpha, improved again" and row["status"] == "edited" and row["version"] == 3
    assert review.history(store, items[1]).empty


def test_edits_are_validated(store, items):
    with pytest.raises(SynthError, match="cannot be empty"):
        review.edit_item(store, items[0], "   ")
    with pytest.raises(SynthError, match="No item"):
        review.edit_item(store, "it_nope", "text")


@pytest.mark.slow
def test_status_filters_exports_and_edits_change_metrics(store, items, tmp_path):
    run_id = store.runs()["run_id"][0]
    before = compute_run_metrics(store, run_id)
    review.set_status(store, [items[0]], "accepted")
    review.edit_item(store, items[1], "beta two beta two beta two")
    after = compute_run_metrics(store, run_id)
    assert after["length_max"] == 6 and before["length_max"] == 2
    assert export_items(store, tmp_path / "ok.csv", statuses=["accepted", "edited"]) == 2
    assert export_items(store, tmp_path / "acc.csv", statuses=["accepted"]) == 1


def test_apply_review_applies_table_differences(store, items):
    before = store.items()[["item_id", "text", "status"]]
    after = before.copy()
    after.loc[0, "status"] = "accepted"
    after.loc[1, "text"] = "beta, rewritten"
    after.loc[2, "status"] = "rejected"
    counts = review.apply_review(store, before, after)
    assert counts == {"edited": 1, "accepted": 1, "rejected": 1, "new": 0}
    assert store.items()["status"].tolist() == ["accepted", "edited", "rejected"]


def test_a_runs_items_are_shown_with_their_variables_and_how_they_ended(store):
    run = Run(name="r", technique="sampling")
    store.save_run(run, [Item(text="Tea is calm.", idx=1, variables={"topic": "tea"}, tokens_out=4,
                              finish_reason="stop", latency_ms=12.4),
                         Item(text="Rain falls and", idx=0, variables={"topic": "rain", "tone": "dry"},
                              tokens_out=3, finish_reason="length", latency_ms=9.6)])
    view = review.run_items_view(store, run.run_id)
    assert list(view.columns) == ["#", "text", "{tone}", "{topic}", "tokens", "ending", "latency ms", "cached"]
    assert view.to_dict("records") == [
        {"#": 1, "text": "Rain falls and", "{tone}": "dry", "{topic}": "rain", "tokens": 3,
         "ending": "cut off at max tokens", "latency ms": 10, "cached": False},
        {"#": 2, "text": "Tea is calm.", "{tone}": "", "{topic}": "tea", "tokens": 4, "ending": "finished",
         "latency ms": 12, "cached": False}]
