"""attack29b F1, the pure half: with JetStream's file store refusing writes (a full disk, a store at its limit)
every submit is refused, yet ``gamead doctor`` said "every invariant holds" (exit 0), ``gamead top`` showed nothing
and ``gamead up`` said nothing for 7 minutes. What each now says, without a server (the clock is injected)."""

from __future__ import annotations

from gamead_cli.doctor_verdict import holds
from gamead_cli.tui.view_header import storage_text, summary_text
from gamead_core.doctor.model import KIND_BY_CODE
from gamead_core.doctor.writable import unstored_line
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.storage import StorageProbe
from gamead_core.scaling.ready_watch import Reading, ReadyWatch, reading_of
from tests.hand_clock import HandClock


def test_the_doctor_says_a_refused_and_an_unanswered_write_each_with_what_to_do() -> None:
    refused = unstored_line("JetStream could not store the write: insufficient resources (code 10023) (GAMEAD_ADS)",
                            True, 2.0)
    assert "insufficient resources (code 10023) (GAMEAD_ADS)" in refused and "max_file_store" in refused
    assert "every submit is refused (503)" in refused and "stored again as soon as there is room" in refused
    unanswered = unstored_line("NATS did not answer in time (GAMEAD_ADS)", False, 2.0)
    assert unanswered.startswith("JetStream did not store a write in 2 s: NATS did not answer in time (GAMEAD_ADS)")
    assert "no space left on device" in unanswered and "then restart nats-server" in unanswered, unanswered
    kind = KIND_BY_CODE["store_unwritable"]
    assert kind.repair is None and kind.severity == "error" and kind.items == "object"
    report = {"ok": False, "complete": True, "findings": [{"kind": "store_unwritable", "severity": "error"}]}
    assert not holds(report), "exit 1, as the other write findings"


def test_stats_say_for_how_long_storage_has_been_failing_whichever_failed_first() -> None:
    clock = HandClock(1000.0)
    p = StorageProbe(None, "n", interval=5, timeout=1, clock=clock)  # type: ignore[arg-type]
    p._set("ok", None)
    assert p.status()["failingForSeconds"] is None
    p.observe_write(QueueUnavailable("NATS did not answer in time"))  # a submit's write, the probe still ok
    clock.now += 4
    p.observe_write(QueueUnavailable("NATS did not answer in time"))  # another: the failure began 4 s earlier
    clock.now += 3
    assert p.status()["state"] == "failing" and p.status()["failingForSeconds"] == 7.0
    p._set("failing", QueueUnavailable("NATS did not answer in time"))
    clock.now += 5
    assert p.status()["failingForSeconds"] == 12.0, "since the first failed write, the earlier"
    p.observe_write(None)  # a submit stored: only the probe fails now, since it began
    assert p.status()["failingForSeconds"] == 5.0


def stats(storage: dict[str, object] | None) -> dict[str, object]:
    return {"generatedAt": "2026-12-03T14:00:00.000Z", "nodes": {"api": 1, "workers": 1},
            "nats": {"connected": True, "server": "n", "version": "2.11", "storage": {"fileBytes": 5_662_310}},
            "storage": storage}


def test_top_shows_storage_failing_with_for_how_long_and_why_early_in_its_header() -> None:
    failing = {"state": "failing", "probe": "failing", "detail": "NATS did not answer in time", "forSeconds": 252.0,
               "failingForSeconds": 252.0, "lastFailedWrite": None}
    header = summary_text(stats(failing), "http://127.0.0.1:18900").plain
    assert "storage failing 4m12s: NATS did not answer in time" in header, header
    assert header.index("storage failing") < header.index("http://"), "before what a narrow terminal cuts"
    held = {"state": "failing", "probe": "ok", "detail": None, "forSeconds": 300.0, "failingForSeconds": 9.0,
            "lastFailedWrite": "a submit's write to the work stream failed 2 s ago: NATS did not answer in time"}
    assert str(storage_text(stats(held))).startswith("storage failing 9.0s: a submit's write to the work stream")
    older = {"state": "failing", "probe": "failing", "detail": "x", "forSeconds": 30.0}  # no failingForSeconds
    assert str(storage_text(stats(older))) == "storage failing 30s: x"
    degraded = {"state": "degraded", "probe": "ok", "writeCheckRefused": "GAMEAD_ADS: the stream is full"}
    assert str(storage_text(stats(degraded))) == "storage degraded: GAMEAD_ADS: the stream is full"
    ok = summary_text(stats({"state": "ok", "probe": "ok"}), "x").plain
    assert "storage" not in ok.replace("stored", ""), ok
    assert storage_text(stats(None)) is None


