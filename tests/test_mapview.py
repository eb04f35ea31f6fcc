"""pages/mapview.py: the folder Streamlit serves the large map's component from, and when it is used
(the component drawing in a browser: tests/test_browser.py)."""

import plotly

from pages import mapview


def test_the_component_folder_holds_its_page_and_the_installed_plotly_js_and_is_private():
    folder = mapview.FOLDER
    assert (folder / "index.html").read_bytes() == mapview.PAGE.read_bytes()
    assert (folder / "plotly.min.js").read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "plotly.min.js"]
    assert folder.stat().st_mode & 0o777 == 0o700  # no other user of the machine writes there
    other = mapview.component_dir()  # a folder of its own each time, never one found by name
    assert other != folder and (other / "index.html").exists()


def test_the_page_parses_the_figure_and_runs_nothing_from_it():
    page = mapview.PAGE.read_text()
    assert "JSON.parse(shown)" in page and "eval(" not in page and "innerHTML" not in page
    assert '<script src="plotly.min.js">' in page  # served beside it: nothing from another host


def test_maps_past_the_threshold_use_the_component(monkeypatch):
    assert not mapview.use_map_view(5_000) and mapview.use_map_view(5_001)  # the default, 5,000
    monkeypatch.setenv("SYNTH_MAP_VIEW_POINTS", "0")
    assert mapview.use_map_view(1)
