"""The NATS write guard (gamead_core.queue.liveness.guard_writes) against nats-py's own writes, on real servers
(review17)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from gamead_core.config import NatsSettings
from gamead_core.embedded import EmbeddedNats, nats_server_binary
from gamead_core.proc import port_owned_by
from gamead_core.queue.connection import connect
from gamead_core.queue.liveness import guard_writes
from gamead_core.queue.reader_guard import reader_alive
from tests.support import PortTaken, frozen, on_a_free_port, wait_for


def test_a_flow_control_reply_nats_py_sends_from_its_read_loop_is_never_refused(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture
) -> None:
    """An ordered consumer (gamead_core.queue.scan: record listings, the doctor, the audit log) is a push consumer
    with flow control: the server waits for a reply to each flow-control message before it delivers more, and
    nats-py publishes that reply from inside its read loop (``Client._process_msg``). A refusal there is raised
    through the protocol parser and ends the read loop (``except Exception: break``): every answer on the
    connection stops until the reader guard drops the socket, with everything still unsent. The room left under
    ``nats.max_pending_bytes`` after a stall's submits and the node's own periodic writes can be smaller than a
    flow-control reply (~100 bytes); a bound below that size gives that room without racing a stall."""
    server = fresh_nats()
    count, size = 600, 8 * 1024  # ~4.8 MB: several flow-control windows

    async def run() -> int:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=5.0)
            await js.add_stream(name="FC", subjects=["fc.>"])
            payload = b"p" * size
            for i in range(count):
                await js.publish("fc.x", payload)
            sub = await js.subscribe("fc.x", stream="FC", ordered_consumer=True)
            guard_writes(nc, 64)  # no room for any write of nats-py's but a tiny one
            got, refused = 0, []
            while got < count:
                try:
                    await sub.next_msg(timeout=5.0)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    break
                except nats.errors.Error as exc:  # raised by next_msg's own flow-control reply
                    refused.append(exc)
                    continue
                got += 1
            assert reader_alive(nc), f"nats-py's read loop died after {got} of {count} messages"
            assert not refused, f"next_msg raised {refused[0]!r} ({len(refused)} times)"
            return got
        finally:
            await nc.close()

    assert asyncio.run(run()) == 600


def _waiting_over_tls(nc: nats.NATS) -> int:
    """Every byte ``nc`` has not yet handed to the kernel: nats-py's pending buffer, the TLS transport's buffer and
    the TCP transport's under it (asyncio's SSL protocol hands it the encrypted bytes)."""
    tls = nc._transport._io_writer.transport  # type: ignore[union-attr]
    return nc.pending_data_size + tls.get_write_buffer_size() + tls._ssl_protocol._transport.get_write_buffer_size()


def _tls_nats(tmp_path: Path, port: int, cert: Path, key: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A TLS nats-server on loopback ``port``, once it listens there itself; :class:`PortTaken` (for
    :func:`on_a_free_port`: picked again) if another process took the port first. Before (nothing54), a port bound
    here and let go, then waited on with a bare connect: another process's listener there passed for the server's."""
    conf = tmp_path / f"tls-{port}.conf"
    conf.write_text(f'listen: "127.0.0.1:{port}"\ntls {{ cert_file: "{cert}", key_file: "{key}" }}\n')
    log = tmp_path / f"nats-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=out, stderr=out)

    def listening() -> bool:
        if server.poll() is not None:
            said = log.read_text(errors="replace")
            if "address already in use" in said:
                raise PortTaken(f"nats-server could not bind {port}:\n{said[-1000:]}")
            raise AssertionError(f"nats-server exited at start ({server.returncode}):\n{said[-2000:]}")
        owned = port_owned_by(server.pid, port)
        if owned is not None:  # /proc tells whose the listener is
            return owned
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=10, interval=0.05, what="the TLS nats-server to listen")
    except BaseException:
        server.kill()
        server.wait(10)
        raise
    return server, port


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test cert")
def test_over_tls_what_waits_to_be_sent_stays_within_the_bound(tmp_path: Path) -> None:
    """Over TLS, asyncio's TLS transport reports only the bytes not yet encrypted; the encrypted ones wait in the
    TCP transport under it (up to its high-water mark, 64 KiB, before it pauses the writer). The guard counted the
    first only: in a stall, 260,568 bytes counted against a bound of 262,144 while 67,584 more waited (review17)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server, port = on_a_free_port(lambda port: _tls_nats(tmp_path, port, cert, key))
    bound = 256 * 1024
    settings = NatsSettings(request_timeout=1.0, max_pending_bytes=bound, stale_after=600, tls_ca=str(cert))

    async def run() -> int:
        nc = await connect(settings, f"tls://127.0.0.1:{port}", name="tls")
        try:
            with frozen(server.pid):
                refused = 0
                while refused < 20:  # write until the guard has refused 20 in a row (the buffers are full)
                    try:
                        await nc.publish("tls.fill", b"f" * 4096)
                        refused = 0
                    except nats.errors.OutboundBufferLimitError:
                        refused += 1
                    await asyncio.sleep(0.001)  # the flusher moves what is pending into the transports
                return _waiting_over_tls(nc)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    try:
        waiting = asyncio.run(run())
    finally:
        server.terminate()
        server.wait(10)
    assert waiting <= bound + 1024, f"{waiting} bytes wait to be sent over TLS (nats.max_pending_bytes {bound})"


def test_a_shutdown_hand_back_whose_ack_is_refused_does_not_raise(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """``Settler.hand_back`` (a worker's shutdown giving an ad back) never raises, its docstring says: for an ad
    already final it acknowledges the message, and that ack, refused by the write guard (the worker's connection
    full), was raised out of it, ending the ad's task with the refusal instead of its cancellation (review17).
    The message is on its own connection, guarded with no room for an ack; the records' connection is not."""
    from gamead_core import names
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import GameadSettings
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.queue.dlq import DeadLetters
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import AdStore, encode
    from gamead_core.worker.budget import delivery_id
    from gamead_core.worker.counters import WorkerStats
    from gamead_core.worker.settle import Settler
    from gamead_core.worker.shield import Shield
    from gamead_core.worker.storage_pause import StoragePause
    from tests.support import ad

    server = fresh_nats()

    async def run() -> None:
        settings = GameadSettings()
        records_nc, work_nc = await nats.connect(server.url), await nats.connect(server.url)
        try:
            js = records_nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(records_nc, js)
            record = AdRecord(id=new_ad_id(), status=AdStatus.COMPLETED, priority=3, submitted_at=utcnow(),
                              ad=AdSubmission.model_validate(ad("Already done")))
            await store.create(record)
            await js.publish(names.level_subject(3), encode(record), headers={
                names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id})
            sub = await work_nc.jetstream().pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
            [msg] = await sub.fetch(1, timeout=5)
            guard_writes(work_nc, 64)  # no room for the ack
            stats = WorkerStats()
            settle = Settler(store, DeadLetters(js), settings.worker, worker_id="w", stats=stats,
                             pause=StoragePause(stats), shielded=Shield(), ack_wait=30)
            await settle.hand_back(msg, record.id, delivery_id(msg.metadata.sequence.stream, 1))
        finally:
            await work_nc.close()
            await records_nc.close()

    asyncio.run(run())
