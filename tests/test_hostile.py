"""Hostile files, hostile text and careless input, tried as an attacker or a careless user would.

Each case records what it tried in ``TALLY`` (payloads tried, refused, ran, items lost); the
terminal summary prints the totals (see ``pytest_terminal_summary`` in conftest.py).
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT
from openai_server import OpenAITestServer, ServerConfig

from synth.analysis import projection
from synth.cli.base import clean
from synth.generate.config import RunConfig
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, Run
from synth.store import DuckStore
from synth.workflows.pipeline import generate_run, import_run
from synth.workflows.recipes import load_recipe, recipe_text, run_recipe
from test_limits import doubling

TALLY = {"payloads tried": 0, "refused or inert": 0, "payloads that ran": 0, "items lost": 0}
WORDS = ["river", "mountain", "coffee", "engine", "violin", "tax", "garden", "planet", "soup", "bridge"]


def tally(tried: int, refused: int, ran: int = 0, lost: int = 0) -> None:
    TALLY["payloads tried"] += tried
    TALLY["refused or inert"] += refused
    TALLY["payloads that ran"] += ran
    TALLY["items lost"] += lost


class _Payload:
    """Unpickling this creates the marker file: proof that a pickle from the database was loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _old_file_with_a_planted_pickle(path: Path, marker: Path) -> int:
    """A database as the previous release left it (a pickled UMAP per layout in ``layout_models``),
    with the pickle replaced by a payload; one item is new, so opening the map must place it."""
    store = DuckStore(path)
    store.save_run(Run(name="notes", technique="sampling"),
                   [Item(text=f"A note about the {WORDS[i % 10]} number {i}", idx=i) for i in range(30)])
    layout = projection.current_layout(store, store.items(), background=False)
    store.save_run(Run(name="later", technique="sampling"), [Item(text="A note about the harbour", idx=0)])
    projection._MODELS.clear()
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE layouts DROP COLUMN placement")
    con.execute("CREATE TABLE layout_models (layout_id VARCHAR PRIMARY KEY, model BLOB NOT NULL, "
                "created_at TIMESTAMP NOT NULL)")
    con.execute("INSERT INTO layout_models VALUES (?, ?, now())", [layout.layout_id, pickle.dumps(_Payload(marker))])
    con.execute("DELETE FROM _migrations WHERE number = 6")
    con.close()
    assert pickle.loads(pickle.dumps(_Payload(marker))) is not None and marker.exists()  # the payload is live
    marker.unlink()
    return 31


