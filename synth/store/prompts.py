"""Table ``prompts``: prompt versions, their parents, diffs and names."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec, now
from synth.store.migrations import set_lineage
from synth.store.sql import to_json


def upsert_prompt(con: duckdb.DuckDBPyConnection, prompt: PromptSpec) -> str:
    """The id of this prompt version, saving it first (with its parent and the diff from it) if
    it is new. The parent is ``prompt.parent_id`` if set, else the newest version of the name."""
    pid = prompt.prompt_id
    if con.execute("SELECT 1 FROM prompts WHERE prompt_id = ?", [pid]).fetchone():
        if prompt.label:
            set_label(con, pid, prompt.label)
        return pid
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM prompts WHERE name = ?",
                          [prompt.name]).fetchone()[0]
    parent_id = prompt.parent_id or next(iter(con.execute(
        "SELECT prompt_id FROM prompts WHERE name = ? ORDER BY version DESC LIMIT 1",
        [prompt.name]).fetchone() or []), None)
    parent = _parent_spec(con, parent_id) if parent_id else None
    con.execute("INSERT INTO prompts (prompt_id, name, version, template, system_prompt, variables, "
                "created_at, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [pid, prompt.name, version, prompt.template, prompt.system_prompt,
                 to_json(prompt.variables), now(), to_json(prompt.params or None)])
    set_lineage(con, pid, parent_id, parent, {"template": prompt.template, "system_prompt": prompt.system_prompt,
                                             "variables": prompt.variables, "params": prompt.params,
                                             "title": f"{prompt.name} v{version}"})
    if prompt.label:
        set_label(con, pid, prompt.label)
    return pid


def _parent_spec(con: duckdb.DuckDBPyConnection, parent_id: str) -> dict:
    """A saved version's template, system_prompt, variables, params and title."""
    row = con.execute("SELECT template, system_prompt, variables, params, name, version FROM prompts "
                      "WHERE prompt_id = ?", [parent_id]).fetchone()
    if row is None:
        raise SynthError(f"Parent version {parent_id} does not exist. Choose a saved version.")
    return {"template": row[0], "system_prompt": row[1], "variables": json.loads(row[2] or "{}"),
            "params": json.loads(row[3]) if row[3] else {}, "title": f"{row[4]} v{row[5]}"}


def set_label(con: duckdb.DuckDBPyConnection, prompt_id: str, label: str | None) -> None:
    """Name a version (None or blank clears it); names are words, unique within a prompt."""
    label = (label or "").strip() or None
    if label:
        if label.isdigit() or label.lower().startswith("v") and label[1:].isdigit():
            raise SynthError(f"{label!r} looks like a version number. Name versions with words, "
                             "e.g. 'shorter-system-prompt'.")
        clash = con.execute("""SELECT version FROM prompts WHERE label = ? AND prompt_id <> ?
                               AND name = (SELECT name FROM prompts WHERE prompt_id = ?)""",
                            [label, prompt_id, prompt_id]).fetchone()
        if clash:
            raise SynthError(f"Version {clash[0]} of this prompt is already called {label!r}. "
                             "Choose another name.")
    con.execute("UPDATE prompts SET label = ? WHERE prompt_id = ?", [label, prompt_id])


class PromptsMixin:
    """Prompt versions (``prompts``)."""

    def save_prompt(self, prompt: PromptSpec) -> str:
        """Save a prompt version (if it is new) without a run; return its id."""
        with self.transaction() as con:
            return upsert_prompt(con, prompt)

    def name_version(self, prompt_id: str, label: str | None) -> None:
        """Name a prompt version (or clear its name with None)."""
        with self.transaction() as con:
            if not con.execute("SELECT 1 FROM prompts WHERE prompt_id = ?", [prompt_id]).fetchone():
                raise SynthError(f"No prompt version {prompt_id}. List them with: python -m synth prompts list")
            set_label(con, prompt_id, label)

    def prompts(self, name: str | None = None) -> pd.DataFrame:
        """Prompt versions (of one prompt, or all), oldest first, with how many runs used each."""
        return self.frame(f"""
            SELECT p.*, (SELECT count(*) FROM runs r WHERE r.prompt_id = p.prompt_id) AS n_runs
            FROM prompts p {'WHERE p.name = ?' if name else ''}
            ORDER BY p.name, p.version""", [name] if name else [])

