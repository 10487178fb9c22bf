"""attack32b F5: a fresh ``gamead up --workers 2`` after a ``--workers 0`` run in the same data dir printed ``!
autoscaler: replicas changed since the last recorded decision (0→2: a call of the previous leader that landed
unrecorded, or a change made while none led)``: its own start named as a rogue leader's call. Two real stacks, one
data dir, one after the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ad, up_stack, wait_for

FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING",
        "GAMEAD_AUTOSCALER__INTERVAL": "1"}


def _decisions(url: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return list(client.get("/v1/scale").json().get("decisions") or [])


@pytest.mark.timeout(400)  # two stacks' starts, slow on a loaded machine
def test_a_new_up_names_its_own_workers_as_its_start_not_an_unrecorded_call(tmp_path: Path) -> None:
    first = up_stack(tmp_path, "--workers", "0", name="first", **FAST).start()
    try:
        first.wait_ready()
        with httpx.Client(base_url=first.url, timeout=10) as client:
            assert client.post("/ads", json=ad("Waits For The Next Stack")).status_code == 202
        wait_for(lambda: any(d.get("current") == 0 for d in _decisions(first.url)), timeout=60,
                 what="the first stack's autoscaler to record a decision at 0 workers")
        first.stop()
    finally:
        first.kill_everything()
    again = up_stack(tmp_path, "--workers", "2", "--max-workers", "3", data_dir=first.data_dir, name="again",
                     **FAST).start()
    try:
        output = again.wait_ready()
        started = wait_for(lambda: next((d for d in _decisions(again.url) if "this stack started" in d["reason"]),
                                        None), timeout=60, what="the second stack's first decision")
        assert started["reason"].startswith("this stack started 2 workers (--workers; the last recorded decision "
                                            "left 0); "), started
        assert not any("landed unrecorded" in d["reason"] for d in _decisions(again.url))
        assert "landed unrecorded" not in again.output() and "replicas changed" not in output
        again.stop()
    finally:
        again.kill_everything()
