"""attack29b F2's CLI half: a connection reset while the request was still being written is "nothing was done",
not "it may have been carried out" (the API acts on a request only once it has it whole); a reset after the
request went out whole still may have been carried out. The API side is a real TCP listener that resets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gamead_cli.client import ApiClient
from gamead_core.errors import ApiUnreachable, NoAnswer
from tests.cutting_listener import cutting_listener


@pytest.fixture
def cut_mid_body() -> Iterator[str]:
    yield from cutting_listener(read_first=1024)


@pytest.fixture
def cut_after_request() -> Iterator[str]:
    yield from cutting_listener(read_first=1 << 40)


def test_a_reset_while_the_body_is_written_says_nothing_was_done(cut_mid_body: str) -> None:
    with pytest.raises(ApiUnreachable, match="closed the connection before the request was sent whole .*: nothing "
                                             "was done") as raised:
        ApiClient(cut_mid_body).submit({"title": "x" * (8 << 20)})  # 8 MiB: more than the socket buffers take
    assert not isinstance(raised.value, NoAnswer)  # so `gamead submit` counts the ad rejected, not maybe queued
    assert "may have been carried out" not in str(raised.value)


def test_a_reset_after_the_request_went_out_whole_may_have_been_carried_out(cut_after_request: str) -> None:
    with pytest.raises(NoAnswer, match="got the request but gave no answer .*: it may have been carried out"):
        ApiClient(cut_after_request).submit({"title": "small"})
