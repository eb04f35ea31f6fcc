"""The Explore page ("Diversity map") at scale, in headless chromium, against a plain plotly floor.

What it measures, at each size (default 10,000 / 50,000 / 200,000 items), in interleaved rounds:
- product: ``streamlit run app.py`` on a copy of a prepared database, the Explore page opened in
  chromium; "first draw" is navigation to the map's points drawn (the plotly figure holds every
  point, its WebGL canvas or SVG points exist, and the "Loading the map…" placeholder is gone);
  "redraw" is typing a regex in the sidebar's "Keep only texts matching (regex)" box to the map
  drawn again with fewer points; "page done" is the first run's end (metrics included);
  "server start to first draw" is the cold start on that database.
- floor: a minimal Streamlit app, ``st.plotly_chart(go.Figure(go.Scattergl(x=..., y=...)))`` of the
  same points with the same regex box, in the same chromium, measured the same way.
- peak memory: the streamlit server process's RSS high-water mark (``VmHWM`` in /proc/PID/status)
  after the first draw, the redraw and the end of the page's runs.
- payload: websocket bytes the browser received for the first page (and the largest message,
  which is the map's figure).
Then the cold start of the demo database (fresh, and a restart with its layout stored) against a
five-line plotly app, as bench/bench_map.py measures it. Ratios are taken within a round, the
median round reported.

Databases are built once and cached in bench/.cache/explore-<size>.duckdb (each round runs on a
copy): items saved through the store API in 5 runs, with synthetic texts from 40 planted topics;
their vectors synthetic 384-d unit vectors of the same topics (``topics()`` as in bench_map.py)
put straight into the embedding cache; the layout is NOT a UMAP fit (UMAP at 200k takes minutes):
each topic's centre is placed on a 2-d ring and its items scattered around it, stored as the UMAP
layout with the default parameters, so the page finds a stored layout as after a real fit. The
clustering is the planted topics, stored as the default clusterer's fit (with c-TF-IDF names),
and the per-run metrics are computed once, so the page meets the steady state of a used database.

Run: flock /tmp/bench.lock .venv/bin/python bench/bench_explore.py [--sizes 10000 50000 200000]
     [--rounds 3] [--skip-cold] [--skip-floor] [--label NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
CACHE = ROOT / "bench" / ".cache"
BUILD = "2"  # bump when the database recipe changes
TOPICS = 40
RUNS = 5
FILTER_REGEX = "alpha"  # a word in about half of the texts
TIMEOUT_MS = 600_000

# The map drawn from its current figure: the plot with the most points holds ``expected`` of them
# (or, with expected < 0, any number other than -expected), its layout is laid out, its WebGL
# canvas (or its SVG points) exist, and no "Loading the map…" annotation is left.
DRAWN_JS = """(expected) => {
  let best = null, most = -1;
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (!gd._fullData || !gd._fullLayout) continue;
    const n = gd._fullData.reduce((s, t) => s + (t._length || (t.x ? t.x.length : 0) || 0), 0);
    if (n > most) { most = n; best = gd; }
  }
  if (!best || most <= 0) return false;
  const anns = (best._fullLayout.annotations || []).map(a => a.text || "");
  if (anns.some(t => t.includes("Loading"))) return false;
  const gl = best._fullData.some(t => t.type === "scattergl");
  const painted = gl ? !!best.querySelector("canvas") : best.querySelectorAll(".scatterlayer .point").length > 0;
  if (!painted) return false;
  if (expected > 0 ? most !== expected : most === -expected) return false;
  return most;
}"""

# Resolves once the browser has painted a frame after the call (two animation frames).
PAINTED_JS = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"

FLOOR_APP = """
import json
import re
import numpy as np
import plotly.graph_objects as go
import streamlit as st

@st.cache_resource
def load():
    return np.load("xy.npy"), json.load(open("texts.json"))

xy, texts = load()
pattern = st.sidebar.text_input("Keep only texts matching (regex)")
keep = np.array([bool(re.search(pattern, t, re.I)) for t in texts]) if pattern else np.ones(len(xy), bool)
st.plotly_chart(go.Figure(go.Scattergl(x=xy[keep, 0], y=xy[keep, 1], mode="markers")))
"""

FIVE_LINE_APP = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.title("Diversity map")
xy = np.random.default_rng(0).normal(size=(290, 2))
st.plotly_chart(go.Figure(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers")))
st.caption("layout: none")
"""


