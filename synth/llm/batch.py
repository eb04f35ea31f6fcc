"""Provider-grade batching: many chat calls at once, through litellm's async API.

Reads: a list of :class:`Call` and :class:`BatchSettings`. Writes: the ``response_cache`` table.

- A concurrency limit caps calls in flight.
- 429, 5xx, timeouts and dropped connections are retried with exponential backoff, honouring
  ``Retry-After``; a call that still fails is reported with its reason and the batch goes on.
- Authentication, permission and unknown-model errors stop the whole batch (every call would
  fail the same way) and nothing is kept.
- Responses are cached by (model, messages, parameters, sample index): rerunning the same batch
  costs nothing, and a new ``regenerate`` number gives new samples.
- A budget stops new calls once the spend reaches it; calls already in flight finish.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from synth.kernel import settings
from synth.kernel.buffer import BufferedWriter
from synth.kernel.errors import SynthError
from synth.kernel.records import content_hash
from synth.llm import partial, providers

if TYPE_CHECKING:
    from synth.store import DuckStore

MAX_CONCURRENCY = 256
RETRY_AFTER_CAP_S = 120.0
PARTIAL_EVERY_S = 0.25  # how often texts being written are handed to on_partial
RETRYABLE = {"RateLimitError", "InternalServerError", "ServiceUnavailableError", "Timeout",
             "APIConnectionError", "APIError", "BadGatewayError"}
FATAL = {"AuthenticationError", "PermissionDeniedError", "NotFoundError"}


@dataclass
class Call:
    """One chat call of a batch; ``idx`` is the item's position in the run."""

    idx: int
    messages: list[dict]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. response_format


