"""Start `streamlit run app.py` on a free loopback port and open it in headless Debian chromium
(shared by the browser tests and bench/bench_map.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
POINTS = ".js-plotly-plot .scatterlayer .point"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(folder: Path, db: Path | None = None, timeout_s: float = 120, app_dir: Path = ROOT):
    """The app on its own database (``folder/fresh.duckdb`` unless ``db``): (url, process, log)."""
    port = free_port()
    env = {**os.environ, "SYNTH_DB": str(db or folder / "fresh.duckdb"), "SYNTH_LOAD_DEMO": "1"}
    log = open(folder / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return url, proc, log
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError("streamlit did not start:\n" + (folder / "streamlit.log").read_text())
        time.sleep(0.1)


def stop_app(proc, log) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def launch_browser(playwright, profile: Path):
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
        viewport={"width": 1400, "height": 1000})
