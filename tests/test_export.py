import io
import json
import re
import socket
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from test_coverage import three_topic_store

from synth.analysis.metrics import measure_items
from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.llm import licences
from synth.outputs.export import (
    COLUMN_HELP,
    export_dataset,
    export_dataset_zip,
    export_frame,
    export_items,
    store_coverage,
)
from synth.workflows import review
from synth.workflows.pipeline import generate_run


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_exports_load_back_with_pandas(demo_store, tmp_path, suffix):
    out = tmp_path / f"data{suffix}"
    n = export_items(demo_store, out)
    frame = {".jsonl": lambda p: pd.read_json(p, lines=True), ".csv": pd.read_csv,
             ".parquet": pd.read_parquet}[suffix](out)
    assert len(frame) == n == demo_store.count_items()
    assert {"text", "model", "run_name", "prompt_version", "template", "tokens_in", "tokens_out",
            "latency_ms", "cost_usd", "params", "variables"} <= set(frame.columns)
    assert frame["model"].notna().all()
    params = frame["params"].iloc[0]
    params = json.loads(params) if isinstance(params, str) else params
    assert "temperature" in params and "seed" in params


def test_export_of_one_run(demo_store, tmp_path):
    run_id = demo_store.runs()["run_id"].iloc[0]
    n = export_items(demo_store, tmp_path / "one.jsonl", [run_id])
    assert n == demo_store.runs()["n_items"].iloc[0]


def test_bad_targets(store, tmp_path):
    with pytest.raises(SynthError, match="ending in .jsonl, .csv, .parquet"):
        export_items(store, tmp_path / "x.xlsx")
    with pytest.raises(SynthError, match="does not exist"):
        export_items(store, tmp_path / "missing" / "x.csv")
    with pytest.raises(SynthError, match="no items"):
        export_items(store, tmp_path / "x.csv")
    assert list(tmp_path.glob("*.csv")) == [] and list(tmp_path.glob(".export-*")) == []


def test_api_key_never_reaches_database_or_export(tmp_path, monkeypatch, make_server, store, caplog):
    key = "sk-live-SECRET-0123456789abcdef"
    srv = make_server(required_key=key)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    caplog.set_level("DEBUG")
    generate_run(store, RunConfig(template="Hello {x}", variables={"x": ["a", "b"]}, n=2,
                                          model="openai/test-model", api_base=srv.api_base))
    assert srv.config.requests[0]["authorization"] == f"Bearer {key}"
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"e{suffix}"
        export_items(store, out)
        assert key.encode() not in out.read_bytes()
    export_dataset(store, tmp_path / "hf")
    for file in (tmp_path / "hf").rglob("*.*"):
        assert key.encode() not in file.read_bytes()
    with store.connect() as con:
        con.execute("CHECKPOINT")
    blob = (tmp_path / "synth.duckdb").read_bytes()
    assert key.encode() not in blob
    assert key not in caplog.text
    assert store.runs()["params"].str.contains("127.0.0.1").all()


