"""The real thing: `streamlit run app.py` on a loopback port, opened in headless Debian chromium."""

import os
import re
from pathlib import Path

import pytest
from appserver import (
    APP_IDLE_JS,
    CHROMIUM,
    MAP_DRAWN_JS,
    POINTS,
    launch_browser,
    stop_app,
)
from appserver import start_app as _start_app
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


WAIT_MS = 180_000  # generous: a loaded 2-core machine is slow, and every wait is on a condition


def settle(page) -> None:
    """Wait until the app is connected and idle: no run in progress (a click during a run can be lost)."""
    page.wait_for_function(APP_IDLE_JS, timeout=WAIT_MS)


def runs_done(page) -> int:
    return page.evaluate("window.__synthRunsDone || 0")


def act(page, action) -> None:
    """Do ``action``, which makes the app rerun, and wait until that rerun has finished."""
    settle(page)
    before = runs_done(page)
    action()
    page.wait_for_function(f"(window.__synthRunsDone || 0) > {before} && ({APP_IDLE_JS})()", timeout=WAIT_MS)


def map_drawn(page, min_height: int = 0) -> int:
    """Wait until the map is drawn completely (at least ``min_height`` tall); its number of points."""
    return page.wait_for_function(MAP_DRAWN_JS, arg=min_height, timeout=WAIT_MS).json_value()


def map_height(page) -> float:
    return page.evaluate("document.querySelector('.js-plotly-plot')._fullLayout.height")


