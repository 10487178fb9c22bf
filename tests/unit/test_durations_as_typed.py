"""A duration setting past its bound is refused with the value as the operator typed it (words55 F3):
``dlq.max_age=99999999999y`` said ``not 3,153,599,999,968,463,872s`` (the seconds it was read as), whatever the
source: a ``GAMEAD_*`` variable, a section's JSON, the config file, a flag. Cut at 40 characters, as every echo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamead_core.config import GameadSettings, load_settings
from gamead_core.config.fields import setting_range
from gamead_core.errors import ConfigError
from tests.support import drop_gamead_env
from tests.unit.test_setting_bounds import FIELDS

TYPED = "99999999999y"
SECONDS = [path for path, _, _ in FIELDS if (span := setting_range(GameadSettings, path)) and span.seconds]


def _refused() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


def test_the_walk_finds_the_duration_settings() -> None:
    assert len(SECONDS) > 20 and ("dlq", "max_age") in SECONDS, SECONDS


@pytest.mark.parametrize("path", SECONDS, ids=[".".join(p) for p in SECONDS])
def test_every_duration_past_its_bound_is_refused_as_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           path: tuple[str, ...]) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GAMEAD_" + "__".join(p.upper() for p in path), TYPED)
    message = _refused()
    assert message.endswith(f", not {TYPED}"), message


@pytest.mark.parametrize("source", ["env", "section-json", "file", "flag"])
def test_each_source_echoes_what_was_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    overrides = {}
    if source == "env":
        monkeypatch.setenv("GAMEAD_DLQ__MAX_AGE", TYPED)
    elif source == "section-json":
        monkeypatch.setenv("GAMEAD_DLQ", json.dumps({"max_age": TYPED}))
    elif source == "file":
        (tmp_path / "config.yaml").write_text(f"dlq:\n  max_age: {TYPED}\n")
    else:
        overrides = {"dlq": {"max_age": TYPED}}
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert str(caught.value).endswith(f"dlq.max_age ({_where(source)}) must be 1ms to 3650d, not {TYPED}"), caught.value


def test_a_long_text_is_cut_at_40_characters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GAMEAD_QUEUE__ACK_WAIT", "9" * 60 + "s")
    assert _refused().endswith(f"must be 1s to 1d, not {'9' * 40}…")


def _where(source: str) -> str:
    return {"env": f"GAMEAD_DLQ__MAX_AGE={TYPED}", "section-json": "GAMEAD_DLQ",
            "file": "config file config.yaml, line 2", "flag": "a command-line option"}[source]
