"""One registry shape for providers, models, techniques, projectors and recipes."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class Registry(dict):
    """A dict from name to entry that refuses to register a name twice."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str, entry: Any) -> Any:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self[name] = entry
        return entry

    def add(self, entry: T) -> T:
        """Register an entry under its ``name`` attribute; usable as a class decorator."""
        return self.register(entry.name, entry)
