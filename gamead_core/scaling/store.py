"""The autoscaler's shared state in JetStream KV, so every API node can show it and set an override.

Two buckets (names in :mod:`gamead_core.names`), both without a bucket TTL, one value per key::

    gamead_leases    autoscaler  → the leader lease (see gamead_core.scaling.lease)
    gamead_scaling   state       → written by the leader every interval: backend, current, desired,
                                   the last observation and the last decisions (newest first)
                     override    → a manual replica count and when it expires: {replicas, until, setAt, setBy}

Only the leader writes ``state``; any node writes ``override`` (an operator's ``gamead scale set``). The
pure helpers :func:`active_override`, :func:`clamp_override` and :func:`record_decision` hold the rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats.js.errors
import orjson
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType

from gamead_core import names
from gamead_core.count_words import counted
from gamead_core.errors import Conflict, TopologyError
from gamead_core.models import utc_iso
from gamead_core.scaling.bounds import MAX_OVERRIDE_REPLICAS, MAX_OVERRIDE_SECONDS
from gamead_core.queue.connection import nats_boundary
from gamead_core.scaling.lease import AUTOSCALER_LEASE, Lease
from gamead_core.scaling.reason import action_words, every_quiet, reason_kind
from gamead_core.scaling.unusable import said_unusable, usable_time
from gamead_core.store.cas import retry_busy
from gamead_core.times import clock_utc

STATE_KEY = "state"
OVERRIDE_KEY = "override"
#: Decisions kept in ``state`` (consecutive identical ones are folded into one entry with a count).
KEEP_DECISIONS = 20


def iso(epoch: float | None) -> str | None:
    """Epoch seconds → ``2024-05-01T12:00:00.123Z`` (None stays None)."""
    return None if epoch is None else utc_iso(epoch, "milliseconds")


# --- the manual override ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    """A replica count set by an operator, in force until ``until`` (epoch seconds)."""

    replicas: int
    until: float
    set_at: float
    set_by: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({"replicas": self.replicas, "until": self.until, "setAt": self.set_at,
                             "setBy": self.set_by})

    @classmethod
    def from_json(cls, data: bytes | None) -> Override | None:
        if not data:
            return None
        try:
            raw = orjson.loads(data)
            ov = cls(int(raw["replicas"]), float(raw["until"]), float(raw.get("setAt") or 0.0),
                     raw.get("setBy"))
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, OverflowError):
            return said_unusable(OVERRIDE_KEY, data)
        if 0 <= ov.replicas <= MAX_OVERRIDE_REPLICAS and usable_time(ov.until) and usable_time(ov.set_at):
            return ov
        return said_unusable(OVERRIDE_KEY, data)  # a time past year 9999 makes every timestamp of it raise

    def wire(self, now: float) -> dict[str, Any]:
        return {"replicas": self.replicas, "until": iso(self.until), "remainingSeconds":
                round(max(0.0, self.until - now), 1), "setAt": iso(self.set_at), "setBy": self.set_by}


@dataclass(frozen=True, slots=True)
class StoredOverride:
    """The override key as read: its override (None: never set, cleared, or unreadable) and its revision (0: never
    written), which an operator's write names so that it lands only on what the operator saw."""

    override: Override | None
    revision: int


def standing_text(stored: StoredOverride, now: float) -> str:
    """What stands, for an operator told that the override changed under them: ``override 4 until …Z (set by
    alice)``, or ``no override`` (an expired one is none). Pure."""
    ov = active_override(stored.override, now)
    if ov is None:
        return "no override"
    by = f" (set by {ov.set_by})" if ov.set_by else ""
    return f"override {ov.replicas} until {iso(ov.until)}{by}"


def active_override(ov: Override | None, now: float) -> Override | None:
    """The override if it is still in force at ``now``; an expired one is no override."""
    return ov if ov is not None and ov.until > now else None


