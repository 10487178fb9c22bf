"""Pure: every nats-py error class (and every JetStream error code gamead meets) leaves the NATS boundary as
the right gamead error, and never carries a URL or credentials. Codes from nats-server ``server/errors.json``."""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors as jse
import pytest

from gamead_core.errors import (
    Conflict,
    GameadError,
    NotFound,
    QueueFull,
    QueueUnavailable,
    StorageFailed,
    TopologyError,
    TopologyMissing,
)
from gamead_core.queue.cas_answer import StillBusy
from gamead_core.queue.connection import is_stream_limit, nats_boundary, translate


def api(cls: type[jse.APIError], code: int, err_code: int, description: str) -> jse.APIError:
    return cls(code=code, err_code=err_code, description=description)


CASES: list[tuple[BaseException, type[GameadError]]] = [
    # a lost compare-and-set
    (jse.KeyWrongLastSequenceError("wrong last sequence: 7"), Conflict),
    (api(jse.BadRequestError, 400, 10071, "wrong last sequence: 7"), Conflict),
    # a busy compare-and-set: another write of the key in flight (R3), not decided: never a Conflict (fix35d item
    # 1; figure: 10164 and nats-py's KeyWrongLastSequenceError without a number were Conflict: "changed meanwhile")
    (api(jse.BadRequestError, 400, 10164, "wrong last sequence"), StillBusy),
    (jse.KeyWrongLastSequenceError("wrong last sequence"), StillBusy),
    (api(jse.BadRequestError, 400, 10070, "wrong last msg ID: x"), Conflict),
    # a key or message that is not there
    (jse.KeyNotFoundError(), NotFound),
    (jse.KeyDeletedError(), NotFound),
    (api(jse.NotFoundError, 404, 10037, "no message found"), NotFound),
    (api(jse.BadRequestError, 400, 10043, "sequence 9 not found"), NotFound),
    (jse.NotFoundError(), NotFound),
    (jse.InvalidKeyError(), NotFound),
    (nats.errors.BadSubjectError(), NotFound),
    # topology missing
    (jse.BucketNotFoundError(), TopologyMissing),
    (api(jse.NotFoundError, 404, 10059, "stream not found"), TopologyMissing),
    (api(jse.NotFoundError, 404, 10014, "consumer not found"), TopologyMissing),
    # a stream at its limit (discard: new) - the publish ack of a full stream
    (api(jse.ServiceUnavailableError, 503, 10077, "maximum messages exceeded"), QueueFull),
    (api(jse.ServiceUnavailableError, 503, 10077, "maximum bytes exceeded"), QueueFull),
    (api(jse.ServiceUnavailableError, 503, 10077, "maximum messages per subject exceeded"), QueueFull),
    # storage full or failing
    (api(jse.ServiceUnavailableError, 503, 10023, "insufficient resources"), StorageFailed),
    (api(jse.BadRequestError, 400, 10002, "resource limits exceeded for account"), StorageFailed),
    (api(jse.ServerError, 500, 10047, "insufficient storage resources available"), StorageFailed),
    (api(jse.ServerError, 500, 10028, "insufficient memory resources available"), StorageFailed),
    (api(jse.ServiceUnavailableError, 503, 10077, "write: no space left on device"), StorageFailed),
    (api(jse.BadRequestError, 400, 10005, "no suitable peers for placement, insufficient storage"), StorageFailed),
    (api(jse.BadRequestError, 400, 10005, "no suitable peers for placement"), QueueUnavailable),
    # incompatible topology
    (api(jse.BadRequestError, 400, 10058, "stream name already in use with a different configuration"),
     TopologyError),
    # JetStream unavailable or refusing
    (api(jse.ServiceUnavailableError, 503, 10008, "JetStream system temporarily unavailable"), QueueUnavailable),
    (api(jse.ServerError, 500, 10118, "stream is offline"), QueueUnavailable),
    (api(jse.ServiceUnavailableError, 503, 10163, "expected last sequence per subject temporarily unavailable"),
     StillBusy),
    (api(jse.ServiceUnavailableError, 503, 10077, "message too large"), QueueUnavailable),
    (jse.ServiceUnavailableError(), QueueUnavailable),
    (jse.APIError(), QueueUnavailable),
    (jse.NoStreamResponseError(), TopologyMissing),  # a publish no stream took (C3.5)
    (nats.errors.NoRespondersError(), QueueUnavailable),
    # timeouts
    (nats.errors.TimeoutError(), QueueUnavailable),
    (jse.FetchTimeoutError(), QueueUnavailable),
    (nats.errors.FlushTimeoutError(), QueueUnavailable),
    (asyncio.TimeoutError(), QueueUnavailable),
    # the connection
    (nats.errors.ConnectionClosedError(), QueueUnavailable),
    (nats.errors.ConnectionReconnectingError(), QueueUnavailable),
    (nats.errors.ConnectionDrainingError(), QueueUnavailable),
    (nats.errors.NoServersError(), QueueUnavailable),
    (nats.errors.StaleConnectionError(), QueueUnavailable),
    (nats.errors.UnexpectedEOF(), QueueUnavailable),
    (nats.errors.OutboundBufferLimitError(), QueueUnavailable),
    (nats.errors.MaxPayloadError(), QueueUnavailable),
    (nats.errors.AuthorizationError(), QueueUnavailable),
    (jse.TooManyStalledMsgsError(), QueueUnavailable),
]


