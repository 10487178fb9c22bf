"""A direct get re-asked of the stream leader (gamead_core.queue.direct_read.fell_back) is counted in
``gamead_direct_get_fallbacks_total`` and logged at most once a minute, on a real nats-server: a member of the
direct-get queue group that never answers (a replica on a stopped server) and a stream without direct gets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

import nats

from gamead_core.queue import direct_read
from gamead_core.queue.depth import peek_next
from gamead_core.telemetry.metrics import API_REGISTRY, WORKER_REGISTRY


def _fallbacks(reason: str) -> float:
    api = API_REGISTRY.get_sample_value("gamead_direct_get_fallbacks_total", {"reason": reason}) or 0.0
    worker = WORKER_REGISTRY.get_sample_value("gamead_direct_get_fallbacks_total", {"reason": reason}) or 0.0
    assert api == worker  # one counter, served by whichever role this process is
    return api


def test_a_direct_get_asked_of_the_leader_is_counted_and_logged_once_a_minute(fresh_nats: Callable[[], Any],
                                                                              caplog: Any) -> None:
    async def run() -> None:
        server = fresh_nats()
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="S", subjects=["s.>"])  # no direct gets: only our silent "replica" listens
            await js.publish("s.a", b"x", headers={"k": "v"})
            before = _fallbacks("no_responders")
            head = await peek_next(js, "S", "s.a", 0)
            assert head is not None and head.data == b"x"  # read from the leader
            assert _fallbacks("no_responders") == before + 1
            await nc.subscribe("$JS.API.DIRECT.GET.S", queue="replicas", cb=_never_answer)
            await nc.flush()
            before = _fallbacks("timeout")
            for _ in range(2):
                head = await peek_next(js, "S", "s.a", 0)
                assert head is not None and head.data == b"x"
            assert _fallbacks("timeout") == before + 2
        finally:
            await nc.close()

    lines = _lines_logged(run, caplog)
    assert len(lines) == 1 and "stream S " in lines[0], lines  # three fallbacks, one line within the minute


def _lines_logged(run: Callable[[], Coroutine[Any, Any, None]], caplog: Any) -> list[str]:
    """The lines direct_read logs at WARNING while ``run()`` runs, its once-a-minute bound reset first."""
    direct_read._logged["at"] = float("-inf")
    with caplog.at_level(logging.WARNING, logger="gamead_core.queue.direct_read"):
        asyncio.run(run())
    return [r.getMessage() for r in caplog.records if r.name == "gamead_core.queue.direct_read"]


async def _never_answer(msg: Any) -> None:
    return None


def test_a_timeout_on_one_server_blames_that_server_not_a_replica(fresh_nats: Callable[[], Any], caplog: Any) -> None:
    """words55 F1: a single nats-server (gamead up's) has no replicas; its log line named 'a replica' anyway."""
    async def run() -> None:
        server = fresh_nats()
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="S", subjects=["s.>"])
            await js.publish("s.a", b"x")
            await nc.subscribe("$JS.API.DIRECT.GET.S", queue="replicas", cb=_never_answer)  # the server stalls
            await nc.flush()
            head = await peek_next(js, "S", "s.a", 0)
            assert head is not None and head.data == b"x"
        finally:
            await nc.close()

    lines = _lines_logged(run, caplog)
    assert len(lines) == 1 and "(timeout;" in lines[0], lines
    assert "replica" not in lines[0] and "the nats-server itself is slow" in lines[0], lines


def test_the_cause_said_follows_what_is_known_of_the_server() -> None:
    assert "replica" in direct_read.cause("timeout", True)
    assert "replica" not in direct_read.cause("timeout", False)
    assert "server" in direct_read.cause("timeout", None) and "replica" in direct_read.cause("timeout", None)
    assert direct_read.cause("no_responders", False) == "the stream has no direct gets"
    assert direct_read.clustered_of(object()) is None
    assert direct_read.clustered_of(type("C", (), {"_server_info": {"cluster": "c1"}})()) is True
    assert direct_read.clustered_of(type("C", (), {"_server_info": {"server_name": "n"}})()) is False
