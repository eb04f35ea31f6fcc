"""``python -m synth``: the headless face of the same workflows the pages use. Each command lives
beside its options in one module per group (making data, measuring it, sharing it)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from synth.cli import make, measure, share  # noqa: F401  (each module registers its commands)
from synth.cli.base import COMMANDS, build_parser
from synth.kernel import settings
from synth.kernel.errors import SynthError

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_INTERRUPTED = 130  # what a shell reports for a command ended with Ctrl-C (128 + SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever goes wrong ends as one line, ``error: ...`` on stderr (and
    ``{"error": ...}`` on stdout with --json), never a traceback: a SynthError says what to do
    and exits 1; any other exception is a bug, named as one, and exits 1 (SYNTH_DEBUG=1 shows its
    traceback); Ctrl-C exits 130."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit: a reader that went away is then caught below
        return code
    except SynthError as exc:
        return _fail(args, str(exc))
    except BrokenPipeError:  # the reader went away (| head): end quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if _debug():
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
        return _fail(args, f"{type(exc).__name__}: {detail} (this is a bug; rerun with SYNTH_DEBUG=1 "
                           "for the traceback)")


def _fail(args, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message}, ensure_ascii=False))
    print(f"error: {message}", file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _debug() -> bool:
    try:
        return bool(settings.get("debug"))
    except SynthError:
        return False
