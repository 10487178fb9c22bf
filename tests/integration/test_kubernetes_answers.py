"""The Kubernetes API server's answers are read up to a bound (attack30b F1, F2), against the HTTP double of
``test_kubernetes_backend`` (the official client on the wire, a real socket)."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from gamead_core.scaling.capped_answers import MAX_ANSWER_BYTES
from gamead_core.scaling.kubernetes import ScalerForbidden, ScalerUnavailable
from tests.integration.test_kubernetes_backend import (
    ApiDouble,
    _no_proxy,
    api,
    make_scaler,
)

__all__ = ["_no_proxy", "api"]  # the fixtures, shared with test_kubernetes_backend


@pytest.mark.parametrize("compressed", [False, True], ids=["64 MB", "gzip bomb, 64 MB inflated"])
def test_a_huge_answer_is_not_read_past_the_bound_and_the_next_call_works(
        api: ApiDouble, tmp_path: Path, compressed: bool) -> None:
    """A broken or hostile API server (or a proxy) answered 400 MB: the client read it whole and decoded it, the
    API node went to ~2 GB and its event loop stalled for seconds (``/healthz`` 3.8 s, the autoscaler lease lapsed
    five times). Now the answer is read to :data:`MAX_ANSWER_BYTES` (256 KiB), compressed or not, the call fails
    as unavailable saying why (a write may have landed: read back), and the next call, answered normally, works."""
    body = b'"' + b"x" * (64 * 1024**2) + b'"'
    api.huge_answer, api.huge_gzip = (gzip.compress(body, compresslevel=1), True) if compressed else (body, False)
    del body
    with make_scaler(tmp_path, api.url, timeout=20) as scaler:
        tracemalloc.start()
        try:
            with pytest.raises(ScalerUnavailable) as caught:
                scaler.current_replicas()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        print(f"peak Python memory of the call: {peak / 1024**2:.1f} MB; {caught.value.message}")
        assert peak < 8 * 1024**2, peak  # before: the 64 MB answer, its decoded text and its JSON, several times
        assert f"with more than {MAX_ANSWER_BYTES} bytes (HTTP 200" in caught.value.message
        assert caught.value.sent  # unread, so a PATCH answered so may have landed: the caller reads back
        api.huge_answer = b""
        assert scaler.current_replicas() == 2


def test_a_long_server_message_is_cut_to_a_line_in_the_error(api: ApiDouble, tmp_path: Path) -> None:
    """A 403 whose ``Status.message`` is 200,000 characters (3 MB in the drill) was copied whole into each failed
    tick's log line and into the autoscaler's shared state (past ``nats.max_pending_bytes`` no decision could be
    recorded any more). The error keeps what it says about RBAC and at most 300 characters of the server's."""
    api.forbidden_message = "deployments.apps is forbidden " + "x" * 200_000
    with make_scaler(tmp_path, api.url) as scaler, pytest.raises(ScalerForbidden) as caught:
        scaler.current_replicas()
    message = caught.value.message
    assert "RBAC must grant verb 'get'" in message and "Server: deployments.apps is forbidden xxx" in message
    assert len(message) < 700 and message.endswith("…"), len(message)
