"""Small SQL helpers shared by the table modules: inserts by column name, JSON text, run filters."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

# A fit (a layout or a clustering): (header table, id column, per-item table).
FITS = {"layout": ("layouts", "layout_id", "projections"),
        "clustering": ("clusterings", "clustering_id", "clusters")}

BULK_ROWS = 50


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Insert rows by column name, so added columns never shift positional values."""
    if not rows:
        return
    columns = list(rows[0])
    if len(rows) < BULK_ROWS:
        con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [[row[c] for c in columns] for row in rows])
        return
    # Many rows: one INSERT ... SELECT from a DataFrame (executemany binds row by row, ~1 ms each).
    frame = pd.DataFrame({c: pd.Series([row[c] for row in rows], dtype=object) for c in columns})
    con.register("_insert_rows", frame)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM _insert_rows")
    finally:
        con.unregister("_insert_rows")


def run_filter(alias: str, run_ids: list[str] | None) -> tuple[str, list[str]]:
    """A ``WHERE <alias>.run_id IN (...)`` clause and its parameters; empty for all runs."""
    if not run_ids:
        return "", []
    return f"WHERE {alias}.run_id IN ({', '.join('?' * len(run_ids))})", list(run_ids)


def placeholders(values: list) -> str:
    """``?, ?, ?``: one parameter mark per value, for an ``IN (...)`` list."""
    return ", ".join("?" * len(values))


def to_json(value: Any) -> str | None:
    """A value as the JSON text stored in a JSON column (None stays NULL)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
