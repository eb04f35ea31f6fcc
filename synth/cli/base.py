"""What every command shares: the command registry, the common options, JSON-safe output and
the progress line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable

from synth.kernel import settings
from synth.kernel.registry import Registry
from synth.kernel.text import is_missing


@dataclass(frozen=True)
class Command:
    """One ``python -m synth`` command: its function, its options and the option groups it shares."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    options: Callable[[argparse.ArgumentParser], None]
    groups: tuple[str, ...] = ("common",)


COMMANDS = Registry("command")
# The order of ``python -m synth --help``: making data, measuring it, sharing it.
MENU = ("generate", "run", "judge", "review", "import", "metrics", "export", "map", "report", "compare",
        "prompts", "licences", "sql")


def command(name: str, help: str, options: Callable[[argparse.ArgumentParser], None],
            groups: tuple[str, ...] = ("common",)):
    """Register the decorated ``cmd_*`` function as command ``name`` with these options."""
    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS.register(name, Command(name, help, fn, options, groups))
        return fn
    return register


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"DuckDB file (default: $SYNTH_DB or {settings.SETTINGS['db_path'].default})")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    return common


def model_options() -> argparse.ArgumentParser:
    """The options of a model call, with the run configuration's defaults."""
    from synth.generate.config import RunConfig

    defaults = RunConfig()
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", help=f"litellm model name (default {settings.DEFAULT_LOCAL_MODEL})")
    model.add_argument("--api-base", help="OpenAI-compatible server, e.g. http://localhost:11434 for Ollama")
    model.add_argument("--temperature", type=float, default=defaults.temperature)
    model.add_argument("--top-p", type=float, default=defaults.top_p)
    model.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    model.add_argument("--seed", type=int, default=defaults.seed)
    model.add_argument("--concurrency", type=int, default=defaults.concurrency, help="calls in flight at once")
    model.add_argument("--budget", type=float, help="stop spending at this many USD")
    model.add_argument("--regenerate", type=int, default=defaults.regenerate,
                       help="new samples instead of cached responses")
    return model


GROUPS = {"common": common_options, "model": model_options}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    groups = {name: make() for name, make in GROUPS.items()}
    parser = argparse.ArgumentParser(prog="python -m synth",
                                     description="Synth Studio: generate, measure and export synthetic text.")
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in sorted(COMMANDS.values(), key=lambda c: MENU.index(c.name) if c.name in MENU else len(MENU)):
        p = sub.add_parser(cmd.name, parents=[groups[g] for g in cmd.groups], help=cmd.help)
        cmd.options(p)
        p.set_defaults(func=cmd.run)
    return parser


def clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, numpy and pandas scalars become Python values."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if is_missing(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """The result: ``payload`` as one JSON document with --json, else ``text``."""
    if args.json:
        print(json.dumps(clean(payload), ensure_ascii=False, indent=2))
    else:
        print(text)


def open_db(args: argparse.Namespace):
    from synth.workflows.pipeline import open_store

    return open_store(args.db)


def progress(item, i, n) -> None:
    print(f"[{i + 1}/{n}] {item.text[:100]!r}", file=sys.stderr)


def filtered_ids(store, args: argparse.Namespace) -> list[str] | None:
    """The items the app's filters keep, when --filters gives them (as in the app's address)."""
    from synth.workflows.pipeline import filtered_ids as ids

    return ids(store, args.filters) if args.filters else None


def add_filters_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filters", metavar="QUERY",
                   help="the app's filters, as after '?' in its address, e.g. 'dedup=0.9&lmin=5'")
