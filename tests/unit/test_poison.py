"""What a worker takes as an ad from a work message (:mod:`gamead_core.worker.poison`) and the bounded trace it keeps
of one it refuses (:mod:`gamead_core.worker.poison_trace`), without servers (attack31a F3, F4)."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from gamead_core.ad_ids import new_ad_id
from gamead_core.log_throttle import Throttle
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import encode
from gamead_core.worker import poison_trace
from gamead_core.worker.poison import REASONS, NotAnAd, check_ad_id, message_record
from gamead_core.worker.poison_trace import HEAD_BYTES, MAX_HEADERS, Pending, _folded, raw_sample
from tests.support import ad


def _record(ad_id: str, **update: object) -> bytes:
    record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad("Poison")))
    return encode(record.model_copy(update=update))


def _long_description(ad_id: str) -> bytes:
    body = orjson.loads(_record(ad_id))
    body["ad"]["description"] = "D" * 2001  # over the ad's rule (AdSubmission: 1-2000 characters)
    return orjson.dumps(body)


@pytest.mark.parametrize("header", [None, "", "NOT-AN-ID", "01M8YNENYR61EDBTT4P5KJCB7R", "8" + "0" * 25, "x" * 4000])
def test_only_an_id_the_api_issues_is_an_ad_id(header: str | None) -> None:
    with pytest.raises(NotAnAd) as refused:
        check_ad_id(header)
    assert refused.value.reason == "bad_ad_id" and len(str(refused.value)) < 200
    check_ad_id(new_ad_id())


def test_a_body_is_an_ad_only_as_the_api_writes_it() -> None:
    ad_id = new_ad_id()
    assert message_record(_record(ad_id), ad_id).id == ad_id
    cases = {b"\x00\xffnot json{{{": "not_a_record", b'{"x": 1}': "not_a_record",
             _record(new_ad_id()): "id_mismatch", _record(ad_id, priority=9): "invalid_record",
             _record(ad_id, attempts=-1): "invalid_record",
             _long_description(ad_id): "not_a_record"}
    for body, reason in cases.items():
        with pytest.raises(NotAnAd) as refused:
            message_record(body, ad_id)
        assert refused.value.reason == reason and refused.value.reason in REASONS, body[:60]


def test_the_trace_of_a_poison_message_is_bounded_and_printable() -> None:
    headers = {f"H-{i}\x1b": "v\u202e" * 5000 for i in range(100)}
    last = raw_sample("GAMEAD_ADS", 7, "gamead.ads.p3", headers, b"\x1b[31m" + b"A" * 900_000, "not_a_record",
                      "why", 0.0)
    assert len(last["headers"]) == MAX_HEADERS and last["size"] == 900_005
    text = orjson.dumps(last).decode()
    assert len(text) < 30_000 and text.isascii() and "\x1b" not in text
    assert last["head"].startswith("\\x1b[31mA") and len(last["head"]) <= HEAD_BYTES + 3
    folded = orjson.loads(_folded(_folded(None, last, {"not_a_record": 1}), {**last, "reason": "id_mismatch"},
                                  {"id_mismatch": 3, "not_a_record": 1}))
    assert folded["count"] == 5 and folded["byReason"] == {"not_a_record": 2, "id_mismatch": 3}


def test_a_poison_flood_writes_its_trace_at_most_once_a_second_with_every_message_counted() -> None:
    """review31 R6: each poison message cost a compare-and-set loop on the one shared key, before its term."""
    pending = Pending(every=1.0)
    assert pending.due(100.0) == 0 and pending.take(100.0) is None  # nothing pending: nothing written
    for seq in range(1000):
        pending.add(raw_sample("GAMEAD_ADS", seq, "gamead.ads.p3", None, b"x", "not_a_record", "why", 0.0))
        pending.add(raw_sample("GAMEAD_ADS", seq, "gamead.ads.p3", None, b"x", "bad_ad_id", "why", 0.0))
    counts, last = pending.take(100.0)  # type: ignore[misc]
    assert counts == {"not_a_record": 1000, "bad_ad_id": 1000} and last["seq"] == 999
    pending.add(raw_sample("GAMEAD_ADS", 1000, "gamead.ads.p3", None, b"x", "id_mismatch", "why", 0.0))
    assert pending.due(100.4) == pytest.approx(0.6)  # the next write waits for the second to end
    assert pending.take(101.0) == ({"id_mismatch": 1}, pending_last(1000))


def pending_last(seq: int) -> dict[str, object]:
    return raw_sample("GAMEAD_ADS", seq, "gamead.ads.p3", None, b"x", "id_mismatch", "why", 0.0)


def test_a_poison_flood_logs_one_error_line_a_minute_saying_how_many_it_left_out(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review31 R6: one ERROR line per poison message flooded the worker's log."""
    lines_throttle = Throttle(every=poison_trace.LINE_EVERY, max_kinds=1)  # this test's own minute
    monkeypatch.setattr(poison_trace, "_LINES", lines_throttle)
    monkeypatch.setattr(poison_trace, "_trace_later", lambda js, last: None)  # no NATS here: the trace is above

    async def flood() -> None:
        for seq in range(500):
            last = raw_sample("GAMEAD_ADS", seq, "gamead.ads.p3", None, b"x", "not_a_record", "why", 0.0)
            await poison_trace.reported(None, last, NotAnAd("not_a_record", "its body is not an ad record"),  # type: ignore[arg-type]
                                        None, "terminated it")

    with caplog.at_level(logging.ERROR, logger="gamead_core.worker.poison_trace"):
        asyncio.run(flood())
    lines = [r for r in caplog.records if "is not an ad" in r.getMessage()]
    assert len(lines) == 1 and "work-stream message 0 " in lines[0].getMessage()
    lines_throttle._kinds["poison"] = (0.0, 499)  # a minute later: the next line says what was left out
    with caplog.at_level(logging.ERROR, logger="gamead_core.worker.poison_trace"):
        asyncio.run(flood())
    said = [r.getMessage() for r in caplog.records if "is not an ad" in r.getMessage()]
    assert len(said) == 2 and "(499 more since the last such line" in said[1], said
