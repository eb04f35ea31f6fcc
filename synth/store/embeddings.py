"""Table ``embeddings``: one vector per (embedding model, text hash)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth.kernel.records import now


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
        if not hashes:
            return {}
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"text_hash": list(set(hashes))}))
            table = con.sql("SELECT e.text_hash, e.vector FROM embeddings e "
                            "JOIN wanted w USING (text_hash) WHERE e.model = ?", params=[model]).to_arrow_table()
        if table.num_rows == 0:
            return {}
        # Through Arrow: one flat buffer instead of a Python float per component.
        vectors = table.column("vector").combine_chunks()
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        matrix = matrix.reshape(table.num_rows, -1)
        return dict(zip(table.column("text_hash").to_pylist(), matrix))
