"""``gamead up``'s config line names the file by its absolute path (newcomer55 F3): README "Every path it prints is
absolute … its hints are for another terminal". Run with ``./config.yaml`` (a copy of ``config.yaml.example``), it
said ``✓ config: config file config.yaml``, the one relative path of its console."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_cli.commands.up_console import config_line


def test_the_config_line_names_the_file_in_force_by_its_absolute_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = config_line(Path("config.yaml"), tmp_path / ".gamead" / "config-in-force.yaml")
    assert f"config file {tmp_path / 'config.yaml'};" in line, line
