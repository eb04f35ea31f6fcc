"""Commands that measure and inspect data: metrics, the map, A/B comparisons, prompt versions and
the read-only SQL console."""

from __future__ import annotations

import argparse
import json

from synth.cli.base import Progress, command, emit, open_db
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import format_number

COVERAGE_HELP = (
    "With reference (real) data in the database (python -m synth import FILE --reference), the result "
    "also has coverage: how much of the real data the synthetic items reach. With --json, key "
    "\"coverage\" holds recall, precision, k (neighbours that set each real item's neighbourhood, "
    "$SYNTH_COVERAGE_K), reference_items, synthetic_items, reference_reached, synthetic_near, clusters "
    "(every cluster's figures, lowest recall first) and worst (the worst-covered clusters, noise left "
    "out); key \"coverage_reason\" is null. Without reference data (or with too little), \"coverage\" "
    "is null and \"coverage_reason\" says why.")


def coverage_fields(summary) -> dict:
    """The two keys --json output gives coverage: "coverage" (figures, or null) and "coverage_reason"."""
    figures = {k: v for k, v in summary.to_dict().items() if k != "reason"}
    return {"coverage": figures if summary.measured else None, "coverage_reason": summary.reason}


def coverage_lines(summary) -> list[str]:
    """Coverage as the terminal shows it: the plain sentences, then the worst-covered clusters."""
    from synth.analysis.coverage import coverage_sentences, percent

    lines = ["coverage of the reference (real) data:"] + [f"  {s}" for s in coverage_sentences(summary)]
    if summary.worst:
        lines += ["  worst-covered clusters (lowest recall first):",
                  f"    {'cluster':>7}  {'real':>5}  {'synthetic':>9}  {'recall':>6}  {'precision':>9}  name"]
        lines += [f"    {c['cluster']:>7}  {c['reference_items']:>5}  {c['synthetic_items']:>9}  "
                  f"{percent(c['recall']):>6}  {percent(c['precision']):>9}  {c['cluster_name']}"
                  for c in summary.worst]
    return lines


def metrics_options(m: argparse.ArgumentParser) -> None:
    m.epilog = COVERAGE_HELP
    m.add_argument("--run", help="run id or name (default: every run)")
    m.add_argument("--threshold", type=float, default=None, help="near-duplicate cosine threshold")
    m.add_argument("--force", action="store_true", help="recompute even if inputs are unchanged")


@command("metrics", "intrinsic metrics per run", metrics_options)
def cmd_metrics(args: argparse.Namespace) -> int:
    from synth.analysis.comparable import (
        TOO_SMALL,
        interval_text,
        min_items,
        runs_at_common_size,
        too_small,
    )
    from synth.analysis.metrics import run_metrics
    from synth.outputs.export import store_coverage

    store = open_db(args)
    run_ids = [store.resolve_run(args.run)] if args.run else None
    results = [{"run_id": r["run_id"], "run_name": r["run"], "metrics": r["metrics"], "params": r["params"],
                "comparable": TOO_SMALL if too_small(int(r["metrics"]["count"] or 0)) else ""}
               for r in run_metrics(store, run_ids, args.threshold, force=args.force, with_params=True)]
    if not results:
        raise SynthError("There are no runs yet. Generate or import some first.")
    # across several runs, the size-dependent metrics also at one common size (one run has nothing to match)
    common = (runs_at_common_size(store, [r["run_id"] for r in results], args.threshold)
              if len(results) > 1 else None)
    lines = []
    for r in results:
        lines.append(f"{r['run_id']}  {r['run_name']}" + (f"  ({r['comparable']}: under {min_items()} items)"
                                                           if r["comparable"] else ""))
        lines += [f"  {k:32s} {format_number(v)}" for k, v in r["metrics"].items()]
        if common is not None and common.m is not None and not common.is_too_small(r["run_id"]):
            lines.append(f"  at a common size of {common.m} items (mean [95 % interval]):")
            lines += [f"    {k:30s} {interval_text(common.value(r['run_id'], k))}" for k in common.metrics]
    summary = store_coverage(store, run_ids=run_ids)
    lines += [""] + coverage_lines(summary)
    payload = results[0] if args.run else {"runs": results, "common_n": common.to_dict() if common else None}
    emit(args, {**payload, **coverage_fields(summary)}, "\n".join(lines))
    return 0


