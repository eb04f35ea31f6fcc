import shutil
import subprocess
from pathlib import Path

import pytest

from synth.generate.sources import (
    SourceText,
    from_file,
    from_folder,
    from_git,
    from_pasted,
    from_records,
)
from synth.kernel.errors import SynthError

ROOT = Path(__file__).resolve().parent.parent
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


def test_pasted_splits_at_blank_lines():
    found = from_pasted("  first\ntext \n\n\n second \n \t\nthird\n")
    assert [s.text for s in found] == ["first\ntext", "second", "third"]
    assert [s.ref for s in found] == ["pasted#1", "pasted#2", "pasted#3"]


def test_pasted_splits_per_line():
    found = from_pasted("one\r\n\r\n  two  \nthree", split="line")
    assert [(s.text, s.ref) for s in found] == [("one", "pasted#1"), ("two", "pasted#2"), ("three", "pasted#3")]


@pytest.mark.parametrize("split", ["blank-line", "line"])
def test_pasted_nothing_is_refused(split):
    with pytest.raises(SynthError, match="paste at least one text"):
        from_pasted(" \n\n \t\n", split=split)


def test_pasted_unknown_split_is_refused():
    with pytest.raises(SynthError, match="Unknown split 'words'"):
        from_pasted("a", split="words")


def test_records_keep_row_refs_and_other_columns():
    rows = [{"body": " good ", "stars": 5, "id": "a"}, {"body": "bad", "stars": 1, "id": "b"}]
    found = from_records(rows, "body", "reviews.csv")
    assert found == [
        SourceText("good", "reviews.csv#row=1", {"columns": {"stars": 5, "id": "a"}}),
        SourceText("bad", "reviews.csv#row=2", {"columns": {"stars": 1, "id": "b"}}),
    ]
    assert len({found[0], found[1]}) == 2  # hashable despite the dict in meta


def test_records_validation_comes_from_ingest():
    with pytest.raises(SynthError, match="reviews.csv has no column 'text'. Its columns are: body"):
        from_records([{"body": "x"}], "text", "reviews.csv")


