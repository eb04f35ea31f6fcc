"""``python -m synth``: the headless face of the same workflows the pages use."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import format_number


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, numpy and pandas scalars become Python values."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        print(json.dumps(_clean(payload), ensure_ascii=False, indent=2))
    else:
        print(text)


def _store(args: argparse.Namespace):
    from synth.workflows.pipeline import open_store

    return open_store(args.db)


def _source_from_args(args: argparse.Namespace) -> dict | None:
    given = [(k, v) for k, v in (("file", args.source_file), ("folder", args.source_folder),
                                 ("git", args.source_git), ("run", args.source_run),
                                 ("pasted", args.source_text)) if v]
    if len(given) > 1:
        raise SynthError("Give one source: --source-file, --source-folder, --source-git, --source-run "
                         "or --source-text.")
    if not given:
        return None
    kind, value = given[0]
    key = {"file": "path", "folder": "path", "git": "repo", "run": "run", "pasted": "text"}[kind]
    source = {"kind": kind, key: value}
    if kind == "file":
        source["text_column"] = args.text_column
    return source


def _read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    file = Path(path)
    if not file.is_file():
        raise SynthError(f"File not found: {path}.")
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def config_from_args(args: argparse.Namespace) -> "RunConfig":
    from synth.generate.config import RunConfig, parse_var_spec
    from synth.generate.techniques import DEFAULT_TECHNIQUE, get_technique, technique_for_input

    variables: dict[str, list[str]] = {}
    for spec in args.var or []:
        name, values = parse_var_spec(spec)
        variables.setdefault(name, []).extend(values)
    output = None
    if args.fields:
        output = {"fields": [f.strip() for f in args.fields.split(",") if f.strip()]}
    if args.schema:
        output = {"schema": Path(args.schema).read_text() if Path(args.schema).is_file() else args.schema}
    grammar = None
    if args.grammar:
        if not Path(args.grammar).is_file():
            raise SynthError(f"Grammar file not found: {args.grammar}.")
        grammar = Path(args.grammar).read_text()
    judge = None
    if args.judge_model or args.rubric:
        from synth.generate.judge import Rubric

        rubric = Rubric.from_file(args.rubric) if args.rubric else Rubric()
        judge = {"model": args.judge_model or args.model or "", "rubric": rubric.to_dict()}
    technique = args.technique or (technique_for_input("grammar") if grammar else DEFAULT_TECHNIQUE)
    n = args.n if args.n is not None else get_technique(technique).default_n
    return RunConfig(
        technique=technique, template=args.template or "", variables=variables, n=n,
        model=args.model or "", temperature=args.temperature, max_tokens=args.max_tokens, top_p=args.top_p,
        seed=args.seed, system_prompt=args.system or "", prompt_name=args.prompt_name,
        version_label=args.version_name,
        run_name=args.run_name, api_base=args.api_base, sampling_mode=args.sampling_mode,
        examples=(args.example or []) + _read_lines(args.examples_file), k_examples=args.k_examples,
        avoid_runs=args.avoid_run or [], k_avoid=args.k_avoid, source=_source_from_args(args),
        per_source=args.per_source, grammar=grammar, unique=args.unique, output=output,
        concurrency=args.concurrency, budget_usd=args.budget, regenerate=args.regenerate, judge=judge)


def _report(args: argparse.Namespace, results: list) -> int:
    for r in results:
        for failure in r.failures:
            print(f"failed: {failure}", file=sys.stderr)
    lines = []
    for r in results:
        cost = "unknown" if r.cost_usd is None else f"${r.cost_usd:.4f}"
        line = (f"run {r.run_id} ({r.name}): {r.n_items} items, {r.tokens_in}+{r.tokens_out} tokens, "
                f"cost {cost}, {r.wall_s} s, {r.status}")
        if r.n_failed or r.n_skipped or r.n_cached:
            line += f" ({r.n_failed} failed, {r.n_skipped} skipped, {r.n_cached} from cache)"
        if r.judge:
            line += f"; judge mean score {r.judge['score_mean']}"
        lines.append(line)
    payload = results[0].to_dict() if len(results) == 1 else {"runs": [r.to_dict() for r in results]}
    _print(args, payload, "\n".join(lines))
    return 0


def _progress(item, i, n):
    print(f"[{i + 1}/{n}] {item.text[:100]!r}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from synth.workflows.pipeline import generate_run

    cfg = config_from_args(args)
    return _report(args, [generate_run(_store(args), cfg, on_item=_progress)])


def cmd_run(args: argparse.Namespace) -> int:
    from synth.workflows.recipes import load_recipe, run_recipe

    overrides = {"model": args.model, "api_base": args.api_base, "concurrency": args.concurrency,
                 "budget_usd": args.budget, "regenerate": args.regenerate}
    results = run_recipe(_store(args), load_recipe(args.recipe), on_item=_progress, overrides=overrides)
    return _report(args, results)


def cmd_judge(args: argparse.Namespace) -> int:
    from synth.generate.judge import Rubric, judge_items

    store = _store(args)
    run_id = store.resolve_run(args.run)
    ids = store.items([run_id])["item_id"].tolist()
    rubric = Rubric.from_file(args.rubric) if args.rubric else Rubric()
    result = judge_items(store, ids, args.model, rubric, args.api_base, args.concurrency)
    _print(args, result.to_dict(), f"judged {result.n_items} items of {args.run} with {result.judge_model}: "
           f"{result.n_valid} valid, mean score {result.score_mean}, pass rates {result.pass_rates}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from synth.workflows import review

    store = _store(args)
    if sum(bool(x) for x in (args.accept, args.reject, args.edit is not None)) != 1:
        raise SynthError("Say what to do: --accept, --reject or --edit TEXT.")
    if args.edit is not None:
        if len(args.items) != 1:
            raise SynthError("--edit changes one item at a time.")
        version = review.edit_item(store, args.items[0], args.edit, args.note)
        payload, text = {"item_id": args.items[0], "version": version}, f"{args.items[0]} is now version {version}"
    else:
        status = "accepted" if args.accept else "rejected"
        n = review.set_status(store, args.items, status)
        payload, text = {"status": status, "items": n}, f"{n} items {status}"
    _print(args, payload, text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from synth.workflows.pipeline import import_run

    result = import_run(_store(args), args.file, args.text_column, args.run_name, reference=args.reference)
    _print(args, result.to_dict(), f"run {result.run_id} ({result.name}): {result.n_items} items imported")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from synth.analysis.metrics import compute_run_metrics

    store = _store(args)
    runs = store.runs()
    if args.run:
        runs = runs[runs["run_id"] == store.resolve_run(args.run)]
    if runs.empty:
        raise SynthError("There are no runs yet. Generate or import some first.")
    results = []
    for run in runs.itertuples():
        values = compute_run_metrics(store, run.run_id, args.threshold, force=args.force)
        stored = store.metrics([run.run_id])
        params = {name: json.loads(p) if isinstance(p, str) else p for name, p in zip(stored["name"], stored["params"])}
        results.append({"run_id": run.run_id, "run_name": run.name, "metrics": values, "params": params})
    lines = []
    for r in results:
        lines.append(f"{r['run_id']}  {r['run_name']}")
        lines += [f"  {k:32s} {format_number(v)}" for k, v in r["metrics"].items()]
    payload = results[0] if args.run else {"runs": results}
    _print(args, payload, "\n".join(lines))
    return 0


def _filtered(store, args: argparse.Namespace) -> list[str] | None:
    """The items the app's filters keep, when --filters gives them (as in the app's address)."""
    from synth.workflows.pipeline import filtered_ids

    return filtered_ids(store, args.filters) if args.filters else None


def cmd_export(args: argparse.Namespace) -> int:
    from synth.outputs.export import export_dataset, export_items

    if args.accepted and args.status:
        raise SynthError("Give --accepted or --status, not both (--accepted means --status accepted).")
    store = _store(args)
    run_ids = [store.resolve_run(r) for r in args.run] if args.run else None
    status = "accepted" if args.accepted else args.status
    statuses = [s.strip() for s in status.split(",")] if status else None
    item_ids = _filtered(store, args)
    if args.hf:
        result = export_dataset(store, args.out, run_ids, statuses=statuses, min_score=args.min_score,
                                item_ids=item_ids)
        _print(args, result, f"wrote {result['rows']} items and a dataset card to {result['out']}")
        return 0
    n = export_items(store, args.out, run_ids, statuses=statuses, min_score=args.min_score, item_ids=item_ids)
    _print(args, {"out": args.out, "rows": n}, f"wrote {n} items to {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from synth.workflows.compare import compare_refs
    from synth.kernel.text import format_number as _fmt

    result = compare_refs(_store(args), args.a, args.b, n=args.n, seed=args.seed, fresh=args.fresh,
                          api_base=args.api_base, with_map=not args.no_map, background=False,
                          on_item=None if args.json else _progress)
    p = result.pairing
    lines = [f"{result.a['label']}  ({result.a['run_id']}, {result.a['n_items']} items, {result.a['model']})",
             f"{result.b['label']}  ({result.b['run_id']}, {result.b['n_items']} items, {result.b['model']})",
             f"paired: {'yes' if p['paired'] else 'no'} (same n: {p['same_n']}, same seed: {p['same_seed']}, "
             f"same samples: {p['same_samples']} of {p['n']})"
             + (f"; runs made now: {', '.join(result.made)}" if result.made else ""), "",
             f"{'metric':32s} {'A':>10s} {'B':>10s} {'B - A':>10s}  change"]
    lines += [f"{r.metric:32s} {_fmt(r.a):>10s} {_fmt(r.b):>10s} {_fmt(r.delta):>10s}  {r.change}"
              for r in result.metrics.itertuples()]
    lines += ["", "cluster share, A -> B (largest changes):"]
    lines += [f"  {r.cluster_name[:40]:40s} {r.share_a:6.1%} -> {r.share_b:6.1%}  ({r.difference:+.1%})"
              for r in result.clusters.head(8).itertuples()]
    lines += ["", "items side by side:"]
    for r in result.samples.head(3).itertuples():
        lines += [f"  #{r.idx} {json.dumps(r.variables, ensure_ascii=False)}", f"    A: {r.text_a}", f"    B: {r.text_b}"]
    _print(args, result.to_dict(), "\n".join(lines))
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from synth.workflows import versions

    store = _store(args)
    if args.action == "list":
        found = versions.list_versions(store, args.prompt)
        _print(args, [v.to_dict() for v in found], "\n".join(
            f"{v.prompt_id}  {v.title:40s} runs {v.n_runs:<3d} changed: {', '.join(v.changes)}" for v in found)
            or "no prompt versions yet")
    elif args.action in ("show", "name") and not args.ref:
        raise SynthError(f"Say which version: python -m synth prompts {args.action} 'PROMPT v2'"
                         + (" NEW-NAME" if args.action == "name" else ""))
    elif args.action == "show":
        v = versions.resolve_version(store, args.ref)
        text = (f"{v.title} ({v.prompt_id}), parent {v.parent_id or 'none'}, changed: {', '.join(v.changes)}\n"
                + (versions.diff_between(versions.resolve_version(store, args.against), v) if args.against
                   else v.diff))
        _print(args, v.to_dict(), text)
    elif args.action == "name":
        v = versions.name_version(store, args.ref, args.label)
        _print(args, v.to_dict(), f"{v.prompt_id} is now {v.title}")
    else:
        if not args.prompt:
            raise SynthError("Say which prompt: python -m synth prompts trends --prompt NAME "
                             f"(prompts: {', '.join(versions.prompt_names(store)) or 'none yet'}).")
        trends = versions.version_trends(store, args.prompt, args.metric or list(versions.TREND_METRICS))
        _print(args, trends.astype(object).where(trends.notna(), None).to_dict(orient="records"),
               trends.drop(columns=["prompt_id"]).to_string(index=False))
    return 0


def cmd_licences(args: argparse.Namespace) -> int:
    from synth.llm import licences

    if args.model:
        note = licences.note_for(args.model, args.api_base)
        _print(args, note.to_dict(), f"{note.model}: {note.training_use} ({note.licence})\n{note.summary}"
               + (f"\nsource: {note.source}" if note.source else ""))
        return 0
    table = licences.known_terms()
    _print(args, table.to_dict(orient="records"),
           table[["key", "maker", "licence", "training_use"]].to_string(index=False) + f"\n\n{licences.DISCLAIMER}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    store = _store(args)
    frame, truncated = store.query_readonly(args.query, limit=args.limit)
    payload = {"columns": list(frame.columns), "rows": frame.to_dict(orient="records"),
               "truncated": truncated}
    note = f"\n(first {args.limit} rows shown)" if truncated else ""
    _print(args, payload, frame.to_string(index=False) + note)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from synth.workflows.pipeline import refresh_map
    from synth.analysis.projection import umap_params

    params = umap_params(args.n_neighbors, args.min_dist, args.seed)
    report = refresh_map(_store(args), params, args.refit, args.cluster_method, args.k, args.min_cluster_size,
                         args.name_with, args.api_base)
    trust = "unknown" if report["trustworthiness"] is None else f"{report['trustworthiness']:.3f}"
    lines = [f"layout {report['layout_id']} ({report['method']}, {report['params']}): {report['n_items']} items, "
             f"{report['placed_now']} placed now, trustworthiness {trust}",
             f"clustering {report['clustering_id']} ({report['cluster_method']}, {report['cluster_params']}):"]
    lines += [f"  {c['cluster_id']:>3}  {c['size']:>5}  {c['label']}" for c in report["clusters"]]
    _print(args, report, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from synth.outputs.report import write_report

    store = _store(args)
    result = write_report(store, args.out, run_ids=args.run, item_ids=_filtered(store, args), title=args.title)
    _print(args, result, f"wrote {result['n_items']} items to {result['out']} ({result['bytes'] / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"DuckDB file (default: $SYNTH_DB or {settings.SETTINGS['db_path'].default})")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    model_args = argparse.ArgumentParser(add_help=False)
    model_args.add_argument("--model", help=f"litellm model name (default {settings.DEFAULT_LOCAL_MODEL})")
    model_args.add_argument("--api-base", help="OpenAI-compatible server, e.g. http://localhost:11434 for Ollama")
    model_args.add_argument("--temperature", type=float, default=settings.DEFAULT_TEMPERATURE)
    model_args.add_argument("--top-p", type=float, default=None)
    model_args.add_argument("--max-tokens", type=int, default=settings.DEFAULT_MAX_TOKENS)
    model_args.add_argument("--seed", type=int, default=settings.DEFAULT_SEED)
    model_args.add_argument("--concurrency", type=int, default=4, help="calls in flight at once")
    model_args.add_argument("--budget", type=float, help="stop spending at this many USD")
    model_args.add_argument("--regenerate", type=int, default=0, help="new samples instead of cached responses")

    parser = argparse.ArgumentParser(prog="python -m synth",
                                     description="Synth Studio: generate, measure and export synthetic text.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", parents=[common, model_args], help="make a run with one technique")
    g.add_argument("--technique", help="sampling (default), back_translation, transform or symbolic")
    g.add_argument("--template", help="prompt with {variables}; for back_translation/transform, {text} is the source")
    g.add_argument("--var", action="append", metavar="NAME=V1,V2", help="values of a variable (repeatable)")
    g.add_argument("--n", type=int, default=None, help="number of items (sources to use, for back_translation/transform; 0: all)")
    g.add_argument("--system", help="system prompt")
    g.add_argument("--prompt-name", default="default", help="prompt family; a changed template makes a new version")
    g.add_argument("--version-name", help="name the prompt version this run makes or uses")
    g.add_argument("--run-name")
    g.add_argument("--sampling-mode", default="product", choices=["product", "random"])
    g.add_argument("--example", action="append", help="a few-shot example (repeatable)")
    g.add_argument("--examples-file", help="few-shot examples, one per line")
    g.add_argument("--k-examples", type=int, default=2, help="examples per call (a random subset)")
    g.add_argument("--avoid-run", action="append", help="show items of this run as 'write something different'")
    g.add_argument("--k-avoid", type=int, default=5)
    g.add_argument("--source-file", help="JSONL/CSV of source texts (with --text-column)")
    g.add_argument("--text-column", default="text")
    g.add_argument("--source-folder", help="a folder of source files")
    g.add_argument("--source-git", help="a local git repository of source files")
    g.add_argument("--source-run", help="an earlier run whose items are the sources")
    g.add_argument("--source-text", help="pasted source texts, separated by blank lines")
    g.add_argument("--per-source", type=int, default=1, help="items per source text")
    g.add_argument("--grammar", help="YAML/JSON slot grammar (technique symbolic)")
    g.add_argument("--unique", action="store_true", help="symbolic: distinct texts only")
    g.add_argument("--fields", help="structured output: comma-separated field names")
    g.add_argument("--schema", help="structured output: a JSON Schema (file or inline JSON)")
    g.add_argument("--judge-model", help="score every item with this model after generating")
    g.add_argument("--rubric", help="YAML rubric, or one 'name: description' per line")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", parents=[common], help="run a recipe file (YAML or JSON)")
    r.add_argument("recipe")
    r.add_argument("--model")
    r.add_argument("--api-base")
    r.add_argument("--concurrency", type=int)
    r.add_argument("--budget", type=float, help="USD cap per run")
    r.add_argument("--regenerate", type=int, help="new samples instead of cached responses")
    r.set_defaults(func=cmd_run)

    j = sub.add_parser("judge", parents=[common], help="score a run's items with an LLM judge")
    j.add_argument("--run", required=True)
    j.add_argument("--model", help="litellm judge model (default: the default model)")
    j.add_argument("--rubric", help="YAML rubric, or one 'name: description' per line")
    j.add_argument("--api-base")
    j.add_argument("--concurrency", type=int, default=4)
    j.set_defaults(func=cmd_judge)

    v = sub.add_parser("review", parents=[common], help="accept, reject or edit items")
    v.add_argument("items", nargs="+", metavar="ITEM_ID")
    v.add_argument("--accept", action="store_true")
    v.add_argument("--reject", action="store_true")
    v.add_argument("--edit", metavar="TEXT", help="new text (the original is kept as version 1)")
    v.add_argument("--note")
    v.set_defaults(func=cmd_review)

    i = sub.add_parser("import", parents=[common], help="import texts from a JSONL or CSV file")
    i.add_argument("file")
    i.add_argument("--text-column", default="text")
    i.add_argument("--run-name")
    i.add_argument("--reference", action="store_true", help="real data to compare the synthetic set with")
    i.set_defaults(func=cmd_import)

    m = sub.add_parser("metrics", parents=[common], help="intrinsic metrics per run")
    m.add_argument("--run", help="run id or name (default: every run)")
    m.add_argument("--threshold", type=float, default=None, help="near-duplicate cosine threshold")
    m.add_argument("--force", action="store_true", help="recompute even if inputs are unchanged")
    m.set_defaults(func=cmd_metrics)

    e = sub.add_parser("export", parents=[common], help="export items with provenance")
    e.add_argument("--out", required=True, help="FILE.jsonl, FILE.csv or FILE.parquet; with --hf, a new FOLDER")
    e.add_argument("--hf", action="store_true",
                   help="write a Hugging Face datasets folder: data/train.parquet and a README.md dataset card")
    e.add_argument("--run", action="append", help="run id or name (repeatable; default: all)")
    e.add_argument("--status", help="only these statuses, e.g. accepted,edited")
    e.add_argument("--accepted", action="store_true", help="only accepted items (same as --status accepted)")
    e.add_argument("--min-score", type=float, help="only items whose latest judge score is at least this")
    e.add_argument("--filters", metavar="QUERY", help="the app's filters, as after '?' in its address, e.g. 'dedup=0.9&lmin=5'")
    e.set_defaults(func=cmd_export)

    mp = sub.add_parser("map", parents=[common], help="compute or refresh the map layout and clusters")
    mp.add_argument("--refit", action="store_true", help="a new layout of all items (points move)")
    mp.add_argument("--n-neighbors", type=int)
    mp.add_argument("--min-dist", type=float)
    mp.add_argument("--seed", type=int)
    mp.add_argument("--cluster-method", choices=["kmeans", "hdbscan"])
    mp.add_argument("--k", type=int, help="k-means clusters (default sqrt(n/2))")
    mp.add_argument("--min-cluster-size", type=int, help="HDBSCAN's smallest cluster")
    mp.add_argument("--name-with", metavar="MODEL", help="also name clusters with this litellm model")
    mp.add_argument("--api-base")
    mp.set_defaults(func=cmd_map)

    rp = sub.add_parser("report", parents=[common], help="a standalone HTML report: map, metrics, examples")
    rp.add_argument("--out", required=True, help="FILE.html (opens offline in any browser)")
    rp.add_argument("--run", action="extend", nargs="+", help="run ids or names (repeatable; default: all)")
    rp.add_argument("--title", help="the report's title")
    rp.add_argument("--filters", metavar="QUERY", help="the app's filters, as after '?' in its address, e.g. 'dedup=0.9&lmin=5'")
    rp.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", parents=[common], help="A/B: two runs or prompt versions side by side")
    c.add_argument("--a", required=True, metavar="RUN_OR_VERSION", help="run id or name, or 'PROMPT v1' / 'PROMPT@NAME'")
    c.add_argument("--b", required=True, metavar="RUN_OR_VERSION")
    c.add_argument("--n", type=int, help=f"items per version when a version must run (default {settings.DEFAULT_COMPARE_N})")
    c.add_argument("--seed", type=int, help="seed when a version must run (default: the other side's)")
    c.add_argument("--fresh", action="store_true", help="run the versions again instead of reusing paired runs")
    c.add_argument("--api-base", help="OpenAI-compatible server for the versions' runs")
    c.add_argument("--no-map", action="store_true", help="skip the map coordinates (faster)")
    c.set_defaults(func=cmd_compare)

    pv = sub.add_parser("prompts", parents=[common], help="prompt versions: list, show a diff, name, trends")
    pv.add_argument("action", choices=["list", "show", "name", "trends"])
    pv.add_argument("ref", nargs="?", help="show/name: a version ('PROMPT v2', 'PROMPT@NAME' or its id)")
    pv.add_argument("label", nargs="?", help="name: the version's new name ('' clears it)")
    pv.add_argument("--prompt", help="list/trends: one prompt's versions")
    pv.add_argument("--against", help="show: diff against this version instead of the parent")
    pv.add_argument("--metric", action="append", help="trends: metrics to show (repeatable)")
    pv.set_defaults(func=cmd_prompts)

    lc = sub.add_parser("licences", parents=[common], help="what known models' terms say about training on outputs")
    lc.add_argument("--model", help="the note for this litellm model name (unknown if not in the table)")
    lc.add_argument("--api-base", help="the model is served by your own OpenAI-compatible server")
    lc.set_defaults(func=cmd_licences)

    q = sub.add_parser("sql", parents=[common], help="run a read-only SQL query")
    q.add_argument("query")
    q.add_argument("--limit", type=int, default=1000)
    q.set_defaults(func=cmd_sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SynthError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
