"""Issue 12: the size of one item is capped (grammar, import, model output), an import says when a
file is large and refuses to add the same file twice, a grammar says when a rule is never used or
written as {name}, and a run without items never stops the metrics of the others."""

import json
import logging
import time

import pytest

from synth.analysis.metrics import METRIC_NAMES, run_metrics
from synth.cli import main
from synth.generate.config import RunConfig
from synth.generate.execute import execute
from synth.generate.grammar import MAX_DEPTH, Grammar
from synth.generate.ingest import import_file, source_hash
from synth.generate.sources import from_file
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.workflows.pipeline import generate_run, import_run


def doubling(levels: int, leaf: str = "xxxx") -> dict:
    """start -> <r1>, r1 -> <r2><r2>, ..., r{levels} -> leaf: 2 ** (levels - 1) leaves in one text."""
    rules = {f"r{i}": [f"<r{i + 1}><r{i + 1}>"] for i in range(1, levels)}
    return {"start": "<r1>", "rules": {**rules, f"r{levels}": [leaf]}}


# -- the longest expansion of a grammar ----------------------------------------------------------

def test_largest_length_of_plain_nested_and_doubling_grammars():
    assert Grammar.from_dict({"start": "Hi <n>!", "rules": {"n": ["Ann", "Barbara"]}}).largest_length() == 11
    assert Grammar.from_dict(doubling(26)).largest_length() == 4 * 2**25 == 134_217_728
    assert Grammar.from_dict(doubling(3)).expand(1)[0].text == "x" * 16


def test_largest_length_of_a_recursive_grammar_is_counted_to_the_depth_limit():
    # <a> used at depth 49 can only end with "y"; each level above adds one "x".
    g = Grammar.from_dict({"start": "<a>", "rules": {"a": [{"text": "x<a>", "weight": 20}, "y"]}})
    assert MAX_DEPTH == 50 and g.largest_length() == 50
    lengths = []
    for seed in range(3000):
        try:
            lengths.append(len(g.expand(1, seed=seed)[0].text))
        except SynthError:
            pass  # this seed recursed past the limit
    assert max(lengths) == 50  # the bound is reached, never passed
    listing = Grammar.from_dict({"start": "I like <list>.", "rules": {
        "list": ["<item>", "<item>, <list>"], "item": ["tea", "jam"]}})
    assert listing.largest_length() == len("I like ") + 49 * 3 + 48 * 2 + 1


def test_a_grammar_over_the_item_limit_is_refused_before_expanding(store):
    cfg = RunConfig(technique="symbolic", grammar=doubling(26), n=1)
    started = time.perf_counter()
    with pytest.raises(SynthError) as caught:
        generate_run(store, cfg)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        "The grammar can expand to 134,217,728 characters in one item, over the limit of 100,000 "
        "(setting SYNTH_MAX_ITEM_CHARS). Rules over the limit, the one where it blows up first: 'r11' "
        "(up to 131,072), 'r10' (up to 262,144), 'r9' (up to 524,288) and 8 more. Nothing was "
        "expanded. Make those rules shorter or refer to fewer copies of the rules below them, or "
        "raise SYNTH_MAX_ITEM_CHARS.")
    assert store.runs().empty and store.count_items() == 0


def test_the_item_limit_is_the_setting(monkeypatch):
    g = Grammar.from_dict(doubling(4))  # 32 characters
    assert settings.get("max_item_chars") == settings.DEFAULT_MAX_ITEM_CHARS
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "32")
    assert g.expand(1)[0].text == "x" * 32
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "31")
    with pytest.raises(SynthError, match=r"can expand to 32 characters.*limit of 31.*'r1' \(up to 32\)"):
        g.expand(1)


def test_a_recursive_grammar_that_can_blow_up_is_refused():
    g = Grammar.from_dict({"start": "<e>", "rules": {"e": ["<e> + <e>", "x"]}})
    with pytest.raises(SynthError, match=r"'e' \(up to [\d,]+\).*counted to the depth limit of 50"):
        g.expand(1)


def test_start_alone_over_the_limit_is_refused(monkeypatch):
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "5")
    with pytest.raises(SynthError, match="start's own text and the rules it uses add up to that"):
        Grammar.from_dict({"start": "<a> and <a>", "rules": {"a": ["four"]}}).expand(1)


# -- {name} written for <name>, and rules never used ----------------------------------------------

def test_braces_in_a_grammar_without_references_are_refused(store):
    spec = {"start": "{greeting}, I need help with my {product}.",
            "rules": {"greeting": ["Hi"], "product": ["router"]}}
    with pytest.raises(SynthError, match=r"^start writes \{greeting\}, which would come out as those literal "
                                         r"characters: use <greeting> to refer to a rule\.$"):
        generate_run(store, RunConfig(technique="symbolic", grammar=spec, n=1))
    assert store.runs().empty


