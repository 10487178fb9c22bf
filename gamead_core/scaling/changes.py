"""How the replica count changed between two ticks of the autoscaler's leader (:class:`CountWatch`).

The count the last tick left is *expected*; a tick that reads another one names why in its reason: a scale call
*in doubt* (it went out without a sure answer and was not seen to land: :class:`InDoubt`) that landed late — its
step is counted then, from when it was sent — or a change made outside the autoscaler (``kubectl scale``, an HPA),
also said in one WARNING log line, at most one every :data:`OUTSIDE_WARN_EVERY` seconds: another controller
setting the count at every tick (an HPA or a GitOps sync on the same Deployment) made a WARNING per tick, 17,280 a
day at the default interval (attack39b F5); the next line says how many were left out, and that two controllers
fight. Every decision's reason still names its change. No I/O but those log lines.

A call in doubt stays so until a count read *after* its window (:data:`LATE_LANDING_SECONDS` past the call) does
not show it: only a count that was read says it did not land, so while reads fail it is kept, however long, and the
first count read after them that shows the asked replicas is the call landing late — never an outside change.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gamead_core.log_throttle import Throttle
from gamead_core.scaling.apply import Outcome
from gamead_core.scaling.policy import ScalingPolicy
from gamead_core.scaling.store import iso

log = logging.getLogger("gamead_core.scaling.loop")  # the autoscaler's own log lines

#: How long after it was sent a scale call in doubt may still land (seconds): the API server's default request
#: timeout. The call is forgotten at the first count read later than that which does not show it.
LATE_LANDING_SECONDS = 60.0
#: Seconds between two WARNING lines naming a change made outside the autoscaler (the reasons name each one).
OUTSIDE_WARN_EVERY = 300.0


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A scale call from ``current`` to ``asked`` replicas that went out at ``at`` (monotonic seconds; ``wall``:
    epoch seconds) and was not seen to land; ``by_policy``: the policy decided it (its step is counted if it
    lands), not an override."""

    current: int
    asked: int
    at: float
    wall: float
    by_policy: bool


