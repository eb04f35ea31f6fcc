"""The demo dataset: ``data/demo.jsonl`` (items with provenance, made by the project's own
generator) and ``data/demo_embeddings.npz`` (their all-MiniLM-L6-v2 vectors, so the first map
appears without loading the embedding model).

Reads: those two files. Writes: runs, items and embeddings of an empty database.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from synth.analysis.clustering import current_clustering, fit_key, make_clusterer, save_clustering
from synth.analysis.embedding import ensure_embeddings
from synth.analysis.metrics import compute_all_metrics
from synth.generate.ingest import restore_export
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import text_hash
from synth.store import DuckStore, in_session


def vectors_file(demo_file: str | Path) -> Path:
    return Path(demo_file).with_name(Path(demo_file).stem + "_embeddings.npz")


def load_demo_vectors(store: DuckStore, path: Path, model: str) -> int:
    """Put the shipped vectors into the cache if they were made with ``model``; return how many."""
    if not path.is_file():
        return 0
    with np.load(path, allow_pickle=False) as data:
        if str(data["model"]) != model:
            return 0
        hashes = [str(h) for h in data["text_hash"]]
        store.put_embeddings(model, hashes, data["vectors"].astype(np.float32))
    return len(hashes)


def write_demo_vectors(store: DuckStore, demo_file: str | Path) -> Path:
    """Save the vectors of every text in ``demo_file`` next to it (used by data/make_demo.sh)."""
    from synth.analysis.embedding import load_vectors
    from synth.generate.ingest import read_records

    model = settings.get("embed_model")
    texts = sorted({row["text"] for row in read_records(demo_file)})
    vectors = load_vectors(store, texts, model)
    out = vectors_file(demo_file)
    np.savez_compressed(out, model=np.array(model), text_hash=np.array([text_hash(t) for t in texts]),
                        vectors=vectors.astype(np.float32))
    return out


def clusters_file(demo_file: str | Path) -> Path:
    return Path(demo_file).with_name(Path(demo_file).stem + "_clusters.json")


def write_demo_clusters(store: DuckStore, demo_file: str | Path) -> Path:
    """Save the default clustering of the store's items (the demo, loaded without its clusters
    file) next to ``demo_file`` (used by data/make_demo.sh)."""
    items = store.items()
    clustering = current_clustering(store, items=items)  # fitted: the store has no shipped clustering
    named = store.cluster_labels(clustering.clustering_id)
    out = clusters_file(demo_file)
    shipped = {**fit_key(make_clusterer(), items),
               "labels": {i: clustering.labels[i] for i in items["item_id"].tolist()},
               "names": named[["cluster_id", "size", "keywords"]].to_dict("records")}
    out.write_text(json.dumps(shipped, indent=1, sort_keys=True) + "\n")
    return out


def load_demo_clusters(store: DuckStore, path: Path, items: pd.DataFrame) -> bool:
    """Store the shipped clustering of the demo items as the default clusterer's fit, when it is
    what that fit would be found by now (``fit_key``: same settings, embedding model and
    ``items``); else nothing is stored (the first page fits its own) and False is returned."""
    key = fit_key(make_clusterer(), items)
    try:
        shipped = json.loads(path.read_text())
        if {k: shipped[k] for k in key} != key or set(shipped["labels"]) != set(items["item_id"]):
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    labels = np.array([shipped["labels"][i] for i in items["item_id"].tolist()], dtype=int)
    names = pd.DataFrame(shipped["names"], columns=["cluster_id", "size", "keywords"]).assign(
        llm_label=None, llm_model=None)
    save_clustering(store, key, items, labels, names)
    return True


@in_session
def ensure_demo(store: DuckStore, measure: bool = True, shipped_clusters: bool = True) -> list[str]:
    """Load the demo dataset into an empty database (if the setting allows); return new run ids.

    ``measure=False`` leaves the per-run metrics to be computed later (the app does it in the
    background after the first map, see ``metrics.measure_in_background``); ``shipped_clusters=False``
    leaves the clustering to be fitted (as data/make_demo.sh does to write it)."""
    if not settings.get("load_demo") or store.count_items() > 0:
        return []
    path = Path(settings.get("demo_file"))
    if not path.is_file():
        raise SynthError(f"The demo dataset {path} is missing. Restore it from git, or set "
                         "SYNTH_LOAD_DEMO=0 to start with an empty database.")
    added = restore_export(store, path)
    model = settings.get("embed_model")
    load_demo_vectors(store, vectors_file(path), model)
    items = store.items()
    ensure_embeddings(store, items["text"].tolist(), model)  # anything the file lacked
    if shipped_clusters:
        load_demo_clusters(store, clusters_file(path), items)
    if measure:
        compute_all_metrics(store)
    return added