def test_csv_file(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,body\n1,"Great, really"\n2,Bad\n')
    found = from_file(path, text_column="body")
    assert [(s.text, s.ref, s.meta) for s in found] == [
        ("Great, really", "reviews.csv#row=1", {"columns": {"id": "1"}}),
        ("Bad", "reviews.csv#row=2", {"columns": {"id": "2"}}),
    ]


def test_jsonl_file_and_uploaded_bytes(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"text": "an answer", "topic": "tax"}\n\n{"text": "another", "topic": "law"}\n')
    found = from_file(path)
    assert [(s.text, s.ref, s.meta["columns"]) for s in found] == [
        ("an answer", "out.jsonl#row=1", {"topic": "tax"}), ("another", "out.jsonl#row=2", {"topic": "law"})]
    uploaded = from_file("upload.jsonl", data=b'{"text": "from memory"}\n')
    assert [(s.text, s.ref) for s in uploaded] == [("from memory", "upload.jsonl#row=1")]


@pytest.mark.parametrize("name, content, message", [
    ("a.jsonl", '{"text": "ok"}\n{bad\n', "line 2 is not valid JSON"),
    ("a.txt", "hello", "unsupported file type .txt"),
    ("a.csv", "text\n", "holds no rows"),
])
def test_bad_file_errors_come_from_ingest(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SynthError, match=message):
        from_file(path)


def test_folder_include_exclude_and_meta(tmp_path):
    write(tmp_path, {
        "b.py": "print('b')\n", "a.md": "# A\n", "notes.csv": "x\n1\n", "pkg/mod.go": "package mod\n",
        ".venv/lib/site.py": "venv\n", "node_modules/x/i.js": "x\n", "sub/__pycache__/c.py": "cached\n",
        "web/node_modules/y.js": "y\n", "poetry.lock": "lock\n", "app.min.js": "min\n",
        "data/big.jsonl": "{}\n", "data/keep.json": "{}\n",
    })
    found = from_folder(tmp_path)
    assert [s.ref for s in found] == ["a.md", "b.py", "data/keep.json", "pkg/mod.go"]
    assert found[1] == SourceText("print('b')\n", "b.py",
                                  {"path": "b.py", "chars": 11, "truncated": False, "language": "python"})
    assert [s.meta["language"] for s in found] == ["markdown", "python", "json", "go"]
    only_go = from_folder(tmp_path, include=("pkg/*",), exclude=())
    assert [s.ref for s in only_go] == ["pkg/mod.go"]
    everything = from_folder(tmp_path, include=("*",), exclude=("*.md", "pkg/*"))
    assert [s.ref for s in everything] == [
        ".venv/lib/site.py", "app.min.js", "b.py", "data/big.jsonl", "data/keep.json",
        "node_modules/x/i.js", "notes.csv", "poetry.lock", "sub/__pycache__/c.py", "web/node_modules/y.js"]
    assert everything[6].meta["language"] == "text"


def test_folder_skips_binary_and_empty_files(tmp_path):
    write(tmp_path, {"nul.txt": b"text\x00more", "latin.txt": "caf\xe9".encode("latin-1"),
                     "empty.txt": "", "blank.txt": " \n\n", "ok.txt": "caf\xe9"})
    found = from_folder(tmp_path)
    assert [(s.ref, s.text) for s in found] == [("ok.txt", "caf\xe9")]


def test_folder_truncates_to_max_chars(tmp_path):
    write(tmp_path, {"long.txt": "x" * 50, "short.txt": "y" * 10})
    found = from_folder(tmp_path, max_chars=10)
    assert [(s.text, s.meta["chars"], s.meta["truncated"]) for s in found] == [
        ("x" * 10, 50, True), ("y" * 10, 10, False)]


def test_folder_stops_at_max_files_in_sorted_order(tmp_path):
    write(tmp_path, {name: name for name in ["c.txt", "a/z.txt", "b.txt", "a.txt", "a/b/y.txt"]})
    assert [s.ref for s in from_folder(tmp_path)] == ["a.txt", "a/b/y.txt", "a/z.txt", "b.txt", "c.txt"]
    assert [s.ref for s in from_folder(tmp_path, max_files=2)] == ["a.txt", "a/b/y.txt"]


def test_folder_errors(tmp_path):
    with pytest.raises(SynthError, match="Folder not found: .*nowhere"):
        from_folder(tmp_path / "nowhere")
    write(tmp_path, {"image.png": b"\x89PNG", "blob.txt": b"\x00\x01"})
    with pytest.raises(SynthError, match=r"No text file in folder .* matched include=\['\*.py'\] "
                                         r"and exclude=\[\].*Pass other include/exclude patterns"):
        from_folder(tmp_path, include=("*.py",), exclude=())
    with pytest.raises(SynthError, match="No text file"):
        from_folder(tmp_path, include=("*",))  # matched, but all binary


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    write(root, {"app.py": "v1\n", "docs/guide.md": "# Guide\n", "logo.bin": b"\x00\x01", "package.lock": "x\n"})
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    write(root, {"untracked.py": "not added\n"})
    return root


@needs_git
def test_git_lists_tracked_files_only(repo):
    found = from_git(repo)
    assert [s.ref for s in found] == ["app.py", "docs/guide.md"]
    assert found[1].meta == {"path": "docs/guide.md", "chars": 8, "truncated": False, "language": "markdown"}
    assert [s.ref for s in from_git(repo / "docs")] == ["guide.md"]  # relative to the folder given


@needs_git
def test_git_ref_reads_committed_content(repo):
    (repo / "app.py").write_text("v2 changed in the working tree\n")
    assert from_git(repo, include=("app.py",))[0].text == "v2 changed in the working tree\n"
    committed = from_git(repo, include=("*.py",), ref="HEAD")
    assert [(s.ref, s.text, s.meta["git_ref"]) for s in committed] == [("app.py", "v1\n", "HEAD")]
    assert [s.text for s in from_git(repo / "docs", ref="HEAD")] == ["# Guide\n"]
    with pytest.raises(SynthError, match="git could not read 'no-such-branch'"):
        from_git(repo, ref="no-such-branch")


@needs_git
def test_git_not_a_repository(tmp_path):
    write(tmp_path, {"plain/a.py": "x\n"})
    with pytest.raises(SynthError, match="is not a git repository"):
        from_git(tmp_path / "plain")
    with pytest.raises(SynthError, match="Repository folder not found"):
        from_git(tmp_path / "missing")


@pytest.mark.parametrize("url", ["https://github.com/a/b.git", "http://host/r", "git@github.com:a/b.git",
                                 "ssh://git@host/r.git"])
def test_git_remote_url_is_refused(url):
    with pytest.raises(SynthError, match=r"remote repository.*may be offline\). Clone it first"):
        from_git(url)


def test_git_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthError, match="git is not installed"):
        from_git(tmp_path)


@needs_git
def test_git_this_project():
    found = from_git(ROOT, max_files=1000)
    refs = [s.ref for s in found]
    assert "synth/store/connection.py" in refs and "tests/conftest.py" in refs
    assert not [r for r in refs if r.startswith(".venv/")]
    store = next(s for s in found if s.ref == "synth/store/connection.py")
    assert store.meta["language"] == "python" and store.text.startswith('"""')
