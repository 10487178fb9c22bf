"""A NATS client that nats-py closed for good on a server ``-ERR`` (review26 F1, last paragraph).

nats-py 2.16 closes the client, with no reconnect and no ``error_cb``, on any ``-ERR`` but ``Stale Connection``
and ``Permissions Violation`` (``Client._process_err``): ``User Authentication Expired``, ``Maximum Subscriptions
Exceeded``, ``Maximum Payload Violation`` (a server reloaded with a smaller ``max_payload``), … A process left
with such a client can do nothing more, so:

* :func:`note_nats_closed` (the ``closed_cb`` of :func:`gamead_core.queue.connection.connect`, and its guard's once it
  sees the client closed: nats-py closes some without the callback, :mod:`gamead_core.queue.reader_guard`) records
  the close with the server's error (``nc.last_error``), unless gamead closed the client itself
  (:func:`gamead_core.shutdown.closed_by_us`) or it is a refusal (``Authorization Violation``: exit 5, see
  :mod:`gamead_core.queue.refusal`);
* :func:`closed_text` is what ``/readyz``, ``/healthz`` (503 at once) and the log say:
  ``NATS closed the connection: maximum payload violation``;
* :func:`gamead_core.queue.refusal.stop_when_refused` then ends the worker and the API with :class:`NatsClosed`:
  exit code 3 (NATS unreachable, README exit codes) and one line naming the error.
"""

from __future__ import annotations

import weakref

import nats.errors
from nats.aio.client import Client as NATS

from gamead_core.errors import NatsUnreachable
from gamead_core.queue.client_news import tell
from gamead_core.shutdown import closed_by_us

#: how ``/readyz``, ``/healthz`` and the exit line begin
CLOSED = "NATS closed the connection"

#: per client nats-py closed, what it says (:data:`CLOSED` and the server's error)
_CLOSED: weakref.WeakKeyDictionary[NATS, str] = weakref.WeakKeyDictionary()


class NatsClosed(NatsUnreachable):
    """nats-py closed this process's NATS client for good on a server error: only a restart connects again
    (exit code 3)."""


def server_error(exc: BaseException | None) -> str:
    """The server's error as nats-py keeps it (``nats: maximum payload violation`` → ``maximum payload
    violation``), or any nats-py error's words (``connection closed``); ``no error given`` for None; the error's
    class when it has no words or its ``__str__`` fails. Pure; never raises."""
    if exc is None:
        return "no error given"
    try:
        text = str(exc).strip() or type(exc).__name__
    except Exception:  # noqa: BLE001 - a __str__ reading attributes the error lacks
        text = type(exc).__name__
    return text[len("nats: "):] if text.startswith("nats: ") else text


def note_nats_closed(nc: NATS) -> str | None:
    """``nc`` was closed: if nats-py closed it (not gamead, not a refusal), record it and return
    :func:`closed_text`'s text (the caller logs it once); else None."""
    tell()  # stop_when_refused looks at once
    if closed_by_us(nc) or isinstance(nc.last_error, nats.errors.AuthorizationError) or nc in _CLOSED:
        return None
    _CLOSED[nc] = f"{CLOSED}: {server_error(nc.last_error)}"
    return _CLOSED[nc]


def closed_text(nc: NATS | None) -> str | None:
    """``NATS closed the connection: <the server's error>`` once nats-py closed ``nc`` for good, else None."""
    return None if nc is None else _CLOSED.get(nc)
