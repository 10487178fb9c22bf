"""Fixtures of the CLI tests. ``api_url`` (a live API + worker) comes from ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.ports import ReservedPort
from tests.support import Proc, check_port_taken, clean_env, drop_gamead_env, gamead_argv, on_a_free_port, wait_for


@pytest.fixture
def runner() -> CliRunner:
    """A runner whose result keeps stdout (``.stdout``) and stderr (``.stderr``) apart."""
    return CliRunner()


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No ``GAMEAD_*`` env vars and an empty working directory (so no ./config.yaml is picked up)."""
    yield drop_gamead_env(monkeypatch, tmp_path)


@pytest.fixture
def closed_api_url(closed_port: Callable[[], int]) -> str:
    """URL of a local port nothing listens on, held for the test (tests/conftest.py ``closed_port``: connecting is
    refused, and no other process can bind it meanwhile; before, bound then let go at once: anyone's)."""
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture(scope="module")
def api_without_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real ``gamead serve`` whose NATS never started: it answers 503 ``queue_unavailable`` (stopped by
    SIGTERM, by its PID, at the end of the module). Forked by the fork server (``tests.support.Proc``): no
    interpreter start and imports of its own, which took ~8 s of the fixture on a loaded 2-core machine."""
    cwd = tmp_path_factory.mktemp("serve")
    nothing = ReservedPort()  # held for the module: nothing listens there, nor can (before: a free_port() pick)
    nats_url = f"nats://127.0.0.1:{nothing.port}"

    def start(port: int) -> tuple[Proc, str]:
        """Picked again (:func:`on_a_free_port`) if another process took ``port`` before the API bound it."""
        api = f"http://127.0.0.1:{port}"
        serve = Proc("api", gamead_argv("serve", "--port", str(port)), clean_env(GAMEAD_NATS__URL=nats_url),
                     cwd / f"api-{port}.log", cwd=cwd)

        def answers_503() -> bool:
            check_port_taken(serve, api)
            try:
                return httpx.get(f"{api}/ads?limit=1", timeout=2).status_code == 503
            except httpx.HTTPError:
                return False

        try:
            serve.start()
            wait_for(answers_503, timeout=60, what="the API serving 503 while NATS is away")
        except BaseException:
            serve.stop(timeout=30)
            raise
        return serve, api

    try:
        serve, api = on_a_free_port(start)
        try:
            yield api
        finally:
            serve.stop(timeout=30)
    finally:
        nothing.release()
