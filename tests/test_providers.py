import logging

import pytest

from synth.kernel.errors import SynthError
from synth.llm import providers


def test_redact_url_drops_credentials():
    assert providers.redact_url("https://user:secret@host:8000/v1") == "https://host:8000/v1"
    assert providers.redact_url("http://localhost:11434") == "http://localhost:11434"
    assert providers.redact_url(None) is None


def test_local_models_are_listed_from_the_registry():
    assert providers.list_models() == ["local/smollm2-135m"]
    with pytest.raises(ValueError, match="already registered"):
        providers.register_local_model(providers.LOCAL_MODELS["smollm2-135m"])


def test_unknown_local_model():
    with pytest.raises(SynthError, match="Unknown local model local/nope"):
        providers.check_model("local/nope")


def test_hosted_model_without_key_names_the_key():
    with pytest.raises(SynthError, match=r"needs OPENAI_API_KEY.*secrets.toml"):
        providers.check_model("openai/gpt-4o-mini")


def test_self_hosted_server_needs_no_key():
    assert providers.credentials("openai/served", api_base="http://127.0.0.1:9/v1") == {
        "api_key": providers.NO_KEY, "api_base": "http://127.0.0.1:9/v1"}
    assert providers.credentials("ollama/llama3", api_base="http://127.0.0.1:11434") == {
        "api_base": "http://127.0.0.1:11434"}


def test_a_password_in_the_address_becomes_a_header_and_a_secret_to_mask():
    kwargs = providers.credentials("openai/served", api_base="http://ann:pw-123@127.0.0.1:9/v1")
    assert kwargs == {"api_key": providers.NO_KEY, "api_base": "http://127.0.0.1:9/v1",
                      "extra_headers": {"Authorization": "Basic YW5uOnB3LTEyMw=="}}  # ann:pw-123
    assert providers.secret_values(kwargs) == ["YW5uOnB3LTEyMw==", "pw-123"]


def test_key_from_secrets_file_reaches_the_server(tmp_path, monkeypatch, make_server):
    key = "sk-test-secret-abcdef123456"
    srv = make_server(required_key=key)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'OPENAI_API_KEY = "{key}"\n')
    monkeypatch.setenv("SYNTH_SECRETS_FILE", str(secrets))
    result = providers.complete("openai/test-model", [{"role": "user", "content": "hi"}],
                                api_base=srv.api_base)
    assert result.text == "Synthetic reply 1 to: hi"
    assert srv.config.requests[0]["authorization"] == f"Bearer {key}"


def test_rejected_key_is_explained_without_echoing_it(monkeypatch, make_server, caplog):
    caplog.set_level(logging.DEBUG)
    srv = make_server(required_key="sk-right-key-000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-999999")
    with pytest.raises(SynthError) as err:
        providers.complete("openai/test-model", [{"role": "user", "content": "hi"}], api_base=srv.api_base)
    assert "rejected the API key" in str(err.value)
    assert "sk-wrong-key-999999" not in str(err.value)
    assert "sk-wrong-key-999999" not in caplog.text


@pytest.mark.parametrize("status, hint", [
    (500, "provider failed"),
    (429, "rate-limiting"),
    (503, "unavailable"),
    (404, "does not know this model"),
    (400, "refused the request"),
])
def test_provider_errors_say_what_to_do(make_server, status, hint):
    srv = make_server(fail_status=status)
    with pytest.raises(SynthError, match=hint):
        providers.complete("openai/test-model", [{"role": "user", "content": "hi"}], api_base=srv.api_base)


def test_unreachable_server():
    with pytest.raises(SynthError, match="Cannot reach the provider"):
        providers.complete("openai/test-model", [{"role": "user", "content": "hi"}],
                           api_base="http://127.0.0.1:9/v1")


def test_unknown_price_is_recorded_as_unknown(server):
    result = providers.complete("openai/not-a-priced-model", [{"role": "user", "content": "hi"}],
                                api_base=server.api_base)
    assert result.cost_usd is None


def test_known_price_comes_from_litellm(server):
    result = providers.complete("openai/gpt-4o-mini", [{"role": "user", "content": "one two three"}],
                                api_base=server.api_base)
    import litellm

    price = litellm.model_cost["gpt-4o-mini"]
    expected = (result.tokens_in * price["input_cost_per_token"]
                + result.tokens_out * price["output_cost_per_token"])
    assert result.cost_usd == pytest.approx(expected)
    assert result.cost_usd > 0


# -- the embedded model: the same seed gives the same text, whatever ran before -----------------

EMBEDDED = "smollm2-135m"
COLOUR = [{"role": "user", "content": "Name a colour."}]


def _say(messages, seed, **kw):
    out = providers.local_chat(EMBEDDED, messages, temperature=1.0, max_tokens=12, seed=seed, **kw)
    return out["choices"][0]["message"]["content"]


@pytest.fixture
def fresh_embedded_model():
    """The embedded model loaded anew, so the test's first call is the first after the load."""
    providers._unload_llama(EMBEDDED)
    yield providers._load_llama(EMBEDDED)


def test_embedded_model_same_seed_same_text_on_the_first_and_every_later_call(fresh_embedded_model):
    first = _say(COLOUR, seed=9)
    second = _say(COLOUR, seed=9)
    # other prompts in between, one sharing the chat template's opening and this prompt as a prefix
    _say([{"role": "user", "content": "Write one sentence about a tent."}], seed=3)
    _say([{"role": "user", "content": "Name a colour. Then name a fruit."}], seed=4)
    _say(COLOUR, seed=10)
    later = _say(COLOUR, seed=9)
    assert first == second == later
    assert first.strip()


def test_embedded_model_different_seeds_can_differ(fresh_embedded_model):
    texts = {_say(COLOUR, seed=s) for s in range(4)}
    assert len(texts) > 1


def test_embedded_model_evaluates_every_prompt_whole(fresh_embedded_model, monkeypatch):
    """The cause of the first-call difference: llama-cpp-python reused the previous call's KV cache
    for a shared prompt prefix and evaluated only the rest, so a prompt's logits depended on the
    calls before it. Each call must start from an empty context and evaluate its whole prompt."""
    llama = fresh_embedded_model
    evals = []
    real_eval = llama.eval

    def spy(tokens):
        evals.append((llama.n_tokens, len(tokens)))
        return real_eval(tokens)

    monkeypatch.setattr(llama, "eval", spy)
    for messages in (COLOUR, COLOUR, [{"role": "user", "content": "Name a fruit."}], COLOUR):
        evals.clear()
        out = providers.local_chat(EMBEDDED, messages, temperature=1.0, max_tokens=4, seed=9)
        assert evals[0] == (0, out["usage"]["prompt_tokens"]), "the call reused the previous call's KV cache"
