"""Reading JSON request bodies whatever Content-Type was sent (the spec's curl sends a form type)."""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect

from gamead_core.api.body_caps import body_cap
from gamead_core.api.errors import (
    AmbiguousField,
    InvalidJson,
    PayloadTooLarge,
    MAX_DETAILS,
    ValidationFailed,
    validation_failure,
)
from gamead_core.api.unknown_keys import trimmed
from gamead_core.json_escapes import unpaired_surrogate
from gamead_core.json_keys import (
    has_repeat,
    held_keys,
    key_names,
    may_repeat,
    repeat_details,
    repeat_message,
    repeats,
    spelled_twice,
    twice_details,
    twice_message,
    two_spellings,
)
from gamead_core.json_numbers import past_range_words

M = TypeVar("M", bound=BaseModel)


def parse_body(body: bytes, model: type[M], max_bytes: int) -> M:
    """Decode and validate a JSON object body: 413 ``payload_too_large``, 400 ``invalid_json`` or 422
    ``validation_failed`` with field paths.

    Validation is pydantic's **strict** mode on the JSON text (one parse): a JSON boolean is never an integer
    (``{"replicas": false}`` was read as 0), a string never a number or a boolean; times are ISO-8601 strings.

    What is JSON is RFC 8259's answer, the same as ``POST /ads/batch``'s (orjson): pydantic's parser also takes
    ``NaN`` and ``Infinity``, so a body it read but the model refused is read again by orjson (on the error path
    only), and one orjson refuses is a 400, not a 422 about the field that held the ``NaN``. No body model takes
    a non-finite number (every float field is bounded), so no such body is ever accepted either.

    A body the model accepted whose object names a key twice (``{"priority": 1, "priority": 5}``) is a 400
    ``invalid_json`` naming the key (:func:`refuse_repeats`; I-JSON, RFC 7493 §2.3): pydantic keeps the last
    value, a proxy may read the first. A byte count rules it out first (:func:`gamead_core.json_keys.may_repeat`,
    ~0.3 µs an ad); a body refused for another reason keeps its error.

    A body giving one field under both its names (``targetAudience`` and ``target_audience``: the model takes
    either, :func:`gamead_core.json_keys.two_spellings`) is a 400 ``ambiguous_field`` naming both, whatever else
    is wrong with it (pydantic would keep one and call the other an unknown field). It is looked for only on the
    error path: every body model is ``extra="forbid"``, so such a body never validates (review27 F7).
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(body):,} bytes; the limit is {max_bytes:,}")
    try:
        value = model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        many = exc.error_count() > MAX_DETAILS  # then an object with unknown keys by the thousand, perhaps
        errors = [] if many else list(exc.errors(include_url=False))
    else:
        # No ambiguity check here: every body model forbids unknown fields, so a body giving a field under both its
        # names never validates (the second name is an extra field) and is refused on the error path below.
        if may_repeat(body, key_names(model), held_keys(value)):
            refuse_repeats(body)
        return value
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        raise not_json(body, (first.get("ctx") or {}).get("error") or first.get("msg"))
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise not_json(body, exc) from None
    refuse_spelled_twice(data, model)
    if not first.get("loc") and first.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        raise InvalidJson("the body must be a JSON object")
    omitted = 0
    if many:
        errors, omitted = _few_errors(data, model)
    message, details = validation_failure(errors, omitted)
    raise ValidationFailed(message, details=details)


def _few_errors(data: Any, model: type[BaseModel]) -> tuple[list[dict[str, Any]], int]:
    """pydantic's errors for a body ``data`` (decoded) that had more than ``MAX_DETAILS``, from validating it
    again with the first few of its unknown top-level keys (:func:`trimmed`), and how many unknown keys were left
    out: the same problems, named at the cost of a few."""
    kept, omitted = trimmed(data, model) if isinstance(data, dict) else (data, 0)
    try:
        model.model_validate_json(orjson.dumps(kept), strict=True)
    except ValidationError as exc:
        return list(exc.errors(include_url=False)), omitted
    return [], omitted  # not reached: the keys kept still include an unknown one


def spelled_twice_error(data: Any, model: type[BaseModel], what: str = "the body") -> AmbiguousField | None:
    """The 400 ``ambiguous_field`` (``details``: ``field``, ``keys``) for ``data`` (``what``: the decoded body,
    or an ad of a batch) when it is an object giving a field of ``model`` under both its names; else None.
    Exact: a few dict lookups."""
    twice = spelled_twice(data, two_spellings(model)) if isinstance(data, dict) else None
    if twice is None:
        return None
    return AmbiguousField(f"{what} is ambiguous: {twice_message(twice)}", details=twice_details(twice))


def refuse_spelled_twice(data: Any, model: type[BaseModel]) -> None:
    """Raise :func:`spelled_twice_error`'s error for the decoded body ``data``, if any."""
    exc = spelled_twice_error(data, model)
    if exc is not None:
        raise exc


