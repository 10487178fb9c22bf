"""Which close of an API connection lingers (reads the client's body off before closing): the one a request's own
answer makes on a connection to close with its body still coming (attack29b F4: urllib's ``Connection: close`` and a
413 for a declared body over the cap), never a later close of a kept-alive connection that once answered before its
body (review29 F3: uvicorn's ``more_body``, never cleared after an early answer, made ``gamead serve``'s SIGTERM, the
keep-alive timeout and the closes that make room for a new connection each wait 2 s). Pure."""

from __future__ import annotations

from gamead_core.api.refusal_order import answered_before_its_body


def test_only_the_answer_to_a_request_still_sending_its_body_on_a_closing_connection_lingers() -> None:
    assert answered_before_its_body(response_complete=True, keep_alive=False, in_message=True)  # F4's case
    # a kept-alive connection after an early 413: shutdown, keep-alive timeout, room for another connection
    assert not answered_before_its_body(response_complete=True, keep_alive=True, in_message=True)
    # the whole request was read: nothing to read off, a plain close
    assert not answered_before_its_body(response_complete=True, keep_alive=False, in_message=False)
    # no answer yet (shutdown of a request in flight): the close waits for the answer, not here
    assert not answered_before_its_body(response_complete=False, keep_alive=False, in_message=True)
