"""The CLI in-process (same code as `python -m synth`), plus the real entry point once."""

import json
import shlex
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT

from synth.cli import main
from synth.store import DuckStore


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_import_metrics_export_sql(capsys, tmp_path, server):
    db = str(tmp_path / "cli.duckdb")
    code, out, err = run(capsys, "generate", "--db", db, "--json", "--model", "openai/test-model",
                         "--api-base", server.api_base, "--template", "Describe {thing} in a {tone} way",
                         "--var", "thing=rain,snow", "--var", "tone=calm", "--n", "3",
                         "--temperature", "0.3", "--run-name", "weather")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_items"] == 3 and result["name"] == "weather" and result["run_id"].startswith("run_")
    assert result["metrics"]["count"] == 3
    assert "generating: 100%" in err and "3/3" in err  # one bar on stderr, JSON alone to stdout
    assert "[1/3]" not in err  # no line per item
    assert server.config.requests[0]["body"]["temperature"] == 0.3

    data = tmp_path / "real.jsonl"
    data.write_text('{"body": "real text one"}\n{"body": "real text two"}\n')
    code, out, _ = run(capsys, "import", str(data), "--db", db, "--text-column", "body", "--json")
    assert code == 0 and json.loads(out)["n_items"] == 2

    code, out, _ = run(capsys, "metrics", "--db", db, "--run", "weather", "--json")
    metrics = json.loads(out)
    assert metrics["run_id"] == result["run_id"] and metrics["metrics"]["count"] == 3
    assert 0 < metrics["metrics"]["distinct_1"] <= 1
    from synth.analysis.metrics import METRIC_NAMES

    assert list(metrics["metrics"]) == METRIC_NAMES
    assert metrics["params"]["near_duplicate_rate"]["threshold"] == 0.9
    assert metrics["params"]["self_bleu"]["tokenizer"] == "lowercase \\w+ words"

    code, out, _ = run(capsys, "metrics", "--db", db, "--json")
    assert [r["run_name"] for r in json.loads(out)["runs"]] == ["weather", "import real.jsonl"]

    out_file = tmp_path / "out.csv"
    code, out, _ = run(capsys, "export", "--db", db, "--out", str(out_file), "--json")
    assert json.loads(out) == {"out": str(out_file), "rows": 5}
    assert len(pd.read_csv(out_file)) == 5

    code, out, _ = run(capsys, "sql", "--db", db, "--json",
                       "SELECT name, n_items FROM runs ORDER BY created_at")
    assert json.loads(out)["rows"] == [{"name": "weather", "n_items": 3},
                                       {"name": "import real.jsonl", "n_items": 2}]


@pytest.mark.parametrize("argv, message", [
    (["generate", "--template", ""], "template is empty"),
    (["generate", "--template", "About {x}"], "no values were given for: x"),
    (["generate", "--template", "hi", "--model", "openai/gpt-4o-mini"], "needs OPENAI_API_KEY"),
    (["generate", "--template", "hi", "--var", "novalue"], "name=value1,value2"),
    (["import", "missing.jsonl"], "File not found"),
    (["metrics", "--run", "nope"], "No run called"),
    (["export", "--out", "x.txt"], "ending in .jsonl"),
    (["sql", "DROP TABLE items"], "read-only"),
])
def test_errors_exit_non_zero_with_a_message(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *argv, "--db", str(tmp_path / "e.duckdb"))
    assert code == 1
    assert err.startswith("error: ") and message in err
    if (tmp_path / "e.duckdb").exists():
        assert DuckStore(tmp_path / "e.duckdb").count_items() == 0


def test_json_errors_are_json(capsys, tmp_path):
    code, out, err = run(capsys, "sql", "DELETE FROM runs", "--db", str(tmp_path / "j.duckdb"), "--json")
    assert code == 1 and "read-only" in json.loads(out)["error"]


