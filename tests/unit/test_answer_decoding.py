"""client37: an answer's Content-Encoding undone within a bound on every layer (gamead_cli.answer_decoding).

Figure: ``gzip, gzip`` over 1 GiB of spaces (1,828 bytes) made httpx's inner decoder return 1 GiB in one call
(``gamead workers`` 2.1 GB RSS); here no call returns more than the bound + 1 byte."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gamead_cli.answer_decoding import BadEncoding, BoundedDecoder, TooLong

BODY = b'{"workers": []}' * 100


@pytest.mark.parametrize(("header", "wire"), [
    (None, BODY), ("identity", BODY), ("gzip", gzip.compress(BODY)), ("x-gzip", gzip.compress(BODY)),
    ("deflate", zlib.compress(BODY)), ("deflate", zlib.compress(BODY)[2:-4]),  # zlib-wrapped, raw: httpx reads both
    ("gzip, gzip", gzip.compress(gzip.compress(BODY))), ("br", BODY),  # a name not known passes as it is (httpx)
], ids=["none", "identity", "gzip", "x-gzip", "deflate", "raw deflate", "gzip twice", "unknown"])
def test_an_answer_within_the_bound_decodes_whole_in_any_chunking(header: str | None, wire: bytes) -> None:
    decoder = BoundedDecoder(header, 1 << 20)
    assert b"".join(decoder.decode(wire[i:i + 7]) for i in range(0, len(wire), 7)) == BODY


def test_a_bomb_in_two_layers_stops_at_the_bound_of_its_inner_layer() -> None:
    """64 MiB of spaces gzipped twice, a bound of 64 KiB: the outer layer makes 65,251 bytes (just under the bound,
    passed on), the inner one would make 1,024 times the bound: each call makes at most bound + 1 bytes, then
    TooLong. The same proportions as the 1 GiB under a 1 MiB bound this test used (inner layer 1,043,658 bytes),
    whose bomb took 3.0 CPU-s to build (suite44; 0.19 now)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    inner = b"".join(z.compress(b" " * (1 << 20)) for _ in range(64)) + z.flush()
    bound = 1 << 16
    assert bound - 1024 < len(inner) < bound  # the outer layer's whole output passes its bound
    decoder = BoundedDecoder("gzip, gzip", bound)
    with pytest.raises(TooLong):
        decoder.decode(gzip.compress(inner))


def test_bytes_that_are_not_the_encoding_named_are_bad_encoding() -> None:
    with pytest.raises(BadEncoding):
        BoundedDecoder("gzip", 1 << 20).decode(b"not gzip at all")


@pytest.mark.parametrize("header", [None, "gzip", "gzip, gzip", "deflate"])
def test_a_stream_is_decoded_whole_in_pieces_of_at_most_the_bound(header: str | None) -> None:
    """A follow stream's body: every piece at most the bound (1,000 bytes here), together the body."""
    body = b'{"state": "running"}\n' * 10_000
    wire = {None: body, "gzip": gzip.compress(body), "gzip, gzip": gzip.compress(gzip.compress(body)),
            "deflate": zlib.compress(body)}[header]
    decoder = BoundedDecoder(header, 1000)
    pieces = [p for i in range(0, len(wire), 4096) for p in decoder.pieces(wire[i:i + 4096])]
    assert b"".join(pieces) == body
    assert header is None or max(map(len, pieces)) <= 1000


def test_a_bomb_on_a_stream_never_makes_more_than_the_bound_at_once() -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    inner = b"".join(z.compress(b" " * (1 << 20)) for _ in range(64)) + z.flush()
    pieces = BoundedDecoder("gzip, gzip", 1 << 16).pieces(gzip.compress(inner))
    assert all(len(next(pieces)) <= 1 << 16 for _ in range(100))  # a generator: taken one piece at a time
