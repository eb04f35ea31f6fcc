import json

import pandas as pd
import pytest

from synth.errors import SynthError
from synth.export import export_items
from synth.generation import RunConfig
from synth.pipeline import generate_run


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
    with store.connect() as con:
        con.execute("CHECKPOINT")
    blob = (tmp_path / "synth.duckdb").read_bytes()
    assert key.encode() not in blob
    assert key not in caplog.text
    assert store.runs()["params"].str.contains("127.0.0.1").all()
