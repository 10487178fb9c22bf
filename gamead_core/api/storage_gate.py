"""Submits refused at once while this API node knows its store is failing (outage38): 503 ``storage_failing``.

Why: while JetStream stores nothing (nats-server stalled, stopped, its disk or limit full) each submit used to wait
its publish timeout (``api.publish_timeout``, ~2 s) before its 503: under a client at 500 ads/s that is ~1,000
requests open at once and every refusal 2 s late, each leaving an ad "may be queued" to settle.

What is known failing is the storage probe's word (:meth:`gamead_core.queue.storage.StorageProbe.refusing`): a
submit's write that went unanswered with nothing stored since, or the probe's own write failing with no submit
stored since it began failing. Meanwhile each submit is refused before anything is sent (certain: nothing stored,
no ``adId``; ``Retry-After``), except a **trial**: one submit at a time tries, at most one every :data:`TRIAL_EVERY`
seconds, so a store that works again is seen within about that plus the trial's own answer (a trial stored clears
the refusal for every later submit: :meth:`StorageProbe.observe_write`). A batch let through as a trial sends only
its first ad; its other ads are refused the same way, each in its place. When the store is not known failing
nothing is refused: the gate costs a few attribute reads per submit.

What a refusal costs the client (left39a): no rate-limit token (the middleware leaves a ``POST /ads``'s token to the
route while the store is known failing, :func:`gamead_core.api.records_gate.token_deferred`, and it is taken only
once the gate lets the submit through; a batch refused whole takes none: :meth:`StorageGate.would_refuse`); and a
keyed repeat (an ``Idempotency-Key`` whose ad is already queued) is still answered, ``duplicate: true``, from its
record (a read, no write), within :data:`REPEAT_READ` seconds: a record that cannot be read by then (NATS frozen)
is refused as a new ad is. Every ad refused counts in ``gamead_ads_refused_total{reason="storage_failing"}``.

The decision (:func:`admit`) is pure; :class:`StorageGate` keeps the one trial's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter

from gamead_core.errors import QueueUnavailable
from gamead_core.redact import without_servers
from gamead_core.telemetry.metrics import API_REGISTRY, recording

#: least seconds between the starts of two trials (one submit let through to try the store while it is failing)
TRIAL_EVERY = 0.2

#: most seconds a keyed submit refused by the gate waits for its key's record (a repeat is answered from it)
REPEAT_READ = 1.0

GO, TRIAL, REFUSE = "go", "trial", "refuse"

REFUSED = Counter(
    "gamead_ads_refused", "Ads this API node refused at once, before anything was sent (certain: not stored), by "
    "reason: storage_failing (its store known failing: gamead_core.api.storage_gate).",
    ["reason"], registry=API_REGISTRY,
)


class StorageFailing(QueueUnavailable):
    """503 ``storage_failing``: a submit refused at once, before anything was sent, while this node knows its store
    is failing (:class:`StorageGate`). Certain: NATS took nothing (no ``details.adId``); retry after
    ``Retry-After``. The message carries the storage probe's word, which names no server (as ``/readyz``)."""

    code = "storage_failing"
    client_message = None  # its own message: the probe's word with any server in it said "a server"


def admit(failing: bool, trial_out: bool, since_trial: float) -> str:
    """Pure: what to do with one submit: :data:`GO` (the store is not known failing), :data:`TRIAL` (failing, no
    trial out and the last one started ``since_trial`` ≥ :data:`TRIAL_EVERY` seconds ago) or :data:`REFUSE`."""
    if not failing:
        return GO
    return TRIAL if not trial_out and since_trial >= TRIAL_EVERY else REFUSE


class StorageGate:
    """One API node's gate. ``refusing()`` says why the store is known failing (None: it is not); ``clock`` is
    monotonic seconds (injectable for tests)."""

    def __init__(self, refusing: Callable[[], str | None], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._refusing = refusing
        self._clock = clock
        self._trial_out = False
        self._trial_at = float("-inf")
        self.refused = 0  #: submits refused at once so far (ads of batches counted one each)

    def failing(self) -> bool:
        """True while the store is known failing (submits are refused but for a trial)."""
        return self._refusing() is not None

    def would_refuse(self) -> bool:
        """True if a submit entering now would be refused (:func:`admit`'s :data:`REFUSE`); changes nothing."""
        why = self._refusing()
        return admit(why is not None, self._trial_out, self._clock() - self._trial_at) == REFUSE

    def enter(self, ads: int = 1, *, count: bool = True) -> bool:
        """Before one submit (of ``ads`` ads: a batch's): False to go as usual, True when it goes as the trial (then
        :meth:`leave` once it is answered). Raises :class:`StorageFailing` (503 ``storage_failing``) when it is
        refused, counted (:meth:`count`) unless ``count`` is False (a keyed submit whose repeat may still be
        answered: its caller counts it if it is refused after all)."""
        why = self._refusing()
        verdict = admit(why is not None, self._trial_out, self._clock() - self._trial_at)
        if verdict == GO:
            return False
        if verdict == TRIAL:
            self._trial_out, self._trial_at = True, self._clock()
            return True
        if count:
            self.count(ads)
        raise refusal(why or "")

    def count(self, ads: int) -> None:
        """``ads`` ads refused: :attr:`refused` and ``gamead_ads_refused_total{reason="storage_failing"}``."""
        self.refused += ads
        if recording():
            REFUSED.labels(StorageFailing.code).inc(ads)

    def refuse(self, ads: int) -> list[StorageFailing]:
        """The refusals of the ``ads`` ads of a trial batch that are not tried (its first one is), one each."""
        if ads <= 0:
            return []
        self.count(ads)
        return [refusal(self._refusing() or "no write stored yet")] * ads

    def leave(self) -> None:
        """The trial was answered (stored or not): the next one may start."""
        self._trial_out = False


def batch_tokens(gate: StorageGate | None, keyed: bool, ads: int) -> int:
    """The rate-limit tokens a batch of ``ads`` takes before it is sent: one an ad, but while the store is known
    failing a batch without keyed ads is refused whole before any is taken (raises its 503 ``storage_failing``,
    its ads counted), or takes one as the trial (its first ad alone is sent); one with keyed ads (``keyed``) takes
    none before (0: its repeats are answered, its new ads refused) and pays after for each ad not refused."""
    if gate is None or not gate.failing():
        return ads
    if keyed:
        return 0
    if gate.would_refuse():
        raise gate.refuse(ads)[0]
    return 1


def refusal(why: str) -> StorageFailing:
    """The 503 ``storage_failing`` of a submit refused by the gate; ``why``: the probe's word (any server in it said
    ``a server``, as ``/readyz`` says it)."""
    return StorageFailing(f"this API node's store is failing: new ads are refused at once, nothing was stored "
                          f"({without_servers(why)}); retry after the time in Retry-After")
