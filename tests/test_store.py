import ast
import re
import threading

import duckdb
import pytest
from conftest import ROOT

from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run
from synth.store import DuckStore
from synth.store.migrations import _MIGRATIONS

DOCUMENTED_TABLES = ["prompts", "runs", "items", "embeddings", "metrics", "layouts", "projections",
                     "item_versions", "failures", "judgements", "response_cache", "clusterings", "clusters"]


def _items(n, prefix="text"):
    return [Item(text=f"{prefix} {i}", idx=i, tokens_in=3, tokens_out=5, latency_ms=10.0, cost_usd=0.001)
            for i in range(n)]


def test_migrations_apply_once_and_are_recorded(tmp_path):
    store = DuckStore(tmp_path / "a.duckdb")
    assert store.applied_migrations() == [name for _, name, _ in _MIGRATIONS]
    assert DuckStore(tmp_path / "a.duckdb").migrate() == []


def _readme_columns(readme: str, table: str) -> set[str]:
    """Backquoted names in the README paragraph that documents ``table``."""
    start = readme.index(f"`{table}`:") if f"`{table}`:" in readme else readme.index(f"**`{table}`**")
    end = readme.find("\n\n", start)
    return set(re.findall(r"`([a-z_0-9]+)`", readme[start:end]))


@pytest.mark.slow
def test_schema_matches_readme(store):
    """The README lists every column users can query; the database must not have others."""
    readme = (ROOT / "README.md").read_text()
    for table in DOCUMENTED_TABLES:
        actual = set(store.frame(f"DESCRIBE {table}")["column_name"])
        missing = actual - _readme_columns(readme, table)
        assert not missing, f"{table}: columns not documented in README: {missing}"


def test_save_run_totals_and_prompt_versions(store):
    p1 = PromptSpec(template="About {x}", variables={"x": ["a"]}, name="fam")
    p2 = PromptSpec(template="On {x}", variables={"x": ["a"]}, name="fam")
    r1 = store.save_run(Run(name="r1", technique="sampling", model="m"), _items(3), p1)
    store.save_run(Run(name="r2", technique="sampling", model="m"), _items(2, "other"), p2)
    store.save_run(Run(name="r3", technique="sampling", model="m"), _items(2, "third"), p1)
    runs = store.runs().set_index("name")
    assert runs.loc["r1", "n_items"] == 3
    assert runs.loc["r1", "tokens_in"] == 9 and runs.loc["r1", "tokens_out"] == 15
    assert runs.loc["r1", "cost_usd"] == pytest.approx(0.003)
    assert list(runs["prompt_version"]) == [1, 2, 1]
    assert store.resolve_run("r1") == r1
    assert len(store.items([r1])) == 3


def test_unknown_cost_makes_run_cost_unknown(store):
    items = _items(2)
    items[1].cost_usd = None
    store.save_run(Run(name="r", technique="sampling"), items)
    assert store.runs()["cost_usd"].isna().all()


def test_failed_save_writes_nothing(store):
    items = _items(3)
    items[2].item_id = items[0].item_id  # duplicate key fails on insert
    with pytest.raises(duckdb.ConstraintException):
        store.save_run(Run(name="broken", technique="sampling"), items,
                       PromptSpec(template="t", name="p"))
    assert store.count_items() == 0
    assert store.runs().empty
    assert store.frame("SELECT count(*) AS n FROM prompts")["n"][0] == 0


def test_resolve_unknown_run(store):
    with pytest.raises(SynthError, match="No run called"):
        store.resolve_run("nope")


