"""regress44 F2: `gamead serve` run in a stack's directory without nats.url prints the command that joins that
stack; that command, run verbatim, always failed (`cannot listen on 127.0.0.1:<the stack's port> (api.port): port
… is taken`, exit 5): the stack's config copy carries the stack's own api.port. Now the hint adds `--port 0` and the
joining API takes a free port, which its log line `serving on http://127.0.0.1:PORT` says (uvicorn said
nothing for the socket gamead binds itself). A real `gamead up` (no worker) and the hinted
`gamead serve`, each stopped by its PID.

Without the fix: the hinted command exits 5 naming the stack's port as taken (no listening API)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx
import pytest

from tests.support import Proc, clean_env, run_gamead, up_stack, wait_for


@pytest.mark.timeout(300)
def test_the_printed_serve_join_command_runs_verbatim_and_listens(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "0", data_dir=tmp_path / ".gamead").start()
    joined: Proc | None = None
    try:
        up.wait_ready()
        refused = run_gamead("serve", cwd=tmp_path, env=clean_env(), timeout=120)
        assert refused.returncode == 5, refused.stderr
        hinted = re.search(r"join the gamead up running here with `([^`]+)`", " ".join(refused.stderr.split()))
        assert hinted, refused.stderr
        argv = shlex.split(hinted[1])
        joined = Proc("joined-api", argv, clean_env(), tmp_path / "joined.log", cwd=tmp_path).start()

        def listening() -> int | None:
            if not joined.alive():
                raise AssertionError(f"the hinted serve exited {joined.popen.poll()}:\n{joined.output()[-2000:]}")
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", joined.output())
            return int(found[1]) if found else None

        port = wait_for(listening, timeout=120, interval=0.1, what="the hinted serve to say its port")
        assert port not in (0, up.port)
        # ready: it reached the stack's NATS with the stack's token
        assert wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200 or None,
                        timeout=60, what="the joined API to be ready")
    finally:
        if joined is not None:
            joined.stop()
        up.stop()
    assert joined.popen is not None and joined.popen.poll() is not None


@pytest.mark.timeout(300)
def test_a_stack_named_by_its_config_from_elsewhere_is_not_said_running_here(tmp_path: Path) -> None:
    """attack47 F9: ``gamead serve --config OTHER/.gamead/config-in-force.yaml`` run in another directory said
    ``join the gamead up running here with …``: OTHER's stack, not here's. Now it names OTHER's data dir; in the
    stack's own directory it still says ``here`` (the test above)."""
    other, elsewhere = tmp_path / "other", tmp_path / "elsewhere"
    other.mkdir()
    elsewhere.mkdir()
    up = up_stack(other, "--workers", "0", data_dir=other / ".gamead").start()
    try:
        up.wait_ready()
        config = other / ".gamead" / "config-in-force.yaml"
        refused = run_gamead("serve", "--config", str(config), cwd=elsewhere, env=clean_env(), timeout=120)
    finally:
        up.stop()
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 5, refused.stderr
    assert f"or join the gamead up running on {(other / '.gamead').resolve()} with `" in said, said
    assert "running here" not in said, said
