"""ci53: a test picks a free port (:func:`free_port`) and hands it to a process that binds it later (``gamead
serve --port P``, a nats-server); on this shared machine another process may take it in between. The harness's
one mechanism for it, :func:`tests.support.on_a_free_port` (used by ``start_api``, ``start_limited`` and every
test that picks a port for a process), starts again on another pick."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests import support


def test_a_picked_port_another_process_took_first_is_picked_again(
    nats_server: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first pick is held by a listener of this test (as another process would take it between the pick and
    the bind): the API started on it says "address already in use", and the helper starts it again on the next
    pick, where it serves. Before (no second pick): ``PortTaken`` ended the start."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        first = taken.getsockname()[1]
        picks, pick = iter([first]), support.free_port
        monkeypatch.setattr(support, "free_port", lambda: next(picks, None) or pick())
        proc, url = support.start_api(nats_server.url, tmp_path)
        try:
            assert "address already in use" in (tmp_path / f"api-{first}.log").read_text()  # the first pick lost
            assert url != f"http://127.0.0.1:{first}"
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        finally:
            proc.stop()