def test_up_says_an_api_unready_past_the_ttl_once_with_what_fails_and_once_when_ready_again() -> None:
    watch = ReadyWatch(10.0, "/data/jetstream", lambda: "restart nats-server (kill 42: gamead up starts it again)")
    unready = reading_of(503, {"status": "unready", "checks": {
        "nats": "ok", "topology": "ok", "storage": "failing: NATS did not answer in time (for 12 s)",
        "redis": "disabled", "registry": "degraded: writes refused for 3 s"}})
    assert unready == Reading(False, {"storage": "failing: NATS did not answer in time (for 12 s)"},
                              redis="disabled")  # never a reason to be unready, but carried (attack41a F4)
    assert watch.observe(unready, 100.0, "the API (pid 7)") is None
    assert watch.observe(Reading(None), 105.0) is None  # no answer: the liveness probe's, counted neither way
    assert watch.observe(unready, 110.0, "the API (pid 7)") is None  # not past the ttl yet
    note = watch.observe(unready, 110.5, "the API (pid 7)")
    assert note is not None and not note.good
    assert note.text.startswith("the API (pid 7) has answered /readyz 503 (unready) for 10.5s (registry.ttl 10s): "
                                "storage: failing: NATS did not answer in time (for 12 s). It refuses submits")
    assert "free space on the disk of nats-server's store (/data/jetstream), then restart nats-server (kill 42" \
        in note.text
    assert watch.observe(unready, 115.0, "the API (pid 7)") is None, "said once"
    back = watch.observe(reading_of(200, None), 121.0, "the API (pid 7)")
    assert back is not None and back.good and back.text == ("the API (pid 7) is ready again after 21.0s unready "
                                                            "(/readyz answered 200)")
    assert watch.observe(reading_of(200, None), 202.0, "the API (pid 7)") is None
    assert watch.observe(unready, 203.0, "the API (pid 7)") is None \
        and watch.observe(reading_of(200, None), 204.0, "the API (pid 7)") is None, \
        "a short spell is not said, nor its end"
    restarted = watch.observe(reading_of(200, None), 204.5, "the API (pid 8)")  # up restarted it (regress45)
    assert restarted is not None and restarted.good \
        and restarted.text == "the API (pid 8) is ready (/readyz answered 200)"
    assert watch.observe(reading_of(200, None), 205.0, "the API (pid 8)") is None, "said once"
    missing = reading_of(503, {"checks": {"topology": "failing: GAMEAD_ADS missing"}})
    assert watch.observe(missing, 205.0, "the API (pid 8)") is None
    assert watch.observe(missing, 210.0, "the API (pid 8)") is None
    line = watch.observe(missing, 216.0, "the API (pid 8)")
    assert line is not None and "topology: failing: GAMEAD_ADS missing" in line.text and "disk" not in line.text
    assert reading_of(502, "<html>") == Reading(None)
    # attack29c F6: the connection bound's 503 is the API refusing the probe's connection, not "unready"
    assert reading_of(503, {"error": {"code": "too_many_connections", "message": "…"}}) == Reading(None)


