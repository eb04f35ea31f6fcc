"""Table ``embeddings``: one vector per (embedding model, text hash).

``stored_vectors`` keeps the vectors it read in memory, per database and model, until a vector is
stored or removed: the dataset, the map and the metrics of one state of the database share one
read (a vector never changes once stored: a hash keeps its first vector)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth.kernel.records import now

MEMO_DATABASES = 2  # (database, model) pairs whose vectors stay in memory; the app uses one


@dataclass
class _Memo:
    version: tuple
    index: dict[str, int] = field(default_factory=dict)  # text hash -> row of matrix
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


_MEMO: OrderedDict[tuple[str, str], _Memo] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def forget_vectors() -> None:
    """Drop every vector kept in memory (the next read goes to the database)."""
    with _MEMO_LOCK:
        _MEMO.clear()


class EmbeddingsMixin:
    """Embedding vectors (``embeddings``)."""

    def put_embeddings(self, model: str, hashes: list[str], vectors: np.ndarray) -> None:
        """Store vectors by text hash (a hash already stored for ``model`` keeps its vector)."""
        if len(hashes) == 0:
            return
        import pyarrow as pa

        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        table = pa.table({"text_hash": pa.array(hashes, pa.string()),
                          "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})
        with self.transaction() as con:
            con.register("new_vectors", table)
            con.execute("INSERT OR IGNORE INTO embeddings SELECT ?, text_hash, ?, vector::FLOAT[], ? "
                        "FROM new_vectors", [model, int(vectors.shape[1]), now()])
            con.unregister("new_vectors")

    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``model`` by text hash (only the hashes that are there)."""
        found, matrix = self._read_vectors(model, hashes)
        return dict(zip(found, matrix))

    def _read_vectors(self, model: str, hashes: list[str]) -> tuple[list[str], np.ndarray]:
        """The hashes found, in the database's order, and their vectors as one float32 matrix."""
        if not hashes:
            return [], np.zeros((0, 0), np.float32)
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"text_hash": list(set(hashes))}))
            table = con.sql("SELECT e.text_hash, e.vector FROM embeddings e "
                            "JOIN wanted w USING (text_hash) WHERE e.model = ?", params=[model]).to_arrow_table()
        if table.num_rows == 0:
            return [], np.zeros((0, 0), np.float32)
        # Through Arrow: one flat buffer instead of a Python float per component.
        vectors = table.column("vector").combine_chunks()
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return table.column("text_hash").to_pylist(), matrix.reshape(table.num_rows, -1)

    def stored_vectors(self, model: str, hashes: list[str]) -> np.ndarray | None:
        """The stored vectors of ``hashes``, one row per hash in order, or None if one is not stored.

        Read once per state of the model's vectors and kept in memory: asking again for the same
        hashes in the same order returns the same array (callers must not modify it); a subset or
        another order is a copy of its rows."""
        version = self.embeddings_version(model)
        with _MEMO_LOCK:
            memo = _MEMO.get((self.path, model))
            if memo is None or memo.version != version:
                memo = _MEMO[(self.path, model)] = _Memo(version)
            _MEMO.move_to_end((self.path, model))
            while len(_MEMO) > MEMO_DATABASES:
                _MEMO.popitem(last=False)
            new = [h for h in dict.fromkeys(hashes) if h not in memo.index]
            if new and not self._remember(memo, model, new):
                return None
            rows = np.fromiter((memo.index[h] for h in hashes), np.int64, len(hashes))
            if len(rows) == len(memo.matrix) and np.array_equal(rows, np.arange(len(rows))):
                return memo.matrix
            return memo.matrix[rows]

    def vectors_once(self, model: str, hashes: list[str]) -> np.ndarray | None:
        """The stored vectors of ``hashes`` in order (None if one is not stored), taken from the
        vectors kept in memory when they are all there, else read for this call only and not
        kept: for a sample, so that reading it does not grow the kept matrix by a copy."""
        version = self.embeddings_version(model)
        with _MEMO_LOCK:
            memo = _MEMO.get((self.path, model))
            if memo is not None and memo.version == version and all(h in memo.index for h in hashes):
                return memo.matrix[np.fromiter((memo.index[h] for h in hashes), np.int64, len(hashes))]
        wanted = list(dict.fromkeys(hashes))
        found, matrix = self._read_vectors(model, wanted)
        if len(found) < len(wanted):
            return None
        position = {h: i for i, h in enumerate(found)}
        return matrix[[position[h] for h in hashes]]

    def _remember(self, memo: _Memo, model: str, new: list[str]) -> bool:
        """Read the vectors of ``new`` into ``memo`` in that order; False if one is not stored."""
        found, matrix = self._read_vectors(model, new)
        if len(found) < len(new):
            return False
        position = {h: i for i, h in enumerate(found)}
        rows = matrix[[position[h] for h in new]]
        memo.matrix = rows if not memo.index else np.concatenate([memo.matrix, rows])
        base = len(memo.index)
        memo.index.update((h, base + i) for i, h in enumerate(new))
        return True

    def missing_embeddings(self, model: str, hashes: list[str]) -> list[str]:
        """The hashes among ``hashes`` with no vector stored for ``model``, in first-seen order
        (reads the hash column only, never a vector)."""
        if not hashes:
            return []
        wanted = list(dict.fromkeys(hashes))
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"text_hash": wanted, "pos": range(len(wanted))}))
            rows = con.execute("SELECT w.text_hash FROM wanted w ANTI JOIN "
                               "(SELECT text_hash FROM embeddings WHERE model = ?) e USING (text_hash) "
                               "ORDER BY w.pos", [model]).fetchall()
        return [r[0] for r in rows]

    def embeddings_version(self, model: str) -> tuple:
        """Changes whenever a vector of ``model`` is stored or removed: a cache key for readers."""
        with self.connect() as con:
            return con.execute("SELECT count(*), max(created_at), sum(hash(text_hash)) FROM embeddings "
                               "WHERE model = ?", [model]).fetchone()
