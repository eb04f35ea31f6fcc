import json
import shutil

import numpy as np
import pytest

from synth.analysis import embedding
from synth.analysis.embedding import ensure_embeddings, get_embedder, load_vectors
from synth.kernel import settings
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



def _seed_vectors(store, texts, seed=0):
    """Vectors put straight into the cache (no model): what the read path is tested on."""
    vectors = np.random.default_rng(seed).normal(size=(len(texts), 384)).astype(np.float32)
    store.put_embeddings(settings.get("embed_model"), [text_hash(t) for t in texts], vectors)
    return vectors


def test_vectors_are_read_from_the_database_once_per_state(store, monkeypatch):
    texts = [f"text {i}" for i in range(50)]
    seeded = _seed_vectors(store, texts)
    reads = []
    real = type(store)._read_vectors
    monkeypatch.setattr(type(store), "_read_vectors", lambda self, m, h: reads.append(len(h)) or real(self, m, h))
    first = load_vectors(store, texts)
    again = load_vectors(store, texts)
    subset = load_vectors(store, [texts[7], texts[3], texts[7]])
    assert reads == [50]  # the dataset, the map and the metrics share one read
    assert again is first and np.array_equal(first, seeded)
    assert np.array_equal(subset, seeded[[7, 3, 7]])
    _seed_vectors(store, ["a new text"], seed=1)  # a new state of the vectors: read again
    assert np.array_equal(load_vectors(store, texts), seeded) and len(reads) == 2


def test_vectors_kept_in_memory_follow_a_removed_vector(store):
    texts = ["kept", "removed"]
    _seed_vectors(store, texts)
    load_vectors(store, texts)
    with store.transaction() as con:
        con.execute("DELETE FROM embeddings WHERE text_hash = ?", [text_hash("removed")])
    assert store.stored_vectors(settings.get("embed_model"), [text_hash(t) for t in texts]) is None
    assert store.missing_embeddings(settings.get("embed_model"), [text_hash(t) for t in texts]) == \
        [text_hash("removed")]


def test_finding_what_to_embed_reads_no_vector(store, monkeypatch):
    _seed_vectors(store, ["one", "two"])
    monkeypatch.setattr(type(store), "_read_vectors", lambda *a: pytest.fail("a vector was read"))
    assert ensure_embeddings(store, ["two", "one", "two"]) == 0
    assert store.missing_embeddings(settings.get("embed_model"), [text_hash(t) for t in ["x", "one", "y", "x"]]) \
        == [text_hash("x"), text_hash("y")]

# -- the ONNX backend --

MODEL = settings.DEFAULT_EMBED_MODEL