def refuse_repeats(body: bytes) -> None:
    """Raise 400 ``invalid_json`` naming the first key an object of ``body`` (JSON text) names twice and where
    (``the body is not valid JSON for this API: the key "priority" appears twice in one object (I-JSON, RFC 7493
    §2.3)``; ``details``: ``key``, ``at`` the object's path, ``""`` for the outer one); nothing if none does.
    Exact (:func:`gamead_core.json_keys.has_repeat`): called when :func:`~gamead_core.json_keys.may_repeat`
    says so."""
    if has_repeat(body):
        repeat = next(repeats(body.decode("utf-8", "replace")))
        raise InvalidJson(f"the body is not valid JSON for this API: {repeat_message(repeat)}",
                          details=repeat_details(repeat))


#: Where a parser's message says it tripped: pydantic's "... at line 1 column 202", orjson's "...: line 1 column
#: 1026 (char 1025)".
_AT = re.compile(r"line (\d+) column (\d+)")
#: Words some parsers take for a number that JSON has no way to write (RFC 8259 §6).
_NOT_NUMBERS: Final[tuple[str, ...]] = ("NaN", "Infinity", "-Infinity")
#: What each parser says of a number past a double's range: orjson (any number past ±1.8e308), pydantic's (an int of
#: more than 4,300 digits; a shorter one it reads, the field's bound refuses, and orjson then reads the body again)
_HUGE: Final[tuple[str, ...]] = ("number is infinity when parsed as double", "number out of range")