def topics(n: int, seed: int = 0, dims: int = 384, k: int = TOPICS) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors around k planted topic centres, and each one's topic (as in bench_map.py)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dims))
    topic = rng.integers(0, k, n)
    x = centres[topic] + rng.normal(scale=0.6, size=(n, dims))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), topic


def synthetic_texts(topic: np.ndarray, seed: int = 1) -> list[str]:
    """One distinct sentence of 12 to 30 words per item, most words from its topic's vocabulary."""
    rng = np.random.default_rng(seed)
    common = ["the", "a", "and", "of", "to", "is", "with", "for", "alpha", "on", "my", "it"]
    vocab = [[f"t{k}w{j}" for j in range(30)] for k in range(TOPICS)]
    out = []
    for i, k in enumerate(topic):
        words = [vocab[k][j] if rng.random() < 0.6 else common[j % len(common)]
                 for j in rng.integers(0, 30, int(rng.integers(12, 31)))]
        out.append(" ".join(words) + f" n{i}.")
    return out


def ring_layout(topic: np.ndarray, seed: int = 2) -> np.ndarray:
    """A cheap stand-in for a UMAP fit: each topic a blob on a ring, the blobs of unequal size."""
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * np.arange(TOPICS) / TOPICS
    centres = np.c_[np.cos(angle), np.sin(angle)] * 10 + rng.normal(scale=1.5, size=(TOPICS, 2))
    spread = rng.uniform(0.3, 1.2, TOPICS)
    return centres[topic] + rng.normal(size=(len(topic), 2)) * spread[topic, None]


