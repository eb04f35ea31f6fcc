"""Studio: the prompt editor and the map side by side. Rendered prompts as you type, a three-item
preview, and runs that land on the map highlighted, with this version's metrics beside the last."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import cancel_ui, require_app
from pages.widgets import call_ui, form_defaults, licence_ui, remember_form, run_with_progress_ui, stop_on_error
from synth.analysis.metrics import format_metric, metric_label
from synth.analysis.projection import pending_layouts
from synth.generate.config import RunConfig
from synth.generate.prompting import template_fields
from synth.generate.techniques import DEFAULT_TECHNIQUE, TECHNIQUES
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown
from synth.outputs import plots
from synth.workflows import jobs, studio
from synth.workflows.pipeline import map_points

require_app()

DEFAULT_PROMPT_NAME = "studio"
DEFAULT_VALUES = {"product": "coffee grinder\nrain jacket\nphone case", "tone": "happy\nannoyed"}
JOB_KEY, LAST_RUN_KEY, PREVIEW_KEY = "studio_job", "studio_last_run", "studio_preview"
HIGHLIGHT_COLOR = "#111111"
FORM_KEYS = {"studio_template", "studio_system", "studio_model", "studio_api_base", "studio_temperature",
             "studio_max_tokens", "studio_n", "studio_seed", "studio_prompt_name"}


def defaults_ui() -> None:
    cfg = RunConfig()
    defaults = {"studio_template": TECHNIQUES[DEFAULT_TECHNIQUE].default_template, "studio_system": cfg.system_prompt,
                "studio_model": settings.get("default_model"), "studio_api_base": "",
                "studio_temperature": cfg.temperature, "studio_max_tokens": cfg.max_tokens, "studio_n": cfg.n,
                "studio_seed": cfg.seed, "studio_prompt_name": DEFAULT_PROMPT_NAME}
    form_defaults("studio", defaults)


def remember_ui() -> None:
    """The editor as the user left it, for the next visit to the page."""
    remember_form("studio", [k for k in st.session_state if isinstance(k, str) and (
        k in FORM_KEYS or k.startswith("studio_var_"))])


def variables_ui(template: str) -> dict[str, list[str]]:
    """One text area per {variable} of the template, one value per line."""
    try:
        found = template_fields(template)
    except SynthError:
        found = []  # the rendered prompts say what is wrong with the template
    fields = [f for f in found if f not in TECHNIQUES[DEFAULT_TECHNIQUE].provides]
    if fields:
        st.markdown("**Values per variable** (one per line)")
    variables = {}
    for column, name in zip(st.columns(max(1, min(len(fields), 3))) * len(fields), fields):
        st.session_state.setdefault(f"studio_var_{name}", DEFAULT_VALUES.get(name, ""))
        raw = column.text_area(literal_markdown(f"{{{name}}}"), key=f"studio_var_{name}", height=100)
        variables[name] = [line.strip() for line in raw.splitlines() if line.strip()]
    return variables


def editor_ui() -> RunConfig:
    """The prompt and its parameters, as a run configuration of the sampling technique."""
    template = st.text_area("Prompt template", key="studio_template", height=100,
                            help="{variables} take the values below, one per line.")
    variables = variables_ui(template)
    system = st.text_area("System prompt (optional)", key="studio_system", height=68)
    model_col, base_col = st.columns(2)
    model = model_col.text_input("Model (litellm)", key="studio_model")
    api_base = base_col.text_input("API base (optional)", key="studio_api_base",
                                   help="An OpenAI-compatible server, e.g. http://host:8000/v1 with openai/<model>.")
    temp, tokens = st.columns(2)  # two by two: the labels stay whole in the left column at 1024 px
    n, seed = st.columns(2)
    values = {"temperature": temp.slider("Temperature", 0.0, 2.0, step=0.05, key="studio_temperature"),
              "max_tokens": int(tokens.number_input("Max tokens", 1, 4096, key="studio_max_tokens")),
              "n": int(n.number_input("Items per run", 1, 100_000, key="studio_n")),
              "seed": int(seed.number_input("Seed", 0, 2**31 - 1, key="studio_seed"))}
    name = st.text_input("Prompt name", key="studio_prompt_name",
                         help="Edits under the same name make new versions (see Prompt versions).")
    licence_ui(model.strip() or settings.get("default_model"), api_base.strip() or None)
    return RunConfig(technique=DEFAULT_TECHNIQUE, template=template, variables=variables, system_prompt=system,
                     model=model.strip(), api_base=api_base.strip() or None, prompt_name=name.strip() or "default",
                     **values)


def rendered_ui(store, cfg: RunConfig) -> bool:
    """The first prompts of the run, rendered (no model call); False if the setup is incomplete."""
    try:
        sampled = studio.sample_prompts(cfg, store)
    except SynthError as exc:
        st.warning(literal_markdown(str(exc), keep_breaks=True))
        return False
    st.markdown("**Rendered prompts** (the first items of the run; no model call)")
    for prompt in sampled:
        values = ", ".join(f"{k} = {v}" for k, v in prompt.variables.items()) or "no variables"
        st.caption(literal_markdown(f"#{prompt.idx + 1}: {values}"))
        st.text(prompt.prompt)
    return True


def config_key(cfg: RunConfig) -> str:
    """The setup as text: a cache key, and what a preview was made from."""
    return json.dumps(cfg.to_dict(), sort_keys=True, default=str)


def item_blocks(rows: list[dict]) -> None:
    """Preview items in order, each its text (as text) under a caption: its variable values, then
    tokens, finish reason and latency, or "writing…" while the model still writes it."""
    for row in sorted(rows, key=lambda r: r["#"]):
        values = ", ".join(f"{k[1:-1]} = {v}" for k, v in row.items() if k.startswith("{") and isinstance(v, str))
        writing = row["finish reason"] == studio.WRITING
        tail = studio.WRITING if writing else f"{row['tokens']} tokens · {row['finish reason']} · {row['latency ms']} ms"
        st.caption(literal_markdown(f"#{row['#']}" + (f" ({values})" if values else "") + f" · {tail}"))
        st.text(row["text"])


def preview_ui(store, cfg: RunConfig) -> None:
    """Make the preview's items, each shown as it is written and arrives (not saved)."""
    items = run_with_progress_ui(f"Making {studio.PREVIEW_N} items…", studio.preview_items, cfg, store,
                                 row=lambda item: studio.preview_table([item]).iloc[0].to_dict(), clear=True,
                                 writing=studio.writing_row, render=item_blocks)
    if items is not None:
        st.session_state[PREVIEW_KEY] = (config_key(cfg), studio.preview_table(items))
        st.rerun()  # drawn once, below, as the kept preview


