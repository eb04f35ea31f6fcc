"""Tables ``runs`` and ``failures``: a run with its items in one transaction, and run look-ups."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run, from_json, now
from synth.store.prompts import upsert_prompt
from synth.store.sql import insert_rows, to_json


def _run_row(run: Run, items: list[Item]) -> dict:
    return {
        "run_id": run.run_id, "name": run.name, "technique": run.technique,
        "prompt_id": run.prompt_id, "model": run.model, "params": to_json(run.params),
        "source": run.source, **run.totals(items), "wall_s": run.wall_s, "created_at": run.created_at,
        "status": run.status, "n_failed": len(run.failures), "n_skipped": run.n_skipped,
        "budget_usd": run.budget_usd, "config": to_json(run.config), "role": run.role,
    }


def _item_row(it: Item) -> dict:
    return {
        "item_id": it.item_id, "run_id": it.run_id, "idx": it.idx, "text": it.text,
        "text_hash": it.text_hash, "prompt_id": it.prompt_id, "rendered_prompt": it.rendered_prompt,
        "variables": to_json(it.variables), "model": it.model, "params": to_json(it.params),
        "tokens_in": it.tokens_in, "tokens_out": it.tokens_out, "latency_ms": it.latency_ms,
        "cost_usd": it.cost_usd, "finish_reason": it.finish_reason, "status": it.status,
        "created_at": it.created_at, "meta": to_json(it.meta), "source_ref": it.source_ref,
        "source_text": it.source_text, "fields": to_json(it.fields), "valid": it.valid,
        "invalid_reason": it.invalid_reason, "cached": it.cached, "version": 1,
    }


def insert_run(con: duckdb.DuckDBPyConnection, run: Run, items: list[Item], prompt: PromptSpec | None) -> None:
    """Write a run, its prompt version (if given), its items and its failures."""
    if not items:
        raise SynthError(f"Nothing to save: run {run.name!r} has no items.")
    if prompt is not None:
        run.prompt_id = upsert_prompt(con, prompt)
    insert_rows(con, "runs", [_run_row(run, items)])
    for it in items:
        it.run_id = run.run_id
        it.prompt_id = it.prompt_id or run.prompt_id
    insert_rows(con, "items", [_item_row(it) for it in items])
    insert_rows(con, "failures", [{"run_id": run.run_id, **f, "created_at": now()} for f in run.failures])


class RunsMixin:
    """Runs (``runs``, ``failures``)."""

    # -- a run saved as it is made: begin, add items as they arrive, finish ------------------------

    def begin_run(self, run: Run, prompt: PromptSpec | None = None) -> None:
        """Write run ``run`` (status ``running``, no items yet) and its prompt version, so its items
        can be added as they arrive."""
        with self.transaction() as con:
            if prompt is not None:
                run.prompt_id = upsert_prompt(con, prompt)
            insert_rows(con, "runs", [{**_run_row(run, []), "status": "running"}])

    def add_items(self, run: Run, items: list[Item]) -> int:
        """Add ``items`` to the begun run ``run``; an item whose position is already there is
        skipped (a resumed batch never duplicates one). Return how many were added."""
        if not items:
            return 0
        with self.transaction() as con:
            have = {r[0] for r in con.execute("SELECT idx FROM items WHERE run_id = ?", [run.run_id]).fetchall()}
            new = [it for it in items if it.idx not in have]
            for it in new:
                it.run_id = run.run_id
                it.prompt_id = it.prompt_id or run.prompt_id
            insert_rows(con, "items", [_item_row(it) for it in new])
        return len(new)

    def run_item_indices(self, run_id: str) -> set[int]:
        """Positions (``idx``) of the items run ``run_id`` holds."""
        with self.connect() as con:
            return {r[0] for r in con.execute("SELECT idx FROM items WHERE run_id = ?", [run_id]).fetchall()}

    def finish_run(self, run: Run) -> None:
        """Set a begun run's totals from the items it holds, its status, wall time and failures
        (the failures of an earlier attempt are replaced)."""
        with self.transaction() as con:
            con.execute("""
                UPDATE runs SET
                    n_items = t.n, tokens_in = t.tin, tokens_out = t.tout, cost_usd = t.cost,
                    latency_s = t.lat, status = ?, n_failed = ?, n_skipped = ?, wall_s = ?
                FROM (SELECT count(*) AS n, coalesce(sum(tokens_in), 0) AS tin,
                             coalesce(sum(tokens_out), 0) AS tout,
                             CASE WHEN bool_or(cost_usd IS NULL) THEN NULL ELSE coalesce(sum(cost_usd), 0) END AS cost,
                             coalesce(sum(latency_ms), 0) / 1000.0 AS lat
                      FROM items WHERE run_id = ?) t
                WHERE runs.run_id = ?""",
                        [run.status, len(run.failures), run.n_skipped, run.wall_s, run.run_id, run.run_id])
            con.execute("DELETE FROM failures WHERE run_id = ?", [run.run_id])
            insert_rows(con, "failures", [{"run_id": run.run_id, **f, "created_at": now()} for f in run.failures])

    def run_row(self, run_id: str) -> pd.Series:
        """Run ``run_id``'s row of ``runs`` as stored (JSON columns as text)."""
        frame = self.frame("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if frame.empty:
            raise SynthError(f"No run {run_id!r}. List runs with: python -m synth sql "
                             "\"SELECT run_id, name FROM runs\"")
        return frame.iloc[0]

    def run_failures(self, run_id: str, limit: int = 20) -> pd.DataFrame:
        """The first ``limit`` failed calls of run ``run_id`` (idx, error_kind, message), by position."""
        return self.frame(f"SELECT idx, error_kind, message FROM failures WHERE run_id = ? ORDER BY idx "
                          f"LIMIT {int(limit)}", [run_id])

    def set_run_status(self, run_id: str, status: str) -> None:
        with self.connect() as con:
            con.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])

    def drop_empty_run(self, run_id: str) -> bool:
        """Delete a begun run that holds no item (nothing was made); True if it was deleted."""
        with self.transaction() as con:
            if con.execute("SELECT count(*) FROM items WHERE run_id = ?", [run_id]).fetchone()[0]:
                return False
            con.execute("DELETE FROM failures WHERE run_id = ?", [run_id])
            con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        return True

    def unfinished_runs(self, config_hash: str | None = None) -> pd.DataFrame:
        """Runs begun and not finished (``running``, ``interrupted`` or ``cancelled``), newest
        first; only those made from configuration ``config_hash`` if given."""
        clause, params = ("AND params->>'config_hash' = ?", [config_hash]) if config_hash else ("", [])
        return self.frame(f"""SELECT run_id, name, status, (SELECT count(*) FROM items i WHERE i.run_id = r.run_id)
                                     AS n_items, CAST(params->>'n' AS INTEGER) AS n_planned, created_at
                              FROM runs r WHERE status IN ('running', 'interrupted', 'cancelled') {clause}
                              ORDER BY created_at DESC""", params)

    def save_run(self, run: Run, items: list[Item], prompt: PromptSpec | None = None) -> str:
        """Write a run, its prompt and all its items in one transaction; return the run id."""
        self.save_runs([(run, items, prompt)])
        return run.run_id

    def save_runs(self, batch: list[tuple[Run, list[Item], PromptSpec | None]]) -> None:
        """Write several runs in one transaction: all of them or none."""
        with self.transaction() as con:
            for run, items, prompt in batch:
                insert_run(con, run, items, prompt)

    def runs(self) -> pd.DataFrame:
        """Every run with its prompt's name, version and version label, oldest first."""
        return self.frame("""
            SELECT r.*, p.name AS prompt_name, p.version AS prompt_version, p.label AS version_label
            FROM runs r LEFT JOIN prompts p USING (prompt_id)
            ORDER BY r.created_at, r.run_id""")

    def resolve_run(self, run: str) -> str:
        """Accept a run id or a run name; return the run id."""
        with self.connect() as con:
            rows = con.execute("SELECT run_id FROM runs WHERE run_id = ? OR name = ? "
                               "ORDER BY created_at DESC", [run, run]).fetchall()
        if not rows:
            raise SynthError(f"No run called {run!r}. List runs with: python -m synth sql "
                             "\"SELECT run_id, name FROM runs\"")
        return rows[0][0]

    def run_settings(self, run_id: str) -> dict:
        """A run's ``model`` (None if unknown), ``params`` and ``config`` (decoded; {} if none)."""
        with self.connect() as con:
            row = con.execute("SELECT model, params, config FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise SynthError(f"No run {run_id!r}. List runs with: python -m synth sql "
                             "\"SELECT run_id, name FROM runs\"")
        return {"model": row[0], "params": from_json(row[1], {}), "config": from_json(row[2], {})}

    def run_summary(self, run_id: str) -> pd.Series:
        """One run's run_id, name, model, n_items, prompt_id, prompt_name, version and label (the
        last three from its prompt version; missing if it has none)."""
        frame = self.frame("""SELECT r.run_id, r.name, r.model, r.n_items, r.prompt_id, p.name AS prompt_name,
                                     p.version, p.label FROM runs r LEFT JOIN prompts p USING (prompt_id)
                              WHERE r.run_id = ?""", [run_id])
        if frame.empty:
            raise SynthError(f"No run {run_id!r}. List runs with: python -m synth sql "
                             "\"SELECT run_id, name FROM runs\"")
        return frame.iloc[0]

    def version_run_ids(self, prompt_id: str, exclude: str | None = None) -> list[str]:
        """Ids of the runs made with prompt version ``prompt_id`` (but not ``exclude``), newest first."""
        with self.connect() as con:
            rows = con.execute("SELECT run_id FROM runs WHERE prompt_id = ? AND run_id IS DISTINCT FROM ? "
                               "ORDER BY created_at DESC", [prompt_id, exclude]).fetchall()
        return [r[0] for r in rows]

    def find_import(self, sha256: str, text_column: str) -> dict | None:
        """The oldest run imported from a file with these bytes (``params.source_sha256``) and this
        text column: its ``run_id``, ``name`` and ``created_at``; None if there is none."""
        with self.connect() as con:
            row = con.execute("""SELECT run_id, name, created_at FROM runs
                                 WHERE params->>'source_sha256' = ?
                                   AND coalesce(params->>'text_column', 'text') = ?
                                 ORDER BY created_at, run_id LIMIT 1""", [sha256, text_column]).fetchone()
        return None if row is None else {"run_id": row[0], "name": row[1], "created_at": row[2]}

    def newest_run_config(self, name: str, prompt_id: str) -> dict:
        """The configuration (decoded) of the newest run of version ``prompt_id``, else of the
        newest run of any version of the prompt ``name`` that has one; {} if none does."""
        with self.connect() as con:
            row = con.execute("""SELECT r.config FROM runs r JOIN prompts p USING (prompt_id)
                                 WHERE p.name = ? AND r.config IS NOT NULL
                                 ORDER BY r.prompt_id = ? DESC, r.created_at DESC LIMIT 1""",
                              [name, prompt_id]).fetchone()
        return json.loads(row[0]) if row else {}
