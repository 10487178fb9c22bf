"""fix33a: :class:`gamead_cli.submit.outage.Outage`, the rule of a bulk submit across an API outage, on a clock of
the test's own: said once when it begins and once when it ends, retried within ``client.retry_for`` of its start
and not after, and the sending stopped (said) when it outlasts that with no request out; submit37: the API's store
refusing every ad of a batch is an outage as well (:func:`store_verdict`)."""

from __future__ import annotations

import threading

from gamead_cli import retry
from gamead_cli.submit.outage import Outage, store_verdict
from gamead_core.errors import ApiClientError, NoAnswer

T0 = 1_796_351_465.0  # 2026-12-04T02:31:05Z


def _outage(now: list[float]) -> tuple[Outage, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []
    outage = Outage("http://127.0.0.1:8080", 10.0, lambda mark, text: said.append((mark, text)),
                    clock=lambda: now[0], wall=lambda: T0 + now[0])
    return outage, said


def test_an_outage_is_said_once_when_it_begins_and_once_when_it_ends() -> None:
    now = [0.0]
    outage, said = _outage(now)
    outage.answered()  # the API answering as usual: nothing to say
    assert said == [] and outage.summary(0) == {"outages": [], "pausedSeconds": 0.0, "stoppedByOutage": False,
                                                "refusedByOutage": 0}
    assert outage.refused("connection refused") is True
    now[0] = 4.0
    assert outage.refused("connection refused") is True  # within client.retry_for of its start: retried
    assert [m for m, _ in said] == ["!"]
    assert said[0][1].startswith("02:31:05 UTC the API at http://127.0.0.1:8080 is unreachable (connection "
                                 "refused): sending paused, the requests out are retried; if it still is at "
                                 "02:31:15 UTC (client.retry_for 10 s)")
    assert "· API unreachable since 02:31:05 UTC (connection refused): paused" in outage.status()
    now[0] = 9.5
    outage.answered()
    assert [m for m, _ in said] == ["!", "✓"] and "answers again after 9.5 s unreachable" in said[1][1]
    assert outage.status() == ""
    [span] = outage.summary(6)["outages"]
    assert span == {"since": "2026-12-04T02:31:05.000Z", "until": "2026-12-04T02:31:14.500Z", "seconds": 9.5,
                    "cause": "connection refused"}
    assert outage.summary(6)["refusedByOutage"] == 6


def test_past_retry_for_a_request_is_not_retried_and_the_sending_stops_once_none_is_out() -> None:
    now = [0.0]
    outage, said = _outage(now)
    stop = threading.Event()
    outage.started()
    assert outage.refused("connection refused") is True
    outage.finished()
    now[0] = 3.0
    assert outage.hold(stop) is False and not stop.is_set()  # none out, time left: the next batch goes, to try
    outage.started()
    now[0] = 10.5
    assert outage.refused("connection refused") is False  # past client.retry_for: given up at once
    outage.finished()
    assert outage.hold(stop) is True and stop.is_set() and outage.stopped
    assert said[-1][0] == "✗" and "is still unreachable after 10 s (connection refused): sending stopped" in said[-1][1]
    outage.answered()  # back after the run stopped: not said as "sending resumes"
    assert [m for m, _ in said] == ["!", "✗"] and outage.summary(3)["stoppedByOutage"] is True


# --- submit37 (attack37 F3): the API's store refusing every ad is an outage too -------------------------------

UNANSWERED = {"error": {"code": "queue_unavailable", "message": "NATS did not answer in time: ad 01m9 may still be queued",
                        "details": {"adId": "01m9"}}}


def test_store_verdict_needs_every_ad_refused_for_the_store_and_none_taken() -> None:
    """A batch of 100 per-ad ``queue_unavailable`` (the F3 figure: ads 5371-10000 of a full store) says the store
    refuses; one ad taken, a validation refusal alone, or a lost answer say nothing of it."""
    assert store_verdict([UNANSWERED] * 100) == "queue_unavailable: NATS did not answer in time"
    assert store_verdict([UNANSWERED] * 99 + [{"id": "01m9", "duplicate": False}]) == ""
    whole = ApiClientError("the queue cannot store new data", status=503, api_code="storage_failed")
    assert store_verdict([whole, whole]) == "storage_failed: the queue cannot store new data"
    assert store_verdict([{"error": {"code": "records_full", "message": "full"}}]) == "records_full: full"
    assert store_verdict([{"error": {"code": "validation_failed", "message": "title"}}, UNANSWERED]) is not None
    assert store_verdict([{"error": {"code": "validation_failed", "message": "title"}}]) is None
    assert store_verdict([NoAnswer("no answer in 10s")]) is None  # a lost answer is not the store's word
    assert store_verdict([]) is None


def test_a_store_outage_pauses_probes_one_ad_and_ends_at_an_ad_taken_not_at_any_answer() -> None:
    now = [0.0]
    outage, said = _outage(now)
    stop = threading.Event()
    assert outage.size(100) == 100
    outage.judge([UNANSWERED] * 100)
    assert [m for m, _ in said] == ["!"] and said[0][1].startswith(
        "02:31:05 UTC the API at http://127.0.0.1:8080 refuses every ad for its store (queue_unavailable: NATS did "
        "not answer in time): sending paused, one ad at a time tries again")
    assert outage.size(100) == 1 and "the API's store refuses writes since 02:31:05 UTC" in outage.status()
    outage.answered()  # the batch answer itself (HTTP 200): not the end of a store outage
    outage.judge([UNANSWERED])  # a probe refused again: still the same outage, said once
    assert outage.since is not None and [m for m, _ in said] == ["!"]
    outage.started()  # a probe out: the sender waits for it
    waited = threading.Thread(target=outage.hold, args=(stop,))
    waited.start()
    now[0] = 6.0
    outage.judge([{"id": "01m9"}])  # an ad taken: the store works again
    outage.finished()
    waited.join(timeout=10)
    assert not waited.is_alive() and not stop.is_set()
    assert said[-1][0] == "✓" and "answers again after 6.0 s refusing writes (queue_unavailable" in said[-1][1]
    assert outage.size(100) == 100 and outage.summary(0)["outages"][0]["cause"].startswith("queue_unavailable")


def test_a_store_outage_past_retry_for_stops_the_sending_and_says_why() -> None:
    now = [0.0]
    outage, said = _outage(now)
    stop = threading.Event()
    outage.judge([{"error": {"code": "storage_failed", "message": "disk full"}}])
    now[0] = 10.5
    assert outage.hold(stop) is True and stop.is_set()
    assert "still refuses every ad for its store after 10 s (storage_failed: disk full): sending stopped" \
        in said[-1][1]
    assert outage.reason() == ("the API's store still refused every ad after client.retry_for (storage_failed: "
                               "disk full)")


# --- fixsubmit38 (attack38a F1): every 503 an ad can get is the node refusing every ad, not the store's alone -----

def test_store_verdict_takes_every_whole_node_refusal_and_no_per_ad_one() -> None:
    """attack38a F1: a node left on old ``queue.partitions`` answered 1,020 ads 503 ``topology_changed`` and the rule
    said nothing (None): no line, no pause. Every 503 code an ad can get says it; a whole request's 503 of any code
    (a proxy's) too; the ad's own refusals (422, 409 in process, 429) do not."""
    stale = ApiClientError("this API node takes no submits: the queue has 3 partitions", status=503,
                           api_code="topology_changed")
    assert store_verdict([stale] * 10) == "topology_changed: this API node takes no submits"
    for code in ("topology_error", "queue_full", "too_many_connections", "topology_changed"):
        assert store_verdict([{"error": {"code": code, "message": "m"}}]) == f"{code}: m", code
    proxy = ApiClientError("upstream connect error", status=503)
    assert store_verdict([proxy]) == "api_error: upstream connect error"
    for code in ("validation_failed", "idempotency_key_reused", "idempotency_key_in_process", "rate_limited"):
        assert store_verdict([{"error": {"code": code, "message": "m"}}]) is None, code
    assert store_verdict([ApiClientError("slow down", status=429, api_code="rate_limited")]) is None


def test_a_batchs_refused_ads_are_resent_until_the_store_outages_own_stop_not_only_their_own_retry_for() -> None:
    """regress38 F4: in a 12 s store outage (``client.retry_for`` 10 s), batches whose own 10 s of resends ran out
    inside it counted 294 certainly unsent ads rejected, and the run's stop, promised by its ``!`` line, never came:
    by the time no request was out the store took ads again. Now a batch resends until the outage's own stop (its
    start + ``retry_for``) when that is later, so its ads go once the store answers, or the run stops as said; and a
    whole batch refused for the store is its ads' own answers (certain, resendable), not a rejection at once."""
    from gamead_cli.retry import as_ad_answer

    now = [0.0]
    outage, _ = _outage(now)
    assert outage.resend_until(5.0) == 5.0  # no outage: the batch's own bound
    now[0] = 2.0
    outage.judge([UNANSWERED] * 10)  # a store outage begins at 2 s
    assert outage.resend_until(5.0) == 12.0  # its stop (2 + 10 s), later than the batch's own 5 s
    assert outage.resend_until(20.0) == 20.0
    failing = ApiClientError("the store is failing", status=503, api_code="storage_failing", details={"retryAfter": 1})
    assert as_ad_answer(failing) == {"error": {"code": "storage_failing", "message": "the store is failing",
                                               "details": {"retryAfter": 1}}}
    maybe = ApiClientError("may be queued", status=503, api_code="queue_unavailable", details={"adId": "01m9"})
    assert as_ad_answer(maybe) is maybe  # uncertain: looked up, never resent
    wrong = ApiClientError("bad", status=422, api_code="validation_failed")
    assert as_ad_answer(wrong) is wrong


def _stopped_by_a_store_outage() -> tuple[list[float], Outage, list[tuple[str, str]]]:
    """A store outage begun at 0 s (hold 10 s) that stopped the run at 10.5 s; the clock left at 11 s."""
    now = [0.0]
    outage, said = _outage(now)
    stop = threading.Event()
    outage.judge([UNANSWERED] * 100)
    now[0] = 10.5
    assert outage.hold(stop) is True and stop.is_set()
    now[0] = 11.0
    return now, outage, said


def test_after_the_stop_a_refused_answer_begins_no_second_outage() -> None:
    """regress46: NATS frozen 12 s in a 3,000-ad run: ``✗ 20:58:39 UTC … sending stopped``, then an ad taken and
    one more batch answer refused for the store (requests out at the stop) said ``! 20:58:40 UTC … if it still
    refuses at 20:58:50 UTC … sending stops`` and the row ``store refusing 2 times: …; 20:58:40-20:58:40 UTC``."""
    now, outage, said = _stopped_by_a_store_outage()
    outage.judge([{"id": "01m9"}])  # an answer that came after the stop: an ad taken
    outage.judge([{"error": {"code": "queue_unavailable", "message": "NATS did not answer in time"}}])
    assert [m for m, _ in said] == ["!", "✗"]
    assert len(outage.summary(0)["outages"]) == 1 and outage.since is None
    assert outage.reason().startswith("the API's store still refused every ad after client.retry_for")


def test_after_the_stop_a_refused_connection_begins_no_late_outage() -> None:
    """paused46: once a store outage stopped the run, a request still out that meets a refused connection gave
    ``! … is unreachable … if it still is at … sending stops`` (a stop already made), a second span, and a retry;
    now it gives up at once, unsaid, and the stop's reason stays the store's."""
    now, outage, said = _stopped_by_a_store_outage()
    outage.judge([{"id": "01m9"}])  # the store back after the stop: the outage ends, unsaid
    assert outage.refused("connection refused") is False  # the API gone meanwhile: no retry, no late outage
    assert [m for m, _ in said] == ["!", "✗"] and len(outage.summary(0)["outages"]) == 1
    assert outage.reason().startswith("the API's store still refused every ad after client.retry_for")


def test_the_senders_wait_for_a_free_slot_counts_the_outages_part_in_the_pause() -> None:
    """paused46: a store outage of 6.0 s said ``!`` then ``✓`` but ``pausedSeconds`` 0.0: the sender was waiting
    outside ``hold`` (for the requests out, every ad handed out; or for a free request slot, which the batches out
    keep through a store outage). Such a wait counts from the outage's start (or its own, the later) to the
    outage's end (or its own, the earlier), as a hold does; a wait with no outage counts nothing."""
    now = [0.0]
    outage, said = _outage(now)

    def slot_after(steps: list[tuple[float, list[object] | None]]) -> bool:  # the wait: the clock moves in it
        for at, bodies in steps:
            now[0] = at
            if bodies is not None:
                outage.judge(bodies)
        return True

    assert outage.waiting(lambda: slot_after([(1.0, None)])) is True and outage.paused == 0.0  # no outage
    outage.waiting(lambda: slot_after([(2.0, [UNANSWERED]), (7.0, None)]))  # begins at 2, still at 7
    assert outage.paused == 5.0
    outage.waiting(lambda: slot_after([(8.5, [{"id": "01m9"}]), (9.0, None)]))  # ends at 8.5
    assert outage.paused == 6.5 and [m for m, _ in said] == ["!", "✓"]
    outage.waiting(lambda: slot_after([(12.0, None)]))  # after it: nothing more
    assert outage.summary(0)["pausedSeconds"] == 6.5


# --- outage46's leftover: a proxy's 502/503/504 is the API unreachable behind it --------------------------------

def test_a_proxy_answering_for_the_api_begins_an_unreachable_outage_probing_one_ad_at_a_time() -> None:
    """A load balancer with no upstream answers for the API: the outage is the API unreachable (not its store), its
    line says an ad the proxy answered for is resent only keyed, each batch meanwhile is one ad, and the API's
    next answer ends it; a later outage of refused connections sends whole batches again."""
    now = [0.0]
    outage, said = _outage(now)
    assert outage.refused("HTTP 503 from a proxy (no healthy upstream)", proxy=True) is True
    assert outage.size(100) == 1 and outage.kind == "unreachable"
    assert said[0][1].startswith("02:31:05 UTC the API at http://127.0.0.1:8080 is unreachable (HTTP 503 from a "
                                 "proxy (no healthy upstream)): sending paused, one ad at a time tries again (an ad "
                                 "the proxy answered for is resent only with --idempotency-key, else may be queued); "
                                 "if it still is at 02:31:15 UTC (client.retry_for 10 s) sending stops and the rest "
                                 "are not sent."), said
    assert outage.refused("connection refused") is True and outage.size(100) == 1  # the same outage: still a proxy's
    now[0] = 3.0
    outage.answered()
    assert [m for m, _ in said] == ["!", "✓"] and outage.size(100) == 100
    assert outage.refused("connection refused") is True and outage.size(100) == 100
    assert "the requests out are retried" in said[-1][1]


def test_an_answer_to_a_request_sent_before_the_outage_began_does_not_end_it() -> None:
    """flakes50: a batch a proxy passed on just before its upstream went answered 200 after the first 504: it ended
    the outage 0.0 s in and the next 504 began another (``!``, ``✓``, ``!``, ``✓``: two outages said of one). An
    answer says the API is back only for a request sent once the outage had begun."""
    now = [5.0]
    outage, said = _outage(now)
    assert outage.refused("HTTP 504 from a proxy (no healthy upstream)", proxy=True) is True
    now[0] = 5.05
    outage.answered(sent=4.9)  # sent before the outage began: the API then, not now
    assert [m for m, _ in said] == ["!"] and outage.since == 5.0
    assert outage.refused("HTTP 504 from a proxy (no healthy upstream)", proxy=True) is True  # the same outage
    now[0] = 7.5
    outage.answered(sent=7.4)
    assert [m for m, _ in said] == ["!", "✓"] and "answers again after 2.5 s unreachable" in said[-1][1]
    assert len(outage.summary(0)["outages"]) == 1


def test_an_ad_taken_by_a_batch_sent_before_a_store_outage_began_does_not_end_it() -> None:
    """The store-outage side of flakes50: a batch sent just before the store began refusing came back with an ad
    taken after the outage's first refusals: it ended the outage 0.0 s in (``!``, ``✓``, then ``!`` again at the next
    refusal: one outage said as two). An ad taken says the store is back only for a batch sent once it began."""
    now = [5.0]
    outage, said = _outage(now)
    outage.judge([UNANSWERED] * 10, sent=4.95)
    assert [m for m, _ in said] == ["!"] and outage.since == 5.0
    now[0] = 5.05
    outage.judge([{"id": "01m9"}], sent=4.9)  # taken before the outage began: the store then, not now
    assert [m for m, _ in said] == ["!"] and outage.since == 5.0
    now[0] = 7.5
    outage.judge([{"id": "01ma"}], sent=7.4)
    assert [m for m, _ in said] == ["!", "✓"] and "answers again after 2.5 s refusing writes" in said[-1][1]
    assert len(outage.summary(0)["outages"]) == 1


def test_a_proxys_answer_not_resent_before_any_ad_was_taken_promises_no_pause() -> None:
    """probe47 F4: unkeyed, the first batch answered by a proxy is not resent and ``gamead submit`` stops at once
    (its rule for a first batch with no answer); the ``!`` line promised a pause until 02:31:15 and the run ended
    60 ms later. Now that case is said as the stop it is; once an ad was taken the outage pauses as before."""
    now = [0.0]
    outage, said = _outage(now)
    assert outage.refused("HTTP 503 from a proxy (no healthy upstream)", proxy=True, resent=False) is True
    assert said == [("✗", "02:31:05 UTC the API at http://127.0.0.1:8080 is unreachable (HTTP 503 from a proxy (no "
                            "healthy upstream)) and no ad of this run was taken yet: sending stopped at once, the "
                            "batch the proxy answered for not resent (only --idempotency-key makes that safe: its "
                            "ads may be queued), the rest not sent; the summary says which")], said
    keyed, said_keyed = _outage(now)  # keyed: resent up to the outage's stop, as promised
    keyed.refused("HTTP 503 from a proxy (no healthy upstream)", proxy=True, resent=True)
    assert [m for m, _ in said_keyed] == ["!"] and "sending paused" in said_keyed[0][1]
    later, said_later = _outage(now)  # an ad was taken before: the pause and the probes come
    later.judge([{"id": "01m9"}])
    later.refused("HTTP 503 from a proxy (no healthy upstream)", proxy=True, resent=False)
    assert [m for m, _ in said_later] == ["!"] and "sending paused, one ad at a time" in said_later[0][1]


def test_a_proxys_answer_is_retried_as_a_lost_connection_only_where_safe() -> None:
    for status in (502, 503, 504):
        assert not retry.may_retry("POST", None, status=status, gateway=True)  # may have been passed on
        assert retry.may_retry("POST", {"Idempotency-Key": "k"}, status=status, gateway=True)
        assert retry.may_retry("POST", None, status=status, gateway=True, keyed=True)
        assert retry.may_retry("GET", None, status=status, gateway=True)
    assert not retry.may_retry("GET", None, status=502)  # the API's own 502 (gamead body): not a proxy's
