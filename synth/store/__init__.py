"""Storage: the DuckDB file, its migrations and one module per table family; the only code that writes SQL."""

from synth.store.connection import in_session
from synth.store.duck import DuckStore
from synth.store.sql import run_filter

__all__ = ["DuckStore", "in_session", "run_filter"]
