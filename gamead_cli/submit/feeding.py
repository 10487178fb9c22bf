"""Batches of ads read from a live stream (``tail -f ads.ndjson | gamead submit --ndjson -``): a batch goes out
when it is full, when the stream has paused, or when its first ad has waited long enough — never held for as long
as the stream stays open (attack30c F4). One reader thread per run (not one per line) hands the items over a
bounded queue; the sender waits on that queue with a timeout (no busy waiting). That thread reads stdin through
:class:`StreamLines`, never through ``sys.stdin``'s buffered reader: a thread blocked inside that reader's lock when
the process exits (Ctrl-C, the stream still open) makes the interpreter abort ("could not acquire lock for
<stdin> at interpreter shutdown", SIGABRT)."""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from gamead_cli.stops import POLL
from gamead_cli.submit.batches import Item

#: a partial batch is sent once no new ad was read for this long (seconds)
IDLE_SECONDS = 0.2
#: … and at the latest this long (seconds) after its first ad was read, however steadily ads trickle in
MAX_AGE_SECONDS = 1.0
#: items read ahead of the sender at most: memory stays bounded whatever the stream
READ_AHEAD = 1000


class _Failed:
    """What the reader thread raised, handed to the sender to raise there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class Feed:
    """The items of ``items`` (``(index, ad)``, read in a thread of their own) cut into runs by :meth:`chunks`.

    ``idle`` and ``max_age`` are seconds (:data:`IDLE_SECONDS`, :data:`MAX_AGE_SECONDS`). What was read and not
    yet handed out (a partial run, the items queued behind it) is :meth:`rest`: the sender's Ctrl-C sends it
    rather than drop ads the producer has already written."""

    def __init__(self, items: Iterable[Item], *, idle: float = IDLE_SECONDS, max_age: float = MAX_AGE_SECONDS,
                 ahead: int = READ_AHEAD, woken: Callable[[], bool] = lambda: False) -> None:
        self.idle, self.max_age, self._woken = idle, max_age, woken
        self.held: list[Item] = []
        self._queue: queue.Queue[object] = queue.Queue(maxsize=ahead)
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(items,), name="gamead-submit-read", daemon=True)
        self._thread.start()  # a daemon: a stream that never ends does not keep the process alive at exit

    def _read(self, items: Iterable[Item]) -> None:
        try:
            for item in items:
                self._queue.put(item)
        except BaseException as exc:  # raised in the sender's thread by chunks()
            self._queue.put(_Failed(exc))
            return
        self._queue.put(_END)

    def chunks(self, size: Callable[[], int]) -> Iterator[list[Item]]:
        """Runs of at most ``size()`` items (asked again for each item): a full run at once, a partial one after
        ``idle`` seconds without a new item or ``max_age`` seconds after its first item, the last at the end of
        the stream. Raises what reading the stream raised, after the runs read before it. Waiting for a first
        item, looks at ``woken()`` every :data:`~gamead_cli.stops.POLL` s and raises KeyboardInterrupt once it is
        true (a stop signal the sender took as a flag: a quiet stream would hold it for ever)."""
        first_at = 0.0
        while True:
            wait = POLL
            if self.held:
                now = time.monotonic()
                wait = max(0.0, min(self.idle, first_at + self.max_age - now))
            try:
                got = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                if self.held:
                    yield self._take()
                elif self._woken():
                    raise KeyboardInterrupt from None
                continue
            if got is _END or isinstance(got, _Failed):
                self._ended = True
                if self.held:
                    yield self._take()
                if isinstance(got, _Failed):
                    raise got.error
                return
            if not self.held:
                first_at = time.monotonic()
            self.held.append(got)  # type: ignore[arg-type]
            if len(self.held) >= size():
                yield self._take()

    def _take(self) -> list[Item]:
        chunk, self.held = self.held, []
        return chunk

    def partial(self) -> list[Item]:
        """The partial run (read, not handed out: what the idle timer sends next), taken."""
        return self._take()

    def rest(self) -> list[Item]:
        """The items read and not handed out yet (the partial run, then those queued behind it, in input order),
        taken: a later call returns only what was read since. Does not wait for the stream."""
        rest = self._take()
        while not self._ended:
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                break
            if got is _END or isinstance(got, _Failed):
                self._ended = True
            else:
                rest.append(got)  # type: ignore[arg-type]
        return rest


class StreamLines:
    """``readline(size)`` over a file descriptor (stdin: 0) with ``os.read`` and a buffer of its own: what
    :func:`gamead_cli.inputs.bounded_lines` reads, holding no lock of the interpreter's I/O (see the module's
    docstring). Lines as ``BufferedReader.readline`` gives them (at most ``size`` bytes, the newline kept;
    ``b""`` at the end); a context manager that leaves the descriptor open. Raises ``OSError`` as ``os.read``."""

    def __init__(self, fd: int, chunk: int = 64 * 1024) -> None:
        self._fd, self._chunk = fd, chunk
        self._buf = bytearray()
        self._pos = 0  #: where the next line starts in ``_buf`` (compacted when past half of it)
        self._eof = False

    def readline(self, size: int = -1) -> bytes:
        while True:
            stop = self._pos + size if size >= 0 else len(self._buf)
            end = self._buf.find(b"\n", self._pos, stop)
            if end >= 0:
                cut = end + 1
                break
            if (size >= 0 and len(self._buf) >= stop) or self._eof:
                cut = min(stop, len(self._buf))
                break
            self._fill()
        line = bytes(self._buf[self._pos:cut])
        self._pos = cut
        return line

    def _fill(self) -> None:
        """One ``os.read`` more into the buffer (compacted first when past half of it), ``_eof`` set at the end."""
        if self._pos and self._pos * 2 >= len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0
        try:
            data = os.read(self._fd, self._chunk)
        except BlockingIOError:  # a non-blocking stdin (set by a parent): wait until it can be read
            select.select([self._fd], [], [])
            return
        self._eof = not data
        self._buf += data

    def peek(self, size: int = 0) -> bytes:
        """The bytes buffered and not read yet (at most ``size`` of them if given), unread: one ``os.read`` first
        when there are none, ``b""`` at the end. Blank runs are passed in bulk through it (attack40a F3)."""
        while self._pos >= len(self._buf) and not self._eof:
            self._fill()
        return bytes(self._buf[self._pos:self._pos + size] if size > 0 else self._buf[self._pos:])

    def read(self, size: int) -> bytes:
        """At most ``size`` of the bytes buffered (after :meth:`peek`: those it showed), taken."""
        data = bytes(self._buf[self._pos:self._pos + size])
        self._pos += len(data)
        return data

    def __enter__(self) -> StreamLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
