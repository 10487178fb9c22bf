"""attack56 F2: a followed job (``gamead dlq replay`` without ``--detach``, ``dlq jobs --follow``) whose API went
silent once its progress stream had begun (a frozen API, a link dropping packets: here a proxy that forwards
nothing any more, keeping the connections open) waited for ever, saying nothing: the stream's lines had no bound.
A running job's stream sends its document every few seconds, so a silence of 3 × ``client.timeout`` now cuts it;
the follow reconnects as for a lost API and then ends, exit 3, with the command that follows the job again.

A real API and nats-server (this module's DLQ lane), the CLI in a process of its own behind the proxy."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gamead_cli import exitcodes
from tests.blackhole import BlackHole
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.forked_popen import GameadPopen
from tests.support import clean_env, gamead_argv, killed_if_left, run_gamead, wait_for


@pytest.fixture(scope="module")
def lane(shared_lane: Lane) -> Iterator[Lane]:  # noqa: F811 - the fixture above
    yield shared_lane


class _Counted:
    """A client socket whose ``sendall`` (what the API answers, on its way back) is recorded in ``seen``."""

    def __init__(self, sock: socket.socket, seen: list[bytes]) -> None:
        self._sock, self._seen = sock, seen

    def sendall(self, data: bytes) -> None:
        self._seen.append(data)
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WatchedHole(BlackHole):
    """:class:`BlackHole` that keeps what it forwarded back to the clients (:attr:`answered`)."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.answered: list[bytes] = []

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        back = _Counted(client, self.answered)
        threading.Thread(target=self._pump, args=(upstream, back, True), daemon=True).start()


@pytest.mark.timeout(180)
def test_a_followed_replay_whose_api_goes_silent_ends_exit_3_naming_the_job(lane: Lane) -> None:
    entries = [made_up_entry(f"Silent follow {i}") for i in range(3)]
    lane.run_job("/v1/dlq/import", {"entries": entries})
    port = int(lane.url.rsplit(":", 1)[1])
    hole = WatchedHole(("127.0.0.1", port)).start()
    env = clean_env(GAMEAD_CLIENT__TIMEOUT="1", GAMEAD_CLIENT__RETRY_FOR="2")
    ids = [e["adId"] for e in entries]
    try:
        with ThreadPoolExecutor(1) as pool:
            # 3 replays at 0.1/s, no worker to analyse them: the job runs for 20 s and more
            run = pool.submit(run_gamead, "dlq", "replay", *ids, "--rate", "0.1", "--yes",
                              "--api", f"http://127.0.0.1:{hole.port}", env=env, timeout=120)
            wait_for(lambda: b"application/x-ndjson" in b"".join(hole.answered), timeout=60,
                     what="the job's progress stream to begin")
            hole.close_in()  # from now on: silence, the connection kept open
            done = run.result(timeout=150)  # before: subprocess.TimeoutExpired after 120 s, nothing said
    finally:
        hole.stop()
    said = " ".join(done.stderr.split())
    assert done.returncode == exitcodes.UNREACHABLE, said
    assert "lost the API while following job" in said and "dlq jobs" in said, said
    assert "Traceback" not in said, said


@pytest.mark.timeout(180)
@pytest.mark.parametrize("timeout", ["4", "1"], ids=["client.timeout 4 s", "client.timeout 1 s"])
def test_a_followed_replay_is_not_cut_while_the_api_s_nats_is_frozen(lane: Lane, timeout: str) -> None:
    """attack56 F2's other half: while NATS is away the job's stream still sends its last document every
    STREAM_KEEPALIVE (5) s, so the follower's bound on silence (3 × client.timeout: 12 s at 4 s) never cuts a live
    API. This module's nats-server frozen (SIGSTOP) once the stream has begun, until 3 documents more came. Before
    (gamead_core.jobs.runner's follow skipped a failed read): nothing came while NATS was frozen, the stream was cut
    and followed again (the wait below ran out); now one stream, its documents still coming. At a 1 s
    client.timeout the bound was 3 s, under the 5 s between two keep-alives: the stream was cut and followed again
    (reread56, 2 streams); now the bound is 15 s at least (gamead_cli.streaming.LEAST_SILENCE)."""
    entries = [made_up_entry(f"Frozen follow {i}") for i in range(3)]
    lane.run_job("/v1/dlq/import", {"entries": entries})
    port = int(lane.url.rsplit(":", 1)[1])
    hole = WatchedHole(("127.0.0.1", port)).start()
    nats_pid = lane.nats.proc.pid if lane.nats.proc is not None else None
    assert nats_pid is not None
    heads = lambda: b"".join(hole.answered).count(b"application/x-ndjson")  # noqa: E731 - streams begun
    cli = GameadPopen(gamead_argv("dlq", "replay", *(e["adId"] for e in entries), "--rate", "0.1", "--yes", "--api",
                                  f"http://127.0.0.1:{hole.port}"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, env=clean_env(GAMEAD_CLIENT__TIMEOUT=timeout))
    try:
        with killed_if_left(cli):
            wait_for(lambda: heads() >= 1, timeout=60, what="the job's progress stream to begin")
            frozen_at = len(hole.answered)
            os.kill(nats_pid, signal.SIGSTOP)
            try:
                # 3 documents (>= 10 s of keep-alives) while NATS is frozen, on the one stream; or a second stream
                wait_for(lambda: b"".join(hole.answered[frozen_at:]).count(b"}\n") >= 3 or heads() > 1,
                         timeout=40, what="3 documents on the stream while NATS is frozen")
            finally:
                os.kill(nats_pid, signal.SIGCONT)
            assert heads() == 1, "the stream was cut and followed again"
            assert cli.poll() is None, cli.communicate()
    finally:
        hole.stop()


def test_the_least_silence_spans_three_of_the_api_s_keep_alives() -> None:
    """The CLI's own copy of the keep-alive's period (gamead_cli.streaming does not import the job runner, which
    loads nats-py) follows the API's: a live stream's silence never reaches the bound."""
    from gamead_cli.streaming import LEAST_SILENCE
    from gamead_core.jobs.runner import STREAM_KEEPALIVE

    assert LEAST_SILENCE >= 3 * STREAM_KEEPALIVE
