"""Fixtures of the CLI tests. ``api_url`` (a live API + worker) comes from ``tests/conftest.py``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import drop_gamead_env


@pytest.fixture
def runner() -> CliRunner:
    """A runner whose result keeps stdout (``.stdout``) and stderr (``.stderr``) apart."""
    return CliRunner()


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No ``GAMEAD_*`` env vars and an empty working directory (so no ./config.yaml is picked up)."""
    yield drop_gamead_env(monkeypatch, tmp_path)


@pytest.fixture
def closed_api_url() -> str:
    """URL of a local port nothing listens on (bound then released: connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
