"""The batch engine against the local OpenAI-compatible server, reached through litellm itself."""

import pytest

from synth.kernel.errors import SynthError
from synth.llm.batch import BatchSettings, Call, cache_key, run_batch

MODEL = "openai/test-model"


def calls(n, prefix="hello"):
    return [Call(i, [{"role": "user", "content": f"{prefix} {i}"}]) for i in range(n)]


@pytest.mark.slow
def test_concurrency_limit_is_respected_and_used(make_server):
    srv = make_server(latency_s=0.3)
    outcome = run_batch(calls(24), BatchSettings(model=MODEL, api_base=srv.api_base, concurrency=8))
    assert len(outcome.succeeded) == 24 and not outcome.failed
    assert srv.config.max_in_flight == 8
    assert [r.idx for r in outcome.results] == list(range(24))


def test_429_is_retried_until_it_succeeds(make_server):
    srv = make_server(fail_status=429, fail_until=2)
    outcome = run_batch(calls(1), BatchSettings(model=MODEL, api_base=srv.api_base, concurrency=1))
    assert outcome.results[0].ok and outcome.results[0].attempts == 3
    assert len(srv.config.requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(make_server, status):
    srv = make_server(fail_status=status, fail_until=1)
    outcome = run_batch(calls(1), BatchSettings(model=MODEL, api_base=srv.api_base))
    assert outcome.results[0].ok and outcome.results[0].attempts == 2


def test_retry_after_is_honoured(make_server):
    srv = make_server(fail_status=429, fail_until=1, retry_after="1")
    outcome = run_batch(calls(1), BatchSettings(model=MODEL, api_base=srv.api_base))
    first, second = (r["at"] for r in srv.config.requests)
    assert outcome.results[0].ok
    assert second - first >= 0.95  # the backoff alone would have waited about 0.01 s


def test_timeouts_are_retried(make_server, monkeypatch):
    monkeypatch.setenv("SYNTH_REQUEST_TIMEOUT", "0.5")
    srv = make_server(slow_first=1, slow_s=2.0)
    outcome = run_batch(calls(1), BatchSettings(model=MODEL, api_base=srv.api_base))
    assert outcome.results[0].ok and outcome.results[0].attempts == 2


def test_exhausted_retries_become_failures_with_reasons(make_server):
    srv = make_server(fail_status=503)
    outcome = run_batch(calls(2), BatchSettings(model=MODEL, api_base=srv.api_base, max_retries=2))
    assert not outcome.succeeded and len(outcome.failed) == 2
    assert all(r.attempts == 3 and r.error_kind == "ServiceUnavailableError" for r in outcome.failed)
    assert "unavailable" in outcome.failed[0].error
    assert len(srv.config.requests) == 6


def test_bad_request_is_not_retried(make_server):
    srv = make_server(fail_status=400)
    outcome = run_batch(calls(2), BatchSettings(model=MODEL, api_base=srv.api_base))
    assert [r.attempts for r in outcome.failed] == [1, 1]
    assert "refused the request" in outcome.failed[0].error


def test_authentication_failure_stops_the_whole_batch(make_server, monkeypatch):
    srv = make_server(required_key="sk-good-00000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad-111111111")
    with pytest.raises(SynthError, match="rejected the API key"):
        run_batch(calls(10), BatchSettings(model=MODEL, api_base=srv.api_base, concurrency=1))
    assert len(srv.config.requests) == 1


def test_cache_makes_a_rerun_free_and_regenerate_gives_new_samples(make_server, store):
    srv = make_server()
    cfg = BatchSettings(model=MODEL, api_base=srv.api_base)
    first = run_batch(calls(3), cfg, store)
    again = run_batch(calls(3), cfg, store)
    assert len(srv.config.requests) == 3
    assert all(r.cached and r.completion.cost_usd == 0.0 for r in again.results)
    assert [r.completion.text for r in again.results] == [r.completion.text for r in first.results]
    fresh = run_batch(calls(3), BatchSettings(model=MODEL, api_base=srv.api_base, regenerate=1), store)
    assert len(srv.config.requests) == 6 and not any(r.cached for r in fresh.results)
    seeds = sorted(r["body"]["seed"] for r in srv.config.requests)
    assert seeds == [0, 1, 2, 7919, 7920, 7921]
    assert store.frame("SELECT count(*) AS n FROM response_cache")["n"][0] == 6


def test_cache_key_depends_on_model_messages_params_and_sample():
    m = [{"role": "user", "content": "x"}]
    base = cache_key("a", m, {"temperature": 1}, {}, 0, 0)
    assert base == cache_key("a", m, {"temperature": 1}, {}, 0, 0)
    assert len({base, cache_key("b", m, {"temperature": 1}, {}, 0, 0),
                cache_key("a", [{"role": "user", "content": "y"}], {"temperature": 1}, {}, 0, 0),
                cache_key("a", m, {"temperature": 0}, {}, 0, 0), cache_key("a", m, {"temperature": 1}, {}, 1, 0),
                cache_key("a", m, {"temperature": 1}, {}, 0, 1)}) == 6


def test_budget_stops_new_calls(make_server):
    srv = make_server()
    probe = run_batch(calls(1), BatchSettings(model="openai/gpt-4o-mini", api_base=srv.api_base))
    one_call = probe.results[0].completion.cost_usd
    assert one_call > 0
    outcome = run_batch(calls(10, "again"), BatchSettings(model="openai/gpt-4o-mini", api_base=srv.api_base,
                                                          concurrency=1, budget_usd=one_call * 2.5))
    assert len(outcome.succeeded) == 3 and len(outcome.skipped) == 7 and outcome.budget_reached
    assert outcome.spent_usd == pytest.approx(sum(r.completion.cost_usd for r in outcome.succeeded))
    assert outcome.spent_usd < one_call * 2.5 + one_call


def test_budget_needs_a_priced_model(make_server):
    srv = make_server()
    with pytest.raises(SynthError, match="no price"):
        run_batch(calls(1), BatchSettings(model=MODEL, api_base=srv.api_base, budget_usd=1.0))


@pytest.mark.slow
def test_local_model_through_the_batch(store):
    outcome = run_batch(calls(2, "Name a fruit number"), BatchSettings(model="local/smollm2-135m", max_tokens=8))
    assert all(r.ok and r.completion.cost_usd == 0.0 and r.completion.tokens_out > 0 for r in outcome.results)


@pytest.mark.slow
def test_local_latency_is_the_call_itself_not_the_wait_for_the_model(monkeypatch):
    # Four calls in flight queue on one embedded-model context: each one's latency must be its own
    # compute time, so together they fit in the batch's wall time (with the wait included they were 2x it).
    monkeypatch.setenv("SYNTH_LOCAL_CONTEXTS", "1")
    outcome = run_batch(calls(4, "Write one sentence about the number"),
                        BatchSettings(model="local/smollm2-135m", max_tokens=16, concurrency=4, seed=0))
    latencies = [r.completion.latency_ms for r in outcome.results]
    assert all(r.ok for r in outcome.results) and min(latencies) > 0
    assert sum(latencies) <= outcome.wall_s * 1000


KILLED_BATCH = """
import sys
from synth.llm.batch import BatchSettings, Call, run_batch
from synth.store import DuckStore
calls = [Call(i, [{"role": "user", "content": f"question {i}"}]) for i in range(int(sys.argv[3]))]
run_batch(calls, BatchSettings(model="openai/test-model", api_base=sys.argv[2], concurrency=2, max_tokens=8),
          DuckStore(sys.argv[1]))
"""


@pytest.mark.slow
def test_a_batch_killed_midway_keeps_every_answer_and_the_rerun_pays_only_for_the_rest(make_server, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    from synth.store import DuckStore

    srv = make_server(latency_s=0.1)  # 20 answers a second at concurrency 2
    db, n = tmp_path / "killed.duckdb", 300
    DuckStore(db)  # migrated before the clock starts
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BATCH, str(db), srv.api_base, str(n)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while len(srv.config.requests) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    answered = len(srv.config.requests)
    assert 40 <= answered < n
    kept = DuckStore(db).frame("SELECT count(*) AS n FROM response_cache")["n"][0]
    # Lost at most: the calls in flight (2) and what arrived since the last write (0.5 s, ~10).
    assert answered - 14 <= kept <= answered
    srv.config.requests.clear()
    outcome = run_batch(calls_like(n), BatchSettings(model="openai/test-model", api_base=srv.api_base,
                                                     concurrency=2, max_tokens=8), DuckStore(db))
    assert sum(r.cached for r in outcome.results) == kept and len(srv.config.requests) == n - kept
    asked_again = {r["body"]["messages"][-1]["content"] for r in srv.config.requests}
    assert len(asked_again) == n - kept  # no call twice


def calls_like(n):
    return [Call(i, [{"role": "user", "content": f"question {i}"}]) for i in range(n)]
