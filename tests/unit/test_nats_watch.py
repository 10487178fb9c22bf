"""The embedded nats-server's liveness watch decides (gamead_core.scaling.nats_watch, attack27 F4): what the console
says of a server that does not answer its /healthz, and when it is killed."""

from __future__ import annotations

from collections.abc import Iterator

from gamead_core.proc import CpuSample
from gamead_core.scaling.answers import Answer
from gamead_core.scaling.nats_watch import START_GRACE, NatsWatch, Note

OK = Answer(True, "/healthz answered 200")
NONE = Answer(False, "/healthz: no answer in 2s (ReadTimeout)")
TTL = 10.0


def _answered_then(watch: NatsWatch, state: str, cpu: list[float], *,
                   step: float = 1.0) -> Iterator[tuple[float, Note | None, bool]]:
    """The server (pid 7) answers at t=0 (0 s of CPU), then no more: one reading per ``step`` s with CPU ``cpu[i]``
    in ``state``. Yields (t, note, kill) for each reading after the last answer."""
    assert watch.observe(7, -5.0, OK, CpuSample("S", 0.0), 0.0) == (None, False)
    for i, used in enumerate(cpu, start=1):
        yield (i * step, *watch.observe(7, -5.0, NONE, CpuSample(state, used), i * step))


def test_a_stopped_server_is_named_once_with_its_pid_and_state_and_killed_just_past_the_bound() -> None:
    said = [(t, note, kill) for t, note, kill in _answered_then(NatsWatch(TTL), "T", [0.0] * 11) if note or kill]
    assert len(said) == 1
    t, note, kill = said[0]
    assert t == 11.0 and kill
    assert note is not None and not note.good
    assert note.text.startswith("nats-server (pid 7) does not answer /healthz for 11.0s (registry.ttl 10s) "
                                "(it is stopped: state T; /healthz: no answer in 2s (ReadTimeout)): frozen or hung; "
                                "killing it (SIGKILL) to restart it")


def test_a_server_asleep_without_using_cpu_is_killed_as_hung() -> None:
    said = [(note, kill) for _, note, kill in _answered_then(NatsWatch(TTL), "S", [0.0] * 11) if note]
    assert said[0][1] and "(it used no CPU in the last 11.0s, state S" in said[0][0].text


def test_a_busy_server_is_said_once_left_running_within_three_bounds_and_said_again_when_it_answers() -> None:
    watch = NatsWatch(TTL)
    readings = list(_answered_then(watch, "R", [0.5 * i for i in range(1, 30)]))  # 29 s, CPU advancing
    notes = [note for _, note, _ in readings if note is not None]
    assert not any(kill for _, _, kill in readings)  # slow, not hung: never killed for slowness within 3 × ttl
    assert len(notes) == 1 and not notes[0].good
    assert "but it is running (" in notes[0].text and "state R" in notes[0].text
    assert "busy or starved of CPU, not hung; waiting up to 30s without an answer (3 × registry.ttl)" in notes[0].text
    note, kill = watch.observe(7, -5.0, OK, CpuSample("S", 20.0), 29.5)
    assert not kill and note is not None and note.good
    assert note.text == ("nats-server (pid 7) answers /healthz again after 29.5s without an answer: it was busy, "
                         "not hung; left running")
    assert watch.observe(7, -5.0, OK, CpuSample("S", 20.0), 30.5) == (None, False)  # said once


def test_a_busy_server_silent_past_three_bounds_is_killed_as_wedged() -> None:
    readings = list(_answered_then(NatsWatch(TTL), "R", [0.5 * i for i in range(1, 32)]))
    killed = [(t, note) for t, note, kill in readings if kill]
    assert killed and killed[0][0] == 31.0
    assert "past the 30s a busy server gets (3 × registry.ttl), though it kept using CPU" in killed[0][1].text


def test_any_http_answer_counts_and_a_quiet_spell_within_the_bound_says_nothing() -> None:
    watch = NatsWatch(TTL)
    assert watch.observe(7, 0.0, OK, CpuSample("S", 0.0), 1.0) == (None, False)
    unhealthy = Answer(False, "/healthz answered 503")  # its JetStream unhealthy: the process answers; no restart
    assert all(watch.observe(7, 0.0, unhealthy, CpuSample("T", 0.0), t) == (None, False) for t in range(2, 40))
    assert all(watch.observe(7, 0.0, NONE, CpuSample("T", 0.0), t) == (None, False) for t in range(40, 49))


def test_a_restarted_server_gets_its_start_grace_and_is_judged_on_its_own_pid() -> None:
    watch = NatsWatch(TTL)
    assert watch.observe(7, 0.0, OK, CpuSample("S", 0.0), 1.0) == (None, False)
    last = TTL + START_GRACE + 100.0  # restarted at 100: no answer yet, read every second
    for t in range(101, int(last) + 1):
        assert watch.observe(8, 100.0, NONE, CpuSample("T", 0.0), float(t)) == (None, False)
    note, kill = watch.observe(8, 100.0, NONE, CpuSample("T", 0.0), last + 1)
    assert kill and note is not None
    assert "nats-server (pid 8) does not answer /healthz for 21.0s (registry.ttl 10s; none since its start)" in note.text


