"""One message with headers put in nats-py's outgoing buffer the way ``Client.publish`` puts it, with less work.

nats-py's ``publish`` (2.16) checks the subject and reply with a regular expression each, and then, for every
header, strips the name, matches it against a regular expression, strips the value, replaces its line ends and
encodes both, one ``bytearray.extend`` at a time; with :func:`gamead_core.queue.liveness.guard_writes`' wrapper
(which sizes the message from its parts) about 4 of the ~7 µs each JetStream write of the submit path cost, and a
``POST /ads`` makes two (its record, then its message; issue 14.4, ``benchmarks/bench_submit_profile.py``).

:func:`send` writes the same bytes (``HPUB <subject> <reply> <header bytes> <total bytes>``, ``NATS/1.0``, a
``name: value`` line each, an empty line, the payload) with each header checked by ``str`` methods (a name once,
then remembered), and takes the same steps after: the guard's bound (``nats.max_pending_bytes``: the check of
:func:`~gamead_core.queue.liveness.admit`, with the message's exact size), nats-py's counters, its buffer and a kick
of its flusher when none is queued (on the API's connection, once its write linger ends:
:mod:`gamead_core.queue.write_linger`). Anything else goes to ``nc.publish`` as before, which then answers as it
always did (its errors included): a connection not connected (closed, draining, reconnecting: nats-py's own
buffering rules), no guard on the connection, a flusher that is not running, a payload over the server's
``max_payload``, nats-py's own bound (``pending_size``) reached, a subject or reply holding whitespace, a header
name that is not an HTTP token or a value that is not printable ASCII without surrounding spaces (nats-py strips
and rewrites those), a value holding ``: ``, no header at all (checked per header: joined,
``a\r\nNats-Msg-Id: x`` in one value would read as two headers), and a nats-py whose internals this reads are not
there (an upgrade).

:func:`ack_all` does the same for the ``ack`` of several deliveries at once (a settle round's, session 34): the bytes
``await msg.ack()`` writes (``PUB <reply>  0``, no payload), each through the guard's bound, ``_ackd`` set, one kick
of the flusher; each ~5 µs less than nats-py's ``publish`` behind the guard's wrapper. A delivery it does not take
(acknowledged already, no reply, a full buffer, a connection not plainly connected) is left to ``msg.ack()``.
"""

from __future__ import annotations

import asyncio
import re

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gamead_core.queue.liveness import (
    _ADMITTED,
    _LIMITS,
    PublishRefused,
    _refused,
    unsent_bytes,
)
from gamead_core.queue.write_linger import ATTR as _LINGER
from gamead_core.queue.write_linger import kick_flusher

__all__ = ["ack_all", "plain_lines", "send"]

#: a header name nats-py writes unchanged: an HTTP token (its ``_HEADER_KEY_RE``)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: names found to be tokens (a handful in practice: gamead's own and JetStream's); bounded all the same
_NAMES: set[str] = set()
_NAMES_KEPT = 256
#: what nats-py refuses in a subject (its ``_SUBJECT_INVALID_RE``)
_NOT_SUBJECT = re.compile(r"[ \t\r\n]")
_CONNECTED = NATS.CONNECTED


