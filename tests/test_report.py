"""The stakeholder report: one self-contained HTML file, read as text and opened in headless chromium
with every network request blocked."""

import html
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest
from appserver import CHROMIUM, POINTS, launch_browser
from openai_server import OpenAITestServer, ServerConfig
from plotly.offline import get_plotlyjs

from synth.analysis.comparable import at_common_size, interval_text, run_samples
from synth.cli import main
from synth.generate.config import RunConfig
from synth.kernel.errors import SynthError
from synth.llm.licences import DISCLAIMER
from synth.outputs import report
from synth.outputs.report import build_report, write_report
from synth.store import DuckStore
from synth.workflows.pipeline import generate_run

PAYLOAD = "<script>window.__pwned=1</script><b>bold</b>"
RUN_PAYLOAD = '<img src=x onerror="window.__pwned=2">'
SYSTEM_PAYLOAD = "</pre><script>window.__pwned=3</script>"
SAFE_TEXTS = ["A calm review of a kettle that boils fast.", "Where is my parcel? It was due on Monday.",
              "The desk lamp is bright & warm, 5 stars."]


class Resources(HTMLParser):
    """Every tag with its attributes, and the text of every <style> and <script> element."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script"):
            self._inside = tag

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside == "style":
            self.styles.append(data)
        elif self._inside == "script":
            self.scripts.append(data)


def parse(document: str) -> Resources:
    parser = Resources()
    parser.feed(document)
    return parser


def metric_cell(document: str, metric: str, run_id: str) -> tuple[str, str]:
    """(text, class) of the metrics table cell of one metric and run."""
    row = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', document, re.S).group(1)
    cell = re.search(rf'<td class="([^"]*)" data-run="{run_id}">([^<]*)</td>', row)
    return html.unescape(cell.group(2)), cell.group(1)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, demo_db_file):
    """The report of a private copy of the demo database, written once for this module."""
    folder = tmp_path_factory.mktemp("report")
    shutil.copy(demo_db_file, folder / "demo.duckdb")
    store = DuckStore(folder / "demo.duckdb")
    result = write_report(store, folder / "demo.html", title="Demo dataset")
    return {"store": store, "path": folder / "demo.html", "result": result,
            "html": (folder / "demo.html").read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """A report of a small run whose model answered with markup, under a run name and a system
    prompt that are markup too, made on a local OpenAI-compatible server (``openai/`` + api_base)."""
    folder = tmp_path_factory.mktemp("hostile")
    store = DuckStore(folder / "hostile.duckdb")
    replies = [PAYLOAD, *SAFE_TEXTS]
    with OpenAITestServer(ServerConfig(reply=lambda n, prompt: replies[(n - 1) % len(replies)])) as server:
        cfg = RunConfig(template="Write about {thing}.", variables={"thing": ["a", "b", "c", "d"]}, n=4,
                        model="openai/test-model", api_base=server.api_base, system_prompt=SYSTEM_PAYLOAD,
                        run_name=RUN_PAYLOAD, concurrency=1)
        # In a worker thread: Playwright's sync API may already run an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            run_id = pool.submit(generate_run, store, cfg).result().run_id
    result = write_report(store, folder / "hostile.html", examples_per_cluster=10)
    item_id = store.items().set_index("text").loc[PAYLOAD, "item_id"]
    return {"store": store, "path": folder / "hostile.html", "result": result, "run_id": run_id,
            "item_id": item_id, "html": (folder / "hostile.html").read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory):
    """Headless chromium with the network off and every request that is not file:// aborted
    (and recorded, so a test can show none was made)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("SYNTH_REQUIRE_BROWSER"):
            raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    aborted: list[str] = []

    def block(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        context = launch_browser(p, tmp_path_factory.mktemp("report-profile"))
        context.route("**/*", block)
        context.set_offline(True)
        yield context, aborted
        context.close()


# -- the file itself ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_loads_nothing_from_anywhere_and_inlines_plotly(demo_report):
    document = demo_report["html"]
    parsed = parse(document)
    loading = [(tag, name, value) for tag, attrs in parsed.tags for name, value in attrs.items()
               if tag != "a" and name in ("src", "href", "srcset", "data", "poster", "xlink:href", "action")]
    assert loading == []  # no <script src>, <link href>, <img src>, <iframe>, ...
    assert not any(tag == "link" for tag, _ in parsed.tags)
    assert not any(tag == "meta" and "http-equiv" in attrs for tag, attrs in parsed.tags)
    bundle = get_plotlyjs()
    assert bundle in document  # plotly.js itself, inline
    assert any(bundle in script for script in parsed.scripts)
    outside_bundle = document.replace(bundle, "")
    assert "@import" not in outside_bundle and "url(" not in outside_bundle
    assert "cdn.plot.ly" not in outside_bundle
    css = "".join(parsed.styles) + "".join(attrs.get("style") or "" for _, attrs in parsed.tags)
    assert "@import" not in css and "url(" not in css
    # The only links are the licence notes' sources, as plain <a href>: nothing fetches them.
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert links == ["https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert 4_000_000 < demo_report["result"]["bytes"] == len(document.encode("utf-8")) < 8_000_000


def test_the_report_has_its_sections_in_order_and_the_licence_notes(demo_report):
    document = demo_report["html"]
    order = [document.index(f'id="{section}"') for section in
             ("summary", "map", "metrics", "examples", "prompts", "licences")]
    assert order == sorted(order) and document.index("<footer>") > order[-1]
    assert "<title>Demo dataset</title>" in document and "<h1>Demo dataset</h1>" in document
    assert "intrinsic evaluation" in document and "not how well a model trained on it performs" in document
    assert html.escape(DISCLAIMER) in document
    assert '<tr data-model="local/smollm2-135m">' in document and "Apache-2.0" in document
    # Headline numbers are the store's.
    items = demo_report["store"].items()
    cards = dict(re.findall(r'data-headline="([^"]+)"><div class="value">([^<]+)<', document))
    assert cards["items"] == f"{len(items):,}" and cards["runs"] == "6" and cards["models"] == "1"
    assert cards["tokens (prompt + completion)"] == f"{int(items.tokens_in.sum() + items.tokens_out.sum()):,}"
    assert cards["not reviewed yet"] == str((items["status"] == "new").sum())
    # Prompts as written, in <pre>, and one example group per cluster with its keyword label.
    assert "<pre>You write realistic customer support messages. Answer with the message only.</pre>" in document
    assert "<pre>Write a short {tone} customer review of a {product} that talks about its {aspect}.</pre>" in document
    groups = re.findall(r'<div class="group" data-cluster="(-?\d+)"><h3>([^<]+)</h3>', document)
    labels = demo_report["store"].frame("SELECT cluster_id, keywords FROM cluster_labels")
    assert len(groups) == len(labels) >= 2
    assert {html.unescape(label) for _, label in groups} == set(labels["keywords"])
    assert document.count('<li data-item="') == 3 * len(groups)


@pytest.mark.slow
def test_generated_markup_is_escaped_text(hostile_report):
    document = hostile_report["html"]
    assert PAYLOAD not in document and RUN_PAYLOAD not in document
    assert "<b>bold</b>" not in document and "<img" not in document
    item = re.search(rf'<li data-item="{hostile_report["item_id"]}"><div class="text">([^<]*)</div>', document)
    assert item.group(1) == html.escape(PAYLOAD)
    # four items: under the minimum, so the run's heading also says it is too small to compare
    assert (f'<th data-run="{hostile_report["run_id"]}">{html.escape(RUN_PAYLOAD)}'
            '<div class="help small">too small to compare</div></th>') in document
    assert SYSTEM_PAYLOAD not in document
    assert f"<h4>System prompt</h4><pre>{html.escape(SYSTEM_PAYLOAD)}</pre>" in document
    assert hostile_report["result"]["n_items"] == 4


def test_a_model_on_your_own_openai_compatible_server_is_not_noted_as_openai(hostile_report):
    row = re.search(r'<tr data-model="openai/test-model">(.*?)</tr>', hostile_report["html"], re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[1:4] == ["unknown", "unknown", "unknown"]  # maker, licence, training use: not OpenAI's terms


# -- in the browser -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_opens_offline_in_chromium_and_draws_every_item(demo_report, offline_browser):
    context, aborted = offline_browser
    page = context.new_page()
    page.goto(demo_report["path"].as_uri())
    n_items = demo_report["result"]["n_items"]
    assert n_items == len(demo_report["store"].items()) == 290
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length === {n_items}", timeout=30_000)
    assert page.evaluate(f"document.querySelectorAll('{POINTS}').length") == n_items
    assert page.locator(".js-plotly-plot .legend .traces").count() == 6  # one per run
    assert page.locator(".js-plotly-plot canvas").count() == 0  # SVG, no WebGL needed
    assert page.evaluate("navigator.onLine") is False
    assert aborted == []
    page.close()


@pytest.mark.slow
def test_markup_in_generated_text_does_not_run_in_the_browser(hostile_report, offline_browser):
    context, aborted = offline_browser
    page = context.new_page()
    page.goto(hostile_report["path"].as_uri())
    page.wait_for_function(f"document.querySelectorAll('{POINTS}').length === 4", timeout=30_000)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    shown = page.locator(f'li[data-item="{hostile_report["item_id"]}"] .text')
    assert shown.text_content() == PAYLOAD  # shown as text, character for character
    assert page.locator("main b, main img").count() == 0
    # The hover label shows the markup as text too.
    hovers = []
    for point in page.locator(POINTS).all():
        point.hover(force=True)
        page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
        hovers.append(page.locator(".hoverlayer .hovertext").first.text_content())
    assert any("<script>window.__pwned=1</script><b>bold</b>" in h for h in hovers)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert aborted == []
    page.close()


# -- the numbers --------------------------------------------------------------------------------


def test_the_metrics_table_shows_the_stored_values_at_the_shown_precision(demo_report):
    document, store = demo_report["html"], demo_report["store"]
    stored = store.metrics()
    decimals_seen = set()
    for row in stored[stored["name"].isin(["count", "distinct_2", "vendi_score", "self_bleu",
                                           "length_mean"])].itertuples():
        text, _ = metric_cell(document, row.name, row.run_id)
        decimals = len(text.split(".")[1]) if "." in text else 0
        decimals_seen.add(decimals)
        assert float(text.replace(",", "")) == pytest.approx(round(row.value, decimals), abs=1e-12), row
    assert {0, 1, 3} <= decimals_seen
    # A run is in bold on a size-dependent metric only when its interval at the common size beats
    # every other run's: on the demo's 40-50 item runs (m = 20) none does, though one has the top value.
    distinct = stored[stored["name"] == "distinct_2"]
    common = at_common_size(run_samples(store, list(distinct["run_id"])))
    assert common.m == 20 and common.best("distinct_2") is None
    classes = {rid: metric_cell(document, "distinct_2", rid)[1] for rid in distinct["run_id"]}
    assert [rid for rid, c in classes.items() if "best" in c] == []
    # the common-size table shows each run's mean and interval as measured independently here
    row = re.search(r'<tr data-common-metric="distinct_2">(.*?)</tr>', document, re.S).group(1)
    for rid in distinct["run_id"]:
        cell = re.search(rf'<td class="num" data-run="{rid}">([^<]*)</td>', row).group(1)
        assert html.unescape(cell) == interval_text(common.value(rid, "distinct_2"))
    assert "At a common size: 20 items" in document


@pytest.mark.slow
def test_a_run_too_small_to_compare_is_never_in_bold(demo_store, tmp_path):
    from synth.workflows.pipeline import import_run

    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in SAFE_TEXTS))
    tiny = import_run(demo_store, path, run_name="tiny").run_id
    document = build_report(demo_store, examples_per_cluster=0)
    stored = demo_store.metrics()
    distinct = stored[stored["name"] == "distinct_2"].set_index("run_id")["value"]
    assert distinct.idxmax() == tiny  # three short texts have the top value: the old rule crowned them
    cells = [metric_cell(document, name, tiny)[1] for name in ("distinct_1", "distinct_2", "self_bleu",
                                                              "near_duplicate_rate", "compression_ratio")]
    assert not any("best" in c for c in cells)
    assert re.search(rf'<th data-run="{tiny}">tiny<div class="help small">too small to compare</div></th>', document)


@pytest.mark.slow
def test_a_report_of_chosen_items_measures_those_items(demo_store):
    items = demo_store.items()
    first, second = items["run_id"].unique()[:2]
    chosen = (items[items["run_id"] == first]["item_id"].head(20).tolist()
              + items[items["run_id"] == second]["item_id"].head(10).tolist())
    document = build_report(demo_store, item_ids=chosen, examples_per_cluster=1)
    assert metric_cell(document, "count", first)[0] == "20"
    assert metric_cell(document, "count", second)[0] == "10"
    assert "measured on the items chosen for this report" in document
    assert sum(f'["{i}"]' in document for i in items["item_id"]) == 30  # the map's points


@pytest.mark.slow
def test_a_big_report_maps_a_seeded_sample_and_says_so(demo_store, monkeypatch):
    monkeypatch.setattr(report, "MAP_MAX_POINTS", 100)
    document = build_report(demo_store)
    assert "random sample of 100 of the 290 items" in document
    assert sum(f'["{i}"]' in document for i in demo_store.items()["item_id"]) == 100
    assert metric_cell(document, "count", demo_store.items()["run_id"].iloc[0])[0] == "50"  # metrics use all


# -- the CLI and the rules ----------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_cli_report_writes_the_file_and_reports_it(capsys, demo_store, tmp_path):
    out = tmp_path / "x.html"
    code, stdout, err = run(capsys, "report", "--db", demo_store.path, "--out", str(out), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["n_items"] == 290 and result["n_runs"] == 6 and result["out"] == str(out)
    assert out.stat().st_size == result["bytes"]
    code, stdout, err = run(capsys, "report", "--db", demo_store.path, "--out", str(out),
                            "--run", "support v1", "--run", "descriptions v1", "--title", "Two runs")
    assert code == 0, err
    assert re.fullmatch(rf"wrote 100 items to {re.escape(str(out))} \(\d+\.\d MB\)\n", stdout)
    assert "<h1>Two runs</h1>" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, message", [("x.pdf", "ending in .html or .htm"),
                                           ("missing/x.html", "does not exist")])
