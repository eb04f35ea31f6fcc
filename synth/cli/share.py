"""Commands that share data: exports, the stakeholder report and the licence notes."""

from __future__ import annotations

import argparse

from synth.cli.base import add_filters_option, command, emit, filtered_ids, open_db
from synth.kernel.errors import SynthError
from synth.kernel.records import ACCEPTED_STATUSES


def export_options(e: argparse.ArgumentParser) -> None:
    from synth.outputs.formats import EXPORT_FORMATS

    e.add_argument("--out", required=True,
                   help=f"FILE{', FILE'.join(EXPORT_FORMATS[:-1])} or FILE{EXPORT_FORMATS[-1]}; with --hf, a new FOLDER")
    e.add_argument("--hf", action="store_true",
                   help="write a Hugging Face datasets folder: data/train.parquet and a README.md dataset card")
    e.add_argument("--run", action="append", help="run id or name (repeatable; default: all)")
    e.add_argument("--status", help="only these statuses, e.g. accepted,edited")
    e.add_argument("--accepted", action="store_true",
                   help=f"only items a person approved (same as --status {','.join(ACCEPTED_STATUSES)})")
    e.add_argument("--min-score", type=float, help="only items whose latest judge score is at least this")
    add_filters_option(e)


@command("export", "export items with provenance", export_options)
def cmd_export(args: argparse.Namespace) -> int:
    from synth.outputs.export import export_dataset, export_items

    if args.accepted and args.status:
        raise SynthError("Give --accepted or --status, not both (--accepted means --status "
                         f"{','.join(ACCEPTED_STATUSES)}).")
    store = open_db(args)
    run_ids = [store.resolve_run(r) for r in args.run] if args.run else None
    statuses = list(ACCEPTED_STATUSES) if args.accepted else (
        [s.strip() for s in args.status.split(",")] if args.status else None)
    options = {"statuses": statuses, "min_score": args.min_score, "item_ids": filtered_ids(store, args)}
    if args.hf:
        result = export_dataset(store, args.out, run_ids, **options)
        emit(args, result, f"wrote {result['rows']} items and a dataset card to {result['out']}")
        return 0
    n = export_items(store, args.out, run_ids, **options)
    emit(args, {"out": args.out, "rows": n}, f"wrote {n} items to {args.out}")
    return 0


def report_options(rp: argparse.ArgumentParser) -> None:
    rp.add_argument("--out", required=True, help="FILE.html (opens offline in any browser)")
    rp.add_argument("--run", action="extend", nargs="+", help="run ids or names (repeatable; default: all)")
    rp.add_argument("--title", help="the report's title")
    add_filters_option(rp)


@command("report", "a standalone HTML report: map, metrics, examples", report_options)
def cmd_report(args: argparse.Namespace) -> int:
    from synth.outputs.report import write_report

    store = open_db(args)
    result = write_report(store, args.out, run_ids=args.run, item_ids=filtered_ids(store, args), title=args.title)
    emit(args, result, f"wrote {result['n_items']} items to {result['out']} ({result['bytes'] / 1e6:.1f} MB)")
    return 0


def licences_options(lc: argparse.ArgumentParser) -> None:
    lc.add_argument("--model", help="the note for this litellm model name (unknown if not in the table)")
    lc.add_argument("--api-base", help="the model is served by your own OpenAI-compatible server")


@command("licences", "what known models' terms say about training on outputs", licences_options)
def cmd_licences(args: argparse.Namespace) -> int:
    from synth.llm import licences

    if args.model:
        note = licences.note_for(args.model, args.api_base)
        emit(args, note.to_dict(), f"{note.model}: {note.training_use} ({note.licence})\n{note.summary}"
             + (f"\nsource: {note.source}" if note.source else ""))
        return 0
    table = licences.known_terms()
    emit(args, table.to_dict(orient="records"),
         table[["key", "maker", "licence", "training_use"]].to_string(index=False) + f"\n\n{licences.DISCLAIMER}")
    return 0
