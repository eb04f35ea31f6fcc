"""The Review page through AppTest: one item at a time with keyboard-driven buttons, and bulk work
on the shown rows, on a small run of its own. The page is opened as a bookmark of /review opens it
(the app's navigation runs it first, see ``require_app``), so no test waits for Explore's map;
test_pages opens it from Explore."""

import json

import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from test_pages import TIMEOUT, no_bug

from synth.kernel.records import Item, Run, now
from synth.kernel.text import literal_markdown
from synth.workflows import review

pytestmark = pytest.mark.slow  # a status change starts the per-run metrics, which load the embedding model

TEXTS = ["Tea is calm.\nIt steams.", "Rain falls on the tin roof.", "Owls **hoot** at <b>night</b>."]


@pytest.fixture
def small_run(store):
    """A run of three items (the last one with markup in it), two with variable values."""
    run = Run(name="three items", technique="sampling")
    variables = [{"topic": "tea"}, {"topic": "rain", "tone": "dry"}, {}]
    store.save_run(run, [Item(text=t, idx=i, model="local/smollm2-135m", variables=v)
                         for i, (t, v) in enumerate(zip(TEXTS, variables))])
    return run.run_id


def open_review() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/review.py").run()
    assert no_bug(at) and not at.error, [e.value for e in at.error]
    return at


def statuses(store, run_id) -> list[str]:
    return store.items([run_id]).sort_values("idx")["status"].tolist()


def header(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Item "))


def shown_strings(at) -> list[str]:
    """Every string the page shows as text, markdown or a table cell."""
    cells = [str(v) for d in at.dataframe for v in d.value.to_numpy().ravel()]
    return [t.value for t in at.text] + [m.value for m in at.markdown] + [c.value for c in at.caption] + cells


def test_the_card_shows_the_full_text_its_variables_source_and_verdict(store, small_run):
    at = open_review()
    assert header(at) == "**Item 1 of 3 shown** · number 1 in the run · status **new** · version 1"
    assert [t.value for t in at.text] == [TEXTS[0]]  # whole, line break and all, as text (never markdown)
    facts = [m.value for m in at.markdown]
    assert {"**Variables**  \ntopic: tea", "**Source**  \nlocal/smollm2-135m · sampling",
            "**Judge score —**  \nNot judged yet.", "**Tags**  \n—"} <= set(facts)
    buttons = {key: at.button(key=key).proto.shortcut for key in
               ("review_previous", "review_accept", "review_reject", "review_next")}
    assert buttons == {"review_previous": "p", "review_accept": "a", "review_reject": "x", "review_next": "n"}
    assert at.multiselect(key="review_statuses").options == list(review.STATUSES)  # no blank option
    table = at.dataframe[0].value
    assert table["text"].tolist() == TEXTS
    assert table["made with"].tolist() == ["topic: tea · local/smollm2-135m · sampling",
                                           "tone: dry · topic: rain · local/smollm2-135m · sampling",
                                           "local/smollm2-135m · sampling"]
    assert not [s for s in shown_strings(at) if s in ("None", "nan", "null", "") or "None" in s.split()]


def test_accept_reject_and_next_step_through_the_run(store, small_run):
    at = open_review()
    at.button(key="review_accept").click().run()
    assert statuses(store, small_run) == ["accepted", "new", "new"]
    assert at.success[0].value == "Item 1 accepted."
    assert header(at).startswith("**Item 2 of 3 shown** · number 2") and at.text[0].value == TEXTS[1]
    at.button(key="review_next").click().run()
    assert at.text[0].value == TEXTS[2]
    at.button(key="review_reject").click().run()
    assert statuses(store, small_run) == ["accepted", "new", "rejected"]
    assert header(at).startswith("**Item 1 of 3 shown**")  # round to the first again
    at.button(key="review_previous").click().run()
    assert header(at).startswith("**Item 3 of 3 shown** · number 3 in the run · status **rejected**")


def test_deciding_while_a_status_is_filtered_out_moves_to_the_next_shown(store, small_run):
    at = open_review()
    at.multiselect(key="review_statuses").set_value(["new"]).run()
    at.button(key="review_reject").click().run()
    assert header(at).startswith("**Item 1 of 2 shown** · number 2 in the run")
    at.button(key="review_reject").click().run()
    at.button(key="review_reject").click().run()
    assert statuses(store, small_run) == ["rejected"] * 3
    assert at.info[0].value == "None of this run's 3 items has the statuses chosen. Choose more statuses above."
    assert no_bug(at)
    at.multiselect(key="review_statuses").set_value([]).run()
    assert at.info[0].value == "Choose at least one status above to see this run's items."


def test_bulk_accept_and_tag_apply_to_all_shown_rows_when_none_is_selected(store, small_run):
    at = open_review()
    assert "Apply to all 3 shown rows (select rows in the table to narrow it):" in [m.value for m in at.markdown]
    at.text_input(key="review_tag_text").set_value("checked, batch 1")
    at.button(key="review_bulk_tag").click().run()
    assert at.success[0].value == "Tagged 3 items."
    tags = [json.loads(t) for t in store.items([small_run])["tags"]]
    assert tags == [["checked", "batch 1"]] * 3
    assert at.dataframe[0].value["tags"].tolist() == ["checked, batch 1"] * 3
    at.button(key="review_bulk_accept").click().run()
    assert statuses(store, small_run) == ["accepted"] * 3 and at.success[0].value == "Marked 3 items accepted."
    at.text_input(key="review_tag_text").set_value(" , ")
    at.button(key="review_bulk_tag").click().run()
    assert at.error[0].value.startswith("Type a tag first") and no_bug(at)


def test_an_edit_in_the_card_is_a_new_version_with_history(store, small_run):
    at = open_review()
    item_id = store.items([small_run]).sort_values("idx")["item_id"].iloc[0]
    at.button(key="review_save_edit").click().run()
    assert at.info[0].value == "The text is unchanged: nothing to save."
    at.text_area(key=f"review_edit_{item_id}").set_value("Tea is calm and warm.")
    at.button(key="review_save_edit").click().run()
    assert at.success[0].value.startswith("Item 1 saved as version 2")
    assert at.text[0].value == "Tea is calm and warm."
    assert header(at).endswith("status **edited** · version 2")
    history = at.dataframe[0].value  # the version history, inside the card
    assert history["text"].tolist() == [TEXTS[0], "Tea is calm and warm."]
    assert history["note"].tolist() == ["original", "—"]


def test_a_judged_item_shows_its_score_out_of_five(store, small_run):
    first = store.items([small_run]).sort_values("idx")["item_id"].iloc[0]
    store.save_judgements([{"judgement_id": "jd_1", "item_id": first, "run_id": small_run, "judge_model": "m",
                            "rubric_id": "rb", "rubric": "{}", "score": 2.0, "criteria": '{"fluent": false}',
                            "reason": "Too short.", "valid": True, "invalid_reason": None, "tokens_in": 1,
                            "tokens_out": 1, "cost_usd": 0.0, "latency_ms": 1.0, "created_at": now()}])
    at = open_review()
    reasons = "Fails fluent. Too short." if hasattr(store, "latest_judgements") else review.REASONS_UNKNOWN
    assert f"**Judge score 2 of 5**  \n{literal_markdown(reasons)}" in [m.value for m in at.markdown]
    assert at.dataframe[0].value["judge"].tolist()[0] == ("2 of 5: " + reasons if reasons != review.REASONS_UNKNOWN
                                                          else "2 of 5")