def test_cli_report_refuses_a_bad_out_and_writes_nothing(capsys, demo_store, tmp_path, name, message):
    folder = tmp_path / "out"
    folder.mkdir()
    code, stdout, err = run(capsys, "report", "--db", demo_store.path, "--out", str(folder / name))
    assert code == 1 and message in err and stdout == ""
    assert list(folder.iterdir()) == []


def test_no_items_is_an_error_and_leaves_no_file(store, tmp_path):
    with pytest.raises(SynthError, match="no items to report on"):
        write_report(store, tmp_path / "empty.html")
    assert not any(p.name.endswith((".html", ".htm")) or p.name.startswith(".report-") for p in tmp_path.iterdir())


def test_unknown_items_are_refused(demo_store):
    with pytest.raises(SynthError, match="1 of the given item ids are not in the database"):
        build_report(demo_store, item_ids=["it_nope"])


def test_unknown_runs_are_refused(demo_store):
    with pytest.raises(SynthError, match="No run called 'nope'"):
        build_report(demo_store, run_ids=["nope"])


def test_examples_per_cluster_must_be_in_range(demo_store):
    with pytest.raises(SynthError, match="examples_per_cluster must be between 0 and 50"):
        build_report(demo_store, examples_per_cluster=51)



def map_colours(document: str) -> dict[str, str]:
    """Trace name -> marker colour of the report's map, read from the figure in the HTML."""
    start = document.index(f'Plotly.newPlot(')
    start = document.index("[", document.index(f'"{report.MAP_DIV_ID}"', start))
    traces, _ = json.JSONDecoder().raw_decode(document[start:])
    return {t["name"]: t["marker"]["color"] for t in traces}


