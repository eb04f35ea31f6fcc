"""DuckDB storage: one database file, numbered migrations, and the only code that writes SQL.

Reads: nothing but the database file. Writes: the tables documented in README.md
(``prompts``, ``runs``, ``items``, ``embeddings``, ``metrics``, ``layouts``, ``projections``).

Connections are opened per operation and closed after it, under a per-file lock, so the app and
the CLI can take turns on the same file (DuckDB lets only one process hold it at a time).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import numpy as np
import pandas as pd

from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run, now, render_version, version_changes, version_diff

# How long to wait for another process (the app, a CLI command) to release the file.
LOCK_WAIT_S = 10.0

_MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = []
_PATH_LOCKS: dict[str, threading.RLock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def migration(fn: Callable[[duckdb.DuckDBPyConnection], None]):
    """Register ``mNNN_name`` as schema migration number NNN (applied once, in order)."""
    number = int(fn.__name__[1:4])
    if any(n == number for n, _, _ in _MIGRATIONS):
        raise ValueError(f"migration {number} registered twice")
    _MIGRATIONS.append((number, fn.__name__, fn))
    _MIGRATIONS.sort(key=lambda m: m[0])
    return fn


@migration
def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE TABLE prompts (
            prompt_id     VARCHAR PRIMARY KEY,
            name          VARCHAR NOT NULL,
            version       INTEGER NOT NULL,
            template      VARCHAR NOT NULL,
            system_prompt VARCHAR,
            variables     JSON,
            created_at    TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE runs (
            run_id      VARCHAR PRIMARY KEY,
            name        VARCHAR NOT NULL,
            technique   VARCHAR NOT NULL,
            prompt_id   VARCHAR,
            model       VARCHAR,
            params      JSON,
            source      VARCHAR,
            n_items     INTEGER NOT NULL,
            tokens_in   BIGINT NOT NULL,
            tokens_out  BIGINT NOT NULL,
            cost_usd    DOUBLE,
            latency_s   DOUBLE NOT NULL,
            wall_s      DOUBLE NOT NULL,
            created_at  TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE items (
            item_id         VARCHAR PRIMARY KEY,
            run_id          VARCHAR NOT NULL,
            idx             INTEGER NOT NULL,
            text            VARCHAR NOT NULL,
            text_hash       VARCHAR NOT NULL,
            prompt_id       VARCHAR,
            rendered_prompt VARCHAR,
            variables       JSON,
            model           VARCHAR,
            params          JSON,
            tokens_in       INTEGER NOT NULL,
            tokens_out      INTEGER NOT NULL,
            latency_ms      DOUBLE NOT NULL,
            cost_usd        DOUBLE,
            finish_reason   VARCHAR,
            status          VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL,
            meta            JSON
        )""")
    con.execute("CREATE INDEX items_run ON items(run_id)")
    con.execute("""
        CREATE TABLE embeddings (
            model      VARCHAR NOT NULL,
            text_hash  VARCHAR NOT NULL,
            dim        INTEGER NOT NULL,
            vector     FLOAT[] NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, text_hash)
        )""")
    con.execute("""
        CREATE TABLE metrics (
            run_id      VARCHAR NOT NULL,
            name        VARCHAR NOT NULL,
            value       DOUBLE,
            params      JSON,
            inputs_hash VARCHAR NOT NULL,
            computed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, name)
        )""")
    con.execute("""
        CREATE TABLE layouts (
            layout_id   VARCHAR PRIMARY KEY,
            method      VARCHAR NOT NULL,
            embed_model VARCHAR NOT NULL,
            params      JSON,
            items_hash  VARCHAR NOT NULL,
            n_items     INTEGER NOT NULL,
            created_at  TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE projections (
            layout_id VARCHAR NOT NULL,
            item_id   VARCHAR NOT NULL,
            x         DOUBLE NOT NULL,
            y         DOUBLE NOT NULL,
            PRIMARY KEY (layout_id, item_id)
        )""")


