"""The embedded model's pool of llama.cpp contexts: calls run on several at once, the same
messages, parameters and seed give the same text on any context, a call's latency is its own
time, and unloading closes every context."""

from __future__ import annotations

import threading
import time

import pytest

from synth.kernel.errors import SynthError
from synth.llm import providers
from synth.llm.batch import BatchSettings, Call, run_batch

EMBEDDED = "smollm2-135m"
MODEL = providers.LOCAL_PREFIX + EMBEDDED
PROMPTS = ["Name a colour.", "Write one sentence about a tent.", "Name a fruit.",
           "Say something about rivers.", "Describe a lamp in a few words.", "Write a greeting."]


def _pool(monkeypatch, contexts: int, threads: int = 1) -> providers._LlamaPool:
    monkeypatch.setenv("SYNTH_LOCAL_CONTEXTS", str(contexts))
    monkeypatch.setenv("SYNTH_LOCAL_THREADS", str(threads))
    providers._unload_llama(EMBEDDED)
    return providers._load_pool(EMBEDDED)


@pytest.fixture(autouse=True)
def unload_after():
    yield
    providers._unload_llama(EMBEDDED)  # the next test module gets the pool its settings ask for


def _chat(prompt: str, seed: int, max_tokens: int = 24) -> dict:
    return providers.local_chat(EMBEDDED, [{"role": "user", "content": prompt}], temperature=1.0,
                                max_tokens=max_tokens, seed=seed)


def _spy_on_calls(monkeypatch, pool) -> list[tuple[int, float, float]]:
    """Record (context number, start, end) of every completion; the real method still runs."""
    spans: list[tuple[int, float, float]] = []
    for number, llama in enumerate(pool.contexts):
        real = llama.create_chat_completion

        def spy(*args, _real=real, _number=number, **kwargs):
            start = time.perf_counter()
            try:
                return _real(*args, **kwargs)
            finally:
                spans.append((_number, start, time.perf_counter()))

        monkeypatch.setattr(llama, "create_chat_completion", spy)
    return spans


def _in_threads(jobs: list) -> list:
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i):
        barrier.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_pool_has_the_configured_number_of_contexts_each_with_its_threads(monkeypatch):
    pool = _pool(monkeypatch, 3, threads=1)
    assert len(pool.contexts) == 3 and len({id(c) for c in pool.contexts}) == 3
    assert [c.context_params.n_threads for c in pool.contexts] == [1, 1, 1]
    assert [c.context_params.n_threads_batch for c in pool.contexts] == [1, 1, 1]
    assert providers._load_llama(EMBEDDED) is pool.contexts[0]
    assert providers._load_pool(EMBEDDED) is pool  # loaded once


def test_two_calls_overlap_in_time_on_two_contexts(monkeypatch):
    pool = _pool(monkeypatch, 2)
    spans = _spy_on_calls(monkeypatch, pool)
    outs = _in_threads([lambda: _chat("Name a colour.", 1, 32), lambda: _chat("Name a fruit.", 2, 32)])
    assert all(o["choices"][0]["message"]["content"].strip() for o in outs)
    assert sorted(n for n, _, _ in spans) == [0, 1]  # each call had its own context
    (_, start_a, end_a), (_, start_b, end_b) = spans
    assert max(start_a, start_b) < min(end_a, end_b)  # and they ran at the same time


def test_a_lone_call_runs_on_the_first_context(monkeypatch):
    pool = _pool(monkeypatch, 2)
    spans = _spy_on_calls(monkeypatch, pool)
    for seed in range(3):
        _chat("Name a colour.", seed, 4)
    assert [n for n, _, _ in spans] == [0, 0, 0]


def test_one_context_runs_one_call_at_a_time(monkeypatch):
    pool = _pool(monkeypatch, 1)
    spans = _spy_on_calls(monkeypatch, pool)
    _in_threads([lambda: _chat("Name a colour.", 1, 16), lambda: _chat("Name a fruit.", 2, 16)])
    (_, _, end_first), (_, start_second, _) = sorted(spans, key=lambda s: s[1])
    assert start_second >= end_first


