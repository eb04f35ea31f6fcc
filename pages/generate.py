"""Generate: pick a technique, set it up, run it; save or load the setup as a recipe."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import call_ui, form_defaults, job_ui, licence_ui, remember_form, stop_on_error
from synth.analysis.metrics import format_metric, metric_label
from synth.generate.config import RunConfig
from synth.generate.grammar import Grammar
from synth.generate.prompting import template_fields
from synth.generate.techniques import DEFAULT_TECHNIQUE, FORM_SECTIONS, TECHNIQUES
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown
from synth.llm import providers
from synth.workflows import jobs, versions
from synth.workflows.recipes import config_from_recipe, load_recipe, recipe_text
from synth.workflows.review import run_items_view

require_app()

DEFAULT_PROMPT_NAME = "my-reviews"  # the default template writes reviews; not the demo's "reviews", whose template differs
DEFAULT_VALUES = {"product": "coffee grinder\nrain jacket\nphone case", "tone": "happy\nannoyed"}
DEFAULT_GRAMMAR = """start: "<greeting> I <problem> my <product>. <ask>"
rules:
  greeting: ["Hi,", {text: "Hello,", weight: 2}, "Good morning,"]
  problem: ["cannot log in to", "was charged twice for", "never received"]
  product: ["account", "order", "subscription", "gift card"]
  ask: ["Can you help?", {text: "What should I do?", weight: 2}, "Please fix this."]
