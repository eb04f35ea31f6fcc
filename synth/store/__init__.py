"""Storage: the DuckDB file, its migrations and one module per table family; the only code that writes SQL."""

from synth.store.duck import DuckStore, in_session, run_filter

__all__ = ["DuckStore", "in_session", "run_filter"]
