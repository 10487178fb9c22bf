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
    last = TTL + START_GRACE + 100.0  # restarted at 100: no answer yet
    assert watch.observe(8, 100.0, NONE, CpuSample("T", 0.0), last) == (None, False)
    note, kill = watch.observe(8, 100.0, NONE, CpuSample("T", 0.0), last + 1)
    assert kill and note is not None
    assert "nats-server (pid 8) does not answer /healthz for 21.0s (registry.ttl 10s; none since its start)" in note.text
