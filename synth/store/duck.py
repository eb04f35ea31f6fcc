"""``DuckStore``: the database file (``connection``) with one mixin per table family.

Reads: nothing but the database file. Writes: the tables documented in README.md, each through the
module named for it (``prompts``, ``runs``, ``items``, ``embeddings``, ``metrics``, ``fits``,
``cache``, ``judgements``, ``jobs``); the SQL console reads through ``console``.
"""

from __future__ import annotations

from synth.store.cache import CacheMixin
from synth.store.connection import Database
from synth.store.console import ConsoleMixin
from synth.store.embeddings import EmbeddingsMixin
from synth.store.fits import FitsMixin
from synth.store.items import ItemsMixin
from synth.store.jobs import JobsMixin
from synth.store.judgements import JudgementsMixin
from synth.store.metrics import MetricsMixin
from synth.store.prompts import PromptsMixin
from synth.store.runs import RunsMixin


class DuckStore(PromptsMixin, RunsMixin, ItemsMixin, EmbeddingsMixin, MetricsMixin, FitsMixin, CacheMixin,
                JudgementsMixin, JobsMixin, ConsoleMixin, Database):
    """The project's database file. Creates it and applies migrations on first use."""
