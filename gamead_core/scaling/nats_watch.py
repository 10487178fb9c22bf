"""The liveness watch of ``gamead up``'s embedded nats-server: a frozen one is named, killed and restarted.

Every other child depends on nats-server, and a stopped one (``kill -STOP``, a frozen cgroup) or a hung one keeps
its process and its ports: the supervisor, which restarts dead processes, counted it as running for ever, while
every verb answered "the API cannot reach NATS" and the console named only the autoscaler's symptoms (attack27
F4). The server has no registry heartbeat; its sign of life is its HTTP monitoring endpoint ``/healthz``
(served by ``gamead up``'s embedded server on a loopback port of its own, claimed as its other ports are:
:class:`gamead_core.embedded.EmbeddedNats` ``monitor_port``), asked every :data:`WATCH_EVERY` s
(:func:`gamead_core.scaling.answers.ask`, :data:`~gamead_core.scaling.answers.ANSWER_TIMEOUT` s). Any HTTP answer
counts as alive (a 503 says its JetStream is not healthy: a restart would not fix that); a refused connection or
no answer in time does not.

The bound is the one that replaces a frozen API or worker (:mod:`gamead_core.scaling.probe`): ``registry.ttl``
(10 s by default) without an answer, :data:`START_GRACE` more before its first answer after a (re)start. Past it the process is judged by the workers' rule (:func:`gamead_core.scaling.probe.judge`),
on its ``/proc`` readings since its last answer: stopped (state ``T``) or asleep without using CPU, it is frozen
or hung, named once with its PID and state, and SIGKILLed, so that the supervisor restarts it as after a crash
(JetStream recovers from its store dir); running or runnable (CPU advancing, state ``R``), it is busy or starved,
said once, and killed only past :data:`~gamead_core.scaling.probe.BUSY_FACTOR` × the bound (wedged). One that
answers again after it was named is said once too. :class:`NatsWatch` decides (pure, clocked by the caller);
:func:`run_nats_watch` asks, reads /proc and acts.

Only silence the watch saw counts (attack32a F10): when ``gamead up`` itself is not run for a while (a machine at
load 15, a suspended VM, its event loop held), its readings stop too, and the first one after such a gap found a
server silent for 81.5 s and killed it at once as "past the 30s a busy server gets", though no reading had shown it
silent for more than a second, and the console said nothing before. A gap between two readings longer than
:data:`LATE` s is not counted (but for :data:`LATE` s of it): it is said once (both figures: the silence since the
last answer and the time the watch did not run), and the bounds run on from there; every line gives the real silence
and, after a gap, how much of it was counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gamead_core.proc import CpuSample, cpu_sample
from gamead_core.scaling.answers import Answer, ask, each_interval, liveness_client
from gamead_core.scaling.gaps import LATE, counted_words, not_run_words, unseen
from gamead_core.scaling.probe import BUSY_FACTOR, Silent, Verdict, judge

#: Seconds between two questions to the server's ``/healthz``.
WATCH_EVERY = 1.0
#: Seconds a (re)started server gets, beyond the bound, for its first answer: the time ``gamead up`` gives its first
#: start to listen (``NATS_READY_TIMEOUT``); its monitoring listens before JetStream recovers its store.
START_GRACE = 10.0


@dataclass(frozen=True)
class Note:
    """A console line about the server: ``text``; ``good``: it answers again (else a warning)."""

    good: bool
    text: str


@dataclass
class _Life:
    pid: int
    since: float  #: monotonic: its last answer (its start before the first)
    base: tuple[float, CpuSample | None] | None = None  #: (monotonic, its reading) at ``since``
    answered: bool = False  #: it has answered since its start
    said: bool = False  #: its present silence was named on the console
    unseen: float = 0.0  #: seconds of its present silence the watch did not see (gaps past LATE)
    gap: float = 0.0  #: the longest of those gaps (s)


class NatsWatch:
    """Whether the server process (``name``, ``nats-server``) has not answered for ``ttl`` s (``registry.ttl``;
    ``start_grace`` more before its first answer) and is to be killed, from one reading at a time (:meth:`observe`).
    """

    def __init__(self, ttl: float, *, name: str = "nats-server", start_grace: float = START_GRACE,
                 begun: float | None = None) -> None:
        self.ttl = ttl
        self.name = name
        self.start_grace = start_grace
        #: monotonic: when the watch began (None: unknown). A server started before is watched from then: the
        #: time before is gamead up's start, which saw it listen, neither silence nor a gap of the watch (flakes52C:
        #: "did not run for 71.7s (gamead up was not scheduled …)" of the first reading after a 70 s start at load 40)
        self.begun = begun
        self._life: _Life | None = None
        self._last: float | None = None  #: monotonic: the previous reading (of any pid)

    def observe(self, pid: int, started_at: float, answer: Answer, reading: CpuSample | None,
                now: float) -> tuple[Note | None, bool]:
        """One reading of process ``pid`` (started at ``started_at``, monotonic s): what its ``/healthz`` did
        (``answer``; any HTTP answer counts: :attr:`Answer.said` ``… answered NNN``), its ``/proc`` ``reading``
        (None: unreadable) at monotonic ``now``. Returns the console line to say (None: nothing) and whether to kill
        it now. A new ``pid`` (a restart) starts afresh. A gap since the previous reading (or, at a process's first
        reading, since its start if that is later) longer than :data:`LATE` s is not counted as silence, but for
        :data:`LATE` s (module docstring). Pure."""
        last, self._last = self._last, now
        life = self._life
        if life is None or life.pid != pid:  # its first reading: the watch saw nothing since its start either
            started_at = started_at if self.begun is None else max(started_at, self.begun)
            life = self._life = _Life(pid, started_at)
            last = started_at if last is None or last < started_at else last
        gap, skipped = (0.0 if last is None else now - last), unseen(last, now)
        if life.base is None or life.base[1] is None:
            life.base = (now, reading)
        if answered(answer):
            note = None
            if life.said:
                note = Note(True, f"{self.name} (pid {pid}) answers /healthz again after {now - life.since:.1f}s "
                                  "without an answer: it was busy, not hung; left running")
            life.since, life.base, life.answered, life.said = now, (now, reading), True, False
            life.unseen = life.gap = 0.0
            return note, False
        bound = self.ttl + (0.0 if life.answered else self.start_grace)
        if skipped > 0:
            life.unseen += skipped
            life.gap = max(life.gap, gap)
            life.base = (now, reading)  # its CPU is judged on what the watch saw
            if now - life.since > bound and not life.said:
                life.said = True
                counted = now - life.since - life.unseen
                busy = BUSY_FACTOR * self.ttl + (0.0 if life.answered else self.start_grace)
                return Note(False, late_line(self.name, pid, now - life.since, gap, self.ttl,
                                             (bound - counted, busy - counted))), False
        silent = Silent(self.name, "", pid, now - life.since - life.unseen, life.answered)
        if silent.silent_for <= bound:
            return None, False
        at, before = life.base
        verdict = judge(silent, self.ttl, before, reading, now - at, start_grace=self.start_grace, answer=answer)
        if verdict.why == "unknown" and reading is None:
            return None, False  # gone: the supervisor sees a dead process and restarts it
        if not verdict.kill:
            if life.said:
                return None, False
            life.said = True
        return Note(False, frozen_line(silent, verdict, self.ttl, real=now - life.since, gap=life.gap)), verdict.kill


def answered(answer: Answer) -> bool:
    """Did the server answer at all (any HTTP status, not a refused connection or a timeout)? Pure."""
    return answer.live or " answered " in answer.said


def late_line(name: str, pid: int, silent_for: float, gap: float, ttl: float, left: tuple[float, float]) -> str:
    """The console line of a server found silent for ``silent_for`` s at the first reading after the watch itself
    did not run for ``gap`` s (``ttl``: ``registry.ttl``; ``left``: the seconds of silence more before it is killed
    if stopped or idle, and if it uses CPU). Pure."""
    idle, busy = (max(0.0, x) for x in left)
    return (f"{name} (pid {pid}) has not answered /healthz for {silent_for:.1f}s, {not_run_words(gap, LATE, ttl)}: "
            f"killed if its silence goes on about {idle:.1f}s more while it is stopped or idle, {busy:.1f}s more "
            "while it uses CPU")


def frozen_line(silent: Silent, verdict: Verdict, ttl: float, *, real: float | None = None, gap: float = 0.0) -> str:
    """The console line of a server that has not answered ``/healthz`` past the bound (``ttl``, s): killed (why:
    ``stopped``, ``idle``, ``wedged``) or left running (``busy``), with its PID, state and CPU. ``real``: the silence
    since its last answer (s) when the watch did not see all of it (``silent.silent_for`` is the part it saw; ``gap``:
    the longest time it did not run). Pure."""
    since = "" if silent.beat_before else "; none since its start"
    seen = "" if real is None else counted_words(real, silent.silent_for, gap)
    who = (f"{silent.name} (pid {silent.pid}) does not answer /healthz for "
           f"{silent.silent_for if real is None else real:.1f}s{seen} (registry.ttl {ttl:g}s{since})")
    cpu = verdict.cpu_words(otherwise=f"state {verdict.state}")
    last = f"; {verdict.answer}" if verdict.answer else ""
    restart = "killing it (SIGKILL) to restart it; JetStream recovers from its store"
    if verdict.why == "busy":
        return (f"{who}, but it is running ({cpu}{last}): busy or starved of CPU, not hung; waiting up to "
                f"{verdict.limit:g}s without an answer ({BUSY_FACTOR:g} × registry.ttl) before killing it")
    if verdict.why == "wedged":
        return (f"{who}, past the {verdict.limit:g}s a busy server gets ({BUSY_FACTOR:g} × registry.ttl), though it "
                f"kept using CPU ({cpu}{last}): wedged; {restart}")
    because = (f"it is stopped: state {verdict.state}" if verdict.why == "stopped" else
               f"it used no CPU in the last {verdict.over or 0:.1f}s, state {verdict.state}" if verdict.why == "idle"
               else "its process cannot be read")
    return f"{who} ({because}{last}): frozen or hung; {restart}"


async def run_nats_watch(watch: NatsWatch, target: Callable[[], tuple[int, float] | None], url: Callable[[], str],
                         say: Callable[[Note], None], kill: Callable[[int], None], stop: asyncio.Event, *,
                         every: float = WATCH_EVERY, check: Callable[[str], Awaitable[Answer]] | None = None,
                         sample: Callable[[int], CpuSample | None] = cpu_sample,
                         clock: Callable[[], float] = time.monotonic) -> None:
    """Every ``every`` s until ``stop``: ``target()`` (the running server's ``(pid, started_at)``; None while it is
    dead or restarting: skipped), ``check(url())`` (its ``/healthz``), ``sample(pid)`` and :meth:`NatsWatch.observe`;
    ``say(note)`` each line, ``kill(pid)`` one to kill (if it is still the target); ``check`` by default asks with
    one :func:`~gamead_core.scaling.answers.liveness_client` for the watch's life. Never raises (a failing step is
    logged)."""
    client = liveness_client() if check is None else None
    try:
        await _watch(watch, target, url, say, kill, stop, every,
                     check or (lambda u: ask(client, u)), sample, clock)  # type: ignore[arg-type]
    finally:
        if client is not None:
            await client.aclose()


async def _watch(watch: NatsWatch, target: Callable[[], tuple[int, float] | None], url: Callable[[], str],
                 say: Callable[[Note], None], kill: Callable[[int], None], stop: asyncio.Event, every: float,
                 check: Callable[[str], Awaitable[Answer]], sample: Callable[[int], CpuSample | None],
                 clock: Callable[[], float]) -> None:
    async def step() -> None:
        current = target()
        if current is not None:
            answer = await check(url())
            now, reading = clock(), sample(current[0])
            if target() == current and not stop.is_set():  # not restarted meanwhile; a stop begun: nothing said,
                # nothing killed (the stop's own time is no stall of the watch's: fix35d)
                note, kill_it = watch.observe(current[0], current[1], answer, reading, now)
                if note is not None:
                    say(note)
                if kill_it:
                    kill(current[0])

    await each_interval(step, stop, every, "nats-server liveness watch")


__all__ = ["LATE", "START_GRACE", "WATCH_EVERY", "NatsWatch", "Note", "answered", "frozen_line", "late_line",
           "run_nats_watch"]
