"""The held-ads announcement spliced from the beat's bytes (``worker.announce``) is the beat's document with
``holding``, ``inFlight``, ``unstartedSince`` and ``heartbeatAt`` brought up to date, as the registry reads it
(issue 14; review30 F1 for ``unstartedSince``), in fewer bytes than the beat writes it (announce44)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gamead_core.config import GameadSettings
from gamead_core.models import iso_z, utc_iso, utcnow
from gamead_core.registry import NodeInfo
from gamead_core.worker.announce import announcement, beat_head, now_iso
from gamead_core.worker.held import HeldAds
from gamead_core.worker.runtime import Worker

_HELD = st.lists(st.fixed_dictionaries({
    "adId": st.text("0123456789abcdefghjkmnpqrstvwxyz", min_size=26, max_size=26),
    "delivery": st.builds(lambda seq, n: f"{seq}.{n}", st.integers(1, 10**6), st.integers(1, 9)),
    "ackSubject": st.text(max_size=60), "started": st.booleans()}), max_size=12)


#: the beat a worker sends (built once: settings and a worker per example would be most of the test's time)
_DOC = orjson.loads(Worker(GameadSettings(), "nats://127.0.0.1:1", worker_id="w5-test")._snapshot()  # noqa: SLF001
                    .model_dump_json())


#: fields at their empty default and one at a value equal to it but of another type (0.0 where the default is None)
_OTHER = {"failed": 0, "lastError": None, "cpuPerAdMs": None, "clockOffsetSeconds": 0.0, "fence": None}


@settings(max_examples=40)
@given(_HELD, st.integers(0, 64), st.booleans())
def test_an_announcement_is_the_beat_brought_up_to_date(held: list[dict[str, object]], in_flight: int,
                                                        other: bool) -> None:
    doc = {**_DOC, **_OTHER} if other else _DOC
    at = iso_z(utcnow())
    body = announcement(beat_head(doc), held, in_flight, at)
    node = NodeInfo.model_validate_json(body)  # what the reaper and /v1/workers read: the same NodeInfo
    assert node == NodeInfo.model_validate({**doc, "holding": held, "inFlight": in_flight, "unstartedSince": {},
                                            "heartbeatAt": at})
    assert [h.ad_id for h in node.holding] == [h["adId"] for h in held] and node.in_flight == in_flight
    assert node.clock_offset_seconds == (0.0 if other else None)


def test_a_busy_workers_announcement_is_smaller_and_reads_the_same() -> None:
    """At 1,000 ads/s a worker announced 17 held ads on average, 4 of them started (announce44: 0.13-0.31 puts per
    ad, each stored by nats-server and sent to every registry watcher). This one, 17 held with ack subjects as
    nats-server writes them: 3,224 bytes (a 5-digit pid), readers validating the same ``NodeInfo`` as the beat's
    document brought up to date. Before (``"started":false`` in each held ad not started, the beat's null and zero
    fields written): 3,583 bytes, over the bound."""
    held = HeldAds()
    for i in range(17):
        seq = 1000 + i
        held.hold(("GAMEAD_ADS", seq), f"01m93fcx83vypz4pdp0s9q{i:04d}", f"{seq}.1",
                  f"$JS.ACK.GAMEAD_ADS.gamead-p3.1.{seq}.{900 + i}.1796486886720909875.{799 - i}", started=i < 4)
    doc = {**_DOC, **_OTHER, "clockOffsetSeconds": None}
    at = iso_z(utcnow())
    body = announcement(beat_head(doc), held.wire_json(), 4, at, {3: 1_796_486_886.5})
    assert len(body) <= 3_300
    node = NodeInfo.model_validate_json(body)
    assert node == NodeInfo.model_validate({**doc, "holding": held.wire(), "inFlight": 4, "heartbeatAt": at,
                                            "unstartedSince": {"3": "2026-12-05T16:08:06.500000Z"}})
    assert [h.started for h in node.holding] == [True] * 4 + [False] * 13 and node.in_flight == 4
    assert {lv: at.timestamp() for lv, at in node.unstarted_since.items()} == {3: 1_796_486_886.5}


def test_an_empty_head_still_makes_an_object() -> None:
    assert orjson.loads(announcement(beat_head({"holding": [], "inFlight": 1}), [], 2, "t")) == {
        "holding": [], "inFlight": 2, "unstartedSince": {}, "heartbeatAt": "t"}


def test_an_announcement_says_what_is_held_unstarted_now_not_at_the_last_beat() -> None:
    """The beat said a P5 ad was held unstarted since T; the announcement made when it started (nothing held
    unstarted now) says none, and one made when a P2 ad came into the buffer says that one. Before, every
    announcement repeated the beat's, and the started ad counted as waiting, its age growing, until the next beat."""
    beat = {**_DOC, "unstartedSince": {"5": "2026-12-03T17:00:00Z"}}
    assert NodeInfo.model_validate_json(announcement(beat_head(beat), [], 1, iso_z(utcnow()))).unstarted_since == {}
    now = NodeInfo.model_validate_json(announcement(beat_head(beat), [], 1, iso_z(utcnow()), {2: 1_800_000_000.5}))
    assert {lv: at.timestamp() for lv, at in now.unstarted_since.items()} == {2: 1_800_000_000.5}


@given(st.one_of(st.floats(min_value=0, max_value=4e9, allow_nan=False),
                 st.integers(1_600_000_000 * 10**7, 1_800_000_000 * 10**7).map(lambda n: n / 10**7)))
def test_the_announcements_time_is_the_iso_text_a_datetime_gives(at: float) -> None:
    """``heartbeatAt`` from :func:`now_iso` (the second's text kept) is ``utc_iso``'s, microsecond rounding and the
    carry into the next second included, whatever second was formatted before."""
    assert now_iso(at) == utc_iso(at)
    assert now_iso(at + 1.0) == utc_iso(at + 1.0)


def test_the_announcements_time_at_edges_of_a_second() -> None:
    for at in (1_764_849_000.0, 1_764_849_000.9999996, 1_764_849_000.0000004, 1_764_849_000.0000005,
               1_764_849_000.5, 0.0, 1_764_849_001.0000015):
        assert now_iso(at) == utc_iso(at)
