"""The one way the CLI reads JSON from a file: strict JSON (no ``NaN``/``Infinity``), lines of bounded length.

Every reader of an operator's input file (``gamead submit`` FILE / NDJSON, ``gamead dlq import``, ``gamead top
--replay``) goes through here, so a line is never read whole past its bound (a 50 MB line costs 64 KiB of memory,
not 50 MB) and a token the API would refuse (``NaN``, ``Infinity``: RFC 8259 §6 has no such numbers) is named
with its ``file:line`` before anything is sent. A file that is missing, unreadable, not UTF-8 or not JSON is
refused the same way by all of them, and so is an object naming a key twice (I-JSON, RFC 7493 §2.3: which value
counts is a guess), and a ``\\ud800`` escape without its other half (RFC 8259 §8.2: no character, no UTF-8 can
carry it) (:class:`BadInputFile`: bad usage, exit 2, one red line naming the file and
the line where known): :func:`open_input`, :func:`load_json`, :func:`json_line`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any

import typer

from gamead_core.json_escapes import unpaired_surrogate
from gamead_core.json_keys import RepeatedKey, repeat_message, repeats, unique_pairs
from gamead_core.json_numbers import first_past_range, past_range, past_range_words

#: JSON's non-numbers, refused by :func:`strict_loads` (Python's json module accepts them by default)
_CONSTANTS = ("NaN", "Infinity", "-Infinity")


class NotJson(ValueError):
    """Text that is not strict JSON; ``line`` is its 1-based line in the text parsed."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


class KeyTwice(NotJson):
    """JSON text whose object names a key twice (I-JSON, RFC 7493 §2.3); the message names the key."""


class PastRange(NotJson):
    """JSON text holding a number past a double's range (``1e999``, 400 digits), which the API refuses (400
    ``invalid_json``); the message is the API's (:func:`gamead_core.json_numbers.past_range_words`)."""


def _constant_line(text: str) -> int:
    """1-based line of the first NaN / Infinity token outside a string of ``text`` (1 if none). Pure, O(n)."""
    in_string = escaped = False
    line = 1
    for i, ch in enumerate(text):
        if ch == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "NI" and text.startswith(("NaN", "Infinity"), i):
            return line
    return 1


class _Overflow(ValueError):
    """A number token past a double's range (:func:`gamead_core.json_numbers.past_range`)."""


