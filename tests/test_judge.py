import json

import pytest
from openai_server import json_reply

from synth.analysis.metrics import compute_run_metrics
from synth.generate.config import RunConfig
from synth.generate.judge import Criterion, Rubric, judge_items
from synth.kernel.errors import SynthError
from synth.outputs.export import export_items
from synth.workflows.pipeline import generate_run


def test_rubric_from_a_checklist_and_from_yaml():
    rubric = Rubric.from_text("on topic: stays on the topic\n- concise: short\n")
    assert [c.name for c in rubric.criteria] == ["on_topic", "concise"]
    assert rubric.criteria[1].description == "short"
    yaml_rubric = Rubric.from_text("name: mine\ncriteria:\n  - {name: safe, description: no harm}\n"
                                   "instructions: Be strict.")
    assert yaml_rubric.name == "mine" and yaml_rubric.instructions == "Be strict."
    assert Rubric.from_dict(yaml_rubric.to_dict()).rubric_id == yaml_rubric.rubric_id
    assert yaml_rubric.rubric_id != rubric.rubric_id


@pytest.mark.parametrize("make, message", [
    (lambda: Rubric.from_text("   \n"), "rubric is empty"),
    (lambda: Rubric(criteria=[]), "at least one criterion"),
    (lambda: Rubric(criteria=[Criterion("not ok!", "x")]), "not a plain name"),
    (lambda: Rubric(criteria=[Criterion("a", "x"), Criterion("a", "y")]), "unique"),
    (lambda: Rubric.from_dict({"name": "x"}), "no 'criteria'"),
    (lambda: Rubric.from_dict({"criteria": [3]}), "needs a name"),
])
def test_rubric_validation(make, message):
    with pytest.raises(SynthError, match=message):
        make()


def test_judge_prompt_shows_item_prompt_fields_and_checklist():
    messages = Rubric().messages({"text": "T", "rendered_prompt": "P", "fields": {"a": 1}})
    body = messages[0]["content"]
    for part in ("<<<\nT\n>>>", "<<<\nP\n>>>", '{"a": 1}', "- on_task:", '"score"'):
        assert part in body


def _run(store, srv, n=4):
    return generate_run(store, RunConfig(template="Say {w}", variables={"w": ["a", "b", "c", "d"]}, n=n,
                                         model="openai/test-model", api_base=srv.api_base, concurrency=1))


@pytest.mark.slow
def test_judgements_are_stored_and_usable_as_a_filter(make_server, store, tmp_path):
    srv = make_server(reply=json_reply)
    run = _run(store, srv)
    ids = store.items([run.run_id])["item_id"].tolist()
    result = judge_items(store, ids, "openai/test-model", Rubric(), api_base=srv.api_base, concurrency=1)
    assert result.n_items == 4 and result.n_valid == 4
    rows = store.frame("SELECT * FROM judgements ORDER BY item_id")
    assert len(rows) == 4 and rows["valid"].all()
    assert set(rows["score"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert result.score_mean == pytest.approx(rows["score"].mean())
    criteria = [json.loads(c) for c in rows["criteria"]]
    assert set(criteria[0]) == {"on_task", "fluent", "self_contained"}
    assert result.pass_rates["on_task"] == pytest.approx(sum(c["on_task"] for c in criteria) / 4)
    judged = store.items([run.run_id]).set_index("item_id")
    assert judged["judge_score"].notna().all()
    metrics = compute_run_metrics(store, run.run_id)
    assert metrics["judge_score_mean"] == pytest.approx(result.score_mean)
    threshold = sorted(judged["judge_score"])[2]
    out = tmp_path / "good.jsonl"
    n = export_items(store, out, min_score=threshold)
    assert n == int((judged["judge_score"] >= threshold).sum())
    assert all(json.loads(line)["judge_score"] >= threshold for line in out.read_text().splitlines())
    # the judge runs greedily
    assert {r["body"]["temperature"] for r in srv.config.requests[4:]} == {0.0}


def test_an_invalid_verdict_is_kept_with_its_reason(make_server, store):
    srv = make_server(reply=lambda n, p: "I think it is fine." if '"score"' in p else f"text {n}")
    run = _run(store, srv, n=2)
    result = judge_items(store, store.items([run.run_id])["item_id"].tolist(), "openai/test-model",
                         api_base=srv.api_base)
    rows = store.frame("SELECT valid, invalid_reason, score FROM judgements")
    assert result.n_valid == 0 and result.score_mean is None
    assert list(rows["valid"]) == [False, False] and rows["score"].isna().all()
    assert set(rows["invalid_reason"]) == {"no JSON object found"}


def test_judging_nothing_is_refused(store):
    with pytest.raises(SynthError, match="No items to judge"):
        judge_items(store, [], "openai/x")


@pytest.mark.slow
def test_the_embedded_model_can_judge(store, server):
    run = _run(store, server, n=1)
    result = judge_items(store, store.items([run.run_id])["item_id"].tolist(), "local/smollm2-135m")
    row = store.frame("SELECT judge_model, valid, score, tokens_out, cost_usd FROM judgements").iloc[0]
    assert row["judge_model"] == "local/smollm2-135m" and row["tokens_out"] > 0 and row["cost_usd"] == 0
    assert result.n_items == 1
    assert row["valid"] == (row["score"] == row["score"])  # a score exactly when the verdict parsed