def preview_table_ui(cfg: RunConfig) -> None:
    """The last preview's items, with the variable values that made them."""
    if PREVIEW_KEY not in st.session_state:
        return
    made_from, table = st.session_state[PREVIEW_KEY]
    stale = "" if made_from == config_key(cfg) else " The setup has changed since: press Preview again."
    st.caption(f"Preview: {len(table)} items with the variable values that made them (not saved).{stale}")
    item_blocks(table.to_dict("records"))
    with st.expander("As a table"):
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn(width="large")})


def start_run_ui(cfg: RunConfig) -> None:
    """Start the batch as a background job, then redraw: Run disabled, the progress shown."""
    control = call_ui(jobs.start_generation, settings.get("db_path"), cfg)
    if control is not None:
        st.session_state[JOB_KEY] = control.job_id
        st.rerun()


@st.fragment(run_every=1.0)
def job_ui() -> None:
    """The running batch's progress, polled every second; when it ends, the whole page reruns."""
    job_id = st.session_state.get(JOB_KEY)
    job = jobs.get(job_id) if job_id else None
    if job is None:
        return
    if job.active:
        st.progress(job.fraction, text=literal_markdown(job.describe()))
        return
    del st.session_state[JOB_KEY]
    run_id = job.run_id or getattr(job.result, "run_id", None)
    if run_id and job.state in ("done", "cancelled"):
        st.session_state[LAST_RUN_KEY] = run_id
    st.session_state["studio_job_outcome"] = (job.state, job.describe(), job.error)
    st.rerun(scope="app")  # the map and the metrics show the new batch


def outcome_ui() -> None:
    outcome = st.session_state.get("studio_job_outcome")
    if not outcome:
        return
    state, text, error = outcome
    if state == "done":
        st.success(literal_markdown(text))
    elif state == "cancelled":
        st.info(literal_markdown(text))
    else:
        st.error(literal_markdown(error or text, keep_breaks=True))


@st.cache_data(max_entries=8, show_spinner="Placing items on the map…")
def load_points(db_path: str, data_version: tuple):
    points, layout = map_points(get_store())
    return points, layout.describe(), layout.status


@st.cache_data(max_entries=32, show_spinner=False)
def load_comparison(db_path: str, data_version: tuple, cfg_key: str) -> studio.VersionMetrics:
    return studio.compare_versions(get_store(), RunConfig(**json.loads(cfg_key)))