def open_map(browser, url: str):
    """A new tab on the app's first screen, once its run is over, the UMAP layout has replaced the
    PCA preview of a fresh database (the switch moves every point and clears a selection) and the
    map is drawn in full."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector(POINTS, timeout=WAIT_MS)
    page.wait_for_function("() => !document.body.innerText.includes('Showing a PCA preview')", timeout=WAIT_MS)
    settle(page)
    map_drawn(page)
    return page


def _demo_count() -> int:
    return len(read_records(settings.get("demo_file")))


def test_first_screen_draws_the_demo_map(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = open_map(browser, app_url)
    page.screenshot(path=str(tmp_path / "map.png"))
    expect(page.locator(POINTS)).to_have_count(_demo_count(), timeout=WAIT_MS)
    expect(page.locator(".js-plotly-plot .legend .traces")).to_have_count(6, timeout=WAIT_MS)  # one per demo run
    expect(page.get_by_role("heading", name="Diversity map")).to_have_count(1, timeout=WAIT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_box_selection_lists_the_selected_rows_and_acts_on_them(app_url, browser, start_app):
    page = open_map(browser, app_url)
    page.locator(".js-plotly-plot").first.hover()  # the map; the linked histograms follow it
    page.locator('.js-plotly-plot .modebar-btn[data-val="select"]').first.click()
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    heading = page.get_by_role("heading", name=f"{_demo_count()} selected")
    heading.wait_for(timeout=WAIT_MS)
    assert heading.count() == 1
    # The selection acts: tag it, then accept it; the database says so.
    settle(page)
    tags = page.get_by_placeholder("tags, comma-separated")
    tags.fill("checked-in-browser")
    act(page, lambda: tags.press("Enter"))  # the value reaches the app before Tag is clicked
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text(f"Tagged {_demo_count()} items: checked-in-browser").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button", name="Accept", exact=True).click()
    page.get_by_text(f"Accepted {_demo_count()} items.").wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
    counts = DuckStore(start_app.databases[app_url]).frame(
        "SELECT count(*) FILTER (WHERE status = 'accepted') AS accepted, "
        "count(*) FILTER (WHERE CAST(tags AS VARCHAR) LIKE '%checked-in-browser%') AS tagged FROM items")
    assert counts["accepted"][0] == _demo_count() and counts["tagged"][0] == _demo_count()


def test_deep_link_on_a_fresh_server_then_import_refuses_bad_files_and_repeats_and_adds_good_ones(
        start_app, browser, tmp_path):
    # The first URL this server sees is /generate: it must still go through app.py.
    url = start_app()
    page = browser.new_page()
    page.goto(f"{url}/generate")
    page.get_by_role("heading", name="Import a dataset").wait_for(timeout=WAIT_MS)
    settle(page)
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
        act(page, lambda p=path: upload.set_input_files(str(p)))  # the upload reruns the app
        page.get_by_text(name).first.wait_for(timeout=WAIT_MS)
        settle(page)
        page.get_by_role("button", name="Import", exact=True).click()
        try:
            page.get_by_text(message).first.wait_for(timeout=WAIT_MS)
        except Exception:
            page.screenshot(path="/tmp/deep-fail.png", full_page=True)
            raise
        settle(page)
    # The same file again is refused, and added only when asked.
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("real.csv is already imported").first.wait_for(timeout=WAIT_MS)
    settle(page)
    act(page, lambda: page.get_by_text("Import again (a file already imported").click())
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported 3 items").first.wait_for(timeout=WAIT_MS)
    settle(page)
    page.goto(url)
    page.wait_for_selector(POINTS, timeout=WAIT_MS)
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length == {_demo_count() + 6}",
                           timeout=WAIT_MS)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_a_recipe_loads_into_the_generate_page_and_runs(app_url, browser):
    page = browser.new_page()
    page.goto(f"{app_url}/generate")
    page.get_by_role("heading", name="Generate").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_text("Load a recipe").click()
    recipe = ROOT / "data" / "recipes" / "support_grammar.yaml"
    upload = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploaderDropzoneInput"]')
    upload.wait_for(state="attached", timeout=WAIT_MS)
    act(page, lambda: upload.set_input_files(str(recipe)))  # the upload reruns the app
    page.get_by_text("support_grammar.yaml").first.wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    page.locator("textarea").filter(has_text="cannot log in to").first.wait_for(timeout=WAIT_MS)
    page.get_by_text("A slot grammar with weighted choices").wait_for(timeout=WAIT_MS)  # the technique's caption
    settle(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Run support requests (grammar) saved", exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_presentation_mode_is_clean_and_large(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = open_map(browser, app_url)
    points = map_drawn(page)  # the whole map, drawn from the finished run's figure
    assert points >= _demo_count()
    height = map_height(page)
    page.get_by_role("button", name="Presentation mode").click()
    # Each condition is waited for: the old map, sidebar and header stay on screen until the new
    # run replaces them, so a check made at once can see the page before the switch.
    expect(page).to_have_url(re.compile(r"[?&]present=1"), timeout=WAIT_MS)  # a link straight into it
    page.get_by_role("heading", name="What the data looks like").wait_for(timeout=WAIT_MS)
    expect(page.locator('[data-testid="stSidebar"]')).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator('header[data-testid="stHeader"]')).to_be_hidden(timeout=WAIT_MS)
    settle(page)
    # the map is drawn anew, taller, with every point: the same map, every setting hidden
    assert map_drawn(page, min_height=height + 1) == points
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-testid=\"stCaptionContainer\"]');"
        " return !!c && parseFloat(getComputedStyle(c).fontSize) >= 20; }", timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "present.png"), full_page=True)
    assert "present=1" in page.url
    assert page.locator('[data-testid="stSidebar"]').is_hidden()
    assert page.locator('header[data-testid="stHeader"]').is_hidden()
    assert page.locator(POINTS).count() == points
    # Clicked when the app is idle (a click during a run, a fragment's included, can be lost), and
    # the run it starts waited for.
    act(page, lambda: page.get_by_role("button", name="Leave presentation mode").click())
    expect(page.locator('[data-testid="stSidebar"]')).to_be_visible(timeout=WAIT_MS)
    page.wait_for_url(lambda url: "present" not in url, timeout=WAIT_MS)
    assert "present" not in page.url
    settle(page)
    page.close()


MAP_JS = "document.querySelector('.js-plotly-plot')"


def test_the_map_draws_cluster_names_density_contours_and_search_rings(app_url, browser, tmp_path, start_app):
    from playwright.sync_api import expect

    page = open_map(browser, app_url)
    # Names are placed on the UMAP layout (earlier tests add items, placed in the background).
    page.get_by_text(re.compile("trustworthiness")).first.wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => !document.body.innerText.includes('Placing ')", timeout=WAIT_MS)
    settle(page)
    map_drawn(page)
    labels = page.locator(".js-plotly-plot").first.locator(".annotation-text")
    expect(labels.first).to_be_visible(timeout=WAIT_MS)
    names = labels.all_text_contents()
    assert len(set(names)) == len(names) and all(" · " in n for n in names)  # c-TF-IDF keywords
    # Drawn where they do not cover each other (the largest clusters' names first).
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, (a, b)
    # Density: contour lines under the points, drawn from a small grid.
    settle(page)
    page.get_by_role("combobox", name="Density contours").click()  # opens the list: no rerun
    act(page, lambda: page.get_by_role("option", name="synthetic", exact=True).click())
    page.wait_for_function(f"() => {MAP_JS}.querySelectorAll('.contourlayer path').length > 0", timeout=WAIT_MS)
    # Search by words: the matches are ringed on the map and listed.
    word = read_records(settings.get("demo_file"))[0]["text"].split()[1].lower()
    box = page.get_by_role("textbox", name="Search the items")
    box.fill(word)
    act(page, lambda: box.press("Enter"))
    page.get_by_text(re.compile(r"^\d+ matches, ringed on the map$")).wait_for(timeout=WAIT_MS)
    rings = page.evaluate(f"() => {MAP_JS}._fullData.filter(t => t.name === 'found / picked').map(t => t._length)")
    # Every item in the app's database counts: earlier tests in this module add some.
    texts = DuckStore(start_app.databases[app_url]).items()["text"]
    expected = int(texts.str.lower().str.contains(word, regex=False).sum())
    assert rings == [expected]
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    # A click on an item (the map opens in pan mode, where a click selects) lists its neighbours.
    target = page.locator(".js-plotly-plot").first.locator(".scatterlayer .point").nth(10)
    target.scroll_into_view_if_needed()  # a mouse click off screen hits nothing
    point = target.bounding_box()
    act(page, lambda: page.mouse.click(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2))
    page.get_by_role("heading", name="Nearest items").wait_for(timeout=WAIT_MS)
    page.get_by_role("heading", name="1 selected").wait_for(timeout=WAIT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_a_large_map_is_updated_in_place_and_a_click_on_it_lists_neighbours(browser, monkeypatch, tmp_path):
    """Past ``map_view_points`` points the map is drawn by pages/mapview.py's component (here every
    map: the threshold is 0): a filter redraws the same plot in place, and a click selects. Its
    server is stopped at the end (its layout and metrics threads do not run beside later tests)."""
    monkeypatch.setenv("SYNTH_MAP_VIEW_POINTS", "0")
    url, proc, log = _start_app(tmp_path)
    try:
        _large_map_in_place(browser, url)
    finally:
        stop_app(proc, log)


def _large_map_in_place(browser, url: str) -> None:
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector('iframe[src*="mapview"]', timeout=WAIT_MS)
    frame = next(f for f in page.frames if "mapview" in f.url)
    page.wait_for_function("() => !document.body.innerText.includes('Showing a PCA preview')", timeout=WAIT_MS)
    settle(page)
    assert frame.wait_for_function(MAP_DRAWN_JS, arg=0, timeout=WAIT_MS).json_value() == _demo_count()
    assert page.locator(".js-plotly-plot").count() == 2  # the linked histograms; the map is in the frame
    frame.evaluate("document.querySelector('.js-plotly-plot').dataset.mark = 'first plot'")
    # A regex filter: the same plot (its mark kept), now with the matching items only.
    texts = [r["text"] for r in read_records(settings.get("demo_file"))]
    expected = sum(bool(re.search("jacket", t, re.I)) for t in texts)
    assert 0 < expected < len(texts)
    box = page.get_by_label("Keep only texts matching (regex)")
    box.fill("jacket")
    act(page, lambda: box.press("Enter"))
    drawn = frame.wait_for_function(f"() => ({MAP_DRAWN_JS})(0) === {expected}", timeout=WAIT_MS)
    assert drawn.json_value() is True
    assert frame.evaluate("document.querySelector('.js-plotly-plot').dataset.mark") == "first plot"
    # A click on an item selects it and lists its neighbours.
    frame.locator(".js-plotly-plot").scroll_into_view_if_needed()  # a mouse click off screen hits nothing
    target = frame.locator(".scatterlayer .point").nth(3).bounding_box()  # page coordinates
    act(page, lambda: page.mouse.click(target["x"] + target["width"] / 2, target["y"] + target["height"] / 2))
    page.get_by_role("heading", name="Nearest items").wait_for(timeout=WAIT_MS)
    page.get_by_role("heading", name="1 selected").wait_for(timeout=WAIT_MS)
    assert frame.evaluate("document.querySelector('.js-plotly-plot').dataset.mark") == "first plot"
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


# Every page by its URL and its title: the app is offline, so no page may load anything from another host.
PAGES = {"explore": "Diversity map", "generate": "Generate", "review": "Review", "prompts": "Prompt versions",
         "compare": "Compare A/B", "metrics": "Metrics", "duplicates": "Near-duplicates", "export": "Export",
         "sql": "SQL console", "explore?present=1": "Diversity map"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def visit_every_page(browser, url: str, check=None) -> list[str]:
    """Open each page in its own tab (a fresh session, as a bookmark would), wait until it is drawn
    and idle, call ``check(page, path)``; every URL the browser requested, in order."""
    requested: list[str] = []
    for path, title in PAGES.items():
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=WAIT_MS)
        settle(page)
        if path.startswith("explore"):
            map_drawn(page)
        assert page.locator('[data-testid="stException"]').count() == 0, path
        if check:
            check(page, path)
        page.close()
    return requested


def other_hosts(urls: list[str]) -> list[str]:
    """The URLs that leave this machine (data: and blob: URLs never do)."""
    from urllib.parse import urlparse

    return [u for u in urls if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL_HOSTS]


def test_no_page_loads_anything_from_another_host(app_url, browser):
    external = other_hosts(visit_every_page(browser, app_url))
    assert external == [], "requests to other hosts:\n" + "\n".join(external)


def _field(page, label: str):
    return page.locator('[data-testid="stMainBlockContainer"]').get_by_label(label, exact=True)


def _type(page, label: str, value: str, commit: str = "Tab") -> None:
    box = _field(page, label)
    box.fill(value)
    act(page, lambda: box.press(commit))  # the value reaches the app before the next click


def test_studio_previews_runs_in_the_background_while_the_user_leaves_and_cancels(
        start_app, browser, make_server):
    srv = make_server(latency_s=0.4)
    url = start_app()
    db = DuckStore(start_app.databases[url])
    page = browser.new_page()
    page.goto(f"{url}/studio")
    page.get_by_text("Rendered prompts").wait_for(timeout=WAIT_MS)
    settle(page)
    _type(page, "Model (litellm)", "openai/test-model")
    _type(page, "API base (optional)", srv.api_base)
    _type(page, "Prompt template", "Tell me one thing about {animal}.")
    _type(page, "{animal}", "owls\nbats\nmoles")
    page.get_by_text("Tell me one thing about owls.").first.wait_for(timeout=WAIT_MS)  # rendered, no call
    assert not srv.config.requests
    page.get_by_role("button", name="Preview", exact=True).click()
    page.get_by_text("Preview: 3 items").wait_for(timeout=WAIT_MS)
    assert len(srv.config.requests) == 3 and "browser-owls" not in db.runs()["name"].tolist()
    settle(page)

    _type(page, "Items per run", "30", commit="Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Generating", exact=False).first.wait_for(timeout=WAIT_MS)
    sidebar.get_by_role("link", name="Metrics").click()  # leave the page while the batch runs
    page.get_by_role("heading", name="Metrics").first.wait_for(timeout=WAIT_MS)
    sidebar.get_by_text("done in", exact=False).first.wait_for(timeout=WAIT_MS)  # it went on, and finished
    run = db.runs().iloc[-1]
    assert run["n_items"] == 30 and run["status"] == "complete"
    assert len(srv.config.requests) == 3 + 27  # the preview's three came from the cache
    sidebar.get_by_role("link", name="Studio").click()
    page.get_by_text("Highlighted: the newest batch").wait_for(timeout=WAIT_MS)
    assert _field(page, "Prompt template").input_value() == "Tell me one thing about {animal}."

    settle(page)
    _type(page, "Items per run", "300", commit="Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    # One click cancels, though the page runs whole every few seconds as the batch lands: the
    # button is not in a polling fragment (a click there while the page runs may be lost,
    # streamlit/streamlit#10928).
    cancel = sidebar.get_by_role("button", name="Cancel").first
    cancel.wait_for(timeout=WAIT_MS)
    cancel.click()
    cancelled = sidebar.get_by_text("cancelled", exact=False).first
    cancelled.wait_for(timeout=WAIT_MS)
    run = db.runs().iloc[-1]
    assert run["status"] == "cancelled" and 0 < run["n_items"] < 300
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


WRITING_JS = """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
  .some(e => e.innerText.trim().endsWith("writing…"))"""


def test_studio_preview_with_the_embedded_model_shows_items_as_they_are_written(start_app, browser):
    url = start_app()
    page = browser.new_page()
    page.goto(f"{url}/studio")
    page.get_by_text("Rendered prompts").wait_for(timeout=WAIT_MS)
    settle(page)
    assert _field(page, "Model (litellm)").input_value() == "local/smollm2-135m"
    _type(page, "Max tokens", "256")
    page.get_by_role("button", name="Preview", exact=True).click()
    page.wait_for_function(WRITING_JS, timeout=WAIT_MS)  # text on screen before the item is done
    page.get_by_text("Preview: 3 items").wait_for(timeout=WAIT_MS)
    settle(page)
    assert not page.evaluate(WRITING_JS)  # every item is now finished, shown with its tokens
    for n in (1, 2, 3):
        page.get_by_text(re.compile(rf"^#{n} \(product = .*\) · \d+ tokens · (stop|length) · \d+ ms$")).wait_for(
            timeout=WAIT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