@pytest.mark.slow
def test_adding_a_run_keeps_the_colours_of_the_runs_in_the_report(demo_store):
    from synth.generate.ingest import import_records

    before = map_colours(build_report(demo_store, examples_per_cluster=1))
    run, items = import_records([{"text": t} for t in SAFE_TEXTS], run_name="a newer run")
    demo_store.save_run(run, items)
    after = map_colours(build_report(demo_store, examples_per_cluster=1))
    assert set(after) == set(before) | {"a newer run"}
    assert {name: after[name] for name in before} == before
    # A report of some runs colours them as the report of all of them does.
    items = demo_store.items()
    some = [r for r in items.loc[items["run_role"] != "reference", "run_id"].unique()[1::2]]
    chosen = map_colours(build_report(demo_store, run_ids=some, examples_per_cluster=1))
    assert chosen and all(after[name] == colour for name, colour in chosen.items())


# -- coverage of reference data and the map's cluster names -------------------------------------


def map_figure_spec(document: str) -> tuple[list, dict]:
    """The traces and the layout of the report's map, read from the figure in the HTML."""
    start = document.index("[", document.index(f'"{report.MAP_DIV_ID}"', document.index("Plotly.newPlot(")))
    decoder = json.JSONDecoder()
    traces, end = decoder.raw_decode(document[start:])
    layout, _ = decoder.raw_decode(document[start + end:].lstrip(", \n"))
    return traces, layout


