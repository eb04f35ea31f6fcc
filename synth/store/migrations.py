"""Schema migrations: numbered functions applied once, in order, and recorded in ``_migrations``.

Each ``mNNN_name`` function changes the schema of a database made by the ones before it; never edit
one that has shipped, add the next number instead.
"""

from __future__ import annotations

import json
from typing import Callable

import duckdb

from synth.kernel.records import render_version, version_changes, version_diff
from synth.kernel.urls import URL_CREDENTIALS
from synth.store.sql import to_json

_MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = []


def migration(fn: Callable[[duckdb.DuckDBPyConnection], None]):
    """Register ``mNNN_name`` as schema migration number NNN (applied once, in order)."""
    number = int(fn.__name__[1:4])
    if any(n == number for n, _, _ in _MIGRATIONS):
        raise ValueError(f"migration {number} registered twice")
    _MIGRATIONS.append((number, fn.__name__, fn))
    _MIGRATIONS.sort(key=lambda m: m[0])
    return fn


# The first schema, statement by statement: prompts, runs, items (and its index), embeddings,
# metrics, layouts, projections.
INITIAL_SCHEMA = [
    """
        CREATE TABLE prompts (
            prompt_id     VARCHAR PRIMARY KEY,
            name          VARCHAR NOT NULL,
            version       INTEGER NOT NULL,
            template      VARCHAR NOT NULL,
            system_prompt VARCHAR,
            variables     JSON,
            created_at    TIMESTAMP NOT NULL
        )""",
    """
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
        )""",
    """
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
        )""",
    "CREATE INDEX items_run ON items(run_id)",
    """
        CREATE TABLE embeddings (
            model      VARCHAR NOT NULL,
            text_hash  VARCHAR NOT NULL,
            dim        INTEGER NOT NULL,
            vector     FLOAT[] NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, text_hash)
        )""",
    """
        CREATE TABLE metrics (
            run_id      VARCHAR NOT NULL,
            name        VARCHAR NOT NULL,
            value       DOUBLE,
            params      JSON,
            inputs_hash VARCHAR NOT NULL,
            computed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, name)
        )""",
    """
        CREATE TABLE layouts (
            layout_id   VARCHAR PRIMARY KEY,
            method      VARCHAR NOT NULL,
            embed_model VARCHAR NOT NULL,
            params      JSON,
            items_hash  VARCHAR NOT NULL,
            n_items     INTEGER NOT NULL,
            created_at  TIMESTAMP NOT NULL
        )""",
    """
        CREATE TABLE projections (
            layout_id VARCHAR NOT NULL,
            item_id   VARCHAR NOT NULL,
            x         DOUBLE NOT NULL,
            y         DOUBLE NOT NULL,
            PRIMARY KEY (layout_id, item_id)
        )""",
]


@migration
def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    """The tables of the first release."""
    for statement in INITIAL_SCHEMA:
        con.execute(statement)


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
        set_lineage(con, pid, parent[0] if parent else None, parent[1] if parent else None, spec)
        previous[name] = (pid, spec)


@migration
def m006_safe_files(con: duckdb.DuckDBPyConnection) -> None:
    """A database file holds nothing executable and no password: the pickled layout models go (a
    layout now places new items from its stored coordinates and the cached embeddings), and any
    ``user:password@`` part of a stored address is removed."""
    con.execute("DROP TABLE IF EXISTS layout_models")
    con.execute("ALTER TABLE layouts ADD COLUMN IF NOT EXISTS placement JSON")  # the numbers that place new items
    for table, column in [("runs", "config"), ("runs", "params"), ("prompts", "params")]:
        con.execute(f"UPDATE {table} SET {column} = regexp_replace({column}::VARCHAR, ?, '\\1', 'g')::JSON "
                    f"WHERE regexp_matches({column}::VARCHAR, ?)", [URL_CREDENTIALS, URL_CREDENTIALS])


def set_lineage(con: duckdb.DuckDBPyConnection, pid: str, parent_id: str | None, parent: dict | None,
                spec: dict) -> None:
    """Record a version's parent, its diff from it and what changed; ``parent`` and ``spec`` hold
    template, system_prompt, variables, params and title."""
    def text(v: dict | None) -> str:
        return render_version(v["template"], v["system_prompt"], v["variables"], v.get("params")) if v else ""

    diff = version_diff(text(parent), text(spec), parent["title"] if parent else "(none)", spec["title"])
    con.execute("UPDATE prompts SET parent_id = ?, diff = ?, changes = ? WHERE prompt_id = ?",
                [parent_id, diff, to_json(version_changes(parent, spec)), pid])


@migration
def m007_jobs(con: duckdb.DuckDBPyConnection) -> None:
    """Work the app or a CLI command runs in the background (a generation, an import, a map refit),
    with its progress; a run being made is saved item by item, so nothing answered is lost."""
    con.execute("""
        CREATE TABLE jobs (
            job_id      VARCHAR PRIMARY KEY,
            kind        VARCHAR NOT NULL,
            label       VARCHAR NOT NULL,
            state       VARCHAR NOT NULL,
            run_id      VARCHAR,
            done        INTEGER NOT NULL DEFAULT 0,
            total       INTEGER NOT NULL DEFAULT 0,
            n_ok        INTEGER NOT NULL DEFAULT 0,
            n_failed    INTEGER NOT NULL DEFAULT 0,
            n_cached    INTEGER NOT NULL DEFAULT 0,
            error       VARCHAR,
            owner       VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL,
            updated_at  TIMESTAMP NOT NULL,
            finished_at TIMESTAMP
        )""")
