"""The ``Idempotency-Key`` header of ``POST /ads`` and ``POST /ads/batch``, read from the raw ASGI headers.

draft-ietf-httpapi-idempotency-key-header makes the header an Item Structured Field whose value is a String (RFC 8941
§3.3.3): ``Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"``. curl users send the bare key. Both are taken
(attack30a F7: they were two keys, so two ads): a value that starts with a double quote is parsed as an sf-string
(:func:`sf_string`: the quotes dropped, ``\\"`` and ``\\\\`` unescaped), any other value is the key as it is. Either
way the key then passes the one rule of every path (:func:`gamead_core.ids.idempotency_key_problem`). Only a value
starting with ``"`` takes the parsing path: the plain one stays a loop over the header list and a decode.

Upgrades (review30 F4): an API before this rule stored a quoted value as it was sent, quotes included. The key read
from a quoted value is a :class:`QuotedKey`, which carries that value (``sent``), so the submit also looks up the ad
stored under it: a request sent before an upgrade, or to an older node of a rolling deploy, and resent after it is
still answered ``duplicate: true`` with its first ad (:meth:`gamead_core.intake.Intake.submit`, ``legacy_key``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from gamead_core.api.errors import DuplicateHeader, InvalidIdempotencyKey
from gamead_core.ids import MAX_IDEMPOTENCY_KEY, idempotency_key_problem

__all__ = ["HEADER", "KeyHeader", "QuotedKey", "header_key", "sf_string"]

HEADER = "Idempotency-Key"
_NAME = b"idempotency-key"  # ASGI header names arrive lower-cased

#: the header as the OpenAPI document of both submit routes shows it (documentation: :func:`header_key` reads it).
#: The schema describes the value as sent (review30 F7): a quoted key is 2 characters longer than the key, and an
#: escape 1 more, so the key's length and pattern are in the description, not in ``maxLength``/``pattern``.
KeyHeader = Annotated[str | None, Header(
    alias=HEADER, min_length=1,
    description=f"The key: 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters, no comma, no space at either end "
                "(else 400 `invalid_idempotency_key`; a comma or the "
                "header twice: 400 `duplicate_header`), sent bare (`k-1`) or as the draft's Structured Field string "
                '(`"k-1"`, RFC 8941 §3.3.3, with `\\"` and `\\\\` escaped): one key. The rule applies to the key, '
                f"so the quoted value sent may be longer than {MAX_IDEMPOTENCY_KEY} characters.")]


class QuotedKey(str):
    """A key :func:`header_key` read from a quoted value (an sf-string): the key itself, and ``sent``, the value as
    sent (quotes and escapes included) when that value is a valid key too, else None. An API before the sf-string
    rule (commit 1cac28b) stored such a value as the key, so the submit looks that ad up as well (review30 F4)."""

    sent: str | None


def sf_string(value: str) -> str:
    """The string an sf-string (RFC 8941 §3.3.3, parsed as §4.2.5 says) holds: ``value`` starts with ``"``; the
    text up to the next unescaped ``"``, with ``\\"`` read as ``"`` and ``\\\\`` as ``\\``. Pure. Raises
    :class:`ValueError` saying what is wrong: no closing quote, a backslash before anything but ``"`` or ``\\``,
    or text after the closing quote (parameters, ``;a=1``, are refused: the draft defines none). The characters
    themselves are checked after, by the key's rule (printable ASCII, the sf-string's own range)."""
    out: list[str] = []
    i, end = 1, len(value)
    while i < end:
        char = value[i]
        if char == "\\":
            escaped = value[i + 1:i + 2]
            if escaped not in ('"', "\\"):
                raise ValueError('in a quoted key a backslash escapes only \\" or \\\\ (RFC 8941 §3.3.3), '
                                 f"not {escaped or 'the end'!r}")
            out.append(escaped)
            i += 2
        elif char == '"':
            if i + 1 < end:
                raise ValueError(f"nothing may follow the closing quote of a quoted key (got {value[i + 1:][:20]!r})")
            return "".join(out)
        else:
            out.append(char)
            i += 1
    raise ValueError("a key that starts with a double quote is a Structured Field string (RFC 8941 §3.3.3): "
                     "it needs its closing quote")


def header_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The ``Idempotency-Key`` of the raw ASGI ``headers``, or None when it is not sent, without building the
    header map on the hot path. The value's bytes are read as UTF-8 (an invalid byte as U+FFFD, so the message
    can name the character); one starting with ``"`` is an sf-string (:func:`sf_string`). Raises
    :class:`DuplicateHeader` (400 ``duplicate_header``) when the header is sent twice, or once holding a comma
    (two keys folded into one line, RFC 9110 §5.3: keeping either would deduplicate on a key the client may not
    have meant); :class:`InvalidIdempotencyKey` (400 ``invalid_idempotency_key``, ``details.header``) for an
    invalid sf-string or a key outside the rule of :func:`gamead_core.ids.idempotency_key_problem`. A key read from
    a quoted value is a :class:`QuotedKey` (its ``sent``: the value, if that was a key by itself)."""
    found: bytes | None = None
    for name, value in headers:
        if name == _NAME:
            if found is not None:
                raise DuplicateHeader.of(HEADER)
            found = value
    if found is None:
        return None
    if b"," in found:  # "k1, k2": two keys joined by a proxy, or by the client
        raise DuplicateHeader.folded(HEADER, "a key cannot hold a comma")
    key = found.decode("utf-8", "replace")
    if key[:1] == '"':  # the draft's form: a Structured Field string
        try:
            quoted = QuotedKey(sf_string(key))
        except ValueError as exc:
            raise InvalidIdempotencyKey(f"{HEADER} {key[:60]!r}: {exc}", details={"header": HEADER}) from None
        quoted.sent = key if idempotency_key_problem(key) is None else None  # a key before 1cac28b, if valid
        key = quoted
    if (problem := idempotency_key_problem(key)) is not None:
        raise InvalidIdempotencyKey(f"{HEADER} {key[:60]!r}: {problem}", details={"header": HEADER})
    return key
