"""The ``message`` filter of DLQ verbs: an RE2 pattern, compiled one way by the API (:class:`gamead_core.queue.dlq.
DlqFilter`) and by the CLI before it sends one (``gamead dlq … --message``), so a pattern the API would refuse
(422) is a usage error (exit 2) before any request. Imports only ``re2`` and ``cachetools``: a client command
stays light.

What one pattern may cost, whoever sends it (``GET /v1/dlq`` is open to viewers): RE2 matches in linear time,
but compiling runs on the caller's thread with the GIL held (google-re2's binding does not release it), so on
the API's event loop. A pattern RE2 may give :data:`PATTERN_MAX_MEM` compiles in tens of milliseconds (the
slowest found: 20-80 ms for ``\\pL{10}`` or ``[^x]{1,1000}`` on a loaded 2-core machine) and one needing more is
refused in ~6 ms; with 8 MiB (RE2's default) ``(.*){1,1000}`` × 42 took 0.3-3 s each and 30 of them left
``/healthz`` unanswered for 10 s (attack14a). A pattern compiling to more than :data:`MAX_PROGRAM` instructions
is refused too: it bounds each search. Memory: RE2's module cache would keep 128 compiled patterns of up to
``max_mem`` each (an API went 111 → 710 MB); it is emptied after each compile (``re2.purge``) and
:data:`CACHED` patterns are kept here instead: at most ``CACHED × PATTERN_MAX_MEM`` (8 MiB) in the cache, plus
the patterns of filters in use (a running job, a request being answered).
"""

from __future__ import annotations

from typing import Any

import re2
from cachetools import LRUCache

from gamead_core.safe_text import code_point, refused_char

#: Longest ``message`` filter accepted (characters).
MAX_PATTERN = 1000
#: Longest ``errorClass`` filter accepted (characters): ``GET /v1/dlq``'s query and a job's filter body.
MAX_ERROR_CLASS = 200
#: the fastest pace a DLQ replay may be given (entries per second): ``dlq.replay_rate``, the API's ``rate``, ``--rate``
MAX_REPLAY_RATE = 100_000.0
#: Memory RE2 may use for one pattern, compiled program and matching caches together; a pattern that needs more
#: is refused (422), never slow (see the module doc).
PATTERN_MAX_MEM = 256 << 10
#: Largest RE2 program a pattern may compile to (instructions, ``programsize``): when RE2's DFA runs out of its
#: memory a search is linear in the text times this (``.{1,200}ZZ``, 1,805 instructions, searched 4,000 characters
#: in 22 ms, ``.{1,500}ZZ``, 4,505, in 41 ms, 0.1-0.52 s on a loaded machine (attack38b F2); ``.{1,1000}ZZ``, 9,005,
#: in 75-225 ms), so a search of one DLQ entry's message (at most 4,000 characters) costs ~0.5 s at worst; one that
#: may cost over ~15 ms runs off the event loop (``queue.dlq_filter.INLINE_STEPS``). ``\\pL+`` is 1,201.
MAX_PROGRAM = 5000
#: Compiled patterns (and refusals) kept, most recently used first: a dashboard's filter repeated every refresh
#: is compiled once.
CACHED = 32

_compiled: LRUCache[str, Any] = LRUCache(maxsize=CACHED)  #: pattern → compiled pattern, or the ValueError refusing it


def compile_pattern(pattern: str) -> Any:
    """Compile an operator's ``message`` filter with RE2 (linear-time matching, bounded memory and compile time:
    the module doc); the compiled pattern (``.search(text)``).

    Raises ValueError (with RE2's reason) for a pattern longer than :data:`MAX_PATTERN`, one RE2 cannot
    parse (e.g. look-behind ``(?<=…)`` or back-references, which need backtracking) or one that needs more
    than :data:`PATTERN_MAX_MEM` (``pattern too large``). Syntax: https://github.com/google/re2/wiki/Syntax.
    """
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"the pattern is {len(pattern):,} characters; the limit is {MAX_PATTERN:,}")
    known = _compiled.get(pattern)
    if known is None:
        known = _compiled[pattern] = _compile(pattern)
    if isinstance(known, ValueError):
        raise ValueError(*known.args)
    return known


def filter_refusal(field: str, text: str | None) -> str | None:
    """Why the API refuses ``text`` as the DLQ filter ``field`` (``"errorClass"`` or ``"message"``), or None: an
    error class longer than :data:`MAX_ERROR_CLASS`, or a control character in either (they are kept in a job and
    shown back to operators: :func:`gamead_core.safe_text.refused_char`), or an empty one: a script's unset
    variable, whose empty pattern matched every entry (a purge of them all without ``all``) and empty class none
    (attack60). One rule for the API (422) and the CLI (exit 2 before any request); a ``message`` is also compiled
    by :func:`compile_pattern`. Pure."""
    if text is None:
        return None
    if not text:
        matches = "it would match every entry" if field == "message" else "no entry's error class is empty"
        return f"is empty (an unset variable?): {matches}; for every entry give no filter, or all (--all) to act on " \
               "them"
    if field == "errorClass" and len(text) > MAX_ERROR_CLASS:
        return f"at most {MAX_ERROR_CLASS} characters (this one has {len(text):,})"
    if (bad := refused_char(text)) is not None:
        return f"must not contain control characters (found {code_point(bad)})"
    return None


def _compile(pattern: str) -> Any:
    """RE2's compiled ``pattern``, or the ValueError saying why not; RE2's own cache left empty."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr, outside the JSON logs
    options.max_mem = PATTERN_MAX_MEM
    try:
        compiled = re2.compile(pattern, options)
        if compiled.programsize > MAX_PROGRAM:
            return ValueError(f"the pattern compiles to {compiled.programsize:,} RE2 instructions; the limit is "
                              f"{MAX_PROGRAM:,} (`.{{1,500}}` is about 4,500): repeat less, e.g. `+` for `{{1,1000}}`")
        return compiled
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        if "too large" in str(reason):
            reason = f"{reason} (a pattern may use {PATTERN_MAX_MEM >> 10} KiB: repeat less, e.g. `x{{1,50}}`)"
        return ValueError(f"not a valid RE2 regular expression: {reason}")
    finally:
        re2.purge()  # its lru_cache would keep 128 of them: ours above is the bound
