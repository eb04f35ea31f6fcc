"""Commands that make data: generate, run a recipe, judge, review and import."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synth.cli.base import Progress, command, emit, open_db
from synth.kernel.errors import SynthError

SOURCE_OPTIONS = {"file": ("source_file", "path"), "folder": ("source_folder", "path"),
                  "git": ("source_git", "repo"), "run": ("source_run", "run"), "pasted": ("source_text", "text")}


def _source_from_args(args: argparse.Namespace) -> dict | None:
    given = [(kind, getattr(args, attr), key) for kind, (attr, key) in SOURCE_OPTIONS.items() if getattr(args, attr)]
    if len(given) > 1:
        raise SynthError("Give one source: --source-file, --source-folder, --source-git, --source-run "
                         "or --source-text.")
    if not given:
        return None
    kind, value, key = given[0]
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


def _output_from_args(args: argparse.Namespace) -> dict | None:
    output = None
    if args.fields:
        output = {"fields": [f.strip() for f in args.fields.split(",") if f.strip()]}
    if args.schema:
        output = {"schema": Path(args.schema).read_text() if Path(args.schema).is_file() else args.schema}
    return output


def _grammar_from_args(args: argparse.Namespace) -> str | None:
    if not args.grammar:
        return None
    if not Path(args.grammar).is_file():
        raise SynthError(f"Grammar file not found: {args.grammar}.")
    return Path(args.grammar).read_text()


def _judge_from_args(args: argparse.Namespace) -> dict | None:
    if not (args.judge_model or args.rubric):
        return None
    from synth.generate.judge import Rubric

    rubric = Rubric.from_file(args.rubric) if args.rubric else Rubric()
    return {"model": args.judge_model or args.model or "", "rubric": rubric.to_dict()}


def config_from_args(args: argparse.Namespace):
    """The RunConfig of a ``generate`` call."""
    from synth.generate.config import RunConfig, parse_var_spec
    from synth.generate.techniques import (
        DEFAULT_TECHNIQUE,
        get_technique,
        technique_for_input,
    )

    variables: dict[str, list[str]] = {}
    for spec in args.var or []:
        name, values = parse_var_spec(spec)
        variables.setdefault(name, []).extend(values)
    grammar = _grammar_from_args(args)
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
        per_source=args.per_source, grammar=grammar, unique=args.unique, output=_output_from_args(args),
        concurrency=args.concurrency, budget_usd=args.budget, regenerate=args.regenerate,
        judge=_judge_from_args(args))


def report_runs(args: argparse.Namespace, results: list) -> int:
    """Print what each run made (failures on stderr); one run's dict, or ``{"runs": [...]}``, as JSON."""
    for r in results:
        for failure in r.failures:
            print(f"failed: {failure}", file=sys.stderr)
        for warning in r.warnings:
            print(f"warning: {warning}", file=sys.stderr)
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
    emit(args, payload, "\n".join(lines))
    return 0


def _technique_help() -> str:
    from synth.generate.techniques import DEFAULT_TECHNIQUE, TECHNIQUES

    names = [f"{n} (default)" if n == DEFAULT_TECHNIQUE else n for n in TECHNIQUES]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _prompt_options(g: argparse.ArgumentParser, defaults) -> None:
    from synth.generate.techniques import TECHNIQUES
    from synth.generate.techniques.sampling import SAMPLING_MODES

    g.add_argument("--technique", choices=list(TECHNIQUES), metavar="TECHNIQUE", help=_technique_help())
    g.add_argument("--template", help="prompt with {variables}; for a technique that starts from sources, "
                   "{text} is the source")
    g.add_argument("--var", action="append", metavar="NAME=V1,V2", help="values of a variable (repeatable)")
    g.add_argument("--n", type=int, default=None,
                   help="number of items (sources to use, for a technique that starts from sources; 0: all)")
    g.add_argument("--system", help="system prompt")
    g.add_argument("--prompt-name", default=defaults.prompt_name,
                   help="prompt family; a changed template makes a new version")
    g.add_argument("--version-name", help="name the prompt version this run makes or uses")
    g.add_argument("--run-name")
    g.add_argument("--sampling-mode", default=defaults.sampling_mode, choices=list(SAMPLING_MODES))
    g.add_argument("--example", action="append", help="a few-shot example (repeatable)")
    g.add_argument("--examples-file", help="few-shot examples, one per line")
    g.add_argument("--k-examples", type=int, default=defaults.k_examples, help="examples per call (a random subset)")
    g.add_argument("--avoid-run", action="append", help="show items of this run as 'write something different'")
    g.add_argument("--k-avoid", type=int, default=defaults.k_avoid)


def _source_options(g: argparse.ArgumentParser, defaults) -> None:
    g.add_argument("--source-file", help="JSONL/CSV of source texts (with --text-column)")
    g.add_argument("--text-column", default="text")
    g.add_argument("--source-folder", help="a folder of source files")
    g.add_argument("--source-git", help="a local git repository of source files")
    g.add_argument("--source-run", help="an earlier run whose items are the sources")
    g.add_argument("--source-text", help="pasted source texts, separated by blank lines")
    g.add_argument("--per-source", type=int, default=defaults.per_source, help="items per source text")
    g.add_argument("--grammar", help="YAML/JSON slot grammar (a technique that expands a grammar)")
    g.add_argument("--unique", action="store_true", help="grammar: distinct texts only")


