"""Batching: 200 items against the local OpenAI-compatible test server with 1 s latency per call.

Prints and saves bench/results/batch.json: wall time at several concurrency limits, the
sequential time (concurrency 1), and their ratio. Target: 200 items in at most 5 s (40x or better).
Run: python bench/bench_batch.py [--sequential-n N]   (N < 200 extrapolates the sequential time)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from openai_server import OpenAITestServer, ServerConfig  # noqa: E402

from synth.llm import providers  # noqa: E402
from synth.llm.batch import BatchSettings, Call, run_batch  # noqa: E402

N = 200
LATENCY_S = 1.0


def calls(n: int, tag: str) -> list[Call]:
    return [Call(i, [{"role": "user", "content": f"{tag} item {i}"}]) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential-n", type=int, default=N, help="calls to time at concurrency 1")
    args = parser.parse_args()
    providers.get_litellm()  # import once, outside the timings
    results: dict = {"items": N, "latency_s": LATENCY_S}
    with OpenAITestServer(ServerConfig(latency_s=LATENCY_S)) as server:
        run_batch(calls(4, "warm"), BatchSettings(model="openai/test-model", api_base=server.api_base))
        for concurrency in (50, 100, 200):
            start = time.perf_counter()
            outcome = run_batch(calls(N, f"c{concurrency}"), BatchSettings(
                model="openai/test-model", api_base=server.api_base, concurrency=concurrency))
            wall = time.perf_counter() - start
            assert len(outcome.succeeded) == N, outcome.failed[:1]
            results[f"wall_s_concurrency_{concurrency}"] = round(wall, 2)
            print(f"{N} items, concurrency {concurrency:3d}: {wall:6.2f} s "
                  f"(server saw at most {server.config.max_in_flight} at once)")
        start = time.perf_counter()
        run_batch(calls(args.sequential_n, "seq"), BatchSettings(
            model="openai/test-model", api_base=server.api_base, concurrency=1))
        seq = (time.perf_counter() - start) * N / args.sequential_n
    results["sequential_s"] = round(seq, 1)
    results["sequential_measured_items"] = args.sequential_n
    best = min(v for k, v in results.items() if k.startswith("wall_s_"))
    results["best_wall_s"] = best
    results["speedup"] = round(seq / best, 1)
    print(f"sequential ({args.sequential_n} calls measured): {seq:.1f} s for {N}; "
          f"best {best:.2f} s -> {results['speedup']}x")
    out = ROOT / "bench" / "results" / "batch.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
