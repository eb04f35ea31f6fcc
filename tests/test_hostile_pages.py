"""Every page on a database whose names and texts are markup: each shows them literally.

Run, prompt, version, cluster and tag names and item texts all carry an image link, a colour
directive, KaTeX, a script tag, a link and bold. A markdown element (or a widget label, which is
markdown too) must receive them escaped; in a real browser nothing may be fetched from the
image's address and no script may run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from conftest import ROOT, private_copy, wait_for_jobs
from openai_server import OpenAITestServer, ServerConfig
from streamlit.testing.v1 import AppTest

from pages.widgets import BUG_NOTE
from synth.generate.config import RunConfig
from synth.kernel.text import literal_markdown
from synth.store import DuckStore
from synth.workflows.pipeline import generate_run, import_run, load_dataset, map_points
from synth.workflows.versions import list_versions

HOSTILE = ["![x](http://127.0.0.1:9/p.png)", ":red[x]", "$x$", "<script>window.__pwned=1</script>",
           "[link](http://127.0.0.1:9/)", "**bold**"]
ALL = " ".join(HOSTILE)
ESCAPED = literal_markdown(ALL)
# What would be markup if it reached a markdown renderer as it is.
UNESCAPED = ["![x](", ":red[", "$x$", "<script", "[link](", "**bold**", "http://127.0.0.1:9"]
# Elements whose strings Streamlit never reads as markdown.
PLAIN = {"text", "code", "json", "arrow_data_frame", "plotly_chart", "selectbox", "multiselect",
         "text_area", "text_input"}  # an input's value is plain; its label is checked below
LABELS = ("label", "help")
TIMEOUT = 240
PAGES = ["explore", "studio", "generate", "review", "prompts", "compare", "metrics", "duplicates", "export", "sql"]


def build_hostile_database(path, demo_db_file) -> DuckStore:
    """The demo data plus runs, prompt versions, clusters, tags and items all named with markup."""
    shutil.copy(demo_db_file, path)
    store = DuckStore(path)
    config = ServerConfig(reply=lambda n, prompt: f"{ALL} reply {n}")  # near-identical: a collapse alarm
    with OpenAITestServer(config) as server:
        cfg = dict(template=f"Write about {{topic}}. {ALL}", variables={"topic": HOSTILE}, n=6,
                   model="openai/test-model", api_base=server.api_base, max_tokens=20, prompt_name=ALL)
        generate_run(store, RunConfig(**cfg, run_name=f"{ALL} run A", version_label=f"{ALL} first"))
        generate_run(store, RunConfig(**{**cfg, "template": f"Describe {{topic}}. {ALL}"},
                                      run_name=f"{ALL} run B", version_label=f"{ALL} second"))
    real = path.parent / "reference.csv"
    pd.DataFrame({"text": [f"{ALL} a real note number {i} about {w}" for i, w in
                           enumerate(["tea", "rain", "owls", "maps", "bread", "kites", "tides", "jazz"])]}
                 ).to_csv(real, index=False)
    import_run(store, real, run_name=f"{ALL} reference", reference=True)
    items = store.items()
    store.add_tags(items["item_id"].tolist(), HOSTILE)
    clustering = load_dataset(store).clustering
    labels = store.cluster_labels(clustering.clustering_id)
    labels["llm_label"] = [f"{ALL} cluster {c}" for c in labels["cluster_id"]]
    labels["llm_model"] = "hand-named"
    store.save_cluster_labels(clustering.clustering_id, labels)
    map_points(store, background=False)  # a stored layout: no page waits for one
    return store


@pytest.fixture(scope="module")
def hostile_db_file(tmp_path_factory, demo_db_file):
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    build_hostile_database(path, demo_db_file)
    return path


@pytest.fixture
def hostile_store(tmp_path, hostile_db_file) -> DuckStore:
    """A private copy of the hostile database at the SYNTH_DB path."""
    return private_copy(hostile_db_file, tmp_path)


def markdown_strings(node, found: list | None = None) -> list[tuple[str, str]]:
    """(element type, string) for every string of the page that Streamlit renders as markdown:
    bodies of markdown, captions, alerts, headings and toasts; labels and help of every element
    (widgets, expanders, tabs, metrics, status); radio options and progress texts."""
    found = [] if found is None else found
    proto, kind = getattr(node, "proto", None), getattr(node, "type", "")
    if proto is not None:
        names = LABELS if kind in PLAIN else LABELS + ("body", "text")
        found += [(kind, v) for name in names if isinstance(v := getattr(proto, name, None), str) and v]
        if kind == "radio":
            found += [(kind, option) for option in proto.options]
    for child in getattr(node, "children", {}).values():
        markdown_strings(child, found)
    return found


def assert_escaped(at: AppTest, page: str) -> list[str]:
    """No exception, and no markdown string holds the markup unescaped; the strings."""
    assert not at.exception, (page, [e.value for e in at.exception])
    strings = markdown_strings(at._tree)
    assert strings, page
    bad = [(kind, s) for kind, s in strings for raw in UNESCAPED if raw in s]
    assert not bad, (page, bad)
    return [s for _, s in strings]


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page != "explore":
        at.switch_page(f"pages/{page}.py").run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_hostile_names_only_escaped(hostile_store, page):
    at = open_page(page)
    strings = assert_escaped(at, page)
    assert not at.error, (page, [e.value for e in at.error])
    if page in ("explore", "compare", "prompts"):  # where names reach markdown: there, literally
        assert any(ESCAPED in s for s in strings), (page, strings)


def test_presentation_mode_and_the_gap_button_show_cluster_names_escaped(hostile_store, monkeypatch):
    monkeypatch.setenv("SYNTH_COMPARE_MIN_ITEMS", "6")  # the hostile runs are small: let the alarm compare them
    at = open_page("explore", present="1")
    strings = assert_escaped(at, "explore?present=1")
    assert any(f"**{ESCAPED} cluster " in s for s in strings)  # the typical items' cluster headings
    at = open_page("explore")
    assert_escaped(at, "explore")
    assert at.button(key="explore_fill_gap").label.startswith(f"Fill the biggest gap: {ESCAPED} cluster ")
    assert any(f"Run **{ESCAPED} run A**" in w.value for w in at.warning)  # the collapse alarm


def test_generate_shows_the_prompt_its_versions_and_a_new_run_escaped(hostile_store):
    at = open_page("generate")
    at.text_input(key="generate_prompt_name").set_value(ALL).run()
    strings = assert_escaped(at, "generate")
    assert any(f"Start from a saved version of {ESCAPED}" == s for s in strings)
    assert any(f"new version** of {ESCAPED}" in s for s in strings)
    at.selectbox(key="generate_technique").set_value("symbolic").run()
    at.number_input(key="generate_n").set_value(2)
    at.text_input(key="generate_run_name").set_value(f"{ALL} made here")
    at.button(key="generate_button").click().run()
    wait_for_jobs(at)
    assert_escaped(at, "generate")
    assert not at.error, [e.value for e in at.error]
    assert f"Run **{literal_markdown(ALL + ' made here')}** saved" in at.success[0].value


def test_prompts_and_compare_show_two_hostile_versions_escaped(hostile_store):
    versions = list_versions(hostile_store, ALL)
    assert [v.label for v in versions] == [f"{ALL} first", f"{ALL} second"]
    at = open_page("prompts")
    at.selectbox(key="prompts_name").set_value(ALL).run()
    assert any(m.value.startswith(f"**{literal_markdown(versions[1].title)}**") for m in at.markdown)
    assert_escaped(at, "prompts")
    at = open_page("compare")
    at.selectbox(key="compare_a").set_value(versions[0].prompt_id)
    at.selectbox(key="compare_b").set_value(versions[1].prompt_id).run()
    assert_escaped(at, "compare")
    assert not at.error, [e.value for e in at.error]


def test_an_error_quoting_user_input_is_escaped(hostile_store):
    at = open_page("review")
    at.text_input(key="review_judge_model").set_value(ALL)
    at.button(key="review_judge").click().run()
    wait_for_jobs(at)  # the judge runs in the background: its error shows when it ends
    assert_escaped(at, "review")
    assert at.error and any(ESCAPED in e.value for e in at.error), [e.value for e in at.error]


def test_an_unexpected_exception_is_a_short_error_and_a_logged_traceback(caplog):
    def script():
        import streamlit as st

        from pages.widgets import call_ui, stop_on_error

        assert call_ui(lambda: {}["![x](http://127.0.0.1:9/p.png)"]) is None
        st.write("the page goes on")
        with stop_on_error("loading the thing"):
            raise ZeroDivisionError("division by zero")
        st.write("never drawn")

    with caplog.at_level(logging.ERROR, logger="pages.widgets"):
        at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == [
        "Something went wrong while running &lt;lambda&gt; (KeyError: '\\!\\[x\\](http\u2060://127.0.0.1:9/p.png)'). "
        + BUG_NOTE,
        "Something went wrong while loading the thing (ZeroDivisionError: division by zero). " + BUG_NOTE]
    assert [m.value for m in at.markdown] == ["the page goes on"]
    logged = [r for r in caplog.records if r.name == "pages.widgets"]
    assert [r.exc_info[0] for r in logged] == [KeyError, ZeroDivisionError]
    assert all("Traceback" not in e for e in errors)


def test_an_exception_no_page_caught_is_an_error_not_a_traceback(store):
    def script():
        from pages.shell import app_run

        with app_run():
            raise RuntimeError("<b>not caught by the page</b>")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Something went wrong while drawing this page (RuntimeError: &lt;b&gt;not caught by the page&lt;/b&gt;). "
        + BUG_NOTE]


@pytest.mark.slow
def test_a_browser_on_the_hostile_database_fetches_nothing_and_runs_no_script(tmp_path, hostile_db_file):
    from appserver import CHROMIUM, launch_browser, start_app, stop_app

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    from test_browser import other_hosts, visit_every_page

    db = tmp_path / "hostile.duckdb"
    shutil.copy(hostile_db_file, db)
    url, proc, log = start_app(tmp_path, db=db)
    shown: dict[str, str] = {}

    def check(page, path):
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        assert page.locator('img[src*="127.0.0.1:9/"]').count() == 0, path
        assert page.locator('a[href^="http://127.0.0.1:9/"]').count() == 0, path  # bare links too
        assert page.locator(".katex").count() == 0, path
        shown[path] = page.locator('[data-testid="stApp"]').inner_text().replace("\u2060", "")  # invisible

    try:
        with sync_playwright() as p:
            context = launch_browser(p, tmp_path / "profile")
            requested = visit_every_page(context, url, check)
            context.close()
    finally:
        stop_app(proc, log)
    assert [u for u in requested if urlparse(u).port == 9] == []
    assert other_hosts(requested) == []
    for page in ("explore", "compare", "prompts", "explore?present=1"):
        assert ALL in shown[page], page  # the markup, as literal text
