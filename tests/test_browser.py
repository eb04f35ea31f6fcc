"""The real thing: `streamlit run app.py` on a loopback port, opened in headless Debian chromium."""

import os
from pathlib import Path

import pytest

from appserver import CHROMIUM, POINTS, launch_browser, start_app as _start_app, stop_app
from conftest import ROOT
from synth.generate.ingest import read_records
from synth.kernel import settings
from synth.store import DuckStore

if not Path(CHROMIUM).exists():
    if os.environ.get("SYNTH_REQUIRE_BROWSER"):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def start_app(tmp_path_factory):
    started = []

    def start():
        folder = tmp_path_factory.mktemp("app")
        url, proc, log = _start_app(folder)
        started.append((proc, log))
        start.databases[url] = folder / "fresh.duckdb"
        return url

    start.databases = {}

    yield start
    for proc, log in started:
        stop_app(proc, log)


@pytest.fixture(scope="module")
def app_url(start_app):
    """A fresh start: an empty database, so the app loads the demo dataset itself."""
    return start_app()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = launch_browser(p, tmp_path_factory.mktemp("profile"))
        yield context
        context.close()


def settle(page) -> None:
    """Wait until the app has finished its current run (a click during a run can be lost)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)


def open_map(browser, url: str):
    """A new tab on the app's first screen, once the map's points are drawn."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector(POINTS, timeout=180_000)
    return page


def _demo_count() -> int:
    return len(read_records(settings.get("demo_file")))


def test_first_screen_draws_the_demo_map(app_url, browser, tmp_path):
    page = open_map(browser, app_url)
    page.screenshot(path=str(tmp_path / "map.png"))
    assert page.locator(POINTS).count() == _demo_count()
    assert page.locator(".js-plotly-plot .legend .traces").count() == 6  # one entry per demo run
    assert page.get_by_role("heading", name="Diversity map").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_box_selection_lists_the_selected_rows_and_acts_on_them(app_url, browser, start_app):
    page = open_map(browser, app_url)
    page.locator(".js-plotly-plot").hover()
    page.locator('.modebar-btn[data-val="select"]').click()
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    heading = page.get_by_role("heading", name=f"{_demo_count()} selected")
    heading.wait_for(timeout=60_000)
    assert heading.count() == 1
    # The selection acts: tag it, then accept it; the database says so.
    settle(page)
    page.get_by_placeholder("tags, comma-separated").fill("checked-in-browser")
    page.get_by_placeholder("tags, comma-separated").press("Enter")
    settle(page)
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text(f"Tagged {_demo_count()} items: checked-in-browser").wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Accept", exact=True).click()
    page.get_by_text(f"Accepted {_demo_count()} items.").wait_for(timeout=60_000)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
    counts = DuckStore(start_app.databases[app_url]).frame(
        "SELECT count(*) FILTER (WHERE status = 'accepted') AS accepted, "
        "count(*) FILTER (WHERE CAST(tags AS VARCHAR) LIKE '%checked-in-browser%') AS tagged FROM items")
    assert counts["accepted"][0] == _demo_count() and counts["tagged"][0] == _demo_count()


def test_deep_link_on_a_fresh_server_then_import_refuses_bad_files_and_adds_good_ones(
        start_app, browser, tmp_path):
    # The first URL this server sees is /generate: it must still go through app.py.
    url = start_app()
    page = browser.new_page()
    page.goto(f"{url}/generate")
    page.get_by_role("heading", name="Import a dataset").wait_for(timeout=180_000)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Explore" in nav and "common" not in nav and "app" not in nav.split()
    upload = page.locator('[data-testid="stMainBlockContainer"] [data-testid="stFileUploaderDropzoneInput"]').last
    cases = [("notes.txt", "just words", "unsupported file type .txt"),
             ("wrong-column.csv", "body\nhello\n", "has no column 'text'"),
             ("real.csv", "text\nA real review of a tent.\nA real note about tea.\nThird real line.\n",
              "Imported 3 items")]
    for name, content, message in cases:
        path = tmp_path / name
        path.write_text(content)
        upload.set_input_files(str(path))
        page.get_by_text(name).first.wait_for(timeout=120_000)
        settle(page)
        page.get_by_role("button", name="Import", exact=True).click()
        try:
            page.get_by_text(message).first.wait_for(timeout=120_000)
        except Exception:
            page.screenshot(path="/tmp/deep-fail.png", full_page=True)
            raise
    page.goto(url)
    page.wait_for_selector(POINTS, timeout=180_000)
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length == {_demo_count() + 3}",
                           timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_a_recipe_loads_into_the_generate_page_and_runs(app_url, browser):
    page = browser.new_page()
    page.goto(f"{app_url}/generate")
    page.get_by_role("heading", name="Generate").wait_for(timeout=120_000)
    page.get_by_text("Load a recipe").click()
    recipe = ROOT / "data" / "recipes" / "support_grammar.yaml"
    page.locator('[data-testid="stSidebar"] [data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(recipe))
    page.get_by_text("support_grammar.yaml").first.wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    page.locator("textarea").filter(has_text="cannot log in to").first.wait_for(timeout=60_000)
    page.get_by_text("A slot grammar with weighted choices").wait_for(timeout=60_000)  # the technique's caption
    settle(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Run support requests (grammar) saved", exact=False).first.wait_for(timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_presentation_mode_is_clean_and_large(app_url, browser, tmp_path):
    page = open_map(browser, app_url)
    settle(page)
    points = page.locator(POINTS).count()
    page.get_by_role("button", name="Presentation mode").click()
    page.get_by_role("heading", name="What the data looks like").wait_for(timeout=120_000)
    page.wait_for_url("**present=1**", timeout=60_000)
    # the map is drawn anew, taller: wait until every point is back before comparing
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length == {points}", timeout=120_000)
    settle(page)
    page.screenshot(path=str(tmp_path / "present.png"), full_page=True)
    assert "present=1" in page.url  # a link that opens straight into the presentation
    assert page.locator('[data-testid="stSidebar"]').is_hidden()
    assert page.locator('header[data-testid="stHeader"]').is_hidden()
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                         "'[data-testid=\"stCaptionContainer\"]')).fontSize)")
    assert size >= 20
    assert page.locator(POINTS).count() == points >= _demo_count()  # the same map, every setting hidden
    page.get_by_role("button", name="Leave presentation mode").click()
    page.locator('[data-testid="stSidebar"]').wait_for(state="visible", timeout=60_000)
    page.wait_for_url(lambda url: "present" not in url, timeout=60_000)
    assert "present" not in page.url
    page.close()
