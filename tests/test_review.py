from datetime import timedelta

import pandas as pd
import pytest

from synth.analysis.metrics import compute_run_metrics
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run, from_json, now
from synth.kernel.text import is_missing
from synth.outputs.export import export_items
from synth.store import DuckStore
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


# -- what the Review page shows ---------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [
    ('{"tone": "dry", "aspect": "price"}', "aspect: price · tone: dry"),
    ({"topic": "tea"}, "topic: tea"),
    ({"topic": None}, "topic: —"),
    ("{}", "—"),
    (None, "—"),
    (float("nan"), "—"),
])
def test_variable_values_read_as_names_and_values_or_a_dash(value, shown):
    assert review.format_variables(value) == shown


@pytest.mark.parametrize("row, shown", [
    ({"model": "local/smollm2-135m", "technique": "sampling", "prompt_name": "reviews", "prompt_version": 2,
      "version_label": "shorter"}, "local/smollm2-135m · sampling · prompt reviews v2 (shorter)"),
    ({"model": "openai/gpt-4o-mini", "technique": "back_translation", "prompt_name": None,
      "prompt_version": float("nan"), "source_ref": "notes.md#3"},
     "openai/gpt-4o-mini · back_translation · from notes.md#3"),
    ({"model": None, "technique": "import", "status": "accepted"}, "imported from a file"),
    ({"model": "  ", "technique": "sampling"}, "no model recorded · sampling"),
])
def test_an_items_source_is_one_line(row, shown):
    assert review.describe_source(row) == shown


@pytest.mark.parametrize("score, shown", [(None, "—"), (float("nan"), "—"), (4.0, "4 of 5"), (3.5, "3.5 of 5")])
def test_a_judge_score_is_out_of_five_or_a_dash(score, shown):
    assert review.format_score(score) == shown


@pytest.mark.parametrize("verdict, shown", [
    (None, "Not judged yet."),
    ({"valid": True, "criteria": '{"on_task": true, "fluent": false, "short": false}', "reason": "Rambles."},
     "Fails fluent, short. Rambles."),
    ({"valid": True, "criteria": {"on_task": True}, "reason": ""}, "Meets every criterion. The judge gave no reason."),
    ({"valid": False, "criteria": None, "reason": None, "invalid_reason": "not JSON"},
     "The judge's answer could not be read: not JSON"),
    ({"valid": False, "invalid_reason": None}, "The judge's answer could not be read."),
])
def test_a_verdict_reads_as_sentences(verdict, shown):
    assert review.describe_verdict(verdict) == shown


def _run_with_variables(store):
    run = Run(name="r", technique="sampling")
    store.save_run(run, [Item(text="Tea is calm.\nSecond line.", idx=0, variables={"topic": "tea"},
                              model="local/smollm2-135m"),
                         Item(text="Rain falls.", idx=1, model="local/smollm2-135m")])
    return run.run_id, store.items([run.run_id])["item_id"].tolist()


def _no_missing_cell(frame):
    return not any(is_missing(v) or str(v) in ("", "None", "nan", "null") for v in frame.to_numpy().ravel())


def test_the_review_view_has_full_text_variables_source_score_and_tags_without_a_raw_none(store):
    run_id, ids = _run_with_variables(store)
    store.add_tags([ids[0]], ["too short", "tea"])
    store.save_judgements([{"judgement_id": "jd_1", "item_id": ids[0], "run_id": run_id, "judge_model": "m",
                            "rubric_id": "rb", "rubric": "{}", "score": 4.0, "criteria": '{"fluent": true}',
                            "reason": "Fine.", "valid": True, "invalid_reason": None, "tokens_in": 1,
                            "tokens_out": 1, "cost_usd": 0.0, "latency_ms": 1.0, "created_at": now()}])
    view = review.review_items(store, run_id, list(review.STATUSES))
    assert list(view.columns) == review.VIEW_COLUMNS
    first, second = view.to_dict("records")
    assert first["text"] == "Tea is calm.\nSecond line." and first["#"] == 1
    assert first["variables"] == "topic: tea" and second["variables"] == "—"
    assert first["source"] == "local/smollm2-135m · sampling"
    assert first["judge score"] == "4 of 5" and second["judge score"] == "—"
    known = hasattr(DuckStore, "latest_judgements")  # until the store reads judgements, no reasons
    assert first["judge reasons"] == ("Meets every criterion. Fine." if known else review.REASONS_UNKNOWN)
    assert second["judge reasons"] == "Not judged yet."
    assert first["tags"] == "too short, tea" and second["tags"] == "—"
    assert first["output check"] == "The run asked for no output fields." and first["source text"] == "—"
    assert _no_missing_cell(view)
    table = review.table_view(view)
    assert list(table.columns) == review.TABLE_COLUMNS
    assert table["made with"].tolist() == ["topic: tea · local/smollm2-135m · sampling",
                                           "local/smollm2-135m · sampling"]
    assert table["judge"].tolist() == ["4 of 5: Meets every criterion. Fine." if known else "4 of 5", "Not judged yet."]
    assert _no_missing_cell(table)


