"""The real thing: `streamlit run app.py` on a loopback port, opened in headless Debian chromium."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from synth.ingest import read_records
from synth import settings

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    if os.environ.get("SYNTH_REQUIRE_BROWSER"):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    """A fresh start: an empty database, so the app loads the demo dataset itself."""
    port = _free_port()
    env = {**os.environ, "SYNTH_DB": str(tmp_path / "fresh.duckdb"), "SYNTH_LOAD_DEMO": "1"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_first_screen_draws_the_demo_map(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    expected = len(read_records(settings.get("demo_file")))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = context.new_page()
        page.goto(app_url)
        page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=180_000)
        page.screenshot(path=str(tmp_path / "map.png"))
        points = page.locator(".js-plotly-plot .scatterlayer .point").count()
        legend = page.locator(".js-plotly-plot .legend .traces").count()
        title = page.get_by_role("heading", name="Diversity map").count()
        exceptions = page.locator('[data-testid="stException"]').count()
        context.close()
    assert points == expected
    assert legend >= 5  # one legend entry per demo run
    assert title == 1 and exceptions == 0
