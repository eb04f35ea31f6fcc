"""Licence notes: known families are recognised, unknown models stay unknown."""

import pytest

from synth.llm import licences
from synth.llm.licences import FORBIDDEN, UNKNOWN, note_for, notes_table


@pytest.mark.parametrize("model, key, restricts", [
    ("local/smollm2-135m", "smollm2", False),
    ("openai/gpt-4o-mini", "openai", True),
    ("gpt-4o", "openai", True),
    ("o3-mini", "openai", True),
    ("anthropic/claude-3-5-sonnet-20241022", "anthropic", True),
    ("gemini/gemini-1.5-pro", "google-gemini", True),
    ("xai/grok-2", "xai", True),
    ("ollama/llama3", "llama-2/3", True),
    ("ollama/llama3.1:8b", "llama-3.1+", False),
    ("ollama/gemma2", "gemma", False),
    ("ollama/qwen2.5:7b", "qwen", False),
    ("ollama/gpt-oss:20b", "gpt-oss", False),  # open weights, not OpenAI's API terms
    ("symbolic", "symbolic", False),
])
def test_known_models(model, key, restricts):
    note = note_for(model)
    assert note.key == key
    assert note.restricts_training is restricts
    assert note.summary


@pytest.mark.parametrize("model", ["cohere/command-r", "mistral/mistral-large-latest", "azure/my-deployment",
                                   "some-new-model"])
def test_unknown_models_are_not_guessed(model):
    note = note_for(model)
    assert (note.key, note.training_use, note.restricts_training) == (UNKNOWN, UNKNOWN, None)
    assert "unknown" in note.summary


def test_openai_prefix_with_own_server_is_not_openai():
    assert note_for("openai/gpt-4o").key == "openai"
    assert note_for("openai/test-model", api_base="http://127.0.0.1:8000/v1").key == UNKNOWN
    assert note_for("openai/qwen2.5-7b", api_base="http://127.0.0.1:8000/v1").key == "qwen"


def test_hosted_open_weights_name_the_host():
    assert "Served by groq" in note_for("groq/llama-3.3-70b-versatile").summary
    assert "Served by" not in note_for("ollama/llama3.1").summary


def test_imported_items_have_no_model():
    note = note_for(None)
    assert note.training_use == UNKNOWN and "imported" in note.summary


def test_notes_table_one_row_per_model():
    table = notes_table(["local/smollm2-135m", None, "openai/gpt-4o", "local/smollm2-135m"])
    assert table["model"].tolist() == ["local/smollm2-135m", "(none)", "openai/gpt-4o"]
    assert table["training_use"].tolist()[2] == FORBIDDEN
    assert set(licences.known_terms()["training_use"]) <= set(licences.TRAINING_USE)


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError):
        licences.LICENCES.register("openai", licences.LICENCES["openai"])