def test_an_api_unready_after_up_restarted_a_frozen_nats_server_is_not_blamed_on_the_disk() -> None:
    """regress39 F5: ``gamead up`` killed a frozen nats-server and restarted it (pid 24399); the API's 503 spell
    that followed was said with the disk advice ("free space on the disk …, then restart nats-server (kill 24399 …)"),
    whose command killed the server just restarted. Now the line names the restart (or, F7, the death whose restart
    is under way: the line came in that gap, naming the dead pid) and says it ends by itself; a spell long after a
    restart still gets the advice, and only for a storage check that says ``failing`` (F7: ``storage: unknown``
    while NATS is away got it too)."""
    told: list[tuple[float, str] | None] = [(95.0, "nats-server was restarted 15.5s ago (pid 24399)")]
    watch = ReadyWatch(10.0, "/data/jetstream", lambda: "restart nats-server (kill 24399: gamead up starts it again)",
                       lambda: told[0])
    unready = Reading(False, {"storage": "failing: NATS did not answer in time (for 10 s)"})
    assert all(watch.observe(unready, t, "the API (pid 7)") is None for t in (100.0, 105.0, 110.0))
    note = watch.observe(unready, 110.5, "the API (pid 7)")
    assert note is not None and "nats-server was restarted 15.5s ago (pid 24399): this follows from that" in note.text
    assert "disk" not in note.text and "kill 24399" not in note.text, note.text
    assert watch.observe(reading_of(200, None), 111.0, "the API (pid 7)") is not None
    told[0] = (300.0, "nats-server (pid 24399) has stopped and gamead up is restarting it")  # F7: in the gap
    away = Reading(False, {"nats": "unavailable: reconnecting (no answer for 13 s)", "storage": "unknown"})
    assert all(watch.observe(away, t, "the API (pid 7)") is None for t in (300.0, 305.0, 310.0))
    gap = watch.observe(away, 310.5, "the API (pid 7)")
    assert gap is not None and "has stopped and gamead up is restarting it: this follows" in gap.text, gap
    assert watch.observe(reading_of(200, None), 311.0, "the API (pid 7)") is not None
    told[0] = None
    assert all(watch.observe(away, t, "the API (pid 7)") is None for t in (400.0, 405.0, 410.0))
    unknown = watch.observe(away, 410.5, "the API (pid 7)")
    assert unknown is not None and "disk" not in unknown.text, unknown.text  # storage unknown: no verdict
    assert watch.observe(reading_of(200, None), 411.0, "the API (pid 7)") is not None
    told[0] = (95.0, "nats-server was restarted 15.5s ago (pid 24399)")
    assert all(watch.observe(unready, t, "the API (pid 7)") is None for t in (500.0, 505.0, 510.0))  # long after
    later = watch.observe(unready, 511.0, "the API (pid 7)")
    assert later is not None and "free space on the disk" in later.text


def test_a_restarted_or_long_silent_api_starts_a_new_unready_spell() -> None:
    """review29 F4: unready at t=0 (pid 100), no answer while it dies and restarts, the new API's first 503 at t=40
    (starting): said at once as "pid 200 … unready for 40.0s", with the storage advice. Now a spell is one process's
    answers without a silence past the ttl."""
    watch = ReadyWatch(10.0)
    unready = Reading(False, {"storage": "failing: NATS did not answer in time (for 3 s)"})
    assert watch.observe(unready, 0.0, "the API (pid 100)") is None
    assert all(watch.observe(Reading(None), t, "the API (pid 100)") is None for t in range(1, 40))
    assert watch.observe(Reading(False, {"queue": "starting"}), 40.0, "the API (pid 200)") is None
    assert watch.observe(unready, 41.0, "the API (pid 100)") is None  # the same pid after silence: a new spell
    assert watch.observe(unready, 46.0, "the API (pid 100)") is None
    assert watch.observe(unready, 52.0, "the API (pid 100)") is not None  # past the ttl of its own answers


def test_an_unready_line_is_followed_by_a_ready_one_even_across_a_restart() -> None:
    """review29b F7: a spell said "unready" then ended by a restart (another pid) or a silence past the ttl never got
    its "ready" line: the console's last word on the API stayed "unready"."""
    watch = ReadyWatch(10.0)
    unready = Reading(False, {"queue": "failing: x"})
    assert watch.observe(unready, 0.0, "the API (pid 1)") is None
    assert watch.observe(unready, 6.0, "the API (pid 1)") is None
    assert watch.observe(unready, 11.0, "the API (pid 1)") is not None  # said
    back = watch.observe(Reading(True), 40.0, "the API (pid 2)")  # restarted, and ready
    assert back is not None and back.good and back.text == "the API (pid 2) is ready (/readyz answered 200)"
    assert watch.observe(Reading(True), 41.0, "the API (pid 2)") is None  # said once