def test_a_rule_name_in_braces_is_refused_even_beside_references():
    with pytest.raises(SynthError, match=r"Rule 'a', alternative 2 writes \{b\}.*use <b> to refer to a rule"):
        Grammar.from_dict({"start": "<a>", "rules": {"a": ["x", "{b} y"], "b": ["z"]}})
    with pytest.raises(SynthError, match=r"use <name> to refer to a rule \(and define name under rules\)"):
        Grammar.from_dict({"start": "Hello {name}", "rules": {}})
    # A literal brace in a grammar that does refer to its rules stays literal.
    assert Grammar.from_dict({"start": "<a> {x}", "rules": {"a": ["set"]}}).expand(1)[0].text == "set {x}"


def test_rules_never_used_are_a_warning_the_cli_passes_on(tmp_path, capsys, caplog):
    spec = ('start: "<greeting> there"\nrules:\n  greeting: [Hi]\n  product: [router]\n'
            '  lone: ["<lone2>"]\n  lone2: [a]\n')
    assert Grammar.from_text(spec).warnings == [
        ("Never used, so without effect: rule 'product', 'lone', 'lone2' (neither start nor a rule it leads "
         "to refers to it). Refer to a rule as <product>, or remove it.")]
    assert Grammar.from_dict({"start": "<a>", "rules": {"a": ["b"]}}).warnings == []
    path = tmp_path / "g.yaml"
    path.write_text(spec)
    with caplog.at_level(logging.WARNING):
        code = main(["generate", "--grammar", str(path), "--n", "2", "--db", str(tmp_path / "cli.duckdb")])
    assert code == 0
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("synth")]
    assert logged == Grammar.from_text(spec).warnings


# -- imported texts over the limit ----------------------------------------------------------------

def test_an_imported_text_over_the_limit_is_refused_quickly_and_nothing_is_written(store, tmp_path):
    path = tmp_path / "big.jsonl"
    huge = "word " * 4_000_000  # 20 MB in one text
    path.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": huge}) + "\n")
    started = time.perf_counter()
    with pytest.raises(SynthError) as caught:
        import_run(store, path)
    assert time.perf_counter() - started < 10
    assert str(caught.value) == (
        "big.jsonl: 1 row(s) longer than 100,000 characters, the most one item may have: row 2 (the longest "
        "has 19,999,999). Nothing was read in. Split or shorten those texts, or raise the limit with "
        "SYNTH_MAX_ITEM_CHARS.")
    assert store.runs().empty and store.count_items() == 0


def test_the_first_rows_over_the_limit_are_named(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "3")
    path = tmp_path / "rows.csv"
    path.write_text("text\n" + "\n".join(["ok", "long1", "ab"] + [f"long{i}" for i in range(2, 9)]) + "\n")
    with pytest.raises(SynthError, match=r"8 row\(s\) longer than 3 characters.*row 2, 4, 5, 6, 7 and 3 more"):
        import_run(store, path)
    assert store.runs().empty


def test_a_source_file_text_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "10")
    path = tmp_path / "src.jsonl"
    path.write_text('{"text": "short"}\n{"text": "much longer than ten"}\n')
    with pytest.raises(SynthError, match=r"src.jsonl: 1 row\(s\) longer than 10 characters.*row 2 "):
        from_file(path)


# -- model outputs over the limit are kept, cut and flagged --------------------------------------

def test_a_generated_text_over_the_limit_is_cut_and_flagged(make_server, store, monkeypatch):
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "40")
    long_reply = "A" * 30 + "B" * 50
    srv = make_server(reply=lambda n, prompt: long_reply if n == 1 else "short reply")
    cfg = RunConfig(template="Say {t}", variables={"t": ["one", "two"]}, n=2, model="openai/test-model",
                    api_base=srv.api_base, concurrency=1)
    run, items, _ = execute(cfg, store)
    assert [i.text for i in items] == ["A" * 30 + "B" * 10, "short reply"]
    assert items[0].meta == {"cut_at_chars": 40, "chars_generated": 80}
    assert items[1].meta == {} and items[0].tokens_out > 0 and run.status == "complete"


def test_a_cut_structured_output_says_why_it_is_invalid(make_server, store, monkeypatch):
    monkeypatch.setenv("SYNTH_MAX_ITEM_CHARS", "20")
    reply = json.dumps({"question": "q" * 30, "answer": "a"})
    srv = make_server(reply=lambda n, prompt: reply)
    cfg = RunConfig(template="Q about {t}", variables={"t": ["tea"]}, n=1,
                    output={"fields": ["question", "answer"]}, model="openai/test-model", api_base=srv.api_base)
    _, items, _ = execute(cfg, store)
    assert items[0].valid is False and len(items[0].text) == 20
    assert items[0].invalid_reason.startswith("cut to 20 of 61 characters (SYNTH_MAX_ITEM_CHARS): ")


# -- a notice for large imports ----------------------------------------------------------------