def _silent_across_a_gap(watch: NatsWatch, state: str, gap_end: float, until: float) -> list[tuple[float, Note | None,
                                                                                                    bool]]:
    """The server (pid 7) answers at t=0 and t=1, then no more; the watch reads it every second until t=2, then does
    not run until ``gap_end`` (attack32a F10: gamead up not scheduled), then reads it every second until ``until``,
    its CPU advancing 0.1 s a second in ``state``. Returns (t, note, kill) of each reading after t=1."""
    watch.observe(7, -5.0, OK, CpuSample("S", 0.0), 0.0)
    watch.observe(7, -5.0, OK, CpuSample("S", 0.1), 1.0)
    times = [2.0] + [gap_end + i for i in range(int(until - gap_end) + 1)]
    return [(t, *watch.observe(7, -5.0, NONE, CpuSample(state, 0.1 * t), t)) for t in times]


def test_silence_the_watch_did_not_see_is_said_with_its_true_figures_and_never_kills_at_once() -> None:
    """attack32a F10: gamead up's watch did not run for ~80 s (load 15); its first reading after that found the
    server silent for 81.5 s and killed it at once as "past the 30s a busy server gets", the console silent before.
    Now that reading says the real silence and the watch's own gap, and the 30 s a busy server gets run from there."""
    readings = _silent_across_a_gap(NatsWatch(TTL), "S", 81.5, 120.0)
    first = readings[1]
    assert first[0] == 81.5 and not first[2]  # not killed on silence no reading saw
    assert first[1] is not None and not first[1].good
    assert first[1].text.startswith("nats-server (pid 7) has not answered /healthz for 80.5s, but this watch itself "
                                    "did not run for 79.5s (gamead up was not scheduled")
    assert first[1].text.endswith("so all but 5s of that is not counted (registry.ttl 10s): killed if its silence "
                                  "goes on about 4.0s more while it is stopped or idle, 24.0s more while it uses CPU")
    killed = [(t, note) for t, note, kill in readings if kill]
    assert killed, "a server silent past 3 × registry.ttl of watched silence is still killed"
    t, note = killed[0]
    assert t == 106.5  # 80.5 - (79.5 - LATE) = 6 s watched at 81.5, 31 s at 106.5
    assert note is not None and note.text.startswith(
        "nats-server (pid 7) does not answer /healthz for 105.5s, 31.0s of it counted (this watch itself did not "
        "run for 79.5s, of which 5s count: gamead up was not scheduled) (registry.ttl 10s), past the 30s a busy server "
        "gets")
    assert [n for at, n, _ in readings if n is not None and at <= t] == [first[1], note]  # nothing in between


def test_a_stopped_server_after_a_gap_of_the_watch_is_killed_one_bound_of_counted_silence_later() -> None:
    readings = _silent_across_a_gap(NatsWatch(TTL), "T", 81.5, 100.0)
    killed = [t for t, _, kill in readings if kill]
    assert killed and killed[0] == 86.5  # 6 s counted at 81.5, 11 s at 86.5: past registry.ttl


def test_a_server_first_read_long_after_its_start_is_not_killed_on_silence_no_reading_saw() -> None:
    """The watch's first reading of a server came 60 s after its start (gamead up not run meanwhile): said, not
    killed at once; killed one bound of counted silence later."""
    watch = NatsWatch(TTL)
    note, kill = watch.observe(7, 0.0, NONE, CpuSample("T", 0.0), 60.0)
    assert not kill and note is not None and "but this watch itself did not run for 60.0s" in note.text
    later = [(t, *watch.observe(7, 0.0, NONE, CpuSample("T", 0.0), float(t))) for t in range(61, 80)]
    assert [t for t, _, kill in later if kill][0] == 76  # 5 s counted at 60, 21 s at 76: past ttl + START_GRACE


def test_a_server_started_before_the_watch_began_is_watched_from_then_not_said_unseen() -> None:
    """flakes52C: the watch begins once ``gamead up``'s start is over (70 s after nats-server's start at load 40),
    and its first reading, unanswered, said "has not answered /healthz for 71.7s, but this watch itself did not run
    for 71.7s (gamead up was not scheduled …)": the start had seen it listen. Watched from the watch's start
    (``begun``): nothing said then; named past ttl + START_GRACE of silence the watch saw."""
    watch = NatsWatch(TTL, begun=70.0)
    assert watch.observe(7, 0.0, NONE, CpuSample("T", 0.0), 71.7) == (None, False)
    later = [(t, *watch.observe(7, 0.0, NONE, CpuSample("T", 0.0), 70.0 + t)) for t in range(2, 25)]
    t, note, kill = next(reading for reading in later if reading[1] is not None)  # the first line said: the kill
    assert kill and t == TTL + START_GRACE + 1 and note is not None and "did not run" not in note.text
    assert note.text.startswith(f"nats-server (pid 7) does not answer /healthz for {t:.1f}s"), note.text