def clamp_override(replicas: int, min_replicas: int, max_replicas: int) -> tuple[int, str | None]:
    """The count an override may set (clamped to ``[min, max]``) and a note when it was clamped."""
    clamped = min(max_replicas, max(min_replicas, replicas))
    if clamped == replicas:
        return clamped, None
    bound = "max_replicas" if replicas > max_replicas else "min_replicas"
    return clamped, f"override {replicas} clamped to {clamped} ({bound})"


# --- decisions ----------------------------------------------------------------------------------------


def override_reason(override: Override, current: int, min_replicas: int, max_replicas: int,
                    workers: Sequence[Any] | None = None, *, now: float) -> tuple[int, str]:
    """(desired replicas, the reason line) while ``override`` is active and ``current`` replicas run; ``now``:
    epoch seconds (its end is said as :func:`clock_utc` says it); ``workers``: the registry's, each live one quiet
    said after (probe49 F8: ``→ hold 2 workers`` while none took an ad)."""
    desired, note = clamp_override(override.replicas, min_replicas, max_replicas)
    action = action_words(current, desired)
    to = counted(override.replicas, "worker")
    reason = f"manual override to {to} until {clock_utc(override.until, now)} → {action}"
    quiet = every_quiet(workers)
    return desired, reason + (f" ({note})" if note else "") + (f"; {quiet}" if quiet else "")


