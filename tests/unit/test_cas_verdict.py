"""How a compare-and-set refusal is read (gamead_core.store.cas.verdict, fix34b item 1), on nats-py's own error
types as they reach gamead: an ack's ``APIError`` with JetStream's code, or ``kv.update``'s
``KeyWrongLastSequenceError``, which folds 10071 and 10164 into one type without the code (nats-py 2.16)."""

from __future__ import annotations

import nats.js.errors

from gamead_core.store import cas


def _api(err_code: int, description: str) -> nats.js.errors.APIError:
    return nats.js.errors.APIError(code=400, err_code=err_code, description=description)


def test_a_numbered_wrong_last_sequence_is_lost_the_others_busy() -> None:
    """Figures: nats-server's errors.json texts for 10071, 10164 and 10163."""
    assert cas.verdict(_api(10071, "wrong last sequence: 7")) == cas.LOST
    assert cas.verdict(_api(10164, "wrong last sequence")) == cas.BUSY
    assert cas.verdict(_api(10163, "expected last sequence per subject temporarily unavailable")) == cas.BUSY
    assert cas.verdict(cas.lost_at(9)) == cas.LOST


def test_nats_py_kv_update_error_is_told_by_its_text() -> None:
    """kv.update raises KeyWrongLastSequenceError(description=…) for both codes: the number in the text decides."""
    lost = nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence: 12")
    busy = nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence")
    assert (cas.verdict(lost), cas.verdict(busy)) == (cas.LOST, cas.BUSY)


def test_other_answers_are_no_compare_and_set_refusal() -> None:
    assert cas.verdict(_api(10077, "maximum messages exceeded")) is None
    assert cas.verdict(TimeoutError()) is None
    assert cas.verdict(None) is None


def test_a_busy_write_is_sent_again_a_lost_one_never() -> None:
    """retry_busy over the error nats-py's kv.update raises (the jobs bucket's writer). Figures: busy twice, then
    stored → its revision after 3 sends; lost → raised after 1 send."""
    import asyncio

    async def run(answers: list[object]) -> tuple[object, int]:
        sent = 0

        async def write() -> int:
            nonlocal sent
            answer = answers[sent]
            sent += 1
            if isinstance(answer, BaseException):
                raise answer
            return int(answer)  # type: ignore[call-overload]

        try:
            return await cas.retry_busy(write), sent
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            return exc, sent

    busy = nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence")
    lost = nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence: 41")
    assert asyncio.run(run([busy, busy, 42])) == (42, 3)
    assert asyncio.run(run([lost, 42])) == (lost, 1)


def test_a_write_still_busy_after_its_tries_is_not_decided_never_lost() -> None:
    """retry_busy over a write answered busy on every send (a rival in flight the whole time): 9 sends, then
    :class:`StillBusy` (a QueueUnavailable: read again later), not nats-py's KeyWrongLastSequenceError that every
    caller reads as lost (figure, before fix35d: the 9th busy answer raised as is)."""
    import asyncio

    import pytest

    from gamead_core.errors import QueueUnavailable

    sent = 0

    async def write() -> int:
        nonlocal sent
        sent += 1
        raise nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence")

    with pytest.raises(cas.StillBusy) as caught:
        asyncio.run(cas.retry_busy(write))
    assert sent == cas.BUSY_TRIES + 1 and isinstance(caught.value, QueueUnavailable)
    assert not isinstance(caught.value, nats.js.errors.KeyWrongLastSequenceError)
    assert isinstance(caught.value.__cause__, nats.js.errors.KeyWrongLastSequenceError)
