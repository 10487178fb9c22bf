"""outage46: a batch's ads refused certainly unsent (503 ``storage_failing``, no ``details.adId``) while an outage
is under way are never settled as ``rejected`` before the outage's stop: they are sent again, or held until that
stop and then not sent (``notSent``: never judged by the API). Session 45's flake of
``test_submit_outage_accounts[json]`` (50 ads, one batch at 500/s, ``rejected storage_failing``): the next resend's
wait (its ``retryAfter``, or the back-off) did not fit in the time left, while the outage was not yet due to stop
the run, so :func:`next_try` answered "their own resends ran out" and the ads were counted refused for good.
:class:`Outage` and :func:`next_try` on the test's own clock: no sleep, no timing assert."""

from __future__ import annotations

import threading

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_cli import retry
from gamead_cli.client import ApiClient
from gamead_cli.submit.outage import STORE_CODES, Outage
from gamead_cli.submit.resending import next_try
from gamead_core.errors import ApiClientError
from tests.support import ad

T0 = 1_796_351_465.0  # 2026-12-04T02:31:05Z
HOLD = 5.0  #: client.retry_for, as in test_submit_outage_accounts
FAILING = {"code": "storage_failing", "message": "the store is failing", "details": {"retryAfter": 1}}
#: a 202 of POST /ads, as a batch's result (the client checks its shape)
ACCEPTED = {"id": "a1", "status": "queued", "priority": 3, "duplicate": False, "submittedAt": "2026-01-01T00:00:00Z",
            "ad": ad("t")}
STOPPED = "the API's store still refused every ad after client.retry_for (storage_failing: the store is failing)"


def _outage(now: list[float]) -> Outage:
    return Outage("http://127.0.0.1:8080", HOLD, lambda mark, text: None, clock=lambda: now[0],
                  wall=lambda: T0 + now[0])


def _store_outage_at(now: list[float], since: float) -> Outage:
    outage = _outage(now)
    now[0] = since
    outage.judge([{"error": FAILING}] * 50)  # a batch of 50, every ad refused for the store: the outage begins
    assert outage.since == since
    return outage


@pytest.mark.parametrize("own", [7.5, 5.0], ids=["batch sent after the outage began", "batch sent before"])
def test_ads_whose_next_try_does_not_fit_before_the_outages_stop_are_held_to_it_then_not_sent(own: float) -> None:
    """Store outage from 2 s (its stop at 7 s). At 6.8 s (a batch sent at 2.5 s: its own bound 7.5 s; or at 0 s:
    the outage's stop 7 s) its 50 ads are refused again, ``retryAfter`` 1 s: the wait fits neither bound. Before:
    ``(None, "")``, the 50 ads ``rejected storage_failing``; now they wait the 0.2 s left to the stop, and then
    are not sent again, in the stop's words."""
    now = [0.0]
    outage = _store_outage_at(now, 2.0)
    now[0] = 6.8
    wait, cut = next_try(outage, 4, [FAILING] * 50, own, now[0], False)
    assert cut == "" and wait == pytest.approx(0.2), (wait, cut)  # held: not settled (rejected), not cut yet
    now[0] += wait
    assert outage.cut(False) == STOPPED  # the look after the wait: the stop came (left39b's notSent words)
    assert next_try(outage, 5, [FAILING] * 50, own, now[0], False) == (None, STOPPED)
    assert outage.stopped and outage.summary(50)["stoppedByOutage"] is True


def test_a_store_outage_turned_unreachable_holds_the_ads_it_refused_too() -> None:
    """A store outage from 2 s, then a connection refused at 3 s (the outage is now "unreachable", its stop still
    7 s): at 4.5 s a batch's own bound (4.6 s) leaves no room for a 1 s wait. Before: ``(None, "")``, rejected;
    now held through the outage: tried again after the ``retryAfter`` (1 s), within the 2.5 s to the stop (review47
    F8: it was the whole 2.5 s, no try between)."""
    now = [0.0]
    outage = _store_outage_at(now, 2.0)
    now[0] = 3.0
    assert outage.refused("connection refused") is True and outage.kind == "unreachable"
    now[0] = 4.5
    wait, cut = next_try(outage, 3, [FAILING] * 10, 4.6, now[0], False)
    assert cut == "" and wait == pytest.approx(1.0), (wait, cut)