def _same_kind(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("current", "desired", "applied", "override", "leader")
    return (all(a.get(k) == b.get(k) for k in keys) and (a.get("error") is None) == (b.get("error") is None)
            and reason_kind(a.get("reason")) == reason_kind(b.get("reason")))


def record_decision(
    decisions: Sequence[dict[str, Any]], entry: dict[str, Any], keep: int = KEEP_DECISIONS
) -> list[dict[str, Any]]:
    """Put ``entry`` (``at``, ``current``, ``desired``, ``reason``, ``applied``…) first in the newest-first
    list. When the newest line is the same decision (same counts, applied, override, leader, error or not, and
    the same kind of reason: :func:`~gamead_core.scaling.reason.reason_kind`) ``entry`` is folded into it:
    ``repeats`` grows; ``at`` and ``firstReason`` stay those of its first tick, ``lastAt`` and ``reason`` follow
    the newest — except that a change the line began with (``changed``: ``replicas changed outside the autoscaler
    (1→3)``) stays named at the head of its reason until a line of another kind supersedes it. Keeps ``keep``.
    """
    out = [dict(d) for d in decisions]
    if out and _same_kind(out[0], entry):
        head = out[0]
        head.setdefault("firstReason", head.get("reason"))  # a line an older leader wrote
        head["repeats"] = int(head.get("repeats") or 1) + 1
        head["lastAt"] = entry["at"]
        reason, changed = entry.get("reason"), entry.get("changed") or head.get("changed")
        if changed and not entry.get("changed"):
            reason = f"{changed}; {reason}"
        if changed:
            head["changed"] = changed
        head["reason"] = reason
        head["error"] = entry.get("error")
        return out[:keep]
    first = {**entry, "firstReason": entry.get("reason"), "repeats": 1, "lastAt": entry["at"]}
    return [first, *out][:keep]


# --- the KV adapter -----------------------------------------------------------------------------------


async def open_bucket(js: JetStreamContext, bucket: str, description: str, replicas: int = 1) -> Any:
    """Open ``bucket``, creating it (history 1, file storage, no TTL) if missing; racing creators agree."""
    with nats_boundary():
        try:
            try:
                return await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                pass
            try:
                return await js.create_key_value(KeyValueConfig(
                    bucket=bucket, description=description, history=1, storage=StorageType.FILE,
                    replicas=replicas,
                ))
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != 10058:  # not "exists with a different configuration"
                    raise
                return await js.key_value(bucket)
        except nats.js.errors.APIError as exc:
            raise TopologyError(
                f"JetStream refused bucket {bucket}: {exc.description} (code {exc.err_code})") from exc


class ScaleStore:
    """The leases and scaling buckets of one NATS connection. Construct without I/O; opened on first use."""

    def __init__(self, js: JetStreamContext, *, replicas: int = 1) -> None:
        self.js = js
        self._replicas = replicas
        self._leases: Any = None
        self._scaling: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> ScaleStore:
        if self._scaling is not None:
            return self
        async with self._lock:
            if self._leases is None:
                self._leases = await open_bucket(
                    self.js, names.LEASES_BUCKET, "gamead leader leases (the autoscaler's)", self._replicas)
            if self._scaling is None:
                self._scaling = await open_bucket(
                    self.js, names.SCALING_BUCKET, "gamead autoscaler state, decisions and override",
                    self._replicas)
        return self

    async def leases_kv(self) -> Any:
        await self.open()
        return self._leases

    async def _get(self, kv: Any, key: str) -> bytes | None:
        with nats_boundary():
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
        return entry.value or None

    async def lease(self) -> Lease | None:
        await self.open()
        return Lease.from_json(await self._get(self._leases, AUTOSCALER_LEASE))

    async def state(self) -> dict[str, Any] | None:
        await self.open()
        data = await self._get(self._scaling, STATE_KEY)
        if not data:
            return None
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    async def put_state(self, state: dict[str, Any]) -> None:
        await self.open()
        with nats_boundary():
            await self._scaling.put(STATE_KEY, orjson.dumps(state))

    async def override(self) -> Override | None:
        """The stored override, expired or not (see :func:`active_override`)."""
        return (await self.read_override()).override

    async def read_override(self) -> StoredOverride:
        """The stored override (expired or not) and the key's revision, the one a compare-and-set names: that of
        the value, of the delete marker a clear left, or 0 if never written. Raises QueueUnavailable."""
        await self.open()
        with nats_boundary():
            try:
                entry = await self._scaling.get(OVERRIDE_KEY)
            except nats.js.errors.KeyNotFoundError as exc:  # never written (no entry), or cleared (its marker)
                marker = getattr(exc, "entry", None)
                return StoredOverride(None, int(getattr(marker, "revision", 0) or 0))
        return StoredOverride(Override.from_json(entry.value), int(entry.revision or 0))

    async def put_override(self, ov: Override, *, expected: int) -> int:
        """Write ``ov`` only if the key is still at revision ``expected`` (:meth:`read_override`); returns the new
        revision. Raises :class:`~gamead_core.errors.Conflict` if another operator changed it since (reviewer V10,
        N7: the last of concurrent writers won silently), QueueUnavailable if NATS is away or another write of the
        key stayed in flight (a busy answer is sent again first: :func:`gamead_core.store.cas.retry_busy`; before
        fix35d it was this Conflict at once)."""
        await self.open()
        with nats_boundary():
            return int(await retry_busy(lambda: self._scaling.update(OVERRIDE_KEY, ov.to_json(), last=expected)))

    async def delete_override(self, *, expected: int) -> None:
        """Delete the override only if the key is still at revision ``expected`` (> 0). Raises
        :class:`~gamead_core.errors.Conflict` if it changed since, QueueUnavailable if NATS is away (or still busy,
        as :meth:`put_override`)."""
        if expected <= 0:
            raise ValueError("a delete names the revision it removes (without one it would remove any)")
        await self.open()
        with nats_boundary():
            await retry_busy(lambda: self._scaling.delete(OVERRIDE_KEY, last=expected))

    async def clear_override(self, only: Override | None = None) -> bool:
        """Delete the override; with ``only``, just if it is still that one (the leader removing an expired
        override). True when one was removed; False when none was set or it changed meanwhile."""
        stored = await self.read_override()
        if stored.override is None or (only is not None and stored.override != only):
            return False
        try:
            await self.delete_override(expected=stored.revision)
        except Conflict:
            return False  # replaced meanwhile: leave the new one alone
        return True


__all__ = [
    "KEEP_DECISIONS",
    "MAX_OVERRIDE_SECONDS",
    "Override",
    "ScaleStore",
    "StoredOverride",
    "active_override",
    "clamp_override",
    "iso",
    "open_bucket",
    "override_reason",
    "record_decision",
    "standing_text",
]