def strict_loads(text: str | bytes, *, unique: bool = False) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity``, ``-Infinity`` (not JSON, RFC 8259 §6) and, as
    :class:`PastRange` in the API's words, any number the API refuses as past a double's range (``1e999``, an
    integer of 400 or 5,000 digits: :mod:`gamead_core.json_numbers`; RFC 8259 §6 lets a parser limit the range);
    with ``unique``, an object naming a key twice too (I-JSON, RFC 7493 §2.3; the API refuses it: 400
    ``invalid_json``), named with its line and path (:mod:`gamead_core.json_keys`).

    Raises :class:`NotJson` (a ``ValueError``) with the line of the fault for any text that is not JSON, and
    for nesting deeper than Python's recursion limit."""
    def refuse(name: str) -> Any:
        raise NotJson(f"{name} is not a JSON number (JSON has no NaN or Infinity)")

    def finite(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise _Overflow(token)
        return value

    def whole(token: str) -> int:  # 309 digits or more may be past 1.8e308 (and int() refuses 4,301)
        if len(token) > 308 and past_range(token):
            raise _Overflow(token)
        return int(token)

    try:
        return json.loads(text, parse_constant=refuse, parse_float=finite, parse_int=whole,
                          object_pairs_hook=unique_pairs if unique else None)
    except RepeatedKey:
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        repeat = next(repeats(body))
        raise KeyTwice(repeat_message(repeat), body.count("\n", 0, repeat.offset) + 1) from None
    except _Overflow:
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        at = first_past_range(body) or 0  # the first such number: json.loads reads in order
        raise PastRange(past_range_words(body, at), body.count("\n", 0, at) + 1) from None
    except NotJson as exc:
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise NotJson(str(exc), _constant_line(body)) from None
    except json.JSONDecodeError as exc:
        raise NotJson(f"{exc.msg} at column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise NotJson("nested too deeply") from None
    except ValueError as exc:  # bytes that are not UTF-8
        raise NotJson(str(exc)[:120]) from None


#: byte-order marks of the encodings JSON text must not come in (RFC 8259 §8.1: UTF-8), longest first
_WIDE_BOMS = ((b"\x00\x00\xfe\xff", "a UTF-32 byte-order mark"), (b"\xff\xfe\x00\x00", "a UTF-32 byte-order mark"),
              (b"\xfe\xff", "a UTF-16 byte-order mark"), (b"\xff\xfe", "a UTF-16 byte-order mark"))
_UTF8_BOM = b"\xef\xbb\xbf"


class NotUtf8(ValueError):
    """Bytes that are not UTF-8 JSON text; the message says where (``byte 0: a UTF-16 byte-order mark``), counted
    as an editor shows the text: after a UTF-8 byte-order mark, which it does not show (as every position a message
    names: a number's byte, a column). ``at`` is that byte's 0-based offset in the bytes read (for its line)."""

    def __init__(self, message: str, at: int = 0) -> None:
        super().__init__(message)
        self.at = at


def utf8_text(data: bytes, *, bom: bool = True) -> str:
    """``data`` decoded as UTF-8, the one encoding of JSON text (RFC 8259 §8.1); with ``bom`` a leading UTF-8
    byte-order mark is dropped (Windows editors write one). Pure.

    Raises :class:`NotUtf8` naming the first offending byte (0-based, counted after a UTF-8 BOM: small56, it said
    ``byte 15`` of the byte an editor shows as 12) for a UTF-16/UTF-32 byte-order mark, a NUL byte (JSON text
    never holds one raw, RFC 8259 §7; it is how UTF-16 and UTF-32 text shows) or bytes that are not UTF-8 — so a
    UTF-16 file is refused as such, never half-read by Python's JSON encoding detection."""
    for mark, what in _WIDE_BOMS:
        if data.startswith(mark):
            raise NotUtf8(f"byte 0: {what}", 0)
    skip = len(_UTF8_BOM) if bom and data.startswith(_UTF8_BOM) else 0
    nul = data.find(b"\x00")
    if nul >= 0:
        raise NotUtf8(f"byte {nul - skip}: a NUL byte, as in UTF-16 or UTF-32 text", nul)
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(f"byte {exc.start}", exc.start + skip) from None


#: the buffer an input file is read through (bytes): a run of blank lines is passed this much a step
READ_BUFFER = 64 * 1024


class TooLarge(ValueError):
    """A file larger than its reader's total bound."""


def bounded_lines(fh: IO[bytes], limit: int, max_total: int | None = None,
                  max_skip: int | None = None, *, skip_blank: bool = False) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` for every line of a binary file, each read with at most ``limit + 1`` bytes in
    memory. A line longer than ``limit`` bytes comes as ``(number, None)`` as soon as its ``limit + 1``-th byte
    is read (a caller that refuses it stops there: a 1 GB line costs ``limit + 1`` bytes and one read, not a
    pass over the gigabyte); only a caller that asks for the next line has the rest of the long one skipped, in
    bounded reads. Memory stays ``O(limit)`` whatever the file holds. With ``skip_blank`` the blank lines (ASCII
    whitespace only) are not yielded, and a run of them is passed a buffer at a time
    (:func:`gamead_cli.blank_lines.skip_blank_run`, attack40a F3: not a step a line), the numbers kept right.

    Raises :class:`TooLarge` once more than ``max_total`` bytes were read (``/dev/zero`` on stdin ends too), or
    once the rest of a long line skipped passes ``max_skip`` bytes (a sparse terabyte after a valid line)."""
    from gamead_cli.blank_lines import skip_blank_run

    number = total = 0

    def read() -> bytes:
        nonlocal total
        chunk = fh.readline(limit + 1)
        if isinstance(chunk, str):  # a text stdin (tests): same bytes
            chunk = chunk.encode("utf-8", "surrogateescape")
        total += len(chunk)
        if max_total is not None and total > max_total:
            raise TooLarge(f"larger than {max_total // 1024**2} MiB")
        return chunk

    while True:
        line = read()
        if not line:
            return
        number += 1
        long = len(line) > limit and not line.endswith(b"\n")
        if skip_blank and not long and not line.strip():
            lines, size = skip_blank_run(fh, limit)
            number, total = number + lines, total + size
            if max_total is not None and total > max_total:
                raise TooLarge(f"larger than {max_total // 1024**2} MiB")
            continue
        if long:
            yield number, None  # most callers refuse it here: the rest of the line is never read
            skipped = 0
            while line and not line.endswith(b"\n"):
                line = read()
                skipped += len(line)
                if max_skip is not None and skipped > max_skip:
                    raise TooLarge(f"line {number} is longer than {max_skip // 1024**2} MiB: the rest of the file "
                                   "is not read")
            continue
        yield number, line


def finite(value: Any) -> Any:
    """``value`` (decoded JSON, or what a command prints) with every non-finite float (``inf``, ``nan``, what
    a server or a file sent as ``1e999``) replaced by ``None``, without recursion; other values unchanged."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, dict | list | tuple):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            item = None
        elif isinstance(item, dict):
            copy: Any = dict(item)
            stack.extend((v, copy, k) for k, v in item.items())
            item = copy
        elif isinstance(item, list | tuple):
            copy = list(item)
            stack.extend((v, copy, k) for k, v in enumerate(item))
            item = copy
        parent[key] = item
    return root[0]


def strict_dumps(value: Any, **kw: Any) -> str:
    """``json.dumps`` whose text is always strict JSON (RFC 8259 §6: no ``NaN``/``Infinity``): a non-finite
    number is written as ``null`` (:func:`finite`). ``kw`` goes to ``json.dumps`` (``indent``, ``default``…)."""
    return json.dumps(finite(value), allow_nan=False, **kw)


class BadInputFile(typer.BadParameter):
    """An operator's input file that cannot be used as given: missing, unreadable, not UTF-8, not strict JSON /
    JSON Lines, or not the shape its command reads. Bad input, so bad usage: exit 2 (README "Exit codes"), one red
    line ``FILE: ads.ndjson:2: not valid JSON (…)``. ``where``: the file (``stdin`` for ``-``);
    ``line``: the 1-based line of the fault, None when it is the whole file's."""

    def __init__(self, where: str, problem: str, line: int | None = None, hint: str = "FILE") -> None:
        self.where, self.line, self.problem = where, line, problem
        super().__init__(f"{where}:{line}: {problem}" if line is not None else f"{where}: {problem}",
                         param_hint=hint)


def input_name(source: str | Any) -> str:
    """How a message names an input: ``stdin`` for ``-``, else the path as given."""
    return "stdin" if str(source) == "-" else str(source)


#: what a message calls a file that is not a regular file (``S_IFMT`` bits)
_KINDS = {stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFDIR: "a directory"}


def _why_not(mode: int) -> str:
    """Why a file of ``mode`` is not read, as a message's aside: nothing for a directory (it is plainly not a file
    of data); a device, FIFO or socket, whose reading may never end. Pure."""
    return "" if stat.S_ISDIR(mode) else ", whose reading may never end"


def open_input(source: str | Any, hint: str = "FILE", *, seekable: bool = False,
               verb: str = "gamead submit") -> IO[bytes]:
    """The bytes of an input file, ``-`` for stdin (the caller closes a file it opened). Only a regular file is read, as
    ``--config`` reads one (:func:`gamead_core.config.load.check_file`): a device (``/dev/zero``,
    ``/dev/urandom``: endless), a FIFO (opened without waiting for a writer, then refused), a socket or a
    directory is refused before a byte is read. With ``seekable`` (a reader that reads the file twice) stdin must
    be a regular file too (``< rec.jsonl``, not a pipe); a FIFO's refusal says to pipe it to ``verb -`` (the
    command reading it: attack40a F4, ``gamead dlq import`` named ``gamead submit -``). Raises
    :class:`BadInputFile` (exit 2) naming the file for one that does not exist, cannot be read or is not a regular
    file, and for ``-`` with stdin closed."""
    where = input_name(source)
    if str(source) == "-":
        if sys.stdin is None:  # fd 0 closed (`<&-`): Python's sys.stdin is None (attack30c F1)
            raise BadInputFile(where, "is closed (no input)", hint=hint)
        stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        if seekable:
            try:
                regular = stat.S_ISREG(os.fstat(stdin.fileno()).st_mode)
            except (OSError, ValueError, AttributeError):  # no descriptor (a test's stdin)
                regular = False
            if not regular:
                raise BadInputFile(where, "must be a file (it is read twice), not a pipe: give its path", hint=hint)
        return stdin  # type: ignore[return-value]
    try:  # O_NONBLOCK: a FIFO with no writer must not hang the open (no effect on a regular file's reads)
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BadInputFile(where, "does not exist", hint=hint) from None
    except OSError as exc:
        raise BadInputFile(where, f"cannot be read ({exc.strerror or exc})", hint=hint) from None
    mode = os.fstat(fd).st_mode  # of the file opened: no window for a swap between a check and the open
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
        pipe = (f" (for a pipe or `<(…)`, give it on stdin as `-`, e.g. `… | {verb} -`)"
                if stat.S_ISFIFO(mode) and not seekable else "")
        raise BadInputFile(where, f"is not a regular file ({kind}{_why_not(mode)}): is it the right file?{pipe}",
                           hint=hint)
    return os.fdopen(fd, "rb", buffering=READ_BUFFER)  # a blank run passes a buffer at a time (attack40a F3)


def load_json(data: bytes, where: str, *, line: int | None = None, hint: str = "FILE") -> Any:
    """The strict JSON of ``data``: a whole file's bytes, or line ``line`` of a JSON Lines file. UTF-8 only
    (:func:`utf8_text`, a UTF-8 BOM dropped), no key twice in one object (:func:`strict_loads`). Raises
    :class:`BadInputFile` (exit 2) naming ``where`` and the line of the fault (that of the file: within a whole
    file, where the parser stopped; for a key twice, its second occurrence; for an unpaired UTF-16 surrogate
    escape, RFC 8259 §8.2, where it is)."""
    try:
        text = utf8_text(data)
    except NotUtf8 as exc:
        at = data.count(b"\n", 0, exc.at) + 1 if line is None else line
        raise BadInputFile(where, f"not UTF-8 text ({exc}): save it as UTF-8", at, hint) from None
    try:
        value = strict_loads(text, unique=True)
    except NotJson as exc:
        problem = (str(exc)[:200] if isinstance(exc, KeyTwice) else f"not valid JSON for this API: {exc}"
                   if isinstance(exc, PastRange) else f"not valid JSON ({str(exc)[:120]})")
        raise BadInputFile(where, problem, exc.line if line is None else line, hint) from None
    if "\\u" in text and (lone := unpaired_surrogate(text)) is not None:  # no UTF-8 can carry it: refused here,
        at, escape = lone  # as the API refuses it, not by the HTTP client's encoder (attack30c F8)
        raise BadInputFile(where, f"not valid JSON ({escape} is half of a UTF-16 surrogate pair without its other "
                           "half: an unpaired surrogate is no character, RFC 8259 §8.2)",
                           text.count("\n", 0, at) + 1 if line is None else line, hint)
    return value


def json_line(number: int, line: bytes | None, where: str, limit: int, *, hint: str = "FILE") -> Any:
    """One line of a JSON Lines file as :func:`bounded_lines` yields it (``None``: longer than ``limit`` bytes),
    decoded by :func:`load_json`; raises :class:`BadInputFile` naming ``where:number`` for a line too long, not
    UTF-8 or not JSON."""
    if line is None:
        raise BadInputFile(where, f"longer than {limit // 1024} KiB", number, hint)
    # without its end of line, so a line cut short is said to fail at its end, not at "column 1" (attack45 F1)
    return load_json(line.rstrip(b"\r\n"), where, line=number, hint=hint)