def not_json(body: bytes, reason: object) -> InvalidJson:
    """The 400 ``invalid_json`` for a body a JSON parser refused with ``reason`` (its message, or orjson's
    ``JSONDecodeError``), worded the same whichever parser (pydantic's for the one-object routes, orjson for
    ``POST /ads/batch``) read it and wherever it tripped:

    * a body that is not UTF-8 (JSON text is UTF-8, RFC 8259 §8.1);
    * an unpaired UTF-16 surrogate escape (RFC 8259 §8.2);
    * ``NaN`` / ``Infinity`` / ``-Infinity`` where a value starts (no JSON number, RFC 8259 §6);
    * a number past a double's range (``1e400``, an integer of 400 or 5,000 digits): ``the number at byte 13
      (9999…, 5,000 characters) is past the range this API reads (a double's: ±1.8e308)``, whichever parser
      tripped on it (words55 F2: "number out of range" from ``POST /ads``, "number is infinity when parsed as
      double" from ``POST /ads/batch``);
    * arrays and objects nested deeper than the parser reads (pydantic's "recursion limit", orjson's "depth
      limit": 200 and 1,024 levels; no body of this API nests more than 4);
    * a body that is empty or only whitespace, or that begins with a byte-order mark (RFC 8259 §8.1: a JSON text
      sent over a network has none): said so (attack47 F9: ``EOF while parsing a value at line 1 column 0``,
      ``expected value at line 1 column 1``);
    * else ``the body is not valid JSON: <reason>``.

    Called on the error path only: the hot path never decodes twice."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InvalidJson(f"the body is not UTF-8 text (byte {exc.start} is not): JSON is UTF-8 (RFC 8259 §8.1)")
    if not text.strip():
        return InvalidJson(f"the body is not valid JSON: it is {'empty' if not text else 'only whitespace'}")
    if text.startswith("\ufeff"):
        return InvalidJson("the body is not valid JSON: it begins with a byte-order mark (U+FEFF, bytes EF BB BF), "
                           "which JSON text sent over a network must not have (RFC 8259 §8.1): send it without")
    pos = getattr(reason, "pos", None)
    word = next((w for w in _NOT_NUMBERS if text.startswith(w, pos)), None) if isinstance(pos, int) else None
    if word is not None:
        if pos and text[pos - 1] == "-":  # orjson trips on the "I" of "-Infinity", after the sign
            word, pos = f"-{word}", pos - 1
        at = len(text[:pos].encode())  # orjson counts characters; the other messages count bytes
        return InvalidJson(f"the body is not valid JSON: {word} at byte {at} is not a JSON number "
                           "(JSON has no NaN or Infinity; RFC 8259 §6)")
    if any(words in str(reason) for words in _HUGE):
        return _huge(text, reason)
    if "recursion limit" in str(reason) or "depth limit" in str(reason):
        where = _AT.search(str(reason))
        at = f" (line {where[1]} column {where[2]})" if where else ""
        return InvalidJson(f"the body nests arrays and objects deeper than this API reads{at}")
    lone = unpaired_surrogate(body) if "surrogate" in str(reason) or "hex escape" in str(reason) else None
    if lone is not None:  # pydantic's parser says "unexpected end of hex escape" for "\ud800"
        at, escape = lone
        return InvalidJson(f"the body is not valid JSON: {escape} at byte {at} is half of a UTF-16 surrogate pair "
                           "without its other half (an unpaired surrogate is no character; RFC 8259 §8.2)")
    return InvalidJson(f"the body is not valid JSON: {reason}")


def _huge(text: str, reason: object) -> InvalidJson:
    """The 400 for a number of ``text`` past a double's range, found from where ``reason`` (orjson's error: ``pos``,
    the number's first character; pydantic's message: ``line L column C``, within the number) says the parser
    tripped: the number's byte offset and its text, cut at 40 characters with its length (the CLI's reader says
    the same: :func:`gamead_core.json_numbers.past_range_words`)."""
    pos = getattr(reason, "pos", None)
    if not isinstance(pos, int):
        where = _AT.search(str(reason))
        lines = text.split("\n")
        line = min(int(where[1]), len(lines)) if where else 1
        pos = sum(len(s) + 1 for s in lines[:line - 1]) + (int(where[2]) - 1 if where else 0)
    pos = max(0, min(pos, len(text)))
    while pos > 0 and text[pos - 1] in "0123456789+-.eE":  # back to the number's first character
        pos -= 1
    return InvalidJson(f"the body is not valid JSON for this API: {past_range_words(text, pos)}")


async def body_bytes(request: Request) -> bytes:
    """The whole body of ``request``, read from its ASGI ``receive`` (bytes; ``b""`` when there is none).

    What ``await request.body()`` returns, for the submit routes, without its async generator: Starlette's
    ``body()`` opens one per request, with ``aclosing`` and the event loop's async-generator hooks (~15 % of the
    API's CPU per ``POST /ads`` over HTTP, py-spy). The size is bounded before it gets here: the gate refuses a
    ``Content-Length`` over the limit and counts a chunked body as it arrives (``api.max_body_bytes``).
    Raises :class:`starlette.requests.ClientDisconnect` if the client leaves before the body is complete.
    Read once: a second call would wait for a message that never comes."""
    receive = request.receive
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        return message.get("body", b"")  # the common case: the whole body in one message
    chunks: list[bytes] = []
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        message = await receive()


async def read_body(request: Request, model: type[M]) -> M:
    """``request``'s body as ``model`` (:func:`parse_body`), within its route's cap
    (:func:`gamead_core.api.body_caps.body_cap`)."""
    api = request.app.state.settings.api
    cap, _ = body_cap(request.url.path, api.max_body_bytes, api.batch_max_body_bytes)
    return parse_body(await request.body(), model, cap)


class NoFields(BaseModel):
    """The body of a route that takes none: at most ``{}``."""

    model_config = ConfigDict(extra="forbid")


async def no_body(request: Request) -> None:
    """For a write route that takes no body (``POST /v1/doctor/repair``, ``POST /v1/jobs/{id}/cancel``,
    ``DELETE /v1/scale/override``): an empty body or ``{}`` is fine; anything else is refused as any body is
    (400 ``invalid_json``, 422 ``validation_failed`` naming each field it does not take), never ignored. A
    reviewer's ``{"dryRun": true}`` to the repair route started a real repair."""
    body = await request.body()
    if body:  # whitespace alone is not JSON either: refused (a reviewer's "   " started a repair)
        parse_body(body, NoFields, request.app.state.settings.api.max_body_bytes)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body read with :func:`read_body`."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