def test_every_export_row_carries_its_models_training_use(demo_store, tmp_path):
    out = tmp_path / "data.jsonl"
    export_items(demo_store, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == demo_store.count_items()
    assert {r["model"] for r in rows} == {"local/smollm2-135m"}
    assert {r["model_training_use"] for r in rows} == {licences.ALLOWED}


# ---- Hugging Face dataset folder ----------------------------------------------------------------

UNICODE = "Crème brûlée ✓ 日本語 «quotes» — emoji 🚀"
TEMPLATE = "<script>alert('x')</script> Write **bold** [a link](http://x.test) ```fenced``` about {thing}"
SYSTEM = "# Not a heading\n<img src=x onerror=alert(1)>"


@pytest.fixture
def mixed_store(store, make_server, tmp_path):
    """Two runs: a grammar (a known model: allowed) and an openai/ model on a server of our own
    (not OpenAI: unknown), with a prompt full of HTML and markdown, unicode texts, and reviews."""
    grammar = tmp_path / "g.yaml"
    grammar.write_text("start: '<a> <b>'\nrules:\n  a: [hi, hello]\n  b: [you, there]\n")
    generate_run(store, RunConfig(technique="symbolic", grammar=grammar.read_text(), n=2, unique=True,
                                  run_name="grammar"))
    srv = make_server(reply=lambda n, prompt: f"{UNICODE} #{n}")
    generate_run(store, RunConfig(template=TEMPLATE, system_prompt=SYSTEM, variables={"thing": ["tea", "rain"]},
                                  n=3, model="openai/test-model", api_base=srv.api_base, temperature=0.3,
                                  max_tokens=50, seed=7, concurrency=1, run_name="<b>llm</b> *run*"))
    ids = export_frame(store)["item_id"].tolist()
    review.set_status(store, ids[:2], "accepted")
    return store


def _fenced_blocks(card: str) -> tuple[list[str], str]:
    """The contents of the card's fenced code blocks, and the card without them."""
    pattern = re.compile(r"^(`{3,})[^\n`]*\n(.*?)\n\1$", re.M | re.S)
    return [m.group(2) for m in pattern.finditer(card)], pattern.sub("", card)


def _table_row(card: str, first_cell: str, section: str = "") -> list[str]:
    """The cells of the first table row starting with ``first_cell`` after the heading ``section``."""
    lines = card[card.index(f"## {section}"):].splitlines()
    line = next(l for l in lines if l.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


@pytest.mark.slow
def test_dataset_folder_loads_back_with_pandas(mixed_store, tmp_path):
    out = tmp_path / "ds"
    expected = export_frame(mixed_store)
    result = export_dataset(mixed_store, out, title="Mixed")
    assert result == {"out": str(out), "rows": 5, "files": ["README.md", "data/train.parquet"]}
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == \
        ["README.md", "data/train.parquet"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    frame = pd.read_parquet(out / "data" / "train.parquet")
    assert len(frame) == 5 == mixed_store.count_items()
    assert frame["item_id"].tolist() == expected["item_id"].tolist()
    assert frame["text"].tolist() == expected["text"].tolist()
    assert frame["text"].iloc[-1] == f"{UNICODE} #3"
    assert list(frame.columns) == list(expected.columns) and list(frame.columns)[-1] == "model_training_use"
    assert dict(zip(frame["model"], frame["model_training_use"])) == {"symbolic": "allowed",
                                                                      "openai/test-model": "unknown"}
    assert json.loads(frame["prompt_variables"].iloc[-1]) == {"thing": ["tea", "rain"]}
    assert set(COLUMN_HELP) == set(frame.columns)  # the card documents every column


def _offline_hf(monkeypatch, tmp_path):
    """datasets with its cache in tmp_path, offline, and any attempt to open a socket an error."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-home" / "datasets"))
    import datasets

    # The settings are read at import: set them too in case an earlier test imported datasets.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-home" / "datasets")

    def no_network(*args, **kwargs):
        raise AssertionError(f"datasets tried the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return datasets


def test_dataset_folder_loads_with_the_datasets_library(mixed_store, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    export_dataset(mixed_store, out)
    columns = list(export_frame(mixed_store).columns)
    datasets = _offline_hf(monkeypatch, tmp_path)
    cache = str(tmp_path / "hf-home" / "datasets")
    from_card = datasets.load_dataset(str(out), cache_dir=cache)
    from_file = datasets.load_dataset("parquet", data_files={"train": str(out / "data" / "train.parquet")},
                                      cache_dir=cache)
    for loaded in (from_card, from_file):
        assert list(loaded) == ["train"]
        train = loaded["train"]
        assert train.num_rows == 5
        assert train.column_names == columns
        assert train[4]["text"] == f"{UNICODE} #3"
        assert train[0]["model_training_use"] == "allowed"
    assert (tmp_path / "hf-home" / "datasets").is_dir()


@pytest.mark.slow
def test_datasets_imports_and_loads_the_folder_without_network(mixed_store, tmp_path):
    out = tmp_path / "ds"
    export_dataset(mixed_store, out)
    script = (
        "import socket, sys\n"
        "def no_network(*a, **k): raise SystemExit(f'network attempt: {a}')\n"
        "socket.socket.connect = no_network\n"
        "import datasets\n"
        "print(datasets.load_dataset(sys.argv[1])['train'].num_rows)\n")
    env = {"PATH": "/usr/bin:/bin", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}
    proc = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5"]


@pytest.mark.slow
def test_dataset_card(mixed_store, tmp_path):
    out = tmp_path / "ds"
    export_dataset(mixed_store, out, title="Mixed <i>set</i>")
    card = (out / "README.md").read_text(encoding="utf-8")
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": "data/train.parquet"}]}]
    assert meta["tags"] == ["synthetic"] and meta["license"] == "other"
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == "Mixed <i>set</i>"
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(out / "README.md").data.to_dict()["configs"] == meta["configs"]

    assert "5 text items from 2 runs" in body
    assert "## Intrinsic evaluation" in body and "not results of a model trained on it" in body
    assert _table_row(card, "grammar")[2] == "2"  # items per run
    assert _table_row(card, "accepted") == ["accepted", "2"] and _table_row(card, "new") == ["new", "3"]

    # Licence notes: the grammar is known; openai/test-model on our own server is not OpenAI, so unknown.
    assert _table_row(card, "symbolic")[3] == "allowed"
    unknown = _table_row(card, "openai/test-model")
    assert unknown[1:4] == ["unknown", "unknown", "unknown"]
    assert licences.DISCLAIMER in card

    # Prompts verbatim inside code blocks; no HTML or markdown from user text outside them (the
    # front matter is YAML, not markdown).
    blocks, outside = _fenced_blocks(body)
    assert TEMPLATE in blocks and SYSTEM in blocks
    assert '{\n  "thing": [\n    "tea",\n    "rain"\n  ]\n}' in blocks
    assert "````text\n" + TEMPLATE in card  # the template holds ``` so its fence is longer
    for raw in ("<script>", "<img", "<i>", "<b>", "**bold**", "*run*"):
        assert raw not in outside
    assert _table_row(card, r"&lt;b&gt;llm&lt;/b&gt; \*run\*", "Items per run")[2] == "3"
    assert _table_row(card, r"&lt;b&gt;llm&lt;/b&gt; \*run\*", "Generation parameters")[1:] == [
        "openai/test-model", "sampling", "0.3", "50", "", "7", "3"]
    assert _table_row(card, "grammar", "Generation parameters")[1:4] == ["symbolic", "symbolic", ""]

    values, _ = measure_items(mixed_store, export_frame(mixed_store))
    assert _table_row(card, "`count`")[1] == "5"
    assert _table_row(card, "`distinct_1`")[1] == f"{values['distinct_1']:.4g}"
    assert _table_row(card, "`vendi_score`")[1] == f"{values['vendi_score']:.4g}"
    for column in export_frame(mixed_store).columns:
        assert _table_row(card, f"`{column}`", "Columns")[1] == re.sub(r"([_*|])", r"\\\1", COLUMN_HELP[column])
    assert "Coverage" not in card and "recall" not in card.lower()  # no reference data: no coverage section


@pytest.mark.slow
def test_dataset_of_accepted_items_and_as_zip(mixed_store, tmp_path):
    accepted = export_frame(mixed_store, statuses=["accepted"])["item_id"].tolist()
    result = export_dataset(mixed_store, tmp_path / "ok", statuses=["accepted"])
    assert result["rows"] == 2
    assert pd.read_parquet(tmp_path / "ok" / "data" / "train.parquet")["item_id"].tolist() == accepted
    card = (tmp_path / "ok" / "README.md").read_text()
    assert "2 text items from 1 run " in card and _table_row(card, "accepted") == ["accepted", "2"]

    data = export_dataset_zip(mixed_store, statuses=["accepted"], title="Zipped")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["synth-dataset/README.md", "synth-dataset/data/train.parquet"]
        frame = pd.read_parquet(io.BytesIO(zf.read("synth-dataset/data/train.parquet")))
        assert "pretty_name: Zipped" in zf.read("synth-dataset/README.md").decode()
    assert frame["item_id"].tolist() == accepted


@pytest.mark.slow
def test_dataset_into_an_empty_existing_folder(demo_store, tmp_path):
    (tmp_path / "empty").mkdir()
    assert export_dataset(demo_store, tmp_path / "empty")["rows"] == demo_store.count_items()
    assert (tmp_path / "empty" / "data" / "train.parquet").is_file()


def _siblings(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def test_dataset_refuses_a_folder_with_files(demo_store, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = _siblings(tmp_path)
    with pytest.raises(SynthError, match="already exists and is not an empty folder. Choose a new folder"):
        export_dataset(demo_store, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert _siblings(tmp_path) == before


def test_dataset_refuses_an_existing_file(demo_store, tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SynthError, match="is not an empty folder"):
        export_dataset(demo_store, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_dataset_refuses_a_missing_parent(demo_store, tmp_path):
    before = _siblings(tmp_path)
    with pytest.raises(SynthError, match="does not exist. Create it"):
        export_dataset(demo_store, tmp_path / "missing" / "ds")
    assert _siblings(tmp_path) == before


def test_dataset_refuses_no_items(demo_store, store, tmp_path):
    before = _siblings(tmp_path)
    with pytest.raises(SynthError, match="no items to export"):
        export_dataset(demo_store, tmp_path / "ds", statuses=["accepted"])
    assert not (tmp_path / "ds").exists() and _siblings(tmp_path) == before


# ---- coverage of reference data ---------------------------------------------------------------

CLUSTER_NAME = "<b>star</b> *gazing* | [x](http://x.test)"


@pytest.mark.slow
def test_coverage_of_a_store_with_a_known_answer(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_CLUSTER_K", "3")
    built = three_topic_store(store, tmp_path)
    summary = store_coverage(store)
    assert (summary.recall, summary.precision, summary.k) == (pytest.approx(2 / 3), 1.0, 5)
    assert (summary.reference_items, summary.synthetic_items, summary.reference_reached) == (24, 16, 16)
    worst = summary.worst[0]
    assert (worst["reference_items"], worst["synthetic_items"], worst["recall"], worst["precision"]) == \
        (8, 0, 0.0, None)
    assert [(c["reference_items"], c["synthetic_items"], c["recall"], c["precision"]) for c in summary.worst[1:]] \
        == [(8, 8, 1.0, 1.0)] * 2
    items = store.items()
    stars = set(items.loc[items["text"].isin(built["stars"]), "item_id"])
    from synth.analysis.clustering import current_clustering

    assert {current_clustering(store).labels[i] for i in stars} == {worst["cluster"]}
    assert store_coverage(store, run_ids=[built["reference"]]).reason == \
        "There are no synthetic items to measure against the reference data."


@pytest.mark.slow
def test_the_dataset_card_shows_coverage_in_plain_words_with_names_literal(store, tmp_path, monkeypatch, make_server):
    from synth.analysis.clustering import current_clustering, name_clusters_with_llm
    from synth.kernel.text import literal_markdown

    monkeypatch.setenv("SYNTH_CLUSTER_K", "3")
    built = three_topic_store(store, tmp_path)
    srv = make_server(reply=CLUSTER_NAME)  # every cluster gets this name, as a model might answer
    name_clusters_with_llm(store, current_clustering(store), store.items(), "openai/test-model", api_base=srv.api_base)
    export_dataset(store, tmp_path / "ds", run_ids=[built["synthetic"]])
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    section = card[card.index("## Coverage of the real reference data"):card.index("## Columns")]
    assert "against the 24 real (reference) items" in section
    assert "- " + literal_markdown("Recall: 67 % of the real items have a synthetic item nearby (16 of 24).") in section
    assert "- " + literal_markdown("Precision: 100 % of the synthetic items are near real items (16 of 16).") in section
    assert "### The 3 worst-covered clusters (lowest recall first)" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "real items" not in line]
    name = literal_markdown(CLUSTER_NAME)
    assert rows == [f"| {name} | 8 | 0 | 0 % | — |", f"| {name} | 8 | 8 | 100 % | 100 % |",
                    f"| {name} | 8 | 8 | 100 % | 100 % |"]
    assert CLUSTER_NAME not in card and "<b>" not in card
    # only the real data exported: coverage says in one sentence why there is none
    export_dataset(store, tmp_path / "real", run_ids=[built["reference"]])
    card = (tmp_path / "real" / "README.md").read_text(encoding="utf-8")
    assert "## Coverage of the real reference data\n\nThere are no synthetic items to measure" in card


def test_export_page_downloads_each_file_in_one_click_with_plain_labels(demo_store, monkeypatch):
    """Every download is one button whose label says what and how many; the report is built on
    the click (a deferred download), not by a separate Build button."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import AppTest

    deferred = {}
    real = MediaFileManager.add_deferred

    def remember(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        deferred[file_name] = (data_callable, mimetype)
        return real(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/export.py").run()
    assert not at.exception and not at.error
    n = demo_store.count_items()
    assert at.radio(key="export_format").options == ["JSON Lines (.jsonl)", "CSV (.csv)", "Parquet (.parquet)",
                                                      "Hugging Face dataset (.zip)"]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == [f"Download {n} items as JSON Lines (.jsonl)", f"Download the report of {n} items (HTML)"]
    assert not [b for b in at.button if "report" in (b.label or "").lower()]  # no Build step
    at.radio(key="export_format").set_value("hf_dataset").run()
    assert at.get("download_button")[0].proto.label == f"Download {n} items as a Hugging Face dataset (.zip)"
    at.text_input(key="export_report_title").set_value("Tea & rain").run()
    build, mime = deferred["synth-report.html"]
    html = build().decode("utf-8")
    assert mime == "text/html" and "<title>Tea &amp; rain</title>" in html and html.rstrip().endswith("</html>")
