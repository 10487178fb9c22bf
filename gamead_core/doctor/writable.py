"""Whether JetStream takes the writes every node needs: its stores against their limits, a write to the
registry bucket (attack27b F1) and a write to each work stream and the ad bucket (attack29b F1).

The registry bucket is a memory stream. With JetStream's memory store at its limit every put to it is refused
(``insufficient resources``, code 10023) while reads go on: no node can write its heartbeat, every worker
fences itself (takes no work: :mod:`gamead_core.worker.fence`) and the queue waits; yet every invariant of the
ads holds. So the doctor says it as a finding (the exit code is 1), two ways:

* ``store_full`` — :func:`store_use`: JetStream's memory or file store used up to its limit (``account_info``:
  ``memory``/``storage`` against ``limits.max_memory``/``max_storage``; a limit of -1, the server's own
  ``max_memory_store`` with no account limit, cannot be read by a client and is left to the probe);
* ``registry_unwritable`` — :func:`probe_registry`: one write to the registry bucket on a key no node has
  (a body no reader decodes as a node), then purged; a refusal is said whatever refuses it, with JetStream's
  memory use beside it;
* ``store_unwritable`` — :func:`probe_store`: the API nodes' own write check
  (:func:`gamead_core.queue.write_check.writes_stored`: one empty message in each work stream and in the ad bucket,
  file storage, on a subject no consumer reads, purged at once), bounded by ``nats.request_timeout`` per write and
  said only when it fails twice, ``settle`` seconds apart (a busy server's one slow answer is no finding). A full
  disk is seen nowhere else: nats-server stops answering a stream's writes (``no space left on device``) while
  it answers every read and ``account_info`` (no limit is reached), so every submit is refused while every
  invariant of the ads holds; a file store at the server's ``max_file_store`` (which no client can read) refuses
  with 10023 "insufficient resources". Each detail says what to do (:func:`unstored_line`). Not run when
  ``store_full`` already names the file store (:func:`probe_store_needed`): that finding explains the refusal, and
  one cause was reported twice (review29 F8), with two more writes per work stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.doctor.model import ReadStats
from gamead_core.errors import GameadError, StorageFailed, error_text
from gamead_core.queue.write_check import check_targets, writes_stored
from gamead_core.scaling.store_cause import LIFT

#: The key of the doctor's write probe in the registry bucket (never a node's: node keys are node ids).
PROBE_KEY = "gamead-doctor-write-probe"
MIB = 1024 * 1024


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def store_use(used_memory: int, max_memory: int, used_storage: int, max_storage: int) -> dict[str, str]:
    """Store → one line for each JetStream store used up to its limit (bytes; a limit <= 0 is none): ``{"memory":
    "JetStream memory store full: 256.0 of 256.0 MiB; the registry (a memory stream) refuses writes: nodes
    cannot beat, workers take no work"}``. Empty when neither is full. Pure."""
    out: dict[str, str] = {}
    if max_memory > 0 and used_memory >= max_memory:
        out["memory"] = (f"JetStream memory store full: {used_memory / MIB:.1f} of {_mib(max_memory)}; the "
                         "registry (a memory stream) refuses writes: nodes cannot beat, workers take no work")
    if max_storage > 0 and used_storage >= max_storage:
        out["file"] = (f"JetStream file store full: {used_storage / MIB:.1f} of {_mib(max_storage)}; the work "
                       "streams, the ad records and the DLQ refuse writes: submits are refused")
    return out


#: JetStream's error code for a write refused because a store (or the account) is at its limit
INSUFFICIENT_RESOURCES = 10023


def refusal_line(error: str, used_memory: int, code: int | None = None) -> str:
    """The ``registry_unwritable`` detail: what JetStream said (``code``: its error code, if any), and its
    memory use (bytes). Pure."""
    cause = (f"JetStream memory store full ({_mib(used_memory)} used; its limit is the server's max_memory_store "
             "or the account's)" if code == INSUFFICIENT_RESOURCES else
             f"JetStream's memory store holds {_mib(used_memory)}")
    return (f"{cause}; the registry (a memory stream) refuses writes: {error}: nodes cannot write their heartbeat, "
            "so every worker takes no work (it fences itself) and the queue waits")


async def account(js: JetStreamContext, stats: ReadStats) -> Any | None:
    """JetStream's ``account_info`` (None when it cannot be read: the rest of the run says why)."""
    stats.api_calls += 1
    try:
        return await js.account_info()
    except Exception:  # noqa: BLE001 - a failed read is the other checks' finding
        return None


async def probe_registry(js: JetStreamContext, stats: ReadStats, timeout: float) -> tuple[str, int | None] | None:
    """Write :data:`PROBE_KEY` to the registry bucket and purge it. Returns None when the write was stored (or
    the bucket is missing: nothing to probe, the nodes recreate it), else the error's one line and JetStream's
    error code (None when it gave none: a timeout, a connection error)."""
    stream = names.kv_stream(names.REGISTRY_BUCKET)
    subject = f"{names.kv_prefix(names.REGISTRY_BUCKET)}{PROBE_KEY}"
    stats.api_calls += 1
    try:
        await js.stream_info(stream)
    except Exception:  # noqa: BLE001 - missing or unreadable: not this check's to say
        return None
    stats.api_calls += 1
    try:
        await js.publish(subject, b"doctor", timeout=timeout)
    except asyncio.CancelledError:
        raise
    except nats.js.errors.APIError as exc:
        return f"{exc.description} (code {exc.err_code})", exc.err_code
    except Exception as exc:  # noqa: BLE001 - any refusal is the finding
        return error_text(exc), None
    stats.api_calls += 1
    try:
        await js.purge_stream(stream, subject=subject)
    except Exception:  # noqa: BLE001 - one stray probe entry is harmless (no reader decodes it as a node)
        pass
    return None


def unstored_line(why: str, refused: bool, timeout: float) -> str:
    """The ``store_unwritable`` detail: ``why`` the write check's write was not stored (naming the stream),
    ``refused``: JetStream answered with a storage refusal (else it did not answer within ``timeout`` s), and what
    to do about each (README "JetStream's storage is full"). Pure."""
    if refused:
        cause = (f"{why}: JetStream's file store is at a limit (the server's max_file_store, the account's "
                 "max_storage) or its disk is full")
        fix = ("free room (dead letters no longer needed: gamead dlq export, then gamead dlq purge; other streams; "
               "other files on the disk of nats-server's store directory) or raise the limit: writes are stored "
               "again as soon as there is room")
    else:
        cause = (f"JetStream did not store a write in {timeout:g} s: {why}: on a full disk nats-server stops "
                 "answering a stream's writes (its log says 'no space left on device') and keeps refusing them "
                 "until it restarts; under a file-size limit (RLIMIT_FSIZE, ulimit -f) it does the same once a "
                 "file of its store reaches it (its log says 'file too large'), whatever the free space")
        fix = ("look at nats-server's log (gamead up's: DATA_DIR/nats-server.log): for 'no space left on device', "
               "free space on the disk of nats-server's store directory (gamead up's: DATA_DIR/jetstream), then "
               "restart nats-server (one server at a time in a cluster; gamead up restarts its own once the disk "
               "has room again, attack41a F1); for 'file too large', free space does not help: restart "
               f"nats-server (gamead up) without the limit ({LIFT}; attack43a F1)")
    return f"{cause}; every submit is refused (503) meanwhile. What to do: {fix}"


async def probe_store(js: JetStreamContext, stats: ReadStats, timeout: float, partitions: int) -> str | None:
    """One write check of the work streams (``partitions`` of them) and the ad bucket (module doc), ``timeout``
    seconds per write. Returns None when every target answered (a stream full or missing is another check's
    finding) or NATS is not connected (the rest of the run says it), else the :func:`unstored_line` detail."""
    stats.api_calls += 2 * len(check_targets(partitions)) + 2  # a publish and a purge each; the counter's read, write
    try:
        await writes_stored(js, partitions, timeout)
    except StorageFailed as exc:
        return unstored_line(exc.message, True, timeout)
    except GameadError as exc:
        if not js._nc.is_connected:
            return None
        return unstored_line(exc.message, False, timeout)
    except Exception as exc:  # noqa: BLE001 - not a NATS error (translated above): said as what it is
        return None if not js._nc.is_connected else unstored_line(error_text(exc), False, timeout)
    return None


def probe_store_needed(full: dict[str, str]) -> bool:
    """Whether to run the ``store_unwritable`` write check, given the ``store_full`` items (:func:`store_use`): not
    when the file store is full (its writes are refused for that reason, said once). Pure."""
    return "file" not in full


async def check(js: JetStreamContext, stats: ReadStats, timeout: float, *, partitions: int = 1,
                settle: float = 0.0) -> dict[str, dict[str, str]]:
    """Finding code → item → detail for what refuses writes: ``store_full`` (item ``memory``/``file``),
    ``registry_unwritable`` (item ``registry bucket``) and ``store_unwritable`` (item ``file store``: the write
    check failed twice, ``settle`` s apart). ``timeout``: seconds per probe write. Never raises."""
    info = await account(js, stats)
    used = int(getattr(info, "memory", 0) or 0)
    full: dict[str, str] = {}
    if info is not None:
        limits = info.limits
        full = store_use(used, int(limits.max_memory or -1), int(info.storage or 0), int(limits.max_storage or -1))
    refused = await probe_registry(js, stats, timeout)
    out: dict[str, dict[str, str]] = {}
    if full:
        out["store_full"] = full
    if refused is not None:
        out["registry_unwritable"] = {"registry bucket": refusal_line(refused[0], used, refused[1])}
    if probe_store_needed(full) and await probe_store(js, stats, timeout, partitions) is not None:
        await asyncio.sleep(settle)
        if (unstored := await probe_store(js, stats, timeout, partitions)) is not None:
            out["store_unwritable"] = {"file store": unstored}
    return out


__all__ = ["INSUFFICIENT_RESOURCES", "PROBE_KEY", "check", "probe_registry", "probe_store", "probe_store_needed",
           "refusal_line", "store_use", "unstored_line"]
