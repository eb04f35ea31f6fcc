from pathlib import Path

import pytest

from synth.kernel import settings
from synth.kernel.errors import SynthError


def test_defaults_and_environment_override(monkeypatch):
    monkeypatch.delenv("SYNTH_NEAR_DUP_THRESHOLD", raising=False)
    assert settings.get("near_dup_threshold") == settings.DEFAULT_NEAR_DUP_THRESHOLD
    monkeypatch.setenv("SYNTH_NEAR_DUP_THRESHOLD", "0.75")
    assert settings.get("near_dup_threshold") == 0.75
    monkeypatch.setenv("SYNTH_LOAD_DEMO", "no")
    assert settings.get("load_demo") is False


def test_every_setting_has_help_and_a_synth_variable():
    for setting in settings.SETTINGS.values():
        assert setting.help.strip()
        assert setting.env.startswith("SYNTH_")


def test_invalid_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SYNTH_SEED", "seven")
    with pytest.raises(SynthError, match="SYNTH_SEED"):
        settings.get("seed")


def test_db_path_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_DB", str(tmp_path / "x.duckdb"))
    assert settings.get("db_path") == str(tmp_path / "x.duckdb")


def test_read_secret_from_environment_then_secrets_file(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('OPENAI_API_KEY = "sk-from-file-1234"\n')
    monkeypatch.setenv("SYNTH_SECRETS_FILE", str(secrets))
    assert settings.read_secret("OPENAI_API_KEY") == "sk-from-file-1234"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-5678")
    assert settings.read_secret("OPENAI_API_KEY") == "sk-from-env-5678"
    assert settings.read_secret("NOT_A_KEY_ANYWHERE") is None


def test_broken_secrets_file_is_reported(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("OPENAI_API_KEY = \n")
    monkeypatch.setenv("SYNTH_SECRETS_FILE", str(secrets))
    with pytest.raises(SynthError, match="secrets file"):
        settings.read_secret("OPENAI_API_KEY")


def test_default_database_lives_under_data():
    assert Path(settings.SETTINGS["db_path"].default).parent == settings.DATA_DIR


def test_sql_console_limits_and_debug_switch(monkeypatch):
    for name in ("SYNTH_SQL_MEMORY_LIMIT", "SYNTH_SQL_THREADS", "SYNTH_SQL_MAX_SECONDS", "SYNTH_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.get("sql_memory_limit"), settings.get("sql_threads"), settings.get("sql_max_seconds")) == \
        ("512MB", 1, 60.0)
    assert settings.get("debug") is False
    monkeypatch.setenv("SYNTH_DEBUG", "1")
    assert settings.get("debug") is True
    monkeypatch.setenv("SYNTH_SQL_THREADS", "two")
    with pytest.raises(SynthError, match="SYNTH_SQL_THREADS='two' is not valid"):
        settings.get("sql_threads")
