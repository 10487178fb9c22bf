"""The framing lines of a chunked request body — each chunk's size line and the trailer fields after the last chunk
— bounded where the bytes arrive (a part of :class:`gamead_core.api.http_limits.BoundedHttpToolsProtocol`).

llhttp checks a size line's hex but not its length, and hands a trailer field to the protocol only once it is whole
(httptools joins its pieces: a trailer sent across reads was held whole however long, attack47 F9's drill: 30 KB
split in two reads went through). So:

* a chunk size line (hex size, extensions, CRLF) longer than :data:`MAX_CHUNK_LINE` → ``400 bad_request``;
* a chunk size over the route's body cap → ``413 payload_too_large`` once its size line is read;
* the trailer fields after the last chunk longer than :data:`MAX_CHUNK_LINE` in all → ``400 bad_request``, said as
  the trailer they are (attack47 F9: ``a chunk size line is longer than 1,024 bytes`` for a 30 KB trailer field).
  The API reads no trailer field; a client needs none.
"""

from __future__ import annotations

from typing import Any

from gamead_core.api.refusal_order import Refusal

#: longest chunk size line (hex size, extensions, CRLF) taken, and longest trailer section, bytes
MAX_CHUNK_LINE = 1024
#: where a chunked body's framing is: not chunked, a size line, a chunk's data, the trailer after the last chunk
NOT_CHUNKED, SIZE_LINE, CHUNK_DATA, TRAILER = 0, 1, 2, 3
_LONG_CHUNK_LINE = Refusal(400, "bad_request", f"a chunk size line is longer than {MAX_CHUNK_LINE:,} bytes")
_LONG_TRAILER = Refusal(400, "bad_request", f"the trailer fields after the last chunk are longer than "
                        f"{MAX_CHUNK_LINE:,} bytes (the API reads none: send the body without them)")


class ChunkLines:
    """The state and the check of a chunked body's framing lines, for the protocol's ``data_received``."""

    limits: Any
    url: bytes
    _refuse: Any

    def _reset_framing(self, framing: int) -> None:
        self._framing, self._line_tail, self._sized, self._trailer, self._chunk_read = framing, b"", False, 0, 0

    def on_chunk_header(self) -> None:
        self._framing, self._sized, self._chunk_read = CHUNK_DATA, True, 0

    def on_chunk_complete(self) -> None:
        self._reset_framing(SIZE_LINE)

    def _check_chunk_line(self, data: bytes) -> None:
        """A read's last chunk size line (finished or not) is at most :data:`MAX_CHUNK_LINE` and its size at
        most the cap (llhttp checks the hex); a chunk in progress ends the read, its size line just before; past the
        last chunk (size 0), every byte until the message ends is its trailer's."""
        if self._framing == TRAILER:  # the message did not end in this read: all of it is the trailer's
            return self._trailing(self._trailer + len(data))
        if self._framing == SIZE_LINE:  # unfinished: what follows the last line feed
            cut = data.rfind(b"\n")
            self._line_tail = data[cut + 1:] if cut >= 0 else self._line_tail + data
            if len(self._line_tail) > MAX_CHUNK_LINE:
                self._refuse(_LONG_CHUNK_LINE)
        if not self._sized:
            return
        self._sized = False
        head = data[:len(data) - self._chunk_read]  # ... + the size line + its CRLF
        cut = head.rfind(b"\n", 0, len(head) - 1)
        line = head[cut + 1:] if cut >= 0 else self._line_tail + head
        self._line_tail = b""
        try:
            size = int(line.partition(b";")[0].strip(), 16)
        except ValueError:  # a trailer field after the last chunk, not a size line (a size line is hex: llhttp)
            return self._trailing(len(line))
        if len(line) > MAX_CHUNK_LINE:
            return self._refuse(_LONG_CHUNK_LINE)
        if size == 0:  # the last chunk, its line the read's last: the trailer (if any) comes in the next reads
            return self._trailing(0)
        cap, setting = self.limits.body_cap(self.url)
        if size > cap:
            self._refuse(Refusal(413, "payload_too_large", f"a chunk of {size:,} bytes passes the body limit of "
                                 f"{cap:,} bytes ({setting})"))

    def _trailing(self, seen: int) -> None:
        """``seen`` bytes of the trailer after the last chunk so far (the message not ended): at most
        :data:`MAX_CHUNK_LINE`."""
        self._framing, self._trailer = TRAILER, seen
        if seen > MAX_CHUNK_LINE:
            self._refuse(_LONG_TRAILER)
