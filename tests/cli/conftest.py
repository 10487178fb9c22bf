"""Fixtures of the CLI tests. ``api_url`` (a live API + worker) comes from ``tests/conftest.py``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import Proc, clean_env, drop_gamead_env, gamead_argv, wait_for


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


@pytest.fixture(scope="module")
def api_without_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real ``gamead serve`` whose NATS never started: it answers 503 ``queue_unavailable`` (stopped by
    SIGTERM, by its PID, at the end of the module). Forked by the fork server (``tests.support.Proc``): no
    interpreter start and imports of its own, which took ~8 s of the fixture on a loaded 2-core machine."""
    from gamead_core.embedded import free_port

    api = f"http://127.0.0.1:{free_port()}"
    cwd = tmp_path_factory.mktemp("serve")
    serve = Proc("api", gamead_argv("serve", "--port", api.rsplit(":", 1)[1]),
                 clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{free_port()}"), cwd / "api.log", cwd=cwd)

    def answers_503() -> bool:
        try:
            return httpx.get(f"{api}/ads?limit=1", timeout=2).status_code == 503
        except httpx.HTTPError:
            return False

    try:
        serve.start()
        wait_for(answers_503, timeout=60, what="the API serving 503 while NATS is away")
        yield api
    finally:
        serve.stop(timeout=30)
