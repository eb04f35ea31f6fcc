"""A standalone stakeholder report: one HTML file with the map, the metrics and example items.

Reads: items with their map coordinates (``pipeline.map_points``), the dataset's clustering,
per-run metrics, coverage of reference data (``export.store_coverage``), the prompts and run
settings (``export.export_frame``) and the licence notes of the models. Writes: one ``.html``
file, atomically (a temporary file renamed into place).

The file opens offline: plotly.js is inlined, the CSS is inline and nothing refers to a URL that
a browser would fetch (the licence table's source links are plain links). The map is SVG, so it
draws without WebGL. Every generated text, run name and prompt is HTML-escaped: a model's output is
shown as text, never as markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import synth
from synth.analysis.clustering import (
    NOISE,
    Clustering,
    current_clustering,
    typical_items,
)
from synth.analysis.comparable import (
    COMMON_N_CAP,
    COMPARABLE_METRICS,
    TOO_SMALL,
    UNJUDGED_METRICS,
    CommonSize,
    Sample,
    at_common_size,
    interval_text,
)
from synth.analysis.coverage import WORST_COLUMNS, coverage_sentences, worst_rows
from synth.analysis.embedding import load_vectors
from synth.analysis.metrics import (
    METRIC_NAMES,
    METRICS,
    compute_all_metrics,
    measure_items,
)
from synth.analysis.projection import MapLayout
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import from_json, now
from synth.kernel.text import format_number, is_missing
from synth.llm.licences import DISCLAIMER
from synth.outputs import export, plots
from synth.outputs.export import export_frame, model_notes, write_atomically
from synth.store import DuckStore, in_session
from synth.workflows.pipeline import map_points

REPORT_SUFFIXES = (".html", ".htm")
# Past this many items the map shows a seeded sample: SVG stays responsive up to a few thousand points.
MAP_MAX_POINTS = 5000
MAX_EXAMPLES_PER_GROUP = 50
# Longer example texts are cut here (the map's hover and an export have them whole).
EXAMPLE_CHARS = 1500
DEFAULT_TITLE = "Synthetic data report"
MAP_DIV_ID = "synth-map"

INTRINSIC = ("This is an intrinsic evaluation: the metrics describe the data itself (how varied, how "
             "repetitive, how long, how valid it is), not how well a model trained on it performs.")
DIRECTION_TEXT = {1: "higher", -1: "lower", 0: "neither"}

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d2433;
       font: 18px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 28px 48px; background: #fff; }
h1 { font-size: 2.1em; line-height: 1.2; margin: 0 0 .2em; }
h2 { font-size: 1.5em; margin: 1.8em 0 .5em; padding-top: .6em; border-top: 2px solid #e3e6eb; }
h3 { font-size: 1.2em; margin: 1.4em 0 .4em; }
h4 { font-size: 1em; margin: 1em 0 .3em; color: #4a5568; }
p { margin: .4em 0 .8em; }
.date { color: #4a5568; margin: 0; }
.lede { font-size: 1.1em; background: #eef4fb; border-left: 5px solid #4C78A8; padding: .7em 1em; }
.note { color: #4a5568; font-size: .9em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 14px; }
.card { border: 1px solid #dde1e7; border-radius: 8px; padding: 12px 14px; }
.card .value { font-size: 1.7em; font-weight: 650; line-height: 1.2; }
.card .label { color: #4a5568; font-size: .9em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9em; margin: .5em 0 1em; }
th, td { border-bottom: 1px solid #e3e6eb; padding: 7px 9px; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #eaf5e9; }
td.metric code { font-size: .95em; }
td.metric { min-width: 17em; max-width: 24em; }
.help { color: #4a5568; font-size: .9em; }
td a { overflow-wrap: anywhere; }
ol.examples { padding-left: 1.4em; }
ol.examples li { margin: 0 0 1em; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: .6em .9em;
        background: #f8f9fb; border-left: 4px solid #bac3cf; border-radius: 3px; }
.meta { color: #4a5568; font-size: .85em; margin: .25em 0 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f8f9fb; border: 1px solid #e3e6eb;
      padding: .7em .9em; border-radius: 4px; font-size: .9em; }
footer { margin-top: 2.5em; padding-top: 1em; border-top: 2px solid #e3e6eb; color: #4a5568; font-size: .85em; }
@media print { body { background: #fff; } main { padding: 0; } h2 { break-before: auto; } }
"""


