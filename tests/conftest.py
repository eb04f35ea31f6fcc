"""Shared fixtures. Every test gets its own database through SYNTH_DB, the setting users have."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from openai_server import OpenAITestServer, ServerConfig  # noqa: E402

from synth.store import DuckStore  # noqa: E402
from synth.workflows.demo import ensure_demo  # noqa: E402
from synth.workflows.pipeline import map_points, open_store  # noqa: E402

# End-to-end modules (a browser, every page through AppTest, the CLI in full): slow as a whole.
# Elsewhere a test that loads models or runs a pipeline says so with @pytest.mark.slow.
SLOW_MODULES = {"test_browser", "test_pages", "test_page_sql", "test_cli"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


KEY_VARIABLES = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "SYNTH_SECRETS_FILE", "SYNTH_DEFAULT_MODEL",
                 "SYNTH_EMBED_MODEL", "SYNTH_NEAR_DUP_THRESHOLD"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """A fresh database path, no demo autoload, and no keys from the developer's shell."""
    monkeypatch.setenv("SYNTH_DB", str(tmp_path / "synth.duckdb"))
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "0")
    monkeypatch.setenv("SYNTH_BACKOFF_BASE", "0.01")  # retries are tested for count and order, not waits
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(autouse=True)
def no_background_work_left_running():
    """Background work a test started (per-run metrics after a page, layout fits) ends with the
    test: a thread still writing one test's database while the next test runs once crashed DuckDB
    in CI (a segfault in connect)."""
    yield
    from synth.analysis import metrics, projection

    wait_for_jobs()
    from synth.workflows.control import forget_finished

    forget_finished()  # a finished job's note in the sidebar belongs to the test that ran it
    metrics.wait_for_background_metrics(120)
    if projection.background_released():
        projection.wait_for_layouts(120)


def wait_for_jobs(at=None, timeout: float = 180.0):
    """Wait until the background jobs of this process end; then run ``at`` again (as the page's
    one-second poll would) and return it."""
    import time

    from synth.workflows import jobs

    deadline = time.monotonic() + timeout
    while jobs.active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not jobs.active(), "a background job did not finish in time"
    if at is not None:
        at.run()  # the page sees the job finished and runs again, showing the result
    return at


@pytest.fixture
def store(tmp_path) -> DuckStore:
    return DuckStore(tmp_path / "synth.duckdb")


@pytest.fixture(scope="session")
def demo_db_file(tmp_path_factory) -> Path:
    """A database with the demo dataset loaded and embedded, built once per session."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    old = os.environ.get("SYNTH_LOAD_DEMO")
    os.environ["SYNTH_LOAD_DEMO"] = "1"
    try:
        store = open_store(path)
        ensure_demo(store)
        map_points(store, background=False)  # a stored UMAP layout, so pages never wait for one
    finally:
        if old is None:
            os.environ.pop("SYNTH_LOAD_DEMO")
        else:
            os.environ["SYNTH_LOAD_DEMO"] = old
    return path


def private_copy(source: Path, tmp_path: Path) -> DuckStore:
    """A private copy of the database file ``source`` at the SYNTH_DB path."""
    target = tmp_path / "synth.duckdb"
    shutil.copy(source, target)
    return DuckStore(target)


@pytest.fixture
def demo_store(tmp_path, demo_db_file) -> DuckStore:
    """A private copy of the demo database at the SYNTH_DB path."""
    return private_copy(demo_db_file, tmp_path)


@pytest.fixture
def server():
    with OpenAITestServer() as srv:
        yield srv


@pytest.fixture
def make_server():
    servers = []

    def make(**config):
        srv = OpenAITestServer(ServerConfig(**config)).__enter__()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.__exit__(None, None, None)


def pytest_terminal_summary(terminalreporter):
    """The hostile-input suite's figures: payloads tried, refused, run, items lost."""
    hostile = sys.modules.get("test_hostile")
    if hostile is not None and hostile.TALLY["payloads tried"]:
        terminalreporter.write_line("hostile input: " + ", ".join(f"{k} {v}" for k, v in hostile.TALLY.items()))