def real_texts() -> list[str]:
    """Demo texts of every length, single sentences of them, and long joins past 256 tokens."""
    lines = (settings.DATA_DIR / "demo.jsonl").read_text(encoding="utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line.strip()]
    texts = sorted({r["text"] for r in rows})[::3]
    sentences = [s.strip() + "." for t in texts[:40] for s in t.split(".")[:2] if len(s.strip()) > 3]
    long = [" ".join(texts[i:i + 5]) for i in range(0, 50, 5)]
    return texts + sentences + long + ["x", "  padded with spaces  ", "Ünïcödé, emoji 🙂 and 数字 42."]


@pytest.fixture(scope="module")
def exported_cache(tmp_path_factory):
    """A cache folder holding one export, made once for this module."""
    cache = tmp_path_factory.mktemp("embed-cache")
    embedding._EXPORTS.clear()  # a real export, not a copy of one an earlier test made
    embedder = embedding.OnnxEmbedder(MODEL, cache_dir=cache)
    assert embedder.exported and embedder.model_path.parent == cache
    return cache


def cache_copy(source, target):
    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        shutil.copy2(f, target / f.name)
    return target


def test_onnx_vectors_agree_with_sentence_transformers(exported_cache):
    texts = real_texts()
    reference = embedding.SentenceTransformerEmbedder(MODEL).embed(texts)
    onnx = embedding.OnnxEmbedder(MODEL, cache_dir=exported_cache).embed(texts)
    assert onnx.shape == reference.shape == (len(texts), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosines = (onnx * reference).sum(axis=1)
    assert cosines.min() >= 0.999, texts[int(cosines.argmin())]
    # Truncation at the model's 256 tokens, not tokenizer.json's 128: a text cut at 128 would differ.
    long = max(texts, key=len)
    assert len(embedding._load_tokenizer(embedding.model_folder(MODEL),
                                         embedding._read_folder_config(embedding.model_folder(MODEL)))
               .encode(long).ids) == 256


def test_export_is_cached_and_reused(exported_cache, tmp_path):
    cache = cache_copy(exported_cache, tmp_path / "cache")
    first = embedding.OnnxEmbedder(MODEL, cache_dir=cache)
    before = first.model_path.stat().st_mtime_ns
    second = embedding.OnnxEmbedder(MODEL, cache_dir=cache)
    assert not first.exported and not second.exported
    assert second.model_path == first.model_path and second.model_path.stat().st_mtime_ns == before
    assert [p.name for p in cache.glob("*.onnx")] == [first.model_path.name]
    assert first.model_path.name.startswith(f"{MODEL}-")


def test_a_corrupt_cached_file_is_exported_again(exported_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(embedding, "_EXPORTS", {})
    cache = cache_copy(exported_cache, tmp_path / "cache")
    path = next(cache.glob("*.onnx"))
    path.write_bytes(path.read_bytes()[: 1 << 20])  # a file cut short, as by a crash mid-write
    embedder = embedding.OnnxEmbedder(MODEL, cache_dir=cache)
    assert embedder.exported and embedder.model_path == path and path.stat().st_size > 50_000_000
    vector = embedder.embed(["The kettle boils water quickly."])[0]
    reference = embedding.SentenceTransformerEmbedder(MODEL).embed(["The kettle boils water quickly."])[0]
    assert float(vector @ reference) >= 0.999
    assert not list(cache.glob(".*.tmp"))  # the atomic write leaves nothing behind


def test_a_file_from_other_weights_is_exported_again(exported_cache, tmp_path, monkeypatch):
    import onnx

    monkeypatch.setattr(embedding, "_EXPORTS", {})
    cache = cache_copy(exported_cache, tmp_path / "cache")
    path = next(cache.glob("*.onnx"))
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "weights_sha256":
            prop.value = "0" * 64
    onnx.save(model, str(path))
    embedder = embedding.OnnxEmbedder(MODEL, cache_dir=cache)
    assert embedder.exported
    meta = embedder._session.get_modelmeta().custom_metadata_map
    assert meta["weights_sha256"] != "0" * 64 and meta["weights_sha256"].startswith(path.stem.split("-")[-1])


def test_the_setting_switches_backend(exported_cache, tmp_path, monkeypatch):
    # conftest points SYNTH_DB at tmp_path, so the ONNX cache lives beside that database.
    cache_copy(exported_cache, tmp_path / embedding.CACHE_DIR_NAME)
    monkeypatch.setenv("SYNTH_EMBED_BACKEND", "onnx")
    onnx = get_embedder()
    assert isinstance(onnx, embedding.OnnxEmbedder) and not onnx.exported
    assert onnx.model_path.parent == tmp_path / embedding.CACHE_DIR_NAME
    monkeypatch.setenv("SYNTH_EMBED_BACKEND", "sentence-transformers")
    assert isinstance(get_embedder(), embedding.SentenceTransformerEmbedder)
    monkeypatch.delenv("SYNTH_EMBED_BACKEND")
    default = settings.SETTINGS["embed_backend"].default
    assert get_embedder().backend == default


def test_onnx_backend_shares_the_model_cache_key(exported_cache, tmp_path, store, monkeypatch):
    cache_copy(exported_cache, tmp_path / embedding.CACHE_DIR_NAME)
    monkeypatch.setenv("SYNTH_EMBED_BACKEND", "sentence-transformers")
    assert ensure_embeddings(store, ["one text"]) == 1
    monkeypatch.setenv("SYNTH_EMBED_BACKEND", "onnx")
    assert ensure_embeddings(store, ["one text", "two texts"]) == 1  # "one text" is not re-embedded
    assert set(store.frame("SELECT model FROM embeddings")["model"]) == {MODEL}


def test_a_bad_backend_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("SYNTH_EMBED_BACKEND", "tensorflow")
    with pytest.raises(SynthError, match="sentence-transformers, onnx"):
        get_embedder()


def test_negative_threads_are_refused(monkeypatch):
    monkeypatch.setenv("SYNTH_EMBED_THREADS", "-1")
    with pytest.raises(SynthError, match="SYNTH_EMBED_THREADS"):
        get_embedder()


def test_embed_threads_reach_torch_and_onnx_runtime(exported_cache, tmp_path, monkeypatch):
    import torch

    before = torch.get_num_threads()
    cache_copy(exported_cache, tmp_path / embedding.CACHE_DIR_NAME)
    monkeypatch.setenv("SYNTH_EMBED_THREADS", "1")
    try:
        monkeypatch.setenv("SYNTH_EMBED_BACKEND", "sentence-transformers")
        torch.set_num_threads(2)
        get_embedder().embed(["a text"])
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SYNTH_EMBED_BACKEND", "onnx")
        onnx = get_embedder()
        assert onnx._session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("SYNTH_EMBED_THREADS", "2")
    assert get_embedder()._session.get_session_options().intra_op_num_threads == 2


def test_another_database_folder_reuses_this_process_export(exported_cache, tmp_path):
    first = embedding.OnnxEmbedder(MODEL, cache_dir=exported_cache)
    other = embedding.OnnxEmbedder(MODEL, cache_dir=tmp_path / "elsewhere")
    assert not other.exported and other.model_path.parent == tmp_path / "elsewhere"
    assert other.model_path.name == first.model_path.name and other.model_path.stat().st_size > 50_000_000