@pytest.mark.parametrize(("exc", "expected"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, BaseException)
                         else v.__name__)
def test_translate_maps_each_nats_error_to_its_gamead_error(exc: BaseException, expected: type[GameadError]) -> None:
    got = translate(exc)
    assert type(got) is expected, f"{exc!r} → {got!r}"
    assert "nats://" not in got.message and "@" not in got.message


@pytest.mark.parametrize(("exc", "words"), [
    (nats.errors.ConnectionClosedError(), "NATS is unavailable: connection closed"),
    (nats.errors.StaleConnectionError(), "NATS is unavailable: stale connection"),
    (nats.errors.NoServersError(), "NATS is unavailable: no servers available for connection"),
    (nats.errors.AuthorizationError(), "NATS error: authorization failed"),
    (nats.errors.UnexpectedEOF(), "NATS is unavailable: unexpected EOF"),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "")
def test_a_connection_error_is_said_in_words_not_as_a_python_class(exc: BaseException, words: str) -> None:
    """upreconnect57: a worker whose connection NATS closed said ``its heartbeat failed: NATS is unavailable:
    ConnectionClosedError`` in gamead up's console (before: the class name in each of these 5)."""
    assert translate(exc).message == words


def test_only_the_limit_texts_of_10077_are_a_full_stream() -> None:
    assert is_stream_limit(api(jse.ServiceUnavailableError, 503, 10077, "maximum bytes exceeded"))
    assert not is_stream_limit(api(jse.ServiceUnavailableError, 503, 10077, "no space left on device"))
    assert not is_stream_limit(api(jse.ServiceUnavailableError, 503, 10047, "maximum messages exceeded"))
    assert not is_stream_limit(jse.KeyNotFoundError())


def test_the_boundary_chains_the_original_error() -> None:
    with pytest.raises(QueueFull) as caught, nats_boundary():
        raise api(jse.ServiceUnavailableError, 503, 10077, "maximum messages exceeded")
    assert isinstance(caught.value.__cause__, jse.ServiceUnavailableError)
    with pytest.raises(Conflict), nats_boundary():
        raise jse.KeyWrongLastSequenceError("wrong last sequence: 3")


def test_gamead_errors_and_foreign_errors_pass_through() -> None:
    mine = NotFound("x")
    assert translate(mine) is mine
    other = ValueError("y")
    assert translate(other) is other
    assert isinstance(translate(KeyboardInterrupt()), RuntimeError)


def test_errors_about_the_connection_show_clients_no_details() -> None:
    for cls in (QueueUnavailable, StorageFailed, TopologyMissing):
        err = cls("cannot connect to NATS at nats://user:PW@nats-0.internal:4222")
        assert err.client_message and "nats" not in err.client_message.lower()
        assert err.client_message != err.message


def test_error_messages_logged_by_the_api_have_credentials_masked() -> None:
    from gamead_core.api.errors import mask_urls

    text = "the queue (NATS at nats://u:PW@h:4222,nats://TOKEN@h2:4222) is unavailable"
    assert mask_urls(text) == "the queue (NATS at nats://u:***@h:4222,nats://***@h2:4222) is unavailable"
    # review41 F3: its own URL rule cut a URL at its first comma and left a password's rest whole (the log net
    # masked it later); now it is the log net's rule itself
    assert mask_urls("redis at redis://:S3,PW@valkey:6379/0 failed") == "redis at redis://:***@valkey:6379/0 failed"


def test_a_request_refused_by_the_outbound_guard_is_unavailable_and_leaves_the_write_it_serves_ambiguous() -> None:
    """review16: the guard's refusal (:class:`OutboundBacklog`, nothing sent) may be the read that checks an
    ambiguous record create; read as nats-py's OutboundBufferLimitError it made that create "certainly not
    stored", the client told to resubmit while the record might be queued by the reaper later."""
    from gamead_core.errors import QueueUnavailable
    from gamead_core.queue.connection import translate
    from gamead_core.queue.liveness import OutboundBacklog
    from gamead_core.queue.publish import not_stored

    refused = OutboundBacklog(300_000, 262_144)
    err = translate(refused)
    err.__cause__ = refused
    assert isinstance(err, QueueUnavailable)
    assert err.message == ("NATS is not taking writes: 300,000 bytes wait to be sent (nats.max_pending_bytes = "
                           "262,144); not sent")
    assert not not_stored(err)


def test_a_write_larger_than_the_bound_on_its_own_says_so_not_that_nats_takes_no_writes() -> None:
    """attack30b F1: the autoscaler's state, grown past ``nats.max_pending_bytes`` by a 3 MB Kubernetes message,
    was refused every tick as "NATS is not taking writes: 0 bytes wait to be sent" while NATS was fine."""
    from gamead_core.queue.connection import translate
    from gamead_core.queue.liveness import OutboundBacklog, PublishRefused

    for refused in (OutboundBacklog(0, 4_194_304, size=6_000_512), PublishRefused(10, 4_194_304, size=6_000_512)):
        assert translate(refused).message == ("a write of 6,000,512 bytes is larger than nats.max_pending_bytes "
                                              "(4,194,304) on its own; not sent")
    assert str(OutboundBacklog(4_194_000, 4_194_304, size=512)).startswith("NATS is not taking writes: 4,194,000 bytes")