def map_options(mp: argparse.ArgumentParser) -> None:
    from synth.analysis.clustering import CLUSTERERS

    mp.epilog = COVERAGE_HELP
    mp.add_argument("--refit", action="store_true", help="a new layout of all items (points move)")
    mp.add_argument("--n-neighbors", type=int)
    mp.add_argument("--min-dist", type=float)
    mp.add_argument("--seed", type=int)
    mp.add_argument("--cluster-method", choices=list(CLUSTERERS))
    mp.add_argument("--k", type=int, help="k-means clusters (default sqrt(n/2))")
    mp.add_argument("--min-cluster-size", type=int, help="HDBSCAN's smallest cluster")
    mp.add_argument("--name-with", metavar="MODEL", help="also name clusters with this litellm model")
    mp.add_argument("--api-base")


@command("map", "compute or refresh the map layout and clusters", map_options)
def cmd_map(args: argparse.Namespace) -> int:
    from synth.analysis.projection import umap_params
    from synth.outputs.export import store_coverage
    from synth.workflows.pipeline import refresh_map

    params = umap_params(args.n_neighbors, args.min_dist, args.seed)
    store = open_db(args)
    report = refresh_map(store, params, args.refit, args.cluster_method, args.k, args.min_cluster_size,
                         args.name_with, args.api_base)
    summary = store_coverage(store, cluster_method=args.cluster_method, cluster_k=args.k,
                             min_cluster_size=args.min_cluster_size)
    trust = "unknown" if report["trustworthiness"] is None else f"{report['trustworthiness']:.3f}"
    lines = [f"layout {report['layout_id']} ({report['method']}, {report['params']}): {report['n_items']} items, "
             f"{report['placed_now']} placed now, trustworthiness {trust}",
             f"clustering {report['clustering_id']} ({report['cluster_method']}, {report['cluster_params']}):"]
    lines += [f"  {c['cluster_id']:>3}  {c['size']:>5}  {c['label']}" for c in report["clusters"]]
    lines += [""] + coverage_lines(summary)
    emit(args, {**report, **coverage_fields(summary)}, "\n".join(lines))
    return 0


def compare_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--a", required=True, metavar="RUN_OR_VERSION", help="run id or name, or 'PROMPT v1' / 'PROMPT@NAME'")
    c.add_argument("--b", required=True, metavar="RUN_OR_VERSION")
    c.add_argument("--n", type=int, help=f"items per version when a version must run (default {settings.DEFAULT_COMPARE_N})")
    c.add_argument("--seed", type=int, help="seed when a version must run (default: the other side's)")
    c.add_argument("--fresh", action="store_true", help="run the versions again instead of reusing paired runs")
    c.add_argument("--api-base", help="OpenAI-compatible server for the versions' runs")
    c.add_argument("--no-map", action="store_true", help="skip the map coordinates (faster)")


def comparison_text(result) -> str:
    """A comparison as the terminal shows it: sides, pairing, metrics, cluster shares, examples."""
    fmt, p = format_number, result.pairing
    lines = [f"{result.a['label']}  ({result.a['run_id']}, {result.a['n_items']} items, {result.a['model']})",
             f"{result.b['label']}  ({result.b['run_id']}, {result.b['n_items']} items, {result.b['model']})",
             f"paired: {'yes' if p['paired'] else 'no'} (same n: {p['same_n']}, same seed: {p['same_seed']}, "
             f"same samples: {p['same_samples']} of {p['n']})"
             + (f"; runs made now: {', '.join(result.made)}" if result.made else ""), "",
             f"{'metric':32s} {'A':>10s} {'B':>10s} {'B - A':>10s}  change"]
    lines += [f"{r.metric:32s} {fmt(r.a):>10s} {fmt(r.b):>10s} {fmt(r.delta):>10s}  {r.change}"
              for r in result.metrics.itertuples()]
    if result.pair_clustering:
        lines.append(f"cluster_entropy_pair: {result.pair_clustering['label']}")
    lines += ["", common_size_text(result)]
    lines += ["", "cluster share, A -> B (largest changes):"]
    lines += [f"  {r.cluster_name[:40]:40s} {r.share_a:6.1%} -> {r.share_b:6.1%}  ({r.difference:+.1%})"
              for r in result.clusters.head(8).itertuples()]
    lines += ["", "items side by side:"]
    for r in result.samples.head(3).itertuples():
        lines += [f"  #{r.idx} {json.dumps(r.variables, ensure_ascii=False)}", f"    A: {r.text_a or '—'}", f"    B: {r.text_b or '—'}"]
    return "\n".join(lines)


def common_size_text(result) -> str:
    """The size-dependent metrics of a comparison at their common size, or why they have none."""
    from synth.analysis.comparable import Interval, interval_text

    info = result.common_n
    if info.get("too_small"):
        return (f"size-dependent metrics: not compared, {' and '.join(info['too_small'])} too small to compare "
                f"(under {info['min_items']} items)")
    lines = [(f"at a common size of {info['m']} items (mean [95 % interval]; better or worse only when the "
              "intervals do not overlap):")]
    for r in result.common.itertuples():
        a, b = (Interval(mean, low, high, info["m"], 0) for mean, low, high in
                ((r.a, r.a_low, r.a_high), (r.b, r.b_low, r.b_high)))
        lines.append(f"  {r.metric:30s} A {interval_text(a):28s} B {interval_text(b):28s} {r.change}")
    return "\n".join(lines)


