"""The one rule for the ids a client may send: an ad id and a job id, checked at the API boundary.

Both are ULIDs (https://github.com/ulid/spec) written as 26 lowercase Crockford base32 characters, as
:func:`gamead_core.ad_ids.new_ad_id` makes them (from a random ULID, or from the hash of an idempotency key:
16 bytes, so the first character is ``0``-``7``). The alphabet has no ``I L O U`` and no ``.``, ``*``, ``>`` or
space, so an id that passes is always a safe NATS subject token and KV key, and it is short (26 bytes). A ULID is
case-insensitive: an id a client sends in capitals (in a path, a body or a query) is the same id, read as its
lowercase form (:func:`normal_id`, :data:`AdId`, :data:`JobId`) before anything uses it. A string that fails is
answered 404 ``not_found`` (in a path) or 422 ``validation_failed`` (in a body or query) and never reaches NATS.
Nothing else in gamead builds a subject or a key from a client's string.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Annotated, Final

from pydantic import AfterValidator, WithJsonSchema
from ulid import ULID

from gamead_core.safe_text import code_point

#: 26 characters: the first ``0``-``7`` (a ULID is 128 bits), the rest Crockford base32, lowercase.
ULID_PATTERN: Final[str] = r"[0-7][0-9a-hjkmnp-tv-z]{25}"
_ULID = re.compile(ULID_PATTERN)
ID_LENGTH: Final[int] = 26

#: The largest page cursor a client may send (``nextCursor``: a stream sequence): a signed 64-bit integer's maximum,
#: so every client's int64 holds it (NATS sequences are uint64; no stream here comes near either).
MAX_CURSOR: Final[int] = 2**63 - 1

AD_ID_RULE: Final[str] = ("an ad id is a ULID as gamead issues it: 26 characters, digits and letters (capitals "
                          "are the same id)")
JOB_ID_RULE: Final[str] = ("a job id is a ULID as gamead issues it: 26 characters, digits and letters (capitals "
                           "are the same id)")


def is_ulid_id(value: object) -> bool:
    """True if ``value`` is a string in gamead's id form (lowercase ULID). Pure; O(1) for any input."""
    return isinstance(value, str) and len(value) == ID_LENGTH and _ULID.fullmatch(value) is not None


def normal_id(value: str) -> str:
    """An ad or job id as gamead keeps it: a ULID is case-insensitive (Crockford base32), so ``01M8RVR27Y…``
    names the same id as ``01m8rvr27y…``, and only the lowercase form is used in NATS keys and subjects. Returns
    ``value`` lowercased when that is an id, else ``value`` unchanged (for the caller's check to refuse and its
    message to quote as given). Only ASCII letters are lowered: ``str.lower`` maps some other characters onto
    ASCII ones (U+212A KELVIN SIGN → ``k``), and a confusable must not be read as an id (attack27b F6).
    Call it before :func:`is_ad_id` / :func:`is_job_id`. Pure."""
    if not value.isascii():
        return value
    lowered = value.lower()
    return lowered if lowered != value and is_ulid_id(lowered) else value


def is_ad_id(value: object) -> bool:
    """True if ``value`` may be an ad id (see the module docstring)."""
    return is_ulid_id(value)


def is_job_id(value: object) -> bool:
    """True if ``value`` may be a job id (same form as an ad id)."""
    return is_ulid_id(value)


def new_job_id() -> str:
    """A fresh, time-sortable job id (lowercase ULID): newer jobs sort after older ones."""
    return str(ULID()).lower()


def _check(rule: str):  # noqa: ANN202 - a pydantic validator factory
    def check(value: str) -> str:
        value = normal_id(value)  # the same id in capitals, as in a path (attack27 F9)
        if not is_ulid_id(value):
            raise ValueError(f"not a valid id ({rule})")
        return value

    return check


#: an id as a client may send it: :data:`ULID_PATTERN` in either case (read as lowercase)
ID_ANY_CASE_PATTERN: Final[str] = r"[0-7][0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{25}"
#: how an id is documented in ``openapi.json``
ID_JSON_SCHEMA: Final = {"type": "string", "pattern": f"^{ID_ANY_CASE_PATTERN}$", "minLength": ID_LENGTH,
                         "maxLength": ID_LENGTH}

#: A pydantic field type for an ad id sent by a client (in a body or a query: the one id check besides a path's
#: :func:`normal_id` + :func:`is_ad_id`): lowercased when it is an id in capitals, else validation fails with
#: :data:`AD_ID_RULE`.
AdId = Annotated[str, AfterValidator(_check(AD_ID_RULE)),
                 WithJsonSchema({**ID_JSON_SCHEMA, "description": AD_ID_RULE})]
#: A pydantic field type for a job id sent by a client (as :data:`AdId`).
JobId = Annotated[str, AfterValidator(_check(JOB_ID_RULE)),
                  WithJsonSchema({**ID_JSON_SCHEMA, "description": JOB_ID_RULE})]

#: A worker id: what ``gamead worker --id`` takes and ``new_worker_id`` makes (``<host>-<pid>-<6 chars>``, or
#: ``local-<k>`` under ``gamead up``): 1-128 letters, digits and ``- _ . : @ =``, starting with a letter or digit.
#: No ``*``, ``>`` or space, so it is never a subject wildcard, and a host name always fits.
WORKER_ID_PATTERN: Final[str] = r"[A-Za-z0-9][-_.:@=A-Za-z0-9]{0,127}"
_WORKER_ID = re.compile(WORKER_ID_PATTERN)
WORKER_ID_RULE: Final[str] = ("a worker id is 1-128 letters, digits and - _ . : @ =, starting with a letter or "
                              "digit (no *, > or space)")


