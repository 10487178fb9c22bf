"""review29 F6: which accept() failures stop the API's listener for a while, and the bounded ``reason`` label
they are counted under (review29 F9)."""

from __future__ import annotations

import errno

import pytest

from gamead_core.api.acceptor import PAUSE_SECONDS, pauses
from gamead_core.telemetry.conn_metrics import accept_reason

#: the new connection's own network errors, which Linux's accept(2) says to retry like EAGAIN
NETWORK = [errno.EPROTO, errno.ENETDOWN, errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH,
           errno.EOPNOTSUPP, errno.ENETUNREACH, errno.EPERM, errno.ECONNABORTED]


@pytest.mark.parametrize("code", NETWORK, ids=[errno.errorcode[c] for c in NETWORK])
def test_a_new_connections_own_network_error_does_not_pause_accepting(code: int) -> None:
    assert not pauses(code)  # before: every error but ECONNABORTED stopped accepting for PAUSE_SECONDS
    assert accept_reason(code) == errno.errorcode[code]


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EBADF, None])
def test_out_of_descriptors_or_memory_and_unknown_errors_pause_accepting(code: int | None) -> None:
    assert PAUSE_SECONDS > 0
    assert pauses(code)


def test_the_reason_label_of_an_unknown_error_is_other() -> None:
    assert accept_reason(errno.EBADF) == "other"
    assert accept_reason(None) == "other"
    assert accept_reason(errno.EMFILE) == "EMFILE"