def _e(value) -> str:
    """Any value as escaped HTML text (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def format_value(value) -> str:
    """A metric value as the report shows it: three significant digits, thousands grouped."""
    return format_number(value, digits=3, missing="—", grouping=True)


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


@dataclass
class _Facts:
    items: pd.DataFrame  # the chosen items with x, y, prompt_label, cluster, cluster_name
    runs: pd.DataFrame  # their runs, oldest first
    layout: MapLayout
    clustering: Clustering
    run_order: list[str]  # every generated run's id, oldest first: what the run colours derive from


def _choose(store: DuckStore, run_ids: list[str] | None, item_ids: list[str] | None) -> _Facts:
    points, layout = map_points(store, background=False)
    if points.empty:
        raise SynthError("There are no items to report on. Generate or import some first.")
    wanted_runs = [store.resolve_run(r) for r in run_ids] if run_ids else None
    chosen = points
    if wanted_runs is not None:
        chosen = chosen[chosen["run_id"].isin(wanted_runs)]
    if item_ids is not None:
        unknown = sorted(set(item_ids) - set(points["item_id"]))
        if unknown:
            raise SynthError(f"{len(unknown)} of the given item ids are not in the database "
                             f"(e.g. {', '.join(unknown[:3])}). Pass ids of stored items.")
        chosen = chosen[chosen["item_id"].isin(set(item_ids))]
    if chosen.empty:
        raise SynthError("There are no items to report on with these runs and items. Choose other runs "
                         "or items, or leave them out to report on everything.")
    clustering = current_clustering(store)
    chosen = chosen.assign(cluster=[clustering.labels.get(i, NOISE) for i in chosen["item_id"]])
    chosen["cluster_name"] = chosen["cluster"].map(lambda c: clustering.names.get(c, "unclustered"))
    runs = store.runs()
    runs = runs[runs["run_id"].isin(set(chosen["run_id"]))].reset_index(drop=True)
    run_order = list(points.loc[points["run_role"] != "reference", "run_id"].unique())
    return _Facts(chosen.reset_index(drop=True), runs, layout, clustering, run_order)


# -- sections -----------------------------------------------------------------------------------


def _headline(facts: _Facts) -> str:
    items = facts.items
    status = items["status"].value_counts()
    models = items["model"].dropna().unique()
    tokens = int(items["tokens_in"].sum() + items["tokens_out"].sum())
    costs = pd.to_numeric(items["cost_usd"], errors="coerce")
    cost = _money(float(costs.sum()))
    if costs.isna().any():
        cost = f"{cost}+" if costs.notna().any() else "unknown"
    cards = [(f"{len(items):,}", "items"), (f"{len(facts.runs):,}", "runs"), (f"{len(models):,}", "models"),
             (f"{int(status.get('accepted', 0)):,}", "accepted"),
             (f"{int(status.get('rejected', 0)):,}", "rejected"),
             *([(f"{int(status['edited']):,}", "edited")] if status.get("edited", 0) else []),
             (f"{int(status.get('new', 0)):,}", "not reviewed yet"),
             (f"{tokens:,}", "tokens (prompt + completion)"), (cost, "cost (USD, estimated)")]
    body = "".join(f'<div class="card" data-headline="{_e(label)}"><div class="value">{_e(value)}</div>'
                   f'<div class="label">{_e(label)}</div></div>' for value, label in cards)
    note = ""
    if costs.isna().any():
        note = ('<p class="note">Some items have no price (a model litellm has no price for): the cost is '
                "a lower bound, or unknown if none has one.</p>")
    return f'<section id="summary"><h2>At a glance</h2><div class="cards">{body}</div>{note}</section>'


def _map(facts: _Facts) -> str:
    items = facts.items
    seed = settings.get("seed")
    shown = items if len(items) <= MAP_MAX_POINTS else items.sample(n=MAP_MAX_POINTS, random_state=seed)
    is_reference = shown["run_role"] == "reference"
    fig = plots.map_figure(shown[~is_reference], "run", reference=shown[is_reference], svg=True,
                           run_order=facts.run_order)
    plots.add_cluster_labels(fig, shown).update_layout(dragmode="zoom")  # a report has nothing to lasso
    figure = fig.to_html(full_html=False, include_plotlyjs=True, div_id=MAP_DIV_ID,
                         config={"displaylogo": False, "responsive": True, "scrollZoom": False})
    layout = facts.layout
    if layout.stored:
        how = ("UMAP of the items' embeddings (" + ", ".join(f"{k}={v}" for k, v in layout.params.items()) + ")"
               + ("" if layout.trustworthiness is None else
                  f"; trustworthiness {layout.trustworthiness:.3f} (1 = neighbours on the map are "
                  "neighbours in meaning)"))
    else:
        how = "the first two principal components of the embeddings (too few items for UMAP)"
    sample = ""
    if len(shown) < len(items):
        sample = (f"<p class=\"note\" id=\"map-sample\">The map shows a random sample of {len(shown):,} of the "
                  f"{len(items):,} items (seed {seed}), so it stays quick to open; the numbers and metrics "
                  "use every item.</p>")
    reference = (f" Grey diamonds are real reference data ({int(is_reference.sum()):,} items)."
                 if is_reference.any() else "")
    return (f'<section id="map"><h2>The map</h2>'
            f"<p>Each point is one item. Items with similar meaning sit close together; the colours are the "
            f"runs; the names are those of the largest clusters.{reference} Hover over a point to read it; drag to "
            "zoom, double-click to zoom out, click a "
            f"run in the legend to hide it.</p>{figure}{sample}"
            f'<p class="note">Layout: {_e(how)}. Embeddings: {_e(settings.get("embed_model"))}.</p></section>')


def _metric_values(store: DuckStore, facts: _Facts, subset: bool) -> dict[str, dict[str, float | None]]:
    """run id -> metric -> value: stored per-run metrics, or measured on the chosen items of each run."""
    if subset:
        return {rid: measure_items(store, facts.items[facts.items["run_id"] == rid], clustering=facts.clustering)[0]
                for rid in facts.runs["run_id"]}
    table = compute_all_metrics(store)
    table = table[table["run_id"].isin(set(facts.runs["run_id"]))]
    return {row["run_id"]: {name: (None if is_missing(row[name]) else float(row[name])) for name in METRIC_NAMES}
            for row in table.to_dict(orient="records")}


def _common_size(store: DuckStore, facts: _Facts) -> CommonSize:
    """Every reported run's size-dependent metrics at one common size, on the report's items."""
    items = facts.items
    vectors = load_vectors(store, items["text"].tolist())
    samples = {}
    for rid in facts.runs["run_id"]:
        mask = (items["run_id"] == rid).to_numpy()
        own = items[mask]
        samples[rid] = Sample(own["text"].tolist(), vectors[mask],
                              [facts.clustering.labels.get(i) for i in own["item_id"]])
    return at_common_size(samples)


def _metrics(store: DuckStore, facts: _Facts, subset: bool) -> str:
    values = _metric_values(store, facts, subset)
    common = _common_size(store, facts)
    runs = facts.runs
    head = "".join(f'<th data-run="{_e(r.run_id)}">{_e(r.name)}'
                   + (f'<div class="help small">{_e(TOO_SMALL)}</div>' if common.is_too_small(r.run_id) else "")
                   + "</th>" for r in runs.itertuples())
    rows = []
    for name in METRIC_NAMES:
        info = METRICS[name]
        row_values = [values.get(rid, {}).get(name) for rid in runs["run_id"]]
        best_ids = _best_runs(common, name, dict(zip(runs["run_id"], row_values)))
        cells = []
        for rid, v in zip(runs["run_id"], row_values):
            is_best = rid in best_ids
            cells.append(f'<td class="num{" best" if is_best else ""}" data-run="{_e(rid)}">{_e(format_value(v))}</td>')
        rows.append(f'<tr data-metric="{_e(name)}"><td class="metric"><code>{_e(name)}</code>'
                    f'<div class="help">{_e(info.help)}</div></td><td>{_e(DIRECTION_TEXT[info.direction])}</td>'
                    + "".join(cells) + "</tr>")
    scope = ("measured on the items chosen for this report, run by run" if subset
             else "of each run as a whole")
    return _table_section(
        "metrics", "Metrics per run",
        f"Every metric {scope}. &ldquo;Better&rdquo; says whether a higher or a lower value is better; "
        "&ldquo;neither&rdquo; marks figures that describe rather than judge. A run is in bold only when it is "
        "clearly best: on the metrics that depend on the number of items, when its interval at the common size "
        "(below) beats every other run's; on the others, by value. A run with fewer than "
        f"{common.minimum} items is {_e(TOO_SMALL)} and is never in bold.",
        f"<th>metric and what it means</th><th>better</th>{head}", rows, _common_table(common, runs))


def _best_runs(common: CommonSize, name: str, row_values: dict[str, float | None]) -> set[str]:
    """The runs shown in bold on one metric (none, or the one or more best)."""
    direction = METRICS[name].direction
    if name in COMPARABLE_METRICS:
        best = common.best(name)
        return set() if best is None else {best}
    if not direction or name in UNJUDGED_METRICS:
        return set()
    present = {rid: v for rid, v in row_values.items() if not is_missing(v) and not common.is_too_small(rid)}
    if len(set(present.values())) < 2:
        return set()
    top = max(v * direction for v in present.values())
    return {rid for rid, v in present.items() if v * direction == top}


def _common_table(common: CommonSize, runs: pd.DataFrame) -> str:
    """The size-dependent metrics at the common size: mean and 95 % interval per run."""
    if common.m is None:
        return (f'<p class="note" id="common-size">Every run has fewer than {common.minimum} items: '
                "none is compared at a common size.</p>")
    head = "".join(f'<th data-run="{_e(r.run_id)}">{_e(r.name)}</th>' for r in runs.itertuples())
    rows = []
    for name in common.metrics:
        best = common.best(name)
        cells = []
        for rid in runs["run_id"]:
            text = TOO_SMALL if common.is_too_small(rid) else interval_text(common.value(rid, name)) or "—"
            cells.append(f'<td class="num{" best" if rid == best else ""}" data-run="{_e(rid)}">{_e(text)}</td>')
        rows.append(f'<tr data-common-metric="{_e(name)}"><td class="metric"><code>{_e(name)}</code></td>'
                    + "".join(cells) + "</tr>")
    intro = (f"The metrics that depend on the number of items, on random subsamples of {common.m} items of each "
             f"run (half the smallest run that is not too small, at most {COMMON_N_CAP}): the mean and, in "
             "brackets, the 95 % interval over the subsamples. A run is in bold when its interval lies wholly on "
             "the better side of every other run's; overlapping intervals are no clear difference.")
    return (f'<h3 id="common-size">At a common size: {common.m} items</h3><p>{intro}</p>'
            f'<div class="scroll"><table class="common"><thead><tr><th>metric</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _coverage(store: DuckStore, facts: _Facts) -> str:
    """Recall and precision of the report's synthetic items against the database's reference data,
    overall and for the worst-covered clusters (one sentence when there is no reference data)."""
    summary = export.store_coverage(store, item_ids=facts.items.loc[facts.items["run_role"] != "reference", "item_id"])
    said = "<br>".join(_e(s) for s in coverage_sentences(summary))
    if not summary.worst:
        return f'<section id="coverage"><h2>Coverage of the real data</h2><p>{said}</p></section>'
    rows = [f'<tr data-cluster="{_e(c["cluster"])}"><td>{_e(name)}</td>'
            + "".join(f'<td class="num">{_e(v)}</td>' for v in figures) + "</tr>"
            for c, (name, *figures) in zip(summary.worst, worst_rows(summary))]
    return _table_section("coverage", "Coverage of the real data", f"{said}<br>The {len(rows)} clusters where "
                          "the least of the real data is reached:", "".join(f"<th>{_e(h)}</th>" for h in WORST_COLUMNS), rows)


def _table_section(section_id: str, heading: str, intro: str, header: str, rows: list[str], after: str = "") -> str:
    """A report section holding one scrolling table (``intro`` and ``header`` are HTML already)."""
    return (f'<section id="{section_id}"><h2>{heading}</h2><p>{intro}</p>'
            f'<div class="scroll"><table class="{section_id}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{after}</section>")


def _examples(store: DuckStore, facts: _Facts, per_group: int) -> str:
    items = facts.items
    by_cluster = bool((items["cluster"] != NOISE).any())
    key, what = ("cluster", "cluster") if by_cluster else ("run_id", "run")
    vectors = load_vectors(store, items["text"].tolist())
    typical = typical_items(items, vectors, per_group, key)
    blocks = []
    for group in dict.fromkeys(typical[key]):
        members = items[items[key] == group]
        picked = typical[typical[key] == group]
        label = members["cluster_name"].iloc[0] if by_cluster else members["run_name"].iloc[0]
        entries = []
        for row in picked.to_dict(orient="records"):
            text = row["text"] if len(row["text"]) <= EXAMPLE_CHARS else row["text"][:EXAMPLE_CHARS] + "…"
            meta = [f"run: {row['run_name']}", f"prompt: {row['prompt_label']}", f"status: {row['status']}"]
            if not by_cluster and row["cluster"] != NOISE:
                meta.append(f"cluster: {row['cluster_name']}")
            if not is_missing(row.get("judge_score")):
                meta.append(f"judge score: {format_number(row['judge_score'], digits=3)}")
            entries.append(f'<li data-item="{_e(row["item_id"])}"><div class="text">{_e(text)}</div>'
                           f'<p class="meta">{_e(" · ".join(meta))}</p></li>')
        share = len(members) / len(items)
        sources = ""
        if by_cluster:
            counts = members["run_name"].value_counts()
            sources = " · from " + ", ".join(f"{name} ({n})" for name, n in counts.head(4).items())
            sources += f" and {len(counts) - 4} more runs" if len(counts) > 4 else ""
        blocks.append(f'<div class="group" data-{what}="{_e(group)}"><h3>{_e(label)}</h3>'
                      f'<p class="note">{len(members):,} items ({share:.0%} of the report){_e(sources)}</p>'
                      f'<ol class="examples">{"".join(entries)}</ol></div>')
    if by_cluster:
        intro = (f"The items fall into {items[key].nunique()} topic clusters ({_e(facts.clustering.method)}, over the "
                 f"whole dataset); each is named by its most distinctive words. Shown: up to {per_group} typical "
                 f"items per cluster (those closest to its centre in meaning), largest cluster first.")
    else:
        intro = f"Up to {per_group} typical items per run (those closest to the run's centre in meaning)."
    return f'<section id="examples"><h2>Example items</h2><p>{intro}</p>{"".join(blocks)}</section>'


def _provenance(store: DuckStore, facts: _Facts) -> pd.DataFrame:
    """Prompt and run settings of the chosen items, as an export records them."""
    return export_frame(store, list(facts.runs["run_id"]), item_ids=list(facts.items["item_id"]))


def _prompts(facts: _Facts, provenance: pd.DataFrame) -> str:
    runs_rows = []
    for run in facts.runs.itertuples():
        params = from_json(run.params, {}) or {}
        shown = facts.items[facts.items["run_id"] == run.run_id]
        prompt = shown["prompt_label"].iloc[0] if len(shown) else ""
        temperature = params.get("temperature") if isinstance(params, dict) else None
        runs_rows.append(
            f'<tr data-run="{_e(run.run_id)}"><td>{_e(run.name)}</td><td>{_e(run.technique)}</td>'
            f"<td>{_e(run.model or '(none)')}</td><td>{_e(prompt)}</td>"
            f'<td class="num">{len(shown):,}</td><td class="num">{_e("" if temperature is None else temperature)}</td>'
            f"<td>{_e(run.role)}</td><td>{_e(pd.Timestamp(run.created_at).strftime('%Y-%m-%d %H:%M'))}</td></tr>")
    prompt_blocks = []
    prompts = provenance.dropna(subset=["prompt_id"]).drop_duplicates("prompt_id")
    labels = dict(zip(facts.items["prompt_id"], facts.items["prompt_label"]))
    for p in prompts.itertuples():
        used_by = sorted(set(provenance.loc[provenance["prompt_id"] == p.prompt_id, "run_name"]))
        system = (f"<h4>System prompt</h4><pre>{_e(p.system_prompt)}</pre>"
                  if isinstance(p.system_prompt, str) and p.system_prompt.strip() else "")
        variables = from_json(p.prompt_variables)
        variables_html = ""
        if variables:
            lines = "\n".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                              for k, v in variables.items())
            variables_html = f"<h4>Variables</h4><pre>{_e(lines)}</pre>"
        prompt_blocks.append(f'<div class="prompt" data-prompt="{_e(p.prompt_id)}"><h3>{_e(labels.get(p.prompt_id, p.prompt_name))}</h3>'
                             f'<p class="note">Used by: {_e(", ".join(used_by))}</p>'
                             f"<h4>Template</h4><pre>{_e(p.template)}</pre>{system}{variables_html}</div>")
    without = sorted(set(provenance.loc[provenance["prompt_id"].isna(), "run_name"]))
    imported = (f'<p class="note">Without a prompt (imported or made another way): {_e(", ".join(without))}.</p>'
                if without else "")
    return (f'<section id="prompts"><h2>How the data was made</h2>'
            f'<div class="scroll"><table class="runs"><thead><tr><th>run</th><th>technique</th><th>model</th>'
            f"<th>prompt</th><th>items</th><th>temperature</th><th>role</th><th>created (UTC)</th></tr></thead>"
            f"<tbody>{''.join(runs_rows)}</tbody></table></div>"
            f"<h3>Prompts</h3>{''.join(prompt_blocks) or '<p>No prompts: every run was imported.</p>'}{imported}"
            f"</section>")


def _licences(provenance: pd.DataFrame) -> str:
    notes = model_notes(provenance)
    rows = []
    for note in notes.to_dict(orient="records"):
        source = note["source"]
        link = (f'<a href="{_e(source)}">{_e(source)}</a>'
                if isinstance(source, str) and source.startswith("https://") else "")
        rows.append(f'<tr data-model="{_e(note["model"])}"><td><code>{_e(note["model"])}</code></td>'
                    f'<td>{_e(note["maker"])}</td><td>{_e(note["licence"])}</td><td>{_e(note["training_use"])}</td>'
                    f"<td>{_e(note['summary'])}</td><td>{link}</td></tr>")
    return _table_section(
        "licences", "Models and their terms",
        "What the makers of the models that wrote these items say about using their outputs, in particular "
        "for training other models.",
        "<th>model</th><th>maker</th><th>licence</th><th>training on outputs</th><th>summary</th><th>source</th>",
        rows, f'<p class="note" id="disclaimer">{_e(DISCLAIMER)}</p>')


def _footer(store: DuckStore, facts: _Facts, made: str) -> str:
    from plotly.offline import get_plotlyjs_version

    clustering = facts.clustering
    params = ", ".join(f"{k}={v}" for k, v in clustering.params.items())
    return (f"<footer><p>Made with Synth Studio {_e(synth.__version__)} (<code>python -m synth report</code>) on "
            f"{_e(made)} from the database <code>{_e(Path(store.path).name)}</code>: {len(facts.items):,} items "
            f"of {len(facts.runs):,} runs. Embeddings: {_e(settings.get('embed_model'))}; map layout "
            f"{_e(facts.layout.layout_id or facts.layout.method)}; clusters: {_e(clustering.method)} ({_e(params)}); "
            f"near-duplicate threshold {_e(settings.get('near_dup_threshold'))}; seed {_e(settings.get('seed'))}.</p>"
            f"<p>This file is self-contained: plotly.js {_e(get_plotlyjs_version())} "
            f"and all styles are inside it, so it opens without a network connection.</p></footer>")


# -- the report ---------------------------------------------------------------------------------


@in_session
def _build(store: DuckStore, run_ids: list[str] | None = None, item_ids: list[str] | None = None,
           title: str | None = None, examples_per_cluster: int = 3) -> tuple[str, _Facts]:
    if not 0 <= examples_per_cluster <= MAX_EXAMPLES_PER_GROUP:
        raise SynthError(f"examples_per_cluster must be between 0 and {MAX_EXAMPLES_PER_GROUP}, "
                         f"got {examples_per_cluster}.")
    facts = _choose(store, run_ids, item_ids)
    provenance = _provenance(store, facts)
    title = (title or "").strip() or DEFAULT_TITLE
    made = now().strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<header><h1>{_e(title)}</h1>"
             f'<p class="date">{_e(made)} · {len(facts.items):,} items from {len(facts.runs):,} runs</p>'
             f'<p class="lede">{_e(INTRINSIC)}</p></header>',
             _headline(facts), _map(facts), _metrics(store, facts, subset=item_ids is not None),
             _coverage(store, facts)]
    if examples_per_cluster:
        parts.append(_examples(store, facts, examples_per_cluster))
    parts += [_prompts(facts, provenance), _licences(provenance), _footer(store, facts, made)]
    document = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{_e(title)}</title><style>{CSS}</style></head>"
                f"<body><main>{''.join(parts)}</main></body></html>\n")
    return document, facts


def build_report(store: DuckStore, run_ids: list[str] | None = None, item_ids: list[str] | None = None,
                 title: str | None = None, examples_per_cluster: int = 3) -> str:
    """A complete, self-contained HTML document about the chosen items (every item by default;
    ``run_ids`` takes run ids or names, ``item_ids`` narrows further): headline numbers, the map,
    per-run metrics, coverage of reference data, typical items per cluster, the prompts, licences."""
    return _build(store, run_ids, item_ids, title, examples_per_cluster)[0]


def write_report(store: DuckStore, out: str | Path, run_ids: list[str] | None = None,
                 item_ids: list[str] | None = None, title: str | None = None,
                 examples_per_cluster: int = 3) -> dict:
    """Write the report to ``out`` (.html or .htm) atomically; return what was written."""
    out = Path(out)
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise SynthError(f"Cannot write a report to {out.name}: use a file name ending in .html or .htm.")
    if not out.parent.is_dir():
        raise SynthError(f"Folder {out.parent} does not exist. Create it or choose another --out.")
    document, facts = _build(store, run_ids, item_ids, title, examples_per_cluster)
    data = document.encode("utf-8")
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
    return {"out": str(out), "bytes": len(data), "n_items": len(facts.items), "n_runs": len(facts.runs)}