def test_the_view_takes_the_judges_reasons_from_the_verdicts(store):
    run_id, ids = _run_with_variables(store)
    verdicts = pd.DataFrame([{"item_id": ids[1], "judge_model": "m", "score": 2.0,
                              "criteria": '{"on_task": false}', "reason": "Off topic.", "valid": True,
                              "invalid_reason": None}])
    view = review.review_view(store.items([run_id]), verdicts)
    assert view["judge reasons"].tolist() == ["Not judged yet.", "Fails on_task. Off topic."]
    assert view["judge score"].tolist() == ["—", "—"]  # the score comes with the items: none was stored
    assert review.table_view(view)["judge"].tolist() == ["Not judged yet.", "Fails on_task. Off topic."]


def test_the_judges_latest_reasons_come_from_the_store(store):
    run_id, ids = _run_with_variables(store)
    base = {"item_id": ids[0], "run_id": run_id, "judge_model": "m", "rubric_id": "rb", "rubric": "{}",
            "valid": True, "invalid_reason": None, "tokens_in": 1, "tokens_out": 1, "cost_usd": 0.0,
            "latency_ms": 1.0}
    store.save_judgements([{**base, "judgement_id": "jd_old", "score": 2.0, "criteria": '{"fluent": false}',
                            "reason": "Clumsy.", "created_at": now() - timedelta(minutes=1)},
                           {**base, "judgement_id": "jd_new", "score": 5.0, "criteria": '{"fluent": true}',
                            "reason": "Clear.", "created_at": now()}])
    view = review.review_items(store, run_id, list(review.STATUSES))
    assert view["judge reasons"].tolist() == ["Meets every criterion. Clear.", "Not judged yet."]


def test_the_review_view_keeps_only_the_statuses_asked_for(store, items):
    run_id = store.runs()["run_id"][0]
    review.set_status(store, [items[1]], "rejected")
    assert review.review_items(store, run_id, ["rejected"])["item_id"].tolist() == [items[1]]
    assert review.review_items(store, run_id, [])["item_id"].tolist() == []
    with pytest.raises(SynthError, match="Unknown status 'maybe'"):
        review.review_items(store, run_id, ["new", "maybe"])


def test_the_card_steps_through_the_shown_items_and_wraps_round():
    ids = ["a", "b", "c"]
    assert review.current_item(ids, "b") == "b"
    assert review.current_item(ids, "gone") == "a" and review.current_item([], "a") is None
    assert review.step_item(ids, "b") == "c" and review.step_item(ids, "c") == "a"
    assert review.step_item(ids, "a", -1) == "c" and review.step_item(ids, "gone") == "a"
    assert review.step_item([], "a") is None


def test_a_decision_marks_the_item_and_moves_on(store, items):
    assert review.decide(store, items, items[0], "accepted") == items[1]
    assert review.decide(store, items, items[2], "rejected") == items[0]  # from the last, round to the first
    assert store.items()["status"].tolist() == ["accepted", "new", "rejected"]
    assert review.decide(store, [items[1]], items[1], "accepted") is None  # the only one shown
    with pytest.raises(SynthError, match="A decision is one of accepted, rejected"):
        review.decide(store, items, items[0], "edited")


def test_bulk_actions_apply_to_the_selected_rows_or_else_to_all_shown():
    shown = ["a", "b", "c", "d"]
    assert review.target_items(shown, []) == shown
    assert review.target_items(shown, [3, 1, 3]) == ["b", "d"]
    with pytest.raises(SynthError, match="Row 5 is not shown any more"):
        review.target_items(shown, [4])
    assert review.describe_target(0, 4) == "all 4 shown rows (select rows in the table to narrow it)"
    assert review.describe_target(1, 4) == "the 1 selected row"
    assert review.describe_target(2, 4) == "the 2 selected rows"


def test_bulk_status_and_tags_change_the_items(store, items):
    assert review.bulk_set_status(store, items[:2], "rejected") == 2
    assert store.items()["status"].tolist() == ["rejected", "rejected", "new"]
    assert review.tag_items(store, items[1:], " too short, off topic ,too short,, ") == 2
    review.tag_items(store, items[2:], "off topic, keep")
    tags = [from_json(t, []) for t in store.items()["tags"]]
    assert tags == [[], ["too short", "off topic"], ["too short", "off topic", "keep"]]


@pytest.mark.parametrize("call, message", [
    (lambda s, ids: review.bulk_set_status(s, [], "accepted"), "No items to change"),
    (lambda s, ids: review.tag_items(s, ids, " , "), "Type a tag first"),
    (lambda s, ids: review.tag_items(s, [], "x"), "No items to tag"),
])
def test_bulk_actions_are_validated(store, items, call, message):
    with pytest.raises(SynthError, match=message):
        call(store, items)


def test_an_unchanged_text_is_not_a_new_version(store, items):
    assert review.revise(store, items[0], "alpha one", "  alpha one \n") is None
    assert review.history(store, items[0]).empty
    assert review.revise(store, items[0], "alpha one", "alpha, better", note="typo") == 2
    shown = review.history_view(store, items[0])
    assert shown["note"].tolist() == ["original", "typo"]
    review.revise(store, items[0], "alpha, better", "alpha, best")
    assert review.history_view(store, items[0])["note"].tolist() == ["original", "typo", "—"]
    assert review.history_view(store, items[1]).empty


def test_pass_rates_read_as_percentages_or_a_dash():
    table = review.pass_rate_table({"on_task": 0.8, "fluent": None, "short": 1.0})
    assert table.to_dict("records") == [{"criterion": "on_task", "passed": "80%"},
                                        {"criterion": "fluent", "passed": "—"},
                                        {"criterion": "short", "passed": "100%"}]
