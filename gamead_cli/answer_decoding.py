"""Undoing an answer's ``Content-Encoding`` within a bound on every layer's output (client37).

httpx decodes each chunk read in one call: a ``gzip, gzip`` answer of 1,828 bytes (1 GiB of spaces, gzipped
twice) made its inner decoder turn one ~1 MB chunk into 1 GiB at once, before any bound could look at it
(``gamead workers``: 2.1 GB RSS). Here each layer (``gzip``/``x-gzip``, ``deflate`` zlib-wrapped or raw, as httpx
reads it; ``identity`` and names not known pass the bytes as they are, as httpx does) is asked for at most one byte
more than its bound at a time (``zlib``'s ``max_length``), so no call makes more than ``limit`` + 1 bytes; a follow
stream's body (:meth:`BoundedDecoder.pieces`) is decoded in pieces of at most a bound each, however long it is. Pure:
no I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator


class TooLong(Exception):
    """A layer of the answer's encoding decoded to more than the bound."""


class BadEncoding(Exception):
    """The answer's bytes are not in the encoding it names (``zlib.error``)."""


class _Inflate:
    """One compression layer: ``gzip`` (``wbits`` 31) or ``deflate`` (zlib-wrapped, else raw: httpx's rule)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._first = True
        self.size = 0  #: bytes this layer has made so far

    def _inflate(self, data: bytes, most: int) -> bytes:
        try:
            out = self._z.decompress(data, most)
        except zlib.error as exc:
            if self._gzip or not self._first:
                raise BadEncoding(str(exc)) from None
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream (httpx's DeflateDecoder)
            self._first = False
            return self._inflate(data, most)
        self._first = False
        return out

    def decode(self, data: bytes, limit: int) -> bytes:
        out = self._inflate(data, limit - self.size + 1)
        self.size += len(out)
        if self.size > limit:  # max_length reached: more would come
            raise TooLong
        return out

    def pieces(self, data: bytes, most: int) -> Iterator[bytes]:
        """``data`` decoded, in pieces of at most ``most`` bytes (what did not fit is decoded at the next)."""
        out = self._inflate(data, most)
        while out:
            yield out
            out = self._inflate(self._z.unconsumed_tail, most) if self._z.unconsumed_tail else b""


class BoundedDecoder:
    """Decode an answer body chunk by chunk through its ``Content-Encoding`` layers (``header``: the header's value,
    or None), each layer's output at most ``limit`` bytes. :meth:`decode` raises :class:`TooLong` past it and
    :class:`BadEncoding` for bytes that are not the encoding named."""

    def __init__(self, header: str | None, limit: int) -> None:
        names = [n.strip().lower() for n in (header or "").split(",")]
        # the encodings are listed in the order they were applied: undone last first
        self._layers = [_Inflate(n in ("gzip", "x-gzip")) for n in reversed(names) if n in ("gzip", "x-gzip",
                                                                                           "deflate")]
        self._limit = limit

    def decode(self, data: bytes) -> bytes:
        for layer in self._layers:
            data = layer.decode(data, self._limit)
        return data

    def pieces(self, data: bytes, layer: int = 0) -> Iterator[bytes]:
        """``data`` (the next bytes of an endless body) decoded in pieces of at most ``limit`` bytes, each layer
        holding at most that much at a time: for a stream read a line at a time (:mod:`gamead_cli.ndjson_lines`
        bounds the line), never :class:`TooLong`; :class:`BadEncoding` as :meth:`decode`."""
        if layer == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[layer].pieces(data, self._limit):
            yield from self.pieces(piece, layer + 1)


__all__ = ["BadEncoding", "BoundedDecoder", "TooLong"]