def is_worker_id(value: object) -> bool:
    """True if ``value`` is a string in the worker-id form (:data:`WORKER_ID_PATTERN`). Pure."""
    return isinstance(value, str) and len(value) <= 128 and _WORKER_ID.fullmatch(value) is not None


def _check_worker(value: str) -> str:
    if not is_worker_id(value):
        raise ValueError(f"not a valid worker id ({WORKER_ID_RULE})")
    return value


#: A pydantic field type for a worker id sent by a client (an imported DLQ entry's ``workerId``).
WorkerId = Annotated[str, AfterValidator(_check_worker),
                     WithJsonSchema({"type": "string", "pattern": f"^{WORKER_ID_PATTERN}$", "maxLength": 128,
                                     "description": WORKER_ID_RULE})]

#: A page cursor of ``GET /ads`` (``nextCursor``): ``<submittedAt in µs since the epoch>-<ad id>``, the key of a
#: page's last ad (``gamead_core.store.listing``). Digits, a dash and an id: a safe query value, 44 bytes at most.
AD_CURSOR_PATTERN: Final[str] = rf"[0-9]{{1,17}}-{ULID_PATTERN}"
AD_CURSOR_MAX_LENGTH: Final[int] = 17 + 1 + ID_LENGTH
_AD_CURSOR = re.compile(AD_CURSOR_PATTERN)
AD_CURSOR_RULE: Final[str] = "a page cursor is the nextCursor of the previous page (digits, '-', an ad id)"


def is_ad_cursor(value: object) -> bool:
    """True if ``value`` is a string in the ``GET /ads`` cursor form (:data:`AD_CURSOR_PATTERN`). Pure."""
    return isinstance(value, str) and len(value) <= AD_CURSOR_MAX_LENGTH and _AD_CURSOR.fullmatch(value) is not None


#: the longest ``Idempotency-Key`` (header, or a batch item's ``idempotencyKey``) the API takes, in characters
MAX_IDEMPOTENCY_KEY: Final[int] = 200
#: The one rule of an idempotency key, on every path (the ``Idempotency-Key`` header, a batch item's
#: ``idempotencyKey``, ``gamead submit --idempotency-key`` and the ``KEY-N`` it derives): draft-ietf-httpapi-
#: idempotency-key-header makes the header a Structured Field string, whose characters are printable ASCII
#: (U+0020-U+007E, RFC 8941 §3.3.3). A key outside it (``ключ-😀``, a tab, a control) could not be sent as a
#: header by a conforming client (httpx refuses to encode it), so it is refused on every path alike. Besides:
#: no comma (a header holding one is two keys folded into one line) and no space at either end (around a
#: header's value it is not part of the key, RFC 9110 §5.5). 1-:data:`MAX_IDEMPOTENCY_KEY` characters.
_KEY_CHARS = r"\x20-\x2b\x2d-\x7e"  # printable ASCII but the comma (0x2c)
_KEY_EDGE = r"\x21-\x2b\x2d-\x7e"  # ... nor a space at either end
#: the rule as one pattern (a batch item's key; no look-around: pydantic's regex engine has none)
IDEMPOTENCY_KEY_PATTERN: Final[str] = f"^([{_KEY_EDGE}]([{_KEY_CHARS}]*[{_KEY_EDGE}])?)?$"
#: the first character a key may not hold (a comma, or anything but printable ASCII)
KEY_REFUSED: Final[re.Pattern[str]] = re.compile(f"[^{_KEY_CHARS}]")
#: the stable error code of a key outside the rule (400 on ``POST /ads``; a batch item's own error)
INVALID_KEY_CODE: Final[str] = "invalid_idempotency_key"
#: why a key that begins or ends with a space is refused
EDGE_SPACE: Final[str] = ("an idempotency key cannot begin or end with a space: around a header's value it is not "
                          "part of the key (RFC 9110 §5.5)")


def idempotency_key_problem(key: str) -> str | None:
    """What the API refuses in the idempotency key ``key`` (:data:`IDEMPOTENCY_KEY_PATTERN`: 1-
    :data:`MAX_IDEMPOTENCY_KEY` printable ASCII characters, no comma, no space at either end), or None.
    Pure; the API checks the header and each batch item's key with it, the CLI ``--idempotency-key``."""
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        return f"an idempotency key is 1-{MAX_IDEMPOTENCY_KEY} characters (got {len(key)})"
    if (bad := KEY_REFUSED.search(key)) is not None:
        if bad.group() == ",":
            return "an idempotency key cannot hold a comma (two keys folded into one header)"
        return (f"an idempotency key holds only printable ASCII characters (U+0020-U+007E: a Structured Field "
                f"string, draft-ietf-httpapi-idempotency-key-header), not {code_point(bad.group())}")
    if key != key.strip(" "):
        return EDGE_SPACE
    return None


def id_tail() -> str:
    """6 lower-case characters of a fresh ULID's random part: what tells apart two ids of one host and pid."""
    return str(ULID())[-6:].lower()


def new_worker_id() -> str:
    """A fresh worker id, ``<host>-<pid>-<6 chars of a ULID>`` (see :data:`WorkerId`)."""
    return f"{socket.gethostname()}-{os.getpid()}-{id_tail()}"