@migration
def m002_generation_studio(con: duckdb.DuckDBPyConnection) -> None:
    """Techniques, structured output, review, judging, batching (issue: generation studio)."""
    for column, kind in [("source_ref", "VARCHAR"), ("source_text", "VARCHAR"), ("fields", "JSON"),
                         ("valid", "BOOLEAN"), ("invalid_reason", "VARCHAR"),
                         ("cached", "BOOLEAN DEFAULT false"), ("version", "INTEGER DEFAULT 1")]:
        con.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
    for column, kind in [("status", "VARCHAR DEFAULT 'complete'"), ("n_failed", "INTEGER DEFAULT 0"),
                         ("n_skipped", "INTEGER DEFAULT 0"), ("budget_usd", "DOUBLE"), ("config", "JSON")]:
        con.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    con.execute("""
        CREATE TABLE failures (
            run_id      VARCHAR NOT NULL,
            idx         INTEGER NOT NULL,
            error_kind  VARCHAR,
            message     VARCHAR NOT NULL,
            attempts    INTEGER NOT NULL,
            source_ref  VARCHAR,
            created_at  TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE response_cache (
            cache_key   VARCHAR PRIMARY KEY,
            model       VARCHAR NOT NULL,
            completion  JSON NOT NULL,
            created_at  TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE item_versions (
            item_id    VARCHAR NOT NULL,
            version    INTEGER NOT NULL,
            text       VARCHAR NOT NULL,
            status     VARCHAR NOT NULL,
            note       VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (item_id, version)
        )""")
    con.execute("""
        CREATE TABLE judgements (
            judgement_id   VARCHAR PRIMARY KEY,
            item_id        VARCHAR NOT NULL,
            run_id         VARCHAR NOT NULL,
            judge_model    VARCHAR NOT NULL,
            rubric_id      VARCHAR NOT NULL,
            rubric         JSON NOT NULL,
            score          DOUBLE,
            criteria       JSON,
            reason         VARCHAR,
            valid          BOOLEAN NOT NULL,
            invalid_reason VARCHAR,
            tokens_in      INTEGER NOT NULL,
            tokens_out     INTEGER NOT NULL,
            cost_usd       DOUBLE,
            latency_ms     DOUBLE NOT NULL,
            created_at     TIMESTAMP NOT NULL
        )""")
    con.execute("CREATE INDEX judgements_item ON judgements(item_id)")


@migration
def m003_clusters(con: duckdb.DuckDBPyConnection) -> None:
    """Clusterings of the whole dataset, for cluster_entropy, filters and the map."""
    con.execute("""
        CREATE TABLE clusterings (
            clustering_id VARCHAR PRIMARY KEY,
            method        VARCHAR NOT NULL,
            embed_model   VARCHAR NOT NULL,
            params        JSON,
            items_hash    VARCHAR NOT NULL,
            n_items       INTEGER NOT NULL,
            created_at    TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE clusters (
            clustering_id VARCHAR NOT NULL,
            item_id       VARCHAR NOT NULL,
            cluster_id    INTEGER NOT NULL,
            label         VARCHAR,
            PRIMARY KEY (clustering_id, item_id)
        )""")


@migration
def m004_map(con: duckdb.DuckDBPyConnection) -> None:
    """Stable layouts (models kept for transform), reference runs, tags, named clusters."""
    con.execute("ALTER TABLE runs ADD COLUMN role VARCHAR DEFAULT 'synthetic'")
    con.execute("ALTER TABLE items ADD COLUMN tags JSON")
    con.execute("ALTER TABLE layouts ADD COLUMN trustworthiness DOUBLE")
    con.execute("ALTER TABLE layouts ADD COLUMN trust_params JSON")
    con.execute("ALTER TABLE projections ADD COLUMN placed VARCHAR DEFAULT 'fit'")
    con.execute("""
        CREATE TABLE layout_models (
            layout_id  VARCHAR PRIMARY KEY,
            model      BLOB NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""")
    con.execute("""
        CREATE TABLE cluster_labels (
            clustering_id VARCHAR NOT NULL,
            cluster_id    INTEGER NOT NULL,
            size          INTEGER NOT NULL,
            keywords      VARCHAR,
            llm_label     VARCHAR,
            llm_model     VARCHAR,
            PRIMARY KEY (clustering_id, cluster_id)
        )""")