def build_database(n: int) -> Path:
    """The cached database of ``n`` items (built on first use), and the floor app's data beside it."""
    path = CACHE / f"explore-{n}-v{BUILD}.duckdb"
    if path.exists():
        return path
    os.environ["SYNTH_DB"] = str(path)
    os.environ["SYNTH_LOAD_DEMO"] = "0"
    import pandas as pd

    from synth.analysis.projection import LAYOUT, umap_params
    from synth.kernel import settings
    from synth.kernel.records import Item, Run, items_signature, new_id, text_hash
    from synth.store import DuckStore

    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    store = DuckStore(str(tmp))
    vectors, topic = topics(n)
    texts = synthetic_texts(topic)
    per = -(-n // RUNS)
    batch = []
    for r in range(RUNS):
        chunk = range(r * per, min(n, (r + 1) * per))
        batch.append((Run(name=f"bench run {r}", technique="sampling", model="bench-model"),
                      [Item(text=texts[i], idx=j, model="bench-model", tokens_out=len(texts[i]) // 5)
                       for j, i in enumerate(chunk)], None))
    store.save_runs(batch)
    model = settings.get("embed_model")
    store.put_embeddings(model, [text_hash(t) for t in texts], vectors)
    items = store.items()
    order = {t: i for i, t in enumerate(texts)}
    rows = items["text"].map(order).to_numpy()
    xy = ring_layout(topic)[rows]
    frame = pd.DataFrame({"item_id": items["item_id"].values, "x": xy[:, 0], "y": xy[:, 1], "placed": "fit"})
    signature = items_signature(items)
    store.save_fit("layout", new_id("lay"), LAYOUT.name, model, umap_params(), signature, frame,
                   extra={"trustworthiness": None, "trust_params": {"synthetic": True}, "placement": None})
    del store
    prepare_state(tmp)
    np.save(CACHE / f"explore-{n}-v{BUILD}.xy.npy", xy)
    (CACHE / f"explore-{n}-v{BUILD}.texts.json").write_text(json.dumps(items["text"].tolist()))
    os.replace(tmp, path)
    print(f"built {path.name}: {n} items in {time.perf_counter() - start:.1f} s", flush=True)
    return path


def prepare_state(path: Path) -> None:
    """Store the planted topics as the current default clustering (whatever its parameters are
    now: they change with the code) and the per-run metrics, if the database lacks them."""
    from synth.analysis.clustering import current_clustering, make_clusterer
    from synth.analysis.metrics import compute_all_metrics
    from synth.store import DuckStore

    store = DuckStore(str(path))
    cls = type(make_clusterer())
    fit = cls.fit
    texts = store.items()["text"]
    planted = texts.str.findall(r"t(\d+)w").map(lambda ks: max(set(ks), key=ks.count) if ks else "0")
    cls.fit = lambda self, vectors: planted.astype(int).to_numpy()  # the topics, not a k-means fit
    try:
        current_clustering(store)
    finally:
        cls.fit = fit
    compute_all_metrics(store)


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def wait_drawn(page, expected: int) -> int:
    """DRAWN_JS in the page or in any of its frames (a large Explore map is drawn in a component's
    frame, pages/mapview.py), polled every 50 ms, then the next frame the browser paints (polled
    from here, DRAWN_JS can hold while the points are still being drawn: at 200k the floor's plot
    was seen 2.8 s after navigation and painted at 5.9 s)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                drawn = frame.evaluate(DRAWN_JS, expected)
                if drawn:
                    frame.evaluate(PAINTED_JS)
                    return drawn
            except Exception:  # a frame navigating or gone: the next poll looks again
                pass
        time.sleep(0.05)
    raise TimeoutError(f"no map drawn with {expected} points in {TIMEOUT_MS / 1000:.0f} s")


def wait_idle(page) -> None:
    from appserver import APP_IDLE_JS

    page.wait_for_function(APP_IDLE_JS, timeout=TIMEOUT_MS, polling=100)


def measure_app(context, folder: Path, db: Path | None, app_dir: Path, n: int) -> dict:
    """Server start, first draw, page done, regex filter redraw, and peak memory of one app."""
    from appserver import start_app, stop_app

    start = time.perf_counter()
    url, proc, log = start_app(folder, db, app_dir=app_dir, timeout_s=300)
    out: dict = {"server_up_s": round(time.perf_counter() - start, 2)}
    frames: list[int] = []
    page = context.new_page()
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(len(p))))
    try:
        nav = time.perf_counter()
        page.goto(url)  # Explore is the default page, at the root
        drawn = wait_drawn(page, n)
        now = time.perf_counter()
        out.update(first_draw_s=round(now - nav, 2), server_start_to_draw_s=round(now - start, 2), points=drawn)
        out["payload_first_draw_MB"] = round(sum(frames) / 1e6, 2)
        out["largest_message_MB"] = round(max(frames, default=0) / 1e6, 2)
        out["peak_after_draw_MB"] = peak_mb(proc.pid)
        wait_idle(page)
        out["page_done_s"] = round(time.perf_counter() - nav, 2)
        out["peak_after_page_MB"] = peak_mb(proc.pid)
        box = page.get_by_label("Keep only texts matching (regex)")
        box.fill(FILTER_REGEX)
        before = len(frames)
        edit = time.perf_counter()
        box.press("Enter")
        out["filtered_points"] = wait_drawn(page, -drawn)
        out["redraw_s"] = round(time.perf_counter() - edit, 2)
        out["payload_redraw_MB"] = round(sum(frames[before:]) / 1e6, 2)
        wait_idle(page)
        out["redraw_done_s"] = round(time.perf_counter() - edit, 2)
        out["peak_MB"] = peak_mb(proc.pid)
    except Exception:
        page.screenshot(path=str(folder.parent / "bench-explore-failure.png"))
        print("failed at", out, "screenshot in", folder.parent / "bench-explore-failure.png", flush=True)
        raise
    finally:
        page.close()
        stop_app(proc, log)
    return out


def floor_dir(folder: Path, n: int) -> Path:
    app = folder / f"floor-{n}"
    (app / ".streamlit").mkdir(parents=True, exist_ok=True)
    (app / "app.py").write_text(FLOOR_APP)
    (app / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
    shutil.copy(CACHE / f"explore-{n}-v{BUILD}.xy.npy", app / "xy.npy")
    shutil.copy(CACHE / f"explore-{n}-v{BUILD}.texts.json", app / "texts.json")
    return app


def median_round(rounds: list[dict], key: str) -> dict:
    """The round whose ``key`` is the median (so its figures are from one and the same round)."""
    values = [r[key] for r in rounds]
    return rounds[values.index(statistics.median_low(values))]


def scale(context, folder: Path, sizes: list[int], rounds: int, floor: bool, large_rounds: int | None) -> dict:
    out: dict = {}
    for n in sizes:
        n_rounds = large_rounds if large_rounds and n >= 100_000 else rounds
        db = build_database(n)
        prepare_state(db)
        product, plain = [], []
        for r in range(n_rounds):  # interleaved: product, then floor, in each round
            copy = folder / f"round-{n}.duckdb"
            shutil.copy(db, copy)
            product.append(measure_app(context, folder, copy, ROOT, n))
            copy.unlink(missing_ok=True)
            print(f"{n:>7} product round {r}: {product[-1]}", flush=True)
            if floor:
                plain.append(measure_app(context, folder, None, floor_dir(folder, n), n))
                print(f"{n:>7} floor   round {r}: {plain[-1]}", flush=True)
        entry: dict = {"product_rounds": product, "floor_rounds": plain}
        if floor:
            for key in ("first_draw_s", "redraw_s", "server_start_to_draw_s"):
                ratios = [p[key] / f[key] for p, f in zip(product, plain)]
                entry[f"ratio {key}"] = round(statistics.median(ratios), 2)
                entry[f"ratio {key}, rounds"] = [round(x, 2) for x in ratios]
        for who, rs in (("product", product), ("floor", plain)):
            if rs:
                entry[who] = {k: statistics.median(r[k] for r in rs) for k in rs[0]
                              if isinstance(rs[0][k], (int, float))}
        out[str(n)] = entry
    return out


def cold_start(context, folder: Path, rounds: int) -> dict:
    """The demo database: a fresh start (demo load) and a restart, against the five-line app."""
    five = folder / "five"
    (five / ".streamlit").mkdir(parents=True, exist_ok=True)
    (five / "app.py").write_text(FIVE_LINE_APP)
    (five / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
    os.environ["SYNTH_LOAD_DEMO"] = "1"
    rows = []
    for _ in range(rounds):
        db = folder / "cold.duckdb"
        db.unlink(missing_ok=True)
        row = {}
        for label, app_dir in (("fresh", ROOT), ("restart", ROOT), ("five-line", five)):
            start = time.perf_counter()
            from appserver import start_app, stop_app

            url, proc, log = start_app(folder, db, app_dir=app_dir, timeout_s=300)
            page = context.new_page()
            try:
                page.goto(url)
                wait_drawn(page, 0 - 10**9)  # any number of points
                row[label] = round(time.perf_counter() - start, 2)
                if app_dir == ROOT:
                    wait_idle(page)
            finally:
                page.close()
                stop_app(proc, log)
        rows.append(row)
        print(f"cold start: {row}", flush=True)
    out = {"rounds_s": rows}
    for label in ("fresh", "restart"):
        ratios = [r[label] / r["five-line"] for r in rows]
        out[f"ratio {label} / five-line"] = round(statistics.median(ratios), 2)
        out[f"ratio {label} / five-line, rounds"] = [round(x, 2) for x in ratios]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000, 50000, 200000],
                        help="items per database (none: the cold start only)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-rounds", type=int, default=None, help="rounds at 100,000 items and more")
    parser.add_argument("--skip-cold", action="store_true", help="no demo cold-start section")
    parser.add_argument("--skip-floor", action="store_true", help="the product only")
    parser.add_argument("--label", default="", help="a note saved with the figures (e.g. which plots.py)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "explore.json"))
    args = parser.parse_args()
    for n in args.sizes:
        build_database(n)
    from appserver import launch_browser
    from playwright.sync_api import sync_playwright

    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "label": args.label, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                     "load average at start": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        folder = Path(tmp)
        context = launch_browser(p, folder / "profile")
        context.new_page().goto("about:blank")  # the browser is up before any clock starts
        results["scale"] = scale(context, folder, args.sizes, args.rounds, not args.skip_floor,
                                 args.large_rounds)
        if not args.skip_cold:
            results["cold_start"] = cold_start(context, folder, args.rounds)
        context.close()
    results["load average at end"] = [round(v, 2) for v in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
