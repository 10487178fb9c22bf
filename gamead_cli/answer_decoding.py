"""Undoing an answer's ``Content-Encoding`` within a bound on every layer's output (client37).

httpx decodes each chunk read in one call: a ``gzip, gzip`` answer of 1,828 bytes (1 GiB of spaces, gzipped
twice) made its inner decoder turn one ~1 MB chunk into 1 GiB at once, before any bound could look at it
(``gamead workers``: 2.1 GB RSS). Here each layer (``gzip``/``x-gzip``, ``deflate`` zlib-wrapped or raw, as httpx
reads it; ``identity`` and names not known pass the bytes as they are, as httpx does) is asked for at most one byte
more than its bound at a time (``zlib``'s ``max_length``), so no call makes more than ``limit`` + 1 bytes. Pure: no
I/O.
"""

from __future__ import annotations

import zlib


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

    def decode(self, data: bytes, limit: int) -> bytes:
        room = limit - self.size
        try:
            out = self._z.decompress(data, room + 1)
        except zlib.error as exc:
            if self._gzip or not self._first:
                raise BadEncoding(str(exc)) from None
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream (httpx's DeflateDecoder)
            self._first = False
            return self.decode(data, limit)
        self._first = False
        self.size += len(out)
        if self.size > limit:  # max_length reached: more would come
            raise TooLong
        return out


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


__all__ = ["BadEncoding", "BoundedDecoder", "TooLong"]
