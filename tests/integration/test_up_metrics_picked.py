"""port54: each local worker's ``/metrics`` port under ``gamead up`` is ``up``'s own pick (its planned ``base + k -
1`` or a free one: :class:`gamead_core.metrics_ports.WorkerMetricsPorts`), free only when it is looked at; a worker
starts ~1 s of imports later, and another process of this shared machine can take the port meanwhile. The worker
then refuses its start (exit 5, ``(worker.metrics_port): port P is taken by another process``), and ``up`` must
not end for a port it chose: it starts the worker again on a new pick. Real ``gamead up`` supervisor
(:class:`~gamead_cli.commands.up_stack.UpStack`), real worker, real nats-server; the worker's command (the test's,
as ``up``'s is asked again at each restart) takes the first pick right after it is made."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

import httpx

from gamead_cli.commands.up_stack import UpStack, gamead_argv
from gamead_core.config import GameadSettings
from gamead_core.datadir import DataDir
from gamead_core.embedded import EmbeddedNats, free_port
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.port_claims import PortClaims
from tests.support import clean_env, wait_for


def test_a_metrics_port_up_picked_and_another_process_took_is_picked_again(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """Before: the worker's exit 5 was a refusal of the stack's start (``sup.refused``: ``gamead up`` ended, exit
    5, "choose another worker.metrics_port"), for a port the operator never set."""
    claims = PortClaims(tmp_path, directory=tmp_path / "claims")
    metrics = WorkerMetricsPorts("127.0.0.1", free_port(), claims=claims)
    stack = UpStack(GameadSettings(), DataDir(tmp_path / "data"))
    taken: list[int] = []
    with ExitStack() as held:
        def argv() -> list[str]:
            args = metrics.args("local-1")
            if not taken:  # another process takes the first pick before the worker binds it
                taken.append(int(args[-1]))
                held.enter_context(socket.create_server(("127.0.0.1", taken[0])))
            return gamead_argv("worker", "--id", "local-1", *args)

        def serving() -> bool:
            stack.sup.poll()  # what gamead up's start does while it waits for its workers
            assert not stack.sup.refused, (tmp_path / "worker-1.log").read_text()[-2000:]
            url = metrics.local_url("local-1")
            if url is None or metrics.ports["local-1"] == taken[0]:
                return False
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        said: list[str] = []
        stack.sup.on_event = said.append
        stack.sup.start("worker-1", argv, clean_env(GAMEAD_NATS__URL=nats_server.url), tmp_path / "worker-1.log")
        try:
            wait_for(serving, timeout=120, what="the worker's /metrics on a new pick")
            assert "(worker.metrics_port): port" in (tmp_path / "worker-1.log").read_text()  # the first pick lost
            assert metrics.ports["local-1"] in claims.held and taken[0] not in claims.held
            lost = [line for line in said if f"port {taken[0]}" in line]
            # before: the worker's own advice, "… choose another worker.metrics_port", for a port up chose
            assert lost and all("picked by gamead up" in line and "choose another" not in line for line in lost), said
        finally:
            stack.sup.stop_all(10)
            claims.release_all()
