"""Fresh ad ids: lower-case ULIDs (https://github.com/ulid/spec), made for every submitted ad (so on its path).

The form every id takes is :mod:`gamead_core.ids`' rule (26 Crockford base32 characters, lower case)."""

from __future__ import annotations

import os

from gamead_core.clock import now_ns

__all__ = ["new_ad_id", "new_ad_ids", "time_text", "ulid_text", "ulid_texts"]


#: Crockford's base32 in lower case (the ULID alphabet, https://github.com/ulid/spec), two characters per
#: 10 bits: 1,024 strings
_PAIRS = tuple(a + b for a in "0123456789abcdefghjkmnpqrstvwxyz" for b in "0123456789abcdefghjkmnpqrstvwxyz")
#: a ULID's 26 characters are 130 bits (the top 2 always 0): 13 chunks of 10 bits, most significant first
_SHIFTS = tuple(range(120, -1, -10))


def ulid_text(value: int) -> str:
    """The 26 lower-case characters of the ULID whose 128 bits are ``value`` (as
    ``str(ULID.from_bytes(value.to_bytes(16, "big"))).lower()``; ``base64.b32encode`` is slower: Python code)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def time_text(ms: int) -> str:
    """The 10 characters of a ULID's time part for ``ms`` (Unix milliseconds, 48 bits): ``ulid_text(ms << 80)[:10]``,
    its 50 top bits as 5 pairs, without the 8 pairs of a random part that slice drops (perf44a: at 1,000 ids/s
    nearly every id has a new millisecond, and that slice was ~4 of the ~7 µs of :func:`new_ad_id`; pure)."""
    pairs = _PAIRS
    return "".join((pairs[ms >> 40], pairs[(ms >> 30) & 1023], pairs[(ms >> 20) & 1023], pairs[(ms >> 10) & 1023],
                    pairs[ms & 1023]))


#: the last millisecond an id was made in, and its 10 characters (the time part of every id made in it)
_last_ms: tuple[int, str] = (-1, "")


def new_ad_id() -> str:
    """A fresh, time-sortable id: a lower-case ULID (48 bits of Unix time in ms on nats-server's clock
    (:mod:`gamead_core.clock`), then 80 random bits from
    ``os.urandom``), 26 characters; the same form as ``str(ulid.ULID()).lower()`` (``ulid_text`` of those 128
    bits), at about a fifth of its CPU (it is on the path of every submitted ad): the time's 10 characters are
    made once per millisecond, the random part's 16 as :func:`ulid_texts` makes them."""
    global _last_ms  # noqa: PLW0603
    ms = now_ns() // 1_000_000
    last = _last_ms
    if last[0] != ms:
        last = _last_ms = (ms, time_text(ms))
    v, pairs = int.from_bytes(os.urandom(10), "big"), _PAIRS
    return "".join((last[1], pairs[v >> 70], pairs[(v >> 60) & 1023], pairs[(v >> 50) & 1023], pairs[(v >> 40) & 1023],
                    pairs[(v >> 30) & 1023], pairs[(v >> 20) & 1023], pairs[(v >> 10) & 1023], pairs[v & 1023]))


def new_ad_ids(count: int) -> list[str]:
    """``count`` fresh ids as :func:`new_ad_id` makes them, with one clock read and one ``os.urandom`` call (a
    system call) for all: a batch's (:func:`ulid_texts`)."""
    return ulid_texts(now_ns() // 1_000_000, os.urandom(10 * count))


def ulid_texts(ms: int, noise: bytes) -> list[str]:
    """The ULIDs of time ``ms`` (Unix ms, 48 bits) and each 10 bytes of ``noise`` as their 80 random bits, as
    :func:`ulid_text` writes them: the time's 10 characters once, then the random part's 8 pairs of characters
    per id, unrolled (0.73 µs an id against 1.16 µs for one ``base64.b32encode`` of all the noise, Python code
    in 3.11; in-process, 100 ids a call, same run)."""
    head = time_text(ms)
    pairs, number = _PAIRS, int.from_bytes
    out = []
    for k in range(0, len(noise), 10):
        v = number(noise[k:k + 10], "big")
        out.append("".join((head, pairs[v >> 70], pairs[(v >> 60) & 1023], pairs[(v >> 50) & 1023],
                            pairs[(v >> 40) & 1023], pairs[(v >> 30) & 1023], pairs[(v >> 20) & 1023],
                            pairs[(v >> 10) & 1023], pairs[v & 1023])))
    return out