@migration
def m005_prompt_versions(con: duckdb.DuckDBPyConnection) -> None:
    """Prompt versions carry their generation parameters, their parent, a diff and a name."""
    for column, kind in [("params", "JSON"), ("parent_id", "VARCHAR"), ("label", "VARCHAR"),
                         ("diff", "VARCHAR"), ("changes", "JSON")]:
        con.execute(f"ALTER TABLE prompts ADD COLUMN {column} {kind}")
    rows = con.execute("SELECT prompt_id, name, version, template, system_prompt, variables FROM prompts "
                       "ORDER BY name, version").fetchall()
    previous: dict[str, tuple] = {}
    for pid, name, version, template, system, variables in rows:
        parent = previous.get(name)
        spec = {"template": template, "system_prompt": system, "variables": json.loads(variables or "{}"),
                "title": f"{name} v{version}"}
        _set_lineage(con, pid, parent[0] if parent else None, parent[1] if parent else None, spec)
        previous[name] = (pid, spec)


def _set_lineage(con: duckdb.DuckDBPyConnection, pid: str, parent_id: str | None, parent: dict | None,
                 spec: dict) -> None:
    """Record a version's parent, its diff from it and what changed; ``parent`` and ``spec`` hold
    template, system_prompt, variables, params and title."""
    def text(v: dict | None) -> str:
        return render_version(v["template"], v["system_prompt"], v["variables"], v.get("params")) if v else ""

    diff = version_diff(text(parent), text(spec), parent["title"] if parent else "(none)", spec["title"])
    con.execute("UPDATE prompts SET parent_id = ?, diff = ?, changes = ? WHERE prompt_id = ?",
                [parent_id, diff, _json(version_changes(parent, spec)), pid])


# Statement types a read-only query may have (DESCRIBE, SHOW and SUMMARIZE parse as SELECT).
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


def _lock_for(path: str) -> threading.RLock:
    with _PATH_LOCKS_GUARD:
        return _PATH_LOCKS.setdefault(path, threading.RLock())


# A fit (a layout or a clustering): (header table, id column, per-item table).
FITS = {"layout": ("layouts", "layout_id", "projections"),
        "clustering": ("clusterings", "clustering_id", "clusters")}