@pytest.mark.slow
def test_a_pickle_planted_in_a_database_never_runs_from_the_cli(tmp_path):
    path, marker = tmp_path / "shared.duckdb", tmp_path / "PWNED"
    n = _old_file_with_a_planted_pickle(path, marker)
    proc = subprocess.run([sys.executable, "-m", "synth", "map", "--db", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    out = json.loads(proc.stdout)
    assert out["n_items"] == n and out["method"] == "umap"
    con = duckdb.connect(str(path), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    placed = con.execute("SELECT count(*) FROM projections WHERE placed = 'transform'").fetchone()[0]
    con.close()
    assert "layout_models" not in tables  # dropped unread by the migration
    assert placed == 1  # the new item was placed on the old layout, from arrays
    tally(1, 1, ran=int(marker.exists()))


@pytest.mark.slow
def test_a_pickle_planted_in_a_database_never_runs_in_the_app(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    path, marker = tmp_path / "shared.duckdb", tmp_path / "PWNED"
    _old_file_with_a_planted_pickle(path, marker)
    monkeypatch.setenv("SYNTH_DB", str(path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Diversity map" and at.get("plotly_chart")[0].key == "explore_map"
    projection.wait_for_layouts()
    assert not marker.exists()
    tally(1, 1, ran=int(marker.exists()))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.slow
def test_a_password_in_the_address_is_sent_as_a_header_and_never_stored(store):
    server = ServerConfig(required_auth=_basic("ann", "s3cret-pw"))
    with OpenAITestServer(server) as srv:
        address = srv.api_base.replace("http://", "http://ann:s3cret-pw@")
        cfg = RunConfig(model="openai/test-model", api_base=address, n=3, max_tokens=16,
                        template="Write about {topic}.", variables={"topic": ["tea", "rain"]})
        result = generate_run(store, cfg)
    assert result.status == "complete" and result.n_items == 3  # the server took the header
    assert {r["authorization"] for r in server.requests} == {_basic("ann", "s3cret-pw")}
    assert store.frame("SELECT config->>'api_base' AS a FROM runs")["a"][0] == srv.api_base
    con = duckdb.connect(store.path, read_only=True)
    stored = [str(v) for table in ("runs", "prompts", "items")
              for row in con.execute(f"SELECT * FROM {table}").fetchall() for v in row]
    con.close()
    assert not [v for v in stored if "s3cret-pw" in v]
    assert "s3cret-pw" not in recipe_text(cfg)  # a saved recipe holds the address without it
    tally(3, 3)


def test_a_wrong_password_says_so_and_does_not_leak_it(store):
    server = ServerConfig(required_auth=_basic("ann", "right"))
    with OpenAITestServer(server) as srv:
        address = srv.api_base.replace("http://", "http://ann:wrong-pw@")
        cfg = RunConfig(model="openai/test-model", api_base=address, n=2, max_tokens=8,
                        template="Write about {topic}.", variables={"topic": ["tea"]})
        with pytest.raises(SynthError) as caught:
            generate_run(store, cfg)
    message = str(caught.value)
    assert "rejected the API key" in message and "wrong-pw" not in message and srv.api_base in message
    assert store.count_items() == 0
    tally(1, 1)


def test_old_files_lose_their_stored_passwords_when_opened(tmp_path):
    path = tmp_path / "old.duckdb"
    store = DuckStore(path)
    store.save_run(Run(name="r", technique="sampling"), [Item(text="x", idx=0)])
    con = duckdb.connect(str(path))
    con.execute("UPDATE runs SET config = ?::JSON, params = ?::JSON",
                [json.dumps({"api_base": "http://u:pw1@h:8000/v1", "judge": {"api_base": "https://a:b@j/v1"}}),
                 json.dumps({"api_base": "http://u:pw1@h:8000/v1"})])
    con.execute("DELETE FROM _migrations WHERE number = 6")
    con.close()
    reopened = DuckStore(path)
    row = reopened.frame("SELECT config::VARCHAR AS c, params::VARCHAR AS p FROM runs").iloc[0]
    assert json.loads(row["c"]) == {"api_base": "http://h:8000/v1", "judge": {"api_base": "https://j/v1"}}
    assert json.loads(row["p"]) == {"api_base": "http://h:8000/v1"}
    tally(2, 2)


def _counts(store: DuckStore) -> dict:
    return {t: int(store.frame(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in ("runs", "items", "prompts")}


def _bad_recipe(text: str):
    return lambda store, tmp: run_recipe(store, load_recipe(text=text))


def _import_text(text: str):
    def attempt(store, tmp):
        path = tmp / "hostile.jsonl"
        path.write_text(json.dumps({"text": text}) + "\n")
        import_run(store, path)
    return attempt


REFUSALS = {
    "grammar doubling 26 times": lambda store, tmp: generate_run(
        store, RunConfig(technique="symbolic", grammar=doubling(26), n=1)),
    "grammar of {name} placeholders": lambda store, tmp: generate_run(
        store, RunConfig(technique="symbolic", n=2,
                         grammar={"start": "Hello {name}", "rules": {"name": ["Ann", "Bo"]}})),
    "imported text over the size cap": _import_text("x" * (settings.DEFAULT_MAX_ITEM_CHARS + 1)),
    "recipe n: ten": _bad_recipe("technique: sampling\nn: ten\ntemplate: Hi {x}\nvariables: {x: [a]}"),
    "recipe temperature: hot": _bad_recipe("technique: sampling\ntemperature: hot\ntemplate: Hi"),
    "recipe concurrency: [1]": _bad_recipe("technique: sampling\nconcurrency: [1]\ntemplate: Hi"),
    "recipe variables: [a, b]": _bad_recipe("technique: sampling\ntemplate: Hi {x}\nvariables: [a, b]"),
    "recipe variables: {x: abc}": _bad_recipe("technique: sampling\ntemplate: Hi {x}\nvariables: {x: abc}"),
    "recipe grammar: 42": _bad_recipe("technique: symbolic\ngrammar: 42"),
    "recipe source: 5": _bad_recipe("technique: transform\nsource: 5"),
    "SQL UPDATE EXTENSIONS": lambda store, tmp: store.query_readonly("UPDATE EXTENSIONS"),
    "SQL over the memory cap": lambda store, tmp: store.query_readonly(
        "SELECT len(list(x)) FROM range(50000000) t(x)"),
    "SQL time limit of 300 s": lambda store, tmp: store.query_readonly("SELECT 1", timeout_s=300),
}


# What each refusal's message must name, so the user knows what to change.
NAMES = {"grammar doubling 26 times": "SYNTH_MAX_ITEM_CHARS", "grammar of {name} placeholders": "<name>",
         "imported text over the size cap": "SYNTH_MAX_ITEM_CHARS", "recipe n: ten": "`n`",
         "recipe temperature: hot": "`temperature`", "recipe concurrency: [1]": "`concurrency`",
         "recipe variables: [a, b]": "`variables`", "recipe variables: {x: abc}": "`variables.x`",
         "recipe grammar: 42": "`grammar`", "recipe source: 5": "`source`", "SQL UPDATE EXTENSIONS": "read-only",
         "SQL over the memory cap": "SYNTH_SQL_MEMORY_LIMIT", "SQL time limit of 300 s": "SYNTH_SQL_MAX_SECONDS"}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_hostile_input_is_refused_with_a_message_and_changes_nothing(case, store, tmp_path):
    store.save_run(Run(name="kept", technique="sampling"), [Item(text="a kept item", idx=0)])
    before = _counts(store)
    with pytest.raises(SynthError) as caught:
        REFUSALS[case](store, tmp_path)
    message = str(caught.value)
    assert NAMES[case] in message and "Traceback" not in message and len(message) < 2000
    after = _counts(store)
    assert after == before
    tally(1, 1, lost=max(0, before["items"] - after["items"]))


def test_the_same_file_imported_twice_is_one_run_unless_asked(store, tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text("".join(json.dumps({"text": f"real note {i}"}) + "\n" for i in range(4)))
    import_run(store, path)
    with pytest.raises(SynthError, match="already imported"):
        import_run(store, path)
    assert _counts(store)["items"] == 4
    import_run(store, path, again=True)
    assert _counts(store)["items"] == 8
    tally(1, 1)


def test_sql_json_of_summarize_items_serialises_every_column(store):
    store.save_run(Run(name="kept", technique="sampling"), [Item(text="a kept item", idx=i) for i in range(3)])
    frame, _ = store.query_readonly("SUMMARIZE items")
    rows = json.loads(json.dumps(clean(frame.to_dict(orient="records"))))
    assert {r["column_name"] for r in rows} >= {"item_id", "text", "run_id"}
    tally(1, 1)
