"""review45: a node whose host is renamed while it runs stays the same node, on a real nats-server.

Every heartbeat read the host name again (``socket.gethostname()``), and the registry tells two processes of one id
apart by host, pid and start time (:func:`gamead_core.registry.nodes.same_incarnation`): a host renamed under a live
process (a DHCP-given or ``hostnamectl``-set name) made its own earlier entry read as another process's. The API
(claim45: an API whose key another process holds ends) then stopped serving and exited 5 saying a copy of itself had
taken its id; a worker did too, and the reapers took it for dead. The host is the one the process started on.

The rename happens in a UTS namespace of the node's own (``unshare -u``, ``nsenter -u``): the test is skipped where
those are not allowed (not root, no user namespaces)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, clean_env, on_a_free_port, serve_ready, wait_for

ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1", "GAMEAD_REGISTRY__TTL": "5"}


def _uts_allowed() -> bool:
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        return False
    return subprocess.run(["unshare", "-u", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _uts_allowed(), reason="no UTS namespace of its own (unshare -u) here")
def test_an_api_whose_host_is_renamed_serves_on(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                                tmp_path: Path) -> None:
    """``gamead serve`` in a UTS namespace of its own, its host renamed once it is ready; then 5 heartbeats'
    time. Figures (alive, exit code, lines saying its id was taken over): with the fix (True, None, 0); without
    (False, 5, 2): "the id api-… was taken over by another process (host <old name>, pid <its own pid> …): an
    API node's id is its own process's, so that is a copy of this process …"."""
    nats_url = fresh_nats().url
    api, _ = on_a_free_port(lambda port: serve_ready(
        Proc("api", ["unshare", "-u", sys.executable, "-m", "gamead_cli", "serve", "--port", str(port)],
             clean_env(GAMEAD_NATS__URL=nats_url, **ENV), tmp_path / f"api-{port}.log"), port))
    procs.append(api)
    subprocess.run(["nsenter", "-t", str(api.pid), "-u", "hostname", "renamed-host"], check=True)
    try:
        wait_for(lambda: not api.alive(), timeout=5, what="the API to end")
    except AssertionError:
        pass
    code = api.popen.poll() if api.popen is not None else None
    said = api.output().count("was taken over by another process")
    assert (api.alive(), code, said) == (True, None, 0), api.output()[-2000:]
