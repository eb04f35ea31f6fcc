"""What every command shares: the command registry, the common options, JSON-safe output and
the progress bars."""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    """JSON-safe, for every type a DuckDB query or a result record can hold.

    NaN and infinities become null; numpy and pandas scalars Python values; DECIMAL a number
    (a float); HUGEINT and UHUGEINT whole numbers, exactly; BLOB base64 text; UUID its text;
    DATE, TIME and TIMESTAMP (with time zone too) ISO 8601 text; INTERVAL an ISO 8601 duration
    ("P1DT2H0M3.5S"); LIST, ARRAY, STRUCT, MAP and UNION lists, objects and their values (MAP keys
    as text); ENUM, BIT and JSON their text. Anything else becomes its text.
    """
    if isinstance(value, dict):
        return {_key(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "ndarray":
        return [clean(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if is_missing(value) or type(value).__name__ == "NaTType":
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return clean(float(value))
    if isinstance(value, datetime.timedelta) or type(value).__name__ in ("Timedelta", "timedelta64"):
        return _duration(value)
    if type(value).__name__ == "datetime64":
        import pandas as pd

        return pd.Timestamp(value).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar
        try:
            return clean(value.item())
        except (ValueError, AttributeError):
            pass
    return str(value)


def _key(key: Any) -> str:
    cleaned = clean(key)
    return cleaned if isinstance(cleaned, str) else json.dumps(cleaned)


def _duration(value: Any) -> str | None:
    import pandas as pd

    delta = pd.Timedelta(value)
    return None if delta is pd.NaT else delta.isoformat()


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """The result: ``payload`` as one JSON document with --json, else ``text``."""
    if args.json:
        print(json.dumps(clean(payload), ensure_ascii=False, indent=2))
    else:
        print(text)


def open_db(args: argparse.Namespace):
    from synth.workflows.pipeline import open_store

    return open_store(args.db)


class Progress:
    """One progress bar on stderr per long step (a run's items, a judge's calls), never on stdout.

    Use it as a context manager and pass it as ``on_item(item, i, n)``: a new bar starts when a
    step starts again at item 0 (a recipe's next run) and a finished bar stays as one line, such as
    ``generating: 100%|...| 5/5``. On a terminal the bar redraws in place; written to a file or a
    pipe it is redrawn only every few seconds, so a log holds a few lines rather than one per item.
    """

    def __init__(self, desc: str = "generating", unit: str = "item"):
        self.desc, self.unit = desc, unit
        self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, item: Any, i: int, n: int) -> None:
        if self._bar is None or i == 0:
            self._start(n)
        self._bar.update(max(0, i + 1 - self._bar.n))
        self._finish()

    def step(self, total: int) -> None:
        """One more of ``total`` done (for callbacks that do not count, such as ``on_result``)."""
        if self._bar is None:
            self._start(total)
        self._bar.update(1)
        self._finish()

    def _finish(self) -> None:
        """Close the bar at its last item, so its time is the step's, not what follows it."""
        if self._bar is not None and self._bar.total and self._bar.n >= self._bar.total:
            self.close()

    def _start(self, total: int) -> None:
        from tqdm import tqdm

        self.close()
        stream = sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=stream, leave=True,
                         dynamic_ncols=tty, mininterval=0.1 if tty else 5.0, ascii=not tty)

    def close(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()


def filtered_ids(store, args: argparse.Namespace) -> list[str] | None:
    """The items the app's filters keep, when --filters gives them (as in the app's address)."""
    from synth.workflows.pipeline import filtered_ids as ids

    return ids(store, args.filters) if args.filters else None


def add_filters_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filters", metavar="QUERY",
                   help="the app's filters, as after '?' in its address, e.g. 'dedup=0.9&lmin=5'")