"""
OUTPUT_MODES = {"none": "Free text", "fields": "Named fields", "schema": "A JSON Schema"}
SOURCE_KINDS = {"pasted": "Paste texts", "file": "Upload a JSONL/CSV file", "folder": "A folder",
                "git": "A git repository", "run": "An earlier run"}
# Widget keys of the settings a recipe can carry, and how each maps to RunConfig (the template's
# key depends on the technique: see template_key).
STATE_KEYS = {"model": "generate_model", "api_base": "generate_api_base", "temperature": "generate_temperature",
              "top_p": "generate_top_p",
              "max_tokens": "generate_max_tokens", "n": "generate_n", "seed": "generate_seed",
              "concurrency": "generate_concurrency", "prompt_name": "generate_prompt_name",
              "system_prompt": "generate_system", "run_name": "generate_run_name",
              "sampling_mode": "generate_sampling_mode", "k_examples": "generate_k_examples",
              "k_avoid": "generate_k_avoid", "per_source": "generate_per_source", "unique": "generate_unique"}
# Every widget the form sets from session state (so it can be kept while another page is shown).
REMEMBERED = set(STATE_KEYS.values()) | {"generate_budget", "generate_regenerate", "generate_grammar",
                                         "generate_technique", "generate_examples", "generate_version_label"}
TEMPLATE_SECTIONS = ("template", "source_template")  # form sections that edit the prompt template


def template_key(technique: str) -> str:
    """Each technique keeps its own template, so switching technique loses no edit."""
    return f"generate_template_{technique}"


def defaults_ui() -> None:
    """Every recipe-carried widget starts from session state, so a loaded recipe can set it."""
    cfg = RunConfig()
    defaults = {"generate_model": settings.get("default_model"), "generate_api_base": "",
                "generate_temperature": cfg.temperature, "generate_top_p": cfg.top_p or 1.0,
                "generate_max_tokens": cfg.max_tokens, "generate_n": cfg.n, "generate_seed": cfg.seed,
                "generate_concurrency": cfg.concurrency, "generate_budget": float(cfg.budget_usd or 0.0),
                "generate_regenerate": cfg.regenerate, "generate_prompt_name": DEFAULT_PROMPT_NAME,
                "generate_sampling_mode": cfg.sampling_mode, "generate_k_examples": cfg.k_examples,
                "generate_k_avoid": cfg.k_avoid, "generate_per_source": cfg.per_source,
                "generate_grammar": DEFAULT_GRAMMAR, "generate_unique": cfg.unique,
                "generate_system": cfg.system_prompt, "generate_run_name": cfg.run_name or ""}
    defaults.update({template_key(name): entry.default_template for name, entry in TECHNIQUES.items()
                     if set(entry.form) & set(TEMPLATE_SECTIONS)})
    form_defaults("generate", defaults)


def remember_ui() -> None:
    """The form as the user left it, for the next visit to the page."""
    remember_form("generate", [k for k in st.session_state if isinstance(k, str) and (
        k in REMEMBERED or k.startswith("generate_var_") or k.startswith("generate_template_"))])


def load_recipe_ui() -> None:
    """Upload a recipe file and put its settings into the widgets."""
    with st.sidebar.expander("Load a recipe"):
        upload = st.file_uploader("Recipe (.yaml or .json)", key="generate_recipe_file")
        if upload is not None and st.button("Load", key="generate_recipe_load"):
            try:
                cfg = config_from_recipe(load_recipe(text=upload.getvalue().decode("utf-8")))
                cfg.validate()
            except (SynthError, UnicodeDecodeError) as exc:
                st.error(literal_markdown(str(exc), keep_breaks=True))
                return
            state = st.session_state
            for field, key in STATE_KEYS.items():
                value = getattr(cfg, field)
                if value is not None:
                    state[key] = float(value) if isinstance(value, float) else value
            state["generate_budget"] = float(cfg.budget_usd or 0.0)
            state["generate_regenerate"] = cfg.regenerate
            state["generate_technique"] = cfg.technique
            entry = TECHNIQUES[cfg.technique]
            if set(entry.form) & set(TEMPLATE_SECTIONS):
                state[template_key(cfg.technique)] = cfg.template or entry.default_template
            if entry.input == "sources":
                source = cfg.source or {}
                state["generate_source_kind"] = source.get("kind", "pasted")
                for field, key in (("text", "generate_source_text"), ("path", "generate_source_path"),
                                   ("repo", "generate_source_path"), ("text_column", "generate_source_column")):
                    if field in source:
                        state[key] = source[field]
            for name, values in cfg.variables.items():
                state[f"generate_var_{name}"] = "\n".join(values)
            state["generate_examples"] = "\n\n".join(cfg.examples)
            state["generate_output_mode"] = ("fields" if cfg.output and "fields" in cfg.output else
                                             "schema" if cfg.output else "none")
            if cfg.output and "fields" in cfg.output:
                state["generate_fields"] = ", ".join(cfg.output["fields"])
            if cfg.grammar:
                state["generate_grammar"] = cfg.grammar if isinstance(cfg.grammar, str) else recipe_text_of(cfg.grammar)
            st.rerun()


def recipe_text_of(value) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def model_ui() -> dict:
    st.sidebar.subheader("Model")
    model = st.sidebar.text_input(
        "litellm model", key="generate_model",
        help="The embedded model needs no key: " + ", ".join(providers.list_models()) + ". Hosted "
             "models take a provider prefix (openai/gpt-4o-mini, anthropic/...), with the key in the "
             "environment or .streamlit/secrets.toml.")
    api_base = st.sidebar.text_input(
        "API base (optional)", key="generate_api_base",
        help="An OpenAI-compatible server: Ollama (http://localhost:11434 with ollama/<model>) or "
             "vLLM / llama.cpp (http://host:8000/v1 with openai/<model>).")
    licence_ui(model.strip() or settings.get("default_model"), api_base.strip() or None, st.sidebar)
    return {"model": model.strip(), "api_base": api_base.strip() or None}


def params_ui(uses_llm: bool) -> dict:
    st.sidebar.subheader("Run")
    values = {
        "n": int(st.sidebar.number_input("Items (0: one per source)", 0, 100_000, key="generate_n")),
        "seed": int(st.sidebar.number_input("Seed", 0, 2**31 - 1, key="generate_seed")),
    }
    if not uses_llm:
        return values
    budget = st.sidebar.number_input("Budget (USD, 0: none)", 0.0, 10_000.0, step=0.01, key="generate_budget")
    values.update({
        "temperature": st.sidebar.slider("Temperature", 0.0, 2.0, step=0.05, key="generate_temperature"),
        "top_p": st.sidebar.slider("top_p (1.0: off)", 0.05, 1.0, step=0.05, key="generate_top_p") or None,
        "max_tokens": int(st.sidebar.number_input("Max tokens", 1, 4096, key="generate_max_tokens")),
        "concurrency": int(st.sidebar.number_input("Concurrency", 1, 256, key="generate_concurrency")),
        "budget_usd": budget or None,
        "regenerate": int(st.sidebar.number_input(
            "Regenerate", 0, 1000, key="generate_regenerate",
            help="0 reuses cached responses for an identical batch (free); another number gives new samples.")),
    })
    return values


def variables_ui(template: str, provided: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """One text area per {variable} in the template (bar those the technique fills), one value per line."""
    found = call_ui(template_fields, template)
    if found is None:
        return {}
    fields = [f for f in found if f not in provided]
    variables = {}
    if fields:
        st.markdown("**Values per variable** (one per line)")
    for column, name in zip(st.columns(max(1, len(fields))), fields):
        st.session_state.setdefault(f"generate_var_{name}", DEFAULT_VALUES.get(name, ""))
        raw = column.text_area(literal_markdown(f"{{{name}}}"), key=f"generate_var_{name}", height=120)
        variables[name] = [line.strip() for line in raw.splitlines() if line.strip()]
    return variables


# The form's sections, in FORM_SECTIONS; a technique's ``form`` lists the ones it shows, in order.
# Each takes the store, the technique's name and the settings so far, and returns settings.

def template_ui(store, technique: str, values: dict) -> dict:
    return {"template": st.text_area(
        "Prompt template", key=template_key(technique), height=100,
        help="{variables} take values below; {examples} and {avoid} may place those lists.")}


def variables_section_ui(store, technique: str, values: dict) -> dict:
    return {"variables": variables_ui(values.get("template", ""), TECHNIQUES[technique].provides)}


def sampling_mode_ui(store, technique: str, values: dict) -> dict:
    left, right = st.columns(2)
    modes = versions.SAMPLING_MODE_LABELS
    return {"sampling_mode": left.radio(
        "How the values are combined", list(modes), format_func=lambda m: modes[m].capitalize(),
        key="generate_sampling_mode", horizontal=True,
        help="Every combination in turn: each combination of values once before any repeats. "
             "Random draws: each variable's value drawn independently for every item.")}


def examples_ui(store, technique: str, values: dict) -> dict:
    found = {}
    with st.expander("Few-shot examples and items to avoid"):
        raw = st.text_area("Seed examples (separate with a blank line)", key="generate_examples", height=100)
        found["examples"] = [e.strip() for e in raw.split("\n\n") if e.strip()]
        found["k_examples"] = int(st.number_input("Examples per call", 0, 20, key="generate_k_examples"))
        runs = store.runs()
        found["avoid_runs"] = st.multiselect("Avoid items of these runs (Self-Instruct style)",
                                             runs["name"].tolist(), key="generate_avoid_runs")
        found["k_avoid"] = int(st.number_input("Items to avoid per call", 0, 50, key="generate_k_avoid"))
    return found


def source_ui(store, technique: str, values: dict) -> dict:
    kind = st.radio("Source texts", list(SOURCE_KINDS), format_func=SOURCE_KINDS.get, horizontal=True,
                    key="generate_source_kind")
    source: dict = {"kind": kind}
    if kind == "pasted":
        source["text"] = st.text_area("Texts, separated by a blank line", key="generate_source_text", height=140)
    elif kind == "file":
        upload = st.file_uploader("JSONL or CSV", key="generate_source_file")
        source["text_column"] = st.text_input("Text column", "text", key="generate_source_column")
        if upload is not None:
            source.update(path=upload.name, data=upload.getvalue())
    elif kind in ("folder", "git"):
        key = "path" if kind == "folder" else "repo"
        source[key] = st.text_input("Path on this machine", str(settings.PROJECT_DIR), key="generate_source_path")
        source["include"] = [p.strip() for p in st.text_input(
            "Include (globs)", "*.py, *.md", key="generate_source_include").split(",") if p.strip()]
        source["max_files"] = int(st.number_input("At most this many files", 1, 1000, 10, key="generate_source_max"))
    else:
        names = store.runs()["name"].tolist()
        source["run"] = st.selectbox("Run", names, key="generate_source_run") if names else ""
    return {"source": source}


def source_template_ui(store, technique: str, values: dict) -> dict:
    return {"template": st.text_area("Prompt ({text} is the source text)", key=template_key(technique),
                                     height=110)}


def per_source_ui(store, technique: str, values: dict) -> dict:
    return {"per_source": int(st.number_input("Outputs per source", 1, 20, key="generate_per_source"))}


def grammar_ui(store, technique: str, values: dict) -> dict:
    grammar = st.text_area("Grammar (YAML): a start template and weighted rules", key="generate_grammar",
                           height=200)
    try:
        parsed = Grammar.from_text(grammar)
        for warning in parsed.warnings:
            st.warning(literal_markdown(warning))
        parsed.check_size(settings.get("max_item_chars"))
    except SynthError as exc:  # said again, and refused, when the run starts
        st.warning(literal_markdown(str(exc)))
    return {"grammar": grammar, "unique": st.checkbox("Distinct texts only", key="generate_unique")}


FORM = {"template": template_ui, "variables": variables_section_ui, "sampling_mode": sampling_mode_ui,
        "examples": examples_ui, "source": source_ui, "source_template": source_template_ui,
        "per_source": per_source_ui, "grammar": grammar_ui}
assert tuple(FORM) == FORM_SECTIONS, "every form section needs its widgets here"


def output_ui() -> dict | None:
    with st.expander("Structured output"):
        mode = st.radio("What each item should be", list(OUTPUT_MODES), format_func=OUTPUT_MODES.get,
                        horizontal=True, key="generate_output_mode")
        if mode == "fields":
            raw = st.text_input("Fields (comma-separated)", "question, answer", key="generate_fields")
            return {"fields": [f.strip() for f in raw.split(",") if f.strip()]}
        if mode == "schema":
            return {"schema": st.text_area("JSON Schema (an object)", key="generate_schema", height=140)}
    return None


def judge_ui(model: str) -> dict | None:
    with st.expander("Score with an LLM judge"):
        if not st.checkbox("Judge every item after generating", key="generate_judge_on"):
            return None
        judge_model = st.text_input("Judge model", model, key="generate_judge_model")
        rubric = st.text_area("Checklist (one 'name: description' per line)",
                              "on_task: does what the prompt asked\nfluent: reads naturally",
                              key="generate_rubric")
        from synth.generate.judge import Rubric

        return {"model": judge_model, "rubric": Rubric.from_text(rubric).to_dict()}


def load_version_ui(store, prompt_name: str) -> None:
    """Put a saved version's template, system prompt, variables and parameters into the widgets;
    the next version made from them names it as its parent."""
    found = versions.list_versions(store, prompt_name)
    if not found:
        return
    with st.expander(f"Start from a saved version of {literal_markdown(prompt_name)}"):
        by_title = {v.title: v for v in found}
        title = st.selectbox("Version", list(by_title), index=len(by_title) - 1, key="generate_load_version")
        if not st.button("Load this version", key="generate_load_version_button"):
            return
        v = by_title[title]
        state = st.session_state
        technique = v.params.get("technique", DEFAULT_TECHNIQUE)
        state["generate_technique"] = technique
        state[template_key(technique)] = v.template
        state["generate_system"] = v.system_prompt
        for name, values in v.variables.items():
            state[f"generate_var_{name}"] = "\n".join(values)
        for field in ("model", "temperature", "max_tokens", "sampling_mode", "k_examples", "k_avoid"):
            if v.params.get(field) is not None:
                state[STATE_KEYS[field]] = float(v.params[field]) if field == "temperature" else v.params[field]
        state["generate_top_p"] = float(v.params.get("top_p") or 1.0)
        state["generate_examples"] = "\n\n".join(v.params.get("examples") or [])
        state["generate_prompt_parent"] = (v.name, v.prompt_id)
        st.rerun()


def version_ui(store, config: RunConfig) -> None:
    """Which saved version this setup is, or which new version it would make and how it differs."""
    try:
        preview = versions.preview_version(store, config)
    except SynthError:
        return  # the form is incomplete; Generate says what is missing
    if preview.existing:
        st.caption(f"Prompt version: **{literal_markdown(preview.existing.title)}** "
                   f"({preview.existing.n_runs} runs so far).")
        return
    if preview.parent is None:
        st.caption(f"Generating (or saving) makes a **new version**: the first of the new prompt "
                   f"**{literal_markdown(config.prompt_name)}**.")
    else:
        parent = literal_markdown(preview.parent.title)
        changed = "; ".join(preview.summary) or f"only parameters {preview.parent.title} did not record"
        st.caption(f"Generating (or saving) makes a **new version** of {literal_markdown(config.prompt_name)}, "
                   f"edited from {parent}: {literal_markdown(changed)}.")
    if preview.note:
        st.caption(literal_markdown(preview.note))
    with st.expander("Line by line" if preview.parent else "The new version"):
        st.code(preview.lines or "(no difference)", language="diff" if preview.parent else None, wrap_lines=True)
    if st.button("Save this version without running it", key="generate_save_version"):
        saved = versions.save_version(store, config)
        st.toast(f"Saved {literal_markdown(saved.title)}.")
        st.rerun()


def item_row(item) -> dict:
    """An arriving item, as a row of the live table."""
    valid = "—" if item.valid is None else "yes" if item.valid else "no"
    return {"#": item.idx + 1, "text": item.text, "valid": valid, "tokens": item.tokens_out,
            "latency ms": round(item.latency_ms), "cached": item.cached}


st.title("Generate")
defaults_ui()
load_recipe_ui()
store = get_store()
technique = st.selectbox("Technique", list(TECHNIQUES), format_func=lambda n: TECHNIQUES[n].title,
                         key="generate_technique")
entry = TECHNIQUES[technique]
st.caption(entry.description)
settings_ = {**(model_ui() if entry.uses_llm else {}), **params_ui(entry.uses_llm)}
if settings_.get("top_p") == 1.0:
    settings_["top_p"] = None  # 1.0 is no nucleus cut: leave it out of the call
settings_["prompt_name"] = st.text_input("Prompt name", key="generate_prompt_name",
                                         help="Changing the template, system prompt, variables or parameters under the same name "
                                              "makes a new version (see Prompt versions).")
with stop_on_error():
    for section in entry.form:
        settings_.update(FORM[section](store, technique, settings_))
    if entry.uses_llm:
        settings_["system_prompt"] = st.text_area("System prompt (optional)", key="generate_system", height=68)
        settings_["output"] = output_ui()
        settings_["judge"] = judge_ui(settings_["model"])
settings_["run_name"] = st.text_input("Run name (optional)", key="generate_run_name") or None
if entry.versioned:
    load_version_ui(store, settings_["prompt_name"])
    settings_["version_label"] = st.text_input("Version name (optional)", key="generate_version_label",
                                               help="Name the prompt version this run makes or uses.") or None
    parent = st.session_state.get("generate_prompt_parent")
    settings_["prompt_parent"] = parent[1] if parent and parent[0] == settings_["prompt_name"] else None
config = RunConfig(technique=technique, **settings_)
if entry.versioned:
    version_ui(store, config)

go, save = st.columns([1, 3])
run_clicked = go.button("Generate", type="primary", key="generate_button")
save.download_button("Save as recipe", recipe_text(config), file_name=f"{technique}.yaml",
                     mime="application/x-yaml", key="generate_recipe_save")

if run_clicked:
    control = call_ui(jobs.start_generation, store.path, config)
    if control is not None:
        st.session_state["generate_job"] = control.job_id
        st.session_state.pop("generate_last_result", None)


def generation_ui() -> None:
    """The batch this page started, as it runs (a background job: leaving the page does not stop
    it, and its progress stays in the sidebar); when it ends, its result below."""
    job = jobs.get(st.session_state.get("generate_job", ""))
    if job is None:
        return
    if job.active:
        st.progress(job.fraction, text=literal_markdown(job.describe()))
        if job.recent:
            st.dataframe(pd.DataFrame([item_row(i) for i in job.recent]), hide_index=True, width="stretch")
        return
    del st.session_state["generate_job"]
    if job.result is not None:
        st.session_state["generate_last_result"] = job.result.to_dict()
    elif job.error:
        st.session_state["generate_job_error"] = job.error
    st.rerun()


job = jobs.get(st.session_state.get("generate_job", ""))
st.fragment(generation_ui, run_every=1.0 if job is not None and job.active else None)()
if "generate_job_error" in st.session_state:
    st.error(literal_markdown(st.session_state.pop("generate_job_error"), keep_breaks=True))
remember_ui()

last = st.session_state.get("generate_last_result")
if last:
    cost = "unknown" if last["cost_usd"] is None else f"${last['cost_usd']:.4f}"
    st.success(f"Run **{literal_markdown(last['name'])}** saved ({last['status']}): {last['n_items']} items, "
               f"{last['tokens_in']} + {last['tokens_out']} tokens, cost {cost}, {last['wall_s']} s"
               f"{', ' + str(last['n_cached']) + ' from cache' if last['n_cached'] else ''}. "
               "See it on the Explore, Review and Metrics pages.")
    if last["n_failed"] or last["n_skipped"]:
        st.warning(f"{last['n_failed']} calls failed and {last['n_skipped']} were not made "
                   "(budget). Reasons:\n\n" + "\n".join(f"- {literal_markdown(f)}" for f in last["failures"][:5]))
    for warning in last.get("warnings", []):
        st.warning(literal_markdown(warning))
    shown = ("distinct_1", "distinct_2", "mean_pairwise_cosine_distance", "near_duplicate_rate",
             "validity_rate", "truncated_rate", "judge_score_mean")
    st.dataframe(pd.DataFrame([{metric_label(k): format_metric(k, last["metrics"].get(k)) for k in shown}]),
                 hide_index=True)
    made = call_ui(run_items_view, store, last["run_id"])
    if made is not None and len(made):
        st.caption("The items of this run, with the variable values that made them:")
        st.dataframe(made, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn(width="large")})

st.divider()
st.subheader("Import a dataset")
st.caption("Bring existing texts (real reference data, or another tool's output) onto the same map: "
           "a .jsonl file (one JSON object per line) or a .csv file with a header.")
upload = st.file_uploader("JSONL or CSV file", key="generate_import_file")
import_column = st.text_input("Text column", value="text", key="generate_import_column")
import_name = st.text_input("Run name for the import (optional)", key="generate_import_run_name")
as_reference = st.checkbox("This is real reference data (shown in grey on the map, used for coverage)",
                           key="generate_import_reference")
import_again = st.checkbox("Import again (a file already imported is refused unless this is ticked)",
                           key="generate_import_again")
if st.button("Import", key="generate_import_button"):
    if upload is None:
        st.error("Choose a file first: a .jsonl or .csv file with a text column.")
    else:
        st.session_state.pop("generate_import_job", None)
        control = call_ui(jobs.start_import, store.path, upload.name, import_column.strip() or "text",
                          import_name.strip() or None, data=upload.getvalue(), reference=as_reference,
                          again=import_again)
        if control is not None:
            st.session_state["generate_import_job"] = control.job_id


job_ui("generate_import_job", lambda result: st.success(
    f"Imported {result.n_items} items as run **{literal_markdown(result.name)}**."), note_phase=True)
