"""The text of a call while the embedded model is still writing it.

Whoever makes a call sets ``watch(on_text)`` in its own context (an asyncio task, or a thread);
the embedded model then calls ``on_text(text so far)`` after each token it samples. Sampling is
not touched: the context's ``sample`` is wrapped, the token it returns passed on unchanged, so the
texts are the same with or without a watcher. Remote providers report nothing until they answer.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_ON_TEXT: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "synth_partial_text", default=None)


def watch(on_text: Callable[[str], None] | None) -> None:
    """Report the text of the calls made from this context (task or thread) to ``on_text``."""
    _ON_TEXT.set(on_text)


def observe(llama: Any) -> None:
    """Wrap a llama.cpp context's ``sample`` so that, during ``reporting``, each token it samples
    is reported with the text before it."""
    sample = llama.sample

    def observed(*args, **kwargs):
        token = sample(*args, **kwargs)
        state = getattr(llama, "_synth_partial", None)
        if state is not None:
            on_text, tokens = state
            tokens.append(token)
            try:
                on_text(llama.detokenize(tokens).decode("utf-8", "ignore").strip())
            except Exception:  # noqa: BLE001 - a watcher's failure must not cost the call
                llama._synth_partial = None
        return token

    llama.sample = observed


@contextmanager
def reporting(llama: Any) -> Iterator[None]:
    """While a call runs on ``llama`` (an ``observe``d context), report its tokens to this
    context's watcher, if it has one."""
    on_text = _ON_TEXT.get()
    llama._synth_partial = (on_text, []) if on_text is not None else None
    try:
        yield
    finally:
        llama._synth_partial = None
