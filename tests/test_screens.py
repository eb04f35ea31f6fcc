"""Every page, screenshotted at 1440 and 1024 px wide in headless chromium, fails on what a person
would see as broken: a horizontal scrollbar, a `None`, `null` or `nan` shown as a value, or an
exception box.

One app server (its own database, the demo loaded by the app itself) for the module; each page is
opened in two fresh tabs, one per width, loaded side by side; each is waited for (the app idle, the
lazy tables and charts drawn, the map drawn in full on Explore), screenshotted into ``tmp_path`` and,
when ``SYNTH_SCREENSHOTS`` names a folder, there as ``explore-1440.png``, ``explore-present-1024.png``
and so on, then checked. Streamlit scrolls its main area, not the document, so the full-page
screenshot is taken with the window made as tall as that area's content (after the checks, which
see the window at its real height).

What is checked, and where:
  * horizontal overflow: the document scrolling sideways; any scroll container of the page's own
    layout (stMain, the sidebar, a column, an expander...) that scrolls sideways; any visible
    element reaching past the window's left or right edge that no element of its own clips. The
    insides of plotly charts and st.dataframe grids (their own canvases and scrollers), text that
    scrolls inside an input, and code blocks (st.code scrolls long lines by design) are left out.
  * `None`, `null` (whole words, case-sensitive) and `nan` (a whole word, any case) in: the visible
    text (innerText) of the main area and the sidebar; every cell of every st.dataframe grid (glide
    data grid draws on a canvas, so the cells are read from the grid's own getCellContent, which
    is what it paints, every row and not only those scrolled into view; a missing value, which the
    grid paints as a grey "None", counts as one); plotly charts' drawn SVG text (titles, ticks,
    legend, annotations: part of the innerText) and their hover texts and trace names (from the
    chart's _fullData); any open dialog.
  * an exception box: Streamlit's stException, the text "Traceback", the app's own box for an
    unexpected error ("Something went wrong while ...", see pages/widgets.error_text), or
    Streamlit's "Page not found" dialog (a wrong URL, shown over the page it falls back to).
Not checked: help tooltips and popovers (drawn only on hover), hover labels drawn from a
hovertemplate with customdata, the options of a closed select box, text inside a collapsed
expander or an unselected tab (not shown), images, and what a page shows only after a click.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from appserver import APP_IDLE_JS, MAP_DRAWN_JS
from test_browser import WAIT_MS, app_url, browser, start_app  # noqa: F401  (fixtures, shared)

# name (of the screenshot): (URL path, the page's title). Explore, the default page, is served at
# the root: Streamlit ignores a default page's url_path, and /explore shows "Page not found".
PAGES = {"explore": ("", "Diversity map"), "studio": ("studio", "Studio"), "generate": ("generate", "Generate"),
         "review": ("review", "Review"), "prompts": ("prompts", "Prompt versions"),
         "compare": ("compare", "Compare A/B"), "metrics": ("metrics", "Metrics"),
         "duplicates": ("duplicates", "Near-duplicates"), "export": ("export", "Export"),
         "sql": ("sql", "SQL console"), "explore-present": ("?present=1", "Diversity map")}
WIDTHS = (1440, 1024)
HEIGHT = 900

# Idle, as the other browser tests wait for, and also drawn: Streamlit loads st.dataframe lazily
# (a stSkeleton stands in until the grid's code is there), and a shown grid has its canvas.
DRAWN_JS = """() => (APP_IDLE)()
  && !document.querySelector('[data-testid="stSkeleton"]')
  && Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'))
       .every((g) => !g.checkVisibility() || g.querySelector('canvas'))
  && Array.from(document.querySelectorAll('.js-plotly-plot'))
       .every((gd) => !gd.checkVisibility() || !!gd._fullLayout)""".replace("APP_IDLE", APP_IDLE_JS)

# Horizontal overflow. Returns one line per problem.
OVERFLOW_JS = r"""() => {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const se = document.scrollingElement;
  if (se.scrollWidth > se.clientWidth + 1) {
    problems.push(`the page scrolls sideways: document ${se.scrollWidth} px wide in a ${se.clientWidth} px window`);
  }
  const name = (el) => {
    const id = el.dataset && el.dataset.testid ? `[${el.dataset.testid}]` : "";
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/)[0] : "";
    const text = (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60);
    return `${el.tagName.toLowerCase()}${id}${cls}${text ? ` "${text}"` : ""}`;
  };
  // Their insides are theirs: plotly's SVG layers and glide data grid's scroller and canvases
  // overflow by design; an input scrolls its own text; st.code scrolls a long line.
  const OWN = '.js-plotly-plot, [data-testid="stDataFrame"], [data-testid="stTable"] table, input, textarea, '
    + 'select, [data-testid="stCode"], pre, [data-baseweb="popover"], [data-testid="stTooltipContent"]';
  // the sidebar's resize handle straddles its edge by design
  const EDGE = '[data-testid="stSidebarResizeHandle"], :has(> [data-testid="stSidebarResizeHandle"])';
  const root = document.querySelector('[data-testid="stApp"]') || document.body;
  // the page's own layout: clipping by these is no excuse, it is the window's edge
  const LAYOUT = '[data-testid="stApp"], [data-testid="stAppViewContainer"], [data-testid="stMain"], '
    + '[data-testid="stMainBlockContainer"], [data-testid="stSidebar"], [data-testid="stSidebarContent"], '
    + '[data-testid="stSidebarUserContent"]';
  const AREAS = '[data-testid="stMain"], [data-testid="stSidebarContent"], [data-testid="stSidebar"]';
  const clips = (s) => s.overflowX !== "visible" || s.contain.includes("paint");
  const reported = [];
  for (const el of root.querySelectorAll("*")) {
    if (el.parentElement && el.parentElement.closest(OWN)) continue;
    if (reported.some((r) => r.contains(el))) continue;
    const style = getComputedStyle(el);
    if (!el.checkVisibility({visibilityProperty: true})) continue;  // not shown: closed expanders too
    // a scroll container that scrolls sideways: a scrollbar on the page
    if ((style.overflowX === "auto" || style.overflowX === "scroll") && !el.matches(OWN)
        && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`${name(el)} scrolls sideways: ${el.scrollWidth} px of content in ${el.clientWidth} px`);
    }
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || el.matches(LAYOUT) || el.matches(EDGE)) continue;
    // the area it is drawn in: the main area or the sidebar (without its scrollbar), else the window
    const area = el.parentElement && el.parentElement.closest(AREAS);
    const ar = area ? area.getBoundingClientRect() : {left: 0};
    const left = Math.max(ar.left, 0);
    const right = Math.min(area ? ar.left + area.clientWidth : vw, vw);
    const boxOut = r.right > right + 1 || r.left < left - 1;
    // its box is inside, but what it holds (a long unbroken line, say) spills out of it: the
    // deepest such element is the one to name
    const spills = (e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === "visible"
      && e.getBoundingClientRect().left + e.scrollWidth > right + 1;
    const contentOut = !boxOut && spills(el) && !Array.from(el.children).some((c) => {
      const cr = c.getBoundingClientRect();
      return cr.right > right + 1 || spills(c);
    });
    if (!boxOut && !contentOut) continue;
    // past an edge of its area: a problem unless an element of its own, not the page's layout,
    // cuts it off (text cut short with an ellipsis, a chart's own layers)
    let clipped = false;
    for (let a = el.parentElement; a && a !== root; a = a.parentElement) {
      if (clips(getComputedStyle(a))) {
        clipped = !a.matches(LAYOUT);
        break;
      }
    }
    if (clipped) continue;
    reported.push(el);
    const where = area ? area.dataset.testid : "window";
    problems.push(boxOut
      ? `${name(el)} reaches past the edge of the ${where}: ${Math.round(r.left)}..${Math.round(r.right)} px, `
        + `the area being ${Math.round(left)}..${Math.round(right)} px`
      : `${name(el)} holds content ${el.scrollWidth} px wide in a ${el.clientWidth} px box, reaching past the `
        + `edge of the ${where} (${Math.round(right)} px)`);
  }
  return problems;
}"""

# The text a person can see, by where it is.
TEXTS_JS = r"""() => {
  const out = [];
  const shown = (el) => !!el && el.checkVisibility({visibilityProperty: true});
  for (const [where, sel] of [["main area", '[data-testid="stMain"]'], ["sidebar", '[data-testid="stSidebar"]'],
                              ["dialog", '[role="dialog"]']]) {
    for (const el of document.querySelectorAll(sel)) {
      if (shown(el)) out.push([where, el.innerText]);  // innerText of a hidden element is all its text
    }
  }
  // st.dataframe: the cells the grid paints, from its own getCellContent, found on the React
  // fiber of the grid (glide data grid's DataEditor props), every row.
  document.querySelectorAll('[data-testid="stDataFrame"]').forEach((g, n) => {
    const where = `table ${n + 1}`;
    const key = Object.keys(g).find((k) => k.startsWith("__reactFiber"));
    const stack = key ? [g[key].child] : [];
    let props = null;
    for (let seen = 0; stack.length && seen < 5000 && !props; seen++) {
      const f = stack.pop();
      if (!f) continue;
      const p = f.memoizedProps;
      if (p && typeof p.getCellContent === "function" && Array.isArray(p.columns) && typeof p.rows === "number") {
        props = p;
        break;
      }
      stack.push(f.sibling, f.child);
    }
    if (!props) {
      out.push([where + (shown(g) ? "" : " (hidden)"), "", "unread"]);
      return;
    }
    const lines = [props.columns.map((c) => c.title || "").join(" | ")];
    const rows = Math.min(props.rows, 5000);
    for (let r = 0; r < rows; r++) {
      const cells = [];
      for (let c = 0; c < props.columns.length; c++) {
        const cell = props.getCellContent([c, r]);
        let text = cell.isMissingValue ? "None" : (cell.displayData ?? "");
        if (Array.isArray(text)) text = text.join(", ");
        if (typeof text !== "string") text = String(text);
        cells.push(text);
      }
      lines.push(`row ${r + 1}: ` + cells.join(" | "));
    }
    out.push([where + (shown(g) ? "" : " (hidden)"), lines.join("\n"), "read"]);
  });
  // plotly: what it draws is SVG text, in the innerText above; what it shows on hover is not
  document.querySelectorAll(".js-plotly-plot").forEach((gd, n) => {
    if (!shown(gd)) return;
    const texts = [];
    for (const t of gd._fullData || []) {
      if (t.visible === false) continue;
      if (t.showlegend !== false && typeof t.name === "string") texts.push(t.name);
      for (const k of ["text", "hovertext"]) {
        const v = t[k];
        if (typeof v === "string") texts.push(v);
        else if (Array.isArray(v)) for (const s of v.slice(0, 20000)) if (s !== undefined && s !== "") texts.push(String(s));
      }
    }
    out.push([`hover texts of chart ${n + 1}`, texts.join("\n")]);
  });
  return out;
}"""

BAD_WORD = re.compile(r"\b(?:None|null)\b|\b(?i:nan)\b")
EXCEPTION_TEXT = re.compile(r"Traceback|Something went wrong while")


def bad_words(where: str, text: str) -> list[str]:
    """Each None/null/nan in ``text``, with the line it is on."""
    found = []
    for line in text.splitlines():
        for m in BAD_WORD.finditer(line):
            found.append(f"{m.group(0)!r} in the {where}: {line.strip()[:160]!r}")
    return found


def problems_on(page) -> list[str]:
    """What is wrong on the page as it is now shown, one line each."""
    problems = list(page.evaluate(OVERFLOW_JS))
    for box in page.locator('[data-testid="stException"]').all():
        problems.append("exception box: " + box.inner_text()[:300].replace("\n", " / "))
    for where, text, *read in page.evaluate(TEXTS_JS):
        if read == ["unread"]:
            problems.append(f"{where}: its cells could not be read (glide data grid changed?)")
        problems += bad_words(where, text)
        if where == "dialog" and "Page not found" in text:
            problems.append("a 'Page not found' dialog: " + text.replace("\n", " / ")[:200])
        if where in ("main area", "sidebar", "dialog"):
            for line in text.splitlines():
                if EXCEPTION_TEXT.search(line):
                    problems.append(f"exception text in the {where}: {line.strip()[:200]!r}")
    seen = set()
    return [p for p in problems if not (p in seen or seen.add(p))]


def full_page_screenshot(page, file: Path) -> None:
    """The whole page: Streamlit scrolls stMain, so the window is made as tall as its content for the
    shot and put back after."""
    size = page.viewport_size
    tall = page.evaluate("""() => Math.max(...['[data-testid="stMain"]', '[data-testid="stSidebarContent"]']
        .map((s) => document.querySelector(s)).filter(Boolean).map((e) => e.scrollHeight),
        document.scrollingElement.scrollHeight)""")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(tall), 12_000))})
    try:
        page.wait_for_function(DRAWN_JS, timeout=WAIT_MS)
        page.screenshot(path=str(file), full_page=True)
    finally:
        page.set_viewport_size(size)


def open_page(browser, url: str, name: str, width: int):  # noqa: F811  (a parameter, not the fixture)
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": HEIGHT})
    page.goto(f"{url}/{PAGES[name][0]}")
    return page


def wait_drawn(page, name: str) -> None:
    page.get_by_role("heading", name=PAGES[name][1], exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_function(DRAWN_JS, timeout=WAIT_MS)
    if name.startswith("explore"):
        page.wait_for_function(MAP_DRAWN_JS, arg=0, timeout=WAIT_MS)
        page.wait_for_function(DRAWN_JS, timeout=WAIT_MS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAGES))
def test_page_looks_right_at_1440_and_1024_px(app_url, browser, name, tmp_path):  # noqa: F811
    """The page in two fresh tabs side by side, one per width (the server runs both at once)."""
    keep = os.environ.get("SYNTH_SCREENSHOTS")
    tabs = {}
    try:
        for width in WIDTHS:
            tabs[width] = open_page(browser, app_url, name, width)
        failures = []
        for width, page in tabs.items():
            wait_drawn(page, name)
            found = problems_on(page)
            file = tmp_path / f"{name}-{width}.png"
            full_page_screenshot(page, file)
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(file, Path(keep) / file.name)
            failures += [f"{name} at {width} px: {p}" for p in found]
        assert not failures, "\n".join(failures)
    finally:
        for page in tabs.values():
            page.close()


# The checks themselves, on small pages of their own: each must find what it is for, and only that.
SNIPPET_HEAD = "<style>body { margin: 0; }</style>"


def _problems(browser, html: str, width: int = 800) -> list[str]:  # noqa: F811
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 600})
        page.set_content(SNIPPET_HEAD + html)
        return problems_on(page)
    finally:
        page.close()


def _app(main: str, sidebar: str = "") -> str:
    """The skeleton of a Streamlit page: stApp > stSidebar + stMain (which scrolls)."""
    return (f'<div data-testid="stApp" style="display:flex;height:100vh">'
            f'<section data-testid="stSidebar" style="width:200px;flex:none">{sidebar}</section>'
            f'<section data-testid="stMain" style="flex:1;min-width:0;overflow:auto">'
            f'<div data-testid="stMainBlockContainer">{main}</div></section></div>')


def test_the_checks_pass_a_clean_page(browser):  # noqa: F811
    html = _app("<h1>Metrics</h1><p>No items are in view; none were judged. Nonetheless, annulled, nanny.</p>"
                '<div data-testid="stHorizontalBlock" style="display:flex;gap:8px">'
                '<div style="flex:1">a</div><div style="flex:1">b</div></div>'
                '<input value="a very long value that scrolls inside its own box, as inputs do" style="width:80px">'
                '<div data-testid="stCode"><pre style="overflow:auto;width:100px">SELECT * FROM items -- long</pre></div>'
                '<div class="js-plotly-plot" style="overflow:hidden;width:100px">'
                '<div style="width:3000px">an SVG layer</div></div>'
                '<div style="overflow:hidden;width:100px"><div style="width:3000px">cut off inside</div></div>',
                sidebar="<p>Explore</p>")
    assert _problems(browser, html) == []


@pytest.mark.parametrize("text, word", [("Judge score: None", "None"), ("a null here", "null"),
                                         ("mean nan", "nan"), ("NaN tokens", "NaN"), ("(None)", "None")])
def test_the_checks_find_a_visible_none_null_or_nan(browser, text, word):  # noqa: F811
    problems = _problems(browser, _app(f"<p>{text}</p>"))
    assert len(problems) == 1 and problems[0].startswith(f"{word!r} in the main area"), problems
    assert _problems(browser, _app("<p>fine</p>", sidebar=f"<p>{text}</p>"))[0].startswith(f"{word!r} in the sidebar")
    # hidden text is not seen: a collapsed expander, a hidden sidebar
    assert _problems(browser, _app(f"<details><summary>More</summary><p>{text}</p></details>")) == []


def test_the_checks_do_not_see_a_hidden_sidebar(browser):  # noqa: F811
    html = _app("<p>fine</p>", sidebar="<p>None</p>").replace("width:200px;flex:none", "display:none")
    assert _problems(browser, html) == []


def test_the_checks_find_text_in_a_chart_drawn_or_on_hover(browser):  # noqa: F811
    chart = '<div class="js-plotly-plot"><svg width="200" height="50"><text x="5" y="20">%s</text></svg></div>'
    assert [p.split(":")[0] for p in _problems(browser, _app(chart % "nan"))] == ["'nan' in the main area"]
    hover = _app(chart % "fine") + """<script>document.querySelector('.js-plotly-plot')._fullData =
        [{name: "run a", text: ["ok", "x = None"], hovertext: "", showlegend: true}];</script>"""
    assert [p.split(":")[0] for p in _problems(browser, hover)] == ["'None' in the hover texts of chart 1"]


@pytest.mark.parametrize("html, what", [
    ('<div data-testid="stHorizontalBlock" style="display:flex;width:1200px"><div style="flex:1">wide</div></div>',
     "[stHorizontalBlock]"),
    ('<div style="width:900px;background:red">wide block</div>', "reaches past the edge of the stMain"),
    ('<div style="overflow-x:auto;width:300px"><div style="width:600px">wide table</div></div>', "scrolls sideways"),
    ('<div data-testid="stMarkdown"><div style="white-space:nowrap">%s</div></div>' % ("word " * 300),
     'div "word word'),
])
def test_the_checks_find_a_horizontal_overflow(browser, html, what):  # noqa: F811
    problems = _problems(browser, _app(html))
    assert problems and any(what in p for p in problems), problems


def test_the_checks_find_the_document_scrolling_sideways(browser):  # noqa: F811
    problems = _problems(browser, '<div style="width:1200px">wider than the window</div>')
    assert any(p.startswith("the page scrolls sideways") for p in problems), problems


@pytest.mark.parametrize("html", [
    '<div data-testid="stException"><p>ZeroDivisionError: division by zero</p></div>',
    "<pre>Traceback (most recent call last):\n  File ...</pre>",
    '<div role="alert"><p>Something went wrong while drawing this page (KeyError: x).</p></div>',
    '<section role="dialog"><h2>Page not found</h2><p>The page you have requested does not exist.</p></section>',
])
def test_the_checks_find_an_exception_box(browser, html):  # noqa: F811
    assert any("exception" in p or "Page not found" in p for p in _problems(browser, _app(html)))


def test_the_checks_read_every_cell_of_a_table_a_missing_value_included(browser):  # noqa: F811
    # The grid as the checks find it: a React fiber below the stDataFrame element whose props are
    # glide data grid's (columns, rows, getCellContent).
    table = _app('<div data-testid="stDataFrame" style="width:300px;height:100px"><canvas></canvas></div>') + """
      <script>
        const rows = [["a", "b"], ["c", null], ["nan", "d"]];
        document.querySelector('[data-testid="stDataFrame"]')["__reactFiber$test"] = {child: {sibling: {
          memoizedProps: {columns: [{title: "x"}, {title: "y"}], rows: 3,
            getCellContent: ([c, r]) => rows[r][c] === null ? {displayData: "", isMissingValue: true}
                                                           : {displayData: rows[r][c]}}}}};
      </script>"""
    assert [p.split(":")[0] for p in _problems(browser, table)] == ["'None' in the table 1", "'nan' in the table 1"]
    unread = _app('<div data-testid="stDataFrame"><canvas></canvas></div>')
    assert _problems(browser, unread) == ["table 1: its cells could not be read (glide data grid changed?)"]
