"""leftout60A item 1 (load59B: ``test_a_token_rotated_by_a_config_reload``: w1 never exited in 90 s): nats-py 2.16
closes a client for good *without its callbacks* on some paths: a server ``-ERR`` met while the client is still
connecting (``Client._process_err``: ``do_cbs = not is_connecting``), a close that fails before it calls them
(``Client._close`` draining a socket already reset). gamead's watch that ends a worker or an API on a closed client
(:func:`gamead_core.queue.refusal.stop_when_refused`) is woken only by news, which those callbacks brought: it waited
for ever, a worker that neither works nor exits. Now the guard every connection has
(:mod:`gamead_core.queue.reader_guard`) takes a close it sees as the close callback does.

gamead's own ``connect`` to a real nats-server through :class:`tests.refusing_proxy.InfoForPong` (a server's
``INFO`` where the handshake's ``PONG`` should be, then the ``-ERR`` given): the client closed with no callback, the
watch must end as after a close nats-py said. Before: the watch still waiting after 30 s, 2 of 2 errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gamead_core.config import NatsSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import GameadError
from gamead_core.queue.closed import NatsClosed
from gamead_core.queue.connection import connect
from gamead_core.queue.refusal import REFUSED, CredentialsRefused, refusal_text, stop_when_refused
from gamead_core.shutdown import close_for_good
from tests.refusing_proxy import InfoForPong

#: far above the guard's look (1 s) and the exit grace below; a watch still waiting then waits for ever
WATCH_BOUND = 30.0


@pytest.mark.parametrize(("error", "ends_with", "says"), [
    ("Authorization Violation", CredentialsRefused, "Authorization Violation"),  # exit 5
    ("Maximum Payload Violation", NatsClosed, "NATS closed the connection: maximum payload violation"),  # exit 3
])
def test_a_client_nats_py_closed_without_its_callbacks_ends_the_watch(
        fresh_nats: Callable[[], EmbeddedNats], error: str, ends_with: type[GameadError], says: str) -> None:
    server = fresh_nats()
    proxy = InfoForPong(("127.0.0.1", server.port)).start()
    url = f"nats://127.0.0.1:{proxy.port}"
    settings = NatsSettings(refused_exit_after=1)

    async def run() -> tuple[GameadError | None, str | None]:
        nc = await connect(settings, url, name="gamead-closed-unsaid")
        try:
            assert proxy.answered.is_set() and nc.is_connecting, nc._status  # the premise: still connecting
            called: list[str] = []

            async def said() -> None:  # what nats-py would call: it must not
                called.append("closed_cb")

            nc._closed_cb, closed_cb = said, nc._closed_cb  # noqa: SLF001 - only to show nats-py called none
            watch = asyncio.ensure_future(stop_when_refused(lambda: nc, settings, url))
            proxy.error(error)
            try:
                ended = await asyncio.wait_for(asyncio.shield(watch), WATCH_BOUND)
            except asyncio.TimeoutError:
                ended = None
            watch.cancel()
            assert nc.is_closed and not called, (nc._status, called)  # closed, and nats-py said nothing
            nc._closed_cb = closed_cb  # noqa: SLF001
            return ended, refusal_text(nc)
        finally:
            await close_for_good(nc)

    try:
        ended, refused = asyncio.run(run())
    finally:
        proxy.stop()
    assert isinstance(ended, ends_with), f"the watch still waited {WATCH_BOUND:g} s after nats-py closed the client"
    assert says in ended.message and "exiting" in ended.message, ended.message
    if ends_with is CredentialsRefused:
        assert refused is not None and refused.startswith(REFUSED), refused  # what /readyz and /healthz say
