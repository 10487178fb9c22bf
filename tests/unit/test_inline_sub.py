"""gamead_core.queue.inline_sub: the stand-in future nats-py's read loop hands each message to."""

from __future__ import annotations

import logging

import pytest
from nats.aio.msg import Msg

from gamead_core.queue.inline_sub import Inline


def _msg(subject: str = "_INBOX.x.1") -> Msg:
    return Msg(_client=None, subject=subject, data=b"{}")  # type: ignore[arg-type]


def test_every_message_goes_to_the_handler_and_it_is_never_cancelled() -> None:
    got: list[str] = []
    inline = Inline(lambda m: got.append(m.subject))
    for k in range(3):
        assert not inline.cancelled()  # nats-py asks before each set_result
        inline.set_result(_msg(f"s.{k}"))
    assert got == ["s.0", "s.1", "s.2"]


def test_a_failing_handler_is_logged_not_raised_into_the_read_loop(caplog: pytest.LogCaptureFixture) -> None:
    def boom(msg: Msg) -> None:
        raise RuntimeError("bad handler")

    with caplog.at_level(logging.ERROR, logger="gamead_core.queue.inline_sub"):
        Inline(boom).set_result(_msg("s.bad"))  # does not raise
    assert "handling a message on s.bad failed" in caplog.text
    assert "bad handler" in caplog.text