def test_a_large_import_gives_a_notice_before_embedding(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"text": f"text number {i}"}) + "\n" for i in range(5)))
    notes: list[str] = []
    import_file(path, on_notice=notes.append)
    assert notes == []
    monkeypatch.setenv("SYNTH_IMPORT_NOTICE_ROWS", "4")
    import_file(path, on_notice=notes.append)
    assert notes == [("rows.jsonl is large: 5 rows, 0.0 MB. Embedding them takes roughly 0 s at about 50 "
                      "texts a second on 2 CPU cores (texts embedded before are skipped).")]
    monkeypatch.setenv("SYNTH_IMPORT_NOTICE_ROWS", "10000")
    monkeypatch.setenv("SYNTH_IMPORT_NOTICE_MB", "0.0001")  # 100 bytes; the file has 120
    notes.clear()
    import_file(path, on_notice=notes.append)
    assert len(notes) == 1 and notes[0].startswith("rows.jsonl is large: 5 rows, 0.0 MB.")


def test_the_notice_estimates_long_imports_in_minutes_or_hours(tmp_path, monkeypatch):
    from synth.generate.ingest import import_notice

    assert import_notice("a.csv", 10_000, 1000, 40) is None
    assert import_notice("a.csv", 10_001, 1000, 40).endswith("roughly 3 min at about 50 texts a second on 2 "
                                                             "CPU cores (texts embedded before are skipped).")
    assert "roughly 2.8 h at about 20 texts a second" in import_notice("a.csv", 200_000, 21_000_000, 900)
    assert "21.0 MB" in import_notice("a.csv", 10, 21_000_000, 900)


def test_the_cli_prints_the_notice_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTH_IMPORT_NOTICE_ROWS", "1")
    path = tmp_path / "two.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n')
    assert main(["import", str(path), "--db", str(tmp_path / "cli.duckdb")]) == 0
    out, err = capsys.readouterr()
    assert "two.jsonl is large: 2 rows" in err and "is large" not in out and "2 items imported" in out


# -- the same file twice ----------------------------------------------------------------------

def test_the_same_file_twice_is_refused_unless_asked(store, tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text('{"text": "first"}\n{"text": "second"}\n')
    first = import_run(store, path, run_name="real data")
    assert store.run_settings(first.run_id)["params"]["source_sha256"] == source_hash(path.read_bytes())
    created = store.runs().iloc[0]["created_at"].strftime("%Y-%m-%d %H:%M")
    with pytest.raises(SynthError) as caught:
        import_run(store, "upload.jsonl", data=path.read_bytes())  # the same bytes, uploaded
    assert str(caught.value) == (
        f"upload.jsonl is already imported: run 'real data' ({first.run_id}, {created}) holds the same file "
        f"(sha256 {source_hash(path.read_bytes())[:12]}, text column 'text'). Nothing was imported. To add "
        "it again anyway, pass --again (CLI) or tick \"Import again\" (page).")
    assert len(store.runs()) == 1 and store.count_items() == 2
    again = import_run(store, path, again=True)
    assert again.n_items == 2 and len(store.runs()) == 2 and store.count_items() == 4


def test_other_content_or_another_text_column_is_another_import(store, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("text,title\nbody one,title one\nbody two,title two\n")
    import_run(store, path)
    import_run(store, path, text_column="title")
    path.write_text("text,title\nbody one,title one\nbody three,title three\n")
    import_run(store, path)
    assert len(store.runs()) == 3


def test_the_cli_refuses_a_second_import_and_again_adds_it(tmp_path, capsys):
    db = str(tmp_path / "cli.duckdb")
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "alpha"}\n')
    assert main(["import", str(path), "--db", db]) == 0
    capsys.readouterr()
    assert main(["import", str(path), "--db", db]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: a.jsonl is already imported: run 'import a.jsonl' (run_")
    assert "--again" in err
    assert main(["import", str(path), "--db", db, "--again", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_items"] == 1


# -- a run without items -------------------------------------------------------------------------

def test_a_run_without_items_is_never_saved(store):
    from synth.kernel.records import Run

    with pytest.raises(SynthError, match="Nothing to save: run 'empty' has no items"):
        store.save_run(Run(name="empty", technique="import"), [])
    assert store.runs().empty


def test_a_run_without_items_does_not_stop_the_metrics_of_the_others(store, tmp_path, capsys):
    path = tmp_path / "real.jsonl"
    path.write_text('{"text": "the first text"}\n{"text": "another one entirely"}\n')
    real = import_run(store, path)
    with store.transaction() as con:  # what an old database may hold
        con.execute("INSERT INTO runs (run_id, name, technique, n_items, tokens_in, tokens_out, latency_s, "
                    "wall_s, created_at) VALUES ('run_empty', 'empty', 'import', 0, 0, 0, 0, 0, now())")
    rows = {r["run_id"]: r["metrics"] for r in run_metrics(store)}
    assert rows[real.run_id]["count"] == 2 and rows[real.run_id]["distinct_1"] is not None
    assert rows["run_empty"] == {name: (0.0 if name == "count" else None) for name in METRIC_NAMES}
    assert main(["metrics", "--db", store.path]) == 0
    assert "run_empty  empty" in capsys.readouterr().out
