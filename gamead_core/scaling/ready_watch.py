"""The readiness watch of ``gamead up``'s API: an API unready for longer than ``registry.ttl`` is said once on the
console, naming what fails, and once when it is ready again (attack29b F1).

The liveness probe (:mod:`gamead_core.scaling.probe`) and the nats-server's watch
(:mod:`gamead_core.scaling.nats_watch`) ask whether a child is *alive*. An API that is alive can still refuse
every submit for minutes: on a full disk JetStream stops answering writes while nats-server's ``/healthz`` and the
API's own ``/healthz`` keep answering, and ``/readyz`` says ``storage: failing: NATS did not answer in time (for
252 s)``; the console said nothing for 7 minutes. So the API's ``/readyz`` (served from memory) is asked every
:data:`WATCH_EVERY` s. Unready answers (503) for more than ``ttl`` s in a row are said once, with every check that
fails (:func:`unready_line`; for storage, what to do); the first ready answer after that is said once
(:func:`ready_line`). No answer at all (a refused connection, a timeout) counts neither way: a silent API is the
liveness probe's to judge. :class:`ReadyWatch` decides (pure, clocked by the caller); :func:`run_ready_watch` asks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from gamead_core.scaling.answers import ANSWER_TIMEOUT, each_interval, liveness_client
from gamead_core.scaling.nats_watch import Note
from gamead_core.scaling.store_cause import BOTH

#: Seconds between two questions to the API's ``/readyz``.
WATCH_EVERY = 1.0


@dataclass(frozen=True)
class Reading:
    """One answer of ``/readyz``: ``ready`` (200; None: no answer, not counted), ``failing`` (each check that
    fails → its text, in the API's order) and ``differs`` (its ``differs`` lines: the limits the fleet shares whose
    live value is not this node's; None: not said)."""

    ready: bool | None
    failing: Mapping[str, str] = field(default_factory=dict)
    differs: tuple[str, ...] | None = None
    #: its ``checks.redis`` (``ok``, ``disabled``, ``degraded: …``; None: not said), which never makes it unready
    redis: str | None = None
    #: its ``checks.tracing`` (the same words; spans its exporter could not send), which never makes it unready
    tracing: str | None = None


class ReadyWatch:
    """Whether the API has been unready for more than ``ttl`` s (``registry.ttl``), from one reading at a time
    (:meth:`observe`). ``store_dir``: where the embedded nats-server keeps its store (None: NATS is not ours);
    ``restart()``: how to restart nats-server, for the storage advice; ``cause()``: the advice by the cause
    nats-server's log names, when it names another than a full disk (:mod:`gamead_core.scaling.store_cause`), or
    None (the disk's)."""

    def __init__(self, ttl: float, store_dir: str | None = None,
                 restart: Callable[[], str] = lambda: "restart nats-server",
                 nats_restart: Callable[[], tuple[float, str] | None] = lambda: None,
                 cause: Callable[[], str | None] = lambda: None) -> None:
        self.ttl = ttl
        self.store_dir = store_dir
        self.restart = restart
        self.cause = cause
        #: (monotonic s, words) of the embedded nats-server's last death or restart seen by ``gamead up`` (``nats-server
        #: (pid N) is being restarted``), or None (none, or not ours)
        self.nats_restart = nats_restart
        self._since: float | None = None  #: monotonic: the first unready reading of the present spell
        self._said = False  #: the present spell was said on the console
        self._who: str | None = None  #: the API process the spell is of
        self._last: float | None = None  #: monotonic: the spell's last unready reading
        self._owed = False  #: a spell said unready ended without a ready answer (a restart, a silence): say the next

    def observe(self, reading: Reading, now: float, who: str = "the API") -> Note | None:
        """One reading at monotonic ``now``; ``who`` names the API in the line (``the API (pid 123)``). Returns the
        console line to say, or None. Pure but for ``restart()``. A spell is one process's unready answers with no
        gap of silence longer than ``ttl`` between them: a restarted API (another ``who``), or one silent past
        ``ttl`` (dead, frozen: the liveness probe's), starts a new spell (review29 F4: a restarted API's first 503
        was said at once as "unready for 40 s", the dead one's spell and silence counted in)."""
        if reading.ready is None:
            return None
        if self._who is not None and who != self._who:  # up restarted it (a death): its first ready answer is said
            self._owed = True  # (regress45: a killed API got "restarted (pid M)", then nothing, never a ✓)
        if self._since is not None and (who != self._who or now - (self._last or now) > self.ttl):
            self._owed = self._owed or self._said  # its "ready again" is still owed (review29b F7)
            self._since, self._said = None, False  # a new spell
        self._who, self._last = who, now
        if reading.ready:
            note = Note(True, ready_line(who, now - self._since)) if self._said and self._since is not None else (
                Note(True, f"{who} is ready (/readyz answered 200)") if self._owed else None)
            self._since, self._said, self._owed = None, False, False
            return note
        if self._since is None:
            self._since = now
        if self._said or now - self._since <= self.ttl:
            return None
        self._said = True
        after = None  # a death or restart of nats-server just before or during this spell explains it (regress39 F5)
        if (restarted := self.nats_restart()) is not None and restarted[0] >= self._since - self.ttl:
            after = restarted[1]
        failing = storage_failing(reading.failing)
        return Note(False, unready_line(who, now - self._since, self.ttl, reading.failing, self.store_dir,
                                        self.restart() if failing else "", after, self.cause() if failing else None))


def unready_line(who: str, seconds: float, ttl: float, failing: Mapping[str, str], store_dir: str | None = None,
                 restart: str = "restart nats-server", after: str | None = None, cause: str | None = None) -> str:
    """The console line of an API unready for ``seconds`` (past ``ttl``, ``registry.ttl``): each failing check
    and its text; for ``storage``, what to do (README "JetStream's storage is full"): ``cause``, the advice for the
    cause nats-server's log names when it is not a full disk (its file-size limit, attack43a F1); else, with
    ``store_dir`` (nats-server is ours), the full disk's; else (its log is not ours to read) both causes'
    (:data:`~gamead_core.scaling.store_cause.BOTH`). ``after``: a restart of
    nats-server by ``gamead up`` that this follows (``nats-server was restarted 1.2s ago (pid N)``): then the line
    says so and that it ends by itself, not the disk advice (regress39 F5: after ``up`` killed a frozen server, the
    console blamed the disk and told to kill the server it had just restarted). Pure."""
    checks = "; ".join(f"{name}: {text}" for name, text in failing.items()) or "no check named"
    line = (f"{who} has answered /readyz 503 (unready) for {seconds:.1f}s (registry.ttl {ttl:g}s): {checks}. "
            "It refuses submits (503) meanwhile")
    if after is not None:
        return (f"{line}; {after}: this follows from that, and ends once the API has reconnected and JetStream has "
                "recovered its store (said when it is ready again)")
    if not storage_failing(failing):
        return line
    if cause is not None:
        return f"{line}; JetStream does not store writes: {cause}; gamead doctor says more"
    if store_dir is None:
        return (f"{line}; JetStream does not store writes: {BOTH}; a store at max_file_store recovers once room is "
                "freed; gamead doctor says more")
    return (f"{line}; JetStream does not store writes: free space on the disk of nats-server's store ({store_dir}), "
            f"then {restart} (a full disk leaves a stream refusing writes until nats-server restarts; a store at "
            "max_file_store recovers once room is freed); gamead doctor says more")


def storage_failing(failing: Mapping[str, str]) -> bool:
    """The storage check says ``failing``: the disk advice's only case (``storage: unknown`` while NATS is away is
    no verdict on the store: regress39 F7). Pure."""
    return str(failing.get("storage", "")).startswith("failing")


def ready_line(who: str, seconds: float) -> str:
    """The console line of an API ready again after ``seconds`` unready. Pure."""
    return f"{who} is ready again after {seconds:.1f}s unready (/readyz answered 200)"


def differs_of(body: object) -> tuple[str, ...] | None:
    """The ``differs`` lines of a ``/readyz`` body; None when it has none (its node has not checked its topology
    yet, or an older gamead): unknown, not "none". Pure."""
    found = body.get("differs") if isinstance(body, Mapping) else None
    return tuple(str(line) for line in found) if isinstance(found, list) else None


def reading_of(status: int, body: object) -> Reading:
    """The :class:`Reading` of a ``/readyz`` answer: 200 is ready, 503 unready with the failing checks of its
    ``error.details`` (every check, ``ok``/``degraded`` ones left out) or ``checks``; any other status is no
    reading, and so is a 503 the connection bound answered (``too_many_connections``: the API refused the probe's
    connection, it did not say it is unready; attack29c F6: "unready … no check named"). Its ``differs`` too
    (:func:`differs_of`), and its ``checks.redis`` and ``checks.tracing``. Pure."""
    checks = body.get("checks") if isinstance(body, Mapping) else None
    soft = {name: text for name in ("redis", "tracing")
            if isinstance(checks, Mapping) and isinstance(text := checks.get(name), str)}
    if status == 200:
        return Reading(True, differs=differs_of(body), **soft)
    error = body.get("error") if isinstance(body, Mapping) else None
    if status != 503 or (isinstance(error, Mapping) and error.get("code") == "too_many_connections"):
        return Reading(None)
    failing = {str(k): str(v) for k, v in (checks or {}).items()
               if isinstance(v, str) and v != "ok" and not v.startswith("degraded") and v != "disabled"
               and k not in ("redis", "registry", "tracing")}  # as /readyz: soft checks never make it unready
    return Reading(False, failing, differs_of(body), **soft)


async def ask_ready(client: httpx.AsyncClient, url: str, timeout: float = ANSWER_TIMEOUT) -> Reading:
    """GET ``url`` (the API's ``/readyz``) within ``timeout`` s: its :class:`Reading`. Never raises (but
    :class:`asyncio.CancelledError`)."""
    try:
        async with asyncio.timeout(timeout):
            answer = await client.get(url)
            body = answer.json() if answer.status_code == 503 else None
    except Exception:  # noqa: BLE001 - no answer, or not JSON: not counted (the liveness probe judges)
        return Reading(None)
    if answer.status_code == 200:  # its differs (a body that is not JSON: ready all the same)
        try:
            body = answer.json()
        except ValueError:
            body = None
    return reading_of(answer.status_code, body)


async def run_ready_watch(watch: ReadyWatch, url: str, who: Callable[[], str | None], say: Callable[[Note], None],
                          stop: asyncio.Event, *, every: float = WATCH_EVERY,
                          check: Callable[[str], Awaitable[Reading]] | None = None,
                          clock: Callable[[], float] = time.monotonic,
                          also: Callable[[Reading], Note | None] | None = None) -> None:
    """Every ``every`` s until ``stop``: ``who()`` (``the API (pid N)``; None while it is not running: skipped),
    ``check(url)`` (by default :func:`ask_ready` with one :func:`liveness_client` for the watch's life) and
    :meth:`ReadyWatch.observe`; ``say(note)`` each line, and each note ``also(reading)`` makes (``gamead up``'s
    settings not in force: :class:`gamead_cli.commands.up_drift.DriftNote`). Never raises (a failing step is
    logged)."""
    client = liveness_client() if check is None else None
    asking = check or (lambda u: ask_ready(client, u))  # type: ignore[arg-type]

    async def step() -> None:
        if (name := who()) is not None:
            reading = await asking(url)
            if not stop.is_set() and (note := watch.observe(reading, clock(), name)) is not None:
                say(note)
            if not stop.is_set() and also is not None and (extra := also(reading)) is not None:
                say(extra)

    try:
        await each_interval(step, stop, every, "API readiness watch")
    finally:
        if client is not None:
            await client.aclose()


__all__ = ["WATCH_EVERY", "ReadyWatch", "Reading", "ask_ready", "differs_of", "reading_of", "ready_line",
           "run_ready_watch", "storage_failing", "unready_line"]
