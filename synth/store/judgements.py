"""Table ``judgements``: an LLM judge's score of an item against a rubric."""

from __future__ import annotations

from synth.store.sql import insert_rows


class JudgementsMixin:
    """Judge scores (``judgements``)."""

    def save_judgements(self, rows: list[dict]) -> None:
        """Store judgements (one dict per row, by column name) in one transaction."""
        with self.transaction() as con:
            insert_rows(con, "judgements", rows)