async def send(nc: NATS, subject: str, payload: bytes, reply: str, headers: dict[str, str],
               loop: asyncio.AbstractEventLoop, lines: str | None = None) -> None:
    """Publish ``payload`` to ``subject`` with ``reply`` and ``headers`` (at least one) on ``nc``: what
    ``await nc.publish(subject, payload, reply=reply, headers=headers)`` does, the same bytes in the same buffer
    (module doc). ``lines``: :func:`plain_lines` of ``headers``, when the caller has it already (a header set it
    sends again and again, or one it wrote from values plain by construction); else it is worked out here. Raises
    what ``nc.publish`` raises: :class:`~gamead_core.queue.liveness.PublishRefused` over the guard's bound (nothing
    written), nats-py's errors (from ``nc.publish``, which every other case is handed to)."""
    if lines is None:
        lines = plain_lines(headers) if headers else None
    try:
        max_pending = nc._max_pending_size  # noqa: SLF001 - nats-py's pending_size
        plain = not (nc._status != _CONNECTED or len(payload) > nc._max_payload  # noqa: SLF001
                     or (flusher := nc._flusher_task) is None or flusher.done())  # noqa: SLF001
    except AttributeError:  # a nats-py whose internals moved (pyproject allows newer): its own publish
        plain = False
    # one line per header: a CR LF or ": " inside a name or value would read as two headers (review33 hpub F1)
    if (not plain or (limit := _LIMITS.get(nc)) is None
            or not subject or _NOT_SUBJECT.search(subject) or _NOT_SUBJECT.search(reply) or lines is None):
        await nc.publish(subject, payload, reply=reply, headers=headers)
        return
    head = b"NATS/1.0\r\n%s\r\n" % lines.encode()
    size = len(head)
    command = b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), reply.encode(), size, size + len(payload), head,
                                                 payload)
    if max_pending > 0 and nc._pending_data_size + len(command) > max_pending:  # noqa: SLF001
        await nc.publish(subject, payload, reply=reply, headers=headers)  # nats-py's forced flush
        return
    # the guard's check (liveness.admit), inline: a request's own publish was admitted with it
    if _ADMITTED.get() is not nc and (waiting := unsent_bytes(nc)) + len(command) > limit:
        raise _refused(nc, PublishRefused(waiting, limit, len(command)))
    nc.stats["out_msgs"] += 1
    nc.stats["out_bytes"] += len(payload)
    nc._pending.append(command)  # noqa: SLF001
    nc._pending_data_size += len(command)  # noqa: SLF001
    linger = getattr(nc, _LINGER, None)  # the API's connection: the flusher woken after a linger (.write_linger)
    if linger is not None:
        linger.wrote(nc, loop)
    else:
        kick_flusher(nc, loop)  # as nats-py's _flush_pending does


def plain_lines(headers: dict[str, str]) -> str | None:
    """The header lines (``name: value`` CR LF each) nats-py writes for ``headers``, when it writes them unchanged;
    None when it would not (its ``publish`` then takes the message). Checked per header, so a CR LF or ``: `` in one
    value can never pass for a line of its own (review33 hpub F1): a name is an HTTP token, a value is printable
    ASCII (no CR, LF or other control) that neither starts nor ends with a space (nats-py strips values) and holds
    no ``: `` (as before: what nats-py writes, but left to it). Per header with ``str`` methods, not one regular
    expression over the joined lines (~3x less CPU: two per ``POST /ads``; cpuapi48). Pure."""
    names = _NAMES
    for name, value in headers.items():
        if name not in names:
            if type(name) is not str or _TOKEN.fullmatch(name) is None:
                return None
            if len(names) < _NAMES_KEPT:
                names.add(name)
        if (type(value) is not str or not value or not value.isascii() or not value.isprintable()
                or value[0] == " " or value[-1] == " " or ": " in value):
            return None
    return "".join([f"{name}: {value}\r\n" for name, value in headers.items()])


def ack_all(nc: NATS | None, msgs: list[Msg]) -> list[Msg]:
    """Put the ``ack`` of each of ``msgs`` (deliveries received on ``nc``) in ``nc``'s outgoing buffer, as
    ``await msg.ack()`` does (module doc), and kick its flusher once. Returns those it left alone, in order, for the
    caller to ``await msg.ack()`` each (nats-py's path, which raises what it raises: acknowledged already, no reply,
    :class:`~gamead_core.queue.liveness.PublishRefused` over the guard's bound, a closed connection)."""
    try:
        max_pending = nc._max_pending_size  # noqa: SLF001
        flusher = nc._flusher_task  # noqa: SLF001
        plain = nc._status == _CONNECTED and flusher is not None and not flusher.done()  # noqa: SLF001
    except AttributeError:  # a nats-py whose internals moved: its own ack
        return msgs
    if not plain or (limit := _LIMITS.get(nc)) is None:
        return msgs
    left: list[Msg] = []
    pending = nc._pending  # noqa: SLF001
    admitted = _ADMITTED.get() is nc
    for msg in msgs:
        reply = msg.reply
        if not reply or getattr(msg, "_ackd", True) or msg._client is not nc or _NOT_SUBJECT.search(reply):  # noqa
            left.append(msg)
            continue
        command = b"PUB %s  0\r\n\r\n" % reply.encode()
        if ((max_pending > 0 and nc._pending_data_size + len(command) > max_pending)  # noqa: SLF001
                or (not admitted and unsent_bytes(nc) + len(command) > limit)):
            left.append(msg)
            continue
        nc.stats["out_msgs"] += 1
        pending.append(command)
        nc._pending_data_size += len(command)  # noqa: SLF001
        msg._ackd = True  # noqa: SLF001 - as Msg.ack sets it
    queue = nc._flush_queue  # noqa: SLF001
    if len(left) < len(msgs) and queue is not None and queue.empty():
        queue.put_nowait(asyncio.get_running_loop().create_future())
    return left
