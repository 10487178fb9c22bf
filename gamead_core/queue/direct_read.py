"""Direct gets that do not wait on a replica that stopped answering.

Any replica of a stream may answer a direct get (``$JS.API.DIRECT.GET``: the replicas' queue group). A server
stopped without closing its connections (SIGSTOP, a GC or VM stall, hung) stays in that group until the other
servers find its routes stale (``cluster { ping_interval, ping_max }``: 2 min × 2 by default), and the direct
gets it is given go unanswered: from a healthy server 1 to 4 in 8 timed out (attack25c), and every look at the
queue heads and every record read waited a whole request timeout, so a fleet of workers ran at ~1 %. So a
direct get waits :data:`DIRECT_HEDGE` seconds at most; its caller then asks the stream leader
(``STREAM.MSG.GET``), which a stopped server is no longer once its leaderships moved (seconds).
"""

from __future__ import annotations

import weakref

from nats.js import JetStreamContext

#: seconds a direct get waits before its caller asks the stream leader (an answering replica takes ~1 ms)
DIRECT_HEDGE = 0.5

_hedged: weakref.WeakKeyDictionary[JetStreamContext, JetStreamContext] = weakref.WeakKeyDictionary()


def hedged(js: JetStreamContext) -> JetStreamContext:
    """``js``'s connection and API prefix with requests that time out after ``min(DIRECT_HEDGE, js's timeout)``
    seconds (nats-py's ``nats.errors.TimeoutError``), for direct gets; one per ``js``, kept while ``js`` lives."""
    short = _hedged.get(js)
    if short is None:
        timeout = min(DIRECT_HEDGE, float(getattr(js, "_timeout", DIRECT_HEDGE) or DIRECT_HEDGE))
        short = _hedged[js] = JetStreamContext(js._nc, prefix=js._prefix, timeout=timeout)
    return short
