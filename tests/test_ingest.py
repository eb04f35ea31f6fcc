import json

import pytest

from synth.generate.ingest import import_file, read_records, restore_export
from synth.kernel.errors import SynthError
from synth.outputs.export import export_items
from synth.store import DuckStore
from synth.workflows.pipeline import import_run


def test_import_jsonl_keeps_other_columns_as_meta(store, tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text('{"text": " first review ", "stars": 5}\n\n{"text": "second", "stars": 2}\n')
    result = import_run(store, path, run_name="real")
    frame = store.items([result.run_id])
    assert list(frame["text"]) == ["first review", "second"]
    assert [json.loads(m)["stars"] for m in frame["meta"]] == [5, 2]
    assert set(frame["status"]) == {"imported"}
    assert store.runs().iloc[0]["technique"] == "import"


def test_import_csv_with_other_column(store, tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,body\n1,"Great, really great"\n2,Bad\n')
    result = import_run(store, path, text_column="body")
    assert list(store.items([result.run_id])["text"]) == ["Great, really great", "Bad"]
    assert result.name == "import reviews.csv"


@pytest.mark.parametrize("name, content, message", [
    ("a.txt", "hello", "unsupported file type .txt"),
    ("a.jsonl", '{"text": "ok"}\n{bad json\n', "line 2 is not valid JSON"),
    ("a.jsonl", '["a list"]\n', "line 1 is a JSON list"),
    ("a.jsonl", '{"body": "no text column"}\n', "has no column 'text'. Its columns are: body"),
    ("a.jsonl", '{"text": "ok"}\n{"text": ""}\n', "row 2: column 'text' is empty"),
    ("a.jsonl", "\n\n", "holds no rows"),
    ("a.csv", "text\n", "holds no rows"),
    ("a.csv", 'text\n"ok",extra\n', "header's columns"),
])
def test_bad_files_are_refused_and_nothing_is_written(store, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SynthError, match=message):
        import_run(store, path)
    assert store.count_items() == 0 and store.runs().empty


def test_missing_file_and_bad_encoding(store, tmp_path):
    with pytest.raises(SynthError, match="File not found"):
        import_file(tmp_path / "nope.jsonl")
    with pytest.raises(SynthError, match="not UTF-8"):
        read_records(tmp_path / "x.csv", data=b"text\n\xff\xfe\xfa\n")


def test_upload_bytes_are_read_without_a_file():
    run, items = import_file("upload.csv", data=b"text\nfrom memory\n")
    assert [i.text for i in items] == ["from memory"]


def test_export_then_restore_keeps_provenance(demo_store, tmp_path):
    out = tmp_path / "all.jsonl"
    n = export_items(demo_store, out)
    fresh = DuckStore(tmp_path / "fresh.duckdb")
    added = restore_export(fresh, out)
    assert len(added) == demo_store.runs().shape[0]
    assert fresh.count_items() == n
    cols = ["name", "technique", "model", "n_items", "tokens_in", "tokens_out", "prompt_name", "prompt_version"]
    assert fresh.runs()[cols].equals(demo_store.runs()[cols])
    assert restore_export(fresh, out) == []  # already there: nothing added twice


def test_restore_refuses_plain_files(store, tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text('{"text": "hi"}\n')
    with pytest.raises(SynthError, match="not a Synth Studio export"):
        restore_export(store, path)