def test_provider_error_from_the_cli_saves_nothing(capsys, tmp_path, make_server):
    srv = make_server(fail_status=503)
    db = str(tmp_path / "p.duckdb")
    code, _, err = run(capsys, "generate", "--db", db, "--template", "hi", "--model",
                       "openai/test-model", "--api-base", srv.api_base)
    assert code == 1 and "unavailable" in err and "Nothing was saved" in err
    code, out, _ = run(capsys, "sql", "--db", db, "--json", "SELECT count(*) AS n FROM items")
    assert json.loads(out)["rows"] == [{"n": 0}]


def test_entry_point_runs_as_a_module(tmp_path):
    db = tmp_path / "m.duckdb"
    proc = subprocess.run([sys.executable, "-m", "synth", "sql", "SELECT 42 AS answer", "--db", str(db),
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == [{"answer": 42}]
    bad = subprocess.run([sys.executable, "-m", "synth", "sql", "DELETE FROM items", "--db", str(db)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "read-only" in bad.stderr


def test_techniques_recipes_judge_review_and_filtered_export(capsys, tmp_path, make_server):
    from openai_server import json_reply

    srv = make_server(reply=json_reply)
    db = str(tmp_path / "t.duckdb")
    grammar = tmp_path / "g.yaml"
    grammar.write_text("start: '<a> <b>'\nrules:\n  a: [hi, hello]\n  b: [you, there]\n")
    code, out, err = run(capsys, "generate", "--db", db, "--json", "--technique", "symbolic", "--grammar",
                         str(grammar), "--n", "4", "--unique", "--run-name", "grammar")
    assert code == 0, err
    assert json.loads(out)["n_items"] == 4 and json.loads(out)["model"] == "symbolic"

    code, out, err = run(capsys, "generate", "--db", db, "--json", "--technique", "back_translation",
                         "--source-text", "Paris is in France.\n\nTea is a drink.", "--model", "openai/test-model",
                         "--api-base", srv.api_base, "--concurrency", "2", "--run-name", "bt")
    assert code == 0, err
    assert json.loads(out)["n_items"] == 2

    code, out, err = run(capsys, "generate", "--db", db, "--json", "--template", "QA about {t}", "--var",
                         "t=tea,rain", "--n", "2", "--fields", "question,answer", "--model", "openai/test-model",
                         "--api-base", srv.api_base, "--judge-model", "openai/test-model", "--run-name", "qa")
    assert code == 0, err
    qa = json.loads(out)
    assert qa["metrics"]["validity_rate"] == 1.0 and qa["judge"]["n_valid"] == 2
    assert qa["metrics"]["judge_score_mean"] == qa["judge"]["score_mean"]

    recipe = tmp_path / "r.yaml"
    recipe.write_text("technique: transform\nsource: {kind: run, run: bt}\nn: 0\nper_source: 2\n"
                      "template: 'Shorter: {text}'\nrun_name: shorter\n")
    code, out, err = run(capsys, "run", str(recipe), "--db", db, "--json", "--model", "openai/test-model",
                         "--api-base", srv.api_base)
    assert code == 0, err
    assert json.loads(out)["n_items"] == 4

    code, out, _ = run(capsys, "judge", "--db", db, "--run", "shorter", "--model", "openai/test-model",
                       "--api-base", srv.api_base, "--json")
    assert json.loads(out)["n_items"] == 4

    code, out, _ = run(capsys, "sql", "--db", db, "--json",
                       "SELECT item_id FROM items i JOIN runs r USING (run_id) WHERE r.name = 'grammar' ORDER BY idx")
    ids = [r["item_id"] for r in json.loads(out)["rows"]]
    assert run(capsys, "review", ids[0], ids[1], "--accept", "--db", db)[0] == 0
    assert run(capsys, "review", ids[2], "--reject", "--db", db)[0] == 0
    code, out, _ = run(capsys, "review", ids[3], "--edit", "hey you", "--db", db, "--json")
    assert json.loads(out) == {"item_id": ids[3], "version": 2}
    code, out, _ = run(capsys, "export", "--db", db, "--out", str(tmp_path / "ok.jsonl"), "--status",
                       "accepted,edited", "--json")
    assert json.loads(out)["rows"] == 3
    code, out, _ = run(capsys, "export", "--db", db, "--out", str(tmp_path / "best.jsonl"), "--min-score",
                       "1", "--json")
    assert json.loads(out)["rows"] == 6  # the qa and shorter items were judged


@pytest.mark.parametrize("argv, message", [
    (["review", "it_x"], "--accept, --reject or --edit"),
    (["review", "a", "b", "--edit", "x"], "one item at a time"),
    (["generate", "--technique", "transform", "--source-text", "x", "--source-run", "y"], "Give one source"),
    (["generate", "--technique", "symbolic", "--grammar", "missing.yaml"], "Grammar file not found"),
    (["run", "missing.yaml"], "Recipe file not found"),
    (["generate", "--template", "hi", "--concurrency", "0"], "Concurrency"),
])
def test_more_errors(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, *argv, "--db", str(tmp_path / "e.duckdb"))
    assert code == 1 and message in err


def test_map_computes_stores_and_then_only_places_new_items(capsys, demo_store, tmp_path, make_server):
    db = demo_store.path
    code, out, err = run(capsys, "map", "--db", db, "--json", "--k", "6")
    assert code == 0, err
    first = json.loads(out)
    n = demo_store.count_items()
    assert first["method"] == "umap" and first["n_items"] == n and first["placed_now"] == 0
    assert first["params"] == {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": 0}
    assert 0.8 < first["trustworthiness"] <= 1.0
    assert first["cluster_method"] == "kmeans" and len(first["clusters"]) == 6
    assert sum(c["size"] for c in first["clusters"]) == n and all(c["label"] for c in first["clusters"])
    tables = demo_store.frame(
        "SELECT (SELECT count(*) FROM projections WHERE layout_id = ?) AS p, "
        "(SELECT count(*) FROM clusters WHERE clustering_id = ?) AS c", [first["layout_id"], first["clustering_id"]])
    assert tables["p"][0] == n and tables["c"][0] == n
    before = demo_store.frame("SELECT item_id, x, y FROM projections WHERE layout_id = ? ORDER BY item_id",
                              [first["layout_id"]])

    real = tmp_path / "real.jsonl"
    real.write_text("".join(json.dumps({"text": f"A real customer review of a kettle, number {i}."}) + "\n"
                            for i in range(4)))
    code, out, _ = run(capsys, "import", str(real), "--db", db, "--reference", "--json")
    assert code == 0
    assert set(demo_store.frame("SELECT role FROM runs WHERE name = 'import real.jsonl'")["role"]) == {"reference"}

    srv = make_server(reply="A cluster name")
    code, out, err = run(capsys, "map", "--db", db, "--json", "--k", "6", "--name-with", "openai/test-model",
                         "--api-base", srv.api_base)
    assert code == 0, err
    second = json.loads(out)
    assert second["layout_id"] == first["layout_id"] and second["placed_now"] == 4
    assert second["placed"] == {"fit": n, "transform": 4}
    assert {c["label"] for c in second["clusters"]} == {"A cluster name"}
    after = demo_store.frame("SELECT item_id, x, y FROM projections WHERE layout_id = ? AND placed = 'fit' "
                             "ORDER BY item_id", [first["layout_id"]])
    assert after.equals(before)  # the existing points did not move

    code, out, _ = run(capsys, "map", "--db", db, "--json", "--refit", "--n-neighbors", "5", "--seed", "3")
    third = json.loads(out)
    assert third["layout_id"] != first["layout_id"] and third["params"]["n_neighbors"] == 5
    assert third["placed"] == {"fit": n + 4}


def test_map_on_an_empty_database_says_what_to_do(capsys, tmp_path):
    code, _, err = run(capsys, "map", "--db", str(tmp_path / "empty.duckdb"))
    assert code == 1 and "no items to map" in err


def test_prompts_and_compare_commands(capsys, tmp_path, server):
    db = str(tmp_path / "ab.duckdb")
    common = ["--db", db, "--model", "openai/test-model", "--api-base", server.api_base, "--var",
              "thing=rain,snow,fog", "--n", "3", "--prompt-name", "weather", "--max-tokens", "20"]
    assert run(capsys, "generate", *common, "--template", "Describe {thing}.")[0] == 0
    assert run(capsys, "generate", *common, "--template", "Describe {thing} briefly.", "--version-name",
               "brief")[0] == 0
    code, out, err = run(capsys, "prompts", "list", "--db", db, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(v["version"], v["label"], v["changes"]) for v in listed] == [
        (1, None, ["new prompt"]), (2, "brief", ["template"])]
    code, out, _ = run(capsys, "prompts", "show", "weather@brief", "--db", db)
    assert "-Describe {thing}.\n+Describe {thing} briefly.\n" in out
    assert run(capsys, "prompts", "name", "weather v1", "plain", "--db", db)[0] == 0
    code, out, _ = run(capsys, "prompts", "trends", "--prompt", "weather", "--db", db, "--json",
                       "--metric", "distinct_1")
    assert [(r["version"], r["n_runs"]) for r in json.loads(out)] == [(1, 1), (2, 1)]
    code, out, err = run(capsys, "compare", "--db", db, "--a", "weather@plain", "--b", "weather@brief", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["a"]["version"] == "weather v1 (plain)" and result["b"]["version"] == "weather v2 (brief)"
    assert result["runs_made"] == [] and result["pairing"]["paired"] is True  # same seed, samples and n
    rows = {r["metric"]: r for r in result["metrics"]}
    assert rows["length_mean"]["delta"] == pytest.approx(rows["length_mean"]["b"] - rows["length_mean"]["a"])
    assert len(result["samples"]) == 3 and result["map_points"] == 6
    code, out, err = run(capsys, "compare", "--db", db, "--a", "weather v1", "--b", "nope", "--json")
    assert code == 1 and "neither a run nor a prompt version" in json.loads(out)["error"]
    code, _, err = run(capsys, "prompts", "trends", "--db", db)
    assert code == 1 and "--prompt NAME" in err


def test_export_hf_folder(capsys, tmp_path, server):
    db = str(tmp_path / "hf.duckdb")
    code, out, err = run(capsys, "generate", "--db", db, "--json", "--model", "openai/test-model", "--api-base",
                         server.api_base, "--template", "Describe {thing}", "--var", "thing=rain,snow", "--n", "3",
                         "--run-name", "weather")
    assert code == 0, err
    folder = tmp_path / "weather-ds"
    code, out, err = run(capsys, "export", "--db", db, "--out", str(folder), "--hf", "--json")
    assert code == 0, err
    assert json.loads(out) == {"out": str(folder), "rows": 3, "files": ["README.md", "data/train.parquet"]}
    frame = pd.read_parquet(folder / "data" / "train.parquet")
    assert len(frame) == 3 and set(frame["model_training_use"]) == {"unknown"}
    assert "path: data/train.parquet" in (folder / "README.md").read_text()

    item = frame["item_id"].iloc[1]
    assert run(capsys, "review", item, "--accept", "--db", db)[0] == 0
    code, out, err = run(capsys, "export", "--db", db, "--out", str(tmp_path / "ok"), "--hf", "--accepted",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 1
    assert pd.read_parquet(tmp_path / "ok" / "data" / "train.parquet")["item_id"].tolist() == [item]
    code, out, _ = run(capsys, "export", "--db", db, "--out", str(tmp_path / "ok.jsonl"), "--accepted", "--json")
    assert json.loads(out) == {"out": str(tmp_path / "ok.jsonl"), "rows": 1}

    code, _, err = run(capsys, "export", "--db", db, "--out", str(folder), "--hf")
    assert code == 1 and "not an empty folder" in err
    code, _, err = run(capsys, "export", "--db", db, "--out", str(tmp_path / "x"), "--hf", "--accepted",
                       "--status", "new")
    assert code == 1 and "--accepted or --status, not both" in err and not (tmp_path / "x").exists()


def test_export_and_report_take_the_apps_filters(capsys, tmp_path, demo_store):
    items = demo_store.items()
    wanted = items[items["text"].str.contains("battery", case=False, regex=True)]
    assert 0 < len(wanted) < len(items)
    db = str(demo_store.path)
    code, out, err = run(capsys, "export", "--db", db, "--out", str(tmp_path / "f.jsonl"), "--filters",
                         "inc=battery", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == len(wanted)
    exported = pd.read_json(tmp_path / "f.jsonl", lines=True)
    assert sorted(exported["item_id"]) == sorted(wanted["item_id"])
    code, out, err = run(capsys, "report", "--db", db, "--out", str(tmp_path / "r.html"), "--filters",
                         "?inc=battery", "--json")
    assert code == 0, err
    assert json.loads(out)["n_items"] == len(wanted)
    code, _, err = run(capsys, "export", "--db", db, "--out", str(tmp_path / "g.jsonl"), "--filters", "colour=red")
    assert code == 1 and "No filter in 'colour=red'" in err and not (tmp_path / "g.jsonl").exists()


def test_licences_command(capsys):
    code, out, _ = run(capsys, "licences", "--model", "anthropic/claude-3-5-haiku", "--json")
    assert code == 0 and json.loads(out)["restricts_training"] is True
    code, out, _ = run(capsys, "licences", "--model", "openai/my-model", "--api-base", "http://127.0.0.1:9/v1", "--json")
    assert json.loads(out)["training_use"] == "unknown"
    code, out, _ = run(capsys, "licences")
    assert code == 0 and "forbidden for competing models" in out and "not legal advice" in out


# One value of every DuckDB type, and what --json makes of it.
EVERY_TYPE = {
    "dec": ("1.25::DECIMAL(10, 2)", 1.25),
    "huge": ("170141183460469231731687303715884105727::HUGEINT", 2 ** 127 - 1),
    "uhuge": ("340282366920938463463374607431768211455::UHUGEINT", 2 ** 128 - 1),
    "ubig": ("18446744073709551615::UBIGINT", 2 ** 64 - 1),
    "blob": ("'\\xAA\\x00ab'::BLOB", "qgBhYg=="),  # base64 of the bytes AA 00 61 62
    "uuid": ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "day": ("DATE '2024-02-29'", "2024-02-29"),
    "clock": ("TIME '12:34:56.5'", "12:34:56.500000"),
    "clock_tz": ("TIMETZ '12:34:56+02'", "12:34:56+02:00"),
    "ts": ("TIMESTAMP '2024-02-29 12:34:56'", "2024-02-29T12:34:56"),
    "interval": ("INTERVAL '1 day 2 hours 3.5 seconds'", "P1DT2H0M3.5S"),
    "list": ("[1, 2, NULL]", [1, 2, None]),
    "arr": ("[1.5, 2.5]::DOUBLE[2]", [1.5, 2.5]),
    "struct": ("{'a': 1, 'b': 'x'}", {"a": 1, "b": "x"}),
    "map": ("MAP {'k': [1]}", {"k": [1]}),
    "map_int_keys": ("MAP {1: 'x'}", {"1": "x"}),
    "un": ("union_value(num := 2)::UNION(num INTEGER, str VARCHAR)", 2),
    "enum": ("'happy'::ENUM('sad', 'happy')", "happy"),
    "bit": ("'0101'::BIT", "0101"),
    "js": ("'{\"a\": [1, 2]}'::JSON", '{"a": [1, 2]}'),  # JSON columns come out as their JSON text
    "nan": ("'nan'::DOUBLE", None),
    "inf": ("'inf'::DOUBLE", None),
    "ninf": ("'-inf'::FLOAT", None),
    "flag": ("true", True),
    "nothing": ("NULL", None),
}


def test_sql_json_serialises_every_duckdb_type(capsys, tmp_path):
    sql = "SELECT " + ", ".join(f"{expr} AS {name}" for name, (expr, _) in EVERY_TYPE.items())
    code, out, err = run(capsys, "sql", sql, "--json", "--db", str(tmp_path / "t.duckdb"))
    assert code == 0, err
    [row] = json.loads(out)["rows"]
    assert row == {name: value for name, (_, value) in EVERY_TYPE.items()}
    code, out, err = run(capsys, "sql", "SUMMARIZE SELECT 1.5::DECIMAL(4, 1) AS d, '\\x01'::BLOB AS b, "
                         "uuid() AS u", "--json", "--db", str(tmp_path / "t.duckdb"))
    assert code == 0, err
    assert [r["column_name"] for r in json.loads(out)["rows"]] == ["d", "b", "u"]


def test_sql_json_of_a_timestamp_with_time_zone(capsys, tmp_path):
    pytest.importorskip("pytz", reason="duckdb needs pytz for TIMESTAMPTZ values (see the console's message)")
    code, out, err = run(capsys, "sql", "SELECT TIMESTAMPTZ '2024-02-29 12:34:56+00' AS t", "--json",
                         "--db", str(tmp_path / "tz.duckdb"))
    assert code == 0, err
    assert json.loads(out)["rows"] == [{"t": "2024-02-29T12:34:56+00:00"}]


def test_sql_refuses_update_extensions_and_long_time_limits(capsys, tmp_path):
    db = str(tmp_path / "u.duckdb")
    code, _, err = run(capsys, "sql", "UPDATE EXTENSIONS", "--db", db)
    assert code == 1 and err.startswith("error: UPDATE statements are not allowed here: the SQL console is read-only")
    code, _, err = run(capsys, "sql", "SELECT 1", "--timeout", "600", "--db", db)
    assert code == 1 and "at most 60 s, got 600" in err


@pytest.fixture
def failing_command(monkeypatch):
    """A command that fails the way a bug would, with the exception the test gives it."""
    from synth.cli.base import COMMANDS, Command

    def install(exc: BaseException):
        def fail(args):
            raise exc
        monkeypatch.setitem(COMMANDS, "fail", Command("fail", "fails", fail, lambda p: None))
    return install


def test_an_unexpected_error_is_one_line_never_a_traceback(capsys, failing_command, monkeypatch):
    failing_command(KeyError("runs"))
    code, out, err = run(capsys, "fail")
    assert code == 1 and out == ""
    assert err == ("error: KeyError: 'runs' (this is a bug; rerun with SYNTH_DEBUG=1 for the traceback)\n")
    code, out, err = run(capsys, "fail", "--json")
    assert code == 1 and json.loads(out) == {"error": "KeyError: 'runs' (this is a bug; rerun with SYNTH_DEBUG=1 "
                                                      "for the traceback)"}
    monkeypatch.setenv("SYNTH_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["fail"])


def test_ctrl_c_exits_130_with_a_short_message(capsys, failing_command):
    failing_command(KeyboardInterrupt())
    code, out, err = run(capsys, "fail")
    assert (code, out, err) == (130, "", "interrupted\n")


def test_a_recipe_with_wrong_types_is_reported_by_the_cli(capsys, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("technique: sampling\ntemplate: 'About {x}'\nvariables: {x: abc}\nn: ten\n"
                      "temperature: hot\n")
    code, out, err = run(capsys, "run", str(recipe), "--db", str(tmp_path / "r.duckdb"), "--json")
    assert code == 1
    message = json.loads(out)["error"]
    assert message.splitlines() == [
        "The recipe has 3 problems; fix them and try again:",
        "- `variables.x`: not a list (got 'abc'); expected a list, e.g. [a, b] (one value is a list of one: [a])",
        "- `n`: not a whole number (got 'ten'); expected a whole number, e.g. 5",
        "- `temperature`: not a number (got 'hot'); expected a number, e.g. 0.7"]
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["sql", "SELECT * FROM range(200000)", "--json"], ["sql", "SELECT 42 AS answer"],
                                  ["licences"], ["--help"]])
def test_a_reader_that_goes_away_ends_the_cli_quietly(tmp_path, argv):
    db = ["--db", str(tmp_path / "pipe.duckdb")] if argv[0] == "sql" else []
    command = [sys.executable, "-m", "synth", *argv, *db]
    # As `python -m synth ... | head -1`: the reader takes one line and closes the pipe.
    piped = subprocess.run(" ".join(map(shlex.quote, command)) + " | head -1", shell=True, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert piped.stdout.count("\n") == 1 and piped.stdout.strip()
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr
    # A reader that is gone before anything is written: the write (or the flush at exit) fails.
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_map_and_metrics_give_coverage_known_by_construction(capsys, store, tmp_path, monkeypatch):
    from test_coverage import three_topic_store

    monkeypatch.setenv("SYNTH_CLUSTER_K", "3")
    built = three_topic_store(store, tmp_path)  # reference: 3 topics x 8; synthetic: copies of 2 topics
    code, out, err = run(capsys, "map", "--db", store.path, "--json", "--k", "3")
    assert code == 0, err
    result = json.loads(out)
    coverage = result["coverage"]
    assert result["coverage_reason"] is None
    assert (coverage["recall"], coverage["precision"], coverage["k"]) == (pytest.approx(2 / 3), 1.0, 5)
    assert (coverage["reference_items"], coverage["synthetic_items"], coverage["reference_reached"],
            coverage["synthetic_near"]) == (24, 16, 16, 16)
    stars = store.frame("SELECT DISTINCT c.cluster_id FROM clusters c JOIN items i USING (item_id) "
                        f"WHERE c.clustering_id = ? AND i.text IN ({', '.join('?' * 8)})",
                        [result["clustering_id"], *built["stars"]])["cluster_id"].tolist()
    names = {c["cluster_id"]: c["label"] for c in result["clusters"]}
    assert len(stars) == 1 and coverage["worst"][0] == {
        "cluster": stars[0], "cluster_name": names[stars[0]], "reference_items": 8, "synthetic_items": 0,
        "recall": 0.0, "precision": None}
    assert [(c["reference_items"], c["synthetic_items"], c["recall"], c["precision"]) for c in coverage["worst"][1:]] \
        == [(8, 8, 1.0, 1.0)] * 2
    assert coverage["clusters"] == coverage["worst"]  # three clusters, all of them with reference items

    code, out, _ = run(capsys, "map", "--db", store.path, "--k", "3")
    assert "  Recall: 67 % of the real items have a synthetic item nearby (16 of 24).\n" in out
    assert "  Precision: 100 % of the synthetic items are near real items (16 of 16).\n" in out
    assert f"          {stars[0]}      8          0     0 %          —  {names[stars[0]]}\n" in out

    code, out, _ = run(capsys, "metrics", "--db", store.path, "--json")
    assert json.loads(out)["coverage"] == coverage
    code, out, _ = run(capsys, "metrics", "--db", store.path, "--run", "two topics", "--json")
    assert json.loads(out)["coverage"] == coverage and json.loads(out)["run_name"] == "two topics"
    code, out, _ = run(capsys, "metrics", "--db", store.path, "--run", "real data", "--json")
    assert json.loads(out)["coverage"] is None
    assert json.loads(out)["coverage_reason"] == "There are no synthetic items to measure against the reference data."


def test_without_reference_data_coverage_is_null_and_says_why(capsys, tmp_path):
    from synth.analysis.coverage import NO_REFERENCE

    db = str(tmp_path / "plain.duckdb")
    data = tmp_path / "plain.jsonl"
    data.write_text('{"text": "a synthetic line"}\n{"text": "another synthetic line"}\n')
    assert run(capsys, "import", str(data), "--db", db)[0] == 0
    code, out, err = run(capsys, "metrics", "--db", db, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["coverage"] is None and result["coverage_reason"] == NO_REFERENCE
    assert "--reference" in NO_REFERENCE
    code, out, _ = run(capsys, "metrics", "--db", db)
    assert out.endswith(f"coverage of the reference (real) data:\n  {NO_REFERENCE}\n")
    code, out, _ = run(capsys, "map", "--db", db, "--json")
    assert json.loads(out)["coverage"] is None and json.loads(out)["coverage_reason"] == NO_REFERENCE


def test_map_and_metrics_help_says_what_coverage_holds(capsys):
    for name in ("map", "metrics"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert '"coverage" is null and "coverage_reason" says why' in out and "worst" in out
