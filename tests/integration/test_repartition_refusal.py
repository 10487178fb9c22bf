"""attack28b F2 and M1: a start whose configuration is refused after ``gamead serve``'s pre-check passed (here: NATS
was away at the pre-check and came back) ends the start, exit 5 and one line, as the pre-check would have. Before,
the API's link set-up retried the refusal every second, logged "NATS not reachable … yet (queue.partitions is 1 but
… holding 2 ad(s) …)" with ``/readyz`` saying NATS "unavailable: connecting", an ERROR "this node takes no submit"
once a second, and with ``queue.repartition: true`` repartitioned the queue once it drained, under live traffic.
A plain nats-server stopped and started again by its PID (same port, same store)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats, nats_server_binary, wait_for_listener
from gamead_core.errors import QueueUnavailable
from tests.support import (
    PortTaken,
    Proc,
    ad,
    check_port_taken,
    clean_env,
    gamead_argv,
    on_a_free_port,
    start_api,
    wait_for,
    work_streams,
)

P3 = {"GAMEAD_QUEUE__PARTITIONS": "3", "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "3600"}


def _queued_then_away(server: EmbeddedNats, tmp_path: Path, procs: list[Proc], count: int) -> dict[str, Any]:
    """``count`` ads queued in a 3-partition queue (no worker), the API stopped, then NATS stopped. Returns the
    work streams as they were."""
    api, api_url = start_api(server.url, tmp_path, **P3, **({"GAMEAD_NATS__TOKEN": server.token}
                                                          if server.token else {}))
    procs.append(api)
    with httpx.Client(base_url=api_url, timeout=30) as http:
        for i in range(count):
            assert http.post("/ads", json=ad(f"Waiting {i}", 2)).status_code == 202
    api.stop(timeout=10)
    before = work_streams(server.url, server.token)
    assert sorted(before) == ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]
    assert sum(s["messages"] for s in before.values()) == count
    server.stop()
    return before


def _serve_while_nats_is_away(url: str, tmp_path: Path, procs: list[Proc], **env: str) -> tuple[Proc, int]:
    """``gamead serve`` (the default queue.partitions 1) started while NATS is away: its pre-check is skipped and
    it serves 503. Returns once it answers ``/readyz`` (503)."""
    def start(port: int) -> tuple[Proc, int]:
        serve = Proc("serve", gamead_argv("serve", "--port", str(port)),
                     clean_env(GAMEAD_NATS__URL=url, GAMEAD_NATS__CONNECT_TIMEOUT="1", **env),
                     tmp_path / f"serve-{port}.log").start()
        procs.append(serve)

        def unready() -> bool:
            check_port_taken(serve, f"http://127.0.0.1:{port}")  # picked again (on_a_free_port)
            assert serve.alive(), serve.output()[-3000:]
            return _unready(port)

        wait_for(unready, timeout=30, what="the API serving 503 while NATS is away")
        return serve, port

    return on_a_free_port(start)


def _ended(serve: Proc) -> int:
    wait_for(lambda: not serve.alive(), timeout=60, what="the refused start to end")
    assert serve.popen is not None
    code = serve.popen.poll()
    assert code is not None
    return code


def _console_lines(serve: Proc) -> list[str]:
    """What the process wrote that is not one of its JSON log lines (the CLI's red line)."""
    return [line for line in serve.output().splitlines() if line.strip() and not line.startswith("{")]


@pytest.mark.parametrize("repartition", ["true", "false"])
def test_a_partitions_refusal_found_after_the_pre_check_ends_the_start(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, repartition: str) -> None:
    """With ``queue.repartition: true`` (the queue holds ads: refused) or without it (a stale setting): exit 5 and
    one line naming both settings and the ads; every work stream as it was; the refusal never logged as "NATS not
    reachable", nor once a second."""
    server = fresh_nats()
    before = _queued_then_away(server, tmp_path, procs, 2)
    serve, _ = _serve_while_nats_is_away(server.url, tmp_path, procs, GAMEAD_QUEUE__REPARTITION=repartition)
    server.start()  # the same port and store: the 3-partition queue with its 2 ads is back
    assert _ended(serve) == 5, serve.output()[-3000:]
    lines = _console_lines(serve)
    assert len(lines) == 1 and lines[0].count("error:") == 1, lines
    assert "queue.partitions is 1 but the work streams on this NATS are GAMEAD_ADS, GAMEAD_ADS_1, GAMEAD_ADS_2 " \
           "(made with queue.partitions 3) holding 2 ad(s)" in lines[0], lines
    assert "Traceback" not in serve.output()
    unreachable = [line for line in serve.output().splitlines() if "NATS not reachable" in line]
    assert not any("queue.partitions" in line for line in unreachable), unreachable
    assert "takes no submit" not in serve.output()  # the refusal's one line says it (before: an ERROR a second)
    assert work_streams(server.url) == before  # nothing sealed, deleted or rewritten; the ads still there


def test_credentials_refused_at_the_link_set_up_end_the_start(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """NATS away at the pre-check, back with another token: exit 5 and the credentials line, as at the pre-check,
    not a connection retried for ever."""
    server = EmbeddedNats(tmp_path / "nats-token", token="right-token-rf").start()
    try:
        _queued_then_away(server, tmp_path, procs, 1)
        serve, _ = _serve_while_nats_is_away(server.url, tmp_path, procs, GAMEAD_NATS__TOKEN="stale-token-rf",
                                             GAMEAD_QUEUE__PARTITIONS="3")
        server.start()
        assert _ended(serve) == 5, serve.output()[-3000:]
        lines = _console_lines(serve)
        assert len(lines) == 1 and "refused the connection: Authorization Violation" in lines[0], lines
        assert "the configured nats.token is not the one the server requires" in lines[0]
        assert "stale-token-rf" not in serve.output()
    finally:
        server.stop()


def test_a_set_up_that_fails_on_a_reachable_nats_is_not_called_nats_unreachable(
        procs: list[Proc], tmp_path: Path) -> None:
    """A nats-server without JetStream: NATS answers, the link's set-up cannot be done (retried, NATS may fix it).
    ``/readyz`` says NATS "ok" and the topology "not set up yet" with why; the log does not say "NATS not
    reachable" (before: "unavailable: connecting (no answer for N s)" and "NATS not reachable at … yet")."""
    plain, port = on_a_free_port(lambda port: _plain_nats(port, tmp_path / f"nats-{port}.log"))
    try:
        url = f"nats://127.0.0.1:{port}"

        def start(api_port: int) -> tuple[Proc, int]:
            serve = Proc("serve", gamead_argv("serve", "--port", str(api_port)),
                         clean_env(GAMEAD_NATS__URL=url, GAMEAD_NATS__CONNECT_TIMEOUT="1"),
                         tmp_path / f"plain-{api_port}.log").start()
            procs.append(serve)

            def said_and_answers() -> bool:
                check_port_taken(serve, f"http://127.0.0.1:{api_port}")  # picked again (on_a_free_port)
                return "the queue link is not set up yet" in serve.output() and _unready(api_port)

            wait_for(said_and_answers, timeout=30, what="the start saying NATS answers but the link is not set up")
            return serve, api_port

        serve, api_port = on_a_free_port(start)
        checks = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5).json()["checks"]
        assert checks["nats"] == "ok", checks
        assert checks["topology"].startswith("unknown: not set up yet (JetStream"), checks
        assert "NATS not reachable" not in serve.output()
        assert serve.alive()  # retried: JetStream may come
    finally:
        plain.terminate()
        plain.wait(10)


def _plain_nats(port: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A nats-server without JetStream listening on ``port``; :class:`PortTaken` if another process holds it."""
    with open(log, "wb") as sink:
        plain = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
                                 stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for_listener("127.0.0.1", port, plain, time.monotonic() + 30, log)
    except QueueUnavailable as lost:
        plain.terminate()
        plain.wait(10)
        said = f"{lost} {log.read_text(errors='replace')}"
        if "address already in use" in said or "another process holds it" in said:
            raise PortTaken(said) from None
        raise
    return plain, port


def _unready(port: int) -> bool:
    """Whether the API on ``port`` answers ``/readyz`` 503 now (False when it does not answer)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 503
    except httpx.HTTPError:
        return False