def _batch_texts(concurrency: int) -> list[str]:
    calls = [Call(i, [{"role": "user", "content": p}]) for i, p in enumerate(PROMPTS)]
    outcome = run_batch(calls, BatchSettings(model=MODEL, temperature=1.0, max_tokens=24, seed=40,
                                             concurrency=concurrency, use_cache=False))
    assert len(outcome.succeeded) == len(PROMPTS), outcome.failed[:1]
    return [r.completion.text for r in outcome.results]


def test_same_texts_with_one_context_and_with_two_running_concurrently(monkeypatch):
    _pool(monkeypatch, 1)
    one = _batch_texts(concurrency=1)
    pool = _pool(monkeypatch, 2)
    spans = _spy_on_calls(monkeypatch, pool)
    two = _batch_texts(concurrency=4)
    assert {n for n, _, _ in spans} == {0, 1}  # both contexts ran some of the prompts
    assert two == one
    assert len(set(one)) == len(PROMPTS) and all(t.strip() for t in one)


def test_same_seed_same_text_on_either_context(monkeypatch):
    pool = _pool(monkeypatch, 2)
    spans = _spy_on_calls(monkeypatch, pool)
    # Both at once, same prompt and seed: one runs on context 0, the other on context 1.
    a, b = _in_threads([lambda: _chat("Name a colour.", 9), lambda: _chat("Name a colour.", 9)])
    assert sorted(n for n, _, _ in spans) == [0, 1]
    text = a["choices"][0]["message"]["content"]
    assert text == b["choices"][0]["message"]["content"] == _chat("Name a colour.", 9)["choices"][0]["message"]["content"]
    assert text.strip()


def test_latency_is_the_calls_own_time_not_its_wait_for_a_context(monkeypatch):
    pool = _pool(monkeypatch, 1)
    spans = _spy_on_calls(monkeypatch, pool)
    start = time.perf_counter()
    outs = _in_threads([lambda: _chat("Write one sentence about a tent.", 1, 32),
                        lambda: _chat("Write one sentence about a lamp.", 2, 32)])
    wall_ms = (time.perf_counter() - start) * 1000
    latencies = [o[providers.LATENCY_KEY] for o in outs]
    # One context runs them one after the other: their own times fit in the wall time; had the
    # second counted its wait for the first, the two would add up to more than the wall time.
    assert sum(latencies) <= wall_ms
    # Each latency covers its own completion (and no more than a few ms besides).
    own = sorted((end - begin) * 1000 for _, begin, end in spans)
    assert sorted(latencies)[0] >= own[0] and sorted(latencies)[1] >= own[1]
    assert max(latencies) < own[0] + own[1]


def test_unload_closes_every_context_and_the_next_call_loads_again(monkeypatch):
    pool = _pool(monkeypatch, 2)
    contexts = list(pool.contexts)
    assert all(c._ctx.ctx is not None for c in contexts)
    providers._unload_llama(EMBEDDED)
    assert all(c._ctx.ctx is None for c in contexts)
    assert EMBEDDED not in providers._POOLS
    assert _chat("Name a colour.", 1, 4)["choices"][0]["message"]["content"] is not None
    assert providers._POOLS[EMBEDDED] is not pool


def test_unload_waits_for_a_running_call_then_closes_its_context(monkeypatch):
    pool = _pool(monkeypatch, 2)
    spans = _spy_on_calls(monkeypatch, pool)
    closed: dict[int, float] = {}
    for number, llama in enumerate(pool.contexts):
        def close(_real=llama.close, _number=number):
            closed[_number] = time.perf_counter()
            _real()
        monkeypatch.setattr(llama, "close", close)
    done: list[dict] = []
    worker = threading.Thread(target=lambda: done.append(_chat("Write one sentence about a tent.", 1, 48)))
    worker.start()
    while len(pool._free) == 2:
        time.sleep(0.001)  # until the call has borrowed its context
    providers._unload_llama(EMBEDDED)
    worker.join()
    assert done and done[0]["choices"][0]["message"]["content"].strip()  # the call finished
    [(number, _, ended)] = spans
    assert closed[number] >= ended  # its context was closed after the call, not under it
    assert sorted(closed) == [0, 1]
    assert all(c._ctx.ctx is None for c in pool.contexts)


