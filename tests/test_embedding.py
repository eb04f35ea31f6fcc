import numpy as np
import pytest

from synth.analysis import embedding
from synth.analysis.embedding import ensure_embeddings, get_embedder, load_vectors
from synth.kernel.errors import SynthError
from synth.kernel.records import text_hash


def test_embedder_gives_unit_vectors_of_384_dimensions():
    vectors = get_embedder().embed(["A cat sat on the mat.", "Quarterly revenue grew by 4%."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones():
    a, b, c = get_embedder().embed(["The kettle boils water quickly.",
                                    "This kettle heats water very fast.",
                                    "The stock market fell sharply today."])
    assert a @ b > 0.6 > a @ c


def test_empty_list():
    assert get_embedder().embed([]).shape == (0, 384)


def test_unknown_model_is_refused():
    with pytest.raises(SynthError, match="Unknown embedding model"):
        embedding.SentenceTransformerEmbedder("no-such-model")


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        embedding.register_embedding_model(embedding.EMBEDDING_MODELS["all-MiniLM-L6-v2"])


def test_cache_never_recomputes_an_embedded_text(store, monkeypatch):
    texts = ["first text", "second text", "first text"]
    assert ensure_embeddings(store, texts) == 2
    assert ensure_embeddings(store, texts) == 0
    calls = []
    real = get_embedder().embed
    monkeypatch.setattr(get_embedder(), "embed", lambda batch: calls.append(list(batch)) or real(batch))
    assert ensure_embeddings(store, ["second text", "third text"]) == 1
    assert calls == [["third text"]]
    stored = store.frame("SELECT model, text_hash, dim FROM embeddings ORDER BY text_hash")
    assert len(stored) == 3 and set(stored["dim"]) == {384}
    assert set(stored["model"]) == {"all-MiniLM-L6-v2"}
    assert text_hash("third text") in set(stored["text_hash"])


def test_load_vectors_keeps_order_and_matches_direct_embedding(store):
    texts = ["zeta", "alpha", "zeta"]
    vectors = load_vectors(store, texts)
    direct = get_embedder().embed(["zeta", "alpha"])
    assert np.allclose(vectors[0], direct[0], atol=1e-6)
    assert np.allclose(vectors[1], direct[1], atol=1e-6)
    assert np.array_equal(vectors[0], vectors[2])