def test_a_wait_that_would_end_past_the_outages_stop_ends_at_it() -> None:
    """At 6 s (stop at 7 s) a 3 s ``retryAfter`` fits the batch's own bound (10 s): before, the ads went again at
    9 s, 2 s after the stop the ``!`` line promised; now the wait ends at the stop, where they are cut."""
    now = [0.0]
    outage = _store_outage_at(now, 2.0)
    now[0] = 6.0
    late = {**FAILING, "details": {"retryAfter": 3}}
    assert next_try(outage, 2, [late], 10.0, now[0], False) == (pytest.approx(1.0), "")


def test_without_an_outage_the_ads_own_resends_end_with_their_last_answer_and_a_stop_cuts_them() -> None:
    """No outage under way (none began, or it ended): a wait that does not fit the batch's own bound is not
    started and the last answer stands (``(None, "")``: rejected with its code), as before; a wait that fits is
    waited. The run's stop (a Ctrl-C) cuts them whatever the outage."""
    now = [3.0]
    outage = _outage(now)
    assert next_try(outage, 3, [FAILING], 3.5, now[0], False) == (None, "")
    assert next_try(outage, 1, [FAILING], 8.0, now[0], False) == (1.0, "")
    outage = _store_outage_at(now, 2.0)
    now[0] = 3.0
    outage.judge([{"id": "01m9"}])  # an ad taken: the outage ends
    now[0] = 7.5  # a batch begun after its end (own bound 8.2 s, begun at 3.2 s): its own bound alone
    assert outage.since is None and next_try(outage, 3, [FAILING], 8.2, now[0], False) == (None, "")
    assert next_try(outage, 1, [FAILING], 8.0, now[0], True) == (None, "the run stopped before their next try")


def test_ads_held_through_an_outage_that_ended_are_resent_for_retry_for_after_its_end() -> None:
    """regress46: NATS frozen 8 s in 'gamead submit --count 3000 --rate 800' (ratelimit 300/s): one store outage of
    6.1 s, never stopped, yet 41 ads refused ``storage_failing`` ended ``rejected`` (exit 1): their batch, begun
    before the outage, was probed one ad a try through it and had 1.4 s of its own 10 s left when it ended. Store
    outage 2-6 s; a batch begun at 0.5 s (own bound 5.5 s): at 6.2 s its ads, refused with ``retryAfter`` 1 s, go
    again (before: ``(None, "")``, rejected); they may until 11 s (the end + client.retry_for), not after."""
    now = [0.0]
    outage = _store_outage_at(now, 2.0)
    now[0] = 6.0
    outage.judge([{"id": "01m9"}])  # an ad taken: the store works again
    now[0] = 6.2
    assert outage.resend_until(5.5) == 11.0
    assert next_try(outage, 5, [FAILING] * 41, 5.5, now[0], False) == (1.0, "")
    now[0] = 10.5
    assert next_try(outage, 6, [FAILING] * 41, 5.5, now[0], False) == (None, "")  # 1 s no longer fits: rejected


@pytest.mark.parametrize("code", sorted(STORE_CODES))
def test_an_ad_refused_with_any_code_that_begins_a_store_outage_is_resent_not_rejected(code: str) -> None:
    """Every 503 code an ad can get begins a store outage (:data:`STORE_CODES`); without ``details.adId`` NATS took
    nothing of it, so it is resent and, at the outage's stop, not sent — per ad in a batch answer or for a whole
    batch refused. Before: ``records_full``, ``topology_changed``, ``topology_error`` and ``too_many_connections``
    were not resendable, so their ads were counted rejected at once (test_submit_node_refuses: the batches out
    until the first refusal came back, ``rejected`` ``topology_changed``) while the outage they began was said."""
    error = {"code": code, "message": "m", "details": None}
    assert retry.resendable(error), code
    whole = ApiClientError("m", status=503, api_code=code)
    assert retry.as_ad_answer(whole) == {"error": error}, code
    assert not retry.resendable({**error, "details": {"adId": "01m9"}})  # may be stored: looked up, never resent


def test_held_wait_ends_at_the_outages_stop_and_waits_for_it_when_the_try_did_not_fit() -> None:
    assert retry.held_wait(None, None) is None and retry.held_wait(0.5, None) == 0.5  # no outage: as it was
    assert retry.held_wait(None, 0.2) == 0.2 and retry.held_wait(3.0, 1.0) == 1.0 and retry.held_wait(0.5, 1.0) == 0.5
    # due already (read just after cut() found it not): look again at once, where the outage cuts; never None
    assert retry.held_wait(None, 0.0) == 0.0 and retry.held_wait(None, -0.001) == 0.0


