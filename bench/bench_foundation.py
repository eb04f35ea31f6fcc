"""Foundation timings: first start, first map, UMAP in the background, a local batch, embedding.

Prints a table and saves bench/results/foundation.json. Run: python bench/bench_foundation.py
Ratios within one run are more telling than absolute times on a shared 2-core machine.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["SYNTH_LOAD_DEMO"] = "1"


def timed(label, fn, results):
    start = time.perf_counter()
    value = fn()
    results[label] = round(time.perf_counter() - start, 3)
    print(f"{label:48s} {results[label]:8.3f} s")
    return value


def main() -> None:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SYNTH_DB"] = str(Path(tmp) / "bench.duckdb")
        from synth.analysis import embedding, projection
        from synth.generate.config import RunConfig
        from synth.workflows.demo import ensure_demo
        from synth.workflows.pipeline import generate_run, map_points, open_store

        store = timed("open + migrate a new database", open_store, results)
        timed("load demo (290 items, shipped vectors)", lambda: ensure_demo(store), results)
        points, layout = timed("first map (PCA preview, UMAP queued)", lambda: map_points(store), results)
        assert layout.status == "preview", layout.status
        timed("UMAP fit in background incl. numba compile", projection.wait_for_layouts, results)
        timed("map from the stored UMAP layout", lambda: map_points(store), results)
        embedder = timed("load embedding model", embedding.get_embedder, results)
        texts = points["text"].tolist()
        timed(f"embed {len(texts)} demo texts (no cache)", lambda: embedder.embed(texts), results)
        results["embed_texts_per_s"] = round(len(texts) / results[f"embed {len(texts)} demo texts (no cache)"], 1)
        req = RunConfig(template="Write a one-line review of a {p}.", variables={"p": ["pen", "cup"]},
                                n=5, model="local/smollm2-135m", max_tokens=32)
        timed("first local batch of 5 (model load + embed + metrics)", lambda: generate_run(store, req), results)
        req.seed = 1
        result = timed("second local batch of 5", lambda: generate_run(store, req), results)
        results["local_tokens_out_per_s"] = round(result.tokens_out / max(result.wall_s, 1e-9), 1)
        timed("map after the new batch (5 placed with transform)", lambda: map_points(store, background=False), results)
        timed("UMAP refit of every item (compiled)", lambda: projection.refit_layout(store, store.items()), results)
    results["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    out = ROOT / "bench" / "results" / "foundation.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
