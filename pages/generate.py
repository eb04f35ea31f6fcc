"""Generate: a prompt template with {variables}, values per variable, a model, and a batch."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import require_app, get_store
from synth import providers, settings
from synth.errors import SynthError
from synth.generation import GenerationRequest, template_fields
from synth.pipeline import generate_run, import_run

DEFAULT_TEMPLATE = "Write one short customer review of a {product} that sounds {tone}."
DEFAULT_VALUES = {"product": "coffee grinder\nrain jacket\nphone case", "tone": "happy\nannoyed"}

require_app()


def model_ui() -> tuple[str, str | None]:
    st.sidebar.subheader("Model")
    model = st.sidebar.text_input(
        "litellm model", value=settings.get("default_model"), key="generate_model",
        help="The embedded model needs no key: " + ", ".join(providers.list_models()) + ". Hosted "
             "models take a provider prefix (openai/gpt-4o-mini, anthropic/...), with the key in the "
             "environment or .streamlit/secrets.toml.")
    api_base = st.sidebar.text_input(
        "API base (optional)", key="generate_api_base",
        help="An OpenAI-compatible server: Ollama (http://localhost:11434 with ollama/<model>) or "
             "vLLM / llama.cpp (http://host:8000/v1 with openai/<model>).")
    return model.strip(), (api_base.strip() or None)


def params_ui() -> dict:
    st.sidebar.subheader("Parameters")
    return {
        "temperature": st.sidebar.slider("Temperature", 0.0, 2.0, settings.DEFAULT_TEMPERATURE, 0.05,
                                         key="generate_temperature"),
        "max_tokens": int(st.sidebar.number_input("Max tokens", 1, 4096, settings.DEFAULT_MAX_TOKENS,
                                                  key="generate_max_tokens")),
        "n": int(st.sidebar.number_input("Batch size", 1, 1000, 5, key="generate_n")),
        "seed": int(st.sidebar.number_input("Seed", 0, 2**31 - 1, settings.DEFAULT_SEED,
                                            key="generate_seed")),
    }


def variables_ui(template: str) -> dict[str, list[str]]:
    """One text area per {variable} in the template, one value per line."""
    try:
        fields = template_fields(template)
    except SynthError as exc:
        st.error(str(exc))
        return {}
    variables = {}
    if fields:
        st.markdown("**Values per variable** (one per line)")
    for column, name in zip(st.columns(max(1, len(fields))), fields):
        raw = column.text_area(f"{{{name}}}", value=DEFAULT_VALUES.get(name, ""),
                               key=f"generate_var_{name}", height=120)
        variables[name] = [line.strip() for line in raw.splitlines() if line.strip()]
    return variables


st.title("Generate")
st.caption("Sample from a prompt template: every {variable} takes each of its values in turn, "
           "in a seeded random order. Each item records its model, prompt, parameters, tokens, "
           "latency and cost.")

model, api_base = model_ui()
params = params_ui()
prompt_name = st.text_input("Prompt name", value="reviews", key="generate_prompt_name",
                            help="Changing the template under the same name makes a new prompt version.")
template = st.text_area("Prompt template", value=DEFAULT_TEMPLATE, key="generate_template", height=100)
system_prompt = st.text_area("System prompt (optional)", key="generate_system", height=68)
variables = variables_ui(template)
run_name = st.text_input("Run name (optional)", key="generate_run_name")

if st.button("Generate", type="primary", key="generate_button"):
    request = GenerationRequest(template=template, variables=variables, model=model,
                                system_prompt=system_prompt, prompt_name=prompt_name,
                                run_name=run_name or None, api_base=api_base, **params)
    progress = st.progress(0.0, text="Starting…")
    live = st.empty()
    arrived: list[dict] = []

    def on_item(item, i, n):
        arrived.append({"#": i + 1, "text": item.text, "tokens": item.tokens_out,
                        "latency ms": round(item.latency_ms)})
        progress.progress((i + 1) / n, text=f"{i + 1} of {n} items")
        live.dataframe(pd.DataFrame(arrived), hide_index=True, width="stretch")

    try:
        result = generate_run(get_store(), request, on_item=on_item)
    except SynthError as exc:
        progress.empty()
        st.error(str(exc))
    else:
        st.session_state["generate_last_result"] = result.to_dict()
        progress.progress(1.0, text="Done: embedded and measured.")

last = st.session_state.get("generate_last_result")
if last:
    cost = "unknown" if last["cost_usd"] is None else f"${last['cost_usd']:.4f}"
    st.success(f"Run **{last['name']}** saved: {last['n_items']} items, "
               f"{last['tokens_in']} + {last['tokens_out']} tokens, cost {cost}, {last['wall_s']} s. "
               "See it on the Explore and Metrics pages.")
    metrics = {k: v for k, v in last["metrics"].items()
               if k in ("distinct_1", "distinct_2", "mean_pairwise_cosine_distance", "near_duplicate_rate")}
    st.dataframe(pd.DataFrame([metrics]), hide_index=True)


st.divider()
st.subheader("Import a dataset")
st.caption("Bring existing texts (real reference data, or another tool's output) onto the same map: "
           "a .jsonl file (one JSON object per line) or a .csv file with a header.")
upload = st.file_uploader("JSONL or CSV file", key="generate_import_file")
import_column = st.text_input("Text column", value="text", key="generate_import_column")
import_name = st.text_input("Run name for the import (optional)", key="generate_import_run_name")
if st.button("Import", key="generate_import_button"):
    if upload is None:
        st.error("Choose a file first: a .jsonl or .csv file with a text column.")
    else:
        try:
            result = import_run(get_store(), upload.name, import_column.strip() or "text",
                                import_name.strip() or None, data=upload.getvalue())
        except SynthError as exc:
            st.error(str(exc))
        else:
            st.success(f"Imported {result.n_items} items as run **{result.name}**.")