@command("compare", "A/B: two runs or prompt versions side by side", compare_options)
def cmd_compare(args: argparse.Namespace) -> int:
    from synth.workflows.compare import compare_refs

    with Progress("generating") as bar:
        result = compare_refs(open_db(args), args.a, args.b, n=args.n, seed=args.seed, fresh=args.fresh,
                              api_base=args.api_base, with_map=not args.no_map, background=False,
                              on_item=None if args.json else bar)
    emit(args, result.to_dict(), comparison_text(result))
    return 0


PROMPT_ACTIONS = ("list", "show", "name", "trends")


def prompts_options(pv: argparse.ArgumentParser) -> None:
    pv.add_argument("action", choices=list(PROMPT_ACTIONS))
    pv.add_argument("ref", nargs="?", help="show/name: a version ('PROMPT v2', 'PROMPT@NAME' or its id)")
    pv.add_argument("label", nargs="?", help="name: the version's new name ('' clears it)")
    pv.add_argument("--prompt", help="list/trends: one prompt's versions")
    pv.add_argument("--against", help="show: diff against this version instead of the parent")
    pv.add_argument("--metric", action="append", help="trends: metrics to show (repeatable)")


def _prompts_list(args, store, versions) -> None:
    found = versions.list_versions(store, args.prompt)
    emit(args, [v.to_dict() for v in found], "\n".join(
        f"{v.prompt_id}  {v.title:40s} runs {v.n_runs:<3d} changed: {', '.join(v.changes)}" for v in found)
        or "no prompt versions yet")


def _prompts_show(args, store, versions) -> None:
    v = versions.resolve_version(store, args.ref)
    diff = versions.diff_between(versions.resolve_version(store, args.against), v) if args.against else v.diff
    emit(args, v.to_dict(),
         f"{v.title} ({v.prompt_id}), parent {v.parent_id or 'none'}, changed: {', '.join(v.changes)}\n" + diff)


def _prompts_name(args, store, versions) -> None:
    v = versions.name_version(store, args.ref, args.label)
    emit(args, v.to_dict(), f"{v.prompt_id} is now {v.title}")


def _prompts_trends(args, store, versions) -> None:
    if not args.prompt:
        raise SynthError("Say which prompt: python -m synth prompts trends --prompt NAME "
                         f"(prompts: {', '.join(versions.prompt_names(store)) or 'none yet'}).")
    trends = versions.version_trends(store, args.prompt, args.metric or list(versions.TREND_METRICS))
    shown = trends.drop(columns=[c for c in trends if c == "prompt_id" or c.endswith(("_common_low", "_common_high"))])
    emit(args, trends.astype(object).where(trends.notna(), None).to_dict(orient="records"),
         shown.to_string(index=False) + "\n(METRIC_common: at the common size of common_n items; empty for a "
         "version too small to compare)")


@command("prompts", "prompt versions: list, show a diff, name, trends", prompts_options)
def cmd_prompts(args: argparse.Namespace) -> int:
    from synth.workflows import versions

    if args.action in ("show", "name") and not args.ref:
        raise SynthError(f"Say which version: python -m synth prompts {args.action} 'PROMPT v2'"
                         + (" NEW-NAME" if args.action == "name" else ""))
    action = {"list": _prompts_list, "show": _prompts_show, "name": _prompts_name, "trends": _prompts_trends}
    action[args.action](args, open_db(args), versions)
    return 0


def sql_options(q: argparse.ArgumentParser) -> None:
    from synth.store.console import DEFAULT_TIMEOUT_S

    q.add_argument("query")
    q.add_argument("--limit", type=int, default=1000)
    q.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds before the query is stopped (default {DEFAULT_TIMEOUT_S:g}; at most "
                        "$SYNTH_SQL_MAX_SECONDS)")


@command("sql", "run a read-only SQL query", sql_options)
def cmd_sql(args: argparse.Namespace) -> int:
    frame, truncated = open_db(args).query_readonly(args.query, limit=args.limit, timeout_s=args.timeout)
    payload = {"columns": list(frame.columns), "rows": frame.to_dict(orient="records"), "truncated": truncated}
    note = f"\n(first {args.limit} rows shown)" if truncated else ""
    emit(args, payload, frame.to_string(index=False) + note)
    return 0
