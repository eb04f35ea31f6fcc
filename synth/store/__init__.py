"""Storage: the DuckDB file, its migrations and one module per table family; the only code that writes SQL."""

from synth.store.connection import in_session
from synth.store.duck import DuckStore

__all__ = ["DuckStore", "in_session"]
