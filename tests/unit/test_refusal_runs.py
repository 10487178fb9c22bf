"""A run of credential refusals (gamead_core.queue.refusal), without servers: a timeout between two refusals on a
loaded machine ended the run, so the next refusal started a new one, said again in the log (a fresh clone's
test_nats_credentials_refused saw it twice) and put the exit after nats.refused_exit_after off; only other errors
lasting REFUSAL_GAP seconds (the server away, not refusing) end it."""

from __future__ import annotations

import nats
import nats.errors

from gamead_core.queue.refusal import REFUSAL_GAP, cleared, note_error

REFUSAL = nats.errors.Error("nats: 'Authorization Violation'")
AWAY = nats.errors.TimeoutError()


def test_a_timeout_between_two_refusals_keeps_one_run_said_once() -> None:
    nc = nats.NATS()
    assert note_error(nc, REFUSAL, away=True, now=100.0)  # the first refusal: said
    assert not note_error(nc, AWAY, away=True, now=100.5)  # a loaded machine's timeout
    assert not note_error(nc, REFUSAL, away=True, now=101.0)  # the same run: not said again


def test_other_errors_for_the_gap_end_the_run_and_a_reconnect_ends_it_at_once() -> None:
    nc = nats.NATS()
    assert note_error(nc, REFUSAL, away=True, now=100.0)
    assert not note_error(nc, AWAY, away=True, now=100.0 + REFUSAL_GAP)  # the server away, not refusing
    assert note_error(nc, REFUSAL, away=True, now=106.0)  # a new run: said
    cleared(nc)  # connected: NATS took the credentials
    assert note_error(nc, REFUSAL, away=True, now=107.0)
