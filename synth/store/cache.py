"""Table ``response_cache``: model completions by cache key, so a repeated request costs nothing."""

from __future__ import annotations

import json

import pandas as pd

from synth.kernel.records import now
from synth.store.sql import to_json


class CacheMixin:
    """Cached completions (``response_cache``)."""

    def cached_responses(self, keys: list[str]) -> dict[str, dict]:
        """Cached completions by cache key (only the keys that are there)."""
        if not keys:
            return {}
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"cache_key": keys}))
            rows = con.execute("SELECT c.cache_key, c.completion FROM response_cache c "
                               "JOIN wanted USING (cache_key)").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def put_cached_responses(self, entries: dict[str, dict]) -> None:
        """Store completions under their cache keys (``{"model": ..., "completion": {...}}``)."""
        if not entries:
            return
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO response_cache VALUES (?, ?, ?, ?)",
                            [[k, v["model"], to_json(v["completion"]), now()] for k, v in entries.items()])