@dataclass
class BatchSettings:
    model: str
    temperature: float = settings.DEFAULT_TEMPERATURE
    max_tokens: int = settings.DEFAULT_MAX_TOKENS
    top_p: float | None = None
    seed: int = settings.DEFAULT_SEED
    api_base: str | None = None
    concurrency: int = settings.DEFAULT_CONCURRENCY
    budget_usd: float | None = None
    regenerate: int = 0
    max_retries: int = field(default_factory=lambda: settings.get("max_retries"))
    backoff_base_s: float = field(default_factory=lambda: settings.get("backoff_base"))
    backoff_max_s: float = field(default_factory=lambda: settings.get("backoff_max"))
    use_cache: bool = True

    def validate(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise SynthError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}, got {self.concurrency}.")
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise SynthError(f"The budget must be a positive amount in USD, got {self.budget_usd}.")
        if self.max_retries < 0 or self.regenerate < 0:
            raise SynthError("max_retries and regenerate must not be negative.")

    def call_params(self, idx: int) -> dict[str, Any]:
        """Sampling parameters of one call; the seed moves with the item and the regeneration."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p,
                "seed": self.seed + idx + 7919 * self.regenerate}


@dataclass
class CallResult:
    idx: int
    completion: providers.Completion | None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    cached: bool = False
    skipped: bool = False  # not started: the budget was reached

    @property
    def ok(self) -> bool:
        return self.completion is not None


@dataclass
class BatchOutcome:
    results: list[CallResult]
    spent_usd: float | None
    wall_s: float
    budget_reached: bool
    cancelled: bool = False  # stopped by the caller: calls not started were not made

    @property
    def succeeded(self) -> list[CallResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[CallResult]:
        return [r for r in self.results if not r.ok and not r.skipped]

    @property
    def skipped(self) -> list[CallResult]:
        return [r for r in self.results if r.skipped]


def cache_key(model: str, messages: list[dict], params: dict, extra: dict, idx: int, regenerate: int) -> str:
    return content_hash({"model": model, "messages": messages, "params": params, "extra": extra,
                         "sample": [idx, regenerate]})


def _retry_after(exc: Exception) -> float | None:
    """Seconds the provider asked us to wait, from a Retry-After header if it sent one."""
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers is None:
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
        if headers is None:
            continue
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value is None:
            continue
        try:
            return min(max(float(value), 0.0), RETRY_AFTER_CAP_S)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0), RETRY_AFTER_CAP_S)
            except (TypeError, ValueError):
                return None
    return None


def _kind(exc: Exception) -> str:
    kind = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if kind == "APIError" and isinstance(status, int) and status < 500:
        return "BadRequestError"
    return kind


def check_budget_model(model: str, budget_usd: float | None) -> None:
    """A budget needs a price: refuse models litellm cannot price (local models cost 0)."""
    if budget_usd is None or providers.is_local(model):
        return
    if not providers.has_price(model):
        raise SynthError(f"litellm has no price for {model}, so a budget cannot be enforced. "
                         "Remove the budget, or use a model litellm can price.")


async def _one(call: Call, cfg: BatchSettings, kwargs: dict, state: dict, sem: asyncio.Semaphore,
               rng: random.Random) -> CallResult:
    litellm = providers.get_litellm()
    params = cfg.call_params(call.idx)
    async with sem:
        if state["fatal"] is not None:
            return CallResult(call.idx, None, "batch stopped", "Stopped", 0, skipped=True)
        if state["cancel"] is not None and state["cancel"].is_set():
            return CallResult(call.idx, None, "cancelled", "Cancelled", 0, skipped=True)
        if cfg.budget_usd is not None and state["spent"] >= cfg.budget_usd:
            state["budget_reached"] = True
            return CallResult(call.idx, None, f"budget of ${cfg.budget_usd:g} reached", "Budget",
                              0, skipped=True)
        if state["partials"] is not None:  # this task's calls report their text as it is written
            partial.watch(lambda text: state["partials"].__setitem__(call.idx, text))
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await litellm.acompletion(
                    model=cfg.model, messages=call.messages, drop_params=True, num_retries=0,
                    max_retries=0, timeout=settings.get("request_timeout"),
                    **{k: v for k, v in params.items() if v is not None}, **call.extra, **kwargs)
            except Exception as exc:
                kind = _kind(exc)
                if kind in FATAL:
                    state["fatal"] = providers.provider_error(cfg.model, cfg.api_base, exc, state["secrets"])
                    return CallResult(call.idx, None, str(state["fatal"]), kind, attempt)
                if kind in RETRYABLE and attempt <= cfg.max_retries:
                    wait = _retry_after(exc)
                    if wait is None:
                        wait = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
                        wait *= 0.5 + rng.random() / 2  # jitter, so retries do not arrive together
                    await asyncio.sleep(wait)
                    continue
                message = str(providers.provider_error(cfg.model, cfg.api_base, exc, state["secrets"]))
                return CallResult(call.idx, None, message, kind, attempt)
            completion = providers.to_completion(cfg.model, response, (time.perf_counter() - started) * 1000)
            if completion.cost_usd is not None:
                state["spent"] += completion.cost_usd
            return CallResult(call.idx, completion, attempts=attempt)


async def _report_partials(partials: dict[int, str], on_partial: Callable[[dict[int, str]], None]) -> None:
    """Every PARTIAL_EVERY_S, hand ``on_partial`` the text so far of the calls still being
    written, when it changed (on the event loop's thread: the caller's)."""
    shown: dict[int, str] = {}
    while True:
        await asyncio.sleep(PARTIAL_EVERY_S)
        now = dict(partials)
        if now != shown:
            on_partial(now)
            shown = now


async def _run(calls: list[Call], cfg: BatchSettings, kwargs: dict, secrets: list[str],
               cached: dict[int, CallResult], on_result: Callable[[CallResult], None] | None,
               cancel: threading.Event | None = None,
               on_partial: Callable[[dict[int, str]], None] | None = None) -> tuple[list[CallResult], dict]:
    sem = asyncio.Semaphore(cfg.concurrency)
    state: dict[str, Any] = {"spent": 0.0, "fatal": None, "budget_reached": False, "secrets": secrets,
                             "cancel": cancel, "partials": {} if on_partial else None}
    rng = random.Random(cfg.seed)
    results: list[CallResult] = []
    for idx in sorted(cached):
        results.append(cached[idx])
        if on_result:
            on_result(cached[idx])
    tasks = [asyncio.ensure_future(_one(c, cfg, kwargs, state, sem, rng)) for c in calls if c.idx not in cached]
    ticker = asyncio.ensure_future(_report_partials(state["partials"], on_partial)) if on_partial else None
    try:
        for future in asyncio.as_completed(tasks):
            result = await future
            if state["partials"] is not None:
                state["partials"].pop(result.idx, None)
            results.append(result)
            if on_result:
                on_result(result)
    finally:
        if ticker is not None:
            ticker.cancel()
    results.sort(key=lambda r: r.idx)
    return results, state


class _CacheWriter(BufferedWriter[tuple[str, dict]]):
    """Answers go into the response cache as they arrive, so a process killed mid-batch keeps
    what it paid for and the same batch run again makes only the calls not yet answered."""

    def __init__(self, store: DuckStore | None, model: str, keys: dict[int, str]):
        super().__init__(lambda rows: store.put_cached_responses(dict(rows)))
        self.store, self.model, self.keys = store, model, keys

    def answer(self, result: CallResult) -> None:
        if self.store is None or not result.ok or result.cached:
            return
        self.add((self.keys[result.idx], {"model": self.model, "completion": result.completion.__dict__}))


def run_batch(calls: list[Call], cfg: BatchSettings, store: DuckStore | None = None,
              on_result: Callable[[CallResult], None] | None = None,
              cancel: threading.Event | None = None,
              on_partial: Callable[[dict[int, str]], None] | None = None) -> BatchOutcome:
    """Run ``calls`` concurrently; raise SynthError if the provider refuses the whole batch. Once
    ``cancel`` is set no new call starts (those in flight finish, and are kept). ``on_partial``
    gets {call idx: text so far} of the calls being written, as it grows (the embedded model only)."""
    cfg.validate()
    check_budget_model(cfg.model, cfg.budget_usd)
    kwargs = providers.credentials(cfg.model, cfg.api_base)
    secrets = providers.secret_values(kwargs)
    keys = {c.idx: cache_key(cfg.model, c.messages, cfg.call_params(c.idx), c.extra, c.idx, cfg.regenerate)
            for c in calls}
    cached: dict[int, CallResult] = {}
    if store is not None and cfg.use_cache:
        hits = store.cached_responses(list(keys.values()))
        for c in calls:
            hit = hits.get(keys[c.idx])
            if hit is not None:
                completion = providers.Completion(**{**hit, "cost_usd": 0.0})  # already paid for
                cached[c.idx] = CallResult(c.idx, completion, attempts=0, cached=True)
    writer = _CacheWriter(store, cfg.model, keys)

    def arrived(result: CallResult) -> None:
        writer.answer(result)
        if on_result:
            on_result(result)

    providers.get_litellm()  # imported once, before the clock starts (1.5 s the first time)
    started = time.perf_counter()
    try:
        results, state = asyncio.run(_run(calls, cfg, kwargs, secrets, cached, arrived, cancel, on_partial))
    finally:
        writer.flush(final=True)  # after a fatal error or Ctrl-C too: answers are paid for
    wall = time.perf_counter() - started
    if state["fatal"] is not None:
        raise state["fatal"]
    costs = [r.completion.cost_usd for r in results if r.ok]
    spent = None if any(c is None for c in costs) else float(sum(costs))
    cancelled = any(r.error_kind == "Cancelled" for r in results)
    return BatchOutcome(results, spent, wall, state["budget_reached"], cancelled)


def describe_failures(outcome: BatchOutcome, limit: int = 3) -> str:
    """A short account of why calls failed, for messages."""
    reasons: dict[str, int] = {}
    for r in outcome.failed:
        reasons[r.error or r.error_kind or "unknown"] = reasons.get(r.error or r.error_kind or "unknown", 0) + 1
    parts = [f"{n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:limit]]
    return "; ".join(parts)
