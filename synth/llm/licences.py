"""Licence notes: what the makers of known models say about using their outputs, in a registry.

Reads: a litellm model name (and whether it goes to an OpenAI-compatible server of your own).
Writes: nothing. The Generate page shows the note of the chosen model; exports, dataset cards and
reports carry the notes of every model that made an item.

The notes summarise the published terms as we read them (reviewed 2025); terms change and this is
not legal advice, so every note links its source. A model that no entry matches is marked
"unknown": we never guess.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pandas as pd

from synth.kernel.registry import Registry

REVIEWED = "2025"
DISCLAIMER = (f"Summaries of the published terms as reviewed in {REVIEWED}; terms change and this is not "
              "legal advice: check the linked source before training on the data.")

# How the terms treat using outputs to train models.
ALLOWED = "allowed"
CONDITIONS = "allowed with conditions"
FORBIDDEN = "forbidden for competing models"
UNKNOWN = "unknown"
TRAINING_USE = (ALLOWED, CONDITIONS, FORBIDDEN, UNKNOWN)

# Prefixes for models you serve yourself: only the weights' licence applies, not a host's terms.
SELF_HOSTED = ("local/", "ollama/", "ollama_chat/", "huggingface/", "hosted_vllm/", "vllm/", "llamafile/",
               "lm_studio/")


@dataclass(frozen=True)
class Terms:
    """One family of models and what its terms say about outputs."""

    key: str
    maker: str
    licence: str
    training_use: str
    summary: str
    source: str
    open_weights: bool
    patterns: tuple[str, ...]  # regular expressions matched against the model name, lower-cased

    def matches(self, name: str) -> bool:
        return any(re.search(p, name) for p in self.patterns)


LICENCES = Registry("licence")


def _add(terms: Terms) -> Terms:
    if terms.training_use not in TRAINING_USE:
        raise ValueError(f"training_use must be one of {TRAINING_USE}")
    LICENCES.register(terms.key, terms)
    return terms


# Order matters: the first match wins, so open-weight families come before the closed providers
# whose names they contain (gpt-oss before gpt-).
for _terms in [
    Terms("symbolic", "Synth Studio grammar", "none (no model)", ALLOWED,
          "Made by a grammar with no language model: no model's terms apply.", "", False, (r"^symbolic$",)),
    Terms("smollm2", "Hugging Face (SmolLM2)", "Apache-2.0", ALLOWED,
          "Open weights under Apache-2.0, which puts no limit on using the outputs.",
          "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct", True, (r"smollm",)),
    Terms("gpt-oss", "OpenAI (gpt-oss open weights)", "Apache-2.0", ALLOWED,
          "Open weights under Apache-2.0 (with a usage policy); outputs may be used to train models.",
          "https://huggingface.co/openai/gpt-oss-20b", True, (r"gpt-oss",)),
    Terms("llama-3.1+", "Meta (Llama 3.1 and later)", "Llama Community License", CONDITIONS,
          "Outputs may be used to train other models, but a model built with them and distributed must "
          "say 'Built with Llama' and have a name that begins with 'Llama'.",
          "https://www.llama.com/llama3_1/license/", True,
          (r"llama-?3\.[1-9]", r"llama-?4", r"llama3\.[1-9]")),
    Terms("llama-2/3", "Meta (Llama 2, Llama 3)", "Llama 2 / Meta Llama 3 Community License", FORBIDDEN,
          "The outputs may not be used to improve any other large language model (only Llama and its "
          "derivatives).", "https://www.llama.com/llama3/license/", True, (r"llama-?[23](?![.\d])",)),
    Terms("qwen", "Alibaba (Qwen)", "Apache-2.0 (most sizes) or Qwen License", CONDITIONS,
          "Most Qwen2.5 and Qwen3 weights are Apache-2.0; sizes under the Qwen License ask that a model "
          "trained on the outputs and distributed display 'Built with Qwen'.",
          "https://huggingface.co/Qwen", True, (r"qwen",)),
    Terms("deepseek-open", "DeepSeek (open weights)", "MIT", ALLOWED,
          "DeepSeek-R1 and V3 weights are MIT-licensed; R1's card explicitly allows distillation.",
          "https://huggingface.co/deepseek-ai/DeepSeek-R1", True, (r"deepseek-(r1|v3)",)),
    Terms("gemma", "Google (Gemma)", "Gemma Terms of Use", CONDITIONS,
          "Google claims no rights in outputs, but a model trained on Gemma outputs counts as a Model "
          "Derivative: the Gemma Terms' use restrictions pass on to it.",
          "https://ai.google.dev/gemma/terms", True, (r"gemma",)),
    Terms("mistral-open", "Mistral AI (Apache-2.0 weights)", "Apache-2.0", ALLOWED,
          "Mistral 7B and Mixtral 8x7B / 8x22B weights are Apache-2.0, with no limit on outputs.",
          "https://mistral.ai/news/announcing-mistral-7b", True,
          (r"open-mistral-7b", r"open-mixtral", r"(^|/)mistral(-7b)?(:|$)", r"(^|/)mixtral")),
    Terms("phi", "Microsoft (Phi)", "MIT", ALLOWED,
          "Phi-3 and Phi-4 weights are MIT-licensed, with no limit on outputs.",
          "https://huggingface.co/microsoft/phi-4", True, (r"(^|/)phi-?[34]",)),
    Terms("openai", "OpenAI", "OpenAI Terms of Use / Services Agreement", FORBIDDEN,
          "You may not use output to develop models that compete with OpenAI.",
          "https://openai.com/policies/terms-of-use", False,
          (r"^openai/", r"(^|/)gpt-", r"(^|/)chatgpt", r"(^|/)o[134](-|$)")),
    Terms("anthropic", "Anthropic", "Anthropic Commercial / Consumer Terms", FORBIDDEN,
          "You may not use the services or outputs to build a competing product or service, including to "
          "train competing AI models.", "https://www.anthropic.com/legal/commercial-terms", False,
          (r"^anthropic/", r"claude")),
    Terms("google-gemini", "Google (Gemini API)", "Gemini API Additional Terms of Service", FORBIDDEN,
          "You may not use the services to develop models that compete with Gemini API or Google AI "
          "Studio.", "https://ai.google.dev/gemini-api/terms", False, (r"^gemini/", r"gemini")),
    Terms("xai", "xAI (Grok)", "xAI Terms of Service", FORBIDDEN,
          "You may not use the service or outputs to develop models that compete with xAI.",
          "https://x.ai/legal/terms-of-service", False, (r"^xai/", r"grok")),
]:
    _add(_terms)


@dataclass(frozen=True)
class ModelNote:
    """The licence note of one model as it was called."""

    model: str
    key: str
    maker: str
    licence: str
    training_use: str
    summary: str
    source: str
    open_weights: bool | None

    @property
    def restricts_training(self) -> bool | None:
        """True if the terms forbid training competing models on the outputs; None if unknown."""
        return None if self.training_use == UNKNOWN else self.training_use == FORBIDDEN

    def to_dict(self) -> dict:
        return {**asdict(self), "restricts_training": self.restricts_training}


def note_for(model: str | None, api_base: str | None = None) -> ModelNote:
    """The licence note for ``model``. With ``api_base`` an ``openai/`` name means "a server of your
    own that speaks the OpenAI protocol", so only the rest of the name says which model it is."""
    if not model or not str(model).strip():
        return ModelNote(model="(none)", key=UNKNOWN, maker="unknown", licence="unknown",
                         training_use=UNKNOWN, summary="No model is recorded (imported data): the terms "
                         "of the data's source apply and are unknown here.", source="", open_weights=None)
    name = str(model).strip().lower()
    hosted_by = None
    if api_base and name.startswith("openai/"):
        name = name[len("openai/"):]
        hosted_by = "your own OpenAI-compatible server"
    for terms in LICENCES.values():
        if terms.key == "openai" and hosted_by:
            continue  # an OpenAI-compatible server of your own is not OpenAI
        if terms.matches(name):
            summary = terms.summary
            prefix = name.split("/", 1)[0] + "/" if "/" in name else ""
            if terms.open_weights and prefix and prefix not in SELF_HOSTED:
                summary += f" Served by {prefix[:-1]}: that host's own terms also apply."
            return ModelNote(model=str(model), key=terms.key, maker=terms.maker, licence=terms.licence,
                             training_use=terms.training_use, summary=summary, source=terms.source,
                             open_weights=terms.open_weights)
    return ModelNote(model=str(model), key=UNKNOWN, maker="unknown", licence="unknown", training_use=UNKNOWN,
                     summary="Not in Synth Studio's licence table: the terms for using its outputs are "
                     "unknown here. Check the provider's terms before training on them.",
                     source="", open_weights=None)


def notes_table(models: list[str | None], api_bases: dict[str, str | None] | None = None) -> pd.DataFrame:
    """One row per distinct model: its licence note (for cards, reports and the Export page)."""
    api_bases = api_bases or {}
    seen: list[str | None] = []
    for m in models:
        if m not in seen:
            seen.append(m)
    rows = [note_for(m, api_bases.get(m) if m else None).to_dict() for m in seen]
    columns = ["model", "maker", "licence", "training_use", "restricts_training", "summary", "source",
               "open_weights", "key"]
    return pd.DataFrame(rows, columns=columns)


def known_terms() -> pd.DataFrame:
    """The whole table, one row per family of models."""
    return pd.DataFrame([{k: v for k, v in asdict(t).items() if k != "patterns"}
                         | {"matches": ", ".join(t.patterns)} for t in LICENCES.values()])