def test_not_a_database_file(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(SynthError, match="Cannot open database"):
        DuckStore(bad)


@pytest.mark.parametrize("sql", [
    "SELECT name FROM runs",
    "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
    "DESCRIBE items",
    "SHOW TABLES",
    "EXPLAIN SELECT * FROM items",
    "SUMMARIZE items",
    "FROM runs",
])
@pytest.mark.slow
def test_read_only_queries_allowed(store, sql):
    frame, truncated = store.query_readonly(sql)
    assert truncated is False
    assert len(frame.columns) >= 1


@pytest.mark.parametrize("sql, message", [
    ("DELETE FROM items", "DELETE statements are not allowed"),
    ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT statements are not allowed"),
    ("DROP TABLE items", "DROP statements are not allowed"),
    ("CREATE TABLE x (a INT)", "CREATE statements are not allowed"),
    ("UPDATE items SET text = ''", "UPDATE statements are not allowed"),
    ("ATTACH '/tmp/other.duckdb'", "ATTACH statements are not allowed"),
    ("COPY items TO '/tmp/out.csv'", "COPY statements are not allowed"),
    ("INSTALL httpfs", "not allowed"),
    ("LOAD httpfs", "not allowed"),
    ("PRAGMA database_list", "PRAGMA statements are not allowed"),
    ("SET threads = 1", "SET statements are not allowed"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("", "empty"),
    ("SELEC 1", "does not parse"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled by configuration"),
])
@pytest.mark.slow
def test_read_only_console_refuses(store, sql, message):
    with pytest.raises(SynthError, match=message):
        store.query_readonly(sql)


def test_row_limit_truncates(store):
    frame, truncated = store.query_readonly("SELECT * FROM range(50)", limit=10)
    assert len(frame) == 10 and truncated
    assert list(frame.iloc[:, 0]) == list(range(10))


def test_time_limit_interrupts(store):
    with pytest.raises(SynthError, match="longer than 0.5 s"):
        store.query_readonly("SELECT count(*) FROM range(1000000000) a, range(1000000) b", timeout_s=0.5)


def test_threads_share_the_file(store):
    errors = []

    def write(k):
        try:
            store.save_run(Run(name=f"t{k}", technique="sampling"), _items(5, f"thread{k}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_items() == 30


# An SQL statement inside a string: its keyword (upper case, as the store writes SQL) and what
# must follow it, so prose such as "Select the runs" or "WITH the seed" does not count.
SQL_STATEMENT = re.compile(
    r"\b(SELECT\s+\S.*?\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+(\s+\w+)?\s+SET\b"
    r"|DELETE\s+FROM\b|CREATE\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+|UNIQUE\s+)?(TABLE|INDEX|VIEW|SEQUENCE|MACRO)\b"
    r"|ALTER\s+TABLE\b|WITH\s+(RECURSIVE\s+)?\w+\s+AS\s*\()", re.S)
# The SQL console page's example queries are SQL by design; users run them read-only.
SQL_ALLOWED = {"synth/outputs/sqlconsole.py"}


def _sql_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal (f-strings with their fields blanked) holding SQL."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        else:
            continue
        if SQL_STATEMENT.search(text):
            found.append((node.lineno, text))
    return found


def test_sql_detector_tells_statements_from_prose():
    assert _sql_strings('q = "SELECT run_id FROM runs WHERE name = ?"')
    assert _sql_strings('q = f"UPDATE items SET tags = ? WHERE {where}"')
    assert _sql_strings('q = """WITH latest AS (SELECT 1) SELECT * FROM latest"""')
    assert _sql_strings('q = "ALTER TABLE runs ADD COLUMN x INTEGER"')
    assert not _sql_strings('"""Select the runs to compare, with the same seed; delete from the list."""')


def test_only_the_store_writes_sql():
    offenders = []
    for path in sorted((ROOT / "synth").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("synth/store/") or relative in SQL_ALLOWED:
            continue
        offenders += [f"{relative}:{line}: {text.strip()[:60]!r}" for line, text in _sql_strings(path.read_text())]
    assert offenders == [], "SQL outside synth/store/ (add a store method instead):\n" + "\n".join(offenders)
    assert _sql_strings((ROOT / "synth/outputs/sqlconsole.py").read_text()), "the allowance is stale"


def test_data_version_sees_a_write_through_another_store_at_once_and_can_leave_metrics_out(tmp_path):
    path = tmp_path / "v.duckdb"
    reader, writer = DuckStore(path), DuckStore(path)
    before = reader.data_version()
    assert reader.data_version() == before  # reused within VERSION_REUSE_S
    run = Run(name="r", technique="sampling", model="m")
    writer.save_run(run, [Item(text="one", idx=0), Item(text="two", idx=1)])
    after = reader.data_version()
    assert after != before and after[0] == 2
    items_only = reader.data_version(metrics=False)
    writer.put_metrics(run.run_id, {"count": 2.0}, {"count": {}}, "inputs")
    assert reader.data_version() != after  # the metrics table changed
    assert reader.data_version(metrics=False) == items_only  # the items, layouts and clusters did not
    assert reader.items()["item_id"].dtype == object  # plain strings: isin on them is fast


def test_items_signature_names_the_set_of_items_and_texts_whatever_their_order():
    import hashlib
    import json

    import pandas as pd

    from synth.kernel.records import items_signature

    items = pd.DataFrame({"item_id": ["b", "a", "c"], "text_hash": ["h2", "h1", "h3"]})
    # The stored layouts' and clusterings' key, as written before: sha256 of the sorted "id:hash" list.
    blob = json.dumps(["a:h1", "b:h2", "c:h3"], sort_keys=True, ensure_ascii=False, default=str)
    assert items_signature(items) == hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    assert items_signature(items.iloc[::-1]) == items_signature(items)
    assert items_signature(items.assign(text_hash=["h2", "h1", "changed"])) != items_signature(items)
    assert items_signature(items.astype({"item_id": "str"})) == items_signature(items)  # Arrow strings alike
