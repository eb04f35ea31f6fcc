"""Table ``judgements``: an LLM judge's score of an item against a rubric."""

from __future__ import annotations

import pandas as pd

from synth.store.sql import insert_rows, placeholders


class JudgementsMixin:
    """Judge scores (``judgements``)."""

    def save_judgements(self, rows: list[dict]) -> None:
        """Store judgements (one dict per row, by column name) in one transaction."""
        with self.transaction() as con:
            insert_rows(con, "judgements", rows)

    def latest_judgements(self, item_ids: list[str]) -> pd.DataFrame:
        """Each item's latest judgement (model, score, criteria, reason, validity); items never
        judged are absent."""
        if not item_ids:
            return pd.DataFrame(columns=["item_id", "judge_model", "score", "criteria", "reason", "valid",
                                         "invalid_reason", "created_at"])
        return self.frame(f"""
            SELECT item_id, judge_model, score, criteria, reason, valid, invalid_reason, created_at
            FROM judgements WHERE item_id IN ({placeholders(item_ids)})
            QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY created_at DESC) = 1""", list(item_ids))
