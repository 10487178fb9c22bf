"""The embedded nats-server's GOMAXPROCS (``embedded.gomaxprocs``; issue 14: the server shares the machine with
the API and the workers, and Go given every core spends a quarter of its CPU switching threads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats, go_max_procs, usable_cores


def test_half_the_cores_at_least_one_unless_set_or_given_by_the_environment() -> None:
    assert go_max_procs(0, {}, 2) == "1"  # this machine: the server on one core, the Python roles beside it
    assert go_max_procs(0, {}, 8) == "4"
    assert go_max_procs(0, {}, 1) == "1"  # never 0: Go would read that as "all"
    assert go_max_procs(0, {"GOMAXPROCS": "2"}, 8) is None  # the operator's own, kept
    assert go_max_procs(0, {"GOMAXPROCS": " "}, 8) == "4"  # blank is not a value
    assert go_max_procs(3, {"GOMAXPROCS": "2"}, 8) == "3"  # the setting wins


def test_the_servers_environment_carries_it_and_keeps_the_rest(tmp_path: Path) -> None:
    assert EmbeddedNats(tmp_path, gomaxprocs=2).env({"PATH": "/bin"}) == {"PATH": "/bin", "GOMAXPROCS": "2"}
    assert EmbeddedNats(tmp_path).env({"GOMAXPROCS": "7"}) == {"GOMAXPROCS": "7"}
    assert EmbeddedNats(tmp_path).env({})["GOMAXPROCS"] == str(max(1, usable_cores() // 2))


def test_the_setting_is_read_and_bounded() -> None:
    assert GameadSettings().embedded.gomaxprocs == 0
    assert GameadSettings.model_validate({"embedded": {"gomaxprocs": 2}}).embedded.gomaxprocs == 2
    with pytest.raises(ValidationError, match="gomaxprocs"):
        GameadSettings.model_validate({"embedded": {"gomaxprocs": -1}})