@given(st.none() | st.floats(0, 60), st.none() | st.floats(-5, 60))
def test_held_wait_never_gives_up_while_an_outage_is_under_way_and_never_waits_past_its_stop(
        wait: float | None, held: float | None) -> None:
    got = retry.held_wait(wait, held)
    if held is None:
        assert got == wait  # no outage: next_wait's answer, None (give up) included
    else:
        assert got is not None and 0 <= got <= max(0.0, held) and (wait is None or got <= wait)


def _client_of_an_api_back_after(outage: Outage, gone_for: float) -> tuple[ApiClient, list[str], list[float | None]]:
    """An :class:`ApiClient` (``retry_for`` 0.2 s) watched by ``outage``, on httpx's in-process transport (as
    test_client_retry): the first request answered, then the connection refused for the outage's first
    ``gone_for`` seconds, then each batch accepted. Also returns the paths tried and the outage's time left
    (:meth:`Outage.left`) at each answer."""
    lock, seen, answered_with = threading.Lock(), [], []

    def api(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(request.url.path)
            left = outage.left()
        if len(seen) > 1 and (left is None or left > outage.hold_for - gone_for):
            raise httpx.ConnectError("connection refused", request=request)
        answered_with.append(left)
        return httpx.Response(200, json={"results": [ACCEPTED], "accepted": 1, "duplicates": 0, "rejected": 0})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(api), retry_for=0.2)
    client.watch = outage
    return client, seen, answered_with


def test_a_batch_refused_by_connection_is_retried_until_the_outages_stop_not_only_its_own_retry_for() -> None:
    """The unreachable outage's ``!`` line says the requests out are retried until its stop. A batch whose own
    ``client.retry_for`` (0.2 s here) ends before that stop (2 s: a batch sent before the outage began, or whose
    next back-off did not fit) gave up at its own bound: its ads ``not sent`` though the API answered again
    within the time promised. Now it is retried until the stop and its ad accepted. httpx's in-process transport
    (as test_client_retry): the connection refused for the outage's first 0.5 s, then answered."""
    outage = Outage("http://api.test", 2.0, lambda mark, text: None)  # the outage's own clock: time.monotonic
    client, seen, _ = _client_of_an_api_back_after(outage, 0.5)
    assert client.submit_batch([ad("t")])["results"] == [ACCEPTED]  # answered: the API was there
    assert client.submit_batch([ad("t")])["results"] == [ACCEPTED], seen  # before: ApiUnreachable at 0.2 s
    assert outage.spans and outage.since is None and not outage.stopped  # the outage said, ended, not a stop


def test_a_request_past_its_own_retry_for_keeps_trying_and_sees_the_api_back_long_before_the_stop() -> None:
    """review47 F8: a request whose own ``client.retry_for`` (0.2 s) ran out in an outage (stop in 10 s) waited the
    whole time to the stop without a try. The API back 0.5 s in went unseen: with every request out in such a
    wait, no other batch goes out to try (the sender holds while one is out), so the run stopped at the stop, as if
    the API were still away (or, winning that race, went on 9.5 s late). Now it tries again after each back-off,
    its last wait ending at the stop: it is answered with most of the outage's time left."""
    outage = Outage("http://api.test", 10.0, lambda mark, text: None)  # the outage's own clock: time.monotonic
    client, seen, answered_with = _client_of_an_api_back_after(outage, 0.5)
    assert client.submit_batch([ad("t")])["results"] == [ACCEPTED]  # answered: the API was there
    assert client.submit_batch([ad("t")])["results"] == [ACCEPTED], seen
    assert answered_with[-1] is not None and answered_with[-1] > 5.0, answered_with  # before: ~0 s left


def test_ads_past_their_own_resends_in_an_unreachable_outage_try_again_after_the_back_off() -> None:
    """review47 F8, the resends of a batch's refused ads: an unreachable outage from 2 s (its stop at 7 s); at 3 s
    the batch's own bound (3 s) is spent. Before: a wait of 4 s, to the stop, with no try between (an API back at
    3.5 s unseen by these ads); now the back-off's (≤ 0.5 s after a second try), then they look again."""
    now = [0.0]
    outage = _outage(now)
    now[0] = 2.0
    assert outage.refused("connection refused") is True
    now[0] = 3.0
    wait, cut = next_try(outage, 2, [FAILING | {"details": {}}] * 10, 3.0, now[0], False)
    assert cut == "" and wait is not None and wait <= 0.5, wait
