"""handback50: a worker's ``handedBack`` (:mod:`gamead_core.worker.handed`), how it goes out in an announcement
(:mod:`gamead_core.worker.announce`) and how the doctor reads it (:func:`gamead_core.doctor.announced.handed_keys`)."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from gamead_core.doctor.announced import handed_keys
from gamead_core.registry import NodeInfo
from gamead_core.worker.announce import announcement, beat_head
from gamead_core.worker.handed import HANDED_BACK_FOR, HANDED_BACK_MOST, RecentHandBacks

_BEAT = {"id": "w-1", "role": "worker", "host": "h", "pid": 1, "version": "t", "startedAt": "2026-12-06T06:00:00Z",
         "heartbeatAt": "2026-12-06T06:00:00Z", "holding": []}


def _msg(seq: int, consumer: str = "gamead-p3", stream: str = "GAMEAD_ADS") -> SimpleNamespace:
    """What :meth:`RecentHandBacks.note` reads of a delivery: its metadata's stream, consumer and stream sequence."""
    return SimpleNamespace(metadata=SimpleNamespace(stream=stream, consumer=consumer,
                                                    sequence=SimpleNamespace(stream=seq)))


def test_hand_backs_are_said_for_their_window_then_forgotten() -> None:
    handed = RecentHandBacks()
    handed.note([_msg(41), _msg(42), _msg(7, "gamead-1-p2", "GAMEAD_ADS_1")], now=100.0)
    handed.note([_msg(43)], now=110.0)
    assert handed.wire(111.0) == {"GAMEAD_ADS.gamead-p3": [41, 42, 43], "GAMEAD_ADS_1.gamead-1-p2": [7]}
    assert handed.wire(100.0 + HANDED_BACK_FOR + 1) == {"GAMEAD_ADS.gamead-p3": [43]}
    assert handed.wire(110.0 + HANDED_BACK_FOR + 1) == {}


def test_at_most_the_cap_the_oldest_dropped_first_and_a_hand_back_again_is_young_again() -> None:
    handed = RecentHandBacks()
    handed.note([_msg(seq) for seq in range(1, HANDED_BACK_MOST + 11)], now=0.0)
    seqs = handed.wire(1.0)["GAMEAD_ADS.gamead-p3"]
    assert len(seqs) == HANDED_BACK_MOST and seqs[0] == 11 and seqs[-1] == HANDED_BACK_MOST + 10
    handed.note([_msg(11)], now=20.0)  # the same message handed back again: kept from its last hand-back
    assert handed.wire(HANDED_BACK_FOR + 5) == {"GAMEAD_ADS.gamead-p3": [11]}


def test_the_announcement_carries_it_only_when_there_is_one_and_a_reader_validates_it() -> None:
    head = beat_head({**_BEAT, "handedBack": {"GAMEAD_ADS.gamead-p3": [1]}})  # the beat's old one is not kept
    plain = announcement(head, b"[]", 0, "2026-12-06T06:00:01Z")
    assert b"handedBack" not in plain and NodeInfo.model_validate_json(plain).handed_back == {}  # an older reader's
    back = {"GAMEAD_ADS.gamead-p3": [41, 9_999_999]}
    node = NodeInfo.model_validate_json(announcement(head, b"[]", 0, "2026-12-06T06:00:01Z", None, back))
    assert node.handed_back == back
    full = {"GAMEAD_ADS.gamead-p3": list(range(10**7, 10**7 + HANDED_BACK_MOST))}  # the cap, 8-digit sequences
    assert len(orjson.dumps(full)) < 2_400  # ≤ ~2 kB of the entry


def test_the_doctor_reads_the_keys_and_skips_what_it_cannot() -> None:
    assert handed_keys({"GAMEAD_ADS.gamead-p3": [41, 42], "GAMEAD_ADS_1.gamead-1-p2": [7]}) == {
        ("GAMEAD_ADS", "gamead-p3", 41), ("GAMEAD_ADS", "gamead-p3", 42), ("GAMEAD_ADS_1", "gamead-1-p2", 7)}
    assert handed_keys({"nodot": [1], ".gamead-p3": [2], "GAMEAD_ADS.": [3], "GAMEAD_ADS.gamead-p3": ["4", True, 5],
                        "GAMEAD_ADS.gamead-p2": {"6": 6}}) == {("GAMEAD_ADS", "gamead-p3", 5)}
    assert handed_keys({}) == set()