def generate_options(g: argparse.ArgumentParser) -> None:
    from synth.generate.config import RunConfig

    defaults = RunConfig()
    _prompt_options(g, defaults)
    _source_options(g, defaults)
    g.add_argument("--fields", help="structured output: comma-separated field names")
    g.add_argument("--schema", help="structured output: a JSON Schema (file or inline JSON)")
    g.add_argument("--judge-model", help="score every item with this model after generating")
    g.add_argument("--rubric", help="YAML rubric, or one 'name: description' per line")
    g.add_argument("--new-run", action="store_true",
                   help="begin a new run even if the same command was interrupted (by default it resumes)")


@command("generate", "make a run with one technique", generate_options, groups=("common", "model"))
def cmd_generate(args: argparse.Namespace) -> int:
    from synth.workflows.pipeline import generate_run

    cfg = config_from_args(args)
    with Progress("generating") as bar:
        result = generate_run(open_db(args), cfg, on_item=bar, resume=not args.new_run)
    return report_runs(args, [result])


def resume_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("run", nargs="?", help="the run's id or name (default: list the runs that can be resumed)")


@command("resume", "go on with an interrupted or cancelled run, making only the calls it has no item for",
         resume_options)
def cmd_resume(args: argparse.Namespace) -> int:
    from synth.workflows.jobs import resumable_runs
    from synth.workflows.pipeline import resume_run

    store = open_db(args)
    if not args.run:
        frame = resumable_runs(store)
        text = "\n".join(f"{r.run_id}  {r.name}  {r.status}: {r.n_items} of {r.n_planned} items"
                         for r in frame.itertuples()) or "No run is waiting to be resumed."
        emit(args, {"runs": frame.to_dict("records")}, text)
        return 0
    with Progress("generating") as bar:
        result = resume_run(store, args.run, on_item=bar)
    return report_runs(args, [result])


def run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("recipe")
    r.add_argument("--model")
    r.add_argument("--api-base")
    r.add_argument("--concurrency", type=int)
    r.add_argument("--budget", type=float, help="USD cap per run")
    r.add_argument("--regenerate", type=int, help="new samples instead of cached responses")


@command("run", "run a recipe file (YAML or JSON)", run_options)
def cmd_run(args: argparse.Namespace) -> int:
    from synth.workflows.recipes import load_recipe, run_recipe

    overrides = {"model": args.model, "api_base": args.api_base, "concurrency": args.concurrency,
                 "budget_usd": args.budget, "regenerate": args.regenerate}
    with Progress("generating") as bar:
        results = run_recipe(open_db(args), load_recipe(args.recipe), on_item=bar, overrides=overrides)
    return report_runs(args, results)


def judge_options(j: argparse.ArgumentParser) -> None:
    from synth.kernel import settings

    j.add_argument("--run", required=True)
    j.add_argument("--model", help="litellm judge model (default: the default model)")
    j.add_argument("--rubric", help="YAML rubric, or one 'name: description' per line")
    j.add_argument("--api-base")
    j.add_argument("--concurrency", type=int, default=settings.DEFAULT_CONCURRENCY)


@command("judge", "score a run's items with an LLM judge", judge_options)
def cmd_judge(args: argparse.Namespace) -> int:
    from synth.generate.judge import Rubric, judge_items

    store = open_db(args)
    run_id = store.resolve_run(args.run)
    ids = store.items([run_id])["item_id"].tolist()
    rubric = Rubric.from_file(args.rubric) if args.rubric else Rubric()
    with Progress("judging") as bar:
        result = judge_items(store, ids, args.model, rubric, args.api_base, args.concurrency,
                             on_result=lambda _: bar.step(len(ids)))
    emit(args, result.to_dict(), f"judged {result.n_items} items of {args.run} with {result.judge_model}: "
         f"{result.n_valid} valid, mean score {result.score_mean}, pass rates {result.pass_rates}")
    return 0


def review_options(v: argparse.ArgumentParser) -> None:
    v.add_argument("items", nargs="+", metavar="ITEM_ID")
    v.add_argument("--accept", action="store_true")
    v.add_argument("--reject", action="store_true")
    v.add_argument("--edit", metavar="TEXT", help="new text (the original is kept as version 1)")
    v.add_argument("--note")


@command("review", "accept, reject or edit items", review_options)
def cmd_review(args: argparse.Namespace) -> int:
    from synth.workflows import review

    store = open_db(args)
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
    emit(args, payload, text)
    return 0


def import_options(i: argparse.ArgumentParser) -> None:
    i.add_argument("file")
    i.add_argument("--text-column", default="text")
    i.add_argument("--run-name")
    i.add_argument("--reference", action="store_true", help="real data to compare the synthetic set with")
    i.add_argument("--again", action="store_true",
                   help="import a file even if a run already holds the same content")


@command("import", "import texts from a JSONL or CSV file", import_options)
def cmd_import(args: argparse.Namespace) -> int:
    from synth.workflows.pipeline import import_run

    result = import_run(open_db(args), args.file, args.text_column, args.run_name, reference=args.reference,
                        again=args.again, on_notice=lambda note: print(note, file=sys.stderr))
    emit(args, result.to_dict(), f"run {result.run_id} ({result.name}): {result.n_items} items imported")
    return 0
