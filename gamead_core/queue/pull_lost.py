"""The pull requests a whole-stream read's feed has out (:mod:`gamead_core.queue.pull_feed`), and which of them
are lost: when one is forgotten and asked again.

A request can be lost on its way: in a cluster the client's server forwards a publish only to servers whose interest
it already knows, and a fresh consumer's leader (another server) subscribes its request subject just before the
create's answer comes back by another route; a request whose reply inbox the leader does not know yet is dropped too
(nats-server ``processWaiting``: "No more interest here"). Nothing tells the client, or the client's server answers
``503`` (no responders) at once; that need not be the consumer's end: the request is asked again after
:data:`REFUSED_PAUSE` (flake42: taken for the end, it ended 4 of 25 R3 window reads of a loaded run at once with
ScanIncomplete after 0 messages, both first requests answered ``503``; test_list_window's CI failure). But a
consumer deleted between requests has no responder either: refusals for the feed's bound (below) with nothing heard
from the consumer are checked once with its info: not found, the feed has ended; found (or no answer), it keeps
asking, checked again after another bound (pullfeed43: a read whose consumer was deleted re-asked 20 times a second
until its reader's 5 s timeout, 100 requests, and did not end). A refused request is not a lost one: it does not
count for the slow link below. So each request has its own reply subject and asks for an idle heartbeat (ADR-37's
pull requests: status ``100`` every :data:`HEARTBEAT` seconds while it waits without messages), and a request heard
nothing from (no message, no status) for the feed's bound (below; at first :data:`LOST_AFTER` seconds) is forgotten
and asked again (:meth:`~gamead_core.queue.pull_feed.PullFeed.next_msg`). Without that a read of an R3 bucket on a
3-node cluster got nothing and ended ScanIncomplete ("0 messages read, then 2 s without one", CI of 61d0bab). A
request forgotten that was only slow still delivers the consumer's next messages, in order, to the feed: they are
taken as any other (its room was given back, so the bytes asked for may pass the bound by that request's for a
while). A slow link is not a lost request: the bound starts at twice the consumer create's round trip plus a
heartbeat when that is longer, and doubles (up to ``pull_feed.EXPIRES / 2``) each time a forgotten request is heard
from after all (a test's proxy holding every JetStream request 1 s made three reads re-ask every 1.5 s, each re-ask
delaying the rest, until one timed out); never more than half the reader's timeout (never below two heartbeats), so
a lost request is still asked again while the reader waits (review41 F4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS

from gamead_core.queue.feed_room import give_back

HEARTBEAT = 0.5  #: seconds between a waiting request's idle heartbeats (``idle_heartbeat``; at most EXPIRES / 2)
LOST_AFTER = 3 * HEARTBEAT  #: seconds a request out may go unheard from before it is taken as lost and asked again
REFUSED_PAUSE = HEARTBEAT / 5  #: seconds before a request answered ``503`` (no responders) is asked again


@dataclass(slots=True)
class Request:
    """A pull request out: the units of room it holds, the feed's deliveries when it was sent, when it was last
    heard from (monotonic seconds: sent, a delivery to the feed, a heartbeat)."""

    held: int
    since: int
    heard: float = field(default_factory=time.monotonic)
    refused: bool = False  #: answered ``503`` (no responders): asked again after :data:`REFUSED_PAUSE`


def forget_lost(nc: NATS, out: dict[str, Request], forgotten: set[str], bound: float) -> float:
    """Forget the requests in ``out`` (by reply subject) heard nothing from for ``bound`` seconds (:func:`bound`),
    a refused one after :data:`REFUSED_PAUSE`: removed, their room on ``nc`` given back (so the feed asks again),
    the lost ones' reply subjects added to ``forgotten``. Returns the seconds until the next one left would be."""
    now, soonest = time.monotonic(), bound
    for reply, request in list(out.items()):
        silent, limit = now - request.heard, REFUSED_PAUSE if request.refused else bound
        if silent >= limit:
            del out[reply]
            give_back(nc, request.held)
            # bounded: a feed whose requests all vanish does not grow the set; a refused one was answered, not
            # lost (pullfeed43: 64 refused replies filled it and a slow link was no longer learnt)
            if not request.refused and len(forgotten) < 64:
                forgotten.add(reply)
        else:
            soonest = min(soonest, limit - silent)
    return soonest


def bound(lost_after: float, timeout: float) -> float:
    """Seconds a request out may go unheard from while a reader waits ``timeout`` seconds: the feed's
    ``lost_after`` (module doc), at most half that timeout (never below two heartbeats), so a lost request is asked
    again while the reader still waits (pure). Before (review41 F4), a create's 1 s round trip made it 2.5 s and a
    2 s listing whose first requests were lost ended ScanIncomplete after 0 messages; with a floor of
    :data:`LOST_AFTER` (1.5 s) a 2 s read's one re-ask had 0.5 s left for its answer: 1 s now. (The R3 window read
    that ended ScanIncomplete after 0 messages in a fresh clone's run, test_list_window, was not this but a ``503``:
    :data:`REFUSED_PAUSE`.)"""
    return min(lost_after, max(2 * HEARTBEAT, timeout / 2))
