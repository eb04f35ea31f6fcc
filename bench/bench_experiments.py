"""Prompt experiments and hand-offs at scale: an A/B comparison of two runs, the Hugging Face
folder export and the standalone HTML report, at two dataset sizes.

Two symbolic runs (grammars, no model) of n items each go into a fresh database through the same
pipeline as the app (embedded with the real all-MiniLM-L6-v2 model). Then, in one process:
compare_runs (metrics, clusters, map with a synchronous UMAP fit, items side by side), a second
compare_runs (everything stored), export_dataset and write_report. Prints and saves
bench/results/experiments.json. Run: python bench/bench_experiments.py [--sizes 500 2500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.generate.config import RunConfig  # noqa: E402
from synth.outputs.export import export_dataset  # noqa: E402
from synth.outputs.report import write_report  # noqa: E402
from synth.store import DuckStore  # noqa: E402
from synth.workflows.compare import compare_runs  # noqa: E402
from synth.workflows.pipeline import generate_run  # noqa: E402

GRAMMAR_A = {"start": "<greeting> I <problem> my <product> <when>. <ask>",
             "rules": {"greeting": ["Hi,", "Hello,", "Good morning,", "Hey team,", "Dear support,"],
                       "problem": ["cannot log in to", "was charged twice for", "never received", "want to cancel",
                                   "cannot update", "lost access to", "need an invoice for"],
                       "product": ["account", "order", "subscription", "gift card", "router", "headphones",
                                   "mobile plan", "printer"],
                       "when": ["today", "since Monday", "after the update", "again", "this week", ""],
                       "ask": ["Can you help?", "What should I do?", "Please fix this.", "Thanks.", "Any news?"]}}
GRAMMAR_B = {"start": "<greeting> my <product> is broken. <ask>",
             "rules": {"greeting": ["Hi,", "Hello,"], "product": ["account", "order", "router"],
                       "ask": ["Can you help?", "Please fix this."]}}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return round(time.perf_counter() - start, 2), out


def bench(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckStore(Path(tmp) / "bench.duckdb")
        made_s, (a, b) = timed(lambda: [generate_run(store, RunConfig(technique="symbolic", grammar=g, n=n, seed=s,
                                                                      run_name=name)).run_id
                                         for g, s, name in ((GRAMMAR_A, 1, "A"), (GRAMMAR_B, 2, "B"))])
        first_s, result = timed(lambda: compare_runs(store, a, b, background=False))
        again_s, _ = timed(lambda: compare_runs(store, a, b, background=False))
        export_s, exported = timed(lambda: export_dataset(store, Path(tmp) / "hf"))
        report_s, report = timed(lambda: write_report(store, Path(tmp) / "report.html"))
        folder_bytes = sum(f.stat().st_size for f in (Path(tmp) / "hf").rglob("*") if f.is_file())
        metrics = result.metrics.set_index("metric")
        return {"items": 2 * n, "generate_embed_measure_s": made_s, "compare_first_s": first_s,
                "compare_again_s": again_s, "export_hf_s": export_s, "export_hf_bytes": folder_bytes,
                "report_s": report_s, "report_bytes": report["bytes"], "rows": exported["rows"],
                "distinct_2_a_b": [round(metrics.loc["distinct_2", "a"], 3), round(metrics.loc["distinct_2", "b"], 3)],
                "distinct_2_change": metrics.loc["distinct_2", "change"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2500], help="items per run")
    args = parser.parse_args()
    os.environ.setdefault("SYNTH_LOG_LEVEL", "WARNING")
    results = []
    for n in args.sizes:
        row = bench(n)
        results.append(row)
        print(json.dumps(row))
    out = ROOT / "bench" / "results" / "experiments.json"
    out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results}, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