def test_close_at_exit_closes_every_loaded_context(monkeypatch):
    pool = _pool(monkeypatch, 2)
    providers._close_llamas()
    assert all(c._ctx.ctx is None for c in pool.contexts)
    assert providers._POOLS == {}


def test_changing_the_setting_builds_a_new_pool(monkeypatch):
    old = _pool(monkeypatch, 1)
    monkeypatch.setenv("SYNTH_LOCAL_CONTEXTS", "2")
    _chat("Name a colour.", 1, 4)
    new = providers._POOLS[EMBEDDED]
    assert len(new.contexts) == 2 and new is not old
    assert old.contexts[0]._ctx.ctx is None


@pytest.mark.parametrize("variable", ["SYNTH_LOCAL_CONTEXTS", "SYNTH_LOCAL_THREADS"])
def test_fewer_than_one_context_or_thread_is_refused(monkeypatch, variable):
    monkeypatch.setenv(variable, "0")
    with pytest.raises(SynthError, match="must each be at least 1"):
        _chat("Name a colour.", 1, 4)


def test_every_context_evaluates_every_prompt_whole(monkeypatch):
    """Each call starts from an empty context on whichever context it runs, so no call reuses the
    KV cache another call left there (the cause of seed-dependent texts differing by history)."""
    pool = _pool(monkeypatch, 2)
    evals: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for number, llama in enumerate(pool.contexts):
        def spy(tokens, _real=llama.eval, _llama=llama, _number=number):
            evals[_number].append((_llama.n_tokens, len(tokens)))
            return _real(tokens)
        monkeypatch.setattr(llama, "eval", spy)
    prompts = ["Name a colour.", "Name a colour.", "Name a fruit.", "Name a colour."]
    outs = _in_threads([lambda p=p, s=s: _chat(p, s, 4) for s, p in enumerate(prompts)])
    firsts = sorted((n, t) for calls in evals.values() for n, t in calls if n == 0)
    assert len(firsts) == len(prompts)  # one whole-prompt evaluation per call, from position 0
    assert sorted(t for _, t in firsts) == sorted(o["usage"]["prompt_tokens"] for o in outs)
    assert evals[0] and evals[1]


def test_texts_being_written_are_reported_as_they_grow_and_the_texts_do_not_change(monkeypatch):
    from synth.llm import batch

    _pool(monkeypatch, 2)
    plain = _batch_texts(concurrency=4)
    monkeypatch.setattr(batch, "PARTIAL_EVERY_S", 0.01)
    reports: list[dict[int, str]] = []
    calls = [Call(i, [{"role": "user", "content": p}]) for i, p in enumerate(PROMPTS)]
    outcome = run_batch(calls, BatchSettings(model=MODEL, temperature=1.0, max_tokens=24, seed=40,
                                             concurrency=4, use_cache=False), on_partial=reports.append)
    watched = [r.completion.text for r in outcome.results]
    assert watched == plain  # watching a call does not change what it writes
    seen: dict[int, list[str]] = {}
    for report in reports:
        assert len(report) <= 2  # only the calls running on the 2 contexts are being written
        for idx, text in report.items():
            seen.setdefault(idx, []).append(text)
    assert len(seen) >= len(PROMPTS) - 1  # (a call may finish between two reports)
    for idx, texts in seen.items():
        final = plain[idx].strip()
        assert all(final.startswith(t) for t in texts), (idx, texts, final)
        assert len(texts[-1]) >= len(texts[0])  # the text grows
    assert any(len(set(texts)) > 1 for texts in seen.values())
    assert all(report != later for report, later in zip(reports, reports[1:]))  # only changes are sent
