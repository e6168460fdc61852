from pathlib import Path

import pytest

from ragcli.core.config import Settings, load_settings
from ragcli.core.errors import ConfigError


def test_precedence_defaults_toml_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "ragcli.toml"
    toml.write_text('k = 7\nchunk_tokens = 150\nllm_model = "from-toml"\n')
    env = {"RAGCLI_K": "9", "RAGCLI_HOME": str(tmp_path / "h")}
    s = load_settings({"chunk_tokens": 120}, toml, env)
    assert s.k == 9  # env beats toml
    assert s.chunk_tokens == 120  # flag beats toml
    assert s.llm_model == "from-toml"  # toml beats default
    assert s.chunk_overlap == Settings().chunk_overlap  # default
    assert s.data_dir == tmp_path / "h"


def test_openai_settings_select_the_openai_generator() -> None:
    assert load_settings(environ={}).generator == "extractive"
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    assert load_settings(environ=env).generator == "openai"
    assert load_settings({"llm": "extractive"}, environ=env).generator == "extractive"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k = [", "not valid TOML"),
        ("bogus = 1", "unknown setting 'bogus'"),
        ('k = "many"', "k has an invalid value"),
        ("k = 0", "k must be at least 1"),
        ("chunk_overlap = 500", "chunk_overlap must be between"),
        ('embedder = "word2vec"', "unknown embedder"),
        ("source_floor = 5", "source_floor must be between 0 and 1, got 5"),
        ("abstain_threshold = -0.1", "abstain_threshold must be between 0 and 1"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "ragcli.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config_file=toml, environ={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="RAGCLI_K"):
        load_settings(environ={"RAGCLI_K": "lots"})


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config_file=tmp_path / "nope.toml", environ={})


def test_api_key_is_not_in_repr() -> None:
    s = load_settings(environ={"OPENAI_API_KEY": "sk-secret-123"})
    assert "sk-secret-123" not in repr(s)
