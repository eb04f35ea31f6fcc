"""``python -m synth``: the headless face of the same workflows the pages use."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Sequence

from synth import settings
from synth.errors import SynthError


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
    from synth.pipeline import open_store

    return open_store(args.db)


def cmd_generate(args: argparse.Namespace) -> int:
    from synth.generation import GenerationRequest, parse_var_spec
    from synth.pipeline import generate_run

    variables: dict[str, list[str]] = {}
    for spec in args.var or []:
        name, values = parse_var_spec(spec)
        variables.setdefault(name, []).extend(values)
    req = GenerationRequest(
        template=args.template, variables=variables, n=args.n, model=args.model or "",
        temperature=args.temperature, max_tokens=args.max_tokens, top_p=args.top_p, seed=args.seed,
        system_prompt=args.system or "", prompt_name=args.prompt_name, run_name=args.run_name,
        api_base=args.api_base)
    store = _store(args)

    def progress(item, i, n):
        print(f"[{i + 1}/{n}] {item.text[:100]!r}", file=sys.stderr)

    result = generate_run(store, req, on_item=progress)
    _print(args, result.to_dict(),
           f"run {result.run_id} ({result.name}): {result.n_items} items, "
           f"{result.tokens_in}+{result.tokens_out} tokens, cost {result.cost_usd}, {result.wall_s} s")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from synth.pipeline import import_run

    result = import_run(_store(args), args.file, args.text_column, args.run_name)
    _print(args, result.to_dict(), f"run {result.run_id} ({result.name}): {result.n_items} items imported")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from synth.metrics import compute_run_metrics

    store = _store(args)
    runs = store.runs()
    if args.run:
        runs = runs[runs["run_id"] == store.resolve_run(args.run)]
    if runs.empty:
        raise SynthError("There are no runs yet. Generate or import some first.")
    results = []
    for run in runs.itertuples():
        values = compute_run_metrics(store, run.run_id, args.threshold, force=args.force)
        results.append({"run_id": run.run_id, "run_name": run.name, "metrics": values})
    lines = []
    for r in results:
        lines.append(f"{r['run_id']}  {r['run_name']}")
        lines += [f"  {k:32s} {'' if v is None else round(v, 4)}" for k, v in r["metrics"].items()]
    payload = results[0] if args.run else {"runs": results}
    _print(args, payload, "\n".join(lines))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from synth.export import export_items

    store = _store(args)
    run_ids = [store.resolve_run(r) for r in args.run] if args.run else None
    n = export_items(store, args.out, run_ids)
    _print(args, {"out": args.out, "rows": n}, f"wrote {n} items to {args.out}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    store = _store(args)
    frame, truncated = store.query_readonly(args.query, limit=args.limit)
    payload = {"columns": list(frame.columns), "rows": frame.to_dict(orient="records"),
               "truncated": truncated}
    note = f"\n(first {args.limit} rows shown)" if truncated else ""
    _print(args, payload, frame.to_string(index=False) + note)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"DuckDB file (default: $SYNTH_DB or {settings.SETTINGS['db_path'].default})")
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    parser = argparse.ArgumentParser(prog="python -m synth",
                                     description="Synth Studio: generate, measure and export synthetic text.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", parents=[common], help="generate a batch from a prompt template")
    g.add_argument("--template", required=True, help="prompt with {variables}")
    g.add_argument("--var", action="append", metavar="NAME=V1,V2", help="values of a variable (repeatable)")
    g.add_argument("--model", help=f"litellm model name (default {settings.DEFAULT_LOCAL_MODEL})")
    g.add_argument("--n", type=int, default=5, help="number of items")
    g.add_argument("--temperature", type=float, default=settings.DEFAULT_TEMPERATURE)
    g.add_argument("--max-tokens", type=int, default=settings.DEFAULT_MAX_TOKENS)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=settings.DEFAULT_SEED)
    g.add_argument("--system", help="system prompt")
    g.add_argument("--prompt-name", default="default", help="prompt family; a changed template makes a new version")
    g.add_argument("--run-name")
    g.add_argument("--api-base", help="OpenAI-compatible server, e.g. http://localhost:11434 for Ollama")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("import", parents=[common], help="import texts from a JSONL or CSV file")
    i.add_argument("file")
    i.add_argument("--text-column", default="text")
    i.add_argument("--run-name")
    i.set_defaults(func=cmd_import)

    m = sub.add_parser("metrics", parents=[common], help="intrinsic metrics per run")
    m.add_argument("--run", help="run id or name (default: every run)")
    m.add_argument("--threshold", type=float, default=None, help="near-duplicate cosine threshold")
    m.add_argument("--force", action="store_true", help="recompute even if inputs are unchanged")
    m.set_defaults(func=cmd_metrics)

    e = sub.add_parser("export", parents=[common], help="export items with provenance")
    e.add_argument("--out", required=True, help="FILE.jsonl, FILE.csv or FILE.parquet")
    e.add_argument("--run", action="append", help="run id or name (repeatable; default: all)")
    e.set_defaults(func=cmd_export)

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
