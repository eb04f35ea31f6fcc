"""Background jobs and runs saved as they are made: kill, resume, cancel, and leaving the page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, wait_for_jobs
from streamlit.testing.v1 import AppTest

from synth.generate.config import RunConfig
from synth.kernel.buffer import BufferedWriter
from synth.kernel.errors import SynthError
from synth.store import DuckStore
from synth.store.jobs import owner_alive, this_process
from synth.workflows import jobs
from synth.workflows.pipeline import generate_run, resume_run

N = 300


def generate_command(db, api_base: str, n: int = N) -> list[str]:
    return [sys.executable, "-m", "synth", "generate", "--db", str(db), "--template", "Question {x}",
            "--var", "x=" + ",".join(str(i) for i in range(n)), "--n", str(n), "--model", "openai/test-model",
            "--api-base", api_base, "--concurrency", "2", "--max-tokens", "8", "--run-name", "killed"]


def asked(srv) -> list[str]:
    return [r["body"]["messages"][-1]["content"] for r in srv.config.requests]


def kill_after(srv, command: list[str], answers: int) -> None:
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(srv.config.requests) < answers and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def kept(store: DuckStore, run_id: str) -> tuple[set[str], set[str]]:
    """The prompts run ``run_id`` holds an item for, and those it holds an item or a cached answer for."""
    import json

    from synth.generate.execute import prepare
    from synth.llm.batch import cache_key

    items = set(store.frame("SELECT rendered_prompt FROM items WHERE run_id = ?", [run_id])["rendered_prompt"])
    cfg = RunConfig.from_dict(json.loads(store.frame("SELECT config FROM runs WHERE run_id = ?", [run_id])["config"][0]))
    prep = prepare(cfg, store)  # the same plan again: cache keys hash each call's messages and parameters
    keys = {cache_key(prep.model, p.messages, prep.batch.call_params(p.idx), {}, p.idx, 0): p.rendered_prompt
            for p in prep.plan}
    return items, items | {keys[k] for k in store.cached_responses(list(keys))}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["resume", "same command"])
def test_a_killed_generation_resumes_into_the_same_run_asking_only_what_was_not_answered(
        make_server, tmp_path, how):
    srv = make_server(latency_s=0.1)  # 20 answers a second at concurrency 2
    db = tmp_path / "killed.duckdb"
    DuckStore(db)  # migrated before the clock starts
    command = generate_command(db, srv.api_base)
    kill_after(srv, command, 40)
    answered = len(srv.config.requests)
    store = DuckStore(db)
    runs = store.runs()
    assert len(runs) == 1 and runs.iloc[0]["status"] == "running"  # as the killed process left it
    run_id = runs.iloc[0]["run_id"]
    have_item, have_answer = kept(store, run_id)
    # Saved as they arrived: lost at most the calls in flight (2) and the last 0.5 s (~10).
    assert answered - 14 <= len(have_item) <= answered and have_item <= have_answer

    listing = subprocess.run([sys.executable, "-m", "synth", "resume", "--db", str(db)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and f"{run_id}  killed  interrupted: {len(have_item)} of {N} items" in listing.stdout
    srv.config.requests.clear()
    again = command if how == "same command" else [sys.executable, "-m", "synth", "resume", run_id, "--db", str(db)]
    done = subprocess.run(again, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"run {run_id} (killed): {N} items" in done.stdout and "complete" in done.stdout

    asked_again = asked(srv)
    assert len(asked_again) == len(set(asked_again)) == N - len(have_answer)  # each missing call once
    assert not set(asked_again) & have_answer  # no answered call made again
    store = DuckStore(db)
    assert len(store.runs()) == 1  # the same run, not a new one
    counts = store.frame("SELECT count(*) AS n, count(DISTINCT idx) AS d FROM items").iloc[0]
    assert counts["n"] == counts["d"] == N  # no item duplicated
    states = store.frame("SELECT state FROM jobs ORDER BY created_at")["state"].tolist()
    assert states == ["interrupted", "done"]


def test_a_cancelled_job_keeps_its_items_and_resumes_to_the_end(make_server, store):
    srv = make_server(latency_s=0.15)
    cfg = RunConfig(template="Item {x}", variables={"x": [str(i) for i in range(30)]}, n=30,
                    model="openai/test-model", api_base=srv.api_base, concurrency=2, max_tokens=8,
                    run_name="stopped")
    control = jobs.start_generation(store.path, cfg)
    while control.done < 4 and control.active:
        time.sleep(0.02)
    assert jobs.cancel(control.job_id)
    wait_for_jobs()
    assert control.state == "cancelled" and control.result.status == "cancelled"
    run = store.runs().iloc[0]
    made = int(run["n_items"])
    assert run["status"] == "cancelled" and 4 <= made < 30
    assert len(srv.config.requests) == made  # the calls in flight finished, and were kept
    assert "stopped" in jobs.resumable_runs(store)["name"].tolist()

    srv.config.requests.clear()
    result = resume_run(store, "stopped")
    assert result.run_id == run["run_id"] and result.n_items == 30 and result.status == "complete"
    assert len(srv.config.requests) == 30 - made
    assert store.frame("SELECT count(DISTINCT idx) AS d FROM items")["d"][0] == 30
    assert jobs.resumable_runs(store).empty


def test_a_job_survives_leaving_the_page_and_its_progress_shows_on_every_page(make_server, store):
    srv = make_server(latency_s=0.2)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/generate.py").run()
    at.text_input(key="generate_model").set_value("openai/test-model")
    at.text_input(key="generate_api_base").set_value(srv.api_base)
    at.number_input(key="generate_n").set_value(12)
    at.number_input(key="generate_concurrency").set_value(1)
    at.text_input(key="generate_run_name").set_value("left behind")
    at.text_area(key="generate_template_sampling").set_value("Say {w}")
    at.run()
    at.text_area(key="generate_var_w").set_value("one\ntwo\nthree")
    at.button(key="generate_button").click().run()
    assert not at.error, [e.value for e in at.error]
    at.switch_page("pages/metrics.py").run()  # the user leaves Generate while the batch runs
    bars = [p for p in at.sidebar.get("progress")]
    assert any("Generating left behind" in p.proto.text for p in bars), [p.proto.text for p in bars]
    wait_for_jobs()
    run = store.runs().iloc[0]
    assert run["name"] == "left behind" and run["n_items"] == 12 and run["status"] == "complete"
    assert len(srv.config.requests) == 12
    at.switch_page("pages/generate.py").run()
    # The form is as the user left it, and the finished batch is reported there.
    assert at.text_input(key="generate_run_name").value == "left behind"
    assert at.text_area(key="generate_template_sampling").value == "Say {w}"


@pytest.mark.slow
def test_the_sidebar_cancels_the_job_its_button_names_and_no_other(make_server, store):
    srv = make_server(latency_s=1.0)  # one call at a time: 200 s each, both still running when the page is
    made = []
    for name in ("first **bold**", "second"):
        cfg = RunConfig(template="Item {x}", variables={"x": [str(i) for i in range(200)]}, n=200,
                        model="openai/test-model", api_base=srv.api_base, concurrency=1, max_tokens=8,
                        run_name=name)
        made.append(jobs.start_generation(store.path, cfg))
    first, second = made
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/metrics.py").run()
        buttons = {b.key: b.label for b in at.sidebar.button if b.key.startswith("common_cancel_")}
        assert buttons == {f"common_cancel_{first.job_id}": "Cancel first \\*\\*bold\\*\\*",
                           f"common_cancel_{second.job_id}": "Cancel second"}
        at.button(key=f"common_cancel_{first.job_id}").click().run()
        assert first.cancel.is_set() and not second.cancel.is_set() and second.active
        assert [b.key for b in at.sidebar.button if b.key.startswith("common_cancel_")] == [
            f"common_cancel_{second.job_id}"]
        assert not at.exception
    finally:
        for job in made:
            jobs.cancel(job.job_id)
        wait_for_jobs()
    assert first.state == "cancelled" and 0 < first.done < 200


def test_a_busy_file_keeps_rows_for_the_next_write_and_never_drops_them():
    written: list[list[int]] = []
    fails = {"left": 3}

    def write(rows):
        if fails["left"]:
            fails["left"] -= 1
            raise SynthError("Cannot open database: it is locked")
        written.append(rows)

    writer = BufferedWriter(write, every_s=0.05, final_wait_s=10)
    for i in range(20):
        writer.add(i)
        time.sleep(0.01)
    writer.flush(final=True)
    assert sorted(sum(written, [])) == list(range(20)) and fails["left"] == 0


def test_a_final_write_that_cannot_reach_the_file_says_so():
    def write(rows):
        raise SynthError("Cannot open database: it is locked")

    writer = BufferedWriter(write, every_s=10, final_wait_s=0.0)
    writer.add(1)
    with pytest.raises(SynthError, match="locked"):
        writer.flush(final=True)
    assert writer.pending == [1]


def test_a_job_of_a_process_that_is_gone_is_interrupted_and_a_live_one_is_not(store, server):
    generate_run(store, RunConfig(template="hi {x}", variables={"x": ["a", "b"]}, n=2,
                                  model="openai/test-model", api_base=server.api_base))
    live = store.create_job("generate", "live one")
    dead = store.create_job("generate", "dead one")
    store.update_job(dead, state="running")
    with store.connect() as con:  # a pid that does not exist on this host
        con.execute("UPDATE jobs SET owner = ? WHERE job_id = ?",
                    [this_process().rsplit(":", 2)[0] + ":999999999:1", dead])
    assert owner_alive(this_process())
    assert store.mark_interrupted() == [dead]
    assert store.job(dead)["state"] == "interrupted" and store.job(live)["state"] == "running"


def test_resume_refuses_a_complete_run_and_says_why(store, server):
    result = generate_run(store, RunConfig(template="hi {x}", variables={"x": ["a", "b"]}, n=2,
                                           model="openai/test-model", api_base=server.api_base))
    with pytest.raises(SynthError, match="is complete: there is nothing to resume"):
        resume_run(store, result.run_id)


HOLD_FILE = """
import sys, time, duckdb
while True:  # the batch opens the file every 0.5 s: take it between two writes
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.01)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.mark.slow
def test_a_batch_keeps_every_answer_while_another_process_holds_the_file_past_the_lock_wait(
        make_server, tmp_path):
    from synth.store.connection import LOCK_WAIT_S

    srv = make_server(latency_s=0.1)
    db = tmp_path / "shared.duckdb"
    store = DuckStore(db)
    cfg = RunConfig(template="Line {x}", variables={"x": [str(i) for i in range(80)]}, n=80,
                    model="openai/test-model", api_base=srv.api_base, concurrency=2, max_tokens=8)
    control = jobs.start_generation(str(db), cfg)
    while len(srv.config.requests) < 10:
        time.sleep(0.02)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(db), str(LOCK_WAIT_S + 5)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"  # another process has the file from here on
    wait_for_jobs(timeout=300)
    holder.wait()
    assert control.state == "done", control.error
    assert len(srv.config.requests) == 80  # each call made once
    counts = store.frame("SELECT count(*) AS n, count(DISTINCT idx) AS d FROM items").iloc[0]
    assert counts["n"] == counts["d"] == 80 and store.runs().iloc[0]["status"] == "complete"
    assert store.frame("SELECT count(*) AS n FROM response_cache")["n"][0] == 80