def test_without_reference_data_the_report_says_so_in_one_sentence(demo_report):
    from synth.analysis.coverage import NO_REFERENCE

    section = re.search(r'<section id="coverage">(.*?)</section>', demo_report["html"], re.DOTALL).group(1)
    assert section == f"<h2>Coverage of the real data</h2><p>{html.escape(NO_REFERENCE)}</p>"


def test_the_map_names_its_largest_clusters(demo_report):
    from synth.outputs.plots import label_positions

    _, layout = map_figure_spec(demo_report["html"])
    labels = [a for a in layout.get("annotations", []) if a.get("name") == "cluster label"]
    names = set(demo_report["store"].frame("SELECT keywords FROM cluster_labels")["keywords"])
    assert len(labels) >= 2 and {html.unescape(a["text"]) for a in labels} <= names
    assert len(labels) == len(label_positions(report._choose(demo_report["store"], None, None).items))


@pytest.mark.slow
def test_the_report_shows_coverage_of_reference_data_with_names_escaped(store, tmp_path, monkeypatch, make_server):
    from test_coverage import three_topic_store

    from synth.analysis.clustering import current_clustering, name_clusters_with_llm
    from synth.outputs.plots import LABEL_CHARS, plot_text

    monkeypatch.setenv("SYNTH_CLUSTER_K", "3")
    three_topic_store(store, tmp_path)
    srv = make_server(reply=RUN_PAYLOAD)  # every cluster's name is markup, as a model might answer
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may already run an event loop in this thread
        pool.submit(name_clusters_with_llm, store, current_clustering(store), store.items(), "openai/test-model",
                    api_base=srv.api_base).result()
    document = build_report(store, examples_per_cluster=0)
    section = re.search(r'<section id="coverage">(.*?)</section>', document, re.DOTALL).group(1)
    assert "Recall: 67 % of the real items have a synthetic item nearby (16 of 24)." in section
    assert "Precision: 100 % of the synthetic items are near real items (16 of 16)." in section
    rows = re.findall(r'<tr data-cluster="\d+">(.*?)</tr>', section)
    name = html.escape(RUN_PAYLOAD)
    missed = (f'<td>{name}</td><td class="num">8</td><td class="num">0</td><td class="num">0 %</td>'
              '<td class="num">—</td>')
    covered = (f'<td>{name}</td><td class="num">8</td><td class="num">8</td><td class="num">100 %</td>'
               '<td class="num">100 %</td>')
    assert rows == [missed, covered, covered]
    assert RUN_PAYLOAD not in document and "<img" not in document
    # the map's cluster names are plotly text, escaped, so no tag is drawn
    _, layout = map_figure_spec(document)
    shown = RUN_PAYLOAD if len(RUN_PAYLOAD) <= LABEL_CHARS else RUN_PAYLOAD[:LABEL_CHARS] + "…"
    labels = [a["text"] for a in layout["annotations"] if a.get("name") == "cluster label"]
    assert labels and set(labels) == {plot_text(shown)}