@st.fragment(run_every=2)
def layout_poll_ui() -> None:
    """While the layout is computed or new items placed in the background, redraw when it is done."""
    if pending_layouts() == 0:
        st.rerun(scope="app")


def map_ui(store, comparison: studio.VersionMetrics | None) -> None:
    points, layout_text, status = load_points(store.path, store.data_version(metrics=False))
    if points.empty:
        st.info("No items yet: write a prompt on the left and press Run; its items appear here.")
        return
    if status in ("preview", "placing"):
        st.caption("The new items are being placed on the map in the background; it redraws when they are.")
        layout_poll_ui()
    this_run = comparison.this_run["run_id"] if comparison and comparison.this_run else None
    run_id = studio.highlight_run(points, st.session_state.get(LAST_RUN_KEY), this_run)
    marked = studio.mark_highlight(points, run_id)
    st.plotly_chart(plots.newest_batch_figure(marked, points["run_id"].astype(str).unique(), HIGHLIGHT_COLOR),
                    key="studio_map",
                    width="stretch")
    if run_id:
        name = marked.loc[marked["highlight"], "run_name"].iloc[0]
        st.caption(f"Highlighted: the newest batch, **{literal_markdown(name)}** "
                   f"({int(marked['highlight'].sum())} items), over {len(points)} items · "
                   f"layout: {literal_markdown(layout_text)}")
    else:
        st.caption(f"{len(points)} items · layout: {literal_markdown(layout_text)}. Run a batch to see it "
                   "highlighted here.")


def version_text(title: str | None, run: dict | None, unsaved: str) -> str:
    """A version and its latest run, as markdown."""
    if title is None:
        return unsaved
    return literal_markdown(title) + (f" (latest run: {literal_markdown(run['name'])})" if run else " (no run yet)")


def metrics_ui(comparison: studio.VersionMetrics | None) -> None:
    st.subheader("This version against the previous one")
    if comparison is None:
        st.caption("Complete the prompt to compare its version with the previous one.")
        return
    this = version_text(comparison.this_title, comparison.this_run, "a new version, not run yet")
    previous = version_text(comparison.previous_title, comparison.previous_run, "none")
    st.caption(f"**This version:** {this} · **previous:** {previous}")
    shown = pd.DataFrame({column: [format_metric(m, v) for m, v in comparison.table[column].items()]
                          for column in comparison.table.columns},
                         index=pd.Index([metric_label(m, with_id=False) for m in comparison.table.index],
                                        name="metric"))
    st.table(shown)  # whole on the page, wrapping: no table scrolled inside itself
    st.caption("Metric ids, for SQL and the CLI: " + ", ".join(f"{metric_label(m, with_id=False)} = `{m}`"
                                                                for m in comparison.table.index) + ".")
    if comparison.note:
        st.caption(literal_markdown(comparison.note))
    if comparison.common is not None:
        st.caption(f"At a common size of {comparison.common_n} items per run (mean and 95 % bootstrap "
                   "interval over subsamples), so runs of different sizes compare fairly:")
        common = comparison.common.copy()
        common.index = pd.Index([metric_label(m, with_id=False) for m in common.index], name="metric")
        st.table(common)


st.title("Studio")
defaults_ui()
store = get_store()
left, right = st.columns([2, 3])
with left:
    with stop_on_error():
        cfg = editor_ui()
    remember_ui()
    ready = rendered_ui(store, cfg)
    preview_col, run_col = st.columns(2)
    if preview_col.button("Preview", key="studio_preview_button", disabled=not ready,
                          help=f"Make {studio.PREVIEW_N} items and show them; no run is saved."):
        preview_ui(store, cfg)
    running = JOB_KEY in st.session_state
    if run_col.button("Run", key="studio_run_button", type="primary", disabled=not ready or running,
                      help="Make the batch in the background; it lands on the map, highlighted."):
        st.session_state.pop("studio_job_outcome", None)
        start_run_ui(cfg)
    if JOB_KEY in st.session_state:
        job_ui()  # polls only while a batch of this page runs
        if (job := jobs.get(st.session_state[JOB_KEY])) is not None:
            cancel_ui(job, "studio_cancel")
    outcome_ui()
    preview_table_ui(cfg)
with right:
    comparison = call_ui(load_comparison, store.path, store.data_version(), config_key(cfg)) if ready else None
    map_ui(store, comparison)
    metrics_ui(comparison)
