"""A config file's size in values, not only bytes: many bad entries, or very many entries, are refused in one short
line at once (attack36 F1: 1,000 bad ``auth.tokens`` items took 94 s and printed a 116 KB line; 400,000 in 800 KB
were killed after 2 minutes at 1.09 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_core.config import load_settings
import gamead_core.config.load as load_module
from gamead_core.errors import ConfigError

from tests.support import drop_gamead_env


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


def _tokens(tmp_path: Path, items: list[str]) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("auth:\n  tokens: [" + ",".join(items) + "]\n")
    return path


def test_five_thousand_bad_items_name_the_first_ten_and_count_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real = getattr(load_module, "file_lines", None)
    monkeypatch.setattr(load_module, "file_lines", lambda path: reads.append(path) or real(path), raising=False)
    path = _tokens(tmp_path, ["1"] * 5000)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert text.count("auth.tokens.") == 10 and "auth.tokens.9 (config file" in text
    assert text.endswith("; and 4990 more")
    assert len(text) < 2_000  # before: one 116 KB line at 1,000 items
    assert reads == [path]  # the file's key lines read once, not once per error


def test_a_file_of_four_hundred_thousand_items_is_refused_by_its_count(tmp_path: Path) -> None:
    path = _tokens(tmp_path, ["1"] * 400_000)  # 800 KB: under the byte bound
    with pytest.raises(ConfigError, match=r"holds more than 50,000 YAML nodes .*: is it the right file\?"):
        load_settings(path)


def test_a_long_token_list_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    entries = [f"{{name: n{i}, token: t0k3n-{i:05d}, role: submitter}}" for i in range(3000)]
    path.write_text("auth:\n  tokens: [" + ",".join(entries) + "]\n")
    assert len(load_settings(path).auth.tokens) == 3000


def test_a_key_written_twice_in_a_section_s_json_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """attack36 F6: ``GAMEAD_API='{"port": 8080, "port": 9090}'`` ran on 9090 without a word, where the config file
    refuses ``api: {port: 8080, port: 9090}``."""
    monkeypatch.setenv("GAMEAD_API", '{"port": 8080, "port": 9090}')
    with pytest.raises(ConfigError, match=r'GAMEAD_API: the key "port" appears twice in one object'):
        load_settings()


def test_sixty_thousand_bad_tokens_in_a_variable_make_a_short_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """attack36 F6: ``GAMEAD_AUTH`` of 60,000 bad tokens gave one 5.9 MB error line."""
    monkeypatch.setenv("GAMEAD_AUTH__TOKENS", "[" + ",".join(["1"] * 60_000) + "]")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).endswith("; and 59990 more") and len(str(caught.value)) < 3_000
