"""``python -m synth``: the headless face of the same workflows the pages use. Each command lives
beside its options in one module per group (making data, measuring it, sharing it)."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from synth.cli import make, measure, share  # noqa: F401  (each module registers its commands)
from synth.cli.base import COMMANDS, build_parser
from synth.kernel.errors import SynthError

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a SynthError is printed as ``error: ...`` (and as JSON with --json), exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SynthError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
