"""The core's shape: no streamlit, and heavy libraries imported only when used."""

import subprocess
import sys

from conftest import ROOT

MODULES = ["synth", "synth.cli", "synth.workflows.pipeline", "synth.generate.config", "synth.generate.execute", "synth.llm.providers",
           "synth.analysis.embedding", "synth.analysis.projection", "synth.analysis.metrics", "synth.store", "synth.generate.ingest",
           "synth.outputs.export", "synth.outputs.plots", "synth.workflows.demo", "synth.kernel.settings"]


def test_core_never_imports_streamlit_and_defers_heavy_imports():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES)
            + "print(','.join(m for m in ('streamlit', 'litellm', 'torch', 'umap', 'llama_cpp', "
              "'sentence_transformers') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_no_core_module_mentions_streamlit():
    paths = list((ROOT / "synth").rglob("*.py"))
    assert len(paths) > 40
    for path in paths:
        assert "import streamlit" not in path.read_text(), path
