"""Speed of the loop: the embedded model through the product against raw llama.cpp, several
llama.cpp contexts against one, the latency the product records, and which CLI commands import
the heavy libraries.

Prints a table and saves bench/results/loop.json (loop_quick.json with --quick). Sections, each a
ratio measured in this run, with its target and PASS/FAIL:
  a. product vs raw: `run_batch` on local/smollm2-135m (no cache) against plain `llama_cpp.Llama`
     of the same shape (contexts x threads, one Python thread per context), same 20 prompts,
     max_tokens and seeds: tokens/s ratio (target >= 0.9) and identical texts.
  b. a batch of 12 (8 with --quick) on several contexts (the default, concurrency 4) against one
     at a time (1 context, concurrency 1) of the same 1 thread, and against the former default
     (1 context x 2 threads): ratios (target >= 1.3); other shapes for the choice of defaults.
  c. latency the product records: per call, stored latency_ms against the time of that call's
     llama.cpp completion (target 1.00 to 1.05); tokens per second of stored latency against raw
     tokens per second of each raw call's own time (target 0.9 to 1.1); with one context and 6
     calls in flight, the stored latencies add up to no more than the wall time (no queueing).
  d. imports: CLI commands that need no embeddings or model, run in a new process with
     `-X importtime`: which heavy libraries each imports (target: no torch, sentence_transformers).
  e. other sections: bench_map's CLI measurement (`synth map` at 5k in a new process against a
     warm fit; skipped with --quick or --skip-map) and `embedding_section()` (bench/bench_embed.py's
     `measure()` if that file exists).
  f. beside the embedder: the former and the new default shape while torch embeds in a loop in
     the same process (target: the new shape no slower); skipped with --skip-embed.
  g. Studio's Preview with the embedded model in headless chromium: click to the first text on
     screen, to all 3 items on screen (being written or done), to complete (target < 3 s);
     skipped with --quick or --skip-browser.
Runs are interleaved (raw, product, product, raw, ...) and ratios are medians over rounds: the
machine is shared and its load moves.
Run: flock /tmp/bench.lock python bench/bench_loop.py [--quick] [--rounds N] [--skip-map] [--skip-embed]
     [--skip-browser]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from synth.kernel import settings  # noqa: E402
from synth.llm import providers  # noqa: E402
from synth.llm.batch import BatchSettings, Call, run_batch  # noqa: E402

MODEL = settings.DEFAULT_LOCAL_MODEL
NAME = MODEL.split("/", 1)[1]
SEED = 1000
TEMPERATURE = 0.8
MAX_TOKENS = 48
CHUNK = 4  # prompts per interleaved slice in section a (2 per context)
WORDS = ("cat owl tent river lamp bread storm train chess violin garden robot bridge candle desert "
         "piano forest mirror rocket castle").split()
PROMPTS = [f"Write one sentence about a {w}." for w in WORDS]  # 20
HEAVY = ("torch", "sentence_transformers", "transformers", "litellm", "llama_cpp", "umap", "numba", "streamlit")
FORBIDDEN = ("torch", "sentence_transformers")

rows: list[tuple[str, str, str, str]] = []  # (section, measure, value, target / verdict)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(section: str, measure: str, value: str, target: str = "") -> None:
    rows.append((section, measure, value, target))
    print(f"[{section}] {measure}: {value}" + (f"   ({target})" if target else ""), flush=True)


def use_shape(contexts: int, threads: int) -> None:
    """Point the product at a pool of this shape and load it, outside any timing."""
    os.environ["SYNTH_LOCAL_CONTEXTS"] = str(contexts)
    os.environ["SYNTH_LOCAL_THREADS"] = str(threads)
    providers.credentials(MODEL)  # loads the pool (again if the shape changed)


# -- raw llama.cpp --------------------------------------------------------------------------------

def raw_contexts(contexts: int, threads: int) -> list:
    from llama_cpp import Llama

    path = providers.LOCAL_MODELS[NAME].locate()
    out = []
    for _ in range(contexts):
        llama = Llama(model_path=path, n_ctx=settings.get("local_n_ctx"), n_threads=threads,
                      n_threads_batch=threads, verbose=False)
        llama.create_chat_completion(messages=[{"role": "user", "content": "hi"}], max_tokens=1)
        out.append(llama)
    return out


def raw_run(llamas: list, prompts: list[str], first: int = 0) -> dict:
    """Plain llama-cpp-python: one Python thread per context pulls the next prompt. Each call
    starts from an empty context (reset + KV clear), as the product's calls do, so the same seed
    can give the same text. Prompt i has seed SEED + first + i, as item first + i has in a batch."""
    texts: list = [None] * len(prompts)
    tokens = [0] * len(prompts)
    own_ms = [0.0] * len(prompts)
    nxt = iter(range(len(prompts)))
    lock = threading.Lock()

    def worker(llama):
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            start = time.perf_counter()
            llama.reset()
            llama._ctx.kv_cache_clear()
            out = llama.create_chat_completion(messages=[{"role": "user", "content": prompts[i]}],
                                               max_tokens=MAX_TOKENS, temperature=TEMPERATURE, seed=SEED + first + i)
            own_ms[i] = (time.perf_counter() - start) * 1000
            texts[i] = (out["choices"][0]["message"]["content"] or "").strip()
            tokens[i] = out["usage"]["completion_tokens"]

    start = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(llama,)) for llama in llamas]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    return {"texts": texts, "tokens": sum(tokens), "wall_s": wall, "tokens_per_s": sum(tokens) / wall,
            "own_ms": own_ms}


def product_run(prompts: list[str], concurrency: int, first: int = 0) -> dict:
    """``run_batch`` on the local model, no cache. Besides the latency each call stores, the time
    of each call's llama.cpp completion is taken on the pool's own contexts (a wrapper that calls
    the real method), to check the stored latency against the call's own time."""
    calls = [Call(first + i, [{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
    cfg = BatchSettings(model=MODEL, temperature=TEMPERATURE, max_tokens=MAX_TOKENS, seed=SEED,
                        concurrency=concurrency, use_cache=False)
    own_ms: dict[int, float] = {}
    contexts = providers._POOLS[NAME].contexts
    for llama in contexts:
        def timed(*a, _real=llama.create_chat_completion, **kw):
            start = time.perf_counter()
            try:
                return _real(*a, **kw)
            finally:
                own_ms[kw["seed"] - SEED] = (time.perf_counter() - start) * 1000
        llama.create_chat_completion = timed
    start = time.perf_counter()
    try:
        outcome = run_batch(calls, cfg)
    finally:
        for llama in contexts:
            del llama.create_chat_completion  # the class's method again
    wall = time.perf_counter() - start
    assert len(outcome.succeeded) == len(prompts), outcome.failed[:1]
    done = [r.completion for r in outcome.results]
    tokens = sum(c.tokens_out for c in done)
    return {"texts": [c.text for c in done], "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
            "latency_ms": [c.latency_ms for c in done], "own_ms": [own_ms[first + i] for i in range(len(prompts))]}


# -- sections ----------------------------------------------------------------------------------------

def product_vs_raw(rounds: int, contexts: int, threads: int, concurrency: int) -> dict:
    use_shape(contexts, threads)
    llamas = raw_contexts(contexts, threads)
    runs: list[dict] = []
    for r in range(rounds):
        order = ("raw", "product") if r % 2 == 0 else ("product", "raw")
        got: dict = {kind: {"texts": [], "tokens": 0, "wall_s": 0.0, "own_ms": [], "latency_ms": []}
                     for kind in order}
        # Chunks of CHUNK prompts, raw and product alternating (ABBA): the load on a shared
        # machine moves within seconds, and both kinds see the same moments.
        for c, first in enumerate(range(0, len(PROMPTS), CHUNK)):
            for kind in (order if c % 2 == 0 else order[::-1]):
                chunk = PROMPTS[first:first + CHUNK]
                run = (raw_run(llamas, chunk, first) if kind == "raw"
                       else product_run(chunk, concurrency, first))
                acc = got[kind]
                acc["texts"] += run["texts"]
                acc["tokens"] += run["tokens"]
                acc["wall_s"] += run["wall_s"]
                acc["own_ms"] += run["own_ms"]
                acc["latency_ms"] += run.get("latency_ms", [])
        for acc in got.values():
            acc["tokens_per_s"] = acc["tokens"] / acc["wall_s"]
        runs.append(got)
        print(f"  round {r + 1}: raw {got['raw']['tokens_per_s']:.1f} tok/s, "
              f"product {got['product']['tokens_per_s']:.1f} tok/s", flush=True)
    for llama in llamas:
        llama.close()
    ratios = [g["product"]["tokens_per_s"] / g["raw"]["tokens_per_s"] for g in runs]
    ratio = statistics.median(ratios)
    same = all(g["product"]["texts"] == g["raw"]["texts"] == runs[0]["raw"]["texts"] for g in runs)
    shape = f"{contexts} context(s) x {threads} thread(s)"
    report("a", f"raw llama.cpp, {shape}, {len(PROMPTS)} prompts, max_tokens {MAX_TOKENS}",
           " / ".join(f"{g['raw']['tokens_per_s']:.1f}" for g in runs) + " tok/s")
    report("a", f"product run_batch, {shape}, concurrency {concurrency}, no cache",
           " / ".join(f"{g['product']['tokens_per_s']:.1f}" for g in runs) + " tok/s")
    report("a", "ratio product / raw tokens/s (median of rounds)", f"{ratio:.2f}x",
           f"target >= 0.90: {verdict(ratio >= 0.9)}")
    report("a", "texts identical to raw, every round", str(same), f"target True: {verdict(same)}")

    # c. the latency the product stores, against each raw call's own time
    stored = [sum(g["product"]["tokens"] for g in runs) / (sum(sum(g["product"]["latency_ms"]) for g in runs) / 1000)]
    own = [sum(g["raw"]["tokens"] for g in runs) / (sum(sum(g["raw"]["own_ms"]) for g in runs) / 1000)]
    lat_ratio = stored[0] / own[0]
    per_call = [p / q for g in runs for p, q in zip(g["product"]["latency_ms"], g["product"]["own_ms"])]
    report("c", "tokens per second of stored latency_ms (product)", f"{stored[0]:.1f} tok/s")
    report("c", "tokens per second of each raw call's own time", f"{own[0]:.1f} tok/s")
    report("c", "ratio stored-latency tok/s / raw per-call tok/s", f"{lat_ratio:.2f}x",
           f"target 0.90 to 1.10: {verdict(0.9 <= lat_ratio <= 1.1)}")
    median_call = statistics.median(per_call)
    report("c", f"per call ({len(per_call)}), stored latency_ms / its own completion time: median (min to max)",
           f"{median_call:.3f} ({min(per_call):.3f} to {max(per_call):.3f})",
           f"target 1.00 to 1.05: {verdict(1.0 <= min(per_call) and max(per_call) <= 1.05)}")
    return {"shape": {"contexts": contexts, "threads": threads, "concurrency": concurrency},
            "prompts": len(PROMPTS), "max_tokens": MAX_TOKENS, "temperature": TEMPERATURE,
            "tokens": runs[0]["raw"]["tokens"],
            "raw_tokens_per_s": [round(g["raw"]["tokens_per_s"], 1) for g in runs],
            "product_tokens_per_s": [round(g["product"]["tokens_per_s"], 1) for g in runs],
            "ratio_product_over_raw": round(ratio, 3), "ratios_per_round": [round(x, 3) for x in ratios],
            "texts_identical": same,
            "latency": {"stored_latency_tokens_per_s": round(stored[0], 1),
                        "raw_own_time_tokens_per_s": round(own[0], 1), "ratio": round(lat_ratio, 3),
                        "per_call_stored_over_own_median": round(median_call, 4),
                        "per_call_stored_over_own_range": [round(min(per_call), 4), round(max(per_call), 4)]}}


FORMER = ("1 context x 2 threads, one at a time (former default)", 1, 2, 1)
_C, _T = settings.SETTINGS["local_contexts"].default, settings.SETTINGS["local_threads"].default
DEFAULT = (f"{_C} contexts x {_T} thread(s), concurrency 4 (default)", _C, _T, 4)
DEFAULT_SHAPE = f"{_C} x {_T}"
ONE_AT_A_TIME = ("1 context x 1 thread, one at a time", 1, 1, 1)
OTHERS = [shape for shape in (("2 contexts x 1 thread, concurrency 4", 2, 1, 4),
                              ("3 contexts x 1 thread, concurrency 4", 3, 1, 4)) if shape[1:] != DEFAULT[1:]]
SHAPES = [  # (label, contexts, threads, concurrency); the compared ones side by side, each round
    ONE_AT_A_TIME, DEFAULT, FORMER,
    ("2 contexts x 2 threads, concurrency 4 (oversubscribed)", 2, 2, 4),
    *OTHERS,
]


def contexts_vs_one(n: int, rounds: int) -> dict:
    prompts = PROMPTS[:n]
    figures: dict[str, list[float]] = {label: [] for label, *_ in SHAPES}
    texts: dict[str, list[str]] = {}
    for r in range(rounds):
        shapes = SHAPES if r % 2 == 0 else SHAPES[::-1]
        for label, contexts, threads, concurrency in shapes:
            use_shape(contexts, threads)
            run = product_run(prompts, concurrency)
            figures[label].append(run["tokens_per_s"])
            texts.setdefault(label, run["texts"])
            print(f"  round {r + 1}: {label}: {run['tokens_per_s']:.1f} tok/s ({run['wall_s']:.2f} s)", flush=True)
    med = {label: statistics.median(v) for label, v in figures.items()}
    for label, v in figures.items():
        report("b", f"{n} calls, {label}", " / ".join(f"{x:.1f}" for x in v) + f" tok/s (median {med[label]:.1f})")
    before, default, single = FORMER[0], DEFAULT[0], ONE_AT_A_TIME[0]
    # Ratios within a round (the shapes run one after the other), then their median.
    ratios = [d / b for d, b in zip(figures[default], figures[single])]
    ratio = statistics.median(ratios)
    report("b", f"ratio default ({DEFAULT_SHAPE}) / one at a time on 1 context of the same 1 thread",
           f"{ratio:.2f}x ({' / '.join(f'{x:.2f}' for x in ratios)})", f"target >= 1.30: {verdict(ratio >= 1.3)}")
    former = [d / b for d, b in zip(figures[default], figures[before])]
    ratio_former = statistics.median(former)
    report("b", f"ratio default ({DEFAULT_SHAPE}) / 1 context x 2 threads (former default)",
           f"{ratio_former:.2f}x ({' / '.join(f'{x:.2f}' for x in former)})",
           f"target >= 1.30: {verdict(ratio_former >= 1.3)}")
    same = all(t == texts[default] for t in texts.values())
    report("b", "texts identical across every shape", str(same), f"target True: {verdict(same)}")
    best = max(med, key=med.get)
    report("b", "fastest shape", best)
    return {"calls": n, "tokens_per_s": {k: [round(x, 1) for x in v] for k, v in figures.items()},
            "median_tokens_per_s": {k: round(v, 1) for k, v in med.items()},
            "ratio_default_over_one_at_a_time_1x1": round(ratio, 3), "ratios_per_round_over_1x1": [round(x, 3) for x in ratios],
            "ratio_default_over_former_1x2": round(ratio_former, 3), "ratios_per_round_over_former": [round(x, 3) for x in former],
            "texts_identical_across_shapes": same, "fastest": best}


def latency_without_queueing(n: int) -> dict:
    use_shape(1, 2)
    run = product_run(PROMPTS[:n], concurrency=4)
    share = sum(run["latency_ms"]) / 1000 / run["wall_s"]
    # Had each call counted its wait, the sum would be about (n + 1) / 2 wall times.
    report("c", f"1 context, {n} calls in flight: sum of stored latency / wall", f"{share:.2f}",
           f"target <= 1.00 (queueing counted would be about {(n + 1) / 2:.1f}): {verdict(share <= 1.0)}")
    return {"calls": n, "sum_latency_over_wall": round(share, 3)}


def beside_embedder(n: int) -> dict:
    """Generation while the embedder (torch, in this process) embeds in a loop: the app can do
    both at once (a job generating while a page embeds an import). Tokens/s and texts/s for the
    former default (1 context x 2 threads), the default and the other shapes of 1-thread contexts."""
    from synth.analysis.embedding import get_embedder

    embedder = get_embedder()
    texts = [f"A short review number {i} of a tent that kept the rain out." for i in range(64)]
    embedder.embed(texts[:8])  # loaded and warm before any timing
    out: dict = {}
    for label, contexts, threads, concurrency in (FORMER, DEFAULT, *OTHERS):
        use_shape(contexts, threads)
        stop = threading.Event()
        embedded = [0]

        def embed_loop():
            while not stop.is_set():
                embedder.embed(texts)
                embedded[0] += len(texts)

        worker = threading.Thread(target=embed_loop)
        start = time.perf_counter()
        worker.start()
        run = product_run(PROMPTS[:n], concurrency)
        stop.set()
        worker.join()
        wall = time.perf_counter() - start
        out[label] = {"tokens_per_s": round(run["tokens_per_s"], 1), "embedded_texts_per_s": round(embedded[0] / wall, 1)}
        report("f", f"beside the embedder, {label}",
               f"{run['tokens_per_s']:.1f} tok/s, embedder {embedded[0] / wall:.0f} texts/s")
    ratio = out[DEFAULT[0]]["tokens_per_s"] / out[FORMER[0]]["tokens_per_s"]
    report("f", f"ratio beside the embedder: default {DEFAULT_SHAPE} / former 1 x 2 tokens/s", f"{ratio:.2f}x",
           f"target >= 1.00: {verdict(ratio >= 1.0)}")
    out["ratio"] = round(ratio, 3)
    return out


COMMANDS = [  # commands that need neither embeddings nor a model
    ("--help", ["--help"]),
    ("sql", ["sql", "select count(*) as n from items"]),
    ("export", ["export", "--out", "{tmp}/out.jsonl"]),
    ("prompts list", ["prompts", "list"]),
    ("licences", ["licences"]),
    ("review --accept", ["review", "{item}", "--accept"]),
]


def imports(folder: Path) -> dict:
    from synth.kernel.records import Item, Run
    from synth.store import DuckStore

    db = folder / "imports.duckdb"
    store = DuckStore(str(db))
    store.save_run(Run(name="import check", technique="sampling"),
                   [Item(text=f"A short text number {i}.", idx=i) for i in range(5)])
    item = str(store.items()["item_id"].iloc[0])
    del store
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNTH_DB": str(db)}
    out: dict = {}
    for label, args in COMMANDS:
        argv = [a.format(tmp=folder, item=item) for a in args]
        if argv[0] != "--help":
            argv += ["--db", str(db)]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "synth", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - start
        loaded = set()
        for line in proc.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                loaded.add(line.rsplit("|", 1)[1].strip().split(".")[0])
        heavy = [m for m in HEAVY if m in loaded]
        ok = proc.returncode == 0 and not any(m in heavy for m in FORBIDDEN)
        out[label] = {"returncode": proc.returncode, "wall_s": round(wall, 2), "heavy_imports": heavy}
        report("d", f"python -m synth {label}", f"{wall:.2f} s, exit {proc.returncode}, imports "
               + (", ".join(heavy) or "none of " + "/".join(HEAVY)),
               f"target no {' / '.join(FORBIDDEN)}: {verdict(ok)}")
    return out


def map_section() -> dict | None:
    """bench_map's CLI-only measurement: `synth map` at 5k in a new process against a warm fit."""
    spec = importlib.util.spec_from_file_location("bench_map", ROOT / "bench" / "bench_map.py")
    if spec is None:
        return None
    bench_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_map)
    if not hasattr(bench_map, "cli_map"):
        report("e", "map at 5k vs warm fit", "skipped: bench_map.py has no cli_map()")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        figures = bench_map.cli_map(Path(tmp))
    ratio = figures.get("ratio: synth map cold / warm fit")
    rounds = figures.get("ratio: synth map cold / warm fit, rounds")
    verdict = "" if ratio is None else f"   (target <= 2.00: {'PASS' if ratio <= 2.0 else 'FAIL'})"
    report("e", "synth map at 5k, new process / warm fit", f"{ratio}x "
           f"({figures.get('synth map, new process_s')} s vs {figures['fit (exact kNN, ours)']['warm_s']} s; "
           f"median of rounds {rounds}){verdict}")
    return figures


# -- g. Studio's Preview in a real browser ----------------------------------------------------------

# Each preview item's caption ends with "writing…" or its latency; a stale one (the last preview's,
# still faded on screen while the page reruns) does not count.
PREVIEW_CELLS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
  .filter(e => !e.closest('[data-stale="true"]'))
  .map(e => e.innerText.trim()).filter(t => /^#\\d+/.test(t))
  .map(t => t.endsWith("writing…") ? "writing" : (/ · \\d+ ms$/.test(t) ? "stop" : ""))"""


def preview_in_browser(rounds: int) -> dict:
    """Studio's Preview with the embedded model in headless chromium (the app idle, its models
    preloaded): seconds from the click until the first item's text is on screen, until all 3 items
    are (being written or done), and until the preview is complete. A new seed each round, so
    nothing comes from the cache."""
    sys.path.insert(0, str(ROOT / "tests"))
    from appserver import APP_IDLE_JS, launch_browser, start_app, stop_app
    from playwright.sync_api import sync_playwright

    from synth.workflows.studio import PREVIEW_N

    for name in ("SYNTH_LOCAL_CONTEXTS", "SYNTH_LOCAL_THREADS"):  # the app runs its defaults, not
        os.environ.pop(name, None)                                 # the last shape measured above
    marks: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        url, proc, log = start_app(Path(tmp))
        try:
            with sync_playwright() as p:
                context = launch_browser(p, Path(tmp) / "profile")
                page = context.new_page()
                page.goto(f"{url}/studio")
                page.get_by_text("Rendered prompts").wait_for(timeout=300_000)
                page.wait_for_function(APP_IDLE_JS, timeout=300_000)
                time.sleep(45)  # the demo's embedding and layout, and the preload, finish first
                main = page.locator('[data-testid="stMainBlockContainer"]')
                for r in range(rounds):
                    if r:  # a new session: the last round's preview is not on the page
                        page.reload()
                        page.get_by_text("Rendered prompts").wait_for(timeout=300_000)
                        page.wait_for_function(APP_IDLE_JS, timeout=300_000)
                    seed = main.get_by_label("Seed", exact=True)
                    seed.fill(str(SEED + 100 + r))
                    seed.press("Tab")
                    time.sleep(0.5)
                    page.wait_for_function(APP_IDLE_JS, timeout=300_000)
                    start = time.perf_counter()
                    page.get_by_role("button", name="Preview", exact=True).click()
                    mark: dict = {}
                    while "done_s" not in mark and time.perf_counter() - start < 300:
                        cells = page.evaluate(PREVIEW_CELLS_JS)
                        writing = sum(c.startswith("writing") for c in cells)
                        done = sum(c in ("stop", "length") for c in cells)
                        now = round(time.perf_counter() - start, 2)
                        if writing + done >= 1:
                            mark.setdefault("first_text_s", now)
                        if writing + done >= PREVIEW_N:
                            mark.setdefault("all_on_screen_s", now)
                        caption = page.get_by_text(f"Preview: {PREVIEW_N} items")
                        if caption.count() and "changed since" not in caption.first.inner_text() \
                                and page.evaluate(APP_IDLE_JS):
                            mark["done_s"] = now
                        time.sleep(0.05)
                    marks.append(mark)
                    print(f"  round {r + 1}: {mark}", flush=True)
                context.close()
        finally:
            stop_app(proc, log)
    med = {k: statistics.median(m[k] for m in marks if k in m) for k in ("first_text_s", "all_on_screen_s", "done_s")
           if any(k in m for m in marks)}
    report("g", "Studio Preview, click to the first item's text on screen (median)", f"{med.get('first_text_s')} s",
           f"target < 3 s: {verdict(med.get('first_text_s', 99) < 3)}")
    report("g", f"Studio Preview, click to all {PREVIEW_N} items on screen, being written or done (median)",
           f"{med.get('all_on_screen_s')} s", f"target < 3 s: {verdict(med.get('all_on_screen_s', 99) < 3)}")
    report("g", f"Studio Preview, click to all {PREVIEW_N} items complete (median)", f"{med.get('done_s')} s")
    return {"rounds": marks, "median": med}


# -- embedding: bench/bench_embed.py is written in parallel; this is where its figures join -----------

def embedding_section(quick: bool = False) -> dict | None:
    """Call ``bench.bench_embed.measure()`` if bench/bench_embed.py exists; it returns a dict of figures."""
    path = ROOT / "bench" / "bench_embed.py"
    if not path.exists():
        report("e", "embedding (bench/bench_embed.py)", "skipped: the file does not exist yet")
        return None
    spec = importlib.util.spec_from_file_location("bench_embed", path)
    bench_embed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_embed)
    measure = getattr(bench_embed, "measure", None)
    if measure is None:
        report("e", "embedding (bench/bench_embed.py)", "skipped: it has no measure()")
        return None
    figures = measure(quick=quick) if "quick" in inspect.signature(measure).parameters else measure()
    for key, value in (figures or {}).items():
        if not isinstance(value, (dict, list)):
            report("e", f"embedding: {key}", str(value))
    for key, row in ((figures or {}).get("by_length") or {}).items():
        report("e", f"embedding: onnx / raw sentence-transformers on {key} ({row['mean_tokens']} tokens)",
               f"{row['onnx_over_raw']}x ({row['onnx_texts_per_s']} vs {row['raw_st_texts_per_s']} texts/s)")
    for key, check in ((figures or {}).get("checks") or {}).items():  # bench_embed's own verdicts
        report("e", f"embedding: {key}", str(check.get("value")), f"target {check.get('target')}: {check.get('result')}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, one round, no map section")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, 1 with --quick)")
    parser.add_argument("--skip-map", action="store_true", help="skip bench_map's 5k CLI section")
    parser.add_argument("--skip-embed", action="store_true", help="skip section f and embedding_section()")
    parser.add_argument("--skip-browser", action="store_true", help="skip section g (Studio's Preview in chromium)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    batch_n = 8 if args.quick else 12
    providers.get_litellm()  # imported once, outside the timings
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "load average at start": [round(v, 2) for v in os.getloadavg()], "rounds": rounds,
                     "defaults": {"local_contexts": settings.SETTINGS["local_contexts"].default,
                                  "local_threads": settings.SETTINGS["local_threads"].default}}
    contexts, threads = results["defaults"]["local_contexts"], results["defaults"]["local_threads"]
    print(f"a/c. product vs raw llama.cpp ({rounds} rounds)", flush=True)
    results["a_product_vs_raw"] = product_vs_raw(rounds, contexts, threads, settings.DEFAULT_CONCURRENCY)
    print(f"b. {batch_n} calls on several contexts vs one at a time", flush=True)
    results["b_contexts"] = contexts_vs_one(batch_n, rounds)
    results["c_latency_no_queueing"] = latency_without_queueing(4 if args.quick else 6)
    if not args.skip_embed:
        print("f. generation beside the embedder", flush=True)
        results["f_beside_embedder"] = beside_embedder(batch_n)
    providers._unload_llama(NAME)
    if not (args.quick or args.skip_browser):
        print("g. Studio's Preview in chromium", flush=True)
        results["g_preview"] = preview_in_browser(rounds)
    with tempfile.TemporaryDirectory() as tmp:
        print("d. heavy imports of commands that need no model", flush=True)
        results["d_imports"] = imports(Path(tmp))
    if not (args.quick or args.skip_map):
        print("e. bench_map CLI section", flush=True)
        results["e_map"] = map_section()
    if not args.skip_embed:
        results["e_embedding"] = embedding_section(quick=args.quick)
    out = ROOT / "bench" / "results" / ("loop_quick.json" if args.quick else "loop.json")
    if out.exists():  # keep the last figures of the sections skipped this time
        for key, value in json.loads(out.read_text()).items():
            if key in ("e_map", "e_embedding", "f_beside_embedder", "g_preview") and key not in results:
                results[key] = value
    results["load average at end"] = [round(v, 2) for v in os.getloadavg()]
    print()
    width = max(len(m) for _, m, _, _ in rows)
    for section, measure, value, target in rows:
        print(f"{section}  {measure:<{width}}  {value}" + (f"   [{target}]" if target else ""))
    results["table"] = [{"section": s, "measure": m, "value": v, "target": t} for s, m, v, t in rows]
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
