"""Tables of fits: ``layouts`` (with ``projections``) and ``clusterings``
(with ``clusters`` and ``cluster_labels``)."""

from __future__ import annotations

import duckdb
import pandas as pd

from synth.kernel.records import now
from synth.store.sql import FITS, insert_rows, to_json


def _insert_fit_rows(con: duckdb.DuckDBPyConnection, kind: str, fit_id: str, rows: pd.DataFrame) -> None:
    _, id_column, per_item = FITS[kind]
    rows = rows.assign(**{id_column: fit_id})
    columns = [id_column] + [c for c in rows.columns if c != id_column]
    con.register("new_rows", rows[columns])
    con.execute(f"INSERT INTO {per_item} ({', '.join(columns)}) SELECT * FROM new_rows")
    con.unregister("new_rows")


class FitsMixin:
    """Layouts and clusterings of the dataset, and the names of clusters."""

    def save_fit(self, kind: str, fit_id: str, method: str, embed_model: str, params: dict,
                 items_hash: str, rows: pd.DataFrame, extra: dict | None = None) -> None:
        """Store a layout or a clustering (its header and one row per item) in one transaction."""
        header, id_column, _ = FITS[kind]
        values = {id_column: fit_id, "method": method, "embed_model": embed_model, "params": to_json(params),
                  "items_hash": items_hash, "n_items": len(rows), "created_at": now(),
                  **{k: (to_json(v) if isinstance(v, dict) else v) for k, v in (extra or {}).items()}}
        with self.transaction() as con:
            insert_rows(con, header, [values])
            _insert_fit_rows(con, kind, fit_id, rows)

    def append_fit_rows(self, kind: str, fit_id: str, rows: pd.DataFrame) -> None:
        """Add items to an existing layout (placed by it) without moving the others."""
        with self.transaction() as con:
            _insert_fit_rows(con, kind, fit_id, rows)

    def layout_fitted_items(self, layout_id: str) -> pd.DataFrame:
        """The items a layout was fitted on that still exist: item_id, x, y, text, by item id."""
        return self.frame("SELECT p.item_id, p.x, p.y, i.text FROM projections p JOIN items i USING (item_id) "
                          "WHERE p.layout_id = ? AND p.placed = 'fit' ORDER BY p.item_id", [layout_id])

    def find_fit(self, kind: str, method: str, embed_model: str, params: dict, items_hash: str | None
                 ) -> tuple[str, pd.DataFrame] | None:
        """(id, per-item rows) of the newest layout or clustering with these parameters, fitted on
        exactly these items (or on any items when ``items_hash`` is None)."""
        header, id_column, per_item = FITS[kind]
        same_items = "" if items_hash is None else "AND items_hash = ? "
        with self.connect() as con:
            row = con.execute(f"SELECT {id_column} FROM {header} WHERE method = ? AND embed_model = ? "
                              f"AND params = ?::JSON {same_items}ORDER BY created_at DESC LIMIT 1",
                              [method, embed_model, to_json(params)] + ([] if items_hash is None else [items_hash])
                              ).fetchone()
            if row is None:
                return None
            rows = con.execute(f"SELECT * EXCLUDE ({id_column}) FROM {per_item} "
                               f"WHERE {id_column} = ?", [row[0]]).df()
        rows["item_id"] = rows["item_id"].astype(object)  # Python strings: ``isin`` and joins with items, 50x faster
        return row[0], rows

    def fit_header(self, kind: str, fit_id: str) -> dict:
        """A layout's or clustering's header row as a dict ({} if there is none)."""
        header, id_column, _ = FITS[kind]
        frame = self.frame(f"SELECT * FROM {header} WHERE {id_column} = ?", [fit_id])
        return frame.iloc[0].to_dict() if len(frame) else {}

    def save_cluster_labels(self, clustering_id: str, labels: pd.DataFrame) -> None:
        """Names of a clustering's clusters (cluster_id, size, keywords, llm_label, llm_model); the
        display name (the LLM's if there is one) is copied to ``clusters.label``."""
        with self.transaction() as con:
            con.execute("DELETE FROM cluster_labels WHERE clustering_id = ?", [clustering_id])
            con.register("new_labels", labels.assign(clustering_id=clustering_id))
            con.execute("INSERT INTO cluster_labels (clustering_id, cluster_id, size, keywords, llm_label, "
                        "llm_model) SELECT clustering_id, cluster_id, size, keywords, llm_label, llm_model "
                        "FROM new_labels")
            con.execute("UPDATE clusters c SET label = coalesce(n.llm_label, n.keywords) FROM new_labels n "
                        "WHERE c.clustering_id = ? AND c.cluster_id = n.cluster_id", [clustering_id])
            con.unregister("new_labels")

    def cluster_labels(self, clustering_id: str) -> pd.DataFrame:
        """A clustering's cluster names (cluster_id, size, keywords, llm_label, llm_model) by cluster."""
        return self.frame("SELECT cluster_id, size, keywords, llm_label, llm_model FROM cluster_labels "
                          "WHERE clustering_id = ? ORDER BY cluster_id", [clustering_id])
