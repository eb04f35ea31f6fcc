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

# Streamlit marks its root with the script's state ("initial", "running", "rerunRequested",
# "notRunning", ...) and the connection's. Counting the times it leaves "running" tells a test that a
# run it caused has finished, instead of guessing how long the run takes to start.
RUN_COUNTER_JS = """
window.__synthRunsDone = 0;
new MutationObserver((records) => {
  for (const r of records) {
    if (r.target.dataset && r.target.dataset.testid === "stApp" && r.oldValue === "running") {
      window.__synthRunsDone += 1;
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ["data-test-script-state"]});
"""
APP_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.dataset.testConnectionState === "CONNECTED"
    && app.dataset.testScriptState === "notRunning"
    && !document.querySelector('[data-testid="stStatusWidget"]');
}"""
# The first plotly chart (the map) drawn completely from its current figure, at least min_height
# tall: one SVG point per data point, and at least one point. Returns that count, or false.
MAP_DRAWN_JS = """(minHeight) => {
  const gd = document.querySelector(".js-plotly-plot");
  if (!gd || !gd.calcdata || !gd._fullLayout || gd._fullLayout.height < minHeight) return false;
  // points only: density contours are traces too, drawn as lines, not points
  const expected = gd.calcdata.filter((t) => t[0] && t[0].trace && t[0].trace.type === "scatter")
    .reduce((n, trace) => n + trace.length, 0);
  const drawn = gd.querySelectorAll(".scatterlayer .point").length;
  return expected > 0 && drawn === expected ? drawn : false;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(folder: Path, db: Path | None = None, timeout_s: float = 120, app_dir: Path = ROOT,
              attempts: int = 3):
    """The app on its own database (``folder/fresh.duckdb`` unless ``db``): (url, process, log).

    The free port is only free when chosen: if another process takes it before streamlit binds it,
    streamlit exits at once, and the app is started again on another port."""
    for attempt in range(attempts):
        try:
            return _start_app_once(folder, db, timeout_s, app_dir)
        except _PortTaken:
            if attempt == attempts - 1:
                raise RuntimeError("streamlit did not start:\n" + (folder / "streamlit.log").read_text()) from None


class _PortTaken(Exception):
    pass


def _start_app_once(folder: Path, db: Path | None, timeout_s: float, app_dir: Path):
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
            if proc.poll() is None:
                stop_app(proc, log)
            log.close()
            text = (folder / "streamlit.log").read_text()
            if proc.returncode is not None and ("is not available" in text or "already in use" in text):
                raise _PortTaken()
            raise RuntimeError("streamlit did not start:\n" + text)
        time.sleep(0.1)  # the polling interval of the health check above, not a wait for the app


def stop_app(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    log.close()


def launch_browser(playwright, profile: Path):
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
        viewport={"width": 1400, "height": 1000})
    context.add_init_script(RUN_COUNTER_JS)
    return context
