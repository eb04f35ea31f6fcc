"""Table ``metrics``: one value per (run, metric), with the parameters and inputs it was computed on."""

from __future__ import annotations

import pandas as pd

from synth.kernel.records import now
from synth.store.sql import run_filter, to_json


class MetricsMixin:
    """Per-run metric values (``metrics``)."""

    def put_metrics(self, run_id: str, values: dict[str, float | None],
                    params: dict[str, dict], inputs_hash: str) -> None:
        """Replace a run's metric values (and the parameters each was computed with)."""
        with self.transaction() as con:
            con.execute("DELETE FROM metrics WHERE run_id = ?", [run_id])
            con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                            [[run_id, name, value, to_json(params.get(name, {})), inputs_hash, now()]
                             for name, value in values.items()])

    def metrics(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """Stored metric values (of these runs, or all) with their run's name, oldest run first."""
        where, params = run_filter("m", run_ids)
        return self.frame(f"""
            SELECT m.run_id, r.name AS run_name, m.name, m.value, m.params, m.inputs_hash,
                   m.computed_at
            FROM metrics m JOIN runs r USING (run_id) {where}
            ORDER BY r.created_at, m.run_id, m.name""", params)

    def metrics_inputs_hash(self, run_id: str) -> str | None:
        """The hash of the inputs a run's stored metrics were computed on (None if it has none)."""
        with self.connect() as con:
            row = con.execute("SELECT any_value(inputs_hash) FROM metrics WHERE run_id = ?",
                              [run_id]).fetchone()
        return row[0] if row else None