BULK_ROWS = 50


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Insert rows by column name, so added columns never shift positional values."""
    if not rows:
        return
    columns = list(rows[0])
    if len(rows) < BULK_ROWS:
        con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [[row[c] for c in columns] for row in rows])
        return
    # Many rows: one INSERT ... SELECT from a DataFrame (executemany binds row by row, ~1 ms each).
    frame = pd.DataFrame({c: pd.Series([row[c] for row in rows], dtype=object) for c in columns})
    con.register("_insert_rows", frame)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM _insert_rows")
    finally:
        con.unregister("_insert_rows")


def run_filter(alias: str, run_ids: list[str] | None) -> tuple[str, list[str]]:
    """A ``WHERE <alias>.run_id IN (...)`` clause and its parameters; empty for all runs."""
    if not run_ids:
        return "", []
    return f"WHERE {alias}.run_id IN ({', '.join('?' * len(run_ids))})", list(run_ids)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def in_session(func):
    """Run ``func(store, ...)`` on one connection (see ``DuckStore.session``)."""

    @functools.wraps(func)
    def wrapper(store: "DuckStore", *args, **kwargs):
        with store.session():
            return func(store, *args, **kwargs)

    return wrapper


class DuckStore:
    """The project's database file. Creates it and applies migrations on first use."""

    def __init__(self, path: str | Path):
        self.path = str(Path(path).expanduser().resolve())
        self._lock = _lock_for(self.path)
        self._session = threading.local()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthError(f"Cannot create the folder for database {self.path}: {exc}. "
                             "Choose another path with --db or SYNTH_DB.") from None
        self.migrate()

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connect(self, read_only: bool = False, config: dict | None = None
                ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the file's lock and closed afterwards (inside ``session()``,
        the session's connection)."""
        with self._lock:
            held = getattr(self._session, "con", None)
            if held is not None and not read_only and not config:
                cursor = held.cursor()  # cheap: the database is already open
                try:
                    yield cursor
                finally:
                    cursor.close()
                return
            con = self._open(read_only, config or {})
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def session(self) -> Iterator["DuckStore"]:
        """One connection for every statement inside, in this thread (opening the file costs tens
        of milliseconds; a page load makes dozens of calls). Other processes wait until it ends."""
        with self._lock:
            if getattr(self._session, "con", None) is not None:
                yield self
                return
            self._session.con = self._open(False, {})
            try:
                yield self
            finally:
                con, self._session.con = self._session.con, None
                con.close()

    def _open(self, read_only: bool, config: dict) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only, config=config)
            except duckdb.IOException as exc:
                # Another process holds the file; it usually lets go within a moment.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise SynthError(
                        f"Cannot open database {self.path}: {exc}. If another Synth Studio "
                        "process (the app or a CLI command) is using it, wait for it to finish "
                        "or point --db / SYNTH_DB at another file."
                    ) from None
                time.sleep(0.2)
            except duckdb.Error as exc:
                raise SynthError(f"Cannot open database {self.path}: {exc}. The file may not be a "
                                 "DuckDB database; point --db / SYNTH_DB at another file.") from None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All statements inside commit together or not at all."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply migrations not yet recorded in ``_migrations``; return their names."""
        applied: list[str] = []
        with self.transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS _migrations "
                        "(number INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
            done = {r[0] for r in con.execute("SELECT number FROM _migrations").fetchall()}
            for number, name, fn in _MIGRATIONS:
                if number in done:
                    continue
                fn(con)
                con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, name, now()])
                applied.append(name)
        return applied

    def applied_migrations(self) -> list[str]:
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY number").fetchall()]

    # -- writes ------------------------------------------------------------------------------

    @staticmethod
    def _upsert_prompt(con: duckdb.DuckDBPyConnection, prompt: PromptSpec) -> str:
        """The id of this prompt version, saving it first (with its parent and the diff from it) if
        it is new. The parent is ``prompt.parent_id`` if set, else the newest version of the name."""
        pid = prompt.prompt_id
        if con.execute("SELECT 1 FROM prompts WHERE prompt_id = ?", [pid]).fetchone():
            if prompt.label:
                DuckStore._label(con, pid, prompt.label)
            return pid
        version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM prompts WHERE name = ?",
                              [prompt.name]).fetchone()[0]
        parent_id = prompt.parent_id or next(iter(con.execute(
            "SELECT prompt_id FROM prompts WHERE name = ? ORDER BY version DESC LIMIT 1",
            [prompt.name]).fetchone() or []), None)
        parent = None
        if parent_id:
            row = con.execute("SELECT template, system_prompt, variables, params, name, version FROM prompts "
                              "WHERE prompt_id = ?", [parent_id]).fetchone()
            if row is None:
                raise SynthError(f"Parent version {parent_id} does not exist. Choose a saved version.")
            parent = {"template": row[0], "system_prompt": row[1], "variables": json.loads(row[2] or "{}"),
                      "params": json.loads(row[3]) if row[3] else {}, "title": f"{row[4]} v{row[5]}"}
        con.execute("INSERT INTO prompts (prompt_id, name, version, template, system_prompt, variables, "
                    "created_at, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [pid, prompt.name, version, prompt.template, prompt.system_prompt,
                     _json(prompt.variables), now(), _json(prompt.params or None)])
        _set_lineage(con, pid, parent_id, parent, {"template": prompt.template, "system_prompt": prompt.system_prompt,
                                                  "variables": prompt.variables, "params": prompt.params,
                                                  "title": f"{prompt.name} v{version}"})
        if prompt.label:
            DuckStore._label(con, pid, prompt.label)
        return pid

    @staticmethod
    def _label(con: duckdb.DuckDBPyConnection, prompt_id: str, label: str | None) -> None:
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

    def save_prompt(self, prompt: PromptSpec) -> str:
        """Save a prompt version (if it is new) without a run; return its id."""
        with self.transaction() as con:
            return self._upsert_prompt(con, prompt)

    def name_version(self, prompt_id: str, label: str | None) -> None:
        """Name a prompt version (or clear its name with None)."""
        with self.transaction() as con:
            if not con.execute("SELECT 1 FROM prompts WHERE prompt_id = ?", [prompt_id]).fetchone():
                raise SynthError(f"No prompt version {prompt_id}. List them with: python -m synth prompts list")
            self._label(con, prompt_id, label)

    def save_run(self, run: Run, items: list[Item], prompt: PromptSpec | None = None) -> str:
        """Write a run, its prompt and all its items in one transaction; return the run id."""
        self.save_runs([(run, items, prompt)])
        return run.run_id

    def save_runs(self, batch: list[tuple[Run, list[Item], PromptSpec | None]]) -> None:
        """Write several runs in one transaction: all of them or none."""
        with self.transaction() as con:
            for run, items, prompt in batch:
                self._insert_run(con, run, items, prompt)

    def _insert_run(self, con: duckdb.DuckDBPyConnection, run: Run, items: list[Item],
                    prompt: PromptSpec | None) -> None:
        if not items:
            raise SynthError(f"Nothing to save: run {run.name!r} has no items.")
        totals = run.totals(items)
        if prompt is not None:
            run.prompt_id = self._upsert_prompt(con, prompt)
        _insert(con, "runs", [{
            "run_id": run.run_id, "name": run.name, "technique": run.technique,
            "prompt_id": run.prompt_id, "model": run.model, "params": _json(run.params),
            "source": run.source, **totals, "wall_s": run.wall_s, "created_at": run.created_at,
            "status": run.status, "n_failed": len(run.failures), "n_skipped": run.n_skipped,
            "budget_usd": run.budget_usd, "config": _json(run.config), "role": run.role,
        }])
        rows = []
        for it in items:
            it.run_id = run.run_id
            it.prompt_id = it.prompt_id or run.prompt_id
            rows.append({
                "item_id": it.item_id, "run_id": it.run_id, "idx": it.idx, "text": it.text,
                "text_hash": it.text_hash, "prompt_id": it.prompt_id, "rendered_prompt": it.rendered_prompt,
                "variables": _json(it.variables), "model": it.model, "params": _json(it.params),
                "tokens_in": it.tokens_in, "tokens_out": it.tokens_out, "latency_ms": it.latency_ms,
                "cost_usd": it.cost_usd, "finish_reason": it.finish_reason, "status": it.status,
                "created_at": it.created_at, "meta": _json(it.meta), "source_ref": it.source_ref,
                "source_text": it.source_text, "fields": _json(it.fields), "valid": it.valid,
                "invalid_reason": it.invalid_reason, "cached": it.cached, "version": 1,
            })
        _insert(con, "items", rows)
        _insert(con, "failures", [{"run_id": run.run_id, **f, "created_at": now()} for f in run.failures])

    def cached_responses(self, keys: list[str]) -> dict[str, dict]:
        """Cached completions by cache key (only the keys that are there)."""
        if not keys:
            return {}
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"cache_key": keys}))
            rows = con.execute("SELECT c.cache_key, c.completion FROM response_cache c "
                               "JOIN wanted USING (cache_key)").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def put_cached_responses(self, entries: dict[str, dict]) -> None:
        """Store completions under their cache keys (``{"model": ..., "completion": {...}}``)."""
        if not entries:
            return
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO response_cache VALUES (?, ?, ?, ?)",
                            [[k, v["model"], _json(v["completion"]), now()] for k, v in entries.items()])

    def save_judgements(self, rows: list[dict]) -> None:
        with self.transaction() as con:
            _insert(con, "judgements", rows)

    def set_status(self, item_ids: list[str], status: str) -> int:
        """Set the review status of items; return how many exist."""
        if not item_ids:
            return 0
        marks = ", ".join("?" * len(item_ids))
        with self.transaction() as con:
            n = con.execute(f"SELECT count(*) FROM items WHERE item_id IN ({marks})", item_ids).fetchone()[0]
            con.execute(f"UPDATE items SET status = ? WHERE item_id IN ({marks})", [status, *item_ids])
        return n

    def save_edit(self, item_id: str, text: str, text_hash: str, note: str | None) -> int:
        """Replace an item's text, keeping every earlier version in ``item_versions``; return the new
        version number."""
        with self.transaction() as con:
            row = con.execute("SELECT text, status, version, created_at FROM items WHERE item_id = ?",
                              [item_id]).fetchone()
            if row is None:
                raise SynthError(f"No item {item_id!r}.")
            old_text, old_status, version, created = row
            if not con.execute("SELECT 1 FROM item_versions WHERE item_id = ? AND version = ?",
                               [item_id, version]).fetchone():
                con.execute("INSERT INTO item_versions VALUES (?, ?, ?, ?, ?, ?)",
                            [item_id, version, old_text, old_status, "original", created])
            new_version = version + 1
            con.execute("INSERT INTO item_versions VALUES (?, ?, ?, ?, ?, ?)",
                        [item_id, new_version, text, "edited", note, now()])
            con.execute("UPDATE items SET text = ?, text_hash = ?, status = 'edited', version = ? "
                        "WHERE item_id = ?", [text, text_hash, new_version, item_id])
        return new_version

    def put_embeddings(self, model: str, hashes: list[str], vectors: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        import pyarrow as pa

        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        table = pa.table({"text_hash": pa.array(hashes, pa.string()),
                          "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})
        with self.transaction() as con:
            con.register("new_vectors", table)
            con.execute("INSERT OR IGNORE INTO embeddings SELECT ?, text_hash, ?, vector::FLOAT[], ? "
                        "FROM new_vectors", [model, int(vectors.shape[1]), now()])
            con.unregister("new_vectors")

    def put_metrics(self, run_id: str, values: dict[str, float | None],
                    params: dict[str, dict], inputs_hash: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM metrics WHERE run_id = ?", [run_id])
            con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                            [[run_id, name, value, _json(params.get(name, {})), inputs_hash, now()]
                             for name, value in values.items()])

    def save_fit(self, kind: str, fit_id: str, method: str, embed_model: str, params: dict,
                 items_hash: str, rows: pd.DataFrame, extra: dict | None = None,
                 model: bytes | None = None) -> None:
        """Store a layout or a clustering (its header, one row per item and, for a layout, the
        fitted model used to place new items), in one transaction."""
        header, id_column, per_item = FITS[kind]
        values = {id_column: fit_id, "method": method, "embed_model": embed_model, "params": _json(params),
                  "items_hash": items_hash, "n_items": len(rows), "created_at": now(),
                  **{k: (_json(v) if isinstance(v, dict) else v) for k, v in (extra or {}).items()}}
        with self.transaction() as con:
            _insert(con, header, [values])
            self._insert_fit_rows(con, kind, fit_id, rows)
            if model is not None:
                con.execute("INSERT INTO layout_models VALUES (?, ?, ?)", [fit_id, model, now()])

    @staticmethod
    def _insert_fit_rows(con: duckdb.DuckDBPyConnection, kind: str, fit_id: str, rows: pd.DataFrame) -> None:
        _, id_column, per_item = FITS[kind]
        rows = rows.assign(**{id_column: fit_id})
        columns = [id_column] + [c for c in rows.columns if c != id_column]
        con.register("new_rows", rows[columns])
        con.execute(f"INSERT INTO {per_item} ({', '.join(columns)}) SELECT * FROM new_rows")
        con.unregister("new_rows")

    def append_fit_rows(self, kind: str, fit_id: str, rows: pd.DataFrame) -> None:
        """Add items to an existing layout (placed with its model) without moving the others."""
        with self.transaction() as con:
            self._insert_fit_rows(con, kind, fit_id, rows)

    def layout_model(self, layout_id: str) -> bytes | None:
        with self.connect() as con:
            row = con.execute("SELECT model FROM layout_models WHERE layout_id = ?", [layout_id]).fetchone()
        return None if row is None else bytes(row[0])

    def save_cluster_labels(self, clustering_id: str, labels: pd.DataFrame) -> None:
        """Names of a clustering's clusters (cluster_id, size, keywords, llm_label, llm_model); the
        display name (the LLM's if there is one) is copied to ``clusters.label``."""
        with self.transaction() as con:
            con.execute("DELETE FROM cluster_labels WHERE clustering_id = ?", [clustering_id])
            con.register("new_labels", labels.assign(clustering_id=clustering_id))
            con.execute("INSERT INTO cluster_labels (clustering_id, cluster_id, size, keywords, llm_label, "
                        "llm_model) SELECT clustering_id, cluster_id, size, keywords, llm_label, llm_model "
                        "FROM new_labels")
            con.execute("UPDATE clusters c SET label = coalesce(n.llm_label, n.keywords) FROM new_labels n "
                        "WHERE c.clustering_id = ? AND c.cluster_id = n.cluster_id", [clustering_id])
            con.unregister("new_labels")

    def cluster_labels(self, clustering_id: str) -> pd.DataFrame:
        return self.frame("SELECT cluster_id, size, keywords, llm_label, llm_model FROM cluster_labels "
                          "WHERE clustering_id = ? ORDER BY cluster_id", [clustering_id])

    def add_tags(self, item_ids: list[str], tags: list[str]) -> int:
        """Add tags to items (kept as a JSON list, without repeats); return how many items exist."""
        if not item_ids:
            return 0
        marks = ", ".join("?" * len(item_ids))
        with self.transaction() as con:
            rows = con.execute(f"SELECT item_id, tags FROM items WHERE item_id IN ({marks})", item_ids).fetchall()
            for item_id, current in rows:
                merged = list(dict.fromkeys((json.loads(current) if current else []) + list(tags)))
                con.execute("UPDATE items SET tags = ? WHERE item_id = ?", [_json(merged), item_id])
        return len(rows)

    # -- reads -------------------------------------------------------------------------------

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run one of the store's own queries and return a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def data_version(self) -> tuple:
        """Changes whenever items, layouts or metrics change: a cache key for readers."""
        with self.connect() as con:
            return con.execute("""
                SELECT (SELECT count(*) FROM items), (SELECT max(created_at) FROM items),
                       (SELECT count(*) FROM runs), (SELECT count(*) FROM layouts),
                       (SELECT max(computed_at) FROM metrics), (SELECT count(*) FROM judgements),
                       (SELECT sum(hash(item_id || status || text_hash || coalesce(CAST(tags AS VARCHAR), '')))
                        FROM items),
                       (SELECT count(*) FROM projections), (SELECT count(*) FROM cluster_labels),
                       (SELECT count(*) FROM clusterings)""").fetchone()

    def frame_with(self, sql: str, params: list, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Like ``frame``, with DataFrames registered as tables for the query."""
        with self.connect() as con:
            for name, table in tables.items():
                con.register(name, table)
            return con.execute(sql, params).df()

    def count_items(self) -> int:
        with self.connect() as con:
            return con.execute("SELECT count(*) FROM items").fetchone()[0]

    def prompts(self, name: str | None = None) -> pd.DataFrame:
        """Prompt versions (of one prompt, or all), oldest first, with how many runs used each."""
        return self.frame(f"""
            SELECT p.*, (SELECT count(*) FROM runs r WHERE r.prompt_id = p.prompt_id) AS n_runs
            FROM prompts p {'WHERE p.name = ?' if name else ''}
            ORDER BY p.name, p.version""", [name] if name else [])

    def runs(self) -> pd.DataFrame:
        return self.frame("""
            SELECT r.*, p.name AS prompt_name, p.version AS prompt_version, p.label AS version_label
            FROM runs r LEFT JOIN prompts p USING (prompt_id)
            ORDER BY r.created_at, r.run_id""")

    def resolve_run(self, run: str) -> str:
        """Accept a run id or a run name; return the run id."""
        with self.connect() as con:
            rows = con.execute("SELECT run_id FROM runs WHERE run_id = ? OR name = ? "
                               "ORDER BY created_at DESC", [run, run]).fetchall()
        if not rows:
            raise SynthError(f"No run called {run!r}. List runs with: python -m synth sql "
                             "\"SELECT run_id, name FROM runs\"")
        return rows[0][0]

    def items(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """Items with their run name, prompt version and latest judge score, oldest first."""
        where, params = run_filter("i", run_ids)
        return self._items_query(where, params)

    def items_by_id(self, item_ids: list[str]) -> pd.DataFrame:
        """The items with these ids (in the store's order)."""
        if not item_ids:
            return self._items_query("WHERE false", [])
        return self._items_query(f"WHERE i.item_id IN ({', '.join('?' * len(item_ids))})", list(item_ids))

    def _items_query(self, where: str, params: list) -> pd.DataFrame:
        return self.frame(f"""
            SELECT i.*, r.name AS run_name, r.technique, r.role AS run_role, p.name AS prompt_name,
                   p.version AS prompt_version, p.label AS version_label, j.judge_score
            FROM items i JOIN runs r USING (run_id) LEFT JOIN prompts p ON p.prompt_id = i.prompt_id
            LEFT JOIN (SELECT item_id, arg_max(score, created_at) AS judge_score
                       FROM judgements GROUP BY item_id) j ON j.item_id = i.item_id
            {where}
            ORDER BY r.created_at, i.run_id, i.idx""", params)

    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"text_hash": list(set(hashes))}))
            table = con.sql("SELECT e.text_hash, e.vector FROM embeddings e "
                            "JOIN wanted w USING (text_hash) WHERE e.model = ?", params=[model]).to_arrow_table()
        if table.num_rows == 0:
            return {}
        # Through Arrow: one flat buffer instead of a Python float per component.
        vectors = table.column("vector").combine_chunks()
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        matrix = matrix.reshape(table.num_rows, -1)
        return dict(zip(table.column("text_hash").to_pylist(), matrix))

    def metrics(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        where, params = run_filter("m", run_ids)
        return self.frame(f"""
            SELECT m.run_id, r.name AS run_name, m.name, m.value, m.params, m.inputs_hash,
                   m.computed_at
            FROM metrics m JOIN runs r USING (run_id) {where}
            ORDER BY r.created_at, m.run_id, m.name""", params)

    def metrics_inputs_hash(self, run_id: str) -> str | None:
        with self.connect() as con:
            row = con.execute("SELECT any_value(inputs_hash) FROM metrics WHERE run_id = ?",
                              [run_id]).fetchone()
        return row[0] if row else None

    def find_fit(self, kind: str, method: str, embed_model: str, params: dict, items_hash: str | None
                 ) -> tuple[str, pd.DataFrame] | None:
        """(id, per-item rows) of the newest layout or clustering with these parameters, fitted on
        exactly these items (or on any items when ``items_hash`` is None)."""
        header, id_column, per_item = FITS[kind]
        same_items = "" if items_hash is None else "AND items_hash = ? "
        with self.connect() as con:
            row = con.execute(f"SELECT {id_column} FROM {header} WHERE method = ? AND embed_model = ? "
                              f"AND params = ?::JSON {same_items}ORDER BY created_at DESC LIMIT 1",
                              [method, embed_model, _json(params)] + ([] if items_hash is None else [items_hash])
                              ).fetchone()
            if row is None:
                return None
            return row[0], con.execute(f"SELECT * EXCLUDE ({id_column}) FROM {per_item} "
                                       f"WHERE {id_column} = ?", [row[0]]).df()

    def fit_header(self, kind: str, fit_id: str) -> dict:
        header, id_column, _ = FITS[kind]
        frame = self.frame(f"SELECT * FROM {header} WHERE {id_column} = ?", [fit_id])
        return frame.iloc[0].to_dict() if len(frame) else {}

    def query_readonly(self, sql: str, limit: int = 1000, timeout_s: float = 10.0
                       ) -> tuple[pd.DataFrame, bool]:
        """Run one read-only statement; return (rows, truncated).

        The connection is opened read-only with external access off, so file-reading functions,
        ATTACH, COPY, INSTALL and LOAD fail in DuckDB itself, whatever the statement says.
        """
        sql = (sql or "").strip().rstrip(";").strip()
        if not sql:
            raise SynthError("The query is empty. Write one SELECT statement, e.g. "
                             "SELECT name, n_items FROM runs.")
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise SynthError(f"The query does not parse: {exc}") from None
        if len(statements) != 1:
            raise SynthError("Give exactly one statement (no ';'-separated lists).")
        kind = statements[0].type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise SynthError(f"{kind} statements are not allowed here: the SQL console is read-only. "
                             "Use SELECT, WITH, DESCRIBE, SHOW, EXPLAIN or SUMMARIZE.")
        with self.connect(read_only=True, config={"enable_external_access": False}) as con:
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.start()
            try:
                cursor = con.execute(sql)
                columns = [d[0] for d in cursor.description] if cursor.description else []
                rows = cursor.fetchmany(limit + 1)
            except duckdb.InterruptException:
                raise SynthError(f"The query ran longer than {timeout_s:g} s and was stopped. "
                                 "Add a WHERE clause or a LIMIT.") from None
            except duckdb.Error as exc:
                raise SynthError(f"The query failed: {exc}") from None
            finally:
                timer.cancel()
        truncated = len(rows) > limit
        return pd.DataFrame(rows[:limit], columns=columns), truncated