class CountWatch:
    """The count the last tick left (``expected``; None: unknown) and the scale call in doubt (``in_doubt``)."""

    def __init__(self) -> None:
        self.expected: int | None = None
        self.in_doubt: InDoubt | None = None
        self._inherited = False  #: ``expected`` is the count a predecessor's last recorded decision left
        self._charged = False  #: and that predecessor still led when it was recorded (a change then is its step)
        self._started: int | None = None  #: the workers this process's backend started on its own (``--workers``)
        self._outside = Throttle(OUTSIDE_WARN_EVERY, max_kinds=1)  #: the WARNING lines of outside changes

    @classmethod
    def after(cls, decisions: Sequence[dict[str, Any]], policy: ScalingPolicy, wall: float,
              mono: float, backend: object = None) -> CountWatch:
        """A new leader's watch, and its fresh ``policy`` told the steps its predecessor took: ``decisions`` are the
        recorded ones (newest first, :class:`~gamead_core.scaling.shared.SharedState`), ``wall``/``mono`` now on
        both clocks (epoch and monotonic seconds). Each scale the policy decided and saw applied within the last
        ``period_seconds`` counts towards this leader's step limits (:meth:`ScalingPolicy.landed`), a late landing
        a line names too (``the scale call 1→2 of … landed late``), and the count the newest line left is expected:
        a count read otherwise at the first tick is named, and its step counted when the predecessor still led then
        (its newest line younger than 4 intervals: its unrecorded call; older, a change made while nobody led, as
        ``kubectl scale``, is not a step). A newest line in doubt (``applied`` null) is this watch's call in doubt:
        seen landed, it is named and counted as one (attack31c F1, review31 R9). A ``backend`` that started workers
        on its own (``LocalScaler.started``: ``gamead up --workers``) explains a first count equal to them: this
        stack's start, said as such, neither warned about nor counted as a step (attack32b F5)."""
        watch, period = cls(), policy.settings.period_seconds
        watch._started = getattr(backend, "started", None)
        for line in decisions:
            at, current, desired = _epoch(line.get("at")), line.get("current"), line.get("desired")
            if at is None or wall - at >= period:
                break  # newest first: the rest are older still
            if line.get("applied") is True and not line.get("override") and isinstance(current, int) \
                    and isinstance(desired, int) and desired != current:
                policy.landed(mono - (wall - at), desired - current)
            late = _LATE.match(str(line.get("changed") or ""))
            if late and (sent := _epoch(late[3])) is not None and wall - sent < period:
                policy.landed(mono - (wall - sent), int(late[2]) - int(late[1]))
        newest = decisions[0] if decisions else {}
        at, current, desired = _epoch(newest.get("at")), newest.get("current"), newest.get("desired")
        if newest.get("applied") is None and isinstance(current, int) and isinstance(desired, int) \
                and desired != current and at is not None:
            watch.in_doubt = InDoubt(current, desired, mono - (wall - at), at, not newest.get("override"))
        left = {True: desired, False: current, None: current}.get(newest.get("applied"))
        if isinstance(left, int):
            watch.expected, watch._inherited = left, True
            watch._charged = at is not None and wall - at < 4 * policy.settings.interval
        return watch

    def seen(self, current: int, mono: float, policy: ScalingPolicy | None) -> str:
        """``current`` replicas read at ``mono`` (monotonic seconds; called only for a count that was read) → what
        the reason names first about how the count changed since the last tick (empty: nothing, or nothing known).
        A call in doubt seen to have landed is told to ``policy`` (:meth:`ScalingPolicy.landed`) when the policy
        decided it; one not seen in a count read more than :data:`LATE_LANDING_SECONDS` after it is forgotten."""
        doubt = self.in_doubt
        if doubt is not None and current == doubt.asked and current != doubt.current:
            self.in_doubt = None
            if doubt.by_policy and policy is not None:
                policy.landed(doubt.at, doubt.asked - doubt.current)
            text = f"the scale call {doubt.current}→{doubt.asked} of {iso(doubt.wall)} landed late"
            log.info("autoscaler: %s", text)
            return text
        if doubt is not None and mono - doubt.at > LATE_LANDING_SECONDS:
            self.in_doubt = None  # read past the API server's own timeout, and not there: it will not land now
        inherited, self._inherited = self._inherited, False
        if inherited and self.expected is not None and current != self.expected and current == self._started:
            text = f"this stack started {current} workers (--workers; the last recorded decision left {self.expected})"
            log.info("autoscaler: %s", text)
            return text
        if inherited and self.expected is not None and current != self.expected:
            if policy is not None and self._charged:  # maybe a step the last leader took: counted, as a late call
                policy.landed(mono, current - self.expected)
            text = (f"replicas changed since the last recorded decision ({self.expected}→{current}: a call of the "
                    "previous leader that landed unrecorded, or a change made while none led)")
            log.warning("autoscaler: %s; deciding from %d", text, current,
                        extra={"replicas_before": self.expected, "replicas_now": current})
            return text
        if self.expected is not None and current != self.expected:
            text = f"replicas changed outside the autoscaler ({self.expected}→{current})"  # kubectl, an HPA…
            left_out = self._outside.allow("outside", mono)
            if left_out is not None:
                more = (f" ({left_out} more since the last such line: another controller, such as an HPA or a GitOps "
                        "sync, sets this Deployment's replicas too)") if left_out else ""
                log.warning("autoscaler: %s; deciding from %d%s", text, current, more,
                            extra={"replicas_before": self.expected, "replicas_now": current, "left_out": left_out})
            return text
        return ""

    def called(self, current: int, desired: int, outcome: Outcome, at: float, wall: float, by_policy: bool) -> None:
        """A tick at ``current`` replicas asked ``desired`` (at ``at`` monotonic, ``wall`` epoch seconds) and got
        ``outcome``: the count it leaves is expected next; a new call that may have done something supersedes the
        one in doubt (one surely not carried out — refused, 409 Conflict, never sent — leaves it as it was)."""
        if desired != current and (outcome.applied is not False or outcome.in_doubt):
            self.in_doubt = InDoubt(current, desired, at, wall, by_policy) if outcome.in_doubt else None
        self.expected = outcome.running


#: The ``changed`` of a line whose tick saw a call in doubt land (:meth:`CountWatch.seen`)
_LATE = re.compile(r"the scale call (\d+)→(\d+) of (\S+) landed late")


def _epoch(at: Any) -> float | None:
    """A recorded line's ``at`` (ISO 8601 UTC, ``…Z``) as epoch seconds; None when it is not one."""
    try:
        return datetime.fromisoformat(str(at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


__all__ = ["LATE_LANDING_SECONDS", "CountWatch", "InDoubt"]
